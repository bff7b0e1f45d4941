"""Recording (group commit): inspected SMS are committed in batches (messages, verdicts and
their outbox alerts in one transaction); each one's future resolves when its batch is written,
so the SMSC is answered only after the record exists (DESIGN: nothing is lost)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.domain import (
    Inspected,
)

log = logging.getLogger("fraudgate.pipeline")


# --------------------------------------------------------------------------------------------
# Recording (group commit)


class RecordStore(Protocol):
    async def record(self, items: Sequence[Inspected]) -> set[str]: ...


Health = Callable[[bool, str], None]  # (database answering?, why not)


class Recorder:
    """Collects inspected SMS and commits them in batches; each SMS's future resolves once its
    batch is committed: True when it was new, False when it was recorded already (a
    redelivery, gateway.pipeline.message_ids). It fails with the store's error, or when the database
    does not answer within `commit_timeout` (a frozen database must not hold the SMSC's
    answers: they get the store error status, 0x14, and the SMSC retries)."""

    def __init__(
        self,
        store: RecordStore,
        *,
        batch_max: int = 200,
        batch_delay: float = 0.0,
        commit_timeout: float = 10.0,
        on_committed: Callable[[int], None] | None = None,
        on_health: Health | None = None,
    ) -> None:
        self.store = store
        self.batch_max = batch_max
        self.batch_delay = batch_delay
        self.commit_timeout = commit_timeout
        self.on_committed = on_committed
        self.on_health = on_health
        # (batch size, seconds the commit took) after each committed batch (gateway.metrics)
        self.on_batch: Callable[[int, float], None] | None = None
        self._queue: asyncio.Queue[tuple[Inspected, asyncio.Future[bool]]] = asyncio.Queue()
        self.committed = 0
        self.repeated = 0  # redeliveries recorded already, skipped
        self.failed = 0
        self.failing_since: float | None = None  # monotonic time of the first failure in a row
        self._failed_logged = 0.0

    def submit(self, item: Inspected) -> asyncio.Future[bool]:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, fut))
        return fut

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    @property
    def healthy(self) -> bool:
        return self.failing_since is None

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await self._fill(batch)
            await self._commit(batch)

    async def _fill(self, batch: list[tuple[Inspected, asyncio.Future[bool]]]) -> None:
        q = self._queue
        deadline = time.monotonic() + self.batch_delay
        while len(batch) < self.batch_max:
            if not q.empty():
                batch.append(q.get_nowait())
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                batch.append(await asyncio.wait_for(q.get(), left))
            except TimeoutError:
                return

    async def _commit(self, batch: list[tuple[Inspected, asyncio.Future[bool]]]) -> None:
        items = [item for item, _ in batch]
        started = time.perf_counter()
        try:
            repeated = await asyncio.wait_for(self.store.record(items), self.commit_timeout)
        except Exception as exc:  # StoreError, a timeout and anything else: answer, never hang
            if isinstance(exc, TimeoutError):
                exc = TimeoutError(f"the database did not answer within {self.commit_timeout:g} s")
            self._failed(len(batch), exc)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            await asyncio.sleep(0.2)  # a database that is down should not be hammered
            return
        if self.on_batch is not None:
            self.on_batch(len(batch), time.perf_counter() - started)
        self._recovered()
        self.committed += len(batch) - len(repeated)
        self.repeated += len(repeated)
        for item, fut in batch:
            if not fut.done():
                fut.set_result(item.sms.id not in repeated)
        if self.on_committed is not None and any(item.alerts for item, _ in batch):
            self.on_committed(len(batch))

    def _failed(self, count: int, exc: BaseException) -> None:
        """Logged when the failures start and then every 30 s while they last (a database down
        for an hour must not write a line per batch), with the count answered for retry."""
        self.failed += count
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
            if self.on_health is not None:
                self.on_health(False, str(exc))
        if now - self._failed_logged >= 30.0:
            self._failed_logged = now
            log.warning(
                "cannot record SMS (%d answered with the store error status so far, failing for "
                "%.0f s; the SMSC retries them): %s",
                self.failed,
                now - self.failing_since,
                exc,
            )

    def _recovered(self) -> None:
        if self.failing_since is None:
            return
        log.warning(
            "database answering again after %.0f s; %d SMS were answered for retry",
            time.monotonic() - self.failing_since,
            self.failed,
        )
        self.failing_since = None
        self._failed_logged = 0.0
        if self.on_health is not None:
            self.on_health(True, "")
