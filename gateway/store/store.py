"""The store: SQLAlchemy 2 Core over asyncio, SQLite (aiosqlite) or PostgreSQL (asyncpg).

Writes are group commits: `record()` takes a whole batch of inspected SMS and writes their
messages, verdicts, alerts (the outbox) and complaints in ONE transaction, so the pipeline pays
one commit (one fsync) per batch instead of one per SMS. Recording is idempotent on the message
id: a redelivered SMS (the SMSC retried because our response was lost) is recorded once, and its
second inspection's alerts and complaint are dropped with it, so consumers get no duplicate alert.

SQLite runs in WAL mode with synchronous=NORMAL: a commit is atomic and survives a crash of the
gateway process, but the last transactions before a power cut or kernel crash may be lost (the
WAL is synced at checkpoints, not at every commit). PostgreSQL keeps its own settings
(synchronous_commit=on by default: a commit is durable when record() returns).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.domain import Alert, AlertKind, Inspected, Reason
from gateway.pipeline.delivery import OnwardStatus, Outcome, Submitted
from gateway.probes.simbox import Finding

from .claims import AlertClaim, ClaimTransaction, claim_transaction, within
from .errors import StoreError, StoreUnavailable
from .models import (
    alerts,
    complaints,
    messages,
    metadata,
    probe_findings,
    simbox_numbers,
    verdicts,
)
from .models_delivery import deliveries
from .models_state import detector_state
from .pg_writer import RECORD_SQL, record_args
from .sqlite_writer import RowBuilders, SqliteWriter
from .urls import normalize_url

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x66726175  # pg_advisory_xact_lock key: one migrating gateway at a time

# SQLite errors that mean "not now" rather than "wrong": retrying later can succeed.
_SQLITE_TRANSIENT = re.compile(
    r"database is locked|database table is locked|unable to open database|disk i/o error"
    r"|database or disk is full|readonly database",
    re.IGNORECASE,
)
# PostgreSQL SQLSTATE classes 08 (connection exception), 53 (insufficient resources),
# 57P01-57P03 (admin shutdown, crash shutdown, cannot connect now).
_PG_TRANSIENT_STATES = ("08", "53", "57P01", "57P02", "57P03")


class Store:
    """The gateway's database. Open with `await Store.open(url)`; `async with` closes it."""

    def __init__(
        self,
        engine: AsyncEngine,
        url: str,
        *,
        connect_timeout: float = 5.0,
        statement_timeout: float = 10.0,
    ) -> None:
        self._engine = engine
        # a batch's write on PostgreSQL (asyncpg cancels it after this): a frozen server must
        # not hold the answers to the SMSC. Only the record path: migrations, retention and
        # analysts' queries may take longer. SQLite's writer thread cannot be cancelled; the
        # Recorder's commit timeout answers the SMSC meanwhile.
        self.statement_timeout = statement_timeout
        self._url = url
        self.url = make_url(url).render_as_string(hide_password=True)  # safe to log
        self.dialect: str = engine.dialect.name
        self._closed = False
        # SQLite: record() runs in a writer thread with its own connection (sqlite_writer);
        # PostgreSQL: one statement per batch (pg_writer). Both use the same row builders.
        self._rows = _json_row_builders()
        self._writer: SqliteWriter | None = None
        if self.dialect == "sqlite":
            database = make_url(url).database or ""
            self._writer = SqliteWriter(
                database, self._rows, timeout=connect_timeout, json_serializer=_json_dumps
            )
        insert: Any = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        self._insert_alerts = insert(alerts).on_conflict_do_nothing(index_elements=["id"])

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        connect_timeout: float = 5.0,
        statement_timeout: float = 10.0,
        echo: bool = False,
    ) -> Store:
        """Connect to the database at `url` (checked with one round trip).

        `sqlite+aiosqlite:///PATH` (the directory is created) or `postgresql+asyncpg://...`;
        plain `sqlite:` and `postgresql:` URLs get these drivers. Raises StoreUnavailable when
        the database cannot be reached, StoreError for a bad URL."""
        try:
            url = normalize_url(url)
        except (ValueError, exc.ArgumentError) as e:
            raise StoreError(f"bad database URL: {e}") from e
        parsed = make_url(url)
        serializer = _json_dumps
        if parsed.get_backend_name() == "sqlite":
            if not parsed.database or parsed.database == ":memory:":
                raise StoreError(
                    "an SQLite database file is needed (sqlite:///PATH): the writer thread and "
                    "the readers each open their own connection to it"
                )
            directory = Path(parsed.database).parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create the data directory {directory}: {e}") from e
            engine = create_async_engine(
                url,
                echo=echo,
                json_serializer=serializer,
                connect_args={"timeout": connect_timeout},
            )
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            engine = create_async_engine(
                url,
                echo=echo,
                json_serializer=serializer,
                pool_pre_ping=True,  # a connection broken by a server restart is replaced
                connect_args={
                    "timeout": connect_timeout,
                    "server_settings": {"application_name": "fraudgate"},
                },
            )
        store = cls(
            engine, url, connect_timeout=connect_timeout, statement_timeout=statement_timeout
        )
        try:
            with store._errors("connect"):
                async with engine.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                if self._writer is not None:
                    try:
                        await self._writer.close()
                    except sqlite3.Error as e:
                        log.warning("closing the SQLite writer of %s: %s", self.url, e)
            finally:
                await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # -- schema -------------------------------------------------------------------------------

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (alembic upgrade head); a no-op when it is
        there already. On PostgreSQL an advisory lock serialises gateways starting together."""
        with self._errors("migrate"):
            async with self._engine.begin() as conn:
                if self.dialect == "postgresql":
                    await conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
                await conn.run_sync(_upgrade_head)

    async def schema_revision(self) -> str | None:
        """The alembic revision the database is at (None before the first migrate())."""
        with self._errors("schema_revision"):
            async with self._engine.connect() as conn:
                return await conn.run_sync(_current_revision)

    # -- writes -------------------------------------------------------------------------------

    async def record(self, items: Sequence[Inspected]) -> set[str]:
        """Write a batch of inspected SMS (messages, verdicts, alerts, complaints) in one
        transaction. Idempotent on the message id (gateway.pipeline.message_ids): an SMS recorded
        already under its id or its prior id, or repeated within the batch, is skipped with its
        alerts and complaint. Returns the ids of the messages skipped that way."""
        if not items:
            return set()
        unique = unique_messages(items)
        repeated = {it.sms.id for it in items} - {it.sms.id for it in unique}
        with self._errors("record"):
            if self._writer is not None:
                return repeated | await self._writer.record(unique)
            async with self._engine.connect() as conn:
                raw = await conn.get_raw_connection()
                driver: Any = raw.driver_connection  # asyncpg: autocommit, one statement
                inserted = await driver.fetchval(
                    RECORD_SQL, *record_args(unique, self._rows), timeout=self.statement_timeout
                )
        return repeated | ({it.sms.id for it in unique} - set(inserted))

    async def record_findings(
        self, findings: Sequence[Finding], new_alerts: Sequence[Alert]
    ) -> None:
        """Probe findings (test-call results), the SIM-box numbers they name (one row per number:
        first and last sighting, how many) and their alerts, in one transaction. Idempotent on
        the finding id and on the announced test (one result per test)."""
        if not findings and not new_alerts:
            return
        insert: Any = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        with self._errors("record_findings"):
            async with self._engine.begin() as conn:
                fresh: list[Finding] = []
                for f in findings:
                    done = await conn.execute(
                        insert(probe_findings)
                        .on_conflict_do_nothing()
                        .returning(probe_findings.c.id),
                        [_finding_row(f)],
                    )
                    if done.first() is not None:
                        fresh.append(f)
                for f in fresh:
                    if f.number:
                        await conn.execute(_sighting(insert, f))
                if findings and not fresh:
                    return  # already recorded (a retry, a test re-announced): so are its alerts
                if new_alerts:
                    await conn.execute(self._insert_alerts, [alert_row(a) for a in new_alerts])

    async def record_delivery(self, row: Submitted) -> None:
        """A forwarded message's onward submission (forward mode, docs/inline.md). Written once
        per message; a repeat of the same message id replaces the onward fields."""
        insert: Any = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        values = {
            "message_id": row.message_id,
            "smsc": _text(row.smsc),
            "parts": row.parts,
            "onward_status": str(row.onward.value),
            "onward_error": row.onward_error,
            "onward_detail": _text(row.detail)[:200],
            "submit_ids": _text(" ".join(row.submit_ids))[:2000],
            "receipt_requested": row.receipt_requested,
            "final_state": None,
            "receipt_id": None,
            "submitted_at": row.submitted_at,
            "done_at": None,
        }
        stmt = insert(deliveries).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[deliveries.c.message_id],
            set_={k: stmt.excluded[k] for k in values if k != "message_id"},
        )
        with self._errors("record_delivery"):
            async with self._engine.begin() as conn:
                await conn.execute(stmt)

    async def finish_delivery(self, outcome: Outcome, done_at: float) -> None:
        """The final delivery state of a forwarded message (from its receipts, or 'unknown' when
        none came in time). Only a pending row is updated: the first outcome stays."""
        with self._errors("finish_delivery"):
            async with self._engine.begin() as conn:
                await conn.execute(
                    deliveries.update()
                    .where(
                        deliveries.c.message_id == outcome.message_id,
                        deliveries.c.final_state.is_(None),
                    )
                    .values(
                        final_state=str(outcome.state.value),
                        receipt_id=_text(" ".join(outcome.receipt_ids).strip())[:2000] or None,
                        done_at=done_at,
                    )
                )

    async def went_onward(self, message_ids: Sequence[str]) -> bool:
        """Whether a message with one of these ids was accepted onward (forward mode: its
        redelivery must not be submitted again)."""
        if not message_ids:
            return False
        query = sa.select(deliveries.c.message_id).where(
            deliveries.c.message_id.in_(list(message_ids)),
            deliveries.c.onward_status == str(OnwardStatus.SUBMITTED.value),
        )
        with self._errors("went_onward"):
            async with self._engine.connect() as conn:
                return (await conn.execute(query.limit(1))).first() is not None

    async def deliveries(self, *, message_id: str = "", limit: int = 1000) -> list[dict[str, Any]]:
        """Forwarded messages' delivery rows, latest first; with `message_id`, that one."""
        query = sa.select(deliveries).order_by(deliveries.c.submitted_at.desc()).limit(limit)
        if message_id:
            query = query.where(deliveries.c.message_id == message_id)
        with self._errors("deliveries"):
            async with self._engine.connect() as conn:
                return [dict(r._mapping) for r in await conn.execute(query)]

    async def save_state(self, name: str, data: bytes, now: float) -> None:
        """Keep a detector's snapshot (one row per detector, replaced)."""
        insert: Any = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        stmt = insert(detector_state).values(name=name, data=data, saved_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=[detector_state.c.name],
            set_={"data": stmt.excluded.data, "saved_at": stmt.excluded.saved_at},
        )
        with self._errors("save_state"):
            async with self._engine.begin() as conn:
                await conn.execute(stmt)

    async def load_state(self, name: str) -> bytes | None:
        """A detector's last snapshot, None when there is none."""
        query = sa.select(detector_state.c.data).where(detector_state.c.name == name)
        with self._errors("load_state"):
            async with self._engine.connect() as conn:
                value = (await conn.execute(query)).scalar_one_or_none()
        return None if value is None else bytes(value)

    async def simbox_numbers(self) -> list[dict[str, Any]]:
        """The local numbers probe tests named as SIM-box / SIM-farm SIMs, latest first."""
        with self._errors("simbox_numbers"):
            async with self._engine.connect() as conn:
                rows = await conn.execute(
                    sa.select(simbox_numbers).order_by(simbox_numbers.c.last_seen.desc())
                )
                return [dict(r._mapping) for r in rows]

    async def probe_findings(self, *, number: str = "", limit: int = 1000) -> list[dict[str, Any]]:
        """Test results, latest first; with `number`, that number's sightings."""
        query = sa.select(probe_findings).order_by(probe_findings.c.at.desc()).limit(limit)
        if number:
            query = query.where(probe_findings.c.number == number)
        with self._errors("probe_findings"):
            async with self._engine.connect() as conn:
                return [dict(r._mapping) for r in await conn.execute(query)]

    async def write(self, operation: str, fn: Callable[[sa.Connection], T]) -> T:
        """`fn(connection)` in one transaction, without awaiting between its statements: on
        SQLite in the recorder's writer thread (so it never holds the write lock across
        event-loop turns), elsewhere through the async engine. Errors typed as by guard()."""
        with self._errors(operation):
            if self._writer is not None:
                return await self._writer.run(fn)
            async with self._engine.begin() as conn:
                return await conn.run_sync(fn)

    async def mark_alerts_sent(self, ids: Iterable[str], now: float) -> None:
        """The broker acknowledged these alerts at `now` (epoch seconds)."""
        ids = list(ids)
        if not ids:
            return
        with self._errors("mark_alerts_sent"):
            if self._writer is not None:  # SQLite: in the recorder's own transaction order
                await self._writer.mark_alerts_sent(ids, now)
                return
            async with self._engine.begin() as conn:
                await conn.execute(_mark_sent_statement(ids, now))

    async def mark_alert_failed(
        self, id: str, error: str, *, permanent: bool = False, now: float | None = None
    ) -> None:
        """Publishing alert `id` failed: count the attempt and keep `error`. A transient failure
        leaves it pending (it is sent again); `permanent=True` sets it aside (failed_at = `now`):
        it stays in the table for analysts but is no longer pending, so it cannot block the
        outbox."""
        with self._errors("mark_alert_failed"):
            async with self._engine.begin() as conn:
                await conn.execute(_mark_failed_statement(id, error, permanent, now))

    async def purge_text(self, older_than: float, *, chunk: int = 5000) -> int:
        """Retention: forget the text of messages received before `older_than` (an epoch-seconds
        cutoff) and of complaints received before it. Returns how many texts were cleared
        (messages and complaints together). Done `chunk` rows per transaction, so a backlog
        (after a long pause) never holds the write lock long enough to stall recording."""
        cleared = 0
        for table, text in ((messages, messages.c.text), (complaints, complaints.c.forwarded_text)):
            due = (
                sa.select(table.c.id)
                .where(table.c.received_at < older_than, text.is_not(None))
                .limit(chunk)
                .scalar_subquery()
            )
            while True:
                with self._errors("purge_text"):
                    async with self._engine.begin() as conn:
                        done = await conn.execute(
                            table.update().where(table.c.id.in_(due)).values({text.name: None})
                        )
                cleared += int(done.rowcount)
                if done.rowcount < chunk:
                    break
        return cleared

    # -- reads --------------------------------------------------------------------------------

    async def pending_alerts(self, limit: int) -> list[Alert]:
        """Up to `limit` alerts not yet published (nor set aside), oldest first."""
        with self._errors("pending_alerts"):
            async with self._engine.connect() as conn:
                rows = await conn.execute(_pending_alerts_query(limit))
                return [_alert_from_row(r) for r in rows]

    def claim_alerts(
        self, limit: int, *, timeout: float | None = None
    ) -> contextlib.AbstractAsyncContextManager[AlertClaim]:
        """`async with store.claim_alerts(100) as claim:` up to `limit` pending alerts, oldest
        first, as `claim.alerts`; publish them, then `claim.mark_sent(ids, now)` /
        `claim.mark_failed(...)`. Several nodes may drain the same outbox (gateway.store.claims):
        on PostgreSQL the rows are locked FOR UPDATE SKIP LOCKED until the block ends and the
        marks commit with it, so no alert is claimed by two nodes at once; on SQLite this is
        pending_alerts() and the mark methods. Each statement is bounded by `timeout`
        (StoreUnavailable when it expires)."""
        if self.dialect == "postgresql":
            return self._claim_alerts_locked(limit, timeout)
        return self._claim_alerts_plain(limit, timeout)

    @contextlib.asynccontextmanager
    async def _claim_alerts_plain(
        self, limit: int, timeout: float | None
    ) -> AsyncIterator[AlertClaim]:
        async with within(timeout):
            batch = await self.pending_alerts(limit)
        yield _PlainAlertClaim(self, batch, timeout)

    @contextlib.asynccontextmanager
    async def _claim_alerts_locked(
        self, limit: int, timeout: float | None
    ) -> AsyncIterator[AlertClaim]:
        async with claim_transaction(self._engine, self._errors, "claim_alerts", timeout) as tx:
            rows = await tx.execute(
                "claim_alerts", _pending_alerts_query(limit).with_for_update(skip_locked=True)
            )
            yield _LockedAlertClaim([_alert_from_row(r) for r in rows], tx)

    async def counts(self) -> dict[str, int]:
        """Row counts for summaries and tests: messages, texts (messages whose text is still
        kept), verdicts, allow/flag/block, alerts, alerts_pending, alerts_sent, alerts_failed,
        complaints, complaint_texts."""

        def count(table: sa.Table, *where: sa.ColumnElement[bool]) -> sa.ScalarSelect[int]:
            return sa.select(sa.func.count()).select_from(table).where(*where).scalar_subquery()

        query = sa.select(
            count(messages).label("messages"),
            count(messages, messages.c.text.is_not(None)).label("texts"),
            count(verdicts).label("verdicts"),
            count(verdicts, verdicts.c.decision == "allow").label("allow"),
            count(verdicts, verdicts.c.decision == "flag").label("flag"),
            count(verdicts, verdicts.c.decision == "block").label("block"),
            count(alerts).label("alerts"),
            count(alerts, alerts.c.sent_at.is_(None), alerts.c.failed_at.is_(None)).label(
                "alerts_pending"
            ),
            count(alerts, alerts.c.sent_at.is_not(None)).label("alerts_sent"),
            count(alerts, alerts.c.failed_at.is_not(None)).label("alerts_failed"),
            count(complaints).label("complaints"),
            count(complaints, complaints.c.forwarded_text.is_not(None)).label("complaint_texts"),
        )
        with self._errors("counts"):
            async with self._engine.connect() as conn:
                row = (await conn.execute(query)).one()
                return {k: int(v) for k, v in row._mapping.items()}

    # -- errors -------------------------------------------------------------------------------

    def guard(self, operation: str) -> contextlib.AbstractContextManager[None]:
        """`with store.guard("op"):` around SQLAlchemy work on `store.engine` raises the typed
        StoreError / StoreUnavailable instead of driver exceptions (for the other repositories
        built on this store's engine: registry, cases, centre outbox)."""
        return self._errors(operation)

    @contextlib.contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        if self._closed:
            raise StoreError(f"store {operation}: the store is closed")
        try:
            yield
        except StoreError:
            raise
        except (exc.SQLAlchemyError, OSError, TimeoutError) as e:
            raise _translate(e, operation, self.dialect, self._where()) from e
        except Exception as e:  # a driver exception SQLAlchemy did not wrap
            if type(e).__module__.split(".")[0] in ("asyncpg", "sqlite3", "aiosqlite"):
                raise _translate(e, operation, self.dialect, self._where()) from e
            raise

    def _where(self) -> str:
        url = make_url(self._url)
        if url.get_backend_name() == "sqlite":
            return f"SQLite {url.database}"
        return f"PostgreSQL {url.host}:{url.port or 5432}/{url.database}"


