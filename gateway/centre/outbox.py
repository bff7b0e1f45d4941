"""The centre outbox: reports written with the case change that causes them, then delivered.

`CentreOutbox.enqueue()` is the sink the cases module calls INSIDE its transaction (transactional
outbox, DESIGN.md 5): the report row commits or rolls back with the case change. The unique
(case_id, kind) makes a repeated call a no-op: one event, one report, whatever is retried.
`CentreReports` is what the dispatcher reads and updates.

Several nodes: the dispatcher takes one report at a time with `CentreReports.claim()`. On
PostgreSQL the row is locked FOR UPDATE SKIP LOCKED for the time of its POST (bounded by the
centre link's timeout), and the attempt and the outcome marked meanwhile commit with the claim:
a second dispatcher (two nodes overlapping during a lease takeover) skips it, and never sends a
case's later report while an earlier one of the same case is pending (claimed elsewhere or not).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.detect.sender import KZ_MOBILE_RE
from gateway.ids import new_id
from gateway.store.claims import ClaimTransaction, claim_transaction
from gateway.store.models_centre import centre_reports

from .reports import CaseLike, NoticeLike, build_report
from .schema import REPORT_KINDS

log = logging.getLogger(__name__)


class CentreOutbox:
    """The sink of centre reports: `await outbox.enqueue(conn, case, notice)`."""

    def __init__(self, operator: str, *, clock: Callable[[], float] = time.time) -> None:
        self.operator = operator
        self.clock = clock

    async def enqueue(self, conn: AsyncConnection, case: CaseLike, notice: NoticeLike) -> None:
        """Queue the notice's report on `conn`, in the caller's transaction. A second call for
        the same case, kind and round queues nothing (unique (case_id, kind, round, revision))."""
        await self.queue(conn, case, notice, revision=1)

    async def queue(
        self, conn: AsyncConnection, case: CaseLike, notice: NoticeLike, *, revision: int
    ) -> str | None:
        """The report's id, or None when that revision was queued already."""
        if notice.kind not in REPORT_KINDS:
            raise ValueError(f"unknown centre report kind {notice.kind!r}")
        now = self.clock()
        report_id = new_id()
        payload = build_report(case, notice, report_id=report_id, operator=self.operator, now=now)
        row = {
            "id": report_id, "kind": notice.kind, "case_id": case.id, "round": notice.round,
            "revision": revision, "payload": payload, "created_at": now, "attempts": 0,
        }  # fmt: skip
        return await insert_report(conn, row)


async def insert_report(conn: AsyncConnection, row: dict[str, Any]) -> str | None:
    """Insert an outbox row; None (and nothing written) when its (case, kind, round, revision)
    is there already."""
    insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    keys = ["case_id", "kind", "round", "revision"]
    payload = row["payload"]
    # incomplete only when there is someone to complete: a number of the Kazakh mobile plan
    # (an alphanumeric or foreign sender has no subscriber here to find)
    local = any(KZ_MOBILE_RE.fullmatch(n.removeprefix("+")) for n in payload.get("numbers", ()))
    unknown = (
        row["kind"] == "detection"
        and payload.get("subscriber_status") == "unknown_to_registry"
        and local
    )
    row = {**row, "subscriber_unknown": unknown}
    result = await conn.execute(
        insert(centre_reports).on_conflict_do_nothing(index_elements=keys), row
    )
    if result.rowcount == 0:
        log.info("centre report %s (round %s) for case %s already queued",
                 row["kind"], row["round"], row["case_id"])  # fmt: skip
        return None
    log.info("centre report %s (%s, round %s) queued for case %s",
             row["id"], row["kind"], row["round"], row["case_id"])  # fmt: skip
    return str(row["id"])


@dataclass(frozen=True, slots=True)
class PendingReport:
    id: str
    kind: str
    case_id: str
    payload: dict[str, Any]
    created_at: float
    attempts: int


class ReportStore(Protocol):
    """What the dispatcher needs of the store (CentreReports provides it)."""

    def claim(self, limit: int) -> contextlib.AbstractAsyncContextManager[list[PendingReport]]: ...

    async def mark_attempt(self, id: str, now: float) -> None: ...

    async def mark_acked(self, id: str, ack_id: str | None, now: float) -> None: ...

    async def mark_failed(self, id: str, error: str, *, permanent: bool, now: float) -> None: ...


class StoreLike(Protocol):
    """gateway.store.Store: its engine and its error translation."""

    @property
    def engine(self) -> AsyncEngine: ...

    def guard(self, operation: str) -> contextlib.AbstractContextManager[None]: ...


