"""The case workflow over the store: points 119-120 (R4, R5), traceable (R8). docs/cases.md.

Every state change is one transaction: the case row (compare-and-set on its version), the
transition's audit row, its evidence, the centre report (ReportSink, same connection) and a
`case` alert for the MQTT outbox. The switch is called OUTSIDE any transaction: the block rows
are planned first (their ids are the idempotency keys), the answers recorded after, and only
when every number is blocked does the case move to `suspended` (with the "suspended" report).
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.alerts.payloads import iso_utc, mask_msisdn
from gateway.detect.sender import KZ_MOBILE_RE
from gateway.domain import AlertKind
from gateway.ids import new_id
from gateway.store import Store
from gateway.switch.port import SwitchControl, SwitchError, SwitchRejected
from gateway.workdays import KzCalendar

from . import rows
from .deadlines import DeadlineRules, end_of_next_working_day, end_of_today, reminder
from .model import (
    ACT_STATES,
    SYSTEM,
    TRANSITIONS,
    VERIFY_STATES,
    Action,
    Actor,
    CaseFilter,
    CaseNotFound,
    CaseView,
    CentreReportLike,
    ConcurrentUpdate,
    DetectionReport,
    Effect,
    Evidence,
    IllegalTransition,
    Notice,
    NumberLike,
    PersonLike,
    Policy,
    RegistryPort,
    ReportSink,
    Source,
    State,
    Step,
    SuspendScope,
    step,
    utc,
)

log = logging.getLogger(__name__)

WORKING_DAYS = 2  # points 119 and 120: "within 2 (two) working days"
Moment = float | dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class _Number:
    """A number the registry does not know, in the shape of a NumberRecord for reports."""

    msisdn: str
    status: str = "unknown"


Subscriber = tuple[PersonLike | None, list[NumberLike]]


@dataclasses.dataclass(frozen=True, slots=True)
class OpenRequest:
    """What `Cases.open` takes, for `Cases.open_many`."""

    source: Source | str
    numbers: Sequence[str]
    received_at: Moment
    evidence: Sequence[Evidence] = ()
    external_id: str | None = None
    actor: Actor = SYSTEM
    reason: str = ""
    facts_at: Moment | None = None  # when the facts happened (default: received_at)
    sender: str | None = None  # the reported sender when it is no number (alphanumeric)
    flags: Sequence[str] = ()

    def checked(self) -> _Checked:
        sender = (self.sender or "").strip()[:64] or None
        if not self.numbers and sender is None:
            raise ValueError("a case names at least one number or a sender")
        source = Source(self.source)
        return _Checked(
            source=source,
            numbers=tuple(dict.fromkeys(e164(n) for n in self.numbers)),
            received_at=_ts(self.received_at),
            evidence=tuple(self.evidence),
            external_id=self.external_id,
            actor=self.actor,
            reason=self.reason or f"opened from {source.value}",
            facts_at=None if self.facts_at is None else _ts(self.facts_at),
            sender=sender,
            flags=tuple(dict.fromkeys(self.flags)),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class _Checked:
    source: Source
    numbers: tuple[str, ...]
    received_at: float
    evidence: tuple[Evidence, ...]
    external_id: str | None
    actor: Actor
    reason: str
    facts_at: float | None
    sender: str | None
    flags: tuple[str, ...]

    @property
    def facts_time(self) -> float:
        return self.received_at if self.facts_at is None else self.facts_at


class Cases:
    """Repository and service of cases. Times are epoch seconds or aware datetimes."""

    def __init__(
        self,
        store: Store,
        calendar: KzCalendar,
        *,
        switch: SwitchControl,
        registry: RegistryPort,
        reports: ReportSink | None,
        policy: Policy | None = None,
        deadlines: DeadlineRules | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.calendar = calendar
        self.switch = switch
        self.registry = registry
        self.reports = reports
        self.policy = policy or Policy()
        self.deadlines = deadlines or DeadlineRules()
        self.clock = clock

    # -- opening ------------------------------------------------------------------------------

    async def open(
        self,
        *,
        source: Source | str,
        numbers: Sequence[str],
        received_at: Moment,
        evidence: Sequence[Evidence] = (),
        external_id: str | None = None,
        actor: Actor = SYSTEM,
        reason: str = "",
        facts_at: Moment | None = None,
        sender: str | None = None,
        flags: Sequence[str] = (),
    ) -> CaseView:
        """Open a case (state new, verify_by = 2 working days after the day of receipt, R4).
        The case's person is the holder of its numbers at `facts_at` (when the reported facts
        happened; default `received_at`), not whoever holds them now. A second open with the
        same (source, external_id) returns the first case, unchanged. Evidence that confirms on
        its own under an explicit Policy confirms and suspends at once, flagged."""
        request = OpenRequest(
            source, numbers, received_at, evidence, external_id, actor, reason, facts_at,
            sender, flags,
        )  # fmt: skip
        [view] = await self.open_many([request])
        return view

    async def open_many(self, requests: Sequence[OpenRequest]) -> list[CaseView]:
        """Open several cases in one transaction (the workflow's case per blocked sender: one
        query for the holders, one INSERT per table): each as `open` would, in order. A request
        whose (source, external_id) is already open gets that case, unchanged."""
        checked = [r.checked() for r in requests]  # ValueError before anything is written
        if not checked:
            return []
        holders = await self._holders(checked)
        now = self.clock()
        views = [self._new_view(r, holders.get(i), now) for i, r in enumerate(checked)]
        opening = [(v, r.actor, r.reason, r.evidence) for v, r in zip(views, checked, strict=True)]
        inserted = await self.store.write(
            "cases.open", functools.partial(rows.insert_cases, opening=opening, at=now)
        )
        out: list[CaseView] = []
        for view, r in zip(views, checked, strict=True):
            if view.id not in inserted:  # opened before with this (source, external_id)
                found = await self._by_external(r.source, r.external_id)
                assert found is not None
                out.append(found)
                continue
            view = rows.opened_view(view, r.actor, r.reason, r.evidence)
            confirming = [e for e in r.evidence if self.policy.confirms(e)]
            out.append(await self._auto_confirm(view, confirming) if confirming else view)
        return out

    async def _holders(self, checked: Sequence[_Checked]) -> dict[int, str]:
        """The holder of each request's numbers at the time of its facts (one query per
        distinct time): {index in `checked`: person id}."""
        by_time: dict[float, list[int]] = {}
        for i, r in enumerate(checked):
            if r.numbers:
                by_time.setdefault(r.facts_time, []).append(i)
        found: dict[int, str] = {}
        for at, indices in by_time.items():
            numbers = {n for i in indices for n in checked[i].numbers}
            holders = await self.registry.holders_of(numbers, at=at)
            for i in indices:
                person = next((holders[n] for n in checked[i].numbers if n in holders), None)
                if person is not None:
                    found[i] = person
        return found

    def _new_view(self, r: _Checked, person_id: str | None, now: float) -> CaseView:
        return CaseView(
            id=new_id(),
            source=r.source,
            state=State.NEW,
            numbers=r.numbers,
            person_id=person_id,
            external_id=r.external_id,
            received_at=r.received_at,
            verify_by=self._deadline(r.received_at),
            decided_at=None,
            act_by=None,
            created_at=now,
            updated_at=now,
            version=1,
            facts_at=r.facts_at,
            sender=r.sender,
            flags=r.flags + _unknown(r, person_id),
        )

    async def open_from_centre(self, report: CentreReportLike) -> str:
        """The centre link's CaseOpener: one case per centre report id (point 119)."""
        view = await self.open(
            source=Source.CENTRE,
            numbers=list(report.numbers),
            received_at=report.received_at,
            external_id=report.report_id,
            evidence=[Evidence("centre_report", report.report_id, {"category": report.category})],
            actor=Actor("centre", "centre"),
            facts_at=report.incident_at,
        )
        return view.id

    async def attach(self, case_id: str, evidence: Evidence, actor: Actor = SYSTEM) -> CaseView:
        """New evidence for an open case (a probe test naming a SIM whose case the call records
        opened first): recorded on the case, and, when an explicit Policy confirms on such
        evidence and the case still awaits its verification, confirmed by the policy."""
        with self.store.guard("cases.attach"):
            async with self.store.engine.begin() as conn:
                await rows.add_evidence(conn, case_id, [evidence], actor, self.clock())
        view = await self.get(case_id)
        if view.state in (State.NEW, State.VERIFYING) and self.policy.confirms(evidence):
            if view.state is State.VERIFYING:
                policy = Actor("policy:auto_confirm", "system")
                return await self._confirm(
                    view.id, policy, f"operator policy ({self.policy.describe()}): confirmed by "
                    f"{evidence.kind} {evidence.ref}", [evidence], flags=("auto_confirmed",),
                )  # fmt: skip
            return await self._auto_confirm(view, [evidence])
        return view

    async def _auto_confirm(self, view: CaseView, confirming: Sequence[Evidence]) -> CaseView:
        """An explicit operator policy ([cases] auto_confirm_probe_outcomes) confirms: recorded
        as the policy's decision, with the policy in the reason, and flagged on the case."""
        what = ", ".join(f"{e.kind} {e.ref}" for e in confirming)
        policy = Actor("policy:auto_confirm", "system")
        rule = f"operator policy ({self.policy.describe()})"
        await self.start_verification(view.id, policy, f"{rule}: evidence confirms on its own")
        return await self._confirm(
            view.id, policy, f"{rule}: confirmed by {what}", confirming, flags=("auto_confirmed",)
        )

    # -- reads --------------------------------------------------------------------------------

    async def get(self, case_id: str) -> CaseView:
        with self.store.guard("cases.get"):
            async with self.store.engine.connect() as conn:
                view = await rows.load_case(conn, case_id)
        if view is None:
            raise CaseNotFound(f"no case {case_id}")
        return view

    async def list(self, flt: CaseFilter | None = None) -> builtins.list[CaseView]:
        """Cases, newest first, without their history (get() has it)."""
        f = flt or CaseFilter()
        with self.store.guard("cases.list"):
            async with self.store.engine.connect() as conn:
                found = await rows.views(conn, rows.cases_query(f))
        return [c for c in found if f.number is None or f.number in c.numbers]

    async def queue(self, flt: CaseFilter) -> builtins.list[CaseView]:
        """The analysts' queue: running deadlines first, the earliest first, then the rest
        newest first (rows.queue_query); `flt.number` is not used here."""
        query = rows.queue_query(flt, VERIFY_STATES, ACT_STATES)
        with self.store.guard("cases.queue"):
            async with self.store.engine.connect() as conn:
                return await rows.views(conn, query)

    async def _running(self, until: float) -> builtins.list[CaseView]:
        query = rows.running_query(until, VERIFY_STATES, ACT_STATES)
        with self.store.guard("cases.deadlines"):
            async with self.store.engine.connect() as conn:
                return await rows.views(conn, query)

    # -- analyst actions ----------------------------------------------------------------------

    async def start_verification(
        self, case_id: str, actor: Actor, reason: str = "", evidence: Sequence[Evidence] = ()
    ) -> CaseView:
        return await self._transition(case_id, Action.START_VERIFICATION, actor, reason, evidence)

    async def confirm(
        self, case_id: str, actor: Actor, reason: str, evidence: Sequence[Evidence] = ()
    ) -> CaseView:
        """Fraud confirmed: the centre gets the "detection" report (the holder at the time of
        the facts, ALL their registered numbers, R3) and, by policy, the numbers the facts
        concern are suspended at once (point 120). A case with nothing of this network's to
        suspend (an alphanumeric or foreign sender) is closed, flagged `nothing_to_suspend`."""
        return await self._confirm(case_id, actor, reason, evidence)

    async def _confirm(
        self,
        case_id: str,
        actor: Actor,
        reason: str,
        evidence: Sequence[Evidence],
        flags: Sequence[str] = (),
    ) -> CaseView:
        view = await self._transition(case_id, Action.CONFIRM, actor, reason, evidence, flags)
        if not self.policy.suspend_on_confirm or view.state is not State.CONFIRMED:
            return view
        try:
            return await self.suspend(case_id, SYSTEM, f"point 120: confirmed by {actor.id}")
        except (IllegalTransition, ConcurrentUpdate):
            # the workflow's retry_pending suspended it meanwhile: the confirmation stands and
            # the case has moved on, which is not the caller's error
            return await self.get(case_id)

    async def reject(
        self, case_id: str, actor: Actor, reason: str, evidence: Sequence[Evidence] = ()
    ) -> CaseView:
        """Not confirmed: the centre gets the "not_confirmed" notice (point 120). A case whose
        numbers are still blocked from an earlier round (an appeal on a case closed while
        suspended) is unblocked first, by a supervisor: BlocksOutstanding."""
        view = await self.get(case_id)
        if view.state is State.VERIFYING and _outstanding(view):
            raise BlocksOutstanding(case_id, view.state, Action.REJECT)
        return await self._transition(case_id, Action.REJECT, actor, reason, evidence)

    async def open_actions(self, view: CaseView) -> builtins.list[Action]:
        """The actions the state table allows in the case's state that this service's own
        guards allow now (what close, reject, reopen and unblock check before they act);
        `suspend` is the system's and never listed. The console offers exactly these."""
        blocked = bool(_outstanding(view))
        found: builtins.list[Action] = []
        for state, action in TRANSITIONS:
            if state is not view.state or action is Action.SUSPEND:
                continue
            if action is Action.CLOSE and state is State.CONFIRMED and await self._targets(view):
                continue  # point 120: the numbers must be suspended, not the case closed
            if action is Action.CLOSE and _unblock_pending(view):
                continue  # a supervisor's unblock still owed by the switch
            if action in (Action.REJECT, Action.REOPEN) and blocked:
                continue  # BlocksOutstanding: a supervisor unblocks first
            if action is Action.UNBLOCK and state is State.CLOSED and not blocked:
                continue  # nothing of this case is blocked any more
            found.append(action)
        return found

    async def close(
        self, case_id: str, actor: Actor, reason: str, evidence: Sequence[Evidence] = ()
    ) -> CaseView:
        """Close a case that owes nothing more. A confirmed case closes only when none of its
        numbers can be suspended here (else point 120 requires the suspension)."""
        view = await self.get(case_id)
        if view.state is State.CONFIRMED and await self._targets(view):
            raise IllegalTransition(case_id, view.state, Action.CLOSE)
        if _unblock_pending(view):  # closing would strand it: retries follow the latest round
            raise IllegalTransition(case_id, view.state, Action.CLOSE)
        return await self._transition(case_id, Action.CLOSE, actor, reason, evidence)

    async def reopen(
        self, case_id: str, actor: Actor, reason: str, evidence: Sequence[Evidence] = ()
    ) -> CaseView:
        """On appeal: verify again within 2 working days of the appeal. A case closed while
        its numbers stay suspended is unblocked first (BlocksOutstanding): otherwise a
        verification that clears the subscriber would leave them cut off."""
        view = await self.get(case_id)
        if view.state is State.CLOSED and _outstanding(view):
            raise BlocksOutstanding(case_id, view.state, Action.REOPEN)
        return await self._transition(case_id, Action.REOPEN, actor, reason, evidence)

    # -- the switch ---------------------------------------------------------------------------

    async def suspend(self, case_id: str, actor: Actor = SYSTEM, reason: str = "") -> CaseView:
        """Block every number (the case's, and the subscriber's when the policy says so) on
        the switch; when all are blocked the case becomes `suspended` and the centre is told.
        A switch failure leaves the case `confirmed` with the error on its switch actions
        (SwitchUnavailable: retried by retry_pending; SwitchRejected: until suspend() again)."""
        view = await self.get(case_id)
        if self._done_already(view, Action.SUSPEND):
            return view
        step(case_id, view.state, Action.SUSPEND)  # IllegalTransition before any write
        targets = await self._targets(view)
        if not targets:
            why = (
                "point 120: no number to suspend (not of this network, or no longer held by "
                "the holder at the time of the facts); the centre was told"
            )
            return await self._transition(
                case_id, Action.CLOSE, SYSTEM, why, (), ("nothing_to_suspend",)
            )
        round_ = view.transitions[-1].seq
        flags: tuple[str, ...] = ()
        if self.policy.suspend_scope is SuspendScope.SUBSCRIBER and len(targets) > len(
            view.numbers
        ):
            widened = (
                f"operator policy suspend_scope=subscriber: {self.policy.suspend_scope_reason}"
            )
            if widened not in reason:
                reason = f"{reason}; {widened}".lstrip("; ")
            flags = ("subscriber_scope",)
        await self._plan(view, "block", round_, targets, actor, reason, retry_rejected=True)
        return await self._complete(case_id, Action.SUSPEND, "block", actor, reason, flags=flags)

    async def unblock(
        self, case_id: str, actor: Actor, reason: str, evidence: Sequence[Evidence] = ()
    ) -> CaseView:
        """A decision lifts the suspension: unblock every number blocked for this case."""
        view = await self.get(case_id)
        if self._done_already(view, Action.UNBLOCK):
            return view
        step(case_id, view.state, Action.UNBLOCK)
        if view.state is State.CLOSED and not _outstanding(view):
            raise IllegalTransition(case_id, view.state, Action.UNBLOCK)
        blocked = [a.msisdn for a in _acted(view, "block")]
        round_ = view.transitions[-1].seq
        await self._plan(view, "unblock", round_, blocked, actor, reason, retry_rejected=True)
        return await self._complete(case_id, Action.UNBLOCK, "unblock", actor, reason, evidence)

    async def retry_pending(self) -> builtins.list[CaseView]:
        """Drive what the switch still owes: confirmed cases not yet suspended (point 120)
        and suspended cases with unblocks pending. Returns the cases it touched."""
        with self.store.guard("cases.retry_pending"):
            async with self.store.engine.connect() as conn:
                todo = await rows.owed_by_switch(conn)
        done = []
        for case_id, state in todo:
            try:
                if state is State.CONFIRMED and self.policy.suspend_on_confirm:
                    done.append(await self._retry_suspend(case_id))
                elif state in (State.SUSPENDED, State.CLOSED):
                    done.append(await self._retry_unblock(case_id))
            except (IllegalTransition, ConcurrentUpdate) as e:  # an analyst's call got there first
                log.info("case %s moved on while retrying its switch actions: %s", case_id, e)
        return done

    async def _retry_suspend(self, case_id: str) -> CaseView:
        """Carry out the suspension decided earlier, with that decision's reason: suspend()
        again works out the targets (none left: closed, nothing to suspend) and the flags."""
        view = await self.get(case_id)
        planned = _round_actions(view, "block")
        reason = planned[0].reason if planned else "point 120: suspension resumed"
        return await self.suspend(case_id, SYSTEM, reason)

    async def _retry_unblock(self, case_id: str) -> CaseView:
        """Carry out an unblocking decided earlier: the transition names the person who
        decided it and their reason (the centre's `unblocked` report quotes it)."""
        view = await self.get(case_id)
        planned = _round_actions(view, "unblock")
        if not planned:
            return view
        first = planned[0]
        reason = f"{first.reason} (decided by {first.requested_by}; the switch answered later)"
        return await self._complete(case_id, Action.UNBLOCK, "unblock", SYSTEM, reason)

    async def _targets(self, view: CaseView) -> builtins.list[str]:
        """What a suspension blocks. Point 120 suspends "this subscriber number": the case's
        numbers of this country's mobile plan (the switch refuses another operator's) that
        the holder at the time of the facts still holds; a number terminated or re-issued
        since belongs to nobody or to someone else now, and is not suspended for the old
        holder's facts. The subscriber's other numbers only under the operator's explicit
        policy (SuspendScope)."""
        local = [n for n in view.numbers if KZ_MOBILE_RE.fullmatch(n.removeprefix("+"))]
        then = await self.registry.holders_of(local, at=view.facts_time) if local else {}
        now = await self.registry.holders_of(local) if local else {}
        # the same holder then and now; nobody then and nobody now (a local number this
        # registry does not know) is suspended too: nobody then but someone now is not
        numbers = [n for n in local if now.get(n) == then.get(n)]
        if numbers and self.policy.suspend_scope is SuspendScope.SUBSCRIBER:
            for _person, records in await self._subscribers(view):
                numbers += [e164(r.msisdn) for r in records if r.status != "terminated"]
        return list(dict.fromkeys(numbers))

    async def _plan(
        self,
        view: CaseView,
        action: str,
        round_: int,
        numbers: Sequence[str],
        actor: Actor,
        reason: str,
        *,
        retry_rejected: bool,
    ) -> None:
        """One row per number for this round (kept if there: its id is the idempotency key)."""
        now = self.clock()
        planned = [_action_row(view.id, round_, action, n, actor, reason, now) for n in numbers]
        async with self._tx("cases.plan") as conn:
            await rows.plan_actions(
                conn, planned, case_id=view.id, round_=round_, action=action,
                retry_rejected=retry_rejected,
            )  # fmt: skip

    async def _complete(
        self,
        case_id: str,
        action: Action,
        switch_action: str,
        actor: Actor,
        reason: str,
        evidence: Sequence[Evidence] = (),
        flags: Sequence[str] = (),
    ) -> CaseView:
        """Call the switch for the pending rows; when none is left, make the transition."""
        view = await self.get(case_id)
        if self._done_already(view, action):
            return view  # another caller finished this round meanwhile
        round_ = view.transitions[-1].seq  # the rows of this round: planned after the decision
        mine = [a for a in view.switch_actions if a.action == switch_action and a.round == round_]
        for a in mine:
            if a.status == "pending":
                await self._call_switch(view, a.id, switch_action, a.msisdn, reason)
        view = await self.get(case_id)
        mine = [a for a in view.switch_actions if a.action == switch_action and a.round == round_]
        if not mine or any(a.status != "done" for a in mine):
            return view
        done = [Evidence("switch_action", a.id, {"msisdn": a.msisdn}) for a in mine]
        text = reason or f"switch: {switch_action} done for {len(mine)} number(s)"
        return await self._transition(case_id, action, actor, text, [*evidence, *done], flags)

    async def _call_switch(
        self, view: CaseView, key: str, action: str, msisdn: str, reason: str
    ) -> None:
        op = self.switch.block if action == "block" else self.switch.unblock
        try:
            result = await op(msisdn, reason=reason or action, case_id=view.id, idempotency_key=key)
        except SwitchError as e:
            await self._switch_failed(view, key, msisdn, e)
            return
        await self._switch_done(key, result.as_json())
        status = (
            self.policy.registry_status_blocked
            if action == "block"
            else self.policy.registry_status_active
        )
        if status is not None:
            await self._registry_status(msisdn, status)

    async def _switch_done(self, key: str, answer: dict[str, Any]) -> None:
        async with self._tx("cases.switch") as conn:
            await rows.switch_done(conn, key, answer, self.clock())

    async def _switch_failed(
        self, view: CaseView, key: str, msisdn: str, error: SwitchError
    ) -> None:
        """Record the failure. The log line and the `switch_error` alert come once per action
        and kind of failure: a switch down for an hour is retried every round, and must not
        raise an alert each time."""
        kind = "rejected" if isinstance(error, SwitchRejected) else "unavailable"
        async with self._tx("cases.switch") as conn:
            before = await rows.switch_failed(conn, key, kind, str(error))
            if before == kind:
                log.debug("case %s: switch still %s for %s", view.id, kind, mask_msisdn(msisdn))
                return
            log.warning(
                "case %s: switch %s for %s (%s); retried every round",
                view.id,
                kind,
                mask_msisdn(msisdn),
                type(error).__name__,
            )
            payload = _event(view, "switch_error") | {
                "number": mask_msisdn(msisdn),
                "error_kind": kind,
            }
            await rows.add_alert(conn, AlertKind.CASE, payload, self.clock())

    async def _registry_status(self, msisdn: str, status: str) -> None:
        """Best effort: the switch is the truth; a registry that refuses is logged."""
        try:
            await self.registry.set_number_status(msisdn, status)
        except Exception as e:  # the registry's typed errors; never undo a done block
            # a number of another operator (a SIM box holds any SIMs) is not in our registry
            level = logging.INFO if type(e).__name__ == "UnknownNumber" else logging.WARNING
            log.log(
                level, "registry status of %s not set: %s", mask_msisdn(msisdn), type(e).__name__
            )

    # -- transitions --------------------------------------------------------------------------

    async def _transition(
        self,
        case_id: str,
        action: Action,
        actor: Actor,
        reason: str,
        evidence: Sequence[Evidence],
        flags: Sequence[str] = (),
    ) -> CaseView:
        """One step of the table in one transaction; IllegalTransition writes nothing. The same
        step made twice at once (an analyst's confirm racing the workflow's retry) is made
        once: the loser reads the case again and gets it as the winner left it."""
        for _ in range(3):
            view = await self.get(case_id)
            if self._done_already(view, action):
                return view
            st = step(case_id, view.state, action)
            holder = await self._holder(view) if self._reports_in(st) else (None, [])
            now = self.clock()
            try:
                async with self._tx(f"cases.{action.value}") as conn:
                    new = await self._apply(conn, view, st, now, reason, evidence, flags)
                    seq = view.transitions[-1].seq + 1
                    await rows.add_transition(
                        conn, view, seq=seq, action=action.value, to=st.to, actor=actor,
                        reason=reason, evidence=evidence, at=now,
                    )  # fmt: skip
                    await self._report(conn, st, new, seq, holder, now)
                    await rows.add_alert(conn, AlertKind.CASE, _event(new, action.value), now)
            except ConcurrentUpdate:
                continue  # read again: done by the other caller, or still to do
            return await self.get(case_id)
        raise ConcurrentUpdate(f"case {case_id} keeps changing; read it again")

    @staticmethod
    def _done_already(view: CaseView, action: Action) -> bool:
        """The case's latest transition is `action` and left it where `action` leads: a
        repeat of a finished step (idempotent)."""
        last = view.transitions[-1] if view.transitions else None
        return last is not None and last.action == action.value and last.to_state is view.state

    async def _apply(
        self,
        conn: AsyncConnection,
        view: CaseView,
        st: Step,
        now: float,
        reason: str,
        evidence: Sequence[Evidence],
        flags: Sequence[str] = (),
    ) -> CaseView:
        values: dict[str, Any] = {"state": st.to.value, "updated_at": now}
        if Effect.ACT_DEADLINE in st.effects:  # point 120: 2 working days from the decision
            values |= {"decided_at": now, "act_by": self._deadline(now)}
        if Effect.VERIFY_DEADLINE in st.effects:  # point 119 again, from the appeal
            values |= {"verify_by": self._deadline(now)}
        all_flags = tuple(dict.fromkeys((*view.flags, *flags)))
        if all_flags != view.flags:
            values["flags"] = list(all_flags)
        if not await rows.move_case(conn, view.id, view.version, values):
            raise ConcurrentUpdate(f"case {view.id} changed meanwhile; read it again")
        extra = tuple({**e.attrs, "kind": e.kind, "ref": e.ref, "at": now} for e in evidence)
        decided = st.to in (State.CONFIRMED, State.NOT_CONFIRMED, State.UNBLOCKED)
        return dataclasses.replace(
            view,
            state=st.to,
            updated_at=now,
            version=view.version + 1,
            decided_at=values.get("decided_at", view.decided_at),
            act_by=values.get("act_by", view.act_by),
            verify_by=values.get("verify_by", view.verify_by),
            evidence=view.evidence + extra,
            flags=all_flags,
            decision_reason=reason if decided else view.decision_reason,
        )

    def _reports_in(self, st: Step) -> bool:
        return self.reports is not None and any(e.value.startswith("report") for e in st.effects)

    async def _report(
        self,
        conn: AsyncConnection,
        st: Step,
        case: CaseView,
        seq: int,
        holder: Subscriber,
        now: float,
    ) -> None:
        """The notices the step owes the centre, in its transaction. A suspension or an
        unblocking is reported with the time the switch carried it out, not the decision's."""
        if self.reports is None:
            return
        person, numbers = holder
        if Effect.REPORT_DETECTION in st.effects:  # point 118, R3: the person, ALL numbers
            await self.reports.enqueue(conn, case, Notice("detection", seq, now, person, numbers))
        if Effect.REPORT_NOT_CONFIRMED in st.effects:
            if self._reported_at_detection(case):  # the centre hears of the case first
                early = Notice(
                    "detection", 1, case.received_at, person, numbers, "under_verification"
                )
                await self.reports.enqueue(conn, case, early)
            notice = Notice("not_confirmed", seq, now, person, numbers)
            await self.reports.enqueue(conn, case, notice)
        for effect, kind, action in (
            (Effect.REPORT_SUSPENDED, "suspended", "block"),
            (Effect.REPORT_UNBLOCKED, "unblocked", "unblock"),
        ):
            if effect in st.effects:
                acted = _acted(case, action)
                at = max((a.done_at or now for a in acted), default=now)
                done = [_Number(a.msisdn, action) for a in acted]
                await self.reports.enqueue(conn, case, Notice(kind, seq, at, person, done))

    def _reported_at_detection(self, case: CaseView) -> bool:
        own = case.source in (Source.DETECTION_SMS, Source.DETECTION_SIMBOX)
        return own and self.policy.report_detection is DetectionReport.AT_DETECTION

    async def _holder(self, view: CaseView) -> Subscriber:
        """The case's person (the holder at the time of the facts) and their numbers."""
        subscribers = await self._subscribers(view)
        return subscribers[0] if subscribers else (None, [])

    async def _subscribers(self, view: CaseView) -> builtins.list[Subscriber]:
        """The registered subscribers of the case's numbers (first the case's person)."""
        found: builtins.list[Subscriber] = []
        seen: set[str] = set()
        for n in view.numbers:
            hit = await self.registry.subscriber_of(n, at=view.facts_time)
            if hit is None or str(hit[0].id) in seen:
                continue
            seen.add(str(hit[0].id))
            found.append((hit[0], list(hit[1])))
        found.sort(key=lambda sub: sub[0] is None or str(sub[0].id) != view.person_id)
        return found

    async def _by_external(self, source: Source, external_id: str | None) -> CaseView | None:
        if external_id is None:
            return None
        with self.store.guard("cases.open"):
            async with self.store.engine.connect() as conn:
                found = await rows.case_id_by_external(conn, source.value, external_id)
        return await self.get(found) if found is not None else None

    # -- deadline watch -----------------------------------------------------------------------

    async def deadline_alerts(self, now: Moment) -> int:
        """Queue the `deadline` alerts owed at `now` (deadlines.reminder): a warning on the
        deadline's day in working hours, and while overdue a reminder escalated to the
        supervisors at once and again through each working day. Each reminder once, across
        restarts (case_deadline_alerts). Returns how many were added."""
        t = _ts(now)
        due = await self._running(end_of_today(t, self.calendar))
        added = 0
        async with self._tx("cases.deadline_alerts") as conn:
            for case in due:
                added += await self._deadline_alert(conn, case, t)
        return added

    async def _deadline_alert(self, conn: AsyncConnection, case: CaseView, now: float) -> int:
        running = case.deadline()
        if running is None:
            return 0
        name, due = running
        owed = reminder(due, now, self.calendar, self.deadlines)
        if owed is None:
            return 0
        if not await rows.claim_deadline_alert(conn, case.id, owed.key(name, due), new_id(), now):
            return 0
        payload = rows.case_payload(case) | {
            "deadline": name,
            "stage": owed.stage,
            "due": iso_utc(due),
            "point": "119" if name == "verify_by" else "120",
            "repeat": owed.repeat,
            "audience": owed.audience,
        }
        await rows.add_alert(conn, AlertKind.DEADLINE, payload, now)
        if owed.stage == "overdue":
            log.warning(
                "case %s: %s passed at %s (reminder %d, to the supervisors)",
                case.id, name, iso_utc(due), owed.repeat,
            )  # fmt: skip
        return 1

    async def deadline_counts(self, now: Moment) -> dict[str, int]:
        """Cases whose legal deadline is past, falls today, or falls on the next working day
        (the CLI, the API and the retained MQTT status show these)."""
        t = _ts(now)
        today, tomorrow = end_of_today(t, self.calendar), end_of_next_working_day(t, self.calendar)
        bounds = {"overdue": (None, t), "due_today": (t, today), "due_next": (today, tomorrow)}
        with self.store.guard("cases.deadlines"):
            async with self.store.engine.connect() as conn:
                return {
                    name: await rows.count_running(conn, lo, hi, VERIFY_STATES, ACT_STATES)
                    for name, (lo, hi) in bounds.items()
                }

    async def at_risk(self, now: Moment) -> builtins.list[CaseView]:
        """Cases overdue or due by the end of the next working day, soonest first."""
        t = _ts(now)
        found = await self._running(end_of_next_working_day(t, self.calendar))
        return sorted(found, key=_due)

    async def report_detections(self) -> int:
        """DetectionReport.AT_DETECTION: queue an "under_verification" detection report for
        each own detection (detection_sms, detection_simbox) that has none yet. Run by the
        workflow each round: a crash between opening and reporting is caught up next round.
        Returns how many were queued."""
        if self.reports is None:
            return 0
        with self.store.guard("cases.report_detections"):
            async with self.store.engine.connect() as conn:
                todo = await rows.unreported_detections(conn)
        queued = 0
        for case_id in todo:
            view = await self.get(case_id)
            person, numbers = await self._holder(view)
            notice = Notice("detection", 1, view.received_at, person, numbers, "under_verification")
            async with self._tx("cases.report_detections") as conn:
                # only if no decision came meanwhile (its report would come first: the centre
                # would see the status go back); held to the end of this transaction
                if not await rows.hold_case(conn, view.id, view.version):
                    continue
                await self.reports.enqueue(conn, view, notice)
            queued += 1
        return queued

    async def detection_notice(
        self, case_id: str, round_: int, status: str
    ) -> tuple[CaseView, Notice]:
        """The detection notice of a case as the registry gives it NOW (a report resent after
        an analyst completed the registry): the holder at the time of the facts."""
        view = await self.get(case_id)
        person, numbers = await self._holder(view)
        at = next((t.at for t in view.transitions if t.seq == round_), view.received_at)
        return view, Notice("detection", round_, at, person, numbers, status)

    # -- helpers ------------------------------------------------------------------------------

    def _deadline(self, start: float) -> float:
        return self.calendar.add_working_days(utc(start), WORKING_DAYS).timestamp()

    @contextlib.asynccontextmanager
    async def _tx(self, operation: str) -> AsyncIterator[AsyncConnection]:
        """One transaction on the store's engine; database errors typed by Store.guard."""
        with self.store.guard(operation):
            async with self.store.engine.begin() as conn:
                yield conn


