"""The store on real databases: a SQLite file and a PostgreSQL cluster started for the session."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway.domain import (
    Alert,
    AlertKind,
    Complaint,
    Decision,
    Inspected,
    Reason,
    Route,
    SmsEvent,
    Span,
    Thresholds,
    combine,
)
from gateway.store import Store, StoreError, StoreUnavailable, metadata, sqlite_url
from gateway.store.bench import bench_record, synthetic
from gateway.store.models import messages, verdicts

if TYPE_CHECKING:
    from fixtures_services import PostgresServer


T0 = 1_800_000_000.0


def inspected(
    i: int,
    *,
    flagged: bool = True,
    complaint: bool = False,
    at: float | None = None,
    text: str = "Ваша карта заблокирована, позвоните 87001234567",
) -> Inspected:
    received = T0 + i if at is None else at
    sms = SmsEvent(
        source="KASPI" if flagged else f"7701{i:07d}",
        dest=f"7705{i:07d}",
        text=text,
        source_ton=5,
        dest_ton=1,
        dest_npi=1,
        data_coding=8,
        smsc="smsc-1",
        route=Route.INTERNATIONAL,
        parts=2,
        total=2,
        decode_errors=("ucs2: odd length",) if i % 2 else (),
        received_at=received,
        id=f"msg-{i:06d}",
    )
    reasons = (
        [
            Reason(
                "content",
                "content.ru.card_blocked",
                0.7,
                "card blocked pretext",
                (Span(5, 10, "карта"),),
            ),
            Reason(
                "sender", "sender.spoofed_bank", 0.6, "bank sender id on an international route"
            ),
        ]
        if flagged
        else []
    )
    verdict = combine(reasons, Thresholds())
    alerts = (
        [Alert(AlertKind.SMS_VERDICT, {"message_id": sms.id, "n": i}, created_at=received)]
        if flagged
        else []
    )
    c = (
        Complaint("77071234567", f"forwarded: {text}", received, sms.id, "KASPI", id=f"cmp-{i:06d}")
        if complaint
        else None
    )
    return Inspected(sms, verdict, alerts, c)


def redelivered(item: Inspected) -> Inspected:
    """The same SMS inspected again: same message id, but new alert and complaint ids."""
    alerts = [Alert(a.kind, dict(a.payload), a.created_at + 5) for a in item.alerts]
    c = (
        dataclasses.replace(item.complaint, id="again-" + item.complaint.id)
        if item.complaint
        else None
    )
    return Inspected(item.sms, item.verdict, alerts, c)


async def test_record_batch_is_stored_whole(store: Store) -> None:
    batch = [inspected(i, flagged=i % 3 == 0, complaint=i % 5 == 0) for i in range(30)]
    await store.record(batch)
    counts = await store.counts()
    assert counts["messages"] == 30
    assert counts["verdicts"] == 30
    assert counts["alerts"] == counts["alerts_pending"] == 10
    assert counts["complaints"] == 6
    assert counts["block"] + counts["flag"] == 10 and counts["allow"] == 20
    assert counts["texts"] == 30

    async with store.engine.connect() as conn:
        row = (await conn.execute(sa.select(messages).where(messages.c.id == "msg-000003"))).one()
        v = (
            await conn.execute(sa.select(verdicts).where(verdicts.c.message_id == "msg-000003"))
        ).one()
    assert row.text == batch[3].sms.text  # Cyrillic round trip
    assert row.route == "international" and row.complete is True
    assert (row.source_ton, row.dest_ton, row.dest_npi, row.data_coding) == (5, 1, 1, 8)
    assert row.decode_errors == ["ucs2: odd length"]
    assert row.received_at == T0 + 3
    assert v.decision == Decision.BLOCK.value
    assert v.rule_ids == ["content.ru.card_blocked", "sender.spoofed_bank"]
    assert v.reasons[0]["spans"] == [{"start": 5, "end": 10}]  # positions, not the text
    assert v.reasons[0]["detector"] == "content" and v.reasons[0]["score"] == 0.7


async def test_record_is_idempotent_on_message_id(store: Store) -> None:
    batch = [inspected(i, complaint=True) for i in range(10)]
    await store.record(batch)
    before = await store.counts()
    # The SMSC redelivers: the same SMS, inspected again with fresh alert/complaint ids, alone,
    # within a batch of new ones, and twice inside one batch.
    await store.record(batch)
    await store.record([redelivered(b) for b in batch])
    await store.record([redelivered(batch[0]), inspected(100), redelivered(batch[0]), batch[1]])
    await store.record([inspected(101), inspected(101)])
    after = await store.counts()
    assert after["messages"] == before["messages"] + 2
    assert after["alerts"] == before["alerts"] + 2  # only the new SMS' alerts
    assert after["complaints"] == before["complaints"]
    pending = await store.pending_alerts(100)
    assert len(pending) == len({a.id for a in pending}) == 12
    await store.record([])  # nothing to do, no error


async def test_hostile_text_never_fails_a_batch(store: Store) -> None:
    """NUL (refused by PostgreSQL) and lone surrogates (not UTF-8) can come out of a decoder
    fed by a fraudster: they are stored as U+FFFD instead of failing the batch."""
    nasty = "a\x00b\ud800c 😀 қ"
    item = inspected(1, text=nasty, complaint=True)
    item.sms.source = "KAS\x00PI"
    item.alerts[0].payload["sender"] = "x\udc80y\x00"
    await store.record([item, inspected(2)])
    async with store.engine.connect() as conn:
        row = (await conn.execute(sa.select(messages).where(messages.c.id == "msg-000001"))).one()
    assert row.text == "a\ufffdb\ufffdc 😀 қ" and row.source == "KAS\ufffdPI"
    (alert,) = [a for a in await store.pending_alerts(10) if a.payload["n"] == 1]
    assert alert.payload["sender"] == "x\ufffdy\x00"


async def test_pending_alerts_oldest_first_and_mark_sent(store: Store) -> None:
    # recorded out of order: pending_alerts sorts by created_at
    await store.record([inspected(i) for i in (5, 3, 9, 1, 7)])
    pending = await store.pending_alerts(3)
    assert [a.payload["n"] for a in pending] == [1, 3, 5]
    assert all(a.kind is AlertKind.SMS_VERDICT for a in pending)
    assert pending[0].created_at == T0 + 1

    await store.mark_alerts_sent([a.id for a in pending[:2]], now=T0 + 100)
    assert [a.payload["n"] for a in await store.pending_alerts(10)] == [5, 7, 9]
    await store.mark_alerts_sent([pending[0].id], now=T0 + 200)  # twice: no change
    await store.mark_alerts_sent([], now=T0)

    # a transient failure keeps the alert pending; a permanent one sets it aside
    await store.mark_alert_failed(pending[2].id, "connection lost")
    assert [a.payload["n"] for a in await store.pending_alerts(10)] == [5, 7, 9]
    await store.mark_alert_failed(pending[2].id, "payload.iin: personal data", permanent=True)
    assert [a.payload["n"] for a in await store.pending_alerts(10)] == [7, 9]
    counts = await store.counts()
    assert (counts["alerts_sent"], counts["alerts_failed"], counts["alerts_pending"]) == (2, 1, 2)

    async with store.engine.connect() as conn:
        rows = {
            r.id: r
            for r in await conn.execute(
                sa.text("SELECT id, sent_at, attempts, last_error, failed_at FROM alerts")
            )
        }
    sent = rows[pending[0].id]
    assert sent.sent_at == T0 + 100 and sent.attempts == 1 and sent.last_error is None
    failed = rows[pending[2].id]
    assert failed.attempts == 2 and "personal data" in failed.last_error
    assert failed.failed_at is not None and failed.sent_at is None


async def test_purge_text_forgets_old_texts(store: Store) -> None:
    old = [inspected(i, complaint=True, at=T0 - 86400 * 100 + i) for i in range(4)]
    new = [inspected(10 + i, complaint=True, at=T0 + i) for i in range(3)]
    await store.record(old + new)
    cleared = await store.purge_text(older_than=T0 - 86400 * 90)
    assert cleared == 4 + 4  # message texts and forwarded complaint texts
    counts = await store.counts()
    assert counts["texts"] == 3 and counts["complaint_texts"] == 3
    assert counts["messages"] == 7  # rows are kept, only the text goes
    async with store.engine.connect() as conn:
        texts = dict((await conn.execute(sa.select(messages.c.id, messages.c.text))).all())
    assert texts["msg-000000"] is None and texts["msg-000010"] == new[0].sms.text
    assert await store.purge_text(older_than=T0 - 86400 * 90) == 0


async def test_purge_text_works_in_chunks(store: Store) -> None:
    """A backlog is cleared a chunk per transaction (the write lock is never held long)."""
    old = [inspected(i, at=T0 - 86400 * 100 + i) for i in range(7)]
    await store.record([*old, inspected(50, at=T0)])
    assert await store.purge_text(older_than=T0 - 86400 * 90, chunk=3) == 7  # 3 + 3 + 1
    counts = await store.counts()
    assert counts["texts"] == 1 and counts["messages"] == 8


async def test_migrate_twice_is_a_no_op(db_url: str) -> None:
    async with await Store.open(db_url) as st:
        assert await st.schema_revision() is None
        await st.migrate()
        assert await st.schema_revision() == "0015"
        await st.record([inspected(1)])
        await st.migrate()
        assert await st.schema_revision() == "0015"
        assert (await st.counts())["messages"] == 1
    async with await Store.open(db_url) as st:  # a restart migrates again: still nothing to do
        await st.migrate()
        assert (await st.counts())["messages"] == 1


async def test_migrations_match_the_models(store: Store) -> None:
    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))

    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
        tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    assert tables == set(metadata.tables) | {"alembic_version"}
    core = {"messages", "verdicts", "alerts", "complaints", "probe_findings", "simbox_numbers"}
    assert core <= tables


async def test_errors_are_typed(store: Store) -> None:
    bad = inspected(1, complaint=True)
    assert bad.complaint is not None
    bad.complaint.message_id = "no-such-message"  # violates the foreign key
    with pytest.raises(StoreError) as info:
        await store.record([bad, inspected(2)])
    assert not isinstance(info.value, StoreUnavailable)
    assert "record failed" in str(info.value) and info.value.__cause__ is not None
    assert (await store.counts())["messages"] == 0  # the whole batch was rolled back


async def test_write_is_one_transaction_and_on_sqlite_in_the_writer_thread(store: Store) -> None:
    """Store.write runs a synchronous function as one transaction: committed whole, or (a
    database error, or the function's own) rolled back whole; on SQLite in the recorder's
    writer thread, so the recorder and it never wait on each other across event-loop turns.
    JSON goes in as the engine writes it; the recorder carries on after either outcome."""
    import threading

    from gateway.store.models import alerts

    def row(n: int) -> dict[str, Any]:
        return {"id": f"a-{n}", "kind": "case", "payload": {"n": n, "text": "Сіздің картаңыз"},
                "created_at": T0 + n, "attempts": 0}  # fmt: skip

    def two(conn: sa.Connection) -> str:
        conn.execute(alerts.insert(), [row(1), row(2)])
        return threading.current_thread().name

    thread = await store.write("test.two", two)
    assert thread.startswith("sqlite-writer") == (store.dialect == "sqlite")
    pending = await store.pending_alerts(10)
    assert [(a.id, a.payload) for a in pending] == [
        ("a-1", {"n": 1, "text": "Сіздің картаңыз"}), ("a-2", {"n": 2, "text": "Сіздің картаңыз"})
    ]  # fmt: skip

    def then_fail(conn: sa.Connection) -> None:
        conn.execute(alerts.insert(), [row(3)])
        conn.execute(alerts.insert(), [row(1)])  # the primary key again

    with pytest.raises(StoreError, match=r"test\.fail"):
        await store.write("test.fail", then_fail)

    def then_raise(conn: sa.Connection) -> None:
        conn.execute(alerts.insert(), [row(4)])
        raise ValueError("the caller's own error")

    with pytest.raises(ValueError, match="own error"):
        await store.write("test.raise", then_raise)
    assert [a.id for a in await store.pending_alerts(10)] == ["a-1", "a-2"]  # 3, 4 rolled back
    await store.record([inspected(1)])
    assert (await store.counts())["messages"] == 1


async def test_missing_schema_says_so(tmp_path: Path) -> None:
    async with await Store.open(sqlite_url(tmp_path)) as st:
        with pytest.raises(StoreError, match="migrate"):
            await st.pending_alerts(1)
    with pytest.raises(StoreError, match="unsupported database URL"):
        await Store.open("mysql://localhost/x")
    with pytest.raises(StoreError, match="SQLite database file is needed"):
        await Store.open("sqlite:///:memory:")
    with pytest.raises(StoreError, match="closed"):
        await st.counts()


async def test_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "fraudgate.sqlite3").mkdir()  # e.g. a volume not mounted as expected
    with pytest.raises(StoreUnavailable, match="unable to open database file"):
        await Store.open(sqlite_url(tmp_path))
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot create the data directory"):
        await Store.open(sqlite_url(tmp_path / "file" / "sub"))
    # After a failed connect aiosqlite stops its worker thread without waiting for it; let the
    # thread finish before this test's event loop is closed (else it reports to a closed loop).
    await asyncio.sleep(0.2)


async def test_sqlite_in_wal_mode(tmp_path: Path) -> None:
    st = await Store.open(sqlite_url(tmp_path / "d", "g.sqlite3"))
    async with st, st.engine.connect() as conn:
        mode = (await conn.execute(sa.text("PRAGMA journal_mode"))).scalar()
        sync = (await conn.execute(sa.text("PRAGMA synchronous"))).scalar()
        fks = (await conn.execute(sa.text("PRAGMA foreign_keys"))).scalar()
    assert (mode, sync, fks) == ("wal", 1, 1)  # synchronous 1 = NORMAL
    assert (tmp_path / "d" / "g.sqlite3").exists()


async def test_postgres_stopped_is_unavailable_then_recovers(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    st = await Store.open(postgres_url)
    try:
        await st.migrate()
        await st.record([inspected(1)])
        postgres_server.stop()
        with pytest.raises(StoreUnavailable, match="unavailable"):
            await st.record([inspected(2)])
        with pytest.raises(StoreUnavailable):
            await st.pending_alerts(10)
        with pytest.raises(StoreUnavailable):
            await Store.open(postgres_url, connect_timeout=2)
        postgres_server.start()
        # the caller retries: the pool replaces the connections the restart broke
        await st.record([inspected(2)])
        assert (await st.counts())["messages"] == 2
    finally:
        postgres_server.start()
        await st.close()


@pytest.mark.parametrize("batch", [100])
async def test_record_throughput(store: Store, batch: int) -> None:
    """Group commit: a quick figure (full figures: python -m gateway.store.bench URL)."""
    items = synthetic(3000, flagged=0.1, complaints=0.01)
    result = await bench_record(store, items, batch)
    print(result)
    assert (await store.counts())["messages"] == 3000
    # Far below the measured figures (thousands per second): catches a commit per row or a
    # statement per row, not a slow machine.
    assert result.rate > 500


# -- the SQLite writer thread (record() on a SQLite file) ------------------------------------


async def test_sqlite_writer_and_engine_share_the_database(tmp_path: Path) -> None:
    """record() writes through its own thread and connection; reads and the outbox's updates go
    through SQLAlchemy. Both see one database: JSON columns read back as SQLAlchemy wrote them."""
    async with await Store.open(sqlite_url(tmp_path)) as st:
        await st.migrate()
        await st.record([inspected(1, complaint=True), inspected(2, flagged=False)])
        [pending] = await st.pending_alerts(10)
        assert pending.payload == {"message_id": "msg-000001", "n": 1}
        await st.mark_alerts_sent([pending.id], T0 + 9)
        await st.record([inspected(3)])  # the writer again, after the engine wrote
        async with st.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(verdicts).where(verdicts.c.message_id == "msg-000001"))
            ).one()
            msg = (
                await conn.execute(sa.select(messages).where(messages.c.id == "msg-000001"))
            ).one()
        assert row.rule_ids == ["content.ru.card_blocked", "sender.spoofed_bank"]
        assert row.reasons[0]["spans"] == [{"start": 5, "end": 10}]
        assert msg.decode_errors == ["ucs2: odd length"] and msg.complete is True
        counts = await st.counts()
        assert counts["messages"] == 3 and counts["alerts_sent"] == 1
        assert counts["alerts_pending"] == 1 and counts["complaints"] == 1


async def test_sqlite_locked_by_another_writer_is_unavailable(tmp_path: Path) -> None:
    """Another process holding the write lock past the busy timeout: StoreUnavailable (the
    pipeline answers 0x14 and the SMSC retries), nothing half-written, and it works after."""
    import sqlite3

    url = sqlite_url(tmp_path)
    async with await Store.open(url, connect_timeout=0.3) as st:
        await st.migrate()
        other = sqlite3.connect(tmp_path / "fraudgate.sqlite3", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreUnavailable, match="locked"):
                await st.record([inspected(1)])
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert (await st.counts())["messages"] == 0
        await st.record([inspected(1)])
        assert (await st.counts())["messages"] == 1


async def test_sqlite_writer_checkpoints_and_truncates_the_wal_at_close(tmp_path: Path) -> None:
    from gateway.store import sqlite_writer

    wal = tmp_path / "fraudgate.sqlite3-wal"
    st = await Store.open(sqlite_url(tmp_path))
    async with st:
        await st.migrate()
        for i in range(20):
            await st.record([inspected(i * 10 + k) for k in range(10)])
        assert wal.exists() and wal.stat().st_size > 0
        writer = st._writer
        assert writer is not None
        writer._last_checkpoint -= sqlite_writer.CHECKPOINT_EVERY  # as if a second had passed
        await st.record([inspected(999)])
        assert writer._checkpoint is not None
        await asyncio.wrap_future(writer._checkpoint)
        assert writer.checkpoint_errors == 0
    assert not wal.exists() or wal.stat().st_size == 0  # TRUNCATE checkpoint at close
    async with await Store.open(sqlite_url(tmp_path)) as again:
        assert (await again.counts())["messages"] == 201  # everything is in the database file


def test_record_ids_are_uuid7_in_creation_order() -> None:
    import uuid

    from gateway.ids import new_id

    ids = [new_id() for _ in range(20000)]  # several milliseconds, many ids per millisecond
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for value in (ids[0], ids[-1]):
        parsed = uuid.UUID(value)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and len(value) == 32
    import time

    ms = int(ids[-1][:12], 16)
    assert abs(ms - time.time() * 1000) < 5000  # the first 48 bits are the Unix time in ms


# -- probe findings and SIM-box numbers ---------------------------------------------------------


async def test_findings_keep_every_sighting_of_a_simbox_number(store: Store) -> None:
    from gateway.alerts.payloads import finding_alert_payload
    from gateway.probes.simbox import Expected, TestCallMatcher
    from gsm_probe.events import IncomingCall

    m = TestCallMatcher()
    tests = [Expected("p1", "+4915112345678", T0 + i * 100, T0 + i * 100 + 60, route=f"r{i}")
             for i in range(3)]  # fmt: skip
    m.expect(tests)
    f1 = m.on_call(IncomingCall("p1", "+77011234567", 145, 0, T0 + 10))
    f2 = m.on_call(IncomingCall("p1", "+77011234567", 145, 0, T0 + 110))
    clean = m.on_call(IncomingCall("p1", "+4915112345678", 145, 0, T0 + 210))
    alerts = [Alert(AlertKind.SIMBOX, finding_alert_payload(f), f.at) for f in (f1, f2)]
    await store.record_findings([f2, clean], alerts[1:])  # out of order on purpose
    await store.record_findings([f1], alerts[:1])
    await store.record_findings([f1], alerts[:1])  # a retry after a lost acknowledgement:
    await store.record_findings([f1], [Alert(AlertKind.SIMBOX, {"again": 1}, T0)])  # no change
    [row] = await store.simbox_numbers()
    assert row["number"] == "77011234567" and row["sightings"] == 2
    assert (row["first_seen"], row["last_seen"]) == (T0 + 10, T0 + 110)
    assert row["outcome"] == "simbox" and row["last_route"] in ("r0", "r1")
    sightings = await store.probe_findings(number="77011234567")
    assert [s["route"] for s in sightings] == ["r1", "r0"]  # latest first
    assert len(await store.probe_findings()) == 3
    assert (await store.counts())["alerts_pending"] == 2


async def test_one_result_per_announced_test(store: Store) -> None:
    from gateway.probes.simbox import Expected, Finding, Outcome

    test = Expected("p1", "+4915112345678", T0, T0 + 60, id="plan-7")
    first = Finding(Outcome.SIMBOX, "p1", T0 + 1, "+77011234567", 1, test, number="77011234567")
    second = Finding(Outcome.CLEAN, "p1", T0 + 2, "+4915112345678", 1, test)
    await store.record_findings([first], [])
    await store.record_findings([second], [])  # a second result for the same test is dropped
    [row] = await store.probe_findings()
    assert row["outcome"] == "simbox" and row["test_id"] == "plan-7"
