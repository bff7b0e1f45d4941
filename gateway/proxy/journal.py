"""The proxy's journal (tables `proxy_submits`, `proxy_inbound`; docs/proxy.md "Nothing lost").

Every change goes through one writer that commits them in batches, in order (group commit):
a submit's row is written before the aggregator is answered; "sending" is written before the
submit leaves for the SMSC, so that after a crash the rows that may have reached it are known
(reconciled by their receipts, docs/proxy.md); "forwarded" with the SMSC's id when it answers.
The writer's futures fail with the store's error when the database cannot commit: the
aggregator is then answered `store_error_status` and resubmits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store import Store
from gateway.store.models_proxy import proxy_inbound, proxy_submits

log = logging.getLogger("fraudgate.proxy")


class SubmitState(Enum):
    HELD = "held"  # a leading part, waiting for the last part of its message
    PENDING = "pending"  # to be sent to the SMSC
    SENDING = "sending"  # sent (or being sent): the SMSC may have it
    FORWARDED = "forwarded"  # the SMSC accepted it (smsc_id)
    FAILED = "failed"  # the SMSC refused it for good, or every attempt failed
    DROPPED = "dropped"  # its message was blocked after it was accepted (a leading part)
    CANCELLED = "cancelled"  # cancel_sm before it went out
    RECEIPTED = "receipted"  # forwarded, and the SMSC's final receipt for it came


UNFINISHED = (SubmitState.HELD, SubmitState.PENDING, SubmitState.SENDING)


@dataclass
class SubmitRow:
    id: str
    account: str
    state: SubmitState
    pdu: bytes
    part: int = 1
    group_key: str | None = None
    receipt: int = 0  # the aggregator's registered_delivery
    smsc_id: str | None = None
    upstream: str | None = None
    error: int | None = None
    attempts: int = 0
    created_at: float = 0.0
    node: str = ""  # set by the journal: the node that accepted it resumes it
    public_id: str = ""  # the id the aggregator knows ("" = id)

    @property
    def known_as(self) -> str:
        """The id the aggregator got for it."""
        return self.public_id or self.id

    def values(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "public_id": self.known_as,
            "account": self.account,
            "node": self.node,
            "state": self.state.value,
            "pdu": self.pdu,
            "group_key": self.group_key,
            "part": self.part,
            "receipt": self.receipt,
            "smsc_id": self.smsc_id,
            "upstream": self.upstream,
            "error": self.error,
            "attempts": self.attempts,
            "created_at": self.created_at or now,
            "updated_at": now,
        }


def _row(r: Any) -> SubmitRow:
    return SubmitRow(
        id=r.id, account=r.account, state=SubmitState(r.state), pdu=bytes(r.pdu), part=r.part,
        group_key=r.group_key, receipt=r.receipt, smsc_id=r.smsc_id, upstream=r.upstream,
        error=r.error, attempts=r.attempts, created_at=r.created_at, node=r.node,
        public_id=r.public_id,
    )  # fmt: skip


@dataclass
class InboundRow:
    id: str
    account: str
    kind: str  # receipt | mo
    pdu: bytes
    attempts: int = 0
    created_at: float = 0.0


# --------------------------------------------------------------------------------------------
# the writer's operations


@dataclass
class Accept:
    """Insert a submit unless it (or its message under its prior id) is there: the result is
    the row already there, or None when this one is new."""

    row: SubmitRow
    prior_id: str = ""
    release: str | None = None  # the message's group_key: its held parts become pending


@dataclass
class SetState:
    ids: Sequence[str]
    state: SubmitState
    smsc_id: str | None = None
    upstream: str | None = None
    error: int | None = None
    attempt: bool = False  # count one more attempt
    only_from: tuple[SubmitState, ...] = ()  # only rows now in one of these states
    keep: tuple[SubmitState, ...] = ()  # rows in these states keep it (their fields change)


@dataclass
class Keep:
    """An inbound PDU kept for an aggregator."""

    row: InboundRow


@dataclass
class Delivered:
    ids: Sequence[str]
    failed: bool = False  # an attempt that failed: counted, kept


Op = Accept | SetState | Keep | Delivered


def _shape(op: SetState) -> tuple[object, ...]:
    """What state changes must share to be written as one executemany."""
    return (op.state, op.upstream, op.error, op.attempt, op.only_from, op.keep,
            op.smsc_id is None)  # fmt: skip


class Journal:
    """The proxy's rows in the gateway's database (`store`), written by one group-commit loop
    (`run`)."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        batch_max: int = 500,
        commit_timeout: float = 10.0,
        node: str = "",
    ) -> None:
        self.store = store
        self.node = node  # several nodes on one database: each resumes its own rows
        self.clock = clock
        self.batch_max = batch_max
        self.commit_timeout = commit_timeout
        self._queue: asyncio.Queue[tuple[Op, asyncio.Future[Any]]] = asyncio.Queue()
        self._insert: Any = postgresql.insert if store.dialect == "postgresql" else sqlite.insert
        self.commits = 0
        self.failures = 0
        self._committing = 0

    def submit(self, op: Op) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((op, fut))
        return fut

    @property
    def backlog(self) -> int:
        """Changes not written yet: queued, and the batch being committed."""
        return self._queue.qsize() + self._committing

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._committing = len(batch)  # in the backlog until written (a shutdown waits)
            try:
                await self._commit(batch)
            finally:
                self._committing = 0

    async def _commit(self, batch: list[tuple[Op, asyncio.Future[Any]]]) -> None:
        try:
            results = await asyncio.wait_for(
                self._write([op for op, _ in batch]), self.commit_timeout
            )
        except Exception as exc:  # StoreError, timeout: every op of the batch fails
            self.failures += len(batch)
            log.warning("proxy journal: %d change(s) not written: %s", len(batch), exc)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()  # fire-and-forget callers: no "never retrieved" noise
            await asyncio.sleep(0.2)
            return
        self.commits += 1
        for (_, fut), result in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    async def _write(self, ops: list[Op]) -> list[Any]:
        """One transaction in the store's writer (SQLite: its thread, beside the recorder's
        batches; through SQLAlchemy's async engine every statement was a thread hop)."""
        now = self.clock()
        return await self.store.write("proxy journal", lambda conn: self._apply_all(conn, ops, now))

    def _apply_all(self, conn: sa.Connection, ops: list[Op], now: float) -> list[Any]:
        """The ops in order: inserts gathered until another op needs them written, state
        changes of one shape (the same state, filter and fields) gathered into one
        executemany (a per-row UPDATE cost a millisecond of CPU per submit)."""
        results: list[Any] = []
        there = self._there(conn, ops)
        fresh: list[dict[str, Any]] = []
        run: list[SetState] = []
        for op in ops:
            if isinstance(op, Accept):
                old = there.get(op.row.id) or there.get(op.prior_id)
                if old is None:
                    op.row.node = self.node
                    fresh.append(op.row.values(now))
                    there[op.row.id] = op.row  # a repeat within the batch
                results.append(old)
                if op.release is not None:  # in this transaction, after the insert
                    fresh = self._insert_now(conn, fresh)
                    self._release(conn, op.row.account, op.release, now)
                continue
            fresh = self._insert_now(conn, fresh)  # before a later op needs them
            results.append(None)
            if isinstance(op, SetState):
                if run and _shape(run[0]) != _shape(op):
                    run = self._set_states(conn, run, now)
                run.append(op)
                continue
            run = self._set_states(conn, run, now)
            self._apply(conn, op, now)
        self._insert_now(conn, fresh)
        self._set_states(conn, run, now)
        return results

    def _there(self, conn: sa.Connection, ops: list[Op]) -> dict[str, SubmitRow]:
        """The rows the batch's submits (or their messages under their prior ids) have."""
        accepts = [op for op in ops if isinstance(op, Accept)]
        if not accepts:
            return {}
        ids = {op.row.id for op in accepts} | {op.prior_id for op in accepts}
        ids.discard("")
        found = conn.execute(sa.select(proxy_submits).where(proxy_submits.c.id.in_(ids)))
        return {r.id: _row(r) for r in found}

    def _set_states(self, conn: sa.Connection, ops: list[SetState], now: float) -> list[SetState]:
        """State changes of one shape: one UPDATE ... WHERE id = ? for every id. Returns []."""
        if not ops:
            return []
        t = proxy_submits.c
        first = ops[0]
        values: dict[str, Any] = {"state": first.state.value, "updated_at": now}
        if first.keep:  # one statement, not two: each cost as much as the rest of a submit
            kept = sa.or_(*(t.state == s.value for s in first.keep))
            values["state"] = sa.case((kept, t.state), else_=sa.literal(first.state.value))
        if first.upstream is not None:
            values["upstream"] = first.upstream
        if first.error is not None:
            values["error"] = first.error
        if first.attempt:
            values["attempts"] = t.attempts + 1
        if first.smsc_id is not None:
            values["smsc_id"] = sa.bindparam("b_smsc_id")
        stmt = proxy_submits.update().where(t.id == sa.bindparam("b_id")).values(values)
        if first.only_from:  # IN cannot take part in an executemany: equalities OR'd
            stmt = stmt.where(sa.or_(*(t.state == s.value for s in first.only_from)))
        if first.smsc_id is not None:
            params = [{"b_id": i, "b_smsc_id": op.smsc_id} for op in ops for i in op.ids]
        else:
            params = [{"b_id": i} for op in ops for i in op.ids]
        if params:
            conn.execute(stmt, params)
        return []

    def _release(self, conn: sa.Connection, account: str, group_key: str, now: float) -> None:
        """A long message's held parts become pending (its last part allowed it)."""
        t = proxy_submits.c
        conn.execute(
            proxy_submits.update()
            .where(t.account == account, t.group_key == group_key,
                   t.state == SubmitState.HELD.value)
            .values(state=SubmitState.PENDING.value, updated_at=now)
        )  # fmt: skip

    def _insert_now(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert the gathered rows; returns [] (the caller's new gathering list)."""
        if rows:
            conn.execute(self._insert(proxy_submits).on_conflict_do_nothing(), rows)
        return []

    def _apply(self, conn: sa.Connection, op: Keep | Delivered, now: float) -> None:
        if isinstance(op, Keep):
            r = op.row
            conn.execute(
                self._insert(proxy_inbound).on_conflict_do_nothing(),
                [{"id": r.id, "account": r.account, "kind": r.kind, "pdu": r.pdu,
                  "attempts": r.attempts, "created_at": r.created_at or now,
                  "delivered_at": None}],
            )  # fmt: skip
        elif isinstance(op, Delivered):
            t2 = proxy_inbound.c
            stmt2 = proxy_inbound.update().where(t2.id.in_(list(op.ids)))
            if op.failed:
                conn.execute(stmt2.values(attempts=t2.attempts + 1))
            else:
                conn.execute(stmt2.values(delivered_at=now))

    # reads (outside the writer: they see what it committed) ---------------------------------
    async def unfinished(self) -> list[SubmitRow]:
        """This node's held, pending and sending rows, oldest first (at start: what to go on
        with; another node's are its own to resume)."""
        query = (
            sa.select(proxy_submits)
            .where(
                proxy_submits.c.state.in_([s.value for s in UNFINISHED]),
                proxy_submits.c.node == self.node,
            )
            .order_by(proxy_submits.c.created_at, proxy_submits.c.part)
        )
        with self.store.guard("proxy unfinished"):
            async with self.store.engine.connect() as conn:
                return [_row(r) for r in await conn.execute(query)]

    async def awaiting_receipts(self, since: float, limit: int) -> list[SubmitRow]:
        """This node's forwarded rows created since `since` whose final receipt has not come,
        the newest `limit` of them, oldest first (at start: what the SMSC's receipts may name
        by address pair only)."""
        t = proxy_submits.c
        query = (
            sa.select(proxy_submits)
            .where(
                t.state == SubmitState.FORWARDED.value,
                t.node == self.node,
                t.created_at >= since,
            )
            .order_by(t.created_at.desc(), t.part.desc())
            .limit(limit)
        )
        with self.store.guard("proxy awaiting_receipts"):
            async with self.store.engine.connect() as conn:
                return [_row(r) for r in await conn.execute(query)][::-1]

    async def find(self, ids: Iterable[str], *, public: bool = False) -> list[SubmitRow]:
        """Rows by their id, or (`public`) by the id their aggregator knows."""
        column = proxy_submits.c.public_id if public else proxy_submits.c.id
        query = sa.select(proxy_submits).where(column.in_(list(ids)))
        with self.store.guard("proxy find"):
            async with self.store.engine.connect() as conn:
                return [_row(r) for r in await conn.execute(query)]

    async def by_smsc_id(self, smsc_id: str) -> SubmitRow | None:
        query = (
            sa.select(proxy_submits)
            .where(proxy_submits.c.smsc_id == smsc_id)
            .order_by(proxy_submits.c.created_at.desc())
            .limit(1)
        )
        with self.store.guard("proxy by_smsc_id"):
            async with self.store.engine.connect() as conn:
                r = (await conn.execute(query)).first()
        return _row(r) if r is not None else None

    async def inbound_for(self, account: str, max_attempts: int, limit: int) -> list[InboundRow]:
        t = proxy_inbound.c
        query = (
            sa.select(proxy_inbound)
            .where(t.account == account, t.delivered_at.is_(None), t.attempts < max_attempts)
            .order_by(t.created_at)
            .limit(limit)
        )
        with self.store.guard("proxy inbound"):
            async with self.store.engine.connect() as conn:
                return [
                    InboundRow(r.id, r.account, r.kind, bytes(r.pdu), r.attempts, r.created_at)
                    for r in await conn.execute(query)
                ]

    async def purge(self, older_than: float, chunk: int = 5000) -> int:
        """Delete the rows created before `older_than` (epoch seconds), whatever their state:
        they hold the messages' texts (the PDUs), kept no longer than the messages' own
        (`[gateway] text_retention_days`). In chunks: a backlog never holds the write lock
        long. Returns the rows deleted."""
        total = 0
        for table in (proxy_submits, proxy_inbound):
            while True:
                due = sa.select(table.c.id).where(table.c.created_at < older_than).limit(chunk)
                with self.store.guard("proxy purge"):
                    async with self.store.engine.begin() as conn:
                        done = await conn.execute(table.delete().where(table.c.id.in_(due)))
                total += done.rowcount or 0
                if (done.rowcount or 0) < chunk:
                    break
        return total

    async def counts(self) -> dict[str, int]:
        """Rows by state (and inbound rows waiting): for status and tests."""
        t = proxy_submits.c
        with self.store.guard("proxy counts"):
            async with self.store.engine.connect() as conn:
                rows = await conn.execute(sa.select(t.state, sa.func.count()).group_by(t.state))
                out = {state: int(n) for state, n in rows}
                waiting = await conn.execute(
                    sa.select(sa.func.count()).where(proxy_inbound.c.delivered_at.is_(None))
                )
                out["inbound_waiting"] = int(waiting.scalar_one())
        return out
