"""Shared detector state between gateway nodes, on the SMS path (docs/operations.md "Several
nodes").

Messages decoded in the same turn of the event loop form a batch (at most `batch_max`; up to
`max_in_flight` batches wait for Redis at once, decided in the order they were taken). For
each batch, before inspection: the campaign detector joins each message's cluster (`share`),
then ONE round trip to the shared store counts the batch on the windows of every node and
brings back the labels other nodes gave; the counts go to the velocity and campaign detectors
(their `shared` maps, by message id) and inspection runs as usual, synchronously.

The store down, slow (`timeout`) or answering oddly: the batch is judged on this node's own
windows (kept up to date all along), `on_health(False, why)` is called once, and the store is
tried again after `retry_after` seconds; labels given meanwhile are sent when it is back.
Nothing waits on it longer than `timeout`, nothing is lost.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gateway.detect.campaigns import SharedCounts, SharedMessage
from gateway.detect.velocity import Counts, SharedKeys
from gateway.domain import SmsEvent
from gateway.pipeline.inspector import Inspector
from gateway.pipeline.shared_parts import SharedParts

log = logging.getLogger("fraudgate.shared")

MAX_LABELS_HELD = 10_000  # labels kept for the store while it is unreachable (oldest dropped)


@dataclass
class Batch:
    """One batch's requests; `labels_out` are (text, kind, when) given on this node."""

    now: float
    velocity: list[SharedKeys | None] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    campaigns: list[SharedMessage | None] = field(default_factory=list)
    labels_out: list[tuple[str, str, float]] = field(default_factory=list)
    # (cluster id, label, anchor band keys): labelled events to announce once among the nodes
    label_claims: list[tuple[str, str, tuple[int, ...]]] = field(default_factory=list)


@dataclass
class Reply:
    velocity: list[Counts | None]
    campaigns: list[SharedCounts | None]
    labels_in: list[tuple[str, str, float]]
    claims_won: list[bool] = field(default_factory=list)


@dataclass
class _Outcome:
    """A batch's round trip: its reply, or the error (batch None: not sent, Redis known down)."""

    items: list[tuple[SmsEvent, Callable[[], None]]]
    batch: Batch | None
    reply: Reply | None
    error: BaseException | None


class SharedStore(Protocol):
    """The shared windows (gateway.shared.redis_state); raises SharedStateError-like
    exceptions (any Exception) when it cannot answer."""

    async def exchange(self, batch: Batch) -> Reply: ...