def _now() -> float:
    return time.time()


def _pending_alerts_query(limit: int) -> sa.Select[Any]:
    return (
        sa.select(alerts.c.id, alerts.c.kind, alerts.c.payload, alerts.c.created_at)
        .where(alerts.c.sent_at.is_(None), alerts.c.failed_at.is_(None))
        .order_by(alerts.c.created_at, alerts.c.id)
        .limit(limit)
    )


def _alert_from_row(r: Any) -> Alert:
    return Alert(kind=AlertKind(r.kind), payload=r.payload, created_at=r.created_at, id=r.id)


def _mark_sent_statement(ids: list[str], now: float) -> sa.Update:
    return (
        alerts.update()
        .where(alerts.c.id.in_(ids), alerts.c.sent_at.is_(None))
        .values(sent_at=now, attempts=alerts.c.attempts + 1, last_error=None)
    )


def _mark_failed_statement(id: str, error: str, permanent: bool, now: float | None) -> sa.Update:
    values: dict[str, Any] = {"attempts": alerts.c.attempts + 1, "last_error": error[:2000]}
    if permanent:
        values["failed_at"] = now if now is not None else _now()
    return alerts.update().where(alerts.c.id == id, alerts.c.sent_at.is_(None)).values(values)


class _PlainAlertClaim:
    """SQLite: the alerts read, the marks written as without a claim (one node only)."""

    def __init__(self, store: Store, batch: list[Alert], timeout: float | None) -> None:
        self._store = store
        self._alerts = batch
        self._timeout = timeout

    @property
    def alerts(self) -> list[Alert]:
        return self._alerts

    async def mark_sent(self, ids: Iterable[str], now: float) -> None:
        async with within(self._timeout):
            await self._store.mark_alerts_sent(ids, now)

    async def mark_failed(
        self, id: str, error: str, *, permanent: bool = False, now: float | None = None
    ) -> None:
        async with within(self._timeout):
            await self._store.mark_alert_failed(id, error, permanent=permanent, now=now)


