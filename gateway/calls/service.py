"""The call records' sink: de-duplicate, analyse, record what was found, announce it.

The inbox and the stream hand over batches of records (`accept`); a batch is analysed in one
worker thread (the analyzer's state has one owner, and a batch of 5,000 records would otherwise
hold the event loop that answers the SMSC for ~50 ms), then its findings and their alerts are
committed before `accept` returns, so the inbox's checkpoint after it never covers a finding
that was not written. A probe test naming a SIM (`confirm`) goes through the same thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from gateway.calls.analyzer import CallAnalyzer, CallFinding
from gateway.calls.cdr import Cdr
from gateway.calls.dedup import RecentRecords
from gateway.calls.payload import call_alert
from gateway.calls.settings import CallsSettings
from gateway.domain import Alert

log = logging.getLogger("fraudgate.calls")

EXPIRE_EVERY = 50_000  # records between two sweeps of idle state


class FindingSink(Protocol):
    async def record(
        self, findings: Sequence[CallFinding], alert_of: Callable[[CallFinding], Alert], now: float
    ) -> list[CallFinding]: ...


class CallService:
    def __init__(
        self,
        settings: CallsSettings,
        findings: FindingSink,
        *,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        on_finding: Callable[[CallFinding], None] | None = None,
    ) -> None:
        self.settings = settings
        self.analyzer = CallAnalyzer(settings.analyzer)
        self.recent = RecentRecords(settings.dedup_window)
        self.findings = findings
        self.wake = wake
        self.clock = clock
        self.on_finding = on_finding
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="fraudgate-calls")
        self._since_expiry = 0
        # findings made but not yet written (the store failed): written before the next ones.
        # The analyzer has moved on (a SIM found is not found twice), so these must not be lost.
        self._unwritten: list[CallFinding] = []
        self._writing = asyncio.Lock()  # the inbox and stream connections write in turn
        self.records = 0
        self.duplicates = 0
        self.found: dict[str, int] = {}

    async def accept(self, batch: Sequence[Cdr], source: str) -> int:
        """Analyse a batch and record its findings. Returns how many records were new (not
        re-deliveries). A store error propagates: the caller keeps its checkpoint and offers
        the batch again (its records then count as duplicates, its findings are written)."""
        loop = asyncio.get_running_loop()
        new, found = await loop.run_in_executor(self._thread, self._analyse, batch)
        self.records += new
        self.duplicates += len(batch) - new
        await self._record(found, source)
        return new

    async def confirm(self, msisdn: str, at: float) -> list[CallFinding]:
        """A probe test named `msisdn` a SIM-box SIM: its IMEI and cell siblings become
        suspects (recorded and announced like any finding)."""
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(self._thread, self.analyzer.confirm, msisdn, at)
        return await self._record(found, f"probe finding on {msisdn}")

    async def _record(self, found: Sequence[CallFinding], source: str) -> list[CallFinding]:
        """Write `found` after any findings an earlier failure left unwritten; on a store error
        they all wait for the next call (the error propagates: the caller retries its batch)."""
        async with self._writing:
            pending = self._unwritten + list(found)
            if not pending:
                return []
            try:
                fresh = await self.findings.record(pending, self._alert, self.clock())
            except BaseException:
                self._unwritten = pending
                raise
            self._unwritten = []
        self._announce(fresh, source)
        return fresh

    @property
    def unwritten(self) -> int:
        return len(self._unwritten)

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)

    def _analyse(self, batch: Sequence[Cdr]) -> tuple[int, list[CallFinding]]:
        fresh = self.recent.fresh
        records = [r for r in batch if fresh(r)]
        found = self.analyzer.feed(records)
        self._since_expiry += len(records)
        if self._since_expiry >= EXPIRE_EVERY:
            self._since_expiry = 0
            self.analyzer.expire()
        return len(records), found

    def _alert(self, f: CallFinding) -> Alert:
        return call_alert(f, self.clock())

    def _announce(self, fresh: Sequence[CallFinding], source: str) -> None:
        for f in fresh:
            self.found[f.kind.value] = self.found.get(f.kind.value, 0) + 1
            log.warning(
                "call finding %s %s (score %.2f) from %s: %s", f.kind.value,
                f.subject if f.names_subscriber or f.kind.value == "wangiri" else "(masked)",
                f.score, source, "; ".join(r.description for r in f.reasons),
            )  # fmt: skip
            if self.on_finding is not None:
                self.on_finding(f)
        if fresh:
            self.wake()
