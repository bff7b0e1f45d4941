"""The world behind the call-record generator (simulators.cdr): numbering, places, daily rhythms,
the subscribers and fraudsters, and the event engine that turns their behaviour into `Cdr`s.

Why an event engine: 10 million records must stream in bounded memory, in time order. Every actor
(a subscriber's life, a SIM-box port, a Wangiri dialer, a spoofing call centre, a pending
call-back) waits in a time-ordered queue under its next time; the engine takes the earliest, lets
it act at that time, and files it again under its next time. So memory grows with the number of
actors, never with the number of records, and the output of all actors is merged by time. (The
queue is a calendar of one-second buckets rather than a heapq: see `Engine`.)

An actor only writes records that start at the time it fires; anything later (a victim's call
back) is a new actor put in the queue. Record ids are given at that moment, per recording
entity, so they increase in output order. Every random draw comes from one `random.Random` in
event order, so a seed fixes the output.

All figures here are documented in docs/calls-generator.md with their source or "assumption".
"""

from __future__ import annotations

import itertools
import json
import math
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from random import Random
from typing import Any, Protocol

from gateway.calls.cdr import (
    ABNORMAL_RELEASE,
    NORMAL_RELEASE,
    UNSUCCESSFUL_CALL_ATTEMPT,
    Cdr,
    RecordType,
)

# --- time -------------------------------------------------------------------------------------

DAY = 86_400.0
WEEK = 7 * DAY
# Kazakhstan keeps one time zone, UTC+5, since 1 March 2024; the rhythms below are local time.
LOCAL_OFFSET = 5 * 3600.0
# Monday 2025-03-03 00:00 local (2025-03-02T19:00:00Z): a plain working week, no public holiday.
DEFAULT_START = 1_740_942_000.0


