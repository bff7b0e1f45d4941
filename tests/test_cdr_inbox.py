"""The CDR inbox (gateway/calls/inbox.py) on real files and a real SQLite database, and its
ledger (gateway/calls/ledger.py) on SQLite and PostgreSQL: files taken once they stop changing,
read once whatever their name, resumed from their checkpoint after a restart, bad rows counted
and reported once per file, broken files failed with the records before them kept."""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.calls.cdr import Cdr
from gateway.calls.inbox import After, Inbox
from gateway.calls.ledger import MAX_BAD_ROWS, FileStatus, Ledger
from gateway.calls.reader import Mapping
from gateway.store import Store, sqlite_url

NOW = datetime(2026, 12, 9, tzinfo=UTC).timestamp()
T0 = datetime(2026, 12, 8, 5, 15, 30, tzinfo=UTC).timestamp()
HEADER = "record_type,start,duration,calling,called,record_id\n"


class Sink:
    def __init__(self, *, fail_at: int = 0) -> None:
        self.batches: list[list[Cdr]] = []
        self.sources: list[str] = []
        self.seen: set[str] = set()
        self.fail_at = fail_at  # raise on this call (1-based)
        self.calls = 0
        self.gate: asyncio.Event | None = None  # hold every call after the first until set
        self.holding = asyncio.Event()

    @property
    def records(self) -> list[Cdr]:
        return [r for b in self.batches for r in b]

    async def accept(self, batch: Sequence[Cdr], source: str) -> int:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("the analyzer's database is down")
        if self.gate is not None and self.calls > 1:
            self.holding.set()
            await self.gate.wait()
        self.batches.append(list(batch))
        self.sources.append(source)
        new = {r.key() for r in batch} - self.seen
        self.seen |= new
        return len(new)


def write_rows(path: Path, n: int, *, first: int = 0, bad_lines: Sequence[int] = ()) -> Path:
    """A canonical CSV of n records; record i (i from `first`) is on line i - first + 2."""
    with path.open("w") as f:
        f.write(HEADER)
        for i in range(first, first + n):
            line = i - first + 2
            stamp = datetime.fromtimestamp(T0 + i % 80_000, UTC)
            start = "2026-02-30T00:00:00Z" if line in bad_lines else f"{stamp:%Y-%m-%dT%H:%M:%SZ}"
            f.write(f"MOC,{start},{i % 60},7701{i % 10_000_000:07d},87051234567,m:{i}\n")
    return path


def age(path: Path, seconds: float) -> None:
    """Set the mtime back (oldest first is by mtime)."""
    t = path.stat().st_mtime - seconds
    os.utime(path, (t, t))


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(sqlite_url(tmp_path / "data"))
    try:
        await store.migrate()
        yield store
    finally:
        await store.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


def inbox_of(
    folder: Path,
    sink: Sink,
    store: Store,
    *,
    after: After = "keep",
    batch_size: int = 5000,
    interval: float = 10.0,
) -> Inbox:
    return Inbox(folder, sink, Ledger(store), node="n1", clock=lambda: NOW, after=after,
                 batch_size=batch_size, interval=interval)  # fmt: skip


async def two_scans(inbox: Inbox) -> int:
    """A file is taken by the scan after the one that first saw it."""
    return await inbox.scan() + await inbox.scan()


# -- the ledger, on both databases ------------------------------------------------------------


