"""A token bucket: `rate` operations per second, bursts of up to `rate`. Used by every server
side that limits an account's submits (the simulated SMSC, the A2P proxy)."""

from __future__ import annotations

import time


class TokenBucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate  # 0 or less: no limit
        self.capacity = max(rate, 1.0)  # a rate below 1/s still admits one at a time
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        """One operation now: True when within the rate."""
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
