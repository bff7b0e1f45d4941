"""Cases (points 119-120, R4 R5 R8) on SQLite and PostgreSQL, with the real registry and the
simulated switch on a loopback port."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import pwd
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.alerts.mqtt import alert_message, assert_no_personal_data
from gateway.cases import (
    TRANSITIONS,
    Action,
    Actor,
    Cases,
    CaseView,
    Evidence,
    IllegalTransition,
    Notice,
    OpenRequest,
    Policy,
    Source,
    State,
    SuspendScope,
)
from gateway.registry import Registry
from gateway.store import Store, sqlite_url
from gateway.store.models import alerts
from gateway.store.models_cases import case_transitions, cases
from gateway.switch.port import HttpSwitch
from gateway.workdays import KzCalendar
from simulators.switch import SwitchSimulator

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "mqtt-alert.schema.json"

ALMATY = ZoneInfo("Asia/Almaty")
IIN = "900101300017"  # synthetic (docs: KAZAKHSTAN.md)
CONTRACT = dt.date(2020, 1, 1)  # the numbers are held since: the facts of the cases are later
MINE = ["+77011234567", "+77051234567", "+77071234567"]  # all registered to IIN
OTHER = "+77781234567"  # not in the registry
ANALYST = Actor("u-aigerim", "analyst")
# Friday 2025-11-14 10:00 Almaty: verify_by is Tuesday 2025-11-18 23:59:59.999 Almaty.
FRIDAY = dt.datetime(2025, 11, 14, 10, 0, tzinfo=ALMATY).timestamp()
TUESDAY_END = dt.datetime(2025, 11, 18, 23, 59, 59, 999_000, tzinfo=ALMATY).timestamp()

report_meta = sa.MetaData()
test_reports = sa.Table(
    "test_reports",
    report_meta,
    sa.Column("n", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(64)),
    sa.Column("kind", sa.String(16)),
    sa.Column("person_id", sa.String(64), nullable=True),
    sa.Column("numbers", sa.JSON()),
)


class TableSink:
    """ReportSink writing to test_reports on the caller's connection; `fail` raises after the
    insert, to show that the report and the transition roll back together."""

    def __init__(self) -> None:
        self.fail = False

    async def enqueue(self, conn: AsyncConnection, case: CaseView, notice: Notice) -> None:
        await conn.execute(
            test_reports.insert().values(
                case_id=case.id,
                kind=notice.kind,
                person_id=notice.person.id if notice.person else None,
                numbers=sorted(n.msisdn for n in notice.numbers),
            )
        )
        if self.fail:
            raise RuntimeError("sink failed after the insert")


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    st = await Store.open(db_url)
    try:
        await st.migrate()
        async with st.engine.begin() as conn:
            await conn.run_sync(report_meta.create_all)
        yield st
    finally:
        await st.close()


@pytest.fixture
async def sim() -> AsyncIterator[SwitchSimulator]:
    async with SwitchSimulator(token="tok", known={*MINE, OTHER}) as s:
        yield s


@pytest.fixture
async def registry(store: Store) -> Registry:
    reg = Registry(store)
    await reg.register_person(IIN, "Testova", "Aigerim")
    for n in MINE:
        await reg.register_number(IIN, n, contract_date=CONTRACT)
    return reg


@pytest.fixture
async def env(
    store: Store, sim: SwitchSimulator, registry: Registry
) -> AsyncIterator[tuple[Cases, TableSink, Clock]]:
    sink, clock = TableSink(), Clock(FRIDAY)
    async with HttpSwitch(sim.url, "tok", timeout=2.0) as switch:
        cases_ = Cases(
            store, KzCalendar(), switch=switch, registry=registry, reports=sink, clock=clock
        )
        yield cases_, sink, clock


async def reports(store: Store) -> list[tuple[str, str | None, list[str]]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(sa.select(test_reports).order_by(test_reports.c.n))
        return [(r.kind, r.person_id, r.numbers) for r in rows]


async def count(store: Store, table: sa.Table) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar())


# -- lifecycle ----------------------------------------------------------------------------------


async def test_complaint_lifecycle(
    env: tuple[Cases, TableSink, Clock], sim: SwitchSimulator, registry: Registry, store: Store
) -> None:
    cases_, _sink, clock = env
    case = await cases_.open(
        source="complaint",
        numbers=["8 701 123 45 67"],
        received_at=FRIDAY,
        evidence=[Evidence("complaint", "cmp-1")],
    )
    assert (case.state, case.numbers, case.verify_by) == (State.NEW, (MINE[0],), TUESDAY_END)
    found = await registry.subscriber_of(MINE[0])
    assert found is not None and case.person_id == found[0].id
    clock.t += 3600
    await cases_.start_verification(case.id, ANALYST, "reading the forwarded SMS")
    clock.t += 3600
    done = await cases_.confirm(case.id, ANALYST, "smishing", [Evidence("message", "msg-1")])
    # R3: the detection report names the person and ALL their numbers; then R5: suspended.
    person_id = found[0].id
    digits = sorted(n.lstrip("+") for n in MINE)
    assert (await reports(store))[0] == ("detection", person_id, digits)
    assert done.state is State.SUSPENDED
    assert (
        done.act_by
        == KzCalendar().add_working_days(dt.datetime.fromtimestamp(clock.t, dt.UTC), 2).timestamp()
    )
    # point 120: "this subscriber number" is suspended, not the holder's other numbers
    assert [a.msisdn for a in done.switch_actions] == [MINE[0]]
    assert all(a.status == "done" and a.answer for a in done.switch_actions)
    assert sim.state[MINE[0]] == "blocked" and await cases_.switch.status(MINE[0]) == "blocked"
    assert all(n not in sim.state for n in MINE[1:])
    assert (await reports(store))[1] == ("suspended", person_id, [MINE[0]])
    again = await registry.subscriber_of(MINE[1])
    assert again is not None
    assert {r.msisdn: r.status for r in again[1]} == {
        MINE[0].lstrip("+"): "suspended", MINE[1].lstrip("+"): "active",
        MINE[2].lstrip("+"): "active",
    }  # fmt: skip
    actions = [(t.action, t.actor, t.role) for t in done.transitions]
    assert actions == [
        ("open", "system", "system"),
        ("start_verification", ANALYST.id, "analyst"),
        ("confirm", ANALYST.id, "analyst"),
        ("suspend", "system", "system"),
    ]
    assert {(e["kind"], e["ref"]) for e in done.evidence} >= {
        ("complaint", "cmp-1"),
        ("message", "msg-1"),
    }
    lifted = await cases_.unblock(case.id, Actor("u-boss", "supervisor"), "appeal granted")
    assert lifted.state is State.UNBLOCKED
    assert sim.state[MINE[0]] == "active"
    closed = await cases_.close(case.id, ANALYST, "done")
    assert closed.state is State.CLOSED
    clock.t = FRIDAY + 7 * 86400  # the appeal, a week later: verify again from then
    reopened = await cases_.reopen(case.id, ANALYST, "appeal")
    assert reopened.state is State.REOPENED and reopened.verify_by > case.verify_by


class RacingSwitch:
    """Delegates to the real switch client; on the first block it first lets the workflow's
    retry round run to the end, as when the round and an analyst's confirm meet."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cases: Cases | None = None
        self.raced = False

    async def block(self, msisdn: str, **kw: Any) -> Any:
        if not self.raced and self.cases is not None:
            self.raced = True
            touched = await self.cases.retry_pending()
            assert [c.state for c in touched] == [State.SUSPENDED]
        return await self.inner.block(msisdn, **kw)

    async def unblock(self, msisdn: str, **kw: Any) -> Any:
        return await self.inner.unblock(msisdn, **kw)

    async def status(self, msisdn: str) -> str:
        return str(await self.inner.status(msisdn))


