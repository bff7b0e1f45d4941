"""A supervisor loop as one async context manager: `run()` in a task, stopped with a grace.

The MQTT outbox dispatcher and the anti-fraud centre dispatcher share this lifecycle:
`async with D(...) as d:` starts `d.run()` in a task; leaving the block (or `await d.stop()`)
sets the stop event, wakes the loop, and waits `stop_grace` seconds for the work in flight
before cancelling.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self


class BackgroundLoop:
    task_name = "loop"

    def __init__(self, stop_grace: float) -> None:
        self.stop_grace = stop_grace
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._stop.clear()
            self._task = asyncio.create_task(self.run(), name=self.task_name)

    async def stop(self) -> None:
        """Let the work in flight finish (up to stop_grace seconds), then end the loop."""
        self._stop.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=self.stop_grace)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
