"""A leader lease: which node of a cluster runs the singletons (deadline timers, the centre
dispatcher), through a PostgreSQL session-level advisory lock.

    lease = LeaderLease(store, "workflow", node="gw-1", on_change=print)
    async with lease:                   # a supervisor task tries, holds and checks the lock
        await lease.wait_held()         # (bound it with asyncio.timeout)
        ...                             # lease.held turns False the moment it is lost

The lock lives on a connection of its own (a one-connection engine, never the store's pool: a
pooled connection handed back with the lock still taken would hold the lease for nobody). Every
`check_every` seconds the supervisor either tries `pg_try_advisory_lock` (not held) or checks the
connection with `SELECT 1` (held). A failed or slow check makes the lease LOST at once: the
connection is dropped (its session ends, and the lock with it) and a new one tries again. A node
that dies (SIGKILL, crash) loses its session; PostgreSQL frees the lock and the next node takes
it at its next try, within `check_every` plus a connect. A host that vanishes without closing its
TCP connection is noticed by the server through TCP keepalives and `idle_session_timeout`
(PostgreSQL 14+), set on the lease's session.

Between the death of a holder's connection and the holder's next check, two nodes may believe
they hold the lease (at most `check_every` + `timeout`): the work run under it must tolerate a
brief overlap (the outbox claims do: gateway.store.claims).

SQLite has one node by nature: the lease is held as soon as it is entered.

The key is the two-int4 form `pg_try_advisory_lock(LEASE_SPACE, hash(name))`: a key space apart
from the single-bigint one of the migration lock (Store.migrate). The holder's session is named
`fraudgate-lease <node>` (application_name): `current_holder()` reads it from pg_locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, Self

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from .claims import discard, within
from .errors import StoreError

log = logging.getLogger(__name__)

LEASE_SPACE = 0x6C656173  # "leas": the first int4 of every lease key
APP_PREFIX = "fraudgate-lease "

_TRY = sa.text("SELECT pg_try_advisory_lock(:space, :key)")
_UNLOCK = sa.text("SELECT pg_advisory_unlock(:space, :key)")
_CHECK = sa.text("SELECT 1")
# a session idle longer than this is ended by the server (a holder that froze or vanished)
_GUARD = sa.text(
    "SELECT CASE WHEN current_setting('server_version_num')::int >= 140000 "
    "THEN set_config('idle_session_timeout', :idle, false) END"
)
_HOLDER = sa.text(
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::bigint = :space AND l.objid::bigint = :key"
)


class LeaseError(StoreError):
    """The lease cannot be used as asked (a bad name or interval, waited on while not running)."""


class LeaseStore(Protocol):
    """What the lease needs of gateway.store.Store."""

    dialect: str

    @property
    def engine(self) -> AsyncEngine: ...

    def guard(self, operation: str) -> contextlib.AbstractContextManager[None]: ...


def lease_key(name: str) -> int:
    """The lease's second int4 key: the first 4 bytes of sha256(name), signed."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big", signed=True)