async def test_a_confirm_that_meets_the_retry_round_answers_the_suspended_case(
    env: tuple[Cases, TableSink, Clock], store: Store
) -> None:
    """The workflow's retry_pending suspends a just-confirmed case while the analyst's own
    confirm is still suspending it: the confirm stands and answers the suspended case (not a
    409), and the case is suspended once, with one 'suspended' report."""
    cases_, _sink, _clock = env
    racing = RacingSwitch(cases_.switch)
    cases_.switch = racing
    case = await cases_.open(source="complaint", numbers=[MINE[0]], received_at=FRIDAY)
    await cases_.start_verification(case.id, ANALYST)
    racing.cases = cases_
    done = await cases_.confirm(case.id, ANALYST, "smishing")
    assert racing.raced and done.state is State.SUSPENDED
    assert [t.action for t in done.transitions].count("suspend") == 1
    assert [k for k, _p, _n in await reports(store)] == ["detection", "suspended"]
    assert await cases_.retry_pending() == []


async def test_not_confirmed_path(env: tuple[Cases, TableSink, Clock], store: Store) -> None:
    cases_, _sink, clock = env
    case = await cases_.open(source="centre", numbers=[OTHER], received_at=FRIDAY)
    assert case.person_id is None
    await cases_.start_verification(case.id, ANALYST)
    clock.t = FRIDAY + 86400 * 3  # Monday 2025-11-17: act_by Wednesday 19th
    rejected = await cases_.reject(case.id, ANALYST, "legitimate sender")
    assert rejected.state is State.NOT_CONFIRMED and rejected.decision_reason == "legitimate sender"
    assert rejected.act_by == dt.datetime(2025, 11, 19, 23, 59, 59, 999_000, ALMATY).timestamp()
    assert await reports(store) == [("not_confirmed", None, [])]
    assert rejected.switch_actions == ()
    assert (await cases_.close(case.id, ANALYST, "centre informed")).state is State.CLOSED


