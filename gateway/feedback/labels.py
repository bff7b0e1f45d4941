"""Texts labelled by analysts' decisions, for `fraudgate train --from-db` (docs/classifier.md
"Feedback"). Owns its SQL; reads only, and only texts still retained (a text erased by
text_retention_days is counted, never guessed).

* feedback: messages with feedback not revoked (the latest per message), labelled as the
  analyst said;
* complaints: texts forwarded to the complaint number whose case was decided: confirmed is
  fraud, rejected (not confirmed) is legitimate;
* cases: messages attached (evidence `message`) to a decided case, labelled the same way.

A case's decision is its latest confirm, reject or reopen: a case reopened on appeal and not
decided again teaches nothing. A message labelled by feedback is not taken again from a case
(the analyst's word on that very message comes first); a message in several cases takes the
latest decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from gateway.cases import Action, Source
from gateway.store import Store
from gateway.store.models import complaints, messages
from gateway.store.models_cases import case_evidence, case_transitions, cases
from gateway.store.models_feedback import feedback

from .model import Label

ORIGINS = ("feedback", "complaints", "cases")
_DECISIONS = (Action.CONFIRM.value, Action.REJECT.value, Action.REOPEN.value)


@dataclass(frozen=True, slots=True)
class LabelledText:
    text: str
    fraud: bool
    origin: str  # feedback | complaints | cases


@dataclass(slots=True)
class Tally:
    fraud: int = 0
    legitimate: int = 0
    erased: int = 0  # decided, but the text is gone (retention): not used

    def as_dict(self) -> dict[str, int]:
        return {"fraud": self.fraud, "legitimate": self.legitimate, "erased": self.erased}


@dataclass(slots=True)
class DecisionTexts:
    texts: list[LabelledText] = field(default_factory=list)
    tally: dict[str, Tally] = field(default_factory=lambda: {o: Tally() for o in ORIGINS})

    def add(self, origin: str, text: str | None, fraud: bool) -> None:
        t = self.tally[origin]
        if text is None or not text.strip():
            t.erased += 1
            return
        self.texts.append(LabelledText(text, fraud, origin))
        if fraud:
            t.fraud += 1
        else:
            t.legitimate += 1


class DecisionLabels:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def read(self) -> DecisionTexts:
        out = DecisionTexts()
        labelled: set[str] = set()
        for message_id, text, fraud in _latest(await self._rows(_feedback_query())):
            out.add("feedback", text, fraud)
            labelled.add(message_id)
        for _id, text, fraud in _latest(await self._rows(_complaints_query())):
            out.add("complaints", text, fraud)
        for message_id, text, fraud in _latest(await self._rows(_case_messages_query())):
            if message_id not in labelled:
                out.add("cases", text, fraud)
        return out

    async def _rows(self, query: sa.Select[Any]) -> list[Any]:
        with self.store.guard("feedback.labels"):
            async with self.store.engine.connect() as conn:
                return list(await conn.execute(query))


def _latest(rows: Iterable[Any]) -> list[tuple[str, str | None, bool]]:
    """(id, text, fraud) once per id, the last row winning (rows come oldest first)."""
    found: dict[str, tuple[str, str | None, bool]] = {}
    for r in rows:
        found.pop(r.id, None)  # re-inserted: the order is the latest decision's
        found[r.id] = (r.id, r.text, r.fraud)
    return list(found.values())


def _feedback_query() -> sa.Select[Any]:
    f, m = feedback, messages
    return (
        sa.select(
            m.c.id.label("id"),
            m.c.text.label("text"),
            (f.c.label == Label.FRAUD.value).label("fraud"),
        )
        .select_from(f.join(m, m.c.id == f.c.message_id))
        .where(f.c.revoked_at.is_(None))
        .order_by(f.c.created_at, f.c.id)
    )


def _decided() -> sa.Subquery:
    """Each case's latest confirm / reject / reopen: (case_id, action, at)."""
    t = case_transitions
    last = (
        sa.select(t.c.case_id, sa.func.max(t.c.seq).label("seq"))
        .where(t.c.action.in_(_DECISIONS))
        .group_by(t.c.case_id)
        .subquery()
    )
    return (
        sa.select(t.c.case_id, t.c.action, t.c.at)
        .select_from(t.join(last, sa.and_(t.c.case_id == last.c.case_id, t.c.seq == last.c.seq)))
        .where(t.c.action != Action.REOPEN.value)
        .subquery()
    )


def _complaints_query() -> sa.Select[Any]:
    c, k, d = complaints, cases, _decided()
    return (
        sa.select(
            c.c.id.label("id"),
            c.c.forwarded_text.label("text"),
            (d.c.action == Action.CONFIRM.value).label("fraud"),
        )
        .select_from(
            c.join(
                k, sa.and_(k.c.source == Source.COMPLAINT.value, k.c.external_id == c.c.id)
            ).join(d, d.c.case_id == k.c.id)
        )
        .order_by(d.c.at, c.c.id)
    )


def _case_messages_query() -> sa.Select[Any]:
    e, m, d = case_evidence, messages, _decided()
    return (
        sa.select(
            m.c.id.label("id"),
            m.c.text.label("text"),
            (d.c.action == Action.CONFIRM.value).label("fraud"),
        )
        .select_from(e.join(m, m.c.id == e.c.ref).join(d, d.c.case_id == e.c.case_id))
        .where(e.c.kind == "message")
        .order_by(d.c.at, m.c.id)
    )
