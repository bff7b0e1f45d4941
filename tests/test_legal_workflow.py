"""The legal workflow as order No. 554/НҚ reads it (issue 14), on SQLite and PostgreSQL, with
the real centre outbox, the registry and the simulated switch on a loopback port:

    1  the holder at the time of the facts is reported, not the number's holder now
    3  a suspension is reported at the time the switch carried it out
    4  every notice ends acknowledged or stays an attention item until someone acts; a second
       suspension after an appeal, and an unblocking, are reported
   12  own detections reported at detection when the operator chooses so
   13  a confirmation racing the workflow's retry is made once, and the round goes on
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from gateway.cases import Actor, Cases, DetectionReport, IllegalTransition, Policy, State
from gateway.cases.workflow import Workflow
from gateway.centre import CentreOutbox, CentreReports, report_errors
from gateway.centre.notices import NoticeError, Notices
from gateway.registry import Registry
from gateway.store import Store
from gateway.switch.port import HttpSwitch
from gateway.workdays import KzCalendar
from simulators.switch import SwitchSimulator

ALMATY = ZoneInfo("Asia/Almaty")
DAY = 86400.0
IIN_A = "900101300017"  # synthetic (docs: KAZAKHSTAN.md)
IIN_B = "850715400028"
NUMBER = "+77011234567"
OTHER_OF_A = "+77051234567"
ANALYST = Actor("u-aigerim", "analyst")
SUPERVISOR = Actor("u-sup", "supervisor")


def almaty(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> float:
    return dt.datetime(y, m, d, hh, mm, tzinfo=ALMATY).timestamp()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def sim() -> AsyncIterator[SwitchSimulator]:
    async with SwitchSimulator(token="tok") as s:
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock(almaty(2025, 12, 1))


@pytest.fixture
async def cases(store: Store, sim: SwitchSimulator, clock: Clock) -> AsyncIterator[Cases]:
    registry = Registry(store, clock=lambda: almaty(2024, 1, 10))
    await registry.register_person(IIN_A, "Testova", "Aigerim")
    for n in (NUMBER, OTHER_OF_A):
        await registry.register_number(IIN_A, n)
    async with HttpSwitch(sim.url, "tok", timeout=2.0) as switch:
        yield Cases(
            store, KzCalendar(), switch=switch, registry=Registry(store, clock=clock),
            reports=CentreOutbox("kcell", clock=clock), clock=clock,
        )  # fmt: skip


async def reports(store: Store) -> list[dict[str, Any]]:
    return [r["payload"] | {"_row": r} for r in await CentreReports(store).all()]


async def confirmed(cases: Cases, number: str = NUMBER) -> str:
    case = await cases.open(source="complaint", numbers=[number], received_at=cases.clock())
    await cases.start_verification(case.id, ANALYST, "reading the forwarded SMS")
    await cases.confirm(case.id, ANALYST, "smishing confirmed")
    return case.id


# -- 1: the right person -------------------------------------------------------------------------


async def test_the_holder_at_the_time_of_the_facts_is_reported_not_todays(
    store: Store, cases: Cases, clock: Clock, sim: SwitchSimulator
) -> None:
    """A number terminated and re-issued: a complaint about last year's fraud names last
    year's holder to the centre; today's holder is neither reported nor suspended."""
    registry = Registry(store, clock=lambda: almaty(2025, 3, 1))
    await registry.set_number_status(OTHER_OF_A, "terminated")
    registry = Registry(store, clock=lambda: almaty(2025, 6, 1))
    await registry.register_person(IIN_B, "Seitova", "Dana")
    await registry.register_number(IIN_B, OTHER_OF_A)
    last_year = almaty(2024, 11, 20)
    case = await cases.open(
        source="complaint", numbers=[OTHER_OF_A], received_at=clock.t, facts_at=last_year
    )
    holder_then = await Registry(store).subscriber_of(OTHER_OF_A, at=last_year)
    assert holder_then is not None and case.person_id == holder_then[0].id
    await cases.start_verification(case.id, ANALYST, "the SMS of November 2024")
    done = await cases.confirm(case.id, ANALYST, "smishing confirmed")
    [detection] = [r for r in await reports(store) if r["kind"] == "detection"]
    assert detection["subscriber"]["iin"] == IIN_A and IIN_B not in str(detection)
    assert detection["facts_at"] == "2024-11-20T05:00:00.000Z"
    # A no longer holds the re-issued number: it is not listed as A's registered number
    assert detection["subscriber"]["numbers"] == [NUMBER]
    # the number is B's now: B's service is not suspended for A's facts of last year
    assert done.switch_actions == () and OTHER_OF_A not in sim.state
    assert done.state is State.CLOSED and "nothing_to_suspend" in done.flags
    # facts while nobody held it (after A's termination, before B's contract): B is neither
    # reported nor suspended; the centre hears of an unknown subscriber
    gap = await cases.open(
        source="complaint", numbers=[OTHER_OF_A], received_at=clock.t,
        facts_at=almaty(2025, 4, 15),
    )  # fmt: skip
    assert gap.person_id is None
    await cases.start_verification(gap.id, ANALYST, "the SMS of April 2025")
    closed = await cases.confirm(gap.id, ANALYST, "smishing confirmed")
    assert closed.state is State.CLOSED and OTHER_OF_A not in sim.state
    [unknown] = [r for r in await reports(store) if r["case_id"] == gap.id]
    assert unknown["subscriber"] is None and IIN_B not in str(unknown)


# -- 3: true times ------------------------------------------------------------------------------


async def test_suspension_is_reported_when_the_switch_carried_it_out(
    cases: Cases, sim: SwitchSimulator, clock: Clock, store: Store
) -> None:
    """The switch is down from 1 to 21 December: the centre hears of the suspension with the
    time it happened (21 December), not the decision's (1 December)."""
    await sim.down()
    case_id = await confirmed(cases)
    assert (await cases.get(case_id)).state is State.CONFIRMED
    clock.t = almaty(2025, 12, 21, 11)
    await sim.start()
    [done] = await cases.retry_pending()
    assert done.state is State.SUSPENDED
    suspended = [r for r in await reports(store) if r["kind"] == "suspended"]
    assert [r["suspended_at"] for r in suspended] == ["2025-12-21T06:00:00.000Z"]
    assert [r["numbers"] for r in suspended] == [[NUMBER]]  # point 120: this number only
    detection = next(r for r in await reports(store) if r["kind"] == "detection")
    assert detection["created_at"].startswith("2025-12-01")