async def test_switch_down_then_retry_pending(
    env: tuple[Cases, TableSink, Clock], sim: SwitchSimulator, store: Store
) -> None:
    cases_, _sink, _clock = env
    case = await cases_.open(source="complaint", numbers=[MINE[0]], received_at=FRIDAY)
    await cases_.start_verification(case.id, ANALYST)
    await sim.down()
    stuck = await cases_.confirm(case.id, ANALYST, "confirmed")
    assert stuck.state is State.CONFIRMED
    assert len(stuck.switch_actions) == 1  # point 120: this number, not the holder's others
    assert {(a.status, a.error_kind) for a in stuck.switch_actions} == {("pending", "unavailable")}
    assert all(a.last_error for a in stuck.switch_actions)
    assert [r[0] for r in await reports(store)] == ["detection"]
    for _ in range(3):  # rounds while the switch stays down: no new alert each time
        await cases_.retry_pending()
    errors = [
        a for a in await store.pending_alerts(100) if a.payload.get("event") == "switch_error"
    ]
    assert len(errors) == 1  # one per number, not one per round
    await sim.start()
    [retried] = await cases_.retry_pending()
    assert retried.state is State.SUSPENDED
    assert sim.state[MINE[0]] == "blocked"
    assert all(sim.state.get(n) != "blocked" for n in MINE[1:])
    assert [r[0] for r in await reports(store)] == ["detection", "suspended"]
    assert await cases_.retry_pending() == []


async def test_rejected_number_waits_for_an_analyst(
    env: tuple[Cases, TableSink, Clock], sim: SwitchSimulator
) -> None:
    cases_, _sink, _clock = env
    sim.known = {OTHER}  # the switch does not know MINE[0]: rejected for good
    case = await cases_.open(source="complaint", numbers=["+77011112233"], received_at=FRIDAY)
    await cases_.start_verification(case.id, ANALYST)
    stuck = await cases_.confirm(case.id, ANALYST, "confirmed")
    assert stuck.state is State.CONFIRMED
    assert [(a.status, a.error_kind) for a in stuck.switch_actions] == [("rejected", "rejected")]
    assert (await cases_.retry_pending())[0].state is State.CONFIRMED
    sim.known = None
    assert (await cases_.suspend(case.id, ANALYST, "number provisioned")).state is State.SUSPENDED


async def test_a_simbox_finding_waits_for_a_person_by_default(
    env: tuple[Cases, TableSink, Clock], sim: SwitchSimulator
) -> None:
    """Item 2: no silent automatic confirmation: a SIM-box finding opens a case a person
    decides, unless the operator configured auto_confirm_probe_outcomes."""
    cases_, _sink, _clock = env
    finding = Evidence("probe_finding", "f-1", {"outcome": "simbox"})
    case = await cases_.open(
        source=Source.DETECTION_SIMBOX, numbers=[OTHER], received_at=FRIDAY, evidence=[finding]
    )
    assert case.state is State.NEW and OTHER not in sim.state
    assert case.flags == ("subscriber_unknown",)  # OTHER is in no registry: flagged, not guessed


