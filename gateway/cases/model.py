"""Cases: the state table, the values the service hands out, the ports it depends on.

The workflow of points 119-120 (R4, R5, R8) is ONE table, `TRANSITIONS`:
(state, action) -> (new state, effects). A pair not in the table is an IllegalTransition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection


class State(StrEnum):
    NEW = "new"
    VERIFYING = "verifying"
    CONFIRMED = "confirmed"
    NOT_CONFIRMED = "not_confirmed"
    SUSPENDED = "suspended"
    UNBLOCKED = "unblocked"
    CLOSED = "closed"
    REOPENED = "reopened"


class Action(StrEnum):
    START_VERIFICATION = "start_verification"
    CONFIRM = "confirm"
    REJECT = "reject"  # not confirmed
    SUSPEND = "suspend"  # only once the switch has blocked every number
    UNBLOCK = "unblock"  # only once the switch has unblocked every number
    CLOSE = "close"  # from confirmed only when no number of the case can be suspended here
    REOPEN = "reopen"  # on appeal


class Effect(StrEnum):
    """What a transition does besides changing the state, in the same transaction."""

    VERIFY_DEADLINE = "verify_deadline"  # verify_by = 2 working days from now (119, R4)
    ACT_DEADLINE = "act_deadline"  # decided_at = now, act_by = 2 working days (120, R5)
    REPORT_DETECTION = "report_detection"  # the centre learns person + ALL numbers (118, R3)
    REPORT_SUSPENDED = "report_suspended"  # the centre learns of the suspension (120)
    REPORT_NOT_CONFIRMED = "report_not_confirmed"  # the centre learns "not confirmed" (120)
    REPORT_UNBLOCKED = "report_unblocked"  # the centre learns the suspension was lifted


@dataclass(frozen=True, slots=True)
class Step:
    to: State
    effects: tuple[Effect, ...] = ()


S, A, E = State, Action, Effect
TRANSITIONS: Mapping[tuple[State, Action], Step] = {
    (S.NEW, A.START_VERIFICATION): Step(S.VERIFYING),
    (S.VERIFYING, A.CONFIRM): Step(S.CONFIRMED, (E.ACT_DEADLINE, E.REPORT_DETECTION)),
    (S.VERIFYING, A.REJECT): Step(S.NOT_CONFIRMED, (E.ACT_DEADLINE, E.REPORT_NOT_CONFIRMED)),
    (S.CONFIRMED, A.SUSPEND): Step(S.SUSPENDED, (E.REPORT_SUSPENDED,)),
    (S.SUSPENDED, A.CLOSE): Step(S.CLOSED),
    (S.NOT_CONFIRMED, A.CLOSE): Step(S.CLOSED),
    (S.CLOSED, A.REOPEN): Step(S.REOPENED, (E.VERIFY_DEADLINE,)),
    (S.REOPENED, A.START_VERIFICATION): Step(S.VERIFYING),
    (S.SUSPENDED, A.UNBLOCK): Step(S.UNBLOCKED, (E.REPORT_UNBLOCKED,)),
    (S.UNBLOCKED, A.CLOSE): Step(S.CLOSED),
    # confirmed, but nothing of this operator's to suspend (an alphanumeric or foreign sender):
    # the service allows it only then (Cases.close); the centre had the detection report
    (S.CONFIRMED, A.CLOSE): Step(S.CLOSED),
    # an appeal against a case closed while its numbers stay suspended: the service allows it
    # only while they are still blocked for this case (Cases.unblock)
    (S.CLOSED, A.UNBLOCK): Step(S.UNBLOCKED, (E.REPORT_UNBLOCKED,)),
}
del S, A, E

# The deadline that runs in each state (the other states owe nothing by law).
VERIFY_STATES = frozenset({State.NEW, State.VERIFYING, State.REOPENED})
ACT_STATES = frozenset({State.CONFIRMED})


class Source(StrEnum):
    DETECTION_SMS = "detection_sms"
    DETECTION_SIMBOX = "detection_simbox"
    COMPLAINT = "complaint"
    CENTRE = "centre"


class CaseError(Exception):
    """A case operation was refused."""


class CaseNotFound(CaseError):
    pass


class IllegalTransition(CaseError):
    """`action` is not allowed in `state` (nothing was written)."""

    def __init__(self, case_id: str, state: State, action: Action) -> None:
        super().__init__(f"case {case_id}: cannot {action.value} a case in state {state.value}")
        self.case_id = case_id
        self.state = state
        self.action = action


class ConcurrentUpdate(CaseError):
    """The case changed under us (another analyst or process): read it again and retry."""


def step(case_id: str, state: State, action: Action) -> Step:
    found = TRANSITIONS.get((state, action))
    if found is None:
        raise IllegalTransition(case_id, state, action)
    return found


@dataclass(frozen=True, slots=True)
class Actor:
    id: str  # a user id, or "system"
    role: str  # analyst, supervisor, system, centre...


SYSTEM = Actor("system", "system")


@dataclass(frozen=True, slots=True)
class Evidence:
    """A link to what a decision rests on. kind: message | probe_finding | complaint |
    centre_report | note; ref: that record's id; attrs: facts the policy reads (outcome,
    confirmed) and a summary for the centre report. No personal data in attrs."""

    kind: str
    ref: str
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "ref": self.ref, "attrs": dict(self.attrs)}


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    seq: int
    from_state: State | None
    action: str
    to_state: State
    actor: str
    role: str
    at: float
    reason: str
    evidence: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class SwitchActionView:
    id: str  # the idempotency key sent to the switch
    round: int  # the seq of the transition (confirm / suspend) this action carries out
    action: str  # block | unblock
    msisdn: str
    status: str  # pending | done | rejected
    attempts: int
    done_at: float | None  # when the switch carried it out (the time reported to the centre)
    answer: dict[str, Any] | None
    last_error: str | None
    error_kind: str | None  # unavailable | rejected
    requested_by: str = ""  # who decided it (a retry carries their decision out)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case as read from the store. Times are epoch seconds (UTC)."""

    id: str
    source: Source
    state: State
    numbers: tuple[str, ...]  # E.164 numbers the case names (may be empty: see `sender`)
    person_id: str | None  # the holder at the time of the facts (registry), when known
    external_id: str | None
    received_at: float  # the legal clock: when fraudgate received the report / detected it
    verify_by: float
    decided_at: float | None
    act_by: float | None
    created_at: float
    updated_at: float
    version: int
    facts_at: float | None = None  # when the facts happened (holder lookup); None: received_at
    sender: str | None = None  # the reported sender when it is no number (alphanumeric), as given
    flags: tuple[str, ...] = ()  # see FLAGS
    # Filled by Cases.get(); empty in list() results.
    evidence: tuple[dict[str, Any], ...] = ()  # {kind, ref, at, ...attrs}
    transitions: tuple[TransitionRecord, ...] = ()
    switch_actions: tuple[SwitchActionView, ...] = ()
    decision_reason: str = ""  # the reason of the latest confirm / reject

    @property
    def facts_time(self) -> float:
        return self.received_at if self.facts_at is None else self.facts_at

    def deadline(self) -> tuple[str, float] | None:
        """The legal deadline running now: ("verify_by", t) or ("act_by", t), else None."""
        if self.state in VERIFY_STATES:
            return "verify_by", self.verify_by
        if self.state in ACT_STATES and self.act_by is not None:
            return "act_by", self.act_by
        return None

    @property
    def pending_switch(self) -> tuple[SwitchActionView, ...]:
        return tuple(a for a in self.switch_actions if a.status != "done")