# -- 4: notices seen through --------------------------------------------------------------------


async def test_a_second_suspension_after_an_appeal_and_the_unblocking_are_reported(
    cases: Cases, store: Store, clock: Clock
) -> None:
    case_id = await confirmed(cases)
    clock.t += 3600
    await cases.unblock(case_id, SUPERVISOR, "appeal upheld: the subscriber's phone was stolen")
    await cases.close(case_id, SUPERVISOR, "appeal handled")
    clock.t += DAY
    await cases.reopen(case_id, SUPERVISOR, "new complaint about the same number")
    await cases.start_verification(case_id, ANALYST, "again")
    await cases.confirm(case_id, ANALYST, "smishing again")
    sent = await reports(store)
    kinds = [(r["kind"], r["round"]) for r in sent]
    assert [k for k, _ in kinds] == [
        "detection", "suspended", "unblocked", "detection", "suspended",
    ]  # fmt: skip
    assert len(set(kinds)) == 5  # each a report of its own round
    unblocked = sent[2]
    assert unblocked["reason"].startswith("appeal upheld") and unblocked["numbers"] == [NUMBER]
    for r in sent:
        row = r.pop("_row")
        assert report_errors({**r, "sent_at": "2026-01-01T00:00:00Z"}) == [], row["kind"]


async def test_an_appeal_on_a_case_closed_while_suspended_lifts_the_suspension_first(
    cases: Cases, store: Store, clock: Clock, sim: SwitchSimulator
) -> None:
    """Reopened and then rejected, a case closed while suspended left its number cut off:
    reopening waits for the unblocking, which a closed case now allows (and reports)."""
    case_id = await confirmed(cases)
    await cases.close(case_id, ANALYST, "suspended; nothing more to do")
    with pytest.raises(IllegalTransition, match="still suspended"):
        await cases.reopen(case_id, SUPERVISOR, "the subscriber appeals")
    lifted = await cases.unblock(case_id, SUPERVISOR, "appeal: phone was stolen on 1 December")
    assert lifted.state is State.UNBLOCKED and sim.state[NUMBER] == "active"
    await cases.close(case_id, SUPERVISOR, "unblocked")
    with pytest.raises(IllegalTransition):  # nothing left to unblock
        await cases.unblock(case_id, SUPERVISOR, "again")
    await cases.reopen(case_id, SUPERVISOR, "the subscriber appeals")
    await cases.start_verification(case_id, ANALYST, "again")
    done = await cases.reject(case_id, ANALYST, "the phone was stolen: not the subscriber")
    assert done.state is State.NOT_CONFIRMED and sim.state[NUMBER] == "active"
    kinds = [r["kind"] for r in await reports(store)]
    assert kinds == ["detection", "suspended", "unblocked", "not_confirmed"]