async def test_auto_confirm_is_an_explicit_recorded_policy(
    store: Store, sim: SwitchSimulator, registry: Registry
) -> None:
    policy = Policy(auto_confirm_probe_outcomes=frozenset({"simbox"}))
    async with HttpSwitch(sim.url, "tok", timeout=2.0) as switch:
        cases_ = Cases(
            store, KzCalendar(), switch=switch, registry=registry, reports=TableSink(),
            policy=policy, clock=Clock(FRIDAY),
        )  # fmt: skip
        finding = Evidence("probe_finding", "f-1", {"outcome": "simbox"})
        case = await cases_.open(
            source=Source.DETECTION_SIMBOX, numbers=[OTHER], received_at=FRIDAY,
            evidence=[finding],
        )  # fmt: skip
        assert case.state is State.SUSPENDED and sim.state[OTHER] == "blocked"
        assert "auto_confirmed" in case.flags
        confirm = next(t for t in case.transitions if t.action == "confirm")
        assert confirm.actor == "policy:auto_confirm"
        assert "operator policy" in confirm.reason and "simbox" in confirm.reason
        weak = Evidence("probe_finding", "f-2", {"outcome": "cli_missing"})
        other = await cases_.open(
            source=Source.DETECTION_SIMBOX, numbers=[MINE[0]], received_at=FRIDAY,
            evidence=[weak],
        )  # fmt: skip
        assert other.state is State.NEW


async def test_suspending_the_holders_other_numbers_is_a_policy_with_its_reason(
    store: Store, sim: SwitchSimulator, registry: Registry
) -> None:
    """Item 2: point 120 suspends this number; the subscriber's others only when the operator
    says so, with the reason recorded and the case flagged."""
    with pytest.raises(ValueError, match="suspend_scope_reason"):
        Policy(suspend_scope=SuspendScope.SUBSCRIBER)
    policy = Policy(
        suspend_scope=SuspendScope.SUBSCRIBER, suspend_scope_reason="board decision 12/2026"
    )
    async with HttpSwitch(sim.url, "tok", timeout=2.0) as switch:
        cases_ = Cases(
            store, KzCalendar(), switch=switch, registry=registry, reports=TableSink(),
            policy=policy, clock=Clock(FRIDAY),
        )  # fmt: skip
        case = await cases_.open(source="complaint", numbers=[MINE[0]], received_at=FRIDAY)
        await cases_.start_verification(case.id, ANALYST)
        done = await cases_.confirm(case.id, ANALYST, "smishing confirmed")
    assert done.state is State.SUSPENDED and "subscriber_scope" in done.flags
    assert all(sim.state[n] == "blocked" for n in MINE)
    suspend = done.transitions[-1]
    assert suspend.action == "suspend" and "board decision 12/2026" in suspend.reason


async def test_the_opened_case_is_what_the_database_holds(
    env: tuple[Cases, TableSink, Clock], store: Store
) -> None:
    """open() builds its answer from what it wrote, without reading back: it must be exactly
    what get() reads (evidence deduplicated and sorted, JSON round trip, the alert's payload)."""
    cases_, _sink, _clock = env
    evidence = [
        Evidence("message", "msg-9", {"blocked_messages": 3, "rules": ("a", "b")}),
        Evidence("complaint", "cmp-2", {"channel": "1490"}),
        Evidence("message", "msg-9", {"blocked_messages": 4}),  # same (kind, ref): kept once
    ]
    opened = await cases_.open(
        source="detection_sms", numbers=[MINE[1], MINE[1], MINE[0]], received_at=FRIDAY,
        evidence=evidence, external_id="number:" + MINE[1], actor=ANALYST, reason="seen",
    )  # fmt: skip
    assert opened == await cases_.get(opened.id)
    assert [e["ref"] for e in opened.evidence] == ["cmp-2", "msg-9"]
    assert opened.evidence[1]["blocked_messages"] == 3
    assert opened.transitions[0].evidence[0]["attrs"]["rules"] == ["a", "b"]
    async with store.engine.connect() as conn:
        [payload] = (await conn.execute(sa.select(alerts.c.payload))).scalars().all()
    assert payload["case_id"] == opened.id and payload["event"] == "opened"
    assert payload["state"] == "new" and len(payload["numbers"]) == 2


