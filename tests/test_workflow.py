"""The case workflow's feeders on a real SQLite store with the simulated switch: a probe
finding naming a SIM-box SIM opens a case that the policy confirms and suspends at once; a
complaint naming no number is set aside; each source record opens one case, also when the
round is repeated (a crash between opening and marking)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from gateway.cases import Actor, CaseFilter, Cases, Policy, Source, State
from gateway.cases.workflow import OPEN_PER_TRANSACTION, Workflow
from gateway.domain import Complaint, Inspected, Reason, SmsEvent, Thresholds, combine
from gateway.probes.simbox import Expected, TestCallMatcher
from gateway.registry import Registry
from gateway.store import Store, sqlite_url
from gateway.store.models import complaints
from gateway.workdays import KzCalendar
from gsm_probe.events import IncomingCall
from simulators.switch import SwitchSimulator


def complaint_sms(i: int, text: str, suspected: str) -> Inspected:
    sms = SmsEvent(source=f"7707000000{i}", dest="1490", text=text, received_at=time.time())
    verdict = combine([Reason("complaint", "complaint.forwarded", 0.0, "")], Thresholds())
    c = Complaint(sms.source, text, sms.received_at, sms.id, suspected)
    return Inspected(sms, verdict, [], c)


async def test_simbox_finding_is_confirmed_and_suspended_and_fed_once(tmp_path: Path) -> None:
    async with await Store.open(sqlite_url(tmp_path)) as store, SwitchSimulator() as sw:
        await store.migrate()
        from gateway.switch.port import HttpSwitch

        async with HttpSwitch(sw.url, sw.token) as switch:
            trusted = Policy(auto_confirm_probe_outcomes=frozenset({"simbox"}))
            cases = Cases(
                store, KzCalendar(), switch=switch, registry=Registry(store), reports=None,
                policy=trusted,
            )  # fmt: skip
            flow = Workflow(store, cases)
            m = TestCallMatcher()
            now = time.time()
            m.expect([Expected("p1", "+4915112345678", now - 5, now + 60),
                      Expected("p2", "+4915112345678", now - 5, now + 60)])  # fmt: skip
            finding = m.on_call(IncomingCall("p1", "+77011234567", 145, 0, now))
            again = m.on_call(IncomingCall("p2", "+77011234567", 145, 0, now + 1))  # same SIM
            await store.record_findings([finding, again], [])
            no_number = complaint_sms(1, "Звонили из банка", "")
            named = complaint_sms(2, "Код от +7 705 555 99 99", "77055559999")
            await store.record([no_number, named])
            await flow.step()
            await flow.step()  # a repeated round opens nothing more
            all_cases = await cases.list(CaseFilter())
            assert len(all_cases) == 3 and flow.opened == 3
            [simbox] = [c for c in all_cases if c.source is Source.DETECTION_SIMBOX]
            assert simbox.state is State.SUSPENDED  # the configured policy trusts a SIM box
            assert "auto_confirmed" in simbox.flags
            assert sw.state.get("+77011234567") == "blocked"
            named_case, unnamed = sorted(
                (c for c in all_cases if c.source is Source.COMPLAINT), key=lambda c: c.numbers
            )[::-1]
            assert named_case.state is State.NEW and named_case.numbers == ("+77055559999",)
            # item 5: a forwarded SMS naming no number is still verified in 2 working days
            assert unnamed.numbers == () and unnamed.sender == "unnamed"
            assert unnamed.state is State.NEW and unnamed.verify_by > unnamed.received_at
            async with store.engine.connect() as conn:
                statuses = sorted(
                    r[0]
                    for r in await conn.execute(
                        complaints.select().with_only_columns(complaints.c.status)
                    )
                )
            assert statuses == ["case", "case"]


async def test_local_numbers_whose_sms_were_blocked_become_cases(tmp_path: Path) -> None:
    def blocked(source: str, ton: int, i: int) -> Inspected:
        sms = SmsEvent(source=source, dest=f"7705000000{i}", text="Ваша карта заблокирована",
                       source_ton=ton, received_at=time.time() + i)  # fmt: skip
        verdict = combine([Reason("content", "content.ru.card_blocked", 0.9, "")], Thresholds())
        return Inspected(sms, verdict)

    async with await Store.open(sqlite_url(tmp_path)) as store, SwitchSimulator() as sw:
        await store.migrate()
        from gateway.switch.port import HttpSwitch

        async with HttpSwitch(sw.url, sw.token) as switch:
            cases = Cases(
                store, KzCalendar(), switch=switch, registry=Registry(store), reports=None
            )
            flow = Workflow(store, cases)
            await store.record([blocked("77011112233", 1, i) for i in range(3)])
            await store.record([blocked("KASPI", 5, 5), blocked("+4915112345678", 1, 6)])
            await flow.step()
            await flow.step()
            [case] = await cases.list(CaseFilter())
            assert case.source is Source.DETECTION_SMS and case.numbers == ("+77011112233",)
            assert case.state is State.NEW  # a verdict alone does not confirm: an analyst decides
            detail = await cases.get(case.id)
            [evidence] = detail.evidence
            assert evidence["kind"] == "message" and evidence["blocked_messages"] == 3
            assert sw.state == {}  # nothing blocked on the switch before a decision
            # later rounds read only what came since the previous round (less a margin): the
            # whole history is not grouped again every round, and new senders still open cases
            assert flow._blocked_since is not None
            assert flow._blocked_since >= time.time() - 120
            await store.record([blocked("77019998877", 1, 20 + i) for i in range(2)])
            await flow.step()
            numbers = sorted(c.numbers[0] for c in await cases.list(CaseFilter()))
            assert numbers == ["+77011112233", "+77019998877"]
            # a round with more senders than one transaction takes opens every one of them
            many = [f"770155500{i:02d}" for i in range(2 * OPEN_PER_TRANSACTION + 3)]
            await store.record([blocked(n, 1, 40 + i) for i, n in enumerate(many)])
            before = flow.opened
            await flow.step()
            assert flow.opened - before == len(many)
            listed = await cases.list(CaseFilter(limit=500))
            assert sorted(c.numbers[0] for c in listed) == sorted(
                [*numbers, *("+" + n for n in many)]
            )


async def test_complaints_naming_numbers_that_are_not_ours_are_verified_too(
    tmp_path: Path,
) -> None:
    """Item 5: a complaint about a foreign or fixed number still gets its case and deadline;
    confirmed, it has nothing of this network's to suspend: the centre gets the detection and
    the case closes, flagged."""
    async with await Store.open(sqlite_url(tmp_path)) as store:
        await store.migrate()
        from gateway.centre import CentreOutbox, CentreReports
        from gateway.switch.port import NoSwitch

        cases = Cases(
            store, KzCalendar(), switch=NoSwitch(), registry=Registry(store),
            reports=CentreOutbox("kcell"),
        )  # fmt: skip
        flow = Workflow(store, cases)
        russian = complaint_sms(1, "Звонили с +7 916 123 45 67", "79161234567")
        fixed = complaint_sms(2, "Звонили с 8 7172 55 55 55", "77172555555")
        await store.record([russian, fixed])
        await flow.step()
        found = await cases.list(CaseFilter())
        assert sorted(c.numbers for c in found) == [("+77172555555",), ("+79161234567",)]
        async with store.engine.connect() as conn:
            query = complaints.select().with_only_columns(complaints.c.status)
            assert sorted(r[0] for r in await conn.execute(query)) == ["case", "case"]
        analyst = Actor("u-a", "analyst")
        foreign = next(c for c in found if c.numbers == ("+79161234567",))
        await cases.start_verification(foreign.id, analyst, "read the forwarded text")
        done = await cases.confirm(foreign.id, analyst, "smishing from a Russian number")
        assert done.state is State.CLOSED and "nothing_to_suspend" in done.flags
        assert [r["kind"] for r in await CentreReports(store).all()] == ["detection"]


async def test_a_failing_round_does_not_end_the_workflow(tmp_path: Path) -> None:
    import asyncio

    async with await Store.open(sqlite_url(tmp_path)) as store:
        await store.migrate()
        from gateway.switch.port import NoSwitch

        cases = Cases(
            store, KzCalendar(), switch=NoSwitch(), registry=Registry(store), reports=None
        )
        flow = Workflow(store, cases, interval=0.05)
        rounds = 0

        async def broken() -> list[object]:
            nonlocal rounds
            rounds += 1
            raise RuntimeError("a bug in a round")

        cases.retry_pending = broken  # type: ignore[method-assign]
        task = asyncio.create_task(flow.run())
        await asyncio.sleep(0.3)
        assert not task.done() and rounds >= 3  # logged, and the next round came
        flow.stop()
        await task


async def test_a_phase_that_fails_does_not_cost_the_round_its_deadline_alerts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 13: the switch retry meeting an analyst's decision made one transaction fail
    ("database is locked", a unique key): the round went no further and the deadline alerts
    of every other case waited. Each phase now fails alone, and is logged once."""
    from gateway.store import StoreUnavailable

    async with await Store.open(sqlite_url(tmp_path)) as store:
        await store.migrate()
        from gateway.switch.port import NoSwitch

        cases = Cases(
            store, KzCalendar(), switch=NoSwitch(), registry=Registry(store), reports=None
        )
        late = await cases.open(source="complaint", numbers=["+77011112233"], received_at=0.0)
        flow = Workflow(store, cases, clock=lambda: late.verify_by + 60)

        async def locked() -> list[object]:
            raise StoreUnavailable("database is locked")

        cases.retry_pending = locked  # type: ignore[method-assign]
        caplog.set_level(logging.WARNING)
        await flow.step()
        await flow.step()
        deadline = [a for a in await store.pending_alerts(10) if a.kind.value == "deadline"]
        assert [a.payload["case_id"] for a in deadline] == [late.id]
        assert sum("store failing" in r.getMessage() for r in caplog.records) == 1
        del cases.retry_pending  # the store is back
        await flow.step()
        assert sum("store is back" in r.getMessage() for r in caplog.records) == 1
        assert (await cases.get(late.id)).state is State.NEW


