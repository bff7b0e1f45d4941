"""Velocity and fan-out: how fast a sender, an SMSC bind or a destination is sending.

A SIM farm or a smishing campaign shows as one sender reaching many distinct recipients in a
short time; a flood as many messages to one destination. Each key (sender, bind, destination)
keeps a sliding window approximated by two fixed windows (current and previous, the previous
weighted by how much of it still overlaps the sliding window — the technique of rate limiters
such as nginx's and Cloudflare's), so a key costs a few numbers whatever its traffic.

Distinct recipients per sender are counted exactly up to the threshold (a small set of 32-bit
hashes; nothing beyond the threshold is stored: past it the sender is already caught).

Memory is bounded whatever the number of senders: at most `max_keys` keys per dimension; idle
keys (two windows old) are swept incrementally, and at the cap the least recently seen key goes.
`fraudgate bench pipeline` reports the memory used for 1 million senders.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.domain import Reason, Route, SmsEvent


@dataclass(frozen=True, slots=True)
class VelocityLimits:
    window: float = 60.0  # seconds
    sender_messages: int = 60  # messages per window from one sender
    sender_recipients: int = 30  # distinct recipients per window from one sender (fan-out)
    dest_messages: int = 20  # messages per window to one destination (flood)
    smsc_messages: int = 0  # messages per window on one bind; 0 = not checked
    max_keys: int = 1_000_000  # per dimension
    exempt_senders: frozenset[str] = frozenset()  # e.g. the operator's own A2P sender ids


@dataclass(frozen=True, slots=True)
class SharedKeys:
    """What one message counts against; "" for a dimension it is not counted in."""

    sender: str
    dest: str
    smsc: str


@dataclass(slots=True)
class Counts:
    """A message's figures in its sliding windows, including the message itself."""

    sender_count: float = 0.0  # messages from its sender
    distinct: float = 0.0  # distinct recipients of its sender
    dest_count: float = 0.0  # messages to its destination
    smsc_count: float = 0.0  # messages on its bind
    crossed: bool = False  # this message took its sender over the fan-out threshold (once)


