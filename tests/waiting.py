"""Waiting in async tests: poll a condition on the event loop, fail with what was awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(
    check: Callable[[], object], timeout: float = 15.0, what: str = "the condition"
) -> None:
    """Return once `check()` is true; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)
