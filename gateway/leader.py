"""The singletons of a cluster of gateway nodes: the case workflow (deadline timers, feeds,
notices) and the centre dispatcher run on the node holding the `workflow` lease
(gateway/store/lease.py), and stop there the moment the lease is lost; the SMS path, the API
and the alerts' dispatcher run on every node (docs/operations.md "Several nodes").

With SQLite (one node) the lease is held at once, so one code path serves both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from gateway.cases.workflow import Workflow

log = logging.getLogger("fraudgate.leader")

WORKFLOW_LEASE = "workflow"


class Lease(Protocol):
    @property
    def held(self) -> bool: ...

    async def wait_held(self) -> None: ...

    async def wait_lost(self) -> None: ...


class LeaderWork:
    """`run()` until cancelled: waits for the lease, runs the workflow and its singletons while
    it is held, stops them when it is lost, and waits again."""

    def __init__(self, lease: Lease, workflow: Workflow, node: str, settle: float = 0.0) -> None:
        self.lease = lease
        self.workflow = workflow
        self.node = node
        # seconds between taking the lease and starting: a holder whose session just ended
        # finds out at its next check, so for this long it may still be running its term
        self.settle = settle
        self.terms = 0  # times this node took the lease
        self.since: float | None = None  # when this node last took it (None: not holding)

    async def run(self) -> None:
        try:
            while True:
                await self.lease.wait_held()
                if self.settle:
                    await asyncio.sleep(self.settle)
                    if not self.lease.held:
                        continue
                await self._term()
        finally:
            self.since = None

    async def _term(self) -> None:
        self.terms += 1
        self.since = time.time()
        log.info("node %s runs the case workflow and the centre dispatcher", self.node)
        for loop in self.workflow.singletons:
            loop.start()
        rounds = asyncio.create_task(self.workflow.run(), name="cases")
        lost = asyncio.create_task(self.lease.wait_lost(), name="lease")
        try:
            done, _ = await asyncio.wait({rounds, lost}, return_when=asyncio.FIRST_COMPLETED)
            if rounds in done:  # a workflow that ended by itself: a bug, said loudly
                log.error("case workflow ended while holding its lease (%r); restarting it",
                          rounds.exception())  # fmt: skip
            else:
                log.warning("node %s lost the workflow lease: stopping the singletons", self.node)
        finally:
            lost.cancel()
            self.since = None
            await self._stop(rounds)

    async def _stop(self, rounds: asyncio.Task[None]) -> None:
        """At once: the round in progress is cancelled (its transaction rolls back; a switch
        call in flight carries its idempotency key), so the next holder, which starts after
        its settling delay, never runs beside it. A centre POST in flight may finish within
        the dispatcher's grace: its claim keeps the report from being sent twice."""
        self.workflow.stop()
        rounds.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rounds
        for loop in self.workflow.singletons:
            await loop.stop()
