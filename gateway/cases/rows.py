"""Reading cases from rows and writing the rows a transition adds (SQLAlchemy Core)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.alerts.payloads import iso_utc, mask_msisdn
from gateway.domain import Alert, AlertKind
from gateway.ids import new_id
from gateway.store.models import alerts
from gateway.store.models_cases import (
    case_deadline_alerts,
    case_evidence,
    case_switch_actions,
    case_transitions,
    cases,
)
from gateway.store.models_centre import centre_reports

from .model import (
    Actor,
    CaseFilter,
    CaseView,
    Evidence,
    Source,
    State,
    SwitchActionView,
    TransitionRecord,
)


def insert_for(conn: AsyncConnection | sa.Connection) -> Any:
    """The dialect's INSERT (for ON CONFLICT DO NOTHING on both databases)."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def case_view(row: Any) -> CaseView:
    return CaseView(
        id=row.id,
        source=Source(row.source),
        state=State(row.state),
        numbers=tuple(row.subjects),
        person_id=row.person_id,
        external_id=row.external_id,
        received_at=row.received_at,
        verify_by=row.verify_by,
        decided_at=row.decided_at,
        act_by=row.act_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
        facts_at=row.facts_at,
        sender=row.sender,
        flags=tuple(row.flags or ()),
    )


DECISIONS = ("confirm", "reject", "unblock")  # the transitions whose reason a report quotes


async def load_case(conn: AsyncConnection, case_id: str) -> CaseView | None:
    row = (await conn.execute(sa.select(cases).where(cases.c.id == case_id))).first()
    if row is None:
        return None
    view = case_view(row)
    history = await _transitions(conn, case_id)
    reason = next((t.reason for t in reversed(history) if t.action in DECISIONS), "")
    return dataclasses.replace(
        view,
        evidence=await _evidence(conn, case_id),
        transitions=history,
        switch_actions=await _switch_actions(conn, case_id),
        decision_reason=reason,
    )


def case_values(case: CaseView) -> dict[str, Any]:
    """The cases row of a case just opened."""
    return {
        "id": case.id,
        "source": case.source.value,
        "state": case.state.value,
        "subjects": list(case.numbers),
        "person_id": case.person_id,
        "external_id": case.external_id,
        "received_at": case.received_at,
        "facts_at": case.facts_at,
        "sender": case.sender,
        "flags": list(case.flags) or None,
        "verify_by": case.verify_by,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "version": case.version,
    }


def insert_cases(
    conn: sa.Connection,
    opening: Sequence[tuple[CaseView, Actor, str, Sequence[Evidence]]],
    at: float,
) -> set[str]:
    """Insert the cases of `opening`, skipping each whose (source, external_id) is open
    already, and for those inserted their opening transitions (R8), evidence and 'opened'
    alerts: one INSERT per table, no await between them (Store.write). Returns the ids
    inserted."""
    if not opening:
        return set()
    stmt = insert_for(conn)(cases).values([case_values(v) for v, *_ in opening])
    stmt = stmt.on_conflict_do_nothing().returning(cases.c.id)
    inserted = {str(i) for i in conn.execute(stmt).scalars()}
    opened = [o for o in opening if o[0].id in inserted]
    if not opened:
        return inserted
    conn.execute(
        case_transitions.insert(),
        [
            {
                "id": new_id(),
                "case_id": case.id,
                "seq": 1,
                "from_state": None,
                "action": "open",
                "to_state": State.NEW.value,
                "actor": actor.id,
                "role": actor.role,
                "at": at,
                "reason": reason,
                "evidence": [e.as_json() for e in evidence],
            }
            for case, actor, reason, evidence in opened
        ],
    )
    evidence_rows = [
        _evidence_row(case.id, e, actor, at) for case, actor, _, ev in opened for e in ev
    ]
    if evidence_rows:
        conn.execute(insert_for(conn)(case_evidence).on_conflict_do_nothing(), evidence_rows)
    alerts_ = [Alert(AlertKind.CASE, case_payload(c) | {"event": "opened"}, at) for c, *_ in opened]
    conn.execute(alerts.insert(), [_alert_row(a) for a in alerts_])
    return inserted