# What a case's `flags` may say (shown in the case, the API and the CLI).
FLAGS = {
    "stated_time_differs": "the caller's stated time of receipt differs from fraudgate's",
    "auto_confirmed": "confirmed by a configured policy, not by a person",
    "subscriber_scope": "suspension covers the subscriber's other numbers (operator policy)",
    "subscriber_unknown": "no registered holder at the time of the facts",
    "nothing_to_suspend": "no number of the case can be suspended on this network",
}


@dataclass(frozen=True, slots=True)
class CaseFilter:
    states: Sequence[State] = ()
    source: Source | None = None
    number: str | None = None
    limit: int = 100


class SuspendScope(StrEnum):
    NUMBERS = "numbers"  # point 120: "this subscriber number": the numbers the facts concern
    SUBSCRIBER = "subscriber"  # also every number registered to the holder: operator policy


class DetectionReport(StrEnum):
    """When an own detection (point 118) reaches the centre (docs/cases.md)."""

    AT_CONFIRMATION = "at_confirmation"  # once a person (or an explicit policy) confirmed it
    AT_DETECTION = "at_detection"  # at once, "under_verification"; again when confirmed


@dataclass(frozen=True, slots=True)
class Policy:
    """The operator's choices the order leaves open, from [cases]. The defaults do what the
    order says and no more: a person confirms, and suspension covers the case's numbers."""

    # evidence that confirms on its own (an explicit, recorded policy; empty: never)
    auto_confirm_probe_outcomes: frozenset[str] = frozenset()
    centre_confirmed_confirms: bool = False  # a centre report marked confirmed
    suspend_on_confirm: bool = True  # point 120: confirmed -> suspend (retried until done)
    suspend_scope: SuspendScope = SuspendScope.NUMBERS
    suspend_scope_reason: str = ""  # required with SUBSCRIBER: shown in every case it touches
    report_detection: DetectionReport = DetectionReport.AT_CONFIRMATION
    registry_status_blocked: str | None = "suspended"  # set in the registry after a block
    registry_status_active: str | None = "active"  # after an unblock

    def __post_init__(self) -> None:
        if self.suspend_scope is SuspendScope.SUBSCRIBER and not self.suspend_scope_reason.strip():
            raise ValueError("suspend_scope = subscriber needs suspend_scope_reason")

    def confirms(self, evidence: Evidence) -> bool:
        if evidence.kind == "probe_finding":
            return evidence.attrs.get("outcome") in self.auto_confirm_probe_outcomes
        if evidence.kind == "centre_report":
            return self.centre_confirmed_confirms and evidence.attrs.get("confirmed") is True
        return False

    def describe(self) -> str:
        """The policy as a transition's reason names it (R8)."""
        return (
            f"auto_confirm_probe_outcomes={sorted(self.auto_confirm_probe_outcomes)}, "
            f"suspend_scope={self.suspend_scope.value}"
        )