def _action_row(
    case_id: str, round_: int, action: str, msisdn: str, actor: Actor, reason: str, now: float
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "case_id": case_id,
        "round": round_,
        "action": action,
        "msisdn": msisdn,
        "status": "pending",
        "requested_by": actor.id,
        "reason": reason,
        "requested_at": now,
        "attempts": 0,
    }


def e164(number: str) -> str:
    """'+' and the digits: '77011234567', '+7 701 123-45-67' -> '+77011234567'; the national
    form 8 701... becomes +7 701...."""
    digits = "".join(c for c in number if c.isdigit())
    if len(digits) == 11 and digits.startswith("8") and not number.strip().startswith("+"):
        digits = "7" + digits[1:]
    return "+" + digits


class BlocksOutstanding(IllegalTransition):
    """The case's numbers are still blocked from an earlier round: unblock them first."""

    def __init__(self, case_id: str, state: State, action: Action) -> None:
        super().__init__(case_id, state, action)
        self.args = (
            f"case {case_id}: cannot {action.value}: its numbers are still suspended from an "
            "earlier decision; a supervisor unblocks them first (fraudgate cases unblock / "
            "POST .../unblock), then the case is reopened",
        )


def _unknown(r: _Checked, person_id: str | None) -> tuple[str, ...]:
    """("subscriber_unknown",) for a case about a Kazakh mobile number nobody held on record at
    the time of the facts (an analyst completes the registry before the report goes out)."""
    local = any(KZ_MOBILE_RE.fullmatch(n.removeprefix("+")) for n in r.numbers)
    return ("subscriber_unknown",) if local and person_id is None else ()