async def test_ledger_files_by_content_checkpoints_and_bad_rows(store: Store) -> None:
    clock = iter(range(1000, 2000))
    ledger = Ledger(store, clock=lambda: float(next(clock)))
    first = await ledger.begin("a" * 64, "calls-1.csv", 1234, "n1")
    again = await ledger.begin("a" * 64, "copy-of-calls-1.csv", 1234, "n2")
    assert first.new and not again.new and again.id == first.id
    assert (again.name, again.status, again.node, again.lines_done, again.started_at) == (
        "calls-1.csv", FileStatus.READING, "n1", 0, 1000.0
    )  # fmt: skip
    bad = [(line, f"calls-1.csv:{line}: start: missing") for line in range(2, 82)]
    await ledger.checkpoint(first.id, lines_done=90, records=10, bad_rows=80, duplicates=1, bad=bad)
    more = [(line, "x") for line in range(100, 150)]
    for _ in range(2):  # written twice (a retry): the same result
        await ledger.checkpoint(
            first.id, lines_done=200, records=60, bad_rows=130, duplicates=2, bad=more
        )
    kept = await ledger.bad_rows(first.id)
    assert len(kept) == MAX_BAD_ROWS and kept[0] == (2, "calls-1.csv:2: start: missing")
    assert kept[-1] == (119, "x")
    await ledger.resume(first.id, "n2")
    state = await ledger.find("a" * 64)
    assert state is not None
    totals = (state.lines_done, state.records, state.bad_rows, state.duplicates, state.node)
    assert totals == (200, 60, 130, 2, "n2")
    await ledger.finish(first.id, FileStatus.FAILED, "calls-1.csv: cannot read past line 200")
    second = await ledger.begin("b" * 64, "calls-2.csv", 10, "n1")
    await ledger.finish(second.id, FileStatus.DONE)
    recent = await ledger.recent()
    assert [(s.name, s.status) for s in recent] == [
        ("calls-2.csv", FileStatus.DONE),  # newest first
        ("calls-1.csv", FileStatus.FAILED),
    ]
    assert recent[1].error == "calls-1.csv: cannot read past line 200"
    assert recent[1].finished_at is not None and recent[1].finished_at > recent[1].started_at
    assert [s.name for s in await ledger.recent(status=FileStatus.FAILED)] == ["calls-1.csv"]
    assert await ledger.find("c" * 64) is None


# -- taking files -----------------------------------------------------------------------------


async def test_a_file_is_taken_when_it_stopped_changing(folder: Path, sqlite_store: Store) -> None:
    sink = Sink()
    inbox = inbox_of(folder, sink, sqlite_store)
    path = write_rows(folder / "calls.csv", 10)
    assert await inbox.scan() == 0  # first seen
    with path.open("a") as f:  # still being written
        f.write("MOC,2026-12-08T10:15:30+05:00,1,77011234567,,late\n")
    assert await inbox.scan() == 0 and sink.calls == 0
    assert await inbox.scan() == 1
    assert [r.record_id for r in sink.records][-2:] == ["m:9", "late"]
    assert sink.sources == ["calls.csv"]
    assert (inbox.files, inbox.records, inbox.bad_rows, inbox.failed_files) == (1, 11, 0, 0)
    assert await inbox.scan() == 0 and sink.calls == 1  # kept, and not read again


async def test_hidden_and_partial_names_and_folders_are_never_taken(
    folder: Path, sqlite_store: Store
) -> None:
    sink = Sink()
    inbox = inbox_of(folder, sink, sqlite_store)
    for name in (".calls.csv", "calls.csv.tmp", "calls.csv.PART"):
        write_rows(folder / name, 3)
    (folder / "done").mkdir()
    write_rows(folder / "done" / "old.csv", 3)
    assert await two_scans(inbox) == 0 and sink.calls == 0
    (folder / "calls.csv.tmp").rename(folder / "calls.csv")  # the writer's final rename
    assert await two_scans(inbox) == 1 and len(sink.records) == 3


async def test_the_same_content_under_two_names_is_read_once(
    folder: Path, sqlite_store: Store
) -> None:
    sink = Sink()
    inbox = inbox_of(folder, sink, sqlite_store, after="move")
    write_rows(folder / "a.csv", 50)
    age(folder / "a.csv", 60)
    (folder / "b.csv").write_bytes((folder / "a.csv").read_bytes())
    assert await two_scans(inbox) == 1
    assert len(sink.records) == 50 and sink.sources == ["a.csv"]
    assert inbox.skipped_files == 1
    assert sorted(p.name for p in (folder / "done").iterdir()) == ["a.csv", "b.csv"]
    (folder / "c.csv").write_bytes((folder / "done" / "a.csv").read_bytes())  # dropped again
    assert await two_scans(inbox) == 0 and len(sink.records) == 50
    assert sorted(p.name for p in (folder / "done").iterdir()) == ["a.csv", "b.csv", "c.csv"]
    states = await Ledger(sqlite_store).recent()
    assert [(s.name, s.status, s.records) for s in states] == [("a.csv", FileStatus.DONE, 50)]