def opened_view(
    case: CaseView, actor: Actor, reason: str, evidence: Sequence[Evidence]
) -> CaseView:
    """What load_case reads back after add_transition(seq=1, action="open") at created_at:
    the evidence as JSON stores it, one row per (kind, ref), in the order load_case sorts."""
    at = case.created_at
    stored = _as_stored([e.as_json() for e in evidence])
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for e in stored:
        first.setdefault((e["kind"], e["ref"]), e)
    opened = TransitionRecord(
        seq=1,
        from_state=None,
        action="open",
        to_state=State.NEW,
        actor=actor.id,
        role=actor.role,
        at=at,
        reason=reason,
        evidence=tuple(stored),
    )
    return dataclasses.replace(
        case,
        evidence=tuple(
            {**e["attrs"], "kind": kind, "ref": ref, "at": at}
            for (kind, ref), e in sorted(first.items(), key=lambda item: item[0])
        ),
        transitions=(opened,),
    )


def _as_stored(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A JSON column's round trip (tuples become lists, keys strings)."""
    result: list[dict[str, Any]] = json.loads(json.dumps(value))
    return result


async def _transitions(conn: AsyncConnection, case_id: str) -> tuple[TransitionRecord, ...]:
    rows = await conn.execute(
        sa.select(case_transitions)
        .where(case_transitions.c.case_id == case_id)
        .order_by(case_transitions.c.seq)
    )
    return tuple(
        TransitionRecord(
            seq=r.seq,
            from_state=State(r.from_state) if r.from_state else None,
            action=r.action,
            to_state=State(r.to_state),
            actor=r.actor,
            role=r.role,
            at=r.at,
            reason=r.reason,
            evidence=tuple(r.evidence),
        )
        for r in rows
    )


async def _evidence(conn: AsyncConnection, case_id: str) -> tuple[dict[str, Any], ...]:
    rows = await conn.execute(
        sa.select(case_evidence)
        .where(case_evidence.c.case_id == case_id)
        .order_by(case_evidence.c.added_at, case_evidence.c.kind, case_evidence.c.ref)
    )
    return tuple({**r.attrs, "kind": r.kind, "ref": r.ref, "at": r.added_at} for r in rows)


async def _switch_actions(conn: AsyncConnection, case_id: str) -> tuple[SwitchActionView, ...]:
    t = case_switch_actions
    rows = await conn.execute(
        sa.select(t).where(t.c.case_id == case_id).order_by(t.c.round, t.c.action, t.c.msisdn)
    )
    return tuple(
        SwitchActionView(
            id=r.id,
            round=r.round,
            action=r.action,
            msisdn=r.msisdn,
            status=r.status,
            attempts=r.attempts,
            done_at=r.done_at,
            requested_by=r.requested_by,
            reason=r.reason,
            answer=r.answer,
            last_error=r.last_error,
            error_kind=r.error_kind,
        )
        for r in rows
    )


async def add_transition(
    conn: AsyncConnection,
    case: CaseView,
    *,
    seq: int,
    action: str,
    to: State,
    actor: Actor,
    reason: str,
    evidence: Sequence[Evidence],
    at: float,
) -> None:
    """The audit row of a state change (R8) and the evidence it brings."""
    await conn.execute(
        case_transitions.insert().values(
            id=new_id(),
            case_id=case.id,
            seq=seq,
            from_state=None if seq == 1 else case.state.value,
            action=action,
            to_state=to.value,
            actor=actor.id,
            role=actor.role,
            at=at,
            reason=reason,
            evidence=[e.as_json() for e in evidence],
        )
    )
    await add_evidence(conn, case.id, evidence, actor, at)


async def add_evidence(
    conn: AsyncConnection, case_id: str, evidence: Sequence[Evidence], actor: Actor, at: float
) -> None:
    if not evidence:
        return
    stmt = insert_for(conn)(case_evidence).on_conflict_do_nothing()
    await conn.execute(stmt, [_evidence_row(case_id, e, actor, at) for e in evidence])


def _evidence_row(case_id: str, e: Evidence, actor: Actor, at: float) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "kind": e.kind,
        "ref": e.ref,
        "attrs": dict(e.attrs),
        "added_at": at,
        "added_by": actor.id,
    }