async def test_open_many_is_open_for_each_request_in_one_call(
    env: tuple[Cases, TableSink, Clock], store: Store
) -> None:
    """The workflow's batch: each request gets what open() would give it, in order; a request
    naming a case already open (or one earlier in the same batch) gets that case, unchanged,
    and opens nothing; one 'opened' alert per case actually opened."""
    cases_, _sink, _clock = env
    before = await cases_.open(
        source="detection_sms", numbers=[MINE[0]], received_at=FRIDAY, external_id="number:a"
    )
    msg = [Evidence("message", "msg-1", {"blocked_messages": 2})]
    batch = [
        OpenRequest("detection_sms", [MINE[1]], FRIDAY, msg, external_id="number:b"),
        OpenRequest("detection_sms", [MINE[0]], FRIDAY + 5, msg, external_id="number:a"),
        OpenRequest("detection_sms", [OTHER], FRIDAY, msg, external_id="number:c"),
        OpenRequest("detection_sms", [MINE[1]], FRIDAY + 9, (), external_id="number:b"),
    ]
    out = await cases_.open_many(batch)
    assert [v.external_id for v in out] == ["number:b", "number:a", "number:c", "number:b"]
    assert out[1] == before and out[3] == out[0]
    assert out[0].person_id == before.person_id is not None and out[2].person_id is None
    for view in out:
        assert view == await cases_.get(view.id)
    assert await count(store, cases) == 3
    async with store.engine.connect() as conn:
        events = (await conn.execute(sa.select(alerts.c.payload))).scalars().all()
    assert sorted(p["case_id"] for p in events) == sorted({before.id, out[0].id, out[2].id})
    assert await cases_.open_many([]) == []
    with pytest.raises(ValueError):
        await cases_.open_many([batch[0], OpenRequest("complaint", [], FRIDAY)])
    assert await count(store, cases) == 3  # a bad request opens none of its batch


async def test_duplicate_centre_report_opens_one_case(
    env: tuple[Cases, TableSink, Clock], store: Store
) -> None:
    cases_, _sink, _clock = env
    first = await cases_.open(
        source="centre", numbers=[MINE[0]], received_at=FRIDAY, external_id="nb-42"
    )
    second = await cases_.open(
        source="centre", numbers=[MINE[0]], received_at=FRIDAY + 60, external_id="nb-42"
    )
    assert second.id == first.id and second.received_at == FRIDAY
    assert await count(store, cases) == 1


async def test_sink_failure_rolls_back_report_and_transition(
    env: tuple[Cases, TableSink, Clock], store: Store
) -> None:
    cases_, sink, _clock = env
    case = await cases_.open(source="complaint", numbers=[MINE[0]], received_at=FRIDAY)
    await cases_.start_verification(case.id, ANALYST)
    before = (await count(store, case_transitions), await count(store, alerts))
    sink.fail = True
    with pytest.raises(RuntimeError, match="sink failed"):
        await cases_.confirm(case.id, ANALYST, "confirmed")
    assert await reports(store) == []
    assert (await cases_.get(case.id)).state is State.VERIFYING
    assert (await count(store, case_transitions), await count(store, alerts)) == before


# -- the state table ----------------------------------------------------------------------------


async def test_state_table(env: tuple[Cases, TableSink, Clock], store: Store) -> None:
    """Every (state, action) pair: allowed ones move to the table's state, the others raise
    IllegalTransition naming both and write nothing."""
    cases_, _sink, _clock = env
    for state, action in itertools.product(State, Action):
        case = await cases_.open(source="complaint", numbers=[OTHER], received_at=FRIDAY)
        async with store.engine.begin() as conn:
            await conn.execute(
                cases.update().where(cases.c.id == case.id).values(state=state.value)
            )
        before = (await count(store, case_transitions), await count(store, alerts))
        allowed = TRANSITIONS.get((state, action))
        if allowed is None:
            with pytest.raises(IllegalTransition) as info:
                await cases_._transition(case.id, action, ANALYST, "try", [])
            assert state.value in str(info.value) and action.value in str(info.value)
            after = (await count(store, case_transitions), await count(store, alerts))
            assert after == before
            assert (await cases_.get(case.id)).state is state
        else:
            done = await cases_._transition(case.id, action, ANALYST, "try", [])
            assert done.state is allowed.to
            assert done.transitions[-1].action == action.value
    assert len(TRANSITIONS) == 12