async def test_gzip_files_and_a_truncated_one_failed_with_its_records_kept(
    folder: Path, sqlite_store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink()
    inbox = inbox_of(folder, sink, sqlite_store, after="move", batch_size=1000)
    src = write_rows(tmp_path / "src.csv", 20_000)
    data = gzip.compress(src.read_bytes())
    (folder / "1-cut.csv.gz").write_bytes(data[: len(data) // 2])
    age(folder / "1-cut.csv.gz", 120)
    whole = write_rows(tmp_path / "w.csv", 30, first=50_000)
    (folder / "2-whole.csv.gz").write_bytes(gzip.compress(whole.read_bytes()))
    age(folder / "2-whole.csv.gz", 60)
    (folder / "3-columns.csv").write_text("type,time\nMOC,2026-12-08T10:15:30Z\n")
    with caplog.at_level(logging.INFO, logger="fraudgate.calls"):
        assert await two_scans(inbox) == 3
    cut = [r for r, s in zip(sink.batches, sink.sources, strict=True) if s == "1-cut.csv.gz"]
    kept = sum(len(b) for b in cut)
    assert 1000 < kept < 19_000
    assert [r.record_id for r in sink.records[:kept]] == [f"m:{i}" for i in range(kept)]
    assert len(sink.records) == kept + 30  # the next file was read
    assert (inbox.files, inbox.failed_files) == (3, 2)
    states = {s.name: s for s in await Ledger(sqlite_store).recent()}
    cut_state = states["1-cut.csv.gz"]
    assert cut_state.status is FileStatus.FAILED and cut_state.records == kept
    assert cut_state.lines_done == kept + 1  # the last line whose records were accepted
    assert cut_state.error is not None and f"past line {kept + 1}" in cut_state.error
    assert "truncated" in cut_state.error
    assert states["2-whole.csv.gz"].status is FileStatus.DONE
    assert states["3-columns.csv"].status is FileStatus.FAILED
    assert "record_type, start" in (states["3-columns.csv"].error or "")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and "1-cut.csv.gz" in errors[0] and f"line {kept + 1}" in errors[0]
    failed = sorted(p.name for p in (folder / "failed").iterdir())
    assert failed == ["1-cut.csv.gz", "3-columns.csv"]
    assert [p.name for p in (folder / "done").iterdir()] == ["2-whole.csv.gz"]


async def test_a_large_file_with_one_bad_line_reports_exactly_that_line(
    folder: Path, sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink()
    inbox = inbox_of(folder, sink, sqlite_store, after="delete")
    write_rows(folder / "big.csv", 200_000, bad_lines=[100_001])
    with caplog.at_level(logging.INFO, logger="fraudgate.calls"):
        assert await two_scans(inbox) == 1
    assert len(sink.records) == 199_999 and len(sink.batches) == 40
    assert (inbox.records, inbox.bad_rows, inbox.duplicates) == (199_999, 1, 0)
    (state,) = await Ledger(sqlite_store).recent()
    assert (state.status, state.records, state.bad_rows, state.lines_done) == (
        FileStatus.DONE, 199_999, 1, 200_001
    )  # fmt: skip
    (bad,) = await Ledger(sqlite_store).bad_rows(state.id)
    assert bad[0] == 100_001 and bad[1].startswith("big.csv:100001: start: ")
    assert "day is out of range" in bad[1]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"CDR file big.csv: 1 bad rows, the first 1 kept in cdr_bad_rows; the first: {bad[1]}"
    ]
    assert not (folder / "big.csv").exists()


async def test_many_bad_rows_are_counted_and_the_first_hundred_kept(
    folder: Path, sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink()
    inbox = inbox_of(folder, sink, sqlite_store, batch_size=100)
    write_rows(folder / "bad.csv", 1000, bad_lines=range(2, 1002, 2))
    with caplog.at_level(logging.WARNING, logger="fraudgate.calls"):
        await two_scans(inbox)
    (state,) = await Ledger(sqlite_store).recent()
    assert (state.records, state.bad_rows) == (500, 500)
    kept = await Ledger(sqlite_store).bad_rows(state.id)
    assert [line for line, _ in kept] == list(range(2, 202, 2))
    assert len(caplog.records) == 1 and "500 bad rows" in caplog.records[0].getMessage()


# -- restarts ---------------------------------------------------------------------------------


async def test_a_restart_resumes_after_the_checkpoint(folder: Path, sqlite_store: Store) -> None:
    failing = Sink(fail_at=3)
    write_rows(folder / "calls.csv", 5000)
    first = inbox_of(folder, failing, sqlite_store, batch_size=1000)
    assert await two_scans(first) == 0  # the sink failed: left for the next scan
    (state,) = await Ledger(sqlite_store).recent()
    assert (state.status, state.lines_done, state.records) == (FileStatus.READING, 2001, 2000)
    sink = Sink()
    second = inbox_of(folder, sink, sqlite_store, batch_size=1000)  # a new process
    assert await two_scans(second) == 1
    assert [r.record_id for r in sink.records] == [f"m:{i}" for i in range(2000, 5000)]
    (state,) = await Ledger(sqlite_store).recent()
    assert (state.status, state.lines_done, state.records) == (FileStatus.DONE, 5001, 5000)


async def test_a_cancelled_inbox_resumes_from_its_last_checkpoint(
    folder: Path, sqlite_store: Store
) -> None:
    held = Sink()
    held.gate = asyncio.Event()  # the second batch never returns
    write_rows(folder / "calls.csv", 3500)
    inbox = inbox_of(folder, held, sqlite_store, batch_size=1000, interval=0.01)
    task = asyncio.create_task(inbox.run())
    await held.holding.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (state,) = await Ledger(sqlite_store).recent()
    assert (state.status, state.lines_done) == (FileStatus.READING, 1001)
    sink = Sink()
    assert await two_scans(inbox_of(folder, sink, sqlite_store, batch_size=1000)) == 1
    assert [r.record_id for r in sink.records] == [f"m:{i}" for i in range(1000, 3500)]
    assert len(held.records) == 1000


async def test_a_failing_sink_is_logged_once_until_it_recovers(
    folder: Path, sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink(fail_at=1)
    inbox = inbox_of(folder, sink, sqlite_store)
    write_rows(folder / "calls.csv", 10)
    with caplog.at_level(logging.INFO, logger="fraudgate.calls"):
        await two_scans(inbox)
        sink.calls = 0
        assert await inbox.scan() == 0  # fails again: not logged again
        sink.fail_at = 0
        assert await inbox.scan() == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["CDR file calls.csv left for the next scan: the analyzer's database is down"]
    assert any(r.getMessage() == "the CDR inbox reads again" for r in caplog.records)
    assert len(sink.records) == 10


# -- what one file does not do to the others (issue 18 review) -------------------------------


async def test_rows_that_raised_in_the_parser_are_bad_rows_and_the_next_files_are_read(
    folder: Path, sqlite_store: Store
) -> None:
    """A JSON line of 40,000 '[' (RecursionError) and a seconds field '0²' (ValueError) once
    escaped the reader: the inbox took them for a database error and took the same oldest
    file again at every scan, never reading the others."""
    sink = Sink()
    inbox = inbox_of(folder, sink, sqlite_store, after="move")
    rec = '{"record_type": "MOC", "start": "2026-12-08T10:15:30+05:00", "record_id": "j%d"}\n'
    (folder / "1-deep.jsonl").write_text(rec % 1 + "[" * 40_000 + "\n" + rec % 3)
    age(folder / "1-deep.jsonl", 120)
    (folder / "2-sup.csv").write_text(HEADER + "MOC,2026-12-08T10:15:0\u00b2Z,1,,,s2\n"
                                      "MOC,2026-12-08T10:15:03Z,1,,,s3\n")  # fmt: skip
    age(folder / "2-sup.csv", 60)
    write_rows(folder / "3-fine.csv", 5)
    assert await two_scans(inbox) == 3
    assert [r.record_id for r in sink.records] == ["j1", "j3", "s3"] + [f"m:{i}" for i in range(5)]
    states = {s.name: s for s in await Ledger(sqlite_store).recent()}
    assert {n: (s.status, s.records, s.bad_rows) for n, s in states.items()} == {
        "1-deep.jsonl": (FileStatus.DONE, 2, 1),
        "2-sup.csv": (FileStatus.DONE, 1, 1),
        "3-fine.csv": (FileStatus.DONE, 5, 0),
    }
    (deep,) = await Ledger(sqlite_store).bad_rows(states["1-deep.jsonl"].id)
    assert deep == (2, "1-deep.jsonl:2: not JSON (nested too deeply)")


async def test_an_error_of_the_reader_itself_fails_that_file_once_and_the_inbox_goes_on(
    folder: Path,
    sqlite_store: Store,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from gateway.calls import inbox as inbox_module
    from gateway.calls.reader import read_records as real

    def broken(path: Path, *args: object, **kw: object) -> Iterator[tuple[int, object]]:
        for n, (line, item) in enumerate(real(path, *args, **kw)):  # type: ignore[arg-type]
            if path.name == "1-bug.csv" and n == 3:
                raise ValueError("invalid literal for int(): '77011234567'")  # a reader bug
            yield line, item

    monkeypatch.setattr(inbox_module, "read_records", broken)
    sink = Sink()
    inbox = inbox_of(folder, sink, sqlite_store)
    write_rows(folder / "1-bug.csv", 10)
    age(folder / "1-bug.csv", 60)
    write_rows(folder / "2-fine.csv", 4, first=100)
    with caplog.at_level(logging.INFO, logger="fraudgate.calls"):
        assert await two_scans(inbox) == 2
        assert await inbox.scan() == 0  # kept: not taken again
    assert [r.record_id for r in sink.records] == ["m:0", "m:1", "m:2"] + [
        f"m:{i}" for i in range(100, 104)
    ]
    states = {s.name: s for s in await Ledger(sqlite_store).recent()}
    bug = states["1-bug.csv"]
    assert (bug.status, bug.records, bug.lines_done) == (FileStatus.FAILED, 3, 4)
    assert states["2-fine.csv"].status is FileStatus.DONE
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith(
        "CDR file 1-bug.csv failed: the reader failed after line 4: ValueError at "
        "test_cdr_inbox.py:"
    )
    assert "7701" not in errors[0]  # the exception's message may hold personal data
    assert (inbox.failed_files, inbox.files) == (1, 2)


async def test_a_failed_file_is_never_deleted_and_is_read_again_when_dropped_again(
    folder: Path, sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A mapping mistake (the header does not match) once deleted the file with after =
    "delete", and the ledger kept its content as failed: a copy dropped after the mapping was
    fixed was skipped as read already."""
    sink = Sink()
    path = write_rows(folder / "calls.csv", 20)
    path.write_text(path.read_text().replace("record_type,start,", "record_type,START_TIME,", 1))
    # the ledger's clock a second behind: the rename back below is later than the failed
    # read began even by the file system's coarse clock (4 ms), however fast this test runs
    behind = Ledger(sqlite_store, clock=lambda: time.time() - 1)
    first = Inbox(folder, sink, behind, node="n1", clock=lambda: NOW, after="delete")
    assert await two_scans(first) == 1
    assert not path.exists() and (folder / "failed" / "calls.csv").exists()
    (state,) = await Ledger(sqlite_store).recent()
    assert state.status is FileStatus.FAILED and "START_TIME" in (state.error or "")
    fixed = Inbox(folder, sink, Ledger(sqlite_store), node="n1", clock=lambda: NOW,
                  after="delete", mapping=Mapping(columns={"start": "START_TIME"}))  # fmt: skip
    (folder / "failed" / "calls.csv").rename(path)  # moved back (its ctime): dropped again
    with caplog.at_level(logging.INFO, logger="fraudgate.calls"):
        assert await two_scans(fixed) == 1
    assert [r.record_id for r in sink.records] == [f"m:{i}" for i in range(20)]
    retry = "CDR file calls.csv: its content failed before (as calls.csv: calls.csv: the header "
    assert retry in caplog.text and "read again after line 0" in caplog.text
    (state,) = await Ledger(sqlite_store).recent()
    assert (state.status, state.records, state.error) == (FileStatus.DONE, 20, None)
    assert not path.exists() and fixed.retried_files == 1  # done: deleted


async def test_a_failed_file_dropped_again_resumes_from_its_checkpoint(
    folder: Path, sqlite_store: Store
) -> None:
    """cp1251 read as UTF-8: the file stops at the run of lines that are not text, with its
    checkpoint before it; dropped again with the right encoding, it reads on from there."""
    sink = Sink()
    text = write_rows(folder / "x.csv", 100).read_bytes()
    text += "".join(f"MOC,2026-12-08T10:15:30Z,1,,,Алматы-{i}\n" for i in range(1200)).encode(
        "cp1251"
    )
    (folder / "x.csv").unlink()
    (folder / "calls.csv").write_bytes(text)
    assert await two_scans(inbox_of(folder, sink, sqlite_store, after="move")) == 1
    (state,) = await Ledger(sqlite_store).recent()
    assert (state.status, state.lines_done, state.records) == (FileStatus.FAILED, 101, 100)
    assert "not utf-8 text: 1000 lines from line 102 on" in (state.error or "")
    assert len(sink.records) == 100
    cp1251 = Inbox(folder, sink, Ledger(sqlite_store), node="n1", clock=lambda: NOW,
                   after="move", mapping=Mapping(encoding="cp1251"))  # fmt: skip
    (folder / "again.csv").write_bytes((folder / "failed" / "calls.csv").read_bytes())
    assert await two_scans(cp1251) == 1
    assert len(sink.records) == 1300 and sink.records[100].record_id == "Алматы-0"
    (state,) = await Ledger(sqlite_store).recent()
    assert (state.status, state.name, state.records, state.lines_done) == (
        FileStatus.DONE, "again.csv", 1300, 1301
    )  # fmt: skip
    assert sorted(p.name for p in (folder / "failed").iterdir()) == ["calls.csv"]
    assert [p.name for p in (folder / "done").iterdir()] == ["again.csv"]


async def test_a_failed_file_kept_in_place_is_read_again_only_when_dropped_again(
    folder: Path, sqlite_store: Store
) -> None:
    sink = Sink()
    path = folder / "calls.csv"
    path.write_text("type,time\nMOC,2026-12-08T10:15:30Z\n")
    inbox = inbox_of(folder, sink, sqlite_store)
    assert await two_scans(inbox) == 1 and inbox.failed_files == 1
    assert await inbox.scan() == 0 and inbox.skipped_files == 0  # not even hashed again
    restarted = inbox_of(folder, sink, sqlite_store)  # a new process: the file is still there
    assert await two_scans(restarted) == 0 and restarted.skipped_files == 1
    assert await restarted.scan() == 0 and restarted.skipped_files == 1
    (state,) = await Ledger(sqlite_store).recent()
    path.write_text(path.read_text())  # written again (a transfer redone): dropped again
    later = int((state.started_at + 1) * 1e9)  # a second after: however fast this test runs
    os.utime(path, ns=(later, later))
    assert await two_scans(restarted) == 1 and restarted.retried_files == 1
    (state,) = await Ledger(sqlite_store).recent()
    assert state.status is FileStatus.FAILED and path.exists()  # still the wrong columns