def case_payload(case: CaseView) -> dict[str, object]:
    """What an MQTT alert says about a case: no person, numbers masked (R7)."""
    return {
        "case_id": case.id,
        "source": case.source.value,
        "state": case.state.value,
        "numbers": [mask_msisdn(n) for n in case.numbers],
        "flags": list(case.flags),
        "received_at": iso_utc(case.received_at),
        "verify_by": iso_utc(case.verify_by),
        "act_by": iso_utc(case.act_by) if case.act_by is not None else None,
    }


async def add_alert(
    conn: AsyncConnection, kind: AlertKind, payload: dict[str, object], at: float
) -> str:
    """An alert row in the outbox, in the caller's transaction (published by the dispatcher)."""
    alert = Alert(kind, payload, created_at=at)
    await conn.execute(alerts.insert().values(_alert_row(alert)))
    return alert.id


def _alert_row(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "kind": alert.kind.value,
        "payload": alert.payload,
        "created_at": alert.created_at,
        "sent_at": None,
        "attempts": 0,
        "last_error": None,
        "failed_at": None,
    }


# -- queries and updates the service runs (it owns the transactions, this module the SQL) -------


def cases_query(f: CaseFilter) -> sa.Select[Any]:
    """Cases newest first, by state and source (the number is matched by the caller)."""
    query = sa.select(cases).order_by(cases.c.received_at.desc()).limit(f.limit)
    if f.states:
        query = query.where(cases.c.state.in_([s.value for s in f.states]))
    if f.source is not None:
        query = query.where(cases.c.source == f.source.value)
    return query


def queue_query(
    f: CaseFilter, verify_states: Iterable[State], act_states: Iterable[State]
) -> sa.Select[Any]:
    """Cases by urgency: those with a running deadline first, the earliest deadline first
    (verify_by in the verify states, act_by in the act states), then the others newest first;
    by state and source as `cases_query`. The limit cuts the least urgent, never an overdue."""
    due = sa.case(
        (cases.c.state.in_([s.value for s in verify_states]), cases.c.verify_by),
        (cases.c.state.in_([s.value for s in act_states]), cases.c.act_by),
        else_=sa.null(),
    )
    query = sa.select(cases).order_by(due.is_(None), due, cases.c.received_at.desc())
    query = query.limit(f.limit)
    if f.states:
        query = query.where(cases.c.state.in_([s.value for s in f.states]))
    if f.source is not None:
        query = query.where(cases.c.source == f.source.value)
    return query


def running_query(
    until: float, verify_states: Iterable[State], act_states: Iterable[State]
) -> sa.Select[Any]:
    """Cases whose running deadline (verify_by / act_by) falls before `until`."""
    verify = sa.and_(
        cases.c.state.in_([s.value for s in verify_states]), cases.c.verify_by <= until
    )
    act = sa.and_(cases.c.state.in_([s.value for s in act_states]), cases.c.act_by <= until)
    return sa.select(cases).where(sa.or_(verify, act)).order_by(cases.c.received_at)


def _running_where(
    lo: float | None, hi: float, verify_states: Iterable[State], act_states: Iterable[State]
) -> Any:
    """A case whose running deadline falls in (lo, hi] (lo None: any time up to hi)."""

    def within(column: Any) -> Any:
        return column <= hi if lo is None else sa.and_(column > lo, column <= hi)

    verify = sa.and_(cases.c.state.in_([s.value for s in verify_states]), within(cases.c.verify_by))
    act = sa.and_(cases.c.state.in_([s.value for s in act_states]), within(cases.c.act_by))
    return sa.or_(verify, act)


async def count_running(
    conn: AsyncConnection,
    lo: float | None,
    hi: float,
    verify_states: Iterable[State],
    act_states: Iterable[State],
) -> int:
    query = sa.select(sa.func.count()).where(_running_where(lo, hi, verify_states, act_states))
    return int((await conn.execute(query)).scalar_one())


async def unreported_detections(conn: AsyncConnection, limit: int = 200) -> list[str]:
    """Own detections (sms, simbox) still being verified with no detection report queued."""
    r = centre_reports
    reported = sa.select(r.c.case_id).where(r.c.kind == "detection")
    query = (
        sa.select(cases.c.id)
        .where(
            cases.c.source.in_([Source.DETECTION_SMS.value, Source.DETECTION_SIMBOX.value]),
            cases.c.state.in_([State.NEW.value, State.VERIFYING.value]),
            cases.c.id.not_in(reported),
        )
        .order_by(cases.c.received_at)
        .limit(limit)
    )
    return [str(i) for i in (await conn.execute(query)).scalars()]