class LeaderLease:
    """One node at a time holds the lease `name` (see the module's docstring).

    `held`, `holder_since` (epoch seconds), `acquired` / `lost` (counts), `last_error`;
    `await wait_held()` / `wait_lost()`;
    `on_change(held)` is called at every change, from the event loop (it must not block)."""

    def __init__(
        self,
        store: LeaseStore,
        name: str,
        *,
        node: str,
        check_every: float = 2.0,
        timeout: float | None = None,
        on_change: Callable[[bool], object] | None = None,
    ) -> None:
        if not name or check_every <= 0 or (timeout is not None and timeout <= 0):
            raise LeaseError("a lease needs a name, and a positive check_every and timeout")
        self.store = store
        self.name = name
        self.node = node
        self.check_every = check_every
        self.timeout = timeout if timeout is not None else max(1.0, check_every)
        self.on_change = on_change
        self.key = (LEASE_SPACE, lease_key(name))
        self.holder_since: float | None = None
        self.acquired = 0
        self.lost = 0
        self.last_error: str | None = None
        self._held = asyncio.Event()
        self._free = asyncio.Event()
        self._free.set()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None
        self._failing = False
        self._entered = False

    @property
    def held(self) -> bool:
        return self._held.is_set()

    async def wait_held(self) -> None:
        """Until this node holds the lease (bound it with asyncio.timeout)."""
        if not self._entered:
            raise LeaseError(f"lease {self.name}: not running (use `async with lease:`)")
        await self._held.wait()

    async def wait_lost(self) -> None:
        """Until this node no longer holds the lease."""
        await self._free.wait()

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._entered:
            raise LeaseError(f"lease {self.name}: entered twice")
        self._entered = True
        if self.store.dialect != "postgresql":
            self._set(True)  # SQLite: one node only
            return self
        self._stop.clear()
        self._engine = self._lease_engine()
        self._task = asyncio.create_task(self._supervise(), name=f"lease-{self.name}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop trying, release the lock (the lease's connection is closed) and report it."""
        self._stop.set()
        self._entered = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._release()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    # -- the supervisor -------------------------------------------------------------------------

    async def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                await self._step()
                self._failing = False
            except Exception as e:  # StoreError mostly; a bug must not end the supervisor
                await self._failed(e)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.check_every)

    async def _step(self) -> None:
        if self._conn is None:
            self._conn = await self._connect()
        if self.held:
            await self._query("lease check", _CHECK)
        elif await self._query("lease try", _TRY, space=self.key[0], key=self.key[1]):
            self._set(True)

    async def _connect(self) -> AsyncConnection:
        assert self._engine is not None
        with self.store.guard("lease connect"):
            async with within(self.timeout):
                conn = await self._engine.connect()
        try:
            idle = int(max(10.0, 5 * self.check_every) * 1000)
            with self.store.guard("lease connect"):
                async with within(self.timeout):
                    await conn.execute(_GUARD, {"idle": f"{idle}ms"})
        except BaseException:
            await discard(conn)
            raise
        return conn

    async def _query(self, operation: str, statement: sa.TextClause, **params: Any) -> Any:
        assert self._conn is not None
        with self.store.guard(operation):  # a closed store fails here: the lease goes with it
            async with within(self.timeout):
                return (await self._conn.execute(statement, params)).scalar()

    async def _failed(self, error: Exception) -> None:
        text = (
            f"{type(error).__name__}: {error}" if not isinstance(error, StoreError) else str(error)
        )
        self.last_error = text
        conn, self._conn = self._conn, None
        if conn is not None:
            await discard(conn)  # its session ends: a lock it held is free for the others
        if self.held:
            self._set(False, reason=text)
        elif not self._failing:
            log.warning("lease %s: cannot reach the database, retrying: %s", self.name, text)
        else:
            log.debug("lease %s: still failing: %s", self.name, text)
        self._failing = True

    async def _release(self) -> None:
        """Unlock and close; a connection that does not answer is dropped (which ends its
        session, and the lock with it, all the same)."""
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                try:
                    async with within(self.timeout):
                        if self.held:
                            await conn.execute(_UNLOCK, {"space": self.key[0], "key": self.key[1]})
                        await conn.close()
                except BaseException:
                    await discard(conn)
                    raise
        except Exception as e:
            log.debug("lease %s: released by dropping its connection (%s)", self.name, e)
        finally:
            if self.held:
                self._set(False, reason="released")

    # -- state ----------------------------------------------------------------------------------

    def _set(self, held: bool, *, reason: str = "") -> None:
        if held == self.held:
            return
        if held:
            self._held.set()
            self._free.clear()
            self.holder_since = time.time()
            self.acquired += 1
            log.info("lease %s held by this node (%s)", self.name, self.node)
        else:
            self._held.clear()
            self._free.set()
            self.holder_since = None
            if reason != "released":
                self.lost += 1
                log.warning("lease %s lost by this node (%s): %s", self.name, self.node, reason)
            else:
                log.info("lease %s released by this node (%s)", self.name, self.node)
        if self.on_change is not None:
            try:
                self.on_change(held)
            except Exception:
                log.exception("lease %s: on_change failed", self.name)

    def _lease_engine(self) -> AsyncEngine:
        return create_async_engine(
            self.store.engine.url,
            poolclass=NullPool,  # closing the connection ends the session: nothing kept
            isolation_level="AUTOCOMMIT",  # no transaction held open between checks
            connect_args={
                "timeout": self.timeout,
                "server_settings": {
                    "application_name": (APP_PREFIX + self.node)[:63],
                    "tcp_keepalives_idle": "5",
                    "tcp_keepalives_interval": "2",
                    "tcp_keepalives_count": "3",
                },
            },
        )

    async def current_holder(self) -> str | None:
        """The node holding the lease now, from any node (None: nobody; SQLite: this node)."""
        if self.store.dialect != "postgresql":
            return self.node if self.held else None
        with self.store.guard("lease holder"):
            async with within(self.timeout), self.store.engine.connect() as conn:
                name = (
                    await conn.execute(
                        _HOLDER, {"space": self.key[0], "key": self.key[1] & 0xFFFFFFFF}
                    )
                ).scalar()
        if name is None:
            return None
        return str(name).removeprefix(APP_PREFIX)


__all__ = ["LEASE_SPACE", "LeaderLease", "LeaseError", "LeaseStore", "lease_key"]
