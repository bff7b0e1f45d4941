"""The CDR inbox's ledger on the gateway's Store (tables cdr_files, cdr_bad_rows).

A file is known by its content's SHA-256: the same records dropped twice, or under another
name, are read once. While it is read, `lines_done` is the checkpoint (the last line whose
records the sink accepted): a restart resumes after it. A file that failed (a mapping that
did not fit, a truncated gzip) keeps its checkpoint: dropped again, it is read on from there
(`retry`). Bad rows are counted; the first MAX_BAD_ROWS of a file are kept with their line and
error, for the operator to look at.

Database errors are raised as StoreError / StoreUnavailable (store.guard).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gateway.ids import new_id
from gateway.store import Store
from gateway.store.models_calls import cdr_bad_rows, cdr_files

MAX_BAD_ROWS = 100  # kept per file; the rest are counted only
MAX_ERROR = 500  # characters of an error kept


class FileStatus(StrEnum):
    READING = "reading"  # begun; lines_done is where a restart resumes
    DONE = "done"  # read to its end
    FAILED = "failed"  # stopped early (truncated, not text, no required columns): error says why


@dataclass(frozen=True, slots=True)
class FileState:
    id: str
    sha256: str
    name: str  # as it was dropped (the last time, for a failed file dropped again)
    size: int
    status: FileStatus
    lines_done: int
    records: int  # good rows handed to the sink
    bad_rows: int
    duplicates: int  # of `records`, those the sink already had
    error: str | None
    node: str
    started_at: float
    finished_at: float | None
    new: bool = False  # this begin() created it


def _state(r: Any, *, new: bool = False) -> FileState:
    return FileState(
        id=str(r.id), sha256=str(r.sha256), name=str(r.name), size=int(r.size),
        status=FileStatus(r.status), lines_done=int(r.lines_done), records=int(r.records),
        bad_rows=int(r.bad_rows), duplicates=int(r.duplicates), error=r.error, node=str(r.node),
        started_at=float(r.started_at),
        finished_at=None if r.finished_at is None else float(r.finished_at), new=new,
    )  # fmt: skip


class Ledger:
    """cdr_files / cdr_bad_rows on `store` (SQLite or PostgreSQL)."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._insert: Any = postgresql.insert if store.dialect == "postgresql" else sqlite.insert

    async def begin(self, sha256: str, name: str, size: int, node: str) -> FileState:
        """The file with this content: a new row in state reading (`new`), or the row already
        there (done or failed: skip it; reading: resume after its lines_done). Two nodes
        beginning the same content get one row: the loser sees the winner's."""
        file_id = new_id()
        insert = (
            self._insert(cdr_files)
            .values(
                id=file_id,
                sha256=sha256,
                name=name,
                size=size,
                status=FileStatus.READING.value,
                lines_done=0,
                records=0,
                bad_rows=0,
                duplicates=0,
                error=None,
                node=node,
                started_at=self.clock(),
                finished_at=None,
            )
            .on_conflict_do_nothing(index_elements=["sha256"])
        )
        with self.store.guard("cdr.begin"):
            async with self.store.engine.begin() as conn:
                await conn.execute(insert)
                row = (
                    await conn.execute(sa.select(cdr_files).where(cdr_files.c.sha256 == sha256))
                ).one()
        return _state(row, new=row.id == file_id)

    async def resume(self, file_id: str, node: str) -> None:
        """Take over a file left in state reading (by this node before a restart, or by a node
        that is gone): `node` becomes its reader."""
        with self.store.guard("cdr.resume"):
            async with self.store.engine.begin() as conn:
                await conn.execute(
                    cdr_files.update().where(cdr_files.c.id == file_id).values(node=node)
                )

    async def retry(self, file_id: str, name: str, node: str) -> FileState | None:
        """A failed file dropped again (as `name`): back to reading, from its checkpoint, its
        totals kept, `started_at` now (the inbox tells a file dropped again from the failed
        file left in place by it). None when it is no longer failed (another node took it)."""
        with self.store.guard("cdr.retry"):
            async with self.store.engine.begin() as conn:
                done = await conn.execute(
                    cdr_files.update()
                    .where(cdr_files.c.id == file_id)
                    .where(cdr_files.c.status == FileStatus.FAILED.value)
                    .values(
                        status=FileStatus.READING.value,
                        name=name,
                        node=node,
                        error=None,
                        started_at=self.clock(),
                        finished_at=None,
                    )
                )
                if done.rowcount != 1:
                    return None
                row = (
                    await conn.execute(sa.select(cdr_files).where(cdr_files.c.id == file_id))
                ).one()
        return _state(row)

    async def checkpoint(
        self,
        file_id: str,
        *,
        lines_done: int,
        records: int,
        bad_rows: int,
        duplicates: int,
        bad: Sequence[tuple[int, str]] = (),
    ) -> None:
        """Record progress (totals for the file, not increments: writing one twice is harmless)
        and keep `bad` rows (line, error) while the file has fewer than MAX_BAD_ROWS kept,
        in one transaction."""
        with self.store.guard("cdr.checkpoint"):
            async with self.store.engine.begin() as conn:
                await conn.execute(
                    cdr_files.update()
                    .where(cdr_files.c.id == file_id)
                    .values(
                        lines_done=lines_done,
                        records=records,
                        bad_rows=bad_rows,
                        duplicates=duplicates,
                    )
                )
                if not bad:
                    return
                kept = (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(cdr_bad_rows)
                        .where(cdr_bad_rows.c.file_id == file_id)
                    )
                ).scalar_one()
                room = MAX_BAD_ROWS - int(kept)
                if room > 0:
                    await conn.execute(
                        self._insert(cdr_bad_rows).on_conflict_do_nothing(
                            index_elements=["file_id", "line"]
                        ),
                        [
                            {"file_id": file_id, "line": line, "error": error[:MAX_ERROR]}
                            for line, error in bad[:room]
                        ],
                    )

    async def finish(self, file_id: str, status: FileStatus, error: str | None = None) -> None:
        """The file is done (read to its end) or failed (`error` says why and where)."""
        with self.store.guard("cdr.finish"):
            async with self.store.engine.begin() as conn:
                await conn.execute(
                    cdr_files.update()
                    .where(cdr_files.c.id == file_id)
                    .values(
                        status=status.value,
                        error=None if error is None else error[:MAX_ERROR],
                        finished_at=self.clock(),
                    )
                )

    async def find(self, sha256: str) -> FileState | None:
        rows = await self._read(
            sa.select(cdr_files).where(cdr_files.c.sha256 == sha256), "cdr.find"
        )
        return _state(rows[0]) if rows else None

    async def recent(self, limit: int = 50, *, status: FileStatus | None = None) -> list[FileState]:
        """The files begun last, newest first (for reports and the API)."""
        query = sa.select(cdr_files).order_by(cdr_files.c.started_at.desc()).limit(limit)
        if status is not None:
            query = query.where(cdr_files.c.status == status.value)
        return [_state(r) for r in await self._read(query, "cdr.recent")]

    async def bad_rows(self, file_id: str, limit: int = MAX_BAD_ROWS) -> list[tuple[int, str]]:
        """A file's kept bad rows, (line, error) by line."""
        query = (
            sa.select(cdr_bad_rows.c.line, cdr_bad_rows.c.error)
            .where(cdr_bad_rows.c.file_id == file_id)
            .order_by(cdr_bad_rows.c.line)
            .limit(limit)
        )
        return [(int(r[0]), str(r[1])) for r in await self._read(query, "cdr.bad_rows")]

    async def _read(self, query: sa.Select[Any], operation: str) -> list[Any]:
        with self.store.guard(operation):
            async with self.store.engine.connect() as conn:
                return list((await conn.execute(query)).all())


__all__ = ["MAX_BAD_ROWS", "FileState", "FileStatus", "Ledger"]