async def test_a_retried_unblocking_keeps_who_decided_it_and_why(
    cases: Cases, store: Store, clock: Clock, sim: SwitchSimulator
) -> None:
    case_id = await confirmed(cases)
    await sim.down()
    stuck = await cases.unblock(case_id, SUPERVISOR, "court order 123")
    assert stuck.state is State.SUSPENDED
    await sim.start()
    [done] = await cases.retry_pending()
    assert done.state is State.UNBLOCKED
    last = done.transitions[-1]
    assert "court order 123" in last.reason and SUPERVISOR.id in last.reason
    [unblocked] = [r for r in await reports(store) if r["kind"] == "unblocked"]
    assert unblocked["reason"].startswith("court order 123")


async def test_a_refused_notice_stays_an_attention_item_until_someone_acts(
    cases: Cases, store: Store, clock: Clock
) -> None:
    await confirmed(cases)
    outbox = CentreReports(store)
    detection, suspended = await outbox.all()
    # the dispatcher sets a report the centre refuses (4xx) aside like this
    await outbox.mark_failed(suspended["id"], "HTTP 422: numbers", permanent=True, now=clock.t)
    notices = Notices(store, "kcell", rebuild=cases.detection_notice, clock=clock)
    assert [n.id for n in await notices.list("attention")] == [suspended["id"]]
    assert await notices.counts() == {"pending": 1, "attention": 1}
    assert await notices.remind() == 1  # at once
    assert await notices.remind() == 0  # once per day
    clock.t = almaty(2025, 12, 2, 8, 30)
    assert await notices.remind() == 0  # not before working hours
    clock.t = almaty(2025, 12, 2, 9, 5)
    assert await notices.remind() == 1  # and each working day while nobody acts
    alerts = [a for a in await store.pending_alerts(100) if a.kind.value == "centre"]
    assert len(alerts) == 2 and alerts[0].payload["status"] == "refused"
    assert alerts[0].payload["report_id"] == suspended["id"]
    assert "Aigerim" not in str(alerts[0].payload) and IIN_A not in str(alerts[0].payload)
    new = await notices.resend(suspended["id"], "u-aigerim")
    assert (new.kind, new.round, new.revision, new.status) == (
        "suspended", suspended["round"], 2, "pending",
    )  # fmt: skip
    old = await notices.get(suspended["id"])
    assert old.status == "resolved" and old.superseded_by == new.id
    assert await notices.list("attention") == []
    clock.t = almaty(2025, 12, 3, 9, 5)
    assert await notices.remind() == 0
    with pytest.raises(NoticeError, match="resolved"):
        await notices.resend(suspended["id"], "u-aigerim")
    with pytest.raises(NoticeError, match="no centre report"):
        await notices.dismiss("nope", "u-aigerim", "typo")
    # a pending report is the dispatcher's: resending it could reach the centre twice
    with pytest.raises(NoticeError, match="pending"):
        await notices.resend(detection["id"], "u-aigerim")
    with pytest.raises(NoticeError, match="pending"):
        await notices.dismiss(detection["id"], "u-sup", "handled by phone")
    await outbox.mark_failed(detection["id"], "HTTP 400: schema", permanent=True, now=clock.t)
    with pytest.raises(NoticeError, match="reason"):
        await notices.dismiss(detection["id"], "u-sup", " ")
    gone = await notices.dismiss(detection["id"], "u-sup", "sent by phone to the centre")
    assert gone.status == "resolved" and gone.resolved_by == "u-sup"
    assert [r.id for r in await notices.list("pending")] == [new.id]


