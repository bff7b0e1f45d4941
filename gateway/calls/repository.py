"""The call findings on the Store: each (kind, subject) recorded once, with its alert in the same
transaction (the dispatcher publishes it from the alerts table, docs/mqtt.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from gateway.calls.analyzer import CallFinding
from gateway.domain import Alert
from gateway.store import Store
from gateway.store.models import alerts
from gateway.store.models_calls import call_findings
from gateway.store.store import alert_row


class CallFindings:
    def __init__(self, store: Store) -> None:
        self.store = store
        insert: Any = postgresql.insert if store.dialect == "postgresql" else sqlite.insert
        self._insert = (
            insert(call_findings)
            .on_conflict_do_nothing(index_elements=["kind", "subject"])
            .returning(call_findings.c.id)
        )
        self._insert_alerts = insert(alerts).on_conflict_do_nothing(index_elements=["id"])

    async def record(
        self, findings: Sequence[CallFinding], alert_of: Callable[[CallFinding], Alert], now: float
    ) -> list[CallFinding]:
        """Record `findings`; those new (no finding of the same kind and subject before) get
        their alert. Returns the new ones."""
        if not findings:
            return []
        fresh: list[CallFinding] = []
        with self.store.guard("calls.record"):
            async with self.store.engine.begin() as conn:
                for f in findings:
                    done = await conn.execute(self._insert, [_row(f, now)])
                    if done.first() is not None:
                        fresh.append(f)
                if fresh:
                    await conn.execute(self._insert_alerts, [alert_row(alert_of(f)) for f in fresh])
        return fresh


def _row(f: CallFinding, now: float) -> dict[str, Any]:
    return {
        "id": f.id,
        "kind": f.kind.value,
        "subject": f.subject,
        "msisdn": f.msisdn,
        "imsi": f.imsi,
        "imei": f.imei,
        "score": f.score,
        "first_at": f.first_at,
        "at": f.at,
        "found_at": now,
        "reasons": json.dumps(
            [{"id": r.id, "score": r.score, "description": r.description} for r in f.reasons],
            ensure_ascii=False,
        ),
        "details": json.dumps(f.details, ensure_ascii=False, default=str),
    }