class _LockedAlertClaim:
    """PostgreSQL: the alerts locked by the claim's transaction, marked in it."""

    def __init__(self, batch: list[Alert], tx: ClaimTransaction) -> None:
        self._alerts = batch
        self._tx = tx

    @property
    def alerts(self) -> list[Alert]:
        return self._alerts

    async def mark_sent(self, ids: Iterable[str], now: float) -> None:
        ids = list(ids)
        if ids:
            await self._tx.execute("mark_alerts_sent", _mark_sent_statement(ids, now))

    async def mark_failed(
        self, id: str, error: str, *, permanent: bool = False, now: float | None = None
    ) -> None:
        await self._tx.execute(
            "mark_alert_failed", _mark_failed_statement(id, error, permanent, now)
        )


def _translate(e: BaseException, operation: str, dialect: str, where: str) -> StoreError:
    detail = _first_line(e)
    if _is_transient(e, dialect):
        return StoreUnavailable(f"store {operation}: database unavailable ({where}): {detail}")
    if re.search(r"no such table|UndefinedTable|relation .* does not exist", detail):
        detail += " (schema missing: run Store.migrate() first)"
    return StoreError(f"store {operation} failed ({where}): {detail}")


def _is_transient(e: BaseException, dialect: str) -> bool:
    if isinstance(e, sqlite3.OperationalError):  # raised by the SQLite writer thread
        return bool(_SQLITE_TRANSIENT.search(str(e)))
    if isinstance(e, OSError | TimeoutError | exc.TimeoutError | exc.DisconnectionError):
        return True
    if isinstance(e, exc.DBAPIError):
        if e.connection_invalidated:
            return True
        orig = e.orig
        if isinstance(orig, OSError | TimeoutError):
            return True
        if dialect == "sqlite":
            return isinstance(e, exc.OperationalError) and bool(_SQLITE_TRANSIENT.search(str(orig)))
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if isinstance(state, str) and state.startswith(_PG_TRANSIENT_STATES):
            return True
        # asyncpg connection-level errors (connection closed under us, cannot connect now)
        name = type(orig).__name__ if orig is not None else ""
        return isinstance(e, exc.InterfaceError) or name in (
            "ConnectionDoesNotExistError",
            "CannotConnectNowError",
            "ConnectionFailureError",
            "InterfaceError",
        )
    name = type(e).__name__
    return name in (
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
        "ConnectionFailureError",
    )


