"""Records seen lately, so that a re-delivered record is counted once (sans-I/O).

A switch or its mediation re-sends what it is not sure arrived: a file dropped again, a stream
replayed after a reconnect. The inbox reads a file once (by its content's SHA-256); this catches
single records: their keys (`Cdr.key()`: recordingEntity:localSequenceNumber, else a digest of
the record) are remembered for `window` seconds of record time, as 64-bit fingerprints in two
generations (the older dropped when the newer is `window` old), so memory is bounded by the
records of two windows: about 70 bytes each (measured). Limits: a record re-delivered more than
a window after the newest record seen is counted again; two distinct records whose 64-bit
fingerprints collide (1 in 2**64 per pair) count as one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.calls.cdr import Cdr


class RecentRecords:
    def __init__(self, window: float = 7200.0, *, clock: Callable[[], float] = time.time) -> None:
        if window <= 0:
            raise ValueError("the de-duplication window must be positive")
        self.window = window
        self._new: set[int] = set()
        self._old: set[int] = set()
        self._since = 0.0  # the newer generation's start (record time)
        self.clock = clock
        self._limit = 0.0

    def fresh(self, r: Cdr) -> bool:
        """True the first time a record is seen within the window, False for a repeat."""
        # a record stamped in the future moves the generations at most an hour ahead of the
        # wall clock (else they would not turn again until that time came: unbounded sets)
        at = r.start
        if at > self._limit:  # the clock is read again only when a record passes the limit
            self._limit = self.clock() + 3600.0
            at = min(at, self._limit)
        if at - self._since >= self.window:
            self._old = self._new if at - self._since < 2 * self.window else set()
            self._new = set()
            self._since = at
        fp = hash(r.key())  # 64 bits; per process, as this memory is
        if fp in self._new or fp in self._old:
            return False
        self._new.add(fp)
        return True

    def __len__(self) -> int:
        return len(self._new) + len(self._old)