async def test_public_methods_refuse_illegal_steps(env: tuple[Cases, TableSink, Clock]) -> None:
    cases_, _sink, _clock = env
    case = await cases_.open(source="complaint", numbers=[OTHER], received_at=FRIDAY)
    for call in (
        cases_.confirm(case.id, ANALYST, "x"),
        cases_.suspend(case.id, ANALYST, "x"),
        cases_.unblock(case.id, ANALYST, "x"),
        cases_.reopen(case.id, ANALYST, "x"),
    ):
        with pytest.raises(IllegalTransition, match="state new"):
            await call
    assert len((await cases_.get(case.id)).transitions) == 1


# -- deadlines and restarts ---------------------------------------------------------------------


def almaty(day: int, hour: int, minute: int = 0) -> float:
    """An Almaty time in the week of the test cases (November 2025)."""
    return dt.datetime(2025, 11, day, hour, minute, tzinfo=ALMATY).timestamp()


async def test_deadline_reminders_in_working_hours_repeated_and_escalated(
    db_url: str, env: tuple[Cases, TableSink, Clock], store: Store
) -> None:
    """Item 6: a warning on the due day within working hours (not at 19:59), an overdue alert
    to the supervisors at once, then again through each working day while overdue; each
    reminder once, across restarts; the daemon down for hours sends the latest only."""
    cases_, _sink, _clock = env
    case = await cases_.open(source="complaint", numbers=[MINE[0]], received_at=FRIDAY)
    assert case.verify_by == TUESDAY_END
    steps = [
        (almaty(17, 12), 0),  # Monday: nothing yet
        (almaty(18, 8, 59), 0),  # Tuesday before working hours
        (almaty(18, 9, 0), 1),  # the warning, to the analysts
        (almaty(18, 17, 0), 0),
        (TUESDAY_END + 60, 1),  # overdue at once, to the supervisors
        (almaty(19, 8, 0), 0),  # no repeats at night
        (almaty(19, 9, 0), 1),  # Wednesday: the start of working hours
        (almaty(19, 10, 0), 0),
        (almaty(19, 19, 0), 1),  # down since 10:00: 12:00 and 15:00 missed, one sent
        (almaty(19, 22, 0), 0),
    ]
    for at, expected in steps:
        assert await cases_.deadline_alerts(at) == expected, dt.datetime.fromtimestamp(at, ALMATY)
    counts = await cases_.deadline_counts(almaty(19, 22, 0))
    assert counts == {"overdue": 1, "due_today": 0, "due_next": 0}
    assert [c.id for c in await cases_.at_risk(almaty(19, 22, 0))] == [case.id]
    async with await Store.open(db_url) as again:  # a restart: what was sent is remembered
        other = Cases(
            again, KzCalendar(), switch=cases_.switch, registry=cases_.registry, reports=None,
            policy=Policy(),
        )  # fmt: skip
        assert await other.deadline_alerts(almaty(19, 22, 30)) == 0
    pending = [a for a in await store.pending_alerts(100) if a.kind.value == "deadline"]
    assert [(a.payload["stage"], a.payload["repeat"], a.payload["audience"]) for a in pending] == [
        ("warning", 0, "analysts"),
        ("overdue", 0, "supervisors"),
        ("overdue", 1, "supervisors"),
        ("overdue", 3, "supervisors"),
    ]
    validator = Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    for a in await store.pending_alerts(100):
        assert_no_personal_data(a.payload)
        assert MINE[0] not in str(a.payload) and IIN not in str(a.payload)
        validator.validate(alert_message(a))  # case and deadline alerts as docs/mqtt.md says
    assert pending[0].payload["numbers"] == ["+7701***4567"]


