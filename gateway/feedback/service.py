"""Feedback as the API gives it: checked against the message, written, and the exemption it
grants handed to the in-memory cache at once (the Inspector sees it on the next message).

    service = FeedbackService(FeedbackRepository(store), cache, FeedbackLimits())
    item = await service.give(message_id, Judgement.WRONG, Scope.SENDER, "bank's own notice",
                              hours=24, actor="u-aigerim", role="analyst")
    await service.revoke(item.id, by="u-erlan", reason="the bank's number was hijacked")
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Protocol

from gateway.domain import Decision
from gateway.ids import new_id

from .model import (
    Exemption,
    Feedback,
    FeedbackInvalid,
    FeedbackLimits,
    FeedbackNotFound,
    FeedbackRefused,
    Judgement,
    Scope,
    label_for,
    sender_key,
    template_key,
)
from .repository import FeedbackQuery, FeedbackRepository, MessageFacts


class ExemptionSink(Protocol):
    """Told of each exemption created or revoked in this process (ExemptionCache)."""

    def add(self, exemption: Exemption) -> None: ...

    def remove(self, exemption_id: str) -> None: ...


class FeedbackService:
    def __init__(
        self,
        repository: FeedbackRepository,
        sink: ExemptionSink | None = None,
        limits: FeedbackLimits | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repository = repository
        self.sink = sink
        self.limits = limits or FeedbackLimits()
        self.clock = clock

    async def give(
        self,
        message_id: str,
        judgement: Judgement,
        scope: Scope,
        reason: str,
        *,
        hours: float | None,
        actor: str,
        role: str,
    ) -> Feedback:
        """Record the analyst's feedback on a message. Raises FeedbackNotFound (no such
        message), FeedbackRefused (no exemption possible, or too many in force) or
        FeedbackInvalid (hours out of range)."""
        facts = await self.repository.message(message_id)
        if facts is None:
            raise FeedbackNotFound(f"no recorded message {message_id}")
        now = self.clock()
        key: str | None = None
        expires_at: float | None = None
        if scope is not Scope.MESSAGE:
            key = _key(facts, judgement, scope)
            expires_at = now + self._hours(hours) * 3600.0
            await self._room(now)
        item = Feedback(
            id=new_id(),
            message_id=facts.id,
            verdict=judgement,
            label=label_for(judgement, facts.decision),
            scope=scope,
            key=key,
            decision=facts.decision,
            rules=tuple(sorted(facts.rules)),
            reason=reason,
            actor=actor,
            role=role,
            created_at=now,
            expires_at=expires_at,
        )
        await self.repository.add(item)
        granted = item.exemption()
        if granted is not None and self.sink is not None:
            self.sink.add(granted)
        return item

    async def revoke(self, feedback_id: str, *, by: str, reason: str) -> Feedback:
        """Withdraw a feedback: its exemption ends at once and its label no longer trains."""
        item = await self.repository.get(feedback_id)
        if item is None:
            raise FeedbackNotFound(f"no feedback {feedback_id}")
        now = self.clock()
        if item.revoked_at is not None or not await self.repository.revoke(
            feedback_id, by, reason, now
        ):
            raise FeedbackRefused(f"feedback {feedback_id} is revoked already", "already_revoked")
        if self.sink is not None:
            self.sink.remove(feedback_id)
        return dataclasses.replace(item, revoked_at=now, revoked_by=by, revoke_reason=reason)

    async def find(self, query: FeedbackQuery) -> list[Feedback]:
        return await self.repository.find(query)

    def _hours(self, hours: float | None) -> float:
        chosen = self.limits.default_hours if hours is None else hours
        if not 0 < chosen <= self.limits.max_hours:
            raise FeedbackInvalid(
                f"hours: an exemption lasts more than 0 and at most {self.limits.max_hours:g}"
                " hours (feedback.max_hours)",
                "hours_out_of_range",
            )
        return chosen

    async def _room(self, now: float) -> None:
        if await self.repository.count_in_force(now) >= self.limits.max_active:
            raise FeedbackRefused(
                f"{self.limits.max_active} exemptions are in force (feedback.max_active): "
                "revoke some first",
                "too_many_exemptions",
            )


def _key(facts: MessageFacts, judgement: Judgement, scope: Scope) -> str:
    """The exemption's key; only a flag or block judged wrong becomes one."""
    if judgement is not Judgement.WRONG or facts.decision is Decision.ALLOW:
        raise FeedbackRefused(
            f"scope {scope.value}: an exemption comes from a flag or block judged wrong; "
            "give scope message to label this one",
            "not_applicable",
        )
    if scope is Scope.SENDER:
        return sender_key(facts.smsc, facts.source)
    if facts.text is None:
        raise FeedbackRefused(
            "the message's text is erased (text retention): no template to exempt",
            "text_erased",
        )
    return template_key(facts.text)
