"""The CDR inbox: a folder where a switch, its mediation or an operator drops call-record files
(docs/calls-intake.md "Inbox").

Each scan lists the folder; a file is taken when its size and mtime are what the previous scan
saw (a file still being written waits for the next scan), oldest first. Names starting with
"." or ending in .tmp / .part are never taken: a writer that renames its file when complete
is taken on the first stable scan. A file is known by its content's SHA-256 (the ledger): read
once whatever its name. Its records are parsed in a worker thread (gateway.calls.reader), in
batches of `batch_size`, each handed to the sink and then checkpointed in the ledger, so a
restart resumes after the last accepted batch (a batch accepted but not checkpointed when the
process died is handed again: the sink counts it as duplicates, by Cdr.key()).

Bad rows are counted and the first ledger.MAX_BAD_ROWS of a file kept; the log gets ONE
warning per file (count, first bad line and its error). A file that cannot be read on (a
truncated gzip, a file that is not text, a header without the required columns, or an error
of the reader itself) is logged once, marked failed with the records before it kept, never
deleted (moved to failed/, or kept), and the inbox goes on with the next file. Dropped again
(under another name, or written or moved in since it was read: a mapping fixed, a transfer
redone) a failed content is read again from its checkpoint; left where it is, it is not.
Only an error of the sink or the database leaves a file for the next scan.

Run it on one node at a time (the leader): a file left in state reading is resumed by the
inbox that finds it, whichever node began it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from gateway.calls.cdr import Cdr, CdrError
from gateway.calls.ledger import MAX_BAD_ROWS, FileState, FileStatus, Ledger
from gateway.calls.reader import DEFAULT_MAPPING, CdrFileError, Mapping, read_records

log = logging.getLogger("fraudgate.calls")

After = Literal["keep", "move", "delete"]
SKIPPED_SUFFIXES = (".tmp", ".part")
DONE_DIR = "done"
FAILED_DIR = "failed"


class CdrSink(Protocol):
    """Where the records go (the call analyzer, gateway.calls.service)."""

    async def accept(self, batch: Sequence[Cdr], source: str) -> int:
        """Take a batch of records read from `source` (a file name, a stream peer); return how
        many were new (the others were duplicates: records already accepted, by Cdr.key())."""
        ...


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    size: int
    mtime_ns: int
    ctime_ns: int  # a rename (a file moved back into the inbox) changes it, not mtime

    @property
    def stamp(self) -> tuple[int, int, int]:
        return (self.size, self.mtime_ns, self.ctime_ns)

    def dropped_since(self, at: float) -> bool:
        """Written or moved here after `at` (epoch seconds, when the inbox began to read a file
        that failed)? A file is taken only once a scan saw it unchanged, so the failed file
        left in place is older than that: it is not read again at every scan, nor at every
        start. A file dropped again after the failure is newer, even by the file system's
        coarse clock (a few ms behind time.time()): reading the file took longer than that."""
        return max(self.mtime_ns, self.ctime_ns) > at * 1e9


@dataclass(slots=True)
class _Batch:
    """What the worker thread read: up to batch_size records and the bad rows among them."""

    records: list[Cdr] = field(default_factory=list)
    bad: list[tuple[int, CdrError]] = field(default_factory=list)
    last_line: int = 0  # the last line read (the checkpoint once the batch is accepted)
    error: CdrFileError | None = None  # the file stopped here
    ended: bool = False


def _take(
    items: Iterator[tuple[int, Cdr | CdrError]], size: int, last_line: int, name: str
) -> _Batch:
    """Read the next batch (in a worker thread): `size` records, or as many bad rows. An
    exception of the reader (not a CdrFileError: a bug) fails the file like one, so that the
    inbox goes on with the next file instead of taking this one again at every scan."""
    batch = _Batch(last_line=last_line)
    try:
        for line, item in items:
            batch.last_line = line
            if type(item) is Cdr:
                batch.records.append(item)
                if len(batch.records) >= size:
                    return batch
            else:
                assert isinstance(item, CdrError)
                batch.bad.append((line, item))
                if len(batch.bad) >= size:
                    return batch
    except CdrFileError as e:
        batch.error = e
    except Exception as e:
        batch.error = CdrFileError(name, f"the reader failed after line {batch.last_line}: "
                                   f"{_bug(e)}", line=batch.last_line)  # fmt: skip
    batch.ended = True
    return batch


def _bug(e: BaseException) -> str:
    """An unexpected exception's type and where it was raised, not its message (which may
    quote a field: personal data)."""
    frames = traceback.extract_tb(e.__traceback__)
    at = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(e).__name__}{at}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@dataclass(slots=True)
class _Progress:
    """A file's totals while it is read (resumed from its ledger row)."""

    state: FileState
    lines_done: int
    records: int
    bad_rows: int
    duplicates: int
    first_bad: CdrError | None = None

    @classmethod
    def of(cls, state: FileState) -> _Progress:
        return cls(state, state.lines_done, state.records, state.bad_rows, state.duplicates)