class CentreReports:
    """The outbox table on a gateway Store (errors raised as StoreError / StoreUnavailable)."""

    def __init__(self, store: StoreLike, *, timeout: float | None = 10.0) -> None:
        self.store = store
        self.timeout = timeout  # each statement of a claim (PostgreSQL)
        # reports claimed now (PostgreSQL): their marks run in the claim's transaction, which
        # holds their row locks (another connection's UPDATE would wait for it: a deadlock)
        self._claims: dict[str, ClaimTransaction] = {}

    @contextlib.asynccontextmanager
    async def claim(self, limit: int = 1) -> AsyncIterator[list[PendingReport]]:
        """`async with reports.claim(1) as batch:` the oldest pending reports that are the
        oldest pending of their case, claimed until the block ends; mark_attempt / mark_acked /
        mark_failed on them meanwhile are part of the claim (PostgreSQL: one transaction, the
        rows locked FOR UPDATE SKIP LOCKED, committed when the block ends, also when it raises;
        SQLite: a plain read, marks written at once)."""
        query = _pending_query(limit, first_of_case=True)
        if self.store.engine.dialect.name != "postgresql":
            with self.store.guard("centre claim"):
                async with self.store.engine.connect() as conn:
                    batch = [PendingReport(*r) for r in await conn.execute(query)]
            yield batch
            return
        async with claim_transaction(
            self.store.engine, self.store.guard, "centre claim", self.timeout
        ) as tx:
            rows = await tx.execute("centre claim", query.with_for_update(skip_locked=True))
            batch = [PendingReport(**r._mapping) for r in rows]
            for report in batch:
                self._claims[report.id] = tx
            try:
                yield batch
            finally:
                for report in batch:
                    self._claims.pop(report.id, None)

    async def mark_attempt(self, id: str, now: float) -> None:
        """Counted BEFORE the request goes out: a crash mid-request still shows the attempt
        (on PostgreSQL, within a claim, once the claim commits: a crash rolls both back)."""
        t = centre_reports.c
        values = {"attempts": t.attempts + 1, "sent_at": sa.func.coalesce(t.sent_at, now)}
        await self._update("centre mark_attempt", id, values)

    async def mark_acked(self, id: str, ack_id: str | None, now: float) -> None:
        values = {"acked_at": now, "ack_id": ack_id, "last_error": None}
        await self._update("centre mark_acked", id, values)

    async def mark_failed(self, id: str, error: str, *, permanent: bool, now: float) -> None:
        values: dict[str, Any] = {"last_error": error[:2000]}
        if permanent:
            values["failed_at"] = now
        await self._update("centre mark_failed", id, values)

    async def _update(self, operation: str, id: str, values: dict[str, Any]) -> None:
        t = centre_reports.c
        stmt = centre_reports.update().where(t.id == id, t.acked_at.is_(None)).values(values)
        claim = self._claims.get(id)
        if claim is not None:
            await claim.execute(operation, stmt)
            return
        with self.store.guard(operation):
            async with self.store.engine.begin() as conn:
                await conn.execute(stmt)

    async def get(self, id: str) -> dict[str, Any] | None:
        """One row as a dict (tests, the API)."""
        with self.store.guard("centre get"):
            async with self.store.engine.connect() as conn:
                row = (
                    await conn.execute(sa.select(centre_reports).where(centre_reports.c.id == id))
                ).first()
                return dict(row._mapping) if row is not None else None

    async def all(self) -> list[dict[str, Any]]:
        """Every row, oldest first (tests, audit)."""
        query = sa.select(centre_reports).order_by(centre_reports.c.created_at)
        with self.store.guard("centre all"):
            async with self.store.engine.connect() as conn:
                return [dict(r._mapping) for r in await conn.execute(query)]


def _pending_query(limit: int, *, first_of_case: bool = False) -> sa.Select[Any]:
    """Pending reports, oldest first; `first_of_case`: only a case's oldest pending one (a later
    report of the case waits for it, wherever it is being sent)."""
    t = centre_reports.c
    pending = (t.acked_at.is_(None), t.failed_at.is_(None), t.resolved_at.is_(None))
    query = sa.select(t.id, t.kind, t.case_id, t.payload, t.created_at, t.attempts).where(*pending)
    if first_of_case:
        o = centre_reports.alias("earlier").c
        earlier = sa.or_(
            o.created_at < t.created_at, sa.and_(o.created_at == t.created_at, o.id < t.id)
        )
        query = query.where(
            ~sa.exists().where(
                o.case_id == t.case_id,
                o.acked_at.is_(None),
                o.failed_at.is_(None),
                o.resolved_at.is_(None),
                earlier,
            )
        )
    return query.order_by(t.created_at, t.id).limit(limit)


__all__ = ["CentreOutbox", "CentreReports", "PendingReport", "ReportStore"]
