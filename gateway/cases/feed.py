"""What feeds the case workflow, read from what the gateway records: new complaints, probe
findings that name a SIM, local senders whose SMS were blocked, and the texts behind cases
confirmed lately. `WorkflowFeed` is the workflow's port; `FeedRepository` owns its SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from gateway.cases.model import Source
from gateway.detect.sender import TON_ALPHANUMERIC
from gateway.probes.simbox import NAMES_A_NUMBER
from gateway.store import Store
from gateway.store.models import complaints, messages, probe_findings, verdicts
from gateway.store.models_calls import call_findings
from gateway.store.models_cases import case_evidence, case_transitions
from gateway.store.models_cases import cases as cases_table

# A SIM-box SIM (or a blocked sender) gets one case however often it is seen: the case's
# external id is the number.
NUMBER_KEY = "number:"
_BATCH = 500  # complaints and findings read in one round; the rest come next round


@dataclass(frozen=True, slots=True)
class NewComplaint:
    id: str
    suspected_sender: str
    received_at: float
    message_id: str


@dataclass(frozen=True, slots=True)
class NamedSim:
    """A probe finding that names a local SIM (SIM box, SIM farm, local CLI)."""

    id: str
    number: str
    at: float
    outcome: str
    route: str
    probe: str


@dataclass(frozen=True, slots=True)
class CallSim:
    """A call finding that names a SIM of ours (SIM-box behaviour, a confirmed SIM's sibling)."""

    id: str
    number: str
    found_at: float  # when fraudgate found it (wall clock): the case's received_at
    first_at: float  # the first record counted as evidence: the time of the facts
    kind: str
    score: float


# call findings about a SIM of ours (gateway.calls.analyzer.FindingKind)
CALL_SIM_KINDS = ("simbox", "simbox_sibling")


@dataclass(frozen=True, slots=True)
class BlockedSender:
    source: str
    first_at: float
    count: int
    message_id: str  # the first blocked message


class WorkflowFeed(Protocol):
    async def new_complaints(self) -> list[NewComplaint]: ...

    async def mark_complaint(self, complaint_id: str, status: str) -> None: ...

    async def named_sims(self) -> list[NamedSim]: ...

    async def call_sims(self) -> list[CallSim]: ...

    async def late_findings(self) -> list[tuple[NamedSim, str]]: ...

    async def blocked_senders(self, since: float | None, limit: int) -> list[BlockedSender]: ...

    async def confirmed_texts(self, since: float, limit: int = 1000) -> set[str]: ...


class FeedRepository:
    """WorkflowFeed on the gateway's Store (errors raised as StoreError)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def new_complaints(self) -> list[NewComplaint]:
        """Complaints not yet looked at, without a case, oldest first."""
        c, k = complaints, cases_table
        query = (
            sa.select(c.c.id, c.c.suspected_sender, c.c.received_at, c.c.message_id)
            .select_from(
                c.outerjoin(
                    k, sa.and_(k.c.source == Source.COMPLAINT.value, k.c.external_id == c.c.id)
                )
            )
            .where(c.c.status == "new", k.c.id.is_(None))
            .order_by(c.c.received_at)
            .limit(_BATCH)
        )
        return [
            NewComplaint(str(r[0]), str(r[1] or ""), float(r[2]), str(r[3]))
            for r in await self._read(query, "workflow.complaints")
        ]

    async def mark_complaint(self, complaint_id: str, status: str) -> None:
        with self.store.guard("workflow.mark_complaint"):
            async with self.store.engine.begin() as conn:
                await conn.execute(
                    complaints.update().where(complaints.c.id == complaint_id).values(status=status)
                )

    async def named_sims(self) -> list[NamedSim]:
        """Probe findings naming a SIM whose number has no case yet, oldest first."""
        f, k = probe_findings, cases_table
        query = (
            sa.select(f.c.id, f.c.number, f.c.at, f.c.outcome, f.c.route, f.c.probe)
            .select_from(
                f.outerjoin(
                    k,
                    sa.and_(
                        k.c.source == Source.DETECTION_SIMBOX.value,
                        k.c.external_id == sa.literal(NUMBER_KEY) + f.c.number,
                    ),
                )
            )
            .where(f.c.number != "", f.c.outcome.in_([o.value for o in NAMES_A_NUMBER]))
            .where(k.c.id.is_(None))
            .order_by(f.c.at)
            .limit(_BATCH)
        )
        return [
            NamedSim(str(r[0] or ""), str(r[1] or ""), float(r[2]), str(r[3] or ""),
                     str(r[4] or ""), str(r[5] or ""))
            for r in await self._read(query, "workflow.findings")
        ]  # fmt: skip

    async def late_findings(self) -> list[tuple[NamedSim, str]]:
        """Probe findings naming a SIM whose SIM-box case was opened before by the call records
        and carries no probe finding yet, with that case's id (the test call is evidence the
        analyst must see, and one an explicit policy may confirm on)."""
        f, k, e = probe_findings, cases_table, case_evidence
        query = (
            sa.select(f.c.id, f.c.number, f.c.at, f.c.outcome, f.c.route, f.c.probe, k.c.id)
            .select_from(
                f.join(
                    k,
                    sa.and_(
                        k.c.source == Source.DETECTION_SIMBOX.value,
                        k.c.external_id == sa.literal(NUMBER_KEY) + f.c.number,
                    ),
                ).outerjoin(e, sa.and_(e.c.case_id == k.c.id, e.c.kind == "probe_finding"))
            )
            .where(f.c.number != "", f.c.outcome.in_([o.value for o in NAMES_A_NUMBER]))
            .where(e.c.case_id.is_(None))
            .order_by(f.c.at)
            .limit(_BATCH)
        )
        return [
            (NamedSim(str(r[0]), str(r[1]), float(r[2]), str(r[3] or ""), str(r[4] or ""),
                      str(r[5] or "")), str(r[6]))
            for r in await self._read(query, "workflow.late_findings")
        ]  # fmt: skip

    async def call_sims(self) -> list[CallSim]:
        """Call findings naming a SIM whose number has no SIM-box case yet (a probe's may have
        opened it: one case per SIM), oldest first."""
        f, k = call_findings, cases_table
        query = (
            sa.select(f.c.id, f.c.msisdn, f.c.found_at, f.c.first_at, f.c.kind, f.c.score)
            .select_from(
                f.outerjoin(
                    k,
                    sa.and_(
                        k.c.source == Source.DETECTION_SIMBOX.value,
                        k.c.external_id == sa.literal(NUMBER_KEY) + f.c.msisdn,
                    ),
                )
            )
            .where(f.c.msisdn != "", f.c.kind.in_(CALL_SIM_KINDS), k.c.id.is_(None))
            .order_by(f.c.found_at)
            .limit(_BATCH)
        )
        return [
            CallSim(str(r[0]), str(r[1]), float(r[2]), float(r[3]), str(r[4]), float(r[5]))
            for r in await self._read(query, "workflow.call_findings")
        ]

    async def blocked_senders(self, since: float | None, limit: int) -> list[BlockedSender]:
        """Senders in Kazakh mobile form (not alphanumeric ids) with blocked SMS received
        since `since` and no case yet, by their first blocked SMS."""
        m, v, k = messages, verdicts, cases_table
        key = sa.literal(NUMBER_KEY) + m.c.source
        query = (
            sa.select(
                m.c.source, sa.func.min(m.c.received_at), sa.func.count(), sa.func.min(m.c.id)
            )
            .select_from(
                m.join(v, v.c.message_id == m.c.id).outerjoin(
                    k, sa.and_(k.c.source == Source.DETECTION_SMS.value, k.c.external_id == key)
                )
            )
            .where(v.c.decision == "block", m.c.source_ton != TON_ALPHANUMERIC, k.c.id.is_(None))
            .where(sa.or_(*(m.c.source.like(p) for p in ("7%", "+7%", "87%"))))  # KZ forms
            .group_by(m.c.source)
            .order_by(sa.func.min(m.c.received_at))
            .limit(limit)
        )
        if since is not None:
            query = query.where(m.c.received_at >= since)
        return [
            BlockedSender(str(r[0]), float(r[1]), int(r[2]), str(r[3]))
            for r in await self._read(query, "workflow.blocked")
        ]

    async def confirmed_texts(self, since: float, limit: int = 1000) -> set[str]:
        """The texts of the messages and complaints behind cases confirmed since `since`."""
        t, e, m, c = case_transitions, case_evidence, messages, complaints
        query = (
            sa.select(sa.func.coalesce(m.c.text, c.c.forwarded_text))
            .select_from(
                t.join(e, e.c.case_id == t.c.case_id)
                .outerjoin(m, sa.and_(e.c.kind == "message", m.c.id == e.c.ref))
                .outerjoin(c, sa.and_(e.c.kind == "complaint", c.c.id == e.c.ref))
            )
            .where(t.c.to_state == "confirmed", t.c.at >= since)
            .limit(limit)
        )
        return {str(r[0]) for r in await self._read(query, "workflow.confirmed") if r[0]}

    async def _read(self, query: sa.Select[Any], op: str) -> list[Any]:
        with self.store.guard(op):
            async with self.store.engine.connect() as conn:
                return list(await conn.execute(query))