class SharedBatcher:
    def __init__(
        self,
        store: SharedStore,
        inspector: Inspector,
        *,
        timeout: float = 0.05,
        retry_after: float = 5.0,
        batch_max: int = 256,
        max_in_flight: int = 4,
        clock: Callable[[], float] = time.time,
        on_health: Callable[[bool, str], None] | None = None,
    ) -> None:
        self.store = store
        self.inspector = inspector
        self.timeout = timeout
        self.retry_after = retry_after
        self.batch_max = batch_max
        self.max_in_flight = max_in_flight
        # where the parts of concatenated messages meet (tap mode; set by the wiring)
        self.parts: SharedParts | None = None
        self.clock = clock
        self.on_health = on_health
        self.up = True
        self.batches = 0  # round trips that answered
        self.messages = 0  # messages counted on the shared windows
        self.local = 0  # messages judged on this node's windows alone (store unreachable)
        self._queue: list[tuple[SmsEvent, Callable[[], None]]] = []
        self._running = False
        self._retry_at = 0.0
        self._labels: list[tuple[str, str, float]] = []
        self._mine: set[tuple[str, str, float]] = set()
        campaigns = inspector.campaigns
        if campaigns is not None:
            campaigns.on_label = self._label
            campaigns.claim_labels = True

    def submit(self, event: SmsEvent, then: Callable[[], None]) -> None:
        """`then()` runs once `event`'s shared counts are in (or it is judged locally)."""
        self._queue.append((event, then))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain(), name="shared state")

    def _label(self, text: str, kind: str, now: float) -> None:
        entry = (text, kind, now)
        self._labels.append(entry)
        self._mine.add(entry)
        if len(self._labels) > MAX_LABELS_HELD:
            self._mine.discard(self._labels.pop(0))

    async def _drain(self) -> None:
        """Batches go out as they fill, up to `max_in_flight` round trips at once (Redis's
        answer time is not spent idle); they are decided in the order they were taken."""
        in_flight: deque[asyncio.Task[_Outcome]] = deque()
        try:
            await asyncio.sleep(0)  # the rest of this turn's messages join the batch
            while self._queue or in_flight:
                while self._queue and len(in_flight) < self.max_in_flight:
                    items = self._queue[: self.batch_max]
                    self._queue = self._queue[self.batch_max :]
                    in_flight.append(asyncio.create_task(self._send(items)))
                self._decide(await in_flight.popleft())
        finally:
            self._running = False
            for task in in_flight:  # cancelled with the daemon: nothing more to decide
                task.cancel()

    async def _send(self, items: list[tuple[SmsEvent, Callable[[], None]]]) -> _Outcome:
        if not self.up and asyncio.get_running_loop().time() < self._retry_at:
            return _Outcome(items, None, None, None)
        batch = self._batch([event for event, _ in items])
        call = asyncio.ensure_future(self.store.exchange(batch))
        done, _ = await asyncio.wait({call}, timeout=self.timeout)
        if not done:  # judged here; Redis may still count it, and its answer is heard then
            call.add_done_callback(functools.partial(self._late, batch))
            return _Outcome(items, batch, None, TimeoutError(f"no answer in {self.timeout:g} s"))
        if call.exception() is not None:  # down or odd: judged here
            return _Outcome(items, batch, None, call.exception())
        return _Outcome(items, batch, call.result(), None)

    def _late(self, batch: Batch, call: asyncio.Future[Reply]) -> None:
        """A batch's answer after the batch was judged here: Redis counted it, and what it
        gave this node alone (a fan-out crossing, a campaign to announce, labels from the
        others) is taken now, or nobody would (the next message carries the alerts)."""
        if call.cancelled() or call.exception() is not None:
            return
        reply = call.result()
        velocity, campaigns = self.inspector.velocity, self.inspector.campaigns
        if velocity is not None:
            for keys, counts in zip(batch.velocity, reply.velocity, strict=True):
                if keys is not None and counts is not None and counts.crossed:
                    velocity.shared_crossing(keys.sender, batch.now, counts)
        if campaigns is not None:
            for msg, members in zip(batch.campaigns, reply.campaigns, strict=True):
                if msg is not None and members is not None and members.announce:
                    campaigns.announce_late(msg.cluster)
            self._replay(reply.labels_in)

    def _decide(self, outcome: _Outcome) -> None:
        try:
            self._take_outcome(outcome)
        except Exception:  # a bug here must not leave the batch unanswered
            log.exception("shared state of a batch not applied; judged on this node's windows")
        finally:
            self._run(outcome.items)

    def _take_outcome(self, outcome: _Outcome) -> None:
        items, batch, reply = outcome.items, outcome.batch, outcome.reply
        if batch is None or reply is None:
            if batch is not None and outcome.error is not None:
                self._down(outcome.error)
                self._labels[:0] = batch.labels_out  # sent when Redis is back
                if self.inspector.campaigns is not None:  # announced here: others may too
                    claims = batch.label_claims
                    self.inspector.campaigns.claimed(claims, [True] * len(claims))
            self.local += len(items)
        else:
            self._apply(items, batch, reply)

    def _batch(self, events: list[SmsEvent]) -> Batch:
        insp = self.inspector
        velocity, campaigns = insp.velocity, insp.campaigns
        batch = Batch(now=self.clock(), labels_out=self._labels)
        self._labels = []
        if campaigns is not None:
            batch.label_claims = campaigns.take_label_claims()
        for event in events:
            complaint = event.dest.lstrip("+") in insp.complaint_numbers
            keys = None if complaint or velocity is None else velocity.keys(event)
            batch.velocity.append(keys)
            batch.recipients.append(event.dest)
            batch.campaigns.append(
                None if complaint or campaigns is None else campaigns.share(event, batch.now)
            )
        return batch

    def _apply(
        self, items: list[tuple[SmsEvent, Callable[[], None]]], batch: Batch, reply: Reply
    ) -> None:
        if not self.up:
            self.up = True
            log.info("shared state reachable again: nodes count together")
            if self.on_health is not None:
                self.on_health(True, "")
        self.batches += 1
        self.messages += len(items)
        insp = self.inspector
        for (event, _), counts, shared in zip(items, reply.velocity, reply.campaigns, strict=True):
            if counts is not None and insp.velocity is not None:
                insp.velocity.shared[event.id] = counts
            if shared is not None and insp.campaigns is not None:
                insp.campaigns.shared[event.id] = shared
        campaigns = insp.campaigns
        if campaigns is not None and reply.claims_won:
            campaigns.claimed(batch.label_claims, reply.claims_won)
        self._replay(reply.labels_in)

    def _replay(self, labels: list[tuple[str, str, float]]) -> None:
        """Labels the other nodes gave; one that cannot be applied (a kind this version does
        not know: a rolling upgrade) is logged and skipped."""
        campaigns = self.inspector.campaigns
        for entry in labels:
            if entry in self._mine:
                self._mine.discard(entry)
            elif campaigns is not None:
                try:
                    campaigns.replay_label(*entry)
                except Exception as exc:
                    log.warning("label from another node not applied: %s", exc)

    def _down(self, exc: BaseException) -> None:
        self._retry_at = asyncio.get_running_loop().time() + self.retry_after
        why = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
        if self.up:
            self.up = False
            log.warning("shared state unreachable, judging on this node's windows: %s", why)
            if self.on_health is not None:
                self.on_health(False, why)

    @staticmethod
    def _run(items: list[tuple[SmsEvent, Callable[[], None]]]) -> None:
        for _, then in items:
            try:
                then()
            except Exception:  # one message's failure must not hold the others
                log.exception("processing a message after the shared-state round trip failed")