async def test_a_detection_without_its_subscriber_is_flagged_and_completed(
    cases: Cases, store: Store, clock: Clock, sim: SwitchSimulator
) -> None:
    """Item 9: a number unknown to the registry goes out flagged; an analyst completes the
    registry and resends: the new revision carries the subscriber."""
    unknown = "+77471112233"
    await confirmed(cases, unknown)
    notices = Notices(store, "kcell", rebuild=cases.detection_notice, clock=clock)
    [first] = [n for n in await notices.list("attention") if n.kind == "detection"]
    assert first.status == "incomplete"
    payload = (await CentreReports(store).get(first.id) or {})["payload"]
    assert payload["subscriber"] is None and payload["subscriber_status"] == "unknown_to_registry"
    registry = Registry(store, clock=lambda: almaty(2024, 1, 10))
    await registry.register_person(IIN_B, "Seitova", "Dana")
    await registry.register_number(IIN_B, unknown)
    again = await notices.resend(first.id, "u-aigerim")
    assert again.status == "pending" and again.revision == 2
    payload = (await CentreReports(store).get(again.id) or {})["payload"]
    assert payload["subscriber"]["iin"] == IIN_B and payload["subscriber_status"] == "registered"
    assert await notices.list("attention") == []


# -- 12: own detections -------------------------------------------------------------------------


async def test_own_detections_reported_at_detection_by_policy(
    store: Store, sim: SwitchSimulator, clock: Clock, cases: Cases
) -> None:
    at_once = Cases(
        store, KzCalendar(), switch=cases.switch, registry=cases.registry,
        reports=CentreOutbox("kcell"), clock=clock,
        policy=Policy(report_detection=DetectionReport.AT_DETECTION),
    )  # fmt: skip
    case = await at_once.open(
        source="detection_sms", numbers=[NUMBER], received_at=clock.t, external_id="number:x"
    )
    assert await reports(store) == []  # queued by the workflow's round, not inside open()
    assert await at_once.report_detections() == 1
    sent = await reports(store)
    assert [(r["kind"], r["status"]) for r in sent] == [("detection", "under_verification")]
    assert sent[0]["subscriber"]["iin"] == IIN_A  # point 118: the person and their numbers
    assert await at_once.report_detections() == 0  # once
    await at_once.start_verification(case.id, ANALYST, "checking")
    await at_once.confirm(case.id, ANALYST, "confirmed")
    kinds = [(r["kind"], r.get("status")) for r in await reports(store)]
    assert kinds == [
        ("detection", "under_verification"), ("detection", "confirmed"), ("suspended", None),
    ]  # fmt: skip
    # rejected before the round reported it: the centre hears of the case before its outcome
    quick = await at_once.open(
        source="detection_sms", numbers=[OTHER_OF_A], received_at=clock.t,
        external_id="number:y",
    )  # fmt: skip
    await at_once.start_verification(quick.id, ANALYST, "checking")
    await at_once.reject(quick.id, ANALYST, "a bank's own notice")
    assert await at_once.report_detections() == 0
    mine = [(r["kind"], r.get("status")) for r in await reports(store) if r["case_id"] == quick.id]
    assert mine == [("detection", "under_verification"), ("not_confirmed", None)]


# -- 13: the race -------------------------------------------------------------------------------


async def test_a_confirm_racing_the_workflow_round_is_made_once(
    store: Store, sim: SwitchSimulator, clock: Clock, cases: Cases
) -> None:
    """An analyst's confirm (which suspends) and the workflow's round (which retries the same
    suspension) at once: one suspension, one report, and the round still queues its deadline
    alerts for the other cases."""
    sim.delay = 0.05  # both calls are in flight together
    overdue = await cases.open(source="complaint", numbers=[OTHER_OF_A], received_at=clock.t)
    flow = Workflow(store, cases, clock=clock)
    for _ in range(3):
        case = await cases.open(source="complaint", numbers=[NUMBER], received_at=clock.t)
        await cases.start_verification(case.id, ANALYST, "checking")
        clock.t = overdue.verify_by + 60  # the other case is overdue by now
        confirm = asyncio.create_task(cases.confirm(case.id, ANALYST, "confirmed"))
        await asyncio.sleep(0.01)  # the confirm is at the switch: the round finds it confirmed
        await asyncio.gather(confirm, flow.step(), flow.step())
        done = await cases.get(case.id)
        assert done.state is State.SUSPENDED
        assert [t.action for t in done.transitions].count("suspend") == 1
        suspended = [r for r in await CentreReports(store).all() if r["case_id"] == case.id]
        assert [r["kind"] for r in suspended] == ["detection", "suspended"]
        await cases.unblock(case.id, SUPERVISOR, "next round of the test")
        clock.t = almaty(2025, 12, 1)
    alerts = [a for a in await store.pending_alerts(500) if a.kind.value == "deadline"]
    assert any(a.payload["case_id"] == overdue.id for a in alerts)


# -- 5: every complaint verified ----------------------------------------------------------------


