"""Erasing personal data past its retention period, keeping the skeleton (docs/retention.md).

What goes and what stays, per kind:

centre_reports     the payload's names, IIN and numbers, N days after the centre acknowledged the
                   report (or, refused for good, it was resolved: resent or dismissed); never
                   before: an unacknowledged report must stay deliverable. Kept: kind, report
                   and case ids, round, operator, times, evidence types and times, how many
                   numbers, `erased_at`.
centre_inbound     the payload's numbers and description, N days after the case it opened was
                   last changed, and only once that case is not being worked on.
helpline_complaints  the caller's number and words, on the same rule as centre_inbound.
api_audit          rows older than N days are deleted.

Cases and their transitions (who decided what, when, why) are not touched here. Work is done
`chunk` rows per transaction, so a backlog never holds the write lock long.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.alerts.payloads import iso_utc
from gateway.store.models_api import api_audit, helpline_complaints
from gateway.store.models_cases import cases
from gateway.store.models_centre import centre_inbound, centre_reports

from .settings import RetentionSettings

log = logging.getLogger("fraudgate.retention")
DAY = 86400.0
# A case in one of these states is still being worked on: its evidence stays whatever its age.
OPEN_STATES = ("new", "verifying", "confirmed", "reopened")
ERASED = "erased_at"  # the payload key that marks an erased payload
# What a report keeps: no names, IIN, numbers, sender or free text (docs/centre-api.md fields).
_REPORT_KEEP = ("schema_version", "report_id", "kind", "operator", "created_at", "case_id",
                "round", "centre_ref", "source", "status", "subscriber_status", "detected_at",
                "facts_at", "suspended_at", "unblocked_at", "decided_at")  # fmt: skip
_INBOUND_KEEP = ("schema_version", "report_id", "category", "reported_at")


class StoreLike(Protocol):
    """gateway.store.Store: its engine and its error translation."""

    @property
    def engine(self) -> AsyncEngine: ...

    def guard(self, operation: str) -> contextlib.AbstractContextManager[None]: ...


@dataclass
class RetentionReport:
    """How many rows each kind had erased (or, in a dry run, would have)."""

    centre_reports: int = 0
    centre_inbound: int = 0
    complaints: int = 0
    audit_deleted: int = 0

    @property
    def total(self) -> int:
        return self.centre_reports + self.centre_inbound + self.complaints + self.audit_deleted


def report_skeleton(payload: dict[str, Any], now: float) -> dict[str, Any]:
    """A centre report's payload without the subscriber's names, IIN and numbers (and without
    the free-text reason, which the case's transitions keep): what stays says what was
    reported about which case, when, and how many numbers."""
    kept = {k: payload[k] for k in _REPORT_KEEP if k in payload}
    kept["number_count"] = len(payload.get("numbers") or ())
    subscriber = payload.get("subscriber")
    if isinstance(subscriber, dict):
        kept["subscriber_number_count"] = len(subscriber.get("numbers") or ())
    evidence = payload.get("evidence")
    if isinstance(evidence, list):
        kept["evidence"] = [
            {"type": e.get("type"), "at": e.get("at")} for e in evidence if isinstance(e, dict)
        ]
    kept[ERASED] = iso_utc(now)
    return kept


def inbound_skeleton(payload: dict[str, Any], now: float) -> dict[str, Any]:
    """A centre inbound report without its numbers and description."""
    kept = {k: payload[k] for k in _INBOUND_KEEP if k in payload}
    kept["number_count"] = len(payload.get("numbers") or ())
    kept[ERASED] = iso_utc(now)
    return kept


def _not_erased(payload: Any) -> sa.ColumnElement[bool]:
    return payload[ERASED].as_string().is_(None)  # type: ignore[no-any-return]


def _case_settled(case_id: Any, cutoff: float) -> sa.ColumnElement[bool]:
    """No case `case_id` still being worked on or changed since `cutoff` (none at all: true)."""
    busy = sa.select(cases.c.id).where(
        cases.c.id == case_id,
        sa.or_(cases.c.state.in_(OPEN_STATES), cases.c.updated_at >= cutoff),
    )
    return ~sa.exists(busy)


class Retention:
    """`await Retention(store, settings).run(now)` erases what is past its period."""

    def __init__(self, store: StoreLike, settings: RetentionSettings, *, chunk: int = 500):
        self.store = store
        self.settings = settings
        self.chunk = chunk

    async def run(self, now: float, *, dry_run: bool = False) -> RetentionReport:
        """Erase (with `dry_run`: count) every row past its period at `now`; counts are logged,
        never values."""
        s = self.settings
        report = RetentionReport(
            centre_reports=await self._payloads(
                centre_reports.c.id, self._reports_due(now - s.centre_reports_days * DAY),
                report_skeleton, now, dry_run,
            ),
            centre_inbound=await self._payloads(
                centre_inbound.c.report_id, self._inbound_due(now - s.centre_inbound_days * DAY),
                inbound_skeleton, now, dry_run,
            ),
            complaints=await self._complaints(now - s.complaints_days * DAY, dry_run),
            audit_deleted=await self._audit(now - s.audit_days * DAY, dry_run),
        )  # fmt: skip
        if report.total:
            verb = "would erase" if dry_run else "erased"
            log.info(
                "retention %s: %d centre report payloads, %d centre inbound payloads, "
                "%d help-line complaints; %d audit rows deleted",
                verb, report.centre_reports, report.centre_inbound, report.complaints,
                report.audit_deleted,
            )  # fmt: skip
        return report

    def _reports_due(self, cutoff: float) -> sa.ColumnElement[bool]:
        # set aside: refused for good AND resolved (resent as a new revision, or dismissed); a
        # refused report nobody has acted on may still be resent
        t = centre_reports.c
        aside = sa.and_(t.acked_at.is_(None), t.resolved_at < cutoff)
        return sa.and_(sa.or_(t.acked_at < cutoff, aside), _not_erased(t.payload))

    def _inbound_due(self, cutoff: float) -> sa.ColumnElement[bool]:
        t = centre_inbound.c
        return sa.and_(
            t.received_at < cutoff, _not_erased(t.payload), _case_settled(t.case_id, cutoff)
        )

    async def _payloads(
        self, key: sa.Column[Any], due: sa.ColumnElement[bool], skeleton: Any, now: float,
        dry_run: bool,
    ) -> int:  # fmt: skip
        """Replace each due row's payload by its skeleton, `chunk` rows per transaction."""
        table = key.table
        payload = table.c.payload
        if dry_run:
            return await self._count(table, due)
        erased = 0
        while True:
            with self.store.guard("retention"):
                async with self.store.engine.begin() as conn:
                    query = sa.select(key, payload).where(due).order_by(key).limit(self.chunk)
                    rows: Sequence[Any] = (await conn.execute(query)).all()
                    for row_key, data in rows:
                        values = {"payload": skeleton(dict(data), now)}
                        await conn.execute(table.update().where(key == row_key).values(values))
            erased += len(rows)
            if len(rows) < self.chunk:
                return erased

    async def _complaints(self, cutoff: float, dry_run: bool) -> int:
        t = helpline_complaints.c
        due = sa.and_(t.received_at < cutoff, t.caller != "", _case_settled(t.case_id, cutoff))
        if dry_run:
            return await self._count(helpline_complaints, due)
        erase = helpline_complaints.update().values(caller="", description="")
        return await self._in_chunks(t.id, due, erase)

    async def _audit(self, cutoff: float, dry_run: bool) -> int:
        due = api_audit.c.at < cutoff
        if dry_run:
            return await self._count(api_audit, due)
        return await self._in_chunks(api_audit.c.id, due, api_audit.delete())

    async def _in_chunks(self, key: sa.Column[Any], due: sa.ColumnElement[bool], stmt: Any) -> int:
        """Run `stmt` (an UPDATE or DELETE) on the due rows, `chunk` at a time."""
        done = 0
        while True:
            ids = sa.select(key).where(due).limit(self.chunk).scalar_subquery()
            with self.store.guard("retention"):
                async with self.store.engine.begin() as conn:
                    result = await conn.execute(stmt.where(key.in_(ids)))
            done += int(result.rowcount)
            if result.rowcount < self.chunk:
                return done

    async def _count(self, table: sa.Table | Any, due: sa.ColumnElement[bool]) -> int:
        query = sa.select(sa.func.count()).select_from(table).where(due)
        with self.store.guard("retention"):
            async with self.store.engine.connect() as conn:
                return int((await conn.execute(query)).scalar_one())


__all__ = [
    "OPEN_STATES",
    "Retention",
    "RetentionReport",
    "StoreLike",
    "inbound_skeleton",
    "report_skeleton",
]
