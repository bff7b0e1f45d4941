"""Outbox claims: rows a dispatcher works on, locked so another node's dispatcher skips them.

On PostgreSQL a claim is one transaction on its own connection: the pending rows are read with
`SELECT ... FOR UPDATE SKIP LOCKED`, the caller publishes or sends them, marks the outcome on the
SAME connection, and the transaction commits. Another node's dispatcher reading the outbox
meanwhile skips the locked rows; once the claim commits, the rows it marked are no longer
pending (PostgreSQL re-checks the WHERE clause of a row locked after a concurrent update). A
node that dies mid-claim loses its session: the transaction rolls back, the locks go and the
rows are claimed again by another node (at-least-once, with the same ids).

The locks are held only while the caller works on the rows (an MQTT publish or one centre POST,
each bounded by its timeout). SQLite has one node only: a claim there is a plain read and the
marks are ordinary writes (no transaction is held over the network call).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol

from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from gateway.domain import Alert

from .errors import StoreError

log = logging.getLogger(__name__)

Guard = Callable[[str], contextlib.AbstractContextManager[None]]


class AlertClaim(Protocol):
    """Alerts claimed for publishing: `alerts`, and the marks made inside the claim."""

    @property
    def alerts(self) -> list[Alert]: ...

    async def mark_sent(self, ids: Iterable[str], now: float) -> None: ...

    async def mark_failed(
        self, id: str, error: str, *, permanent: bool = False, now: float | None = None
    ) -> None: ...


def within(timeout: float | None) -> asyncio.Timeout:
    """asyncio.timeout(timeout); None: no limit."""
    return asyncio.timeout(timeout)


class ClaimTransaction:
    """The PostgreSQL transaction of one claim. Every statement runs within `timeout`; a
    statement that fails or is cancelled marks the claim broken: its connection is then dropped
    (the server rolls the transaction back) instead of committed."""

    def __init__(
        self, conn: AsyncConnection, guard: Guard, operation: str, timeout: float | None
    ) -> None:
        self.conn = conn
        self._guard = guard
        self._operation = operation
        self._timeout = timeout
        self.broken = False

    async def execute(self, operation: str, statement: Executable) -> CursorResult[Any]:
        if self.broken:
            raise StoreError(f"store {operation}: the claim's transaction failed already")
        self.broken = True  # until the statement is known to have completed
        with self._guard(operation):
            async with within(self._timeout):
                result = await self.conn.execute(statement)
        self.broken = False
        return result

    async def end(self, *, quiet: bool) -> None:
        """Commit the marks made (also after an error in the caller's work: what was marked
        happened), or drop the connection of a broken claim. `quiet`: a failed commit is logged,
        not raised (the caller's own exception is on its way)."""
        committed = False
        try:
            if not self.broken:
                with self._guard(f"{self._operation} commit"):
                    async with within(self._timeout):
                        await self.conn.commit()
                committed = True
        except StoreError as e:
            if not quiet:
                raise
            log.warning("%s not committed: %s; its rows stay pending", self._operation, e)
        finally:
            if committed:
                await self.conn.close()
            else:
                await discard(self.conn)


async def discard(conn: AsyncConnection) -> None:
    """Close `conn` for good (terminated, not returned to the pool): its session ends, and with
    it any transaction and lock it held."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()


@contextlib.asynccontextmanager
async def claim_transaction(
    engine: AsyncEngine, guard: Guard, operation: str, timeout: float | None
) -> AsyncIterator[ClaimTransaction]:
    """A connection of `engine` with a transaction for one claim: committed when the block
    ends (see ClaimTransaction.end), dropped when it broke."""
    with guard(operation):
        async with within(timeout):
            conn = await engine.connect()
    tx = ClaimTransaction(conn, guard, operation, timeout)
    try:
        yield tx
    except BaseException:
        await tx.end(quiet=True)
        raise
    await tx.end(quiet=False)


__all__ = ["AlertClaim", "ClaimTransaction", "claim_transaction", "discard", "within"]
