"""Domain values to response bodies, masked or not (R7: minimum exposure).

Masked means: numbers as 7701***4567, no person id, no free text (reasons), evidence without
its attributes, the subscriber's surname as an initial, the IIN as 9001******17.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.alerts.payloads import iso_utc, mask_msisdn
from gateway.cases import CaseView, SwitchActionView, TransitionRecord
from gateway.centre.notices import NoticeRow
from gateway.feedback import Feedback, Scope
from gateway.iin import mask_iin
from gateway.registry import NumberRecord
from gateway.registry import Person as RegistryPerson

from . import schemas
from .audit import AuditEntry


def _time(ts: float | None) -> str | None:
    return None if ts is None else iso_utc(ts)


def _number(n: str, masked: bool) -> str:
    return mask_msisdn(n) if masked else n


def case_summary(case: CaseView, *, masked: bool) -> schemas.CaseSummary:
    running = case.deadline()
    return schemas.CaseSummary(
        id=case.id,
        source=case.source.value,
        state=case.state.value,
        numbers=[_number(n, masked) for n in case.numbers],
        person_id=None if masked else case.person_id,
        external_id=case.external_id,
        received_at=iso_utc(case.received_at),
        verify_by=iso_utc(case.verify_by),
        decided_at=_time(case.decided_at),
        act_by=_time(case.act_by),
        deadline=schemas.Deadline(name=running[0], due=iso_utc(running[1])) if running else None,
        updated_at=iso_utc(case.updated_at),
        version=case.version,
        facts_at=_time(case.facts_at),
        sender=case.sender,
        flags=list(case.flags),
    )


def centre_notice(r: NoticeRow) -> schemas.CentreNotice:
    return schemas.CentreNotice(
        id=r.id, kind=r.kind, case_id=r.case_id, round=r.round, revision=r.revision,
        status=r.status, created_at=iso_utc(r.created_at), attempts=r.attempts,
        acked_at=_time(r.acked_at), last_error=r.last_error, resolved_by=r.resolved_by,
        resolution=r.resolution, superseded_by=r.superseded_by,
    )  # fmt: skip


def case_detail(case: CaseView, *, masked: bool) -> schemas.CaseDetail:
    summary = case_summary(case, masked=masked)
    return schemas.CaseDetail(
        **summary.model_dump(),
        evidence=[_evidence(e, masked) for e in case.evidence],
        transitions=[_transition(t, masked) for t in case.transitions],
        switch_actions=[_switch(a, masked) for a in case.switch_actions],
        decision_reason=None if masked else case.decision_reason,
    )


def _evidence(e: dict[str, Any], masked: bool) -> dict[str, Any]:
    if not masked:
        return {**e, "at": _time(e.get("at"))} if "at" in e else dict(e)
    return {"kind": e.get("kind"), "ref": e.get("ref"), "at": _time(e.get("at"))}


def _transition(t: TransitionRecord, masked: bool) -> schemas.Transition:
    return schemas.Transition(
        seq=t.seq,
        from_state=t.from_state.value if t.from_state else None,
        action=t.action,
        to_state=t.to_state.value,
        actor=t.actor,
        role=t.role,
        at=iso_utc(t.at),
        reason=None if masked else t.reason,
        evidence=None if masked else [dict(e) for e in t.evidence],
    )


def _switch(a: SwitchActionView, masked: bool) -> schemas.SwitchAction:
    return schemas.SwitchAction(
        round=a.round,
        action=a.action,
        msisdn=_number(a.msisdn, masked),
        status=a.status,
        attempts=a.attempts,
        error_kind=a.error_kind,
    )


def subscriber(
    holder: RegistryPerson, numbers: Sequence[NumberRecord], *, masked: bool
) -> schemas.Subscriber:
    return schemas.Subscriber(
        masked=masked,
        person=person(holder, masked),
        numbers=[
            schemas.NumberOut(
                msisdn=_number("+" + n.msisdn, masked),
                status=n.status,
                contract_date=None if masked else n.contract_date,
            )
            for n in numbers
        ],
    )


def person(p: RegistryPerson, masked: bool) -> schemas.Person:
    """A registry person as the API shows it: masked (initial, IIN 9001******17) or whole."""
    if masked:
        initial = f"{p.surname[:1]}." if p.surname else ""
        return schemas.Person(
            id=None, surname=initial, name=p.name, patronymic=None, iin=mask_iin(p.iin)
        )
    return schemas.Person(
        id=p.id, surname=p.surname, name=p.name, patronymic=p.patronymic or None, iin=p.iin
    )


def audit_row(e: AuditEntry) -> schemas.AuditRow:
    return schemas.AuditRow(
        id=e.id,
        at=iso_utc(e.at),
        user_id=e.user_id,
        role=e.role,
        action=e.action,
        target_kind=e.target_kind,
        target=e.target,
        personal_data=e.personal_data,
        client=e.client,
    )


def feedback(f: Feedback, *, masked: bool, now: float) -> schemas.FeedbackOut:
    return schemas.FeedbackOut(
        id=f.id,
        message_id=f.message_id,
        verdict=f.verdict.value,
        label=f.label.value,
        scope=f.scope.value,
        key=_feedback_key(f, masked),
        decision=f.decision.value,
        rules=list(f.rules),
        reason=None if masked else f.reason,
        actor=f.actor,
        role=f.role,
        created_at=iso_utc(f.created_at),
        expires_at=_time(f.expires_at),
        in_force=f.in_force(now),
        revoked_at=_time(f.revoked_at),
        revoked_by=f.revoked_by,
        revoke_reason=None if masked else f.revoke_reason,
    )


def _feedback_key(f: Feedback, masked: bool) -> str | None:
    """A sender key names a number (`<bind>/<address>`): its address masked like any number."""
    if f.key is None or not masked or f.scope is not Scope.SENDER:
        return f.key
    bind, _, address = f.key.rpartition("/")
    return f"{bind}/{mask_msisdn(address)}"