class _Win:
    """Two fixed windows of one key. `rcpt` is the current window's distinct recipients: one
    hash as an int, a set of hashes once there are several (most senders never need the set);
    `prev_rcpt` is the previous window's distinct count."""

    __slots__ = ("alerted", "cur", "prev", "prev_rcpt", "rcpt", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.cur = 0
        self.prev = 0
        self.rcpt: int | set[int] | None = None
        self.prev_rcpt = 0
        self.alerted = False

    def roll(self, now: float, window: float) -> None:
        if now - self.start < window:
            return
        if now - self.start < 2 * window:
            self.prev, self.prev_rcpt = self.cur, self.distinct()
            self.start += window
        else:  # idle two windows: as a key seen for the first time (swept or not, expired in
            self.prev, self.prev_rcpt = 0, 0  # the shared store or not: the same figures)
            self.start = now
        self.cur = 0
        self.rcpt = None
        self.alerted = False

    def weight(self, now: float, window: float) -> float:
        # within [0, 1]: a clock stepped back (or another node's, behind) must not inflate it
        return min(1.0, max(0.0, 1.0 - (now - self.start) / window))

    def count(self, now: float, window: float) -> float:
        return self.cur + self.prev * self.weight(now, window)

    def distinct(self) -> int:
        r = self.rcpt
        return 0 if r is None else 1 if isinstance(r, int) else len(r)

    def add_recipient(self, h: int, cap: int) -> None:
        r = self.rcpt
        if r is None:
            self.rcpt = h
        elif isinstance(r, int):
            if r != h:
                self.rcpt = {r, h}
        elif len(r) <= cap:  # past the threshold nothing more needs storing
            r.add(h)

    def recipients(self, now: float, window: float) -> float:
        return self.distinct() + self.prev_rcpt * self.weight(now, window)


class _Table:
    """Keys of one dimension, least recently seen first (a touched key is moved to the end).

    An OrderedDict, not a dict: a dict whose front keys are popped keeps their slots as holes
    until it resizes, and `next(iter(d))` walks them, so under sustained traffic from many
    senders each look at the oldest key cost O(keys): 750 us per SMS at 2,000 SMS/s after
    five minutes (240k senders tracked), against ~2 us here."""

    def __init__(self, window: float, max_keys: int) -> None:
        self.window = window
        self.max_keys = max_keys
        # Keyed by hash(address): a 64-bit int costs less than the string and a collision
        # between two live senders of one window is negligible.
        self.keys: OrderedDict[int, _Win] = OrderedDict()

    def touch(self, address: str, now: float) -> _Win:
        key = hash(address)
        keys = self.keys
        win = keys.get(key)
        if win is None:
            win = _Win(now)
            if len(keys) >= self.max_keys:
                keys.popitem(last=False)  # least recently seen
            keys[key] = win
        else:
            win.roll(now, self.window)
            keys.move_to_end(key)
        self._sweep(now)
        return win

    def _sweep(self, now: float, budget: int = 2) -> None:
        """Drop up to `budget` keys idle for two windows, oldest first (O(1) each)."""
        keys = self.keys
        for _ in range(budget):
            if not keys:
                return
            oldest = next(iter(keys.values()))
            if now - oldest.start < 2 * self.window:
                return
            keys.popitem(last=False)

    def __len__(self) -> int:
        return len(self.keys)


class VelocityDetector:
    name = "velocity"

    def __init__(
        self,
        limits: VelocityLimits | None = None,
        registered: Callable[[SmsEvent], bool] | None = None,
    ) -> None:
        self.limits = limits or VelocityLimits()
        # A registered A2P sender on its contracted bind (senders.toml) is judged by its own
        # contracted profile (the sender detector), never by the per-sender P2P limits: a bank
        # reaches thousands of customers a minute, which is fan-out only for a phone number.
        self.registered = registered
        lim = self.limits
        self.senders = _Table(lim.window, lim.max_keys)
        self.dests = _Table(lim.window, lim.max_keys)
        self.smscs = _Table(lim.window, 10_000)
        self._fanout_crossings: list[tuple[str, float, int]] = []
        # counts of all nodes for the messages about to be inspected, by message id, filled by
        # gateway.shared before `inspect` (empty without shared state: local windows judge)
        self.shared: dict[str, Counts] = {}
        self._sent_shared: dict[str, float] = {}

    def keys(self, sms: SmsEvent) -> SharedKeys:
        """The sender, destination and bind this message counts against ("" for a dimension
        it is not counted in): what nodes sharing their windows (gateway.shared) send."""
        lim = self.limits
        registered = sms.route is Route.A2P and self.registered is not None and self.registered(sms)
        sender = sms.source if sms.source and sms.source not in lim.exempt_senders else ""
        return SharedKeys(
            "" if registered else sender,
            sms.dest,
            sms.smsc if lim.smsc_messages else "",
        )

    def inspect(self, sms: SmsEvent, now: float) -> Sequence[Reason]:
        keys = self.keys(sms)
        local = self._count_locally(sms, keys, now)
        shared = self.shared.pop(sms.id, None) if self.shared else None
        if shared is not None:  # every node's messages counted: the figures to judge by
            if shared.crossed:  # first crossing of the window among all nodes: one alert
                self.shared_crossing(keys.sender, now, shared)
            return self._reasons(shared, sms.smsc)
        if local.crossed:
            self._fanout_crossings.append((keys.sender, now, int(local.distinct)))
        return self._reasons(local, sms.smsc)

    def _count_locally(self, sms: SmsEvent, keys: SharedKeys, now: float) -> Counts:
        """This node's windows, updated whether or not shared counts come (they are what the
        node judges by while the shared store is unreachable)."""
        lim = self.limits
        w = lim.window
        out = Counts()
        if keys.sender:
            win = self.senders.touch(keys.sender, now)
            win.cur += 1
            win.add_recipient(hash(sms.dest), lim.sender_recipients)
            out.distinct = win.recipients(now, w)
            out.sender_count = win.count(now, w)
            if out.distinct > lim.sender_recipients and not win.alerted:
                win.alerted = out.crossed = True
        if keys.dest:
            dwin = self.dests.touch(keys.dest, now)
            dwin.cur += 1
            out.dest_count = dwin.count(now, w)
        if keys.smsc:
            swin = self.smscs.touch(keys.smsc, now)
            swin.cur += 1
            out.smsc_count = swin.count(now, w)
        return out

    def _reasons(self, counts: Counts, bind: str) -> list[Reason]:
        lim = self.limits
        w = lim.window
        reasons: list[Reason] = []
        if counts.distinct > lim.sender_recipients:
            reasons.append(self._fanout(counts.distinct))
        elif counts.sender_count > lim.sender_messages:
            reasons.append(
                Reason(
                    "velocity",
                    "velocity.sender.rate",
                    0.5,
                    f"sender over {lim.sender_messages} messages in {w:g}s",
                )
            )
        if counts.dest_count > lim.dest_messages:
            reasons.append(
                Reason(
                    "velocity",
                    "velocity.dest.flood",
                    0.4,
                    f"destination received over {lim.dest_messages} messages in {w:g}s",
                )
            )
        if lim.smsc_messages and counts.smsc_count > lim.smsc_messages:
            reasons.append(
                Reason(
                    "velocity",
                    "velocity.smsc.rate",
                    0.3,
                    f"bind {bind} over {lim.smsc_messages} messages in {w:g}s",
                )
            )
        return reasons

    def _fanout(self, distinct: float) -> Reason:
        lim = self.limits
        # The more the threshold is exceeded, the surer: 1x -> 0.6, 2x and more -> 0.85.
        ratio = min(distinct / lim.sender_recipients, 2.0)
        score = round(0.6 + 0.25 * (ratio - 1.0), 3)
        return Reason(
            "velocity",
            "velocity.sender.fanout",
            score,
            f"sender reached over {lim.sender_recipients} distinct recipients in {lim.window:g}s",
        )

    def take_fanout_crossings(self) -> list[tuple[str, float, int]]:
        """Senders that crossed the fan-out threshold since the last call (once per window):
        (sender, when, distinct recipients). The pipeline turns them into FANOUT alerts."""
        out, self._fanout_crossings = self._fanout_crossings, []
        return out

    def shared_crossing(self, sender: str, when: float, counts: Counts) -> None:
        """The shared store says this node's message took `sender` over the fan-out threshold
        first among the nodes: the alert is this node's to raise (with this message, or with
        the next one when the store's answer came after the message was judged here)."""
        self._fanout_crossings.append((sender, when, int(counts.distinct)))
        self._sent_shared[sender] = counts.sender_count

    def sent(self, sender: str, now: float) -> int:
        """Messages from `sender` in the sliding window ending at `now` (0 when untracked); with
        shared windows, the count of all nodes at its crossing."""
        shared = self._sent_shared.pop(sender, None)
        if shared is not None:
            return max(1, round(shared))
        win = self.senders.keys.get(hash(sender))
        return 0 if win is None else max(1, round(win.count(now, self.limits.window)))

    @property
    def tracked(self) -> dict[str, int]:
        return {"senders": len(self.senders), "dests": len(self.dests), "smscs": len(self.smscs)}