async def test_a_confirmed_case_labels_the_campaign_of_its_messages(tmp_path: Path) -> None:
    """An analyst's confirmation reaches the campaign detector: the blocked message's text
    labels its campaign ("confirmed_case"), so later copies block."""
    from gateway.cases import Actor
    from gateway.detect.campaigns import CampaignDetector, CampaignLimits

    text = "Ваш заказ №48211 ожидает выдачи. Детали и трек: wb-punkt.shop/721x оплатите доставку"
    sms = SmsEvent(source="77011112233", dest="77050000001", text=text, source_ton=1,
                   received_at=time.time())  # fmt: skip
    verdict = combine([Reason("content", "content.ru.card_blocked", 0.9, "")], Thresholds())
    detector = CampaignDetector(CampaignLimits())
    async with await Store.open(sqlite_url(tmp_path)) as store:
        await store.migrate()
        from gateway.switch.port import NoSwitch

        cases = Cases(store, KzCalendar(), switch=NoSwitch(), registry=Registry(store),
                      reports=None)  # fmt: skip
        flow = Workflow(store, cases, label_campaign=detector.label)
        await store.record([Inspected(sms, verdict)])
        await flow.step()
        [case] = await cases.list(CaseFilter())
        assert detector.cluster_of(text) is None  # opened, not confirmed: nothing labelled
        analyst = Actor("a.nurlanova", "analyst")
        await cases.start_verification(case.id, analyst, "reading it")
        await cases.confirm(case.id, analyst, "a fake delivery lure")
        await flow.step()
        cluster = detector.cluster_of(text.replace("48211", "99417"))
        assert cluster is not None
        view = detector.campaign(cluster)
        assert view is not None and view.label == "confirmed_case"


