"""Reconnect policy shared by every supervisor: capped exponential backoff with jitter, and the
down / back bookkeeping of one link (`Outage`)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum


@dataclass
class Backoff:
    """Delays initial, initial*factor, ... capped at `cap`, each scaled by a random factor in
    [1 - jitter, 1 + jitter] so that many clients cut off together do not return together."""

    initial: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        base = min(self.cap, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return base * self.rng.uniform(1 - self.jitter, 1 + self.jitter)

    def reset(self) -> None:
        self.attempts = 0


class Failure(Enum):
    """How a failure relates to the outage it belongs to (what to log)."""

    FIRST = "first"  # the link was up: the outage starts (log it once, at WARNING)
    CHANGED = "changed"  # down already, but failing another way now (worth a line)
    AGAIN = "again"  # down already, the same way (DEBUG at most)


@dataclass
class Outage:
    """One link's down / back bookkeeping, shared by every supervisor (the SMPP bind, a probe
    modem, the MQTT broker, the centre, a store a dispatcher reads): whether a failure starts
    an outage or repeats it, so that each is logged once when it starts and once when it ends;
    how long it lasted; the delay before the next attempt; the last error, for status."""

    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic
    down_since: float | None = None
    last_error: str | None = None
    _kind: str = ""

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, error: BaseException) -> Failure:
        kind = type(error).__name__
        self.last_error = f"{kind}: {error}"
        if self.down_since is None:
            self.down_since, self._kind = self.clock(), kind
            return Failure.FIRST
        if kind != self._kind:
            self._kind = kind
            return Failure.CHANGED
        return Failure.AGAIN

    def restored(self) -> float | None:
        """The link works: the outage's length in seconds, None when there was none. The
        backoff starts again from its first delay."""
        since, self.down_since, self.last_error, self._kind = self.down_since, None, None, ""
        self.backoff.reset()
        return None if since is None else self.clock() - since

    def next_delay(self) -> float:
        return self.backoff.next_delay()

    async def pause(self, stop: asyncio.Event, delay: float | None = None) -> None:
        """Wait the backoff's next delay (or `delay`), or until `stop` is set."""
        wait = self.next_delay() if delay is None else delay
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
