"""A token bucket: `rate` operations per second, bursts of up to `rate`. Used by every server
side that limits an account's submits (the simulated SMSC, the A2P proxy)."""

from __future__ import annotations

import time


class TokenBucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate  # 0 or less: no limit
        self.tokens = rate
        self.stamp = time.monotonic()

    def take(self) -> bool:
        """One operation now: True when within the rate."""
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