async def test_deadline_counts_split_today_and_the_next_working_day(
    env: tuple[Cases, TableSink, Clock],
) -> None:
    cases_, _sink, _clock = env
    await cases_.open(source="complaint", numbers=[MINE[0]], received_at=FRIDAY)  # due Tue
    monday = almaty(17, 10)
    await cases_.open(source="complaint", numbers=[MINE[1]], received_at=monday)  # due Wed
    assert await cases_.deadline_counts(almaty(17, 12)) == {
        "overdue": 0, "due_today": 0, "due_next": 1,
    }  # fmt: skip
    assert await cases_.deadline_counts(almaty(18, 12)) == {
        "overdue": 0, "due_today": 1, "due_next": 1,
    }  # fmt: skip


async def test_restart_keeps_state_and_deadlines(
    db_url: str, env: tuple[Cases, TableSink, Clock], sim: SwitchSimulator, registry: Registry
) -> None:
    cases_, _sink, _clock = env
    case = await cases_.open(source="complaint", numbers=[MINE[0]], received_at=FRIDAY)
    await cases_.start_verification(case.id, ANALYST)
    await sim.down()
    before = await cases_.confirm(case.id, ANALYST, "confirmed")
    await sim.start()
    async with await Store.open(db_url) as again, HttpSwitch(sim.url, "tok") as switch:
        fresh = Cases(again, KzCalendar(), switch=switch, registry=Registry(again), reports=None)
        after = await fresh.get(case.id)
        assert after == before
        assert (after.verify_by, after.act_by) == (before.verify_by, before.act_by)
        [done] = await fresh.retry_pending()
        assert done.state is State.SUSPENDED


async def test_list_and_filters(env: tuple[Cases, TableSink, Clock]) -> None:
    cases_, _sink, _clock = env
    a = await cases_.open(source="complaint", numbers=[MINE[0]], received_at=FRIDAY)
    b = await cases_.open(source="centre", numbers=[OTHER], received_at=FRIDAY + 1)
    from gateway.cases import CaseFilter

    assert [c.id for c in await cases_.list()] == [b.id, a.id]
    assert [c.id for c in await cases_.list(CaseFilter(source=Source.CENTRE))] == [b.id]
    assert [c.id for c in await cases_.list(CaseFilter(number=MINE[0]))] == [a.id]
    assert await cases_.list(CaseFilter(states=[State.CLOSED])) == []


def test_cli_list_show_confirm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from gateway.cli import main

    url = sqlite_url(tmp_path / "data")
    me = pwd.getpwuid(os.geteuid()).pw_name
    stranger = tmp_path / "stranger.toml"
    stranger.write_text(f'[store]\nurl = "{url}"\n')
    config = tmp_path / "fraudgate.toml"
    config.write_text(
        f'[store]\nurl = "{url}"\n[cli.users]\n"{me}" = {{ user_id = "u1", role = "analyst" }}\n'
    )

    async def seed() -> str:
        async with await Store.open(url) as st:
            await st.migrate()
            reg = Registry(st)
            sim_less = Cases(st, KzCalendar(), switch=_Down(), registry=reg, reports=None)
            case = await sim_less.open(source="complaint", numbers=[OTHER], received_at=FRIDAY)
            return case.id

    case_id = asyncio.run(seed())
    assert main(["cases", "-c", str(config), "list"]) == 0
    out = capsys.readouterr().out
    assert case_id in out and "+7778***4567" in out and OTHER not in out
    # a caller the configuration does not know decides nothing
    assert main(["cases", "-c", str(stranger), "verify", case_id, "--reason", "r"]) == 2
    capsys.readouterr()
    args = ["cases", "-c", str(config), "confirm", case_id, "--reason", "smishing"]
    assert main(args) == 1  # a new case is verified first
    assert "cannot confirm a case in state new" in capsys.readouterr().err
    verify = ["cases", "-c", str(config), "verify", case_id, "--reason", "call"]
    assert main(verify) == 0 and "verifying" in capsys.readouterr().out
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "confirmed" in out and "[unavailable]" in out and OTHER not in out
    assert "u1 (analyst) confirm" in out
    assert main(["cases", "-c", str(config), "show", "nope"]) == 1


class _Down:
    async def block(self, msisdn: str, **_: Any) -> Any:
        raise AssertionError("not called")

    unblock = block

    async def status(self, msisdn: str) -> str:
        return "unknown"
