"""LeaderWork (gateway/leader.py): the case workflow and its singletons run while this node
holds the workflow lease, start only after the settling delay, and stop the moment the lease
is lost (the round in progress cancelled), to start again when the lease comes back.

The lease here is a pair of events (its real behaviour on PostgreSQL: tests/test_lease.py);
the workflow records its rounds."""

from __future__ import annotations

import asyncio
from typing import Any

from harness import eventually

from gateway.leader import LeaderWork


class FakeLease:
    def __init__(self) -> None:
        self._held, self._free = asyncio.Event(), asyncio.Event()
        self._free.set()

    @property
    def held(self) -> bool:
        return self._held.is_set()

    def take(self) -> None:
        self._free.clear()
        self._held.set()

    def lose(self) -> None:
        self._held.clear()
        self._free.set()

    async def wait_held(self) -> None:
        await self._held.wait()

    async def wait_lost(self) -> None:
        await self._free.wait()


class Loop:
    def __init__(self) -> None:
        self.started = self.stopped = 0

    def start(self) -> None:
        self.started += 1

    async def stop(self) -> None:
        self.stopped += 1


class RecordingWorkflow:
    """Its round runs until cancelled (a long round: the case a lost lease must cut short)."""

    def __init__(self) -> None:
        self.rounds = 0
        self.cancelled = 0
        self.singletons: list[Any] = [Loop()]

    async def run(self) -> None:
        self.rounds += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    def stop(self) -> None:
        pass  # a round in progress does not look at it: only the cancel stops it


async def test_runs_while_held_stops_when_lost_and_runs_again() -> None:
    lease, workflow = FakeLease(), RecordingWorkflow()
    leader = LeaderWork(lease, workflow, "n0")  # type: ignore[arg-type]
    task = asyncio.create_task(leader.run())
    await asyncio.sleep(0.05)
    assert workflow.rounds == 0 and leader.since is None  # not holding: nothing runs
    lease.take()
    await eventually(lambda: workflow.rounds == 1)
    loop = workflow.singletons[0]
    assert loop.started == 1 and leader.since is not None and leader.terms == 1
    lease.lose()  # the round in progress is cancelled at once, the centre dispatcher stopped
    await eventually(lambda: workflow.cancelled == 1 and loop.stopped == 1)
    assert leader.since is None
    lease.take()
    await eventually(lambda: workflow.rounds == 2)
    assert loop.started == 2 and leader.terms == 2
    task.cancel()  # the daemon's shutdown: the term ends as a lost lease does
    await asyncio.gather(task, return_exceptions=True)
    assert workflow.cancelled == 2 and loop.stopped == 2 and leader.since is None


async def test_a_lease_lost_while_settling_starts_nothing() -> None:
    lease, workflow = FakeLease(), RecordingWorkflow()
    leader = LeaderWork(lease, workflow, "n0", settle=0.3)  # type: ignore[arg-type]
    task = asyncio.create_task(leader.run())
    lease.take()
    await asyncio.sleep(0.1)
    lease.lose()  # another node took it before this one's delay was over
    await asyncio.sleep(0.4)
    assert workflow.rounds == 0 and leader.terms == 0 and workflow.singletons[0].started == 0
    lease.take()
    await eventually(lambda: workflow.rounds == 1, timeout=2.0)  # after its own settling delay
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