async def test_every_forwarded_complaint_opens_a_case_with_its_deadline(
    store: Store, cases: Cases, clock: Clock
) -> None:
    """A forwarded SMS that names no number, a foreign number, or one of ours: each is a case
    with its 2-working-day deadline (point 119); none is set aside."""
    from test_workflow import complaint_sms

    await store.record(
        [
            complaint_sms(1, "Вам звонили из банка, назовите код", ""),
            complaint_sms(2, "Звонили с +7 916 123 45 67", "79161234567"),
            complaint_sms(3, "Код от 8 701 123 45 67", "77011234567"),
        ]
    )
    await Workflow(store, cases, clock=clock).step()
    found = sorted(await cases.list(), key=lambda c: (c.numbers, c.sender or ""))
    assert [(c.numbers, c.sender) for c in found] == [
        ((), "unnamed"), (("+77011234567",), None), (("+79161234567",), None),
    ]  # fmt: skip
    for c in found:
        assert c.state is State.NEW and c.verify_by > c.received_at


# -- the commands an analyst and a supervisor use -----------------------------------------------


def test_the_deadline_and_centre_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fraudgate cases deadlines` exits 1 while a case is overdue; `fraudgate centre list
    --status attention | resend | dismiss`: an analyst resends, only a supervisor dismisses,
    both audited, payloads never printed."""
    from helpers.cli import caller

    from gateway.cli import main
    from gateway.config import load
    from gateway.store.models_api import api_audit
    from gateway.switch.port import NoSwitch

    analyst, supervisor = caller(tmp_path, "analyst"), caller(tmp_path, "supervisor")
    url = load(Path(analyst[1])).database_url  # both configurations: one data_dir

    async def seed() -> tuple[str, str]:
        async with await Store.open(url) as st:
            await st.migrate()
            registry = Registry(st)
            await registry.register_person(IIN_A, "Testova", "Aigerim")
            await registry.register_number(IIN_A, NUMBER, contract_date=dt.date(2020, 1, 1))
            late = Cases(
                st, KzCalendar(), switch=NoSwitch(), registry=Registry(st),
                reports=CentreOutbox("kcell"),
            )  # fmt: skip
            stale = await late.open(source="complaint", numbers=[NUMBER], received_at=0.0)
            case = await late.open(source="complaint", numbers=[NUMBER], received_at=time.time())
            await late.start_verification(case.id, ANALYST, "checking")
            await late.confirm(case.id, ANALYST, "smishing")  # no switch: stays confirmed
            [report] = await CentreReports(st).all()
            await CentreReports(st).mark_failed(report["id"], "HTTP 400", permanent=True, now=1.0)
            return stale.id, report["id"]

    case_id, report_id = asyncio.run(seed())
    assert main(["cases", *analyst[:2], "deadlines"]) == 1
    out = capsys.readouterr().out
    assert f"OVERDUE {case_id}" in out and "1 overdue" in out and NUMBER not in out
    assert main(["centre", *analyst[:2], "list", "--status", "attention"]) == 0
    out = capsys.readouterr().out
    assert report_id in out and "refused" in out and "Aigerim" not in out and IIN_A not in out
    assert (
        main(["centre", *analyst[:2], "dismiss", report_id, "--reason", "phoned", *analyst[2:]])
        == 1
    )
    assert "dismiss a centre report" in capsys.readouterr().err  # analysts may not
    assert main(["centre", *analyst[:2], "resend", report_id, *analyst[2:]]) == 0
    new_id = capsys.readouterr().out.split()[0]
    assert new_id != report_id
    assert (
        main(["centre", *supervisor[:2], "dismiss", new_id, "--reason", "x", *supervisor[2:]]) == 1
    )  # pending
    assert "pending" in capsys.readouterr().err

    async def fail(report: str) -> None:
        async with await Store.open(url) as st:
            await CentreReports(st).mark_failed(report, "HTTP 400", permanent=True, now=2.0)

    async def audited() -> list[tuple[str, str]]:
        async with await Store.open(url) as st, st.engine.connect() as conn:
            found = await conn.execute(sa.select(api_audit.c.user_id, api_audit.c.action))
            return sorted((r[0], r[1]) for r in found)

    asyncio.run(fail(new_id))
    assert (
        main(["centre", *supervisor[:2], "dismiss", new_id, "--reason", "y", *supervisor[2:]]) == 0
    )
    assert asyncio.run(audited()) == [
        ("u-analyst", "centre.resend"), ("u-supervisor", "centre.dismiss"),
    ]  # fmt: skip