def _round_actions(view: CaseView, action: str) -> builtins.list[Any]:
    """The switch actions of `action` planned for the case's latest round."""
    round_ = view.transitions[-1].seq if view.transitions else 0
    return [a for a in view.switch_actions if a.action == action and a.round == round_]


def _unblock_pending(view: CaseView) -> bool:
    """An unblock decided for the case is still owed by the switch."""
    return any(a.action == "unblock" and a.status != "done" for a in view.switch_actions)


def _outstanding(view: CaseView) -> builtins.list[str]:
    """Numbers blocked for this case and not unblocked since (latest block round)."""
    blocks = [a for a in view.switch_actions if a.action == "block" and a.status == "done"]
    if not blocks:
        return []
    last = max(a.round for a in blocks)
    lifted = {
        a.msisdn
        for a in view.switch_actions
        if a.action == "unblock" and a.round > last and a.status == "done"
    }
    return [a.msisdn for a in blocks if a.round == last and a.msisdn not in lifted]


def _acted(case: CaseView, action: str) -> builtins.list[Any]:
    """The switch actions of `action` done in the case's latest round of that action."""
    mine = [a for a in case.switch_actions if a.action == action]
    last = max((a.round for a in mine), default=0)
    return [a for a in mine if a.round == last and a.status == "done"]


def _event(case: CaseView, event: str) -> dict[str, object]:
    return rows.case_payload(case) | {"event": event}


def _due(case: CaseView) -> float:
    running = case.deadline()
    return running[1] if running is not None else float("inf")


def _ts(moment: Moment) -> float:
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:
            raise ValueError(f"a time-zone aware datetime is needed, not {moment!r}")
        return moment.timestamp()
    return float(moment)