async def views(conn: AsyncConnection, query: sa.Select[Any]) -> list[CaseView]:
    return [case_view(r) for r in await conn.execute(query)]


async def owed_by_switch(conn: AsyncConnection) -> list[tuple[str, State]]:
    """Confirmed cases not yet suspended, and suspended (or closed) ones with unblocks
    pending."""
    a = case_switch_actions
    query = sa.select(cases.c.id, cases.c.state).where(
        sa.or_(
            cases.c.state == State.CONFIRMED.value,
            sa.and_(
                cases.c.state.in_([State.SUSPENDED.value, State.CLOSED.value]),
                cases.c.id.in_(
                    sa.select(a.c.case_id).where(a.c.status == "pending", a.c.action == "unblock")
                ),
            ),
        )
    )
    return [(r.id, State(r.state)) for r in await conn.execute(query)]


async def case_id_by_external(conn: AsyncConnection, source: str, external_id: str) -> str | None:
    query = sa.select(cases.c.id).where(
        cases.c.source == source, cases.c.external_id == external_id
    )
    found = (await conn.execute(query)).scalar_one_or_none()
    return None if found is None else str(found)


async def plan_actions(
    conn: AsyncConnection,
    planned: Sequence[dict[str, Any]],
    *,
    case_id: str,
    round_: int,
    action: str,
    retry_rejected: bool,
) -> None:
    """Switch action rows for a round (kept if there: their id is the idempotency key); the
    round's rejected ones pending again when asked."""
    t = case_switch_actions
    stmt = insert_for(conn)(t).on_conflict_do_nothing()
    for row in planned:
        await conn.execute(stmt, [row])
    if retry_rejected:
        await conn.execute(
            t.update()
            .where(t.c.case_id == case_id, t.c.round == round_, t.c.action == action)
            .where(t.c.status == "rejected")
            .values(status="pending")
        )


async def switch_done(conn: AsyncConnection, key: str, answer: dict[str, Any], now: float) -> None:
    t = case_switch_actions
    await conn.execute(
        t.update()
        .where(t.c.id == key)
        .values(
            status="done",
            answer=answer,
            done_at=now,
            attempts=t.c.attempts + 1,
            last_error=None,
            error_kind=None,
        )
    )


async def switch_failed(conn: AsyncConnection, key: str, kind: str, error: str) -> str | None:
    """Record a failed switch call ("rejected" or "unavailable": the latter stays pending);
    returns the kind of the action's previous failure, if any."""
    t = case_switch_actions
    before = (
        await conn.execute(sa.select(t.c.error_kind).where(t.c.id == key))
    ).scalar_one_or_none()
    await conn.execute(
        t.update()
        .where(t.c.id == key, t.c.status != "done")  # a concurrent call of the same key won
        .values(
            status="rejected" if kind == "rejected" else "pending",
            attempts=t.c.attempts + 1,
            last_error=error[:2000],
            error_kind=kind,
        )
    )
    return None if before is None else str(before)


async def move_case(
    conn: AsyncConnection, case_id: str, version: int, values: dict[str, Any]
) -> bool:
    """The case's new state and dates, if it is still at `version` (False: it moved)."""
    result = await conn.execute(
        cases.update()
        .where(cases.c.id == case_id, cases.c.version == version)
        .values({**values, "version": cases.c.version + 1})
    )
    return bool(result.rowcount == 1)


async def hold_case(conn: AsyncConnection, case_id: str, version: int) -> bool:
    """Lock the case's row for the rest of the transaction if it is still at `version` (its
    values unchanged); False when it moved on."""
    result = await conn.execute(
        cases.update()
        .where(cases.c.id == case_id, cases.c.version == version)
        .values(version=cases.c.version)
    )
    return bool(result.rowcount == 1)


async def claim_deadline_alert(
    conn: AsyncConnection, case_id: str, key: str, alert_id: str, now: float
) -> bool:
    """Remember that this deadline alert was queued; False when it was already."""
    stmt = insert_for(conn)(case_deadline_alerts).on_conflict_do_nothing()
    result = await conn.execute(
        stmt.values(case_id=case_id, key=key, alert_id=alert_id, created_at=now)
    )
    return bool(result.rowcount == 1)