class Inbox:
    """Watches `folder` and hands the records of the files dropped there to `sink`."""

    def __init__(
        self,
        folder: Path,
        sink: CdrSink,
        ledger: Ledger,
        *,
        mapping: Mapping = DEFAULT_MAPPING,
        node: str = "",
        after: After = "keep",
        batch_size: int = 5000,
        interval: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if after not in ("keep", "move", "delete"):
            raise ValueError(f"after: keep, move or delete, got {after!r}")
        self.folder = Path(folder)
        self.sink = sink
        self.ledger = ledger
        self.mapping = mapping
        self.node = node
        self.after: After = after
        self.batch_size = batch_size
        self.interval = interval
        self.clock = clock
        self._previous: dict[str, tuple[int, int, int]] = {}  # the last scan: name -> stamp
        self._handled: dict[str, tuple[int, int, int]] = {}  # kept files already dealt with
        self._trouble = ""  # the last scan's error, logged once
        # counters for metrics (since start)
        self.files = 0  # files finished (read to their end, or failed)
        self.failed_files = 0
        self.skipped_files = 0  # contents already read (the same file again, another name)
        self.retried_files = 0  # failed contents dropped again, read on from their checkpoint
        self.records = 0  # good records handed to the sink
        self.duplicates = 0  # of them, records the sink already had
        self.bad_rows = 0

    async def run(self) -> None:
        """Scan every `interval` seconds until cancelled (a file being read when cancelled is
        resumed from its checkpoint by the next run). The folder is created if missing."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._report(f"cannot create the CDR inbox {self.folder}: {e.strerror or e}")
        while True:
            await self.scan()
            await asyncio.sleep(self.interval)

    async def scan(self) -> int:
        """One pass: take the files that did not change since the previous pass, oldest first.
        Returns how many were read. An error of the sink or the database stops the pass (the
        file resumes next pass); it is logged once until a pass succeeds."""
        try:
            entries = await asyncio.to_thread(self._list)
        except OSError as e:
            self._report(f"cannot list the CDR inbox {self.folder}: {e.strerror or e}")
            return 0
        stable = [e for e in entries if self._previous.get(e.name) == e.stamp]
        self._previous = {e.name: e.stamp for e in entries}
        self._handled = {k: v for k, v in self._handled.items() if k in self._previous}
        read = 0
        for entry in sorted(stable, key=lambda e: (e.mtime_ns, e.name)):
            if self._handled.get(entry.name) == entry.stamp:
                continue
            try:
                read += await self._take_file(entry)
            except Exception as e:  # the sink or the database: try again next scan
                self._report(f"CDR file {entry.name} left for the next scan: {e}")
                return read
        if self._trouble:
            log.info("the CDR inbox reads again")
            self._trouble = ""
        return read

    def _report(self, message: str) -> None:
        if message != self._trouble:
            log.error("%s", message)
            self._trouble = message

    def _list(self) -> list[_Entry]:
        entries = []
        with os.scandir(self.folder) as it:
            for d in it:
                name = d.name
                if name.startswith(".") or name.lower().endswith(SKIPPED_SUFFIXES):
                    continue
                try:
                    if not d.is_file():
                        continue
                    st = d.stat()
                except FileNotFoundError:
                    continue
                entries.append(_Entry(name, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
        return entries

    # -- one file ------------------------------------------------------------------------------

    async def _take_file(self, entry: _Entry) -> int:
        path = self.folder / entry.name
        try:
            sha = await asyncio.to_thread(_sha256, path)
        except FileNotFoundError:
            return 0  # moved away since the scan
        except OSError as e:
            log.error("CDR file %s cannot be read: %s", entry.name, e.strerror or e)
            self._handled[entry.name] = entry.stamp
            return 0
        state = await self.ledger.begin(sha, entry.name, entry.size, self.node)
        if state.status is FileStatus.FAILED:
            retried = await self._again(path, entry, state)
            if retried is None:
                return 0
            state = retried
        elif state.status is not FileStatus.READING:
            log.info("CDR file %s: its content was read already (as %s, %s)", entry.name,
                     state.name, state.status.value)  # fmt: skip
            self.skipped_files += 1
            self._dispose(path, entry, state.status)
            return 0
        elif not state.new:
            log.info("CDR file %s: resuming after line %d", entry.name, state.lines_done)
            if state.node != self.node:
                await self.ledger.resume(state.id, self.node)
        status = await self._read(path, state)
        self._dispose(path, entry, status)
        return 1

    async def _again(self, path: Path, entry: _Entry, state: FileState) -> FileState | None:
        """A content that failed: read on from its checkpoint when it was dropped again (under
        another name, or written or moved here since it was read); the failed file itself,
        left in place, is not (None)."""
        if entry.name == state.name and not entry.dropped_since(state.started_at):
            log.info("CDR file %s: its content failed (%s); left as it is: drop it again to "
                     "read it again", entry.name, state.error)  # fmt: skip
            self.skipped_files += 1
            self._dispose(path, entry, FileStatus.FAILED)
            return None
        retried = await self.ledger.retry(state.id, entry.name, self.node)
        if retried is None:
            return None  # taken meanwhile by another node: the next scan sees how it ended
        self.retried_files += 1
        log.info("CDR file %s: its content failed before (as %s: %s); read again after line "
                 "%d", entry.name, state.name, state.error, state.lines_done)  # fmt: skip
        return retried

    async def _read(self, path: Path, state: FileState) -> FileStatus:
        progress = _Progress.of(state)
        items = read_records(path, self.mapping, start_line=state.lines_done, now=self.clock())
        pending: asyncio.Future[_Batch] | None = asyncio.ensure_future(
            asyncio.to_thread(_take, items, self.batch_size, state.lines_done, path.name)
        )
        try:
            while pending is not None:
                batch = await pending
                pending = None
                if not batch.ended:  # read the next batch while the sink takes this one
                    pending = asyncio.ensure_future(
                        asyncio.to_thread(_take, items, self.batch_size, batch.last_line, path.name)
                    )
                await self._hand_over(path.name, batch, progress)
                if batch.error is not None:
                    return await self._failed(path.name, batch.error, progress)
        finally:
            if pending is None or pending.done():
                items.close()
            else:  # the worker still has the file: it closes when the thread lets go of it
                pending.add_done_callback(lambda f: f.cancelled() or f.exception())
        await self.ledger.finish(state.id, FileStatus.DONE)
        self.files += 1
        await self._warn_bad_rows(path.name, progress)
        log.info("CDR file %s read: %d records (%d already known), %d bad rows", path.name,
                 progress.records, progress.duplicates, progress.bad_rows)  # fmt: skip
        return FileStatus.DONE

    async def _hand_over(self, name: str, batch: _Batch, progress: _Progress) -> None:
        """The batch to the sink, then its checkpoint (at-least-once: see the module doc)."""
        if batch.records:
            new = await self.sink.accept(batch.records, name)
            known = len(batch.records) - max(0, min(new, len(batch.records)))
            progress.records += len(batch.records)
            progress.duplicates += known
            self.records += len(batch.records)
            self.duplicates += known
        keep: list[tuple[int, str]] = []
        if batch.bad:
            if progress.first_bad is None:
                progress.first_bad = batch.bad[0][1]
            room = max(0, MAX_BAD_ROWS - progress.bad_rows)
            keep = [(line, str(e)) for line, e in batch.bad[:room]]
            progress.bad_rows += len(batch.bad)
            self.bad_rows += len(batch.bad)
        progress.lines_done = batch.last_line
        await self.ledger.checkpoint(
            progress.state.id,
            lines_done=progress.lines_done,
            records=progress.records,
            bad_rows=progress.bad_rows,
            duplicates=progress.duplicates,
            bad=keep,
        )

    async def _failed(self, name: str, error: CdrFileError, progress: _Progress) -> FileStatus:
        await self.ledger.finish(progress.state.id, FileStatus.FAILED, str(error))
        self.files += 1
        self.failed_files += 1
        await self._warn_bad_rows(name, progress)
        log.error("CDR file %s failed: %s (%d records before it kept)", name, error.reason,
                  progress.records)  # fmt: skip
        return FileStatus.FAILED

    async def _warn_bad_rows(self, name: str, progress: _Progress) -> None:
        if not progress.bad_rows:
            return
        if progress.first_bad is not None:
            first = str(progress.first_bad)
        else:  # all before a restart: the ledger kept the first
            kept = await self.ledger.bad_rows(progress.state.id, limit=1)
            first = kept[0][1] if kept else "not kept"
        at = f"; the first: {first}"
        log.warning("CDR file %s: %d bad rows, the first %d kept in cdr_bad_rows%s", name,
                    progress.bad_rows, min(progress.bad_rows, MAX_BAD_ROWS), at)  # fmt: skip

    def _dispose(self, path: Path, entry: _Entry, status: FileStatus) -> None:
        """keep (remembered, not read again), move to done/ or failed/, or delete. A failed
        file is never deleted (its records may be read once the cause is fixed): with
        "delete" it goes to failed/ too."""
        failed = status is FileStatus.FAILED
        action = "move" if failed and self.after == "delete" else self.after
        try:
            if action == "delete":
                path.unlink(missing_ok=True)
                return
            if action == "move":
                target_dir = self.folder / (FAILED_DIR if failed else DONE_DIR)
                target_dir.mkdir(exist_ok=True)
                path.rename(_free_name(target_dir, path.name))
                return
        except OSError as e:
            log.error("CDR file %s: cannot %s it: %s", path.name, action, e.strerror or e)
        self._handled[entry.name] = entry.stamp


def _free_name(folder: Path, name: str) -> Path:
    """folder/name, or folder/name.1, .2 ... when taken (a file of that name read before)."""
    target = folder / name
    n = 0
    while target.exists():
        n += 1
        target = folder / f"{name}.{n}"
    return target


__all__ = ["DONE_DIR", "FAILED_DIR", "After", "CdrSink", "Inbox"]
