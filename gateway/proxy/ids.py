"""Decimal message ids for aggregators whose software reads ids as numbers (Kannel with
`msg-id-type`, billing systems with a BIGINT column): at most 19 digits, below 2**63.

    milliseconds since 2024-01-01 (41 bits, until 2093) | node (6 bits) | counter (16 bits)

Unique per node as long as its clock does not go back more than the ids issued meanwhile
(the generator never goes below the last millisecond it used, and moves to the next one when
65,536 ids were issued within one); distinct nodes on one database need distinct
`[proxy] id_node` values."""

from __future__ import annotations

import time
from collections.abc import Callable

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_COUNTER_BITS = 16
_NODE_BITS = 6


class DecimalIds:
    def __init__(self, node: int = 0, clock: Callable[[], float] = time.time) -> None:
        if not 0 <= node < 1 << _NODE_BITS:
            raise ValueError(f"node {node}: 0 to {(1 << _NODE_BITS) - 1}")
        self.node = node
        self.clock = clock
        self._ms = 0
        self._counter = 0

    def next(self) -> str:
        ms = max(int(self.clock() * 1000) - EPOCH_MS, self._ms)
        if ms == self._ms:
            self._counter += 1
            if self._counter >> _COUNTER_BITS:  # this millisecond is used up: the next one
                ms, self._counter = ms + 1, 0
        else:
            self._counter = 0
        self._ms = ms
        value = (ms << (_NODE_BITS + _COUNTER_BITS)) | (self.node << _COUNTER_BITS) | self._counter
        return str(value)
