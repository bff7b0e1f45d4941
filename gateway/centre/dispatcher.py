"""The centre dispatcher: delivers the outbox's reports to the centre, exactly once in effect.

Reports are sent one at a time, oldest first (a suspension never overtakes its detection), each
with `Idempotency-Key: report_id`. The attempt is counted in the row BEFORE the request goes out;
the acknowledgement is recorded after. A crash in between leaves the report pending: it is sent
again with the same key and the centre (which de-duplicates by it, docs/centre-api.md) answers
with the first acknowledgement, so the centre holds one report per event (R2).

While the centre is unreachable (refused, timed out, 408/429/5xx, TLS failure) the reports stay
pending; the supervisor retries with capped exponential backoff and jitter and logs once when the
centre goes down and once when it is back. A report the centre refuses for good (another 4xx) or
that does not match the schema is set aside (failed_at) and logged, not retried.

Log lines name the report id, kind and case id only: the payload holds names and IINs (R7).
Run it on one node (the lease holder, docs/operations.md "Several nodes"); should two overlap
during a takeover, the claims keep each report to one of them at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from gateway.alerts.payloads import iso_utc
from gateway.loop import BackgroundLoop
from gateway.store import StoreError, StoreUnavailable
from smsc.backoff import Backoff, Failure, Outage

from .client import CentreClient
from .config import CentreConfig
from .errors import CentreError, CentreTlsError, CentreUnavailable, ReportRejected
from .outbox import CentreReports, PendingReport, ReportStore, StoreLike
from .schema import report_errors

log = logging.getLogger(__name__)


class CentreDispatcher(BackgroundLoop):
    """Supervisor loop delivering pending centre reports.

    `async with CentreDispatcher(store, config) as d:` runs it in a task (or `await d.run()`
    until `await d.stop()`). `notify()` wakes it at once (call it after the case transaction
    committed); otherwise it polls every `poll_interval` seconds."""

    task_name = "centre-dispatcher"

    def __init__(
        self,
        store: StoreLike,
        config: CentreConfig,
        *,
        reports: ReportStore | None = None,
        poll_interval: float = 5.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.reports: ReportStore = reports or CentreReports(store)
        self.config = config
        self.poll_interval = poll_interval
        self.backoff = backoff or Backoff()
        self.clock = clock
        super().__init__(stop_grace=config.timeout + 5)  # a publish/POST in flight may finish
        # the centre's and the store's outages (one backoff: either failing slows the loop),
        # each logged once when it starts and once when it ends
        self.centre = Outage(self.backoff)
        self.store_outage = Outage(self.backoff)
        # state for the logs and for callers
        self.last_error: str | None = None
        self.delivered = 0
        self.rejected = 0
        self.attempts = 0

    @property
    def centre_down(self) -> bool:
        return self.centre.down

    @property
    def store_down(self) -> bool:
        return self.store_outage.down

    # -- control --------------------------------------------------------------------------------

    def notify(self) -> None:
        """New reports are in the outbox: deliver them now."""
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver, wait for more, retry after failures. Returns after stop()."""
        while not self._stop.is_set():
            delay = self.poll_interval
            try:
                async with CentreClient(self.config) as client:
                    delay = await self._drain(client)
            except CentreUnavailable as e:
                self._centre_failed(e)
                delay = self.backoff.next_delay()
            except StoreError as e:
                self._store_failed(e)
                delay = self.backoff.next_delay()
            except CentreError as e:  # configuration: retried, an operator must fix it
                log.error("centre link unusable: %s; reports stay pending", e)
                self.last_error = str(e)
                delay = self.backoff.next_delay()
            except Exception as e:  # a bug must not end the supervisor: log it, retry
                log.exception("centre dispatcher failed; retrying")
                self.last_error = f"{type(e).__name__}: {e}"
                delay = self.backoff.next_delay()
            if not self._stop.is_set():
                await self._idle(delay)

    async def _drain(self, client: CentreClient) -> float:
        """Send every pending report; return how long to wait before looking again. One report
        per claim (ReportStore.claim): on PostgreSQL its row stays locked, so a dispatcher of
        another node skips it, until its attempt and outcome are committed."""
        while not self._stop.is_set():
            self._wake.clear()
            async with self.reports.claim(1) as batch:
                self._store_up()
                for report in batch:
                    await self._deliver(client, report)
            if not batch:
                break
        return self.poll_interval

    async def _deliver(self, client: CentreClient, report: PendingReport) -> None:
        document = {**report.payload, "sent_at": iso_utc(self.clock())}
        problems = report_errors(document)
        if problems:  # a bug upstream (or bad registry data): never sent as it is
            await self._reject(report, "schema: " + "; ".join(problems[:5]))
            return
        await self.reports.mark_attempt(report.id, self.clock())
        self.attempts += 1
        try:
            ack = await client.send(report.id, document)
        except ReportRejected as e:
            await self._reject(report, str(e))
            return
        except CentreUnavailable as e:
            await self.reports.mark_failed(report.id, str(e), permanent=False, now=self.clock())
            raise
        await self.reports.mark_acked(report.id, ack.ack_id, self.clock())
        self.delivered += 1
        self._centre_up()
        log.info(
            "centre report %s (%s, case %s) acknowledged%s",
            report.id,
            report.kind,
            report.case_id,
            " (the centre had it already)" if ack.duplicate or ack.status == 200 else "",
        )

    async def _reject(self, report: PendingReport, error: str) -> None:
        log.error(
            "centre report %s (%s, case %s) set aside, not retried: %s",
            report.id,
            report.kind,
            report.case_id,
            error,
        )
        await self.reports.mark_failed(report.id, error, permanent=True, now=self.clock())
        self.rejected += 1

    async def _idle(self, timeout: float) -> None:
        waits = [asyncio.ensure_future(e.wait()) for e in (self._wake, self._stop)]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    # -- state changes, logged once each --------------------------------------------------------

    def _centre_up(self) -> None:
        if self.centre.restored() is not None:
            log.warning("centre %s is back: delivering the outbox", self.config.url)
        self.last_error = None

    def _centre_failed(self, error: CentreUnavailable) -> None:
        how = self.centre.failed(error)
        if how is Failure.AGAIN:
            log.debug("centre still unavailable: %s", error)
        elif isinstance(error, CentreTlsError):
            log.error("%s; reports stay pending, retrying: check the TLS certificates", error)
        else:
            log.warning("centre unavailable: %s; reports stay pending until it returns", error)
        self.last_error = self.centre.last_error

    def _store_failed(self, error: StoreError) -> None:
        if self.store_outage.failed(error) is Failure.FIRST:
            kind = "unavailable" if isinstance(error, StoreUnavailable) else "failing"
            log.warning("store %s, centre outbox paused: %s", kind, error)
        self.last_error = str(error)

    def _store_up(self) -> None:
        if self.store_outage.down:
            self.store_outage.restored()
            log.warning("store is back: centre outbox resumed")


__all__ = ["CentreDispatcher"]
