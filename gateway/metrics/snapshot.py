"""Database-backed values for /metrics, refreshed in the background every `refresh` seconds.

A scrape never queries the database: it reads the last snapshot (and its age). A refresh that
fails (the database down or frozen: it is bounded by a timeout) keeps the previous values,
counts the failure and is tried again at the next interval; the scrape still answers.

    outbox      alerts not yet published (MQTT) and centre reports not yet acknowledged:
                how many, and when the oldest was queued
    cases       cases by state; deadlines overdue / due today / due the next working day
                (Cases.deadline_counts) and centre notices pending / needing attention
                (Notices.counts), when the case workflow runs
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from gateway.cases.model import State
from gateway.store.models import alerts
from gateway.store.models_cases import cases
from gateway.store.models_centre import centre_reports

log = logging.getLogger("fraudgate.metrics")

CASE_STATES = tuple(s.value for s in State)  # the case workflow's states


class SnapshotStore(Protocol):
    @property
    def engine(self) -> Any: ...

    def guard(self, operation: str) -> contextlib.AbstractContextManager[None]: ...


@dataclass
class Values:
    """One successful refresh. `oldest`: created_at (epoch seconds) of the oldest pending
    item per outbox, None when it is empty."""

    at: float
    pending: dict[str, int] = field(default_factory=dict)  # outbox -> count
    oldest: dict[str, float | None] = field(default_factory=dict)
    cases: dict[str, int] = field(default_factory=dict)  # state -> count
    deadlines: dict[str, int] = field(default_factory=dict)  # overdue, due_today, due_next
    notices: dict[str, int] = field(default_factory=dict)  # pending, attention


Extra = Callable[[float], Awaitable[dict[str, dict[str, int]]]]


class DbSnapshot:
    """`async with snapshot.running(every):` refreshes in a task; `values` is the latest."""

    def __init__(
        self,
        store: SnapshotStore,
        *,
        extra: Extra | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.extra = extra  # deadlines and notices (the case workflow's), when it runs
        self.clock = clock
        self.timeout = timeout
        self.values: Values | None = None
        self.failures = 0
        self.last_error = ""

    async def refresh(self) -> bool:
        """One refresh; False (previous values kept, failure counted) when it failed."""
        now = self.clock()
        try:
            values = await asyncio.wait_for(self._read(now), self.timeout)
        except Exception as exc:  # StoreError, a timeout, anything: the scrape must go on
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.debug("metrics: database values not refreshed: %s", self.last_error)
            return False
        self.values = values
        self.last_error = ""
        return True

    async def _read(self, now: float) -> Values:
        v = Values(at=now)
        a, c = alerts.c, centre_reports.c
        outboxes = {
            "mqtt": (alerts, a.created_at, (a.sent_at.is_(None), a.failed_at.is_(None))),
            "centre": (
                centre_reports,
                c.created_at,
                (c.acked_at.is_(None), c.failed_at.is_(None), c.resolved_at.is_(None)),
            ),
        }
        with self.store.guard("metrics snapshot"):
            async with self.store.engine.connect() as conn:
                for name, (table, created, where) in outboxes.items():
                    query = sa.select(sa.func.count(), sa.func.min(created)).select_from(table)
                    count, oldest = (await conn.execute(query.where(*where))).one()
                    v.pending[name] = int(count)
                    v.oldest[name] = None if oldest is None else float(oldest)
                query = sa.select(cases.c.state, sa.func.count()).group_by(cases.c.state)
                v.cases = {str(s): int(n) for s, n in await conn.execute(query)}
        if self.extra is not None:
            more = await self.extra(now)
            v.deadlines = more.get("deadlines", {})
            v.notices = more.get("notices", {})
        return v

    @contextlib.asynccontextmanager
    async def running(self, every: float) -> AsyncIterator[DbSnapshot]:
        task = asyncio.create_task(self._loop(every), name="metrics snapshot")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self, every: float) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(every)

    def oldest_age(self, outbox: str, now: float) -> float | None:
        """Seconds the oldest pending item of `outbox` has waited (None: empty or unknown)."""
        oldest = self.values.oldest.get(outbox) if self.values is not None else None
        return None if oldest is None else max(0.0, now - oldest)

    def collect(self) -> Iterable[Metric]:
        now = self.clock()
        v = self.values
        pending = GaugeMetricFamily(
            "fraudgate_outbox_pending", "Items not yet delivered, by outbox", labels=["outbox"]
        )
        age = GaugeMetricFamily(
            "fraudgate_outbox_oldest_age_seconds",
            "Seconds the oldest pending item has waited (0: outbox empty)",
            labels=["outbox"],
        )
        by_state = GaugeMetricFamily("fraudgate_cases", "Cases by state", labels=["state"])
        deadlines = GaugeMetricFamily(
            "fraudgate_case_deadlines",
            "Running cases whose legal deadline is overdue, due today or due the next working day",
            labels=["when"],
        )
        notices = GaugeMetricFamily(
            "fraudgate_centre_notices",
            "Centre reports pending or needing an analyst's attention",
            labels=["status"],
        )
        if v is not None:
            for name, count in sorted(v.pending.items()):
                pending.add_metric([name], count)
                age.add_metric([name], self.oldest_age(name, now) or 0.0)
            for state in CASE_STATES:
                by_state.add_metric([state], v.cases.get(state, 0))
            for when, n in sorted(v.deadlines.items()):
                deadlines.add_metric([when], n)
            for status, n in sorted(v.notices.items()):
                notices.add_metric([status], n)
        yield from (pending, age, by_state, deadlines, notices)
        yield GaugeMetricFamily(
            "fraudgate_db_snapshot_age_seconds",
            "Seconds since the database-backed values were last refreshed (-1: never)",
            value=now - v.at if v is not None else -1.0,
        )
        yield CounterMetricFamily(
            "fraudgate_db_snapshot_failures",
            "Refreshes of the database-backed values that failed",
            value=self.failures,
        )