def _first_line(e: BaseException) -> str:
    orig: BaseException = e.orig if isinstance(e, exc.DBAPIError) and e.orig is not None else e
    if orig.__cause__ is not None and type(orig.__cause__).__module__.startswith("asyncpg"):
        orig = orig.__cause__  # the driver's own exception names the problem best
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else ''}".rstrip(": ")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade_head(connection: Connection) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    rev: str | None = MigrationContext.configure(connection).get_current_revision()
    return rev


# -- rows ------------------------------------------------------------------------------------


def _text(value: str) -> str:
    """`value` as both databases accept it: NUL (refused by PostgreSQL) and lone surrogates (not
    encodable as UTF-8) become U+FFFD. What arrives over SMPP must never fail a whole batch."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value


def _json_dumps(value: Any) -> str:
    """JSON for the JSON columns; lone surrogates (not UTF-8) become U+FFFD, NUL is escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


def _message_row(item: Inspected) -> dict[str, Any]:
    s = item.sms
    return {
        "id": s.id,
        "received_at": s.received_at,
        "smsc": _text(s.smsc),
        "route": str(s.route.value) if hasattr(s.route, "value") else str(s.route),
        "source": _text(s.source),
        "source_ton": s.source_ton,
        "source_npi": s.source_npi,
        "dest": _text(s.dest),
        "dest_ton": s.dest_ton,
        "dest_npi": s.dest_npi,
        "data_coding": s.data_coding,
        "esm_class": s.esm_class,
        "parts": s.parts,
        "total": s.total,
        "complete": s.complete,
        "text": _text(s.text),
        "decode_errors": list(s.decode_errors),
    }


