"""The feedback table and what it needs of the messages: every query of the feedback loop's
API and cache is here (the training read is `labels.py`). Errors are the store's typed ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gateway.domain import Decision, Reason
from gateway.store import Store
from gateway.store.models import messages, verdicts
from gateway.store.models_feedback import feedback

from .model import Exemption, Feedback, Judgement, Label, Scope, judged_rules


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What feedback needs of a recorded message."""

    id: str
    smsc: str
    source: str
    text: str | None  # None once erased (text retention)
    decision: Decision
    rules: frozenset[str]  # the findings of its verdict (judged_rules)


@dataclass(frozen=True, slots=True)
class FeedbackQuery:
    message_id: str | None = None
    scope: Scope | None = None
    in_force_at: float | None = None  # only exemptions in force at this time
    limit: int = 100


class FeedbackRepository:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def message(self, message_id: str) -> MessageFacts | None:
        m, v = messages, verdicts
        query = (
            sa.select(m.c.id, m.c.smsc, m.c.source, m.c.text, v.c.decision, v.c.reasons)
            .select_from(m.join(v, v.c.message_id == m.c.id))
            .where(m.c.id == message_id)
        )
        with self.store.guard("feedback.message"):
            async with self.store.engine.connect() as conn:
                row = (await conn.execute(query)).first()
        if row is None:
            return None
        return MessageFacts(
            row.id, row.smsc, row.source, row.text, Decision(row.decision), _rules(row.reasons)
        )

    async def add(self, item: Feedback) -> None:
        with self.store.guard("feedback.add"):
            async with self.store.engine.begin() as conn:
                await conn.execute(feedback.insert().values(**_row(item)))

    async def get(self, feedback_id: str) -> Feedback | None:
        with self.store.guard("feedback.get"):
            async with self.store.engine.connect() as conn:
                row = (
                    await conn.execute(sa.select(feedback).where(feedback.c.id == feedback_id))
                ).first()
        return None if row is None else _feedback(row._mapping)

    async def find(self, q: FeedbackQuery) -> list[Feedback]:
        """Newest first."""
        f = feedback
        query = sa.select(f).order_by(f.c.created_at.desc(), f.c.id.desc()).limit(q.limit)
        if q.message_id is not None:
            query = query.where(f.c.message_id == q.message_id)
        if q.scope is not None:
            query = query.where(f.c.scope == q.scope.value)
        if q.in_force_at is not None:
            query = query.where(*_in_force(q.in_force_at))
        with self.store.guard("feedback.find"):
            async with self.store.engine.connect() as conn:
                return [_feedback(r._mapping) for r in await conn.execute(query)]

    async def revoke(self, feedback_id: str, by: str, reason: str, now: float) -> bool:
        """Compare-and-set: False when it was revoked already (or does not exist)."""
        f = feedback
        stmt = (
            f.update()
            .where(f.c.id == feedback_id, f.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=by, revoke_reason=reason)
        )
        with self.store.guard("feedback.revoke"):
            async with self.store.engine.begin() as conn:
                return (await conn.execute(stmt)).rowcount == 1

    async def count_in_force(self, now: float) -> int:
        query = sa.select(sa.func.count()).select_from(feedback).where(*_in_force(now))
        with self.store.guard("feedback.count"):
            async with self.store.engine.connect() as conn:
                return int((await conn.execute(query)).scalar_one())

    async def active(self, now: float, limit: int) -> list[Exemption]:
        """The exemptions in force at `now`, the newest `limit` of them (ExemptionCache)."""
        f = feedback
        query = (
            sa.select(f.c.id, f.c.scope, f.c.key, f.c.rules, f.c.expires_at)
            .where(*_in_force(now))
            .order_by(f.c.created_at.desc())
            .limit(limit)
        )
        with self.store.guard("feedback.active"):
            async with self.store.engine.connect() as conn:
                rows = await conn.execute(query)
                return [
                    Exemption(r.id, Scope(r.scope), r.key, frozenset(r.rules), r.expires_at)
                    for r in rows
                ]


def _in_force(now: float) -> tuple[sa.ColumnElement[bool], ...]:
    f = feedback
    return (
        f.c.scope != Scope.MESSAGE.value,
        f.c.revoked_at.is_(None),
        f.c.expires_at > now,
    )


def _rules(reasons: Sequence[dict[str, Any]]) -> frozenset[str]:
    """judged_rules of a stored verdict's reasons (verdicts.reasons: {rule_id, score, block})."""
    return judged_rules(
        Reason(r.get("detector", ""), r["rule_id"], float(r["score"]), "", (), bool(r["block"]))
        for r in reasons
    )


def _row(item: Feedback) -> dict[str, object]:
    return {
        "id": item.id,
        "message_id": item.message_id,
        "verdict": item.verdict.value,
        "label": item.label.value,
        "scope": item.scope.value,
        "key": item.key,
        "decision": item.decision.value,
        "rules": sorted(item.rules),
        "reason": item.reason,
        "actor": item.actor,
        "role": item.role,
        "created_at": item.created_at,
        "expires_at": item.expires_at,
        "revoked_at": item.revoked_at,
        "revoked_by": item.revoked_by,
        "revoke_reason": item.revoke_reason,
    }


def _feedback(r: Any) -> Feedback:
    return Feedback(
        id=r["id"],
        message_id=r["message_id"],
        verdict=Judgement(r["verdict"]),
        label=Label(r["label"]),
        scope=Scope(r["scope"]),
        key=r["key"],
        decision=Decision(r["decision"]),
        rules=tuple(r["rules"]),
        reason=r["reason"],
        actor=r["actor"],
        role=r["role"],
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        revoked_at=r["revoked_at"],
        revoked_by=r["revoked_by"],
        revoke_reason=r["revoke_reason"],
    )
