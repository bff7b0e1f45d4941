"""The reconnect policy every link's supervisor shares: delays, and an outage logged once when
it starts and once when it ends."""

from __future__ import annotations

import asyncio
import random
import time

from smsc.backoff import Backoff, Failure, Outage


def test_delays_grow_to_the_cap_within_the_jitter_and_start_again_after_reset() -> None:
    b = Backoff(initial=0.5, cap=4.0, factor=2.0, jitter=0.2, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(6)]
    for delay, base in zip(delays, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0], strict=True):
        assert base * 0.8 <= delay <= base * 1.2
    b.reset()
    assert 0.4 <= b.next_delay() <= 0.6


def test_an_outage_starts_once_changes_once_and_ends_with_its_length() -> None:
    now = [100.0]
    outage = Outage(Backoff(initial=1.0, jitter=0.0), clock=lambda: now[0])
    assert not outage.down and outage.restored() is None  # never down: nothing to report
    assert outage.failed(ConnectionRefusedError("refused")) is Failure.FIRST
    assert outage.down and outage.last_error == "ConnectionRefusedError: refused"
    assert outage.failed(ConnectionRefusedError("refused")) is Failure.AGAIN
    assert outage.failed(TimeoutError("slow")) is Failure.CHANGED
    assert outage.failed(TimeoutError("slow")) is Failure.AGAIN
    assert [outage.next_delay() for _ in range(3)] == [1.0, 2.0, 4.0]
    now[0] = 112.5
    assert outage.restored() == 12.5
    assert not outage.down and outage.last_error is None
    assert outage.next_delay() == 1.0  # the backoff starts again
    assert outage.failed(OSError("gone")) is Failure.FIRST  # a new outage


async def test_a_pause_ends_at_its_delay_or_at_once_when_stopped() -> None:
    outage = Outage(Backoff(initial=0.05, jitter=0.0))
    stop = asyncio.Event()
    started = time.monotonic()
    await outage.pause(stop)
    assert 0.04 <= time.monotonic() - started < 1.0
    stop.set()
    started = time.monotonic()
    await outage.pause(stop, delay=30.0)
    assert time.monotonic() - started < 1.0
