"""What a case's evidence links to, read for its page: the messages with their verdicts, the
probe findings, the complaints (SMS forwarded to the short number, and the help line's).

Read-only, bounded (a case links a few records; at most LIMIT of each kind are read).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from gateway.store import Store
from gateway.store.models import complaints, messages, probe_findings, verdicts
from gateway.store.models_api import helpline_complaints

from .queries import FindingRow, finding_rows

LIMIT = 100


@dataclass(frozen=True, slots=True)
class MessageRow:
    id: str
    received_at: float
    smsc: str
    route: str
    source: str
    dest: str
    text: str | None  # None once erased by retention
    decision: str
    score: float
    rule_ids: tuple[str, ...]
    reasons: tuple[dict[str, Any], ...]
    spans: tuple[tuple[int, int], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ComplaintRow:
    id: str
    received_at: float
    channel: str  # "sms" (forwarded to the short number) or "helpline"
    complainant: str
    suspect: str
    text: str | None  # the forwarded SMS or the caller's description


@dataclass
class CaseEvidence:
    messages: list[MessageRow] = field(default_factory=list)
    findings: list[FindingRow] = field(default_factory=list)
    complaints: list[ComplaintRow] = field(default_factory=list)


def refs(evidence: Iterable[dict[str, Any]], kind: str) -> list[str]:
    """The record ids of one kind in a case's evidence, in order, once each."""
    seen: dict[str, None] = {}
    for e in evidence:
        if e.get("kind") == kind and e.get("ref"):
            seen.setdefault(str(e["ref"]), None)
        if kind == "message" and e.get("kind") == "complaint":
            ref = (e.get("attrs") or e).get("message_id")
            if ref:
                seen.setdefault(str(ref), None)
    return list(seen)[:LIMIT]


async def read(store: Store, evidence: Sequence[dict[str, Any]]) -> CaseEvidence:
    """The records a case's evidence names (unmasked evidence: its attrs are flattened in)."""
    out = CaseEvidence()
    with store.guard("console.evidence"):
        async with store.engine.connect() as conn:
            ids = refs(evidence, "message")
            if ids:
                rows = await conn.execute(
                    sa.select(messages, verdicts)
                    .join(verdicts, verdicts.c.message_id == messages.c.id)
                    .where(messages.c.id.in_(ids))
                    .order_by(messages.c.received_at)
                )
                out.messages = [_message(r._mapping) for r in rows]
            ids = refs(evidence, "probe_finding")
            if ids:
                f = probe_findings
                rows = await conn.execute(
                    finding_rows().where(f.c.id.in_(ids)).order_by(f.c.at, f.c.id)
                )
                out.findings = [FindingRow(**r._mapping) for r in rows]
            out.complaints = await _complaints(conn, evidence)
    return out


async def _complaints(conn: Any, evidence: Sequence[dict[str, Any]]) -> list[ComplaintRow]:
    found: list[ComplaintRow] = []
    ids = refs(evidence, "complaint")
    if ids:
        c = complaints
        rows = await conn.execute(sa.select(c).where(c.c.id.in_(ids)))
        found += [
            ComplaintRow(
                r.id, r.received_at, "sms", r.complainant, r.suspected_sender, r.forwarded_text
            )
            for r in rows
        ]
    ids = refs(evidence, "helpline")
    if ids:
        h = helpline_complaints
        rows = await conn.execute(sa.select(h).where(h.c.id.in_(ids)))
        found += [
            ComplaintRow(r.id, r.received_at, "helpline", r.caller, r.suspect, r.description)
            for r in rows
        ]
    return sorted(found, key=lambda x: x.received_at)


def _message(m: Any) -> MessageRow:
    reasons = tuple(dict(x) for x in (m["reasons"] or ()))
    spans = tuple(
        (int(sp["start"]), int(sp["end"]))
        for x in reasons
        for sp in x.get("spans") or ()
        if "start" in sp and "end" in sp
    )
    return MessageRow(
        id=m["id"], received_at=m["received_at"], smsc=m["smsc"], route=m["route"],
        source=m["source"], dest=m["dest"], text=m["text"], decision=m["decision"],
        score=float(m["score"]), rule_ids=tuple(m["rule_ids"] or ()), reasons=reasons,
        spans=spans,
    )  # fmt: skip


def highlight(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[str, bool]]:
    """`text` cut into (piece, matched) runs: the union of the spans marked, in order."""
    marks = [False] * len(text)
    for start, end in spans:
        for i in range(max(start, 0), min(end, len(text))):
            marks[i] = True
    runs: list[tuple[str, bool]] = []
    for ch, on in zip(text, marks, strict=True):
        if runs and runs[-1][1] == on:
            runs[-1] = (runs[-1][0] + ch, on)
        else:
            runs.append((ch, on))
    return runs
