"""The live page's feed: messages per second by decision and the latest flagged / blocked SMS,
pushed once a second to the console's open live pages (Server-Sent Events).

    feed = LiveFeed(max_streams=8)
    feed.add(inspected)             # every SMS, on the hot path: a counter and a reference
    tg.create_task(feed.run())      # once a second: one tick to every subscriber
    async with feed.subscribe(masked=True, session=sid, user=uid) as sub:  # or StreamsFull
        async for event in sub: ...  # SSE-ready bytes: "history" first, then "tick"s
    feed.close()                    # the daemon's drain: every subscription ends

What it costs: `add` increments one of three integers and, for a message that is not allowed,
appends a reference to a bounded deque; nothing is formatted there. Once a second `tick` takes
the counts and the newest `per_tick` notable messages; only when someone watches does it build
the tick's two payloads (full and masked), each serialised once whatever the number of
subscribers. Each subscriber has a bounded queue: one that does not keep up is dropped (its
stream ends, the browser reconnects and starts again from the history), so a slow browser never
makes the daemon buffer without bound.

Streams are bounded, since each holds one of the API server's connections (`[api]
max_connections`): one per session (a new one from the same session, a reload or a second tab,
ends the previous one), `per_user` per user (a new one ends that user's oldest), `max_streams`
in all (a new one beyond that is refused: StreamsFull). A stream ended for a newer one gets a
last "end" event, so its page stops instead of reconnecting and ending the newer one in turn.

Masking (R7): the recipient (a victim's number) is always masked; the sender is whole in the
full payload (the suspect, as the MQTT alerts publish it) and masked in the masked one when it is
a number. The masked payload has no text at all (`text` empty, no spans: names and addresses in
a text are personal data no masking of digits catches), as the API shows such a role no
evidence text; the decision, score, rules and their descriptions, smsc and route stay. Texts are
cut at `TEXT_CAP` characters. Times come formatted (Almaty, `local`), so the page does not
depend on the browser's time-zone data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self

from gateway.alerts.payloads import mask_msisdn
from gateway.api.audit import mask_target
from gateway.domain import Decision, Inspected

from .i18n import local_time

log = logging.getLogger(__name__)

TEXT_CAP = 480  # characters of a text sent to the page
MASK = "•"
KEEPALIVE = b":\n\n"  # an SSE comment: keeps proxies and the browser from timing out
RETRY = b"retry: 5000\n\n"  # a dropped or ended stream: the browser reconnects after 5 s
RETRY_AFTER = 60  # seconds a stream refused for want of room is told to wait
_NUMBER = re.compile(r"\+?[0-9]+")

_ALLOW, _FLAG, _BLOCK = Decision.ALLOW, Decision.FLAG, Decision.BLOCK


class StreamsFull(Exception):
    """No room for another stream: `max_streams` are open and none is this session's or one of
    a user at `per_user`. `retry_after`: seconds to tell the client."""

    def __init__(self, open_streams: int, retry_after: int = RETRY_AFTER) -> None:
        super().__init__(f"live: {open_streams} streams open, no room for another")
        self.retry_after = retry_after


class LiveFeed:
    """See the module's docstring. `interval`: seconds between ticks; `clock`: epoch seconds
    (the ticks' time stamps); `per_tick`: notable messages sent per tick at most (the newest);
    `history`: ticks kept for a new subscriber's chart; `recent`: notable messages kept for a
    new subscriber's table; `queue_size`: ticks a subscriber may lag before it is dropped;
    `max_streams`: subscriptions open at once, all users together (the wiring passes a quarter of
    the API server's connections: each stream holds one); `per_user`: subscriptions of one user
    at once (each session has one at most)."""

    def __init__(
        self,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        per_tick: int = 20,
        history: int = 300,
        recent: int = 50,
        queue_size: int = 10,
        keepalive: float = 15.0,
        max_streams: int = 8,
        per_user: int = 3,
    ) -> None:
        if interval <= 0 or per_tick < 1 or history < 1 or recent < 0 or queue_size < 2:
            raise ValueError("live feed: interval > 0, per_tick >= 1, history >= 1, "
                             "recent >= 0, queue_size >= 2")  # fmt: skip
        if max_streams < 1 or per_user < 1:
            raise ValueError("live feed: max_streams >= 1, per_user >= 1")
        self.interval = interval
        self.clock = clock
        self.queue_size = queue_size
        self.keepalive = keepalive
        self.max_streams = max_streams
        self.per_user = per_user
        self._allow = 0
        self._flag = 0
        self._block = 0
        self._notable: deque[Inspected] = deque(maxlen=per_tick)
        self._history: deque[tuple[float, int, int, int]] = deque(maxlen=history)
        self._recent: deque[Inspected] = deque(maxlen=recent)
        self._subscribers: dict[Subscription, None] = {}  # oldest first
        self._closed = False

    # -- the hot path -------------------------------------------------------------------------

    def add(self, item: Inspected) -> None:
        """One inspected SMS (every one, in order): O(1), nothing formatted."""
        decision = item.verdict.decision
        if decision is _ALLOW:
            self._allow += 1
            return
        if decision is _BLOCK:
            self._block += 1
        else:
            self._flag += 1
        self._notable.append(item)

    # -- once a second ------------------------------------------------------------------------

    async def run(self) -> None:
        """Tick every `interval` seconds until closed (or cancelled). A tick that comes late
        (the loop was busy) is not made up for: the next one counts the longer period."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not self._closed:
            due = max(due + self.interval, loop.time())
            await asyncio.sleep(due - loop.time())
            if self._closed:
                return
            try:
                self.tick()
            except Exception:  # the live page never takes the gateway down
                log.exception("live: a tick failed; the next one goes on")

    def tick(self) -> None:
        """Take the counts and notable messages since the last tick; send them to whoever
        watches (built only if someone does)."""
        now = self.clock()
        counts = (self._allow, self._flag, self._block)
        self._allow = self._flag = self._block = 0
        items = list(self._notable)
        self._notable.clear()
        self._history.append((now, *counts))
        self._recent.extend(items)
        if not self._subscribers:
            return
        full, masked = _tick_events(now, counts, items)
        for sub in list(self._subscribers):
            sub.offer(masked if sub.masked else full)

    # -- subscribers --------------------------------------------------------------------------

    def subscribe(self, masked: bool, *, session: str = "", user: str = "") -> Subscription:
        """A subscription whose first event is the history (the chart's last ticks and the
        latest notable messages), then one event per tick. It ends the previous subscription of
        `session` and, with `per_user` open, the oldest of `user` (each gets an "end" event);
        StreamsFull when `max_streams` are open and none goes. Ended at once when the feed is
        closed."""
        sub = Subscription(self, masked, self.queue_size, self.keepalive, session, user)
        if self._closed:
            sub.end()
            return sub
        going = self._replaced(session, user)
        if len(self._subscribers) - len(going) >= self.max_streams:
            raise StreamsFull(len(self._subscribers))
        for old in going:
            old.end(REPLACED)
        sub.offer(self._history_event(masked))
        self._subscribers[sub] = None
        return sub

    def room(self, session: str, user: str) -> bool:
        """Whether a subscription of `session` and `user` would be taken now."""
        going = self._replaced(session, user)
        return len(self._subscribers) - len(going) < self.max_streams

    def _replaced(self, session: str, user: str) -> list[Subscription]:
        """The subscriptions a new one of `session` and `user` ends: the session's own, then
        the user's oldest until `per_user` - 1 remain."""
        going = [x for x in self._subscribers if session and x.session == session]
        mine = [x for x in self._subscribers if user and x.user == user and x not in going]
        return going + mine[: max(0, len(mine) - self.per_user + 1)]

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def close(self) -> None:
        """End every subscription (open streams end); later subscriptions end at once."""
        self._closed = True
        for sub in list(self._subscribers):
            sub.end()

    def _drop(self, sub: Subscription) -> None:
        self._subscribers.pop(sub, None)

    def _history_event(self, masked: bool) -> bytes:
        now = self.clock()
        ticks = [[round(t, 3), a, f, b] for t, a, f, b in self._history]
        items = [_item(x, now, TEXT_CAP)[1 if masked else 0] for x in self._recent]
        data = {"t": round(now, 3), "local": _hms(now), "ticks": ticks, "items": items}
        return RETRY + _event("history", data)


class Subscription:
    """One watcher's events: an async iterator of SSE-ready bytes (a keep-alive comment after
    `keepalive` seconds without an event); ends when the feed drops it, closes, or `close()`
    is called. `async with` closes it on the way out."""

    def __init__(
        self,
        feed: LiveFeed,
        masked: bool,
        size: int,
        keepalive: float,
        session: str = "",
        user: str = "",
    ) -> None:
        self.feed = feed
        self.masked = masked
        self.keepalive = keepalive
        self.session = session
        self.user = user
        self.ended = False
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(size)

    def offer(self, event: bytes) -> None:
        """Queue `event`; a full queue (the watcher does not keep up) ends the subscription at
        once, what it had queued dropped (the browser reconnects and gets the history)."""
        if self.ended:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.info("live: a watcher fell %d ticks behind; its stream ends", self._queue.qsize())
            while not self._queue.empty():  # stale: it starts again from the history
                self._queue.get_nowait()
            self.end()

    def end(self, last: bytes | None = None) -> None:
        """No more events: what is queued is still read, then the iteration stops. With `last`
        (an event saying why), what is queued is dropped and `last` is the final event."""
        if self.ended:
            return
        self.ended = True
        self.feed._drop(self)
        if last is not None:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(last)  # the queue holds two at least
        elif self._queue.full():
            self._queue.get_nowait()  # room for the end mark
        self._queue.put_nowait(None)

    def close(self) -> None:
        self.end()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        try:
            async with asyncio.timeout(self.keepalive):
                event = await self._queue.get()
        except TimeoutError:
            return KEEPALIVE
        if event is None:
            self._queue.put_nowait(None)  # the next call ends too
            raise StopAsyncIteration
        return event

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# -- payloads ------------------------------------------------------------------------------------


def _tick_events(
    now: float, counts: tuple[int, int, int], items: Iterable[Inspected]
) -> tuple[bytes, bytes]:
    """The tick's two SSE events, full and masked."""
    full: list[dict[str, Any]] = []
    masked: list[dict[str, Any]] = []
    for x in items:
        f, m = _item(x, now, TEXT_CAP)
        full.append(f)
        masked.append(m)
    c = {"allow": counts[0], "flag": counts[1], "block": counts[2]}
    t, local = round(now, 3), _hms(now)
    return (
        _event("tick", {"t": t, "local": local, "counts": c, "items": full}),
        _event("tick", {"t": t, "local": local, "counts": c, "items": masked}),
    )


def _item(x: Inspected, now: float, cap: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """One notable message as the page shows it: (full, masked). `now` stands for a missing
    time of receipt."""
    sms, verdict = x.sms, x.verdict
    text = sms.text[:cap]
    at = sms.received_at or now
    date, _, local = local_time(at, seconds=True).partition(" ")
    full: dict[str, Any] = {
        "id": sms.id,
        "at": at,
        "local": local,
        "date": date,
        "decision": verdict.decision.value,
        "score": verdict.score,
        "smsc": sms.smsc,
        "route": sms.route.value,
        "source": sms.source,
        "dest": mask_msisdn(sms.dest),
        "text": text,
        "cut": len(sms.text) > cap,
        "rules": verdict.rule_ids,
        "reasons": [
            {
                "rule_id": r.rule_id,
                "detector": r.detector,
                "description": r.description,
                "score": r.score,
            }
            for r in verdict.reasons
        ],
        "spans": _spans(x, len(text)),
        "hidden": False,
    }
    masked = dict(full)
    masked["source"] = mask_source(sms.source)
    masked.update(text="", cut=False, spans=[], hidden=True)  # no text at all (R7)
    return full, masked


def _hms(ts: float) -> str:
    """Almaty time of day, HH:MM:SS."""
    return local_time(ts, seconds=True).partition(" ")[2]


def _spans(x: Inspected, length: int) -> list[list[int]]:
    """The reasons' matched spans within the first `length` characters: sorted, overlapping
    ones merged, empty ones left out."""
    raw = sorted(
        (max(s.start, 0), min(s.end, length))
        for r in x.verdict.reasons
        for s in r.spans
        if s.start < length and s.end > s.start
    )
    merged: list[list[int]] = []
    for start, end in raw:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def mask_source(source: str) -> str:
    """A sender that is a number masked (mask_msisdn); an alphanumeric sender id as it is."""
    if _NUMBER.fullmatch(source):
        return mask_msisdn(source)
    return mask_target(source)  # a number however written (spaced, bracketed, any digits)


def mask_digits(text: str) -> str:
    """Every digit (any script) replaced by "•", character for character (the live payload
    sends a masked role no text; other pages use this for texts that are no SMS)."""
    return "".join(MASK if c.isdigit() else c for c in text)


def _event(name: str, data: dict[str, Any]) -> bytes:
    """One SSE event, encoded once for every subscriber. json.dumps escapes line breaks (the
    data is one line, as SSE wants it); a lone surrogate from a malformed UCS-2 text becomes
    "?" (one character for one: the spans still line up)."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\ndata: {body}\n\n".encode("utf-8", "replace")


REPLACED = _event("end", {"reason": "replaced"})  # a newer stream of the session or user