def reason_json(r: Reason) -> dict[str, Any]:
    """A reason as stored in verdicts.reasons (span positions only, not the matched text)."""
    return {
        "detector": r.detector,
        "rule_id": r.rule_id,
        "score": r.score,
        "description": r.description,
        "block": r.block,
        "spans": [{"start": sp.start, "end": sp.end} for sp in r.spans],
    }


def _verdict_row(item: Inspected) -> dict[str, Any]:
    v = item.verdict
    return {
        "message_id": item.sms.id,
        "score": v.score,
        "decision": str(v.decision.value),
        "rule_ids": v.rule_ids,
        "reasons": [reason_json(r) for r in v.reasons],
    }


def alert_row(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": str(a.kind.value),
        "payload": a.payload,
        "created_at": a.created_at,
        "sent_at": None,
        "attempts": 0,
        "last_error": None,
        "failed_at": None,
    }


def unique_messages(items: Sequence[Inspected]) -> list[Inspected]:
    """The batch without repeats of a message id (the first one stays), nor a message whose
    prior id is an earlier one's id (a redelivery across a window boundary): recording is
    idempotent on the message id, within a batch as across batches."""
    first: dict[str, Inspected] = {}
    for item in items:
        if item.sms.prior_id not in first:
            first.setdefault(item.sms.id, item)
    return list(first.values())