async def test_the_deadline_status_is_published_when_the_counts_change(tmp_path: Path) -> None:
    """Item 6: due and overdue counts reach monitoring as a retained MQTT document (the daemon
    gives the dispatcher's set_state), published only when they change."""
    async with await Store.open(sqlite_url(tmp_path)) as store:
        await store.migrate()
        from gateway.switch.port import NoSwitch

        cases = Cases(
            store, KzCalendar(), switch=NoSwitch(), registry=Registry(store), reports=None
        )
        case = await cases.open(source="complaint", numbers=["+77011112233"], received_at=0.0)
        published: list[dict[str, object]] = []
        clock = [case.verify_by - 3600]
        flow = Workflow(store, cases, clock=lambda: clock[0], status=published.append)
        await flow.step()
        await flow.step()  # nothing changed: nothing published again
        clock[0] = case.verify_by + 60
        await flow.step()
        assert [(d["due_today"], d["overdue"]) for d in published] == [(1, 0), (0, 1)]


async def test_a_probe_test_after_the_call_records_joins_their_case_and_its_policy_applies(
    tmp_path: Path,
) -> None:
    """The call records named a SIM first (a case, waiting for an analyst); a probe test names
    it later: the test call becomes evidence of that same case, and the operator's policy that
    trusts probe tests confirms and suspends it, as if the probe had come first."""
    from gateway.calls.analyzer import CallAnalyzer
    from gateway.calls.cdr import Cdr, RecordType
    from gateway.calls.payload import call_alert
    from gateway.calls.repository import CallFindings

    async with await Store.open(sqlite_url(tmp_path)) as store, SwitchSimulator() as sw:
        await store.migrate()
        from gateway.switch.port import HttpSwitch

        async with HttpSwitch(sw.url, sw.token) as switch:
            trusted = Policy(auto_confirm_probe_outcomes=frozenset({"simbox"}))
            cases = Cases(
                store, KzCalendar(), switch=switch, registry=Registry(store), reports=None,
                policy=trusted,
            )  # fmt: skip
            flow = Workflow(store, cases)
            now = time.time()
            analyzer = CallAnalyzer()
            night = now - (now + 5 * 3600) % 86400 - 23 * 3600  # 01:00 Almaty time, the day before
            calls = [
                Cdr(RecordType.MOC, night + 100 * i, 60.0, "401021111111111",
                    "86723503000011", "77011234567", "77011234567", f"7705{i:07d}", lac=1,
                    cell=9)
                for i in range(40)
            ]  # fmt: skip
            found = analyzer.feed(calls)
            assert [f.subject for f in found] == ["77011234567"]
            await CallFindings(store).record(found, lambda f: call_alert(f, now), now)
            await flow.step()
            [case] = await cases.list(CaseFilter(source=Source.DETECTION_SIMBOX))
            assert case.state is State.NEW  # a call-record finding waits for a person
            m = TestCallMatcher()
            m.expect([Expected("p1", "+4915112345678", now - 5, now + 60)])
            probe = m.on_call(IncomingCall("p1", "+77011234567", 145, 0, now))
            await store.record_findings([probe], [])
            await flow.step()
            await flow.step()  # attached once
            [case] = await cases.list(CaseFilter(source=Source.DETECTION_SIMBOX))
            assert case.state is State.SUSPENDED and "auto_confirmed" in case.flags
            full = await cases.get(case.id)
            kinds = {e["kind"] for e in full.evidence}
            assert {"call_finding", "probe_finding"} <= kinds
            assert sw.state.get("+77011234567") == "blocked"
