"""What one client may ask of the API (docs/api.md "Limits"; [api] in the configuration).

`ApiLimits` bounds the transport (bodies, connections, slow clients: gateway/http/guard.py and
gateway/http/server.py) and the look-ups; `LookupLimiter` counts each user's look-ups of numbers
and cases. A look-up answers who holds a number (R7): a person at a help-line desk makes a few
per call, a script that walks the number range makes thousands, so a per-user rate stops the
script long before it has a registry worth selling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ApiConfigError


@dataclass(frozen=True, slots=True)
class ApiLimits:
    max_body: int = 64 * 1024  # bytes of a request body; a complaint is about 1 KiB
    max_connections: int = 32  # open connections (uvicorn's limit_concurrency); more: 503
    client_timeout: float = 10.0  # seconds for a request's headers, and for its body
    lookup_rate: float = 20.0  # look-ups per user and minute, once the burst is spent
    lookup_burst: int = 10  # look-ups a user may make in a row

    def __post_init__(self) -> None:
        _within("api.max_body", self.max_body, 1024, 16 * 1024 * 1024)
        _within("api.max_connections", self.max_connections, 2, 10_000)
        _within("api.client_timeout", self.client_timeout, 0.1, 300.0)
        _within("api.lookup_rate", self.lookup_rate, 0.01, 100_000.0)
        _within("api.lookup_burst", self.lookup_burst, 1, 100_000)


def _within(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ApiConfigError(f"{key}: must be {low:g}..{high:g}, got {value:g}")


class LookupLimiter:
    """A token bucket per user: `burst` look-ups at once, refilled at `per_minute`. Memory is
    one entry per user who looked something up (users come from the token table)."""

    def __init__(
        self, per_minute: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_second = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # user -> (look-ups left, when)

    def take(self, user_id: str) -> float:
        """0 when `user_id` may look up now (and counts it), else the seconds to wait."""
        now = self._clock()
        left, then = self._buckets.get(user_id, (self._burst, now))
        left = min(self._burst, left + max(0.0, now - then) * self._per_second)
        if left >= 1.0:
            self._buckets[user_id] = (left - 1.0, now)
            return 0.0
        self._buckets[user_id] = (left, now)
        return (1.0 - left) / self._per_second