def _finding_row(f: Finding) -> dict[str, Any]:
    t = f.expected
    return {
        "id": f.id,
        "at": f.at,
        "probe": _text(f.probe),
        "outcome": str(f.outcome.value),
        "confidence": f.confidence,
        "observed": _text(f.observed),
        "observed_ton": f.observed_ton,
        "number": f.number,
        "test_id": t.id if t else None,
        "test_kind": t.kind if t else None,
        "a_number": _text(t.a_number) if t else None,
        "route": _text(t.route) if t else None,
        "description": _text(f.description),
    }


def _sighting(insert: Any, f: Finding) -> Any:
    route = f.expected.route if f.expected else ""
    stmt = insert(simbox_numbers).values(
        number=f.number,
        first_seen=f.at,
        last_seen=f.at,
        sightings=1,
        outcome=str(f.outcome.value),
        last_route=_text(route),
    )
    return stmt.on_conflict_do_update(
        index_elements=[simbox_numbers.c.number],
        set_={
            "first_seen": sa.func.min(simbox_numbers.c.first_seen, stmt.excluded.first_seen)
            if insert is sqlite.insert
            else sa.func.least(simbox_numbers.c.first_seen, stmt.excluded.first_seen),
            "last_seen": sa.func.max(simbox_numbers.c.last_seen, stmt.excluded.last_seen)
            if insert is sqlite.insert
            else sa.func.greatest(simbox_numbers.c.last_seen, stmt.excluded.last_seen),
            "sightings": simbox_numbers.c.sightings + 1,
            "outcome": stmt.excluded.outcome,
            "last_route": stmt.excluded.last_route,
        },
    )


def _complaint_row(item: Inspected) -> dict[str, Any]:
    c = item.complaint
    assert c is not None
    return {
        "id": c.id,
        "complainant": _text(c.complainant),
        "forwarded_text": _text(c.forwarded_text),
        "received_at": c.received_at,
        "message_id": c.message_id,
        "suspected_sender": _text(c.suspected_sender),
        "status": "new",
    }


def _with_json(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        row[key] = _json_dumps(row[key])
    return row


def _json_row_builders() -> RowBuilders:
    """The same rows as the SQLAlchemy path, JSON columns serialised as SQLAlchemy's JSON type
    stores them (so reads through SQLAlchemy see no difference): the SQLite writer thread and
    the PostgreSQL one-statement path use these."""
    return RowBuilders(
        message=lambda it: _with_json(_message_row(it), "decode_errors"),
        verdict=lambda it: _with_json(_verdict_row(it), "rule_ids", "reasons"),
        alert=lambda a: _with_json(alert_row(a), "payload"),
        complaint=_complaint_row,
        columns={
            t.name: [c.name for c in t.columns] for t in (messages, verdicts, alerts, complaints)
        },
    )


__all__ = ["MIGRATIONS_DIR", "Store", "metadata", "reason_json"]