def local_hour(t: float) -> int:
    return int(((t + LOCAL_OFFSET) % DAY) // 3600)


def local_weekday(t: float) -> int:
    """0 = Monday. 1970-01-01 was a Thursday (3)."""
    return (int((t + LOCAL_OFFSET) // DAY) + 3) % 7


# --- numbering (../shared/domain/KAZAKHSTAN.md) ---------------------------------------------------

OWN_PREFIXES = ("701", "702", "775", "778")  # Kcell / activ: the operator we simulate
BEELINE_PREFIXES = ("705", "706", "771", "776", "777")
TELE2_PREFIXES = ("700", "707", "708", "747")
OWN_MCC_MNC = "40102"  # Kcell's IMSI prefix (MCC 401 Kazakhstan, MNC 02)

# Trunk groups (mSCIncomingTKGP / mSCOutgoingTKGP). International trunk groups start with "INTL";
# national interconnects are "NAT-<operator>"; an on-net call has no trunk ("").
INTL_TRUNKS = ("INTL-1", "INTL-2")
NAT_BEELINE = "NAT-BEELINE"
NAT_TELE2 = "NAT-TELE2"
PGW = "pgw1"  # recording entity of the data-session records (the PS core, not an MSC)

# Countries our subscribers legitimately talk to: (country code, digits after it, leading digits).
# Russia shares +7: its mobiles are 79xx, which is not a Kazakh number.
FOREIGN_CONTACTS = (
    ("7", 10, "9"), ("998", 9, "9"), ("996", 9, "5"), ("90", 10, "5"), ("86", 11, "13"),
    ("49", 11, "15"), ("82", 10, "10"),
)  # fmt: skip
# Wangiri / IRSF ranges the industry reported (docs/calls-generator.md cites each): country code
# and national significant number length. The numbers generated in them are random, not real.
WANGIRI_RANGES = (
    ("222", 8), ("232", 8),  # Mauritania, Sierra Leone: FCC consumer alert, May 2019
    ("224", 9), ("252", 8), ("235", 8),  # Guinea, Somalia, Chad: Irish wave, 2018
    ("257", 8), ("265", 9), ("216", 8), ("375", 9),  # Burundi, Malawi, Tunisia, Belarus
)  # fmt: skip
A2P_SENDERS = ("1414", "7700", "8181", "9595")  # 1414: eGov codes; the others are synthetic
ROAMING_COUNTRIES = ("TR", "AE", "RU", "GE", "CN", "TH")

# Type Allocation Codes (first 8 IMEI digits). All synthetic: the real TAC database is not
# public. Gateway TACs stand for GSM-gateway modems; the first one is shared with an M2M module,
# as real gateways and IoT devices carry the same modules.
PHONE_TACS = tuple(
    f"35{n:06d}"
    for n in (104512, 203317, 298146, 330951, 417728, 452390, 511006, 583244, 620871, 694415)
)
GATEWAY_TACS = ("86723503", "86446103", "86180003", "86905511")
M2M_TACS = ("86723503", "86071204", "35901806")

_M64 = (1 << 64) - 1

# The simulated subscribers are a sample of the operator's base: member i (i < MAX_MEMBERS) has
# own number i; numbers from MAX_MEMBERS on are subscribers outside the sample. A person's
# contacts are in the sample (a community); a stranger of ours is in it this often (assumption).
OWN_NUMBERS = 4 * 10_000_000
MAX_MEMBERS = 1_000_000
ONNET_IN_SAMPLE = 0.05


def mix64(x: int) -> int:
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash (contacts are derived, not
    stored, so a subscriber costs a few hundred bytes however many contacts it has)."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


_LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_digit(body: str) -> str:
    """The IMEI check digit (3GPP TS 23.003 Annex B: Luhn over the 14 digits; from the right,
    every other digit starting with the last is doubled, its digits summed)."""
    total = sum(_LUHN_DOUBLE[int(ch)] for ch in body[::-2]) + sum(map(int, body[-2::-2]))
    return str((10 - total % 10) % 10)


def imei(tac: str, serial: int) -> str:
    body = f"{tac}{serial % 1_000_000:06d}"
    return body + luhn_digit(body)


def trunk_for(number: str) -> str:
    """The trunk group a call to or from an off-net `number` uses ("" never: members are
    on-net). A foreign destination keeps one international route (its country code's parity)."""
    if len(number) == 11 and number[0] == "7" and number[1] == "7":
        p = number[1:4]
        if p in BEELINE_PREFIXES:
            return NAT_BEELINE
        if p in TELE2_PREFIXES:
            return NAT_TELE2
        return ""
    return INTL_TRUNKS[int(number[:3]) % 2]


# --- places -------------------------------------------------------------------------------------

Cell = tuple[int, int]  # (location area code, cell identity)
# (recording entity, city, share of subscribers). Cells: 12 LACs of 40 cells per region.
REGIONS = (("msc1", "Almaty", 0.45), ("msc2", "Astana", 0.35), ("msc3", "Shymkent", 0.20))
LACS_PER_REGION = 12
CELLS_PER_LAC = 40


def region_cells(r: int) -> list[Cell]:
    cells: list[Cell] = []
    for li in range(LACS_PER_REGION):
        lac = 1100 + 100 * r + li + 1
        cells.extend((lac, 10_000 * (r + 1) + 100 * li + ci + 1) for ci in range(CELLS_PER_LAC))
    return cells


# --- daily rhythms ------------------------------------------------------------------------------

# Relative activity per local hour (00..23): lowest before dawn, rising through the morning, peak
# in the evening (shape after Aledavood et al. 2015; the values are an assumption).
# fmt: off
HUMAN_WEEKDAY = (0.20, 0.10, 0.05, 0.04, 0.04, 0.08, 0.25, 0.60, 0.95, 1.15, 1.25, 1.30,
                 1.30, 1.30, 1.30, 1.30, 1.35, 1.45, 1.50, 1.50, 1.40, 1.15, 0.80, 0.45)
HUMAN_WEEKEND = (0.30, 0.18, 0.08, 0.05, 0.04, 0.05, 0.10, 0.25, 0.50, 0.85, 1.10, 1.20,
                 1.25, 1.25, 1.25, 1.25, 1.25, 1.30, 1.35, 1.35, 1.25, 1.10, 0.85, 0.50)
OFFICE_WEEKDAY = tuple(0.3 if h == 13 else 1.0 if 9 <= h < 18 else 0.0 for h in range(24))
TAXI_DAY = (0.30, 0.20, 0.10, 0.05, 0.05, 0.10, 0.40, 0.90, 1.30, 1.10, 1.00, 1.00,
            1.00, 1.00, 1.00, 1.10, 1.30, 1.50, 1.60, 1.50, 1.30, 1.00, 0.70, 0.50)
# fmt: on
FLAT = (1.0,) * 24


class ActivityClock:
    """A weekly rhythm as a time warp: "activity time" runs fast when people are active and stops
    when they are not, so a Poisson process of constant rate in activity time is an inhomogeneous
    one in real time. One exponential draw and one bisect per event, no thinning."""

    __slots__ = ("_cum", "_ref", "_total", "_w")

    def __init__(self, weekday: Sequence[float], weekend: Sequence[float], start: float) -> None:
        week = list(weekday) * 5 + list(weekend) * 2
        mean = sum(week) / len(week)
        self._w = [x / mean for x in week]  # mean weight 1: a rate per second is per average second
        cum = [0.0]
        for x in self._w:
            cum.append(cum[-1] + x * 3600.0)
        self._cum = cum
        self._total = cum[-1]
        day = math.floor((start + LOCAL_OFFSET) / DAY)
        self._ref = (day - (day + 3) % 7) * DAY - LOCAL_OFFSET  # the local Monday 00:00 before

    def to_activity(self, t: float) -> float:
        k, r = divmod(t - self._ref, WEEK)
        h = min(int(r // 3600.0), 167)
        return k * self._total + self._cum[h] + self._w[h] * (r - h * 3600.0)

    def from_activity(self, a: float) -> float:
        k, r = divmod(a, self._total)
        h = min(bisect_right(self._cum, r) - 1, 167)
        w = self._w[h]
        return self._ref + k * WEEK + h * 3600.0 + ((r - self._cum[h]) / w if w else 0.0)

    def next_after(self, t: float, rate: float, rng: Random) -> float:
        """The next event of a process of `rate` events per average second after `t` (the two
        maps above in one, relative to t's week so that the floats stay small)."""
        cum, w = self._cum, self._w
        k, r = divmod(t - self._ref, WEEK)
        h = int(r // 3600.0)
        if h > 167:
            h = 167
        a = cum[h] + w[h] * (r - h * 3600.0) - math.log(1.0 - rng.random()) / rate
        if a >= self._total:
            extra, a = divmod(a, self._total)
            k += extra
        h = bisect_right(cum, a) - 1
        if h > 167:
            h = 167
        wh = w[h]
        return self._ref + k * WEEK + h * 3600.0 + ((a - cum[h]) / wh if wh else 0.0)


# --- classes and behaviour ------------------------------------------------------------------------


class SubscriberClass(StrEnum):
    NORMAL = "normal"
    SIMBOX = "simbox"
    SIMBOX_STEALTH = "simbox_stealth"
    CALL_CENTRE = "call_centre"
    TAXI = "taxi"
    M2M = "m2m"
    TWO_PHONES = "two_phones"
    ROAMER = "roamer"


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What one kind of subscriber does: how many events of each kind per average day (before
    the subscriber's own activity level), whom it calls, for how long. Durations are lognormal,
    given by their median (seconds) and sigma (of the log)."""

    clock: ActivityClock
    moc: float  # calls made per average day
    mtc: float  # calls received from outside (on-net ones come from other members' calls)
    sms_mo: float
    sms_mt: float
    data: float  # data sessions
    p_contact_out: float = 0.9  # an outgoing call goes to the personal contact set
    p_contact_in: float = 0.85
    call_median: float = 60.0
    call_sigma: float = 1.1
    p_unanswered: float = 0.2
    data_median: float = 600.0
    data_sigma: float = 1.3
    p_burst: float = 0.25  # after a call, the next action follows within minutes
    burst_median: float = 90.0
    p_a2p: float = 0.6  # an incoming SMS is from an application short code
    onnet: float = 0.45  # a new (non-contact) party is one of ours
    # cumulative shares of the event kinds (MOC, MTC, SMS_MO, SMS_MT; the rest are DATA)
    cum: tuple[float, float, float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = list(itertools.accumulate((self.moc, self.mtc, self.sms_mo, self.sms_mt)))
        total = self.per_day or 1.0
        object.__setattr__(self, "cum", (c[0] / total, c[1] / total, c[2] / total, c[3] / total))

    @property
    def per_day(self) -> float:
        return self.moc + self.mtc + self.sms_mo + self.sms_mt + self.data


MAX_CALL = 7200.0
MAX_DATA = 3600.0  # data records are cut hourly (partial records): assumption


class Member:
    """A SIM of ours: identity, where it lives and works, and its personal contact set (derived
    from `key` on demand, see `Engine.contact`)."""

    __slots__ = (
        "cls", "family", "home", "imei", "imei2", "imsi", "key", "mobile", "msisdn",
        "n_contacts", "peer", "region", "trip_end", "trip_start", "wander", "work",
    )  # fmt: skip

    def __init__(self, cls: SubscriberClass, msisdn: str, imsi: str, imei_: str, region: int,
                 home: Cell, key: int) -> None:  # fmt: skip
        self.cls = cls
        self.msisdn = msisdn
        self.imsi = imsi
        self.imei = imei_
        self.imei2 = ""  # a second phone the SIM moves into (two_phones)
        self.region = region
        self.home = home
        self.work = home
        self.wander = 0.08  # share of events away from home and work
        self.mobile = False  # every event in another cell (taxi)
        self.key = key
        self.n_contacts = 0
        self.peer: Member | str | None = None  # the one party an M2M device talks to
        self.family: Member | None = None  # whom a roamer calls home to
        self.trip_start = 0.0
        self.trip_end = 0.0

    def abroad(self, t: float) -> bool:
        return self.trip_start <= t < self.trip_end

    def imei_at(self, t: float) -> str:
        """Two phones, one SIM: the SIM sits in the second phone every third local day."""
        if self.imei2 and int((t + LOCAL_OFFSET) // DAY) % 3 == 0:
            return self.imei2
        return self.imei


# --- mixes --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimboxVariant:
    """How one family of SIM-box gateways behaves. Ports carry one modem each (one IMEI); SIMs
    from the box's SIM bank rotate through the ports every `rotation` seconds."""

    name: str
    ports: tuple[int, int]  # gateway sizes drawn from 4/8/16/32/64 within this range
    sims_per_port: float  # SIM bank size / ports
    rotation: float  # seconds a SIM stays in a port
    gap_median: float  # idle seconds between two calls of one port
    answer_median: float  # answered call duration (seconds, lognormal median)
    p_unanswered: float
    aged_share: float  # SIMs first seen living as "normal" subscribers, then moved into the box
    tacs: tuple[str, ...]
    stealth: bool = False
    cells: int = 1  # sites the SIM bank feeds (stealth: a second cell)
    night_pause: tuple[int, int] | None = None  # local hours [a, b) without calls
    p_mtc: float = 0.0  # per action: an accomplice calls the SIM (stealth)
    p_sms: float = 0.0  # per action: an SMS in or out (stealth)
    p_repeat: float = 0.0  # a call goes to the gateway's small set of repeated numbers


@dataclass(frozen=True, slots=True)
class Mix:
    """How many of each population to simulate (counts), and the SIM-box variants."""

    name: str
    normal: int
    call_centre: int = 0
    taxi: int = 0
    m2m: int = 0
    two_phones: int = 0  # persons (a dual-SIM person is two SIMs)
    roamers: int = 0
    simbox: int = 0  # gateways of `simbox_variant`
    stealth: int = 0  # gateways of `stealth_variant`
    wangiri: int = 0  # campaigns
    spoofing: int = 0  # campaigns
    simbox_variant: SimboxVariant | None = None
    stealth_variant: SimboxVariant | None = None
    wangiri_victims: tuple[int, int] = (100, 400)
    spoof_calls: tuple[int, int] = (100, 300)


# --- labels -------------------------------------------------------------------------------------


@dataclass(slots=True)
class SimboxSimLabel:
    msisdn: str
    imsi: str
    gateway: str
    stealth: bool
    joined: float  # when the SIM went into the box (before the window: it was there already)
    aged: bool  # seen living as a normal subscriber before `joined`
    first_fraud_call: float | None = None  # start of its first call from the box (as emitted)


@dataclass(slots=True)
class GatewayLabel:
    name: str
    variant: str
    tac: str
    ports: int
    cells: list[list[int]]
    imeis: list[str]
    sims: list[str]


@dataclass(slots=True)
class WangiriLabel:
    number: str
    campaign: str
    trunk: str
    first_ring: float | None = None
    victims: list[str] = field(default_factory=list)
    callbacks: list[str] = field(default_factory=list)  # record ids of victims' calls back


@dataclass(slots=True)
class Labels:
    """What the generated records contain, by construction. Filled while the records stream:
    complete once the iteration ends (a truncated stream labels what was emitted)."""

    seed: int
    mix: str
    start: float
    end: float
    classes: dict[str, str] = field(default_factory=dict)  # msisdn -> SubscriberClass
    simbox: dict[str, SimboxSimLabel] = field(default_factory=dict)  # msisdn -> its SIM
    gateways: dict[str, GatewayLabel] = field(default_factory=dict)
    wangiri: dict[str, WangiriLabel] = field(default_factory=dict)  # number -> campaign
    spoofed_calls: list[str] = field(default_factory=list)  # record ids
    spoofed_clis: dict[str, str] = field(default_factory=dict)  # CLI -> "onnet" / "offnet"
    trips: dict[str, list[list[float | str]]] = field(default_factory=dict)  # roamer trips
    two_phones: dict[str, str] = field(default_factory=dict)  # msisdn -> "two_imeis"/"dual_sim"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Labels:
        raw: dict[str, Any] = json.loads(text)
        return cls(
            seed=raw["seed"],
            mix=raw["mix"],
            start=raw["start"],
            end=raw["end"],
            classes=dict(raw["classes"]),
            simbox={k: SimboxSimLabel(**v) for k, v in raw["simbox"].items()},
            gateways={k: GatewayLabel(**v) for k, v in raw["gateways"].items()},
            wangiri={k: WangiriLabel(**v) for k, v in raw["wangiri"].items()},
            spoofed_calls=list(raw["spoofed_calls"]),
            spoofed_clis=dict(raw["spoofed_clis"]),
            trips={k: [list(x) for x in v] for k, v in raw["trips"].items()},
            two_phones=dict(raw["two_phones"]),
        )


K_NONE, K_SIMBOX, K_RING, K_CALLBACK, K_SPOOF = range(5)


# --- engine -------------------------------------------------------------------------------------


class Actor(Protocol):
    def fire(self, t: float, eng: Engine) -> float | None:
        """Act at `t` (writing records that start at `t`); return the next time, or None."""


_ZIPF_CACHE: dict[int, list[float]] = {}


def _zipf_cum(n: int) -> list[float]:
    """Cumulative weights 1/rank^1.2 over n contacts: a few contacts take most of the calls."""
    cum = _ZIPF_CACHE.get(n)
    if cum is None:
        cum = list(itertools.accumulate(1.0 / (r + 1) ** 1.2 for r in range(n)))
        _ZIPF_CACHE[n] = cum
    return cum


# Standard normal deviates drawn through a table: random.gauss is pure Python and was a tenth
# of the generator's time. 65,536 values (from a fixed seed) are plenty for lognormal durations;
# which one is used comes from the seeded stream.
_TABLE_RNG = Random(0x5EED)
_NORMALS = tuple(_TABLE_RNG.gauss() for _ in range(65_536))
_MOC, _MTC, _SMS_MO, _SMS_MT, _DATA = (
    RecordType.MOC, RecordType.MTC, RecordType.SMS_MO, RecordType.SMS_MT, RecordType.DATA,
)  # fmt: skip


def normal(rng: Random) -> float:
    return _NORMALS[int(rng.random() * 65_536.0)]


class Engine:
    """The event queue, the record factory and the population's shared pools.

    The queue is a calendar of one-second buckets: records carry whole-second start times, so
    the order inside a second does not matter, and filing an actor under its second costs a dict
    look-up where a heapq of 100,000 actors cost 2-3 us per event (the largest single cost)."""

    def __init__(self, rng: Random, start: float, end: float, labels: Labels) -> None:
        self.rng = rng
        self.start = start
        self.end = end
        self.labels = labels
        self.buckets: dict[int, list[tuple[float, Actor]]] = {}
        self.out: list[tuple[Cdr, int, str]] = []
        self.humans: list[Member] = []  # who people call on-net, and who fraud reaches
        self.msisdn_offset = 0  # numbering: see own_number
        self.cells = [region_cells(r) for r in range(len(REGIONS))]
        self._now = math.floor(start)
        self._entity: dict[int, list[Any]] = {}  # LAC -> [entity name, last sequence number]
        for r, (name, _, _) in enumerate(REGIONS):
            counter: list[Any] = [name, 0]
            for lac, _ in self.cells[r][::CELLS_PER_LAC]:
                self._entity[lac] = counter
        self._pgw: list[Any] = [PGW, 0]

    def schedule(self, t: float, actor: Actor) -> None:
        if t < self.end:
            k = max(int(t), self._now)
            lst = self.buckets.get(k)
            if lst is None:
                self.buckets[k] = [(t, actor)]
            else:
                lst.append((t, actor))

    def run(self) -> Iterator[Cdr]:
        buckets, out, end = self.buckets, self.out, self.end
        last = math.ceil(end)
        s = self._now
        while s < last:
            lst = buckets.get(s)
            if lst is None:
                s += 1
                self._now = s
                continue
            i = 0
            while i < len(lst):  # actors due again within this second join the same list
                t, actor = lst[i]
                i += 1
                nxt = actor.fire(t, self)
                if nxt is not None and nxt < end:
                    k = int(nxt)
                    if k <= s:
                        lst.append((nxt if nxt > t else t, actor))
                    else:
                        later = buckets.get(k)
                        if later is None:
                            buckets[k] = [(nxt, actor)]
                        else:
                            later.append((nxt, actor))
                if out:
                    for cdr, kind, key in out:
                        if kind:
                            self._label(cdr, kind, key)
                        yield cdr
                    out.clear()
            del buckets[s]
            s += 1
            self._now = s

    def _label(self, cdr: Cdr, kind: int, key: str) -> None:
        lb = self.labels
        if kind == K_SIMBOX:
            sim = lb.simbox[key]
            if sim.first_fraud_call is None:
                sim.first_fraud_call = cdr.start
        elif kind == K_RING:
            w = lb.wangiri[key]
            if w.first_ring is None:
                w.first_ring = cdr.start
            w.victims.append(cdr.served_msisdn)
        elif kind == K_CALLBACK:
            lb.wangiri[key].callbacks.append(cdr.record_id)
        elif kind == K_SPOOF:
            lb.spoofed_calls.append(cdr.record_id)
            if cdr.calling not in lb.spoofed_clis:
                lb.spoofed_clis[cdr.calling] = key

    # records ------------------------------------------------------------------------------------

    def rec(self, rtype: RecordType, t: float, m: Member, imei_: str, calling: str, called: str,
            dur: float, cause: int, where: Cell, tin: str = "", tout: str = "",
            kind: int = K_NONE, key: str = "") -> None:  # fmt: skip
        """Write one record of `m` (the served subscriber) starting at `t`."""
        ent = self._pgw if rtype is _DATA else self._entity[where[0]]
        n = ent[1] + 1
        ent[1] = n
        cdr = Cdr(rtype, float(int(t)), dur, m.imsi, imei_, m.msisdn, calling, called, cause,
                  where[0], where[1], tin, tout, f"{ent[0]}:{n:09d}")  # fmt: skip
        self.out.append((cdr, kind, key))

    def where(self, m: Member, t: float) -> Cell:
        if m.mobile or (m.wander and self.rng.random() < m.wander):
            cells = self.cells[m.region]
            return cells[int(self.rng.random() * len(cells))]
        if m.work is not m.home:
            lt = t + LOCAL_OFFSET
            if 9 <= int((lt % DAY) // 3600) < 18 and (int(lt // DAY) + 3) % 7 < 5:
                return m.work
        return m.home

    # parties ------------------------------------------------------------------------------------

    def contact(self, m: Member) -> Member | str:
        """One of `m`'s contacts, the first ranks far more often (repeat calling)."""
        if m.peer is not None:
            return m.peer
        cum = _zipf_cum(m.n_contacts)
        rank = bisect_right(cum, self.rng.random() * cum[-1])
        h = mix64(m.key ^ (rank * 0x2545F4914F6CDD1D & _M64))
        u = (h & 0xFFFF) / 65536.0
        if u < 0.45:
            return self.humans[(h >> 16) % len(self.humans)]
        if u < 0.78:
            p = BEELINE_PREFIXES[(h >> 16) % 5]
            return f"7{p}{(h >> 24) % 10_000_000:07d}"
        if u < 0.97:
            p = TELE2_PREFIXES[(h >> 16) % 4]
            return f"7{p}{(h >> 24) % 10_000_000:07d}"
        cc, n, lead = FOREIGN_CONTACTS[(h >> 16) % len(FOREIGN_CONTACTS)]
        rest = n - len(lead)
        return f"{cc}{lead}{(h >> 24) % 10**rest:0{rest}d}"

    def own_number(self, i: int) -> str:
        """The MSISDN of the operator's i-th subscriber: a bijection of i over the four own
        prefixes and 10^7 local numbers, so numbers are unique without a set to check."""
        local = (i // 4 * 3_141_593 + self.msisdn_offset) % 10_000_000
        return f"7{OWN_PREFIXES[i % 4]}{local:07d}"

    def party(self, onnet: float) -> Member | str:
        """A party nobody chose before: one of ours (share `onnet`) or another Kazakh mobile.
        One of ours is mostly outside the simulated sample (only its caller's record exists)."""
        rng = self.rng
        u = rng.random()
        if u < onnet:
            if rng.random() < ONNET_IN_SAMPLE:
                return self.humans[int(rng.random() * len(self.humans))]
            return self.own_number(MAX_MEMBERS + rng.randrange(OWN_NUMBERS - MAX_MEMBERS))
        prefixes = BEELINE_PREFIXES if u < onnet + (1 - onnet) * 0.6 else TELE2_PREFIXES
        return f"7{prefixes[int(rng.random() * len(prefixes))]}{rng.randrange(10_000_000):07d}"

    def duration(self, b: Behaviour) -> tuple[float, int]:
        rng = self.rng
        if rng.random() < b.p_unanswered:
            return 0.0, UNSUCCESSFUL_CALL_ATTEMPT
        d = 1.0 + int(
            b.call_median * math.exp(b.call_sigma * _NORMALS[int(rng.random() * 65536.0)])
        )
        return (d if d < MAX_CALL else MAX_CALL), (
            ABNORMAL_RELEASE if rng.random() < 0.01 else NORMAL_RELEASE
        )

    # events -------------------------------------------------------------------------------------

    def call(self, t: float, a: Member, b: Member | str, dur: float, cause: int,
             imei_: str = "", cell: Cell | None = None, kind: int = K_NONE,
             key: str = "") -> None:  # fmt: skip
        """`a` (ours, in Kazakhstan) calls `b`: a's MOC, and b's MTC when b is ours and home."""
        here = cell or self.where(a, t)
        if not imei_:
            imei_ = a.imei_at(t) if a.imei2 else a.imei
        if isinstance(b, Member):
            away = b.trip_start <= t < b.trip_end  # so the call leaves over an international trunk
            self.rec(_MOC, t, a, imei_, a.msisdn, b.msisdn, dur, cause, here, "",
                     INTL_TRUNKS[0] if away else "", kind, key)  # fmt: skip
            if not away:
                self.rec(_MTC, t, b, b.imei_at(t) if b.imei2 else b.imei, a.msisdn, b.msisdn,
                         dur, cause, self.where(b, t))  # fmt: skip
        else:
            self.rec(_MOC, t, a, imei_, a.msisdn, b, dur, cause, here, "", trunk_for(b), kind,
                     key)  # fmt: skip

    def incoming(self, t: float, m: Member, caller: Member | str, dur: float, cause: int) -> None:
        """`caller` calls `m`: through a member's MOC when on-net, else one MTC off a trunk."""
        if isinstance(caller, Member):
            if caller is not m and not caller.trip_start <= t < caller.trip_end:
                self.call(t, caller, m, dur, cause)
        else:
            self.rec(_MTC, t, m, m.imei_at(t) if m.imei2 else m.imei, caller, m.msisdn, dur,
                     cause, self.where(m, t), trunk_for(caller))  # fmt: skip

    def sms(self, t: float, a: Member | str, b: Member | str) -> None:
        """An SMS from a to b: SMS_MO for a sender of ours, SMS_MT for a recipient of ours."""
        if isinstance(a, Member):
            if a.trip_start <= t < a.trip_end:
                return
            called = b.msisdn if isinstance(b, Member) else b
            self.rec(_SMS_MO, t, a, a.imei_at(t) if a.imei2 else a.imei, a.msisdn, called, 0.0,
                     NORMAL_RELEASE, self.where(a, t))  # fmt: skip
        if isinstance(b, Member) and b is not a and not b.trip_start <= t < b.trip_end:
            calling = a.msisdn if isinstance(a, Member) else a
            self.rec(_SMS_MT, t, b, b.imei_at(t) if b.imei2 else b.imei, calling, b.msisdn, 0.0,
                     NORMAL_RELEASE, self.where(b, t))  # fmt: skip

    def data(self, t: float, m: Member, b: Behaviour) -> None:
        d = 1.0 + int(b.data_median * math.exp(b.data_sigma * normal(self.rng)))
        self.rec(_DATA, t, m, m.imei_at(t) if m.imei2 else m.imei, "", "",
                 d if d < MAX_DATA else MAX_DATA, NORMAL_RELEASE, self.where(m, t))  # fmt: skip


# --- actors -------------------------------------------------------------------------------------


class Life:
    """A person's (or device's) own events: calls, SMS and data sessions at its rhythm. Stops at
    `stop` (a SIM that goes into a SIM box); abroad, it only calls home."""

    __slots__ = ("b", "clock", "cum", "m", "p_home", "rate", "stop")

    def __init__(self, m: Member, b: Behaviour, level: float, stop: float = math.inf) -> None:
        self.m = m
        self.b = b
        self.clock = b.clock
        self.cum = b.cum
        self.rate = b.per_day * level / DAY
        self.stop = stop
        self.p_home = 0.0

    def first(self, t: float, rng: Random) -> float:
        return self.clock.next_after(t, self.rate, rng)

    def fire(self, t: float, eng: Engine) -> float | None:
        if t >= self.stop:
            return None
        m, b, rng = self.m, self.b, eng.rng
        if m.trip_start <= t < m.trip_end:
            fam = m.family
            if fam is not None and rng.random() < self.p_home:
                dur, cause = eng.duration(b)  # a roamer calls home: our MTC, its own KZ CLI
                eng.rec(_MTC, t, fam, fam.imei_at(t), m.msisdn, fam.msisdn, dur, cause,
                        eng.where(fam, t), INTL_TRUNKS[m.key & 1])  # fmt: skip
            return self.clock.next_after(t, self.rate, rng)
        c_moc, c_mtc, c_smo, c_smt = self.cum
        u = rng.random()
        busy = 0.0
        if u >= c_smt:
            eng.data(t, m, b)
        elif u < c_moc:
            callee = eng.contact(m) if rng.random() < b.p_contact_out else eng.party(b.onnet)
            busy, cause = eng.duration(b)
            if callee is not m:
                eng.call(t, m, callee, busy, cause)
        elif u < c_mtc:
            caller = eng.contact(m) if rng.random() < b.p_contact_in else eng.party(b.onnet)
            busy, cause = eng.duration(b)
            eng.incoming(t, m, caller, busy, cause)
        elif u < c_smo:
            eng.sms(t, m, eng.contact(m))
        elif m.peer is None and rng.random() < b.p_a2p:
            eng.sms(t, A2P_SENDERS[int(rng.random() * len(A2P_SENDERS))], m)
        else:
            eng.sms(t, eng.contact(m), m)
        if busy and rng.random() < b.p_burst:
            return t + busy + b.burst_median * math.exp(normal(rng))
        return self.clock.next_after(t + busy, self.rate, rng)


class Work:
    """A call-centre employee's shift: outgoing calls to ever new numbers from the office cell."""

    __slots__ = ("b", "m", "office", "p_in", "rate")

    def __init__(self, m: Member, b: Behaviour, office: Cell) -> None:
        self.m = m
        self.b = b
        self.office = office
        self.rate = b.per_day / DAY
        self.p_in = b.mtc / (b.moc + b.mtc)

    def fire(self, t: float, eng: Engine) -> float | None:
        m, b, rng = self.m, self.b, eng.rng
        dur, cause = eng.duration(b)
        if rng.random() < self.p_in:  # a customer calls back
            caller = eng.party(b.onnet)
            if isinstance(caller, Member):
                if caller is not m and not caller.abroad(t):
                    eng.call(t, caller, m, dur, cause)
            else:
                eng.rec(RecordType.MTC, t, m, m.imei, caller, m.msisdn, dur, cause, self.office,
                        trunk_for(caller))  # fmt: skip
        else:
            callee = eng.party(b.onnet)
            if callee is not m:
                eng.call(t, m, callee, dur, cause, cell=self.office)
        return b.clock.next_after(t + dur + 5.0, self.rate, rng)


class Gateway:
    """A SIM box: ports (one modem and IMEI each) in one or two fixed cells, and a SIM bank whose
    SIMs rotate through the ports. New SIMs are used first once they are in."""

    def __init__(self, name: str, v: SimboxVariant) -> None:
        self.name = name
        self.v = v
        self.idle: deque[Member] = deque()
        self.pending: deque[tuple[float, Member]] = deque()  # (joined, SIM), by time
        self.repeat: list[Member | str] = []
        self.accomplices: list[str] = []
        self.gap_mu = math.log(v.gap_median)
        self.answer_mu = math.log(v.answer_median)

    def take(self, t: float) -> Member | None:
        while self.pending and self.pending[0][0] <= t:
            self.idle.appendleft(self.pending.popleft()[1])
        return self.idle.popleft() if self.idle else None


class Port:
    __slots__ = ("cell", "gw", "imei", "sim", "slot_end")

    def __init__(self, gw: Gateway, imei_: str, cell: Cell) -> None:
        self.gw = gw
        self.imei = imei_
        self.cell = cell
        self.sim: Member | None = None
        self.slot_end = 0.0

    def fire(self, t: float, eng: Engine) -> float | None:
        gw, v, rng = self.gw, self.gw.v, eng.rng
        if self.sim is None or t >= self.slot_end:
            if self.sim is not None:
                gw.idle.append(self.sim)
            self.sim = gw.take(t)
            self.slot_end = t + v.rotation * (0.75 + 0.5 * rng.random())
            if self.sim is None:
                return self.slot_end
        if v.night_pause is not None:
            a, b = v.night_pause
            h = local_hour(t)
            if a <= h < b:
                return t + ((b - h) * 3600.0 - (t + LOCAL_OFFSET) % 3600.0) + 60 * rng.random()
        sim = self.sim
        u = rng.random()
        if u < v.p_mtc:  # stealth: an accomplice calls the SIM, as friends would
            caller = gw.accomplices[int(rng.random() * len(gw.accomplices))]
            dur, cause = float(20 + int(60 * math.exp(0.8 * normal(rng)))), NORMAL_RELEASE
            eng.rec(RecordType.MTC, t, sim, self.imei, caller, sim.msisdn, dur, cause, self.cell,
                    trunk_for(caller))  # fmt: skip
        elif u < v.p_mtc + v.p_sms:
            other = gw.accomplices[int(rng.random() * len(gw.accomplices))]
            dur = 0.0
            if rng.random() < 0.5:
                eng.rec(RecordType.SMS_MO, t, sim, self.imei, sim.msisdn, other, 0.0,
                        NORMAL_RELEASE, self.cell)  # fmt: skip
            else:
                eng.rec(RecordType.SMS_MT, t, sim, self.imei, other, sim.msisdn, 0.0,
                        NORMAL_RELEASE, self.cell)  # fmt: skip
        else:
            if gw.repeat and rng.random() < v.p_repeat:
                callee = gw.repeat[int(rng.random() * len(gw.repeat))]
            else:
                callee = eng.party(0.5)
            if rng.random() < v.p_unanswered:
                dur, cause = 0.0, UNSUCCESSFUL_CALL_ATTEMPT
                busy = 15.0 + 20.0 * rng.random()  # it rang out
            else:
                dur = float(min(MAX_CALL, 1 + int(math.exp(gw.answer_mu + 0.9 * normal(rng)))))
                cause, busy = NORMAL_RELEASE, dur
            eng.call(t, sim, callee, dur, cause, imei_=self.imei, cell=self.cell,
                     kind=K_SIMBOX, key=sim.msisdn)  # fmt: skip
            dur = busy
        nxt = t + dur + math.exp(gw.gap_mu + 0.8 * normal(rng))
        # the SIM leaves the port at the end of its slot, once its last call is over
        return nxt if nxt < self.slot_end else max(self.slot_end, t + dur)


class Wangiri:
    """A dialer abroad rings our subscribers once each, in number order, from 1-3 numbers of
    one range; a few victims call back later."""

    P_ANSWER = 0.08  # the victim picks up before the one ring ends
    P_CALLBACK = 0.04

    def __init__(self, numbers: list[str], victims: list[Member], trunk: str) -> None:
        self.numbers = numbers
        self.victims = victims
        self.trunk = trunk
        self.i = 0
        self.per_number = max(1, math.ceil(len(victims) / len(numbers)))

    def fire(self, t: float, eng: Engine) -> float | None:
        rng = eng.rng
        while self.i < len(self.victims):
            v = self.victims[self.i]
            number = self.numbers[self.i // self.per_number]
            self.i += 1
            if v.abroad(t):
                continue
            if rng.random() < self.P_ANSWER:
                dur, cause = float(1 + int(3 * rng.random())), NORMAL_RELEASE
            else:
                dur, cause = 0.0, UNSUCCESSFUL_CALL_ATTEMPT
            eng.rec(RecordType.MTC, t, v, v.imei_at(t), number, v.msisdn, dur, cause,
                    eng.where(v, t), self.trunk, "", K_RING, number)  # fmt: skip
            if rng.random() < self.P_CALLBACK:
                eng.schedule(_callback_time(t, rng), CallBack(v, number))
            break
        if self.i >= len(self.victims):
            return None
        return t + 1.5 * math.exp(0.7 * normal(rng))


def _callback_time(t: float, rng: Random) -> float:
    """Minutes later; a ring in the night is called back in the morning."""
    h = local_hour(t)
    if h >= 23 or h < 7:
        wait_to_7 = ((7 - h) % 24) * 3600.0 - (t + LOCAL_OFFSET) % 3600.0
        return t + wait_to_7 + 1800.0 + 7200.0 * rng.random()
    return t + 10.0 + 600.0 * math.exp(1.2 * normal(rng))


class CallBack:
    """A Wangiri victim returns the call: a MOC to the foreign number (the loss)."""

    __slots__ = ("number", "v")

    def __init__(self, v: Member, number: str) -> None:
        self.v = v
        self.number = number

    def fire(self, t: float, eng: Engine) -> float | None:
        v, rng = self.v, eng.rng
        if not v.abroad(t):
            dur = float(1 + int(40 * math.exp(0.9 * normal(rng))))  # held on the line
            eng.call(t, v, self.number, dur, NORMAL_RELEASE, kind=K_CALLBACK, key=self.number)
            if rng.random() < 0.2:
                return t + dur + 60.0 + 300.0 * rng.random()  # tries once more
        return None


class Spoofer:
    """A call centre abroad calls our subscribers over an international trunk presenting Kazakh
    mobile CLIs (ours or another network's), each CLI for a run of calls."""

    def __init__(self, clis: list[tuple[str, str]], until: float, trunk: str) -> None:
        self.clis = clis  # (CLI, "onnet" / "offnet")
        self.until = until
        self.trunk = trunk
        self.k = 0
        self.left = 0

    def fire(self, t: float, eng: Engine) -> float | None:
        rng = eng.rng
        if self.left <= 0:
            self.k = int(rng.random() * len(self.clis))
            self.left = 5 + int(25 * rng.random())
        self.left -= 1
        cli, owner = self.clis[self.k]
        v = eng.humans[int(rng.random() * len(eng.humans))]
        if v.msisdn != cli and not v.abroad(t):
            if rng.random() < 0.45:
                dur, cause = float(1 + int(100 * math.exp(normal(rng)))), NORMAL_RELEASE
            else:
                dur, cause = 0.0, UNSUCCESSFUL_CALL_ATTEMPT
            eng.rec(RecordType.MTC, t, v, v.imei_at(t), cli, v.msisdn, dur, cause,
                    eng.where(v, t), self.trunk, "", K_SPOOF, owner)  # fmt: skip
        nxt = t + 40.0 * math.exp(0.8 * normal(rng))
        return nxt if nxt < self.until else None