# -- ports -----------------------------------------------------------------------------------


class PersonLike(Protocol):
    """gateway.registry.Person, as the cases and the centre reports read it."""

    @property
    def id(self) -> str: ...
    @property
    def iin(self) -> str: ...
    @property
    def surname(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def patronymic(self) -> str | None: ...


class NumberLike(Protocol):
    """gateway.registry.NumberRecord: a number and whom it is registered to."""

    @property
    def msisdn(self) -> str: ...
    @property
    def status(self) -> Any: ...


class RegistryPort(Protocol):
    """The subscriber registry (gateway.registry.Registry)."""

    async def subscriber_of(
        self, msisdn: str, at: float | None = None
    ) -> tuple[Any, list[Any]] | None: ...

    async def holders_of(
        self, msisdns: Iterable[str], at: float | None = None
    ) -> dict[str, str]: ...

    async def set_number_status(self, msisdn: str, status: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class Notice:
    """A notice the order requires the centre to get (points 118, 120), as the case gives it:
    `round` is the transition it reports (a second suspension after an appeal is a second
    notice), `at` the time of the event itself (the switch's block, not the decision)."""

    kind: str  # detection | suspended | not_confirmed | unblocked
    round: int
    at: float
    person: PersonLike | None
    numbers: Sequence[NumberLike]  # detection: all registered to the person; else the numbers
    status: str = "confirmed"  # detection: confirmed | under_verification (DetectionReport)


class ReportSink(Protocol):
    """Centre reports (gateway.centre.CentreOutbox), queued INSIDE the transition's transaction
    on `conn`: the report and the state change commit together or not at all."""

    async def enqueue(self, conn: AsyncConnection, case: CaseView, notice: Notice) -> None: ...


class CentreReportLike(Protocol):
    """gateway.centre.InboundReport: what opening a case from the centre reads."""

    @property
    def report_id(self) -> str: ...
    @property
    def numbers(self) -> tuple[str, ...]: ...
    @property
    def category(self) -> str: ...
    @property
    def received_at(self) -> float: ...
    @property
    def incident_at(self) -> float | None: ...


def utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)
