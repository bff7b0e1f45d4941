"""Call fraud from call records, sans-I/O: `Cdr`s in (in roughly time order), `CallFinding`s out.

Three detectors share one pass over the records (docs/calls.md):

SIM box (per SIM, keyed by its MSISDN). A SIM in a SIM box terminates international traffic as
local calls: many outgoing calls to numbers it never called before, almost nothing incoming, no
SMS or data, calls back to back day and night, one cell, and a gateway's modules take SIMs in
turn, so one IMEI is seen with many IMSIs. Each SIM keeps counters over a sliding window (two
tumbling slots of `window` seconds, the older weighted by how much of it still lies inside the
window), the last 32 numbers it called and the last 8 cells it used (fixed-size arrays): about
a kilobyte a SIM with its IMEI's entry, whatever its traffic. Once a SIM has made `min_calls`
calls in the window, each new call scores it: a logistic model over the features
(`SimboxModel`, weights fitted on labelled records: gateway.calls.evaluate.fit); at `threshold`
it is a `simbox` finding with the reasons that weighed most. A SIM that a probe test named
(`confirm`) is a confirmed positive: the SIMs seen on its IMEI, and SIMs in its cell that
already look like SIM-box SIMs, become `simbox_sibling` suspects.

Wangiri (per calling number range). A foreign number rings many of our subscribers once, too
briefly to answer, hoping they call back a premium-rate number: incoming calls from a foreign
range (the number without its last two digits) to `wangiri_min_victims` distinct subscribers
within `wangiri_window`, mostly unanswered or shorter than `ring_max`. Ranges the industry
reports for Wangiri / IRSF (`premium_prefixes`) score higher.

Spoofed CLI (per presented number). A call arriving on an international trunk that presents a
Kazakh mobile number was not made from a Kazakh mobile on its home network: either our
subscriber is roaming abroad and calls home (legitimate) or the number is spoofed. It is spoofed
when the number's own subscriber was seen in one of our cells within `presence_window` of the
call (they cannot be abroad), or when the same presented number reaches `spoof_min_victims`
distinct subscribers within the window (a roamer calls a few people, a spoofing campaign many).

Memory stays bounded: state idle longer than its window is swept (`expire`), and past
`max_sims` / `max_ranges` the longest-idle entries are dropped (counted in `stats`).
"""

from __future__ import annotations

import heapq
import math
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from gateway.calls import weights
from gateway.calls.cdr import PARTIAL_RECORD, Cdr, RecordType
from gateway.detect.sender import KZ_MOBILE_RE
from gateway.ids import new_id

_V = TypeVar("_V")

KZ_OFFSET = 5 * 3600  # Kazakhstan keeps UTC+5 all year (one zone since March 2024)
SKEW = 3600.0  # how far ahead of the wall clock a record may move the analyzer's time
# causeForTerm of a long call's intermediate records (TS 32.298): its last record ends the call
PARTIAL = frozenset({PARTIAL_RECORD, 2})


class FindingKind(StrEnum):
    SIMBOX = "simbox"  # a SIM behaving as a SIM-box SIM
    SIMBOX_SIBLING = "simbox_sibling"  # a SIM on the IMEI / in the cell of a confirmed one
    WANGIRI = "wangiri"  # a foreign range ringing many subscribers briefly
    SPOOFED_CLI = "spoofed_cli"  # a local mobile CLI on a call from an international trunk


@dataclass(frozen=True, slots=True)
class Reason:
    id: str  # calls.simbox.no_incoming, calls.wangiri.premium_range, ...
    score: float  # its weight in the decision (for the model: its contribution to the logit)
    description: str


@dataclass(frozen=True, slots=True)
class CallFinding:
    """What the analyzer found. `subject` is what the finding is about: a SIM's MSISDN, a
    Wangiri range ("21650123xx"), a spoofed number; one finding per (kind, subject)."""

    kind: FindingKind
    subject: str
    score: float
    reasons: tuple[Reason, ...]
    first_at: float  # the first record counted as evidence
    at: float  # the record that decided it
    msisdn: str = ""  # our subscriber's number, when the finding names one
    imsi: str = ""
    imei: str = ""
    details: dict[str, object] = field(default_factory=dict)
    id: str = field(default_factory=new_id)

    @property
    def names_subscriber(self) -> bool:
        """The finding names a SIM of ours to verify and suspend (SIM box, sibling)."""
        return self.kind in (FindingKind.SIMBOX, FindingKind.SIMBOX_SIBLING)


# -- the model ------------------------------------------------------------------------------

# Feature order of the model and of `features()`.
FEATURES: tuple[str, ...] = (
    "log_out",  # log(1 + outgoing calls in the window)
    "in_ratio",  # incoming / outgoing calls
    "sms_data",  # log(1 + SMS and data sessions in the window)
    "new_dest",  # share of outgoing calls to a number not among the SIM's last 32
    "b2b",  # share of outgoing calls placed within `gap` seconds of the previous one's end
    "night",  # share of outgoing calls between 00:00 and 06:00 local time
    "one_cell",  # 1 when its last 8 records with a cell are all in one cell
    "imsis_on_imei",  # log(distinct IMSIs seen on its IMEI in the window)
    "imeis",  # distinct IMEIs it was seen in (of its last 4) minus one
    "networks",  # distinct networks it called (own, two other mobile, other, fixed, abroad)
)


@dataclass(frozen=True, slots=True)
class SimboxModel:
    """Logistic weights over FEATURES; `source` says what they were fitted on."""

    weights: tuple[float, ...]
    bias: float
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURES):
            n = len(self.weights)
            raise ValueError(f"a SIM-box model has {len(FEATURES)} weights, not {n}")

    def logit(self, x: tuple[float, ...]) -> float:
        return self.bias + sum(w * v for w, v in zip(self.weights, x, strict=True))

    def score(self, x: tuple[float, ...]) -> float:
        z = self.logit(x)
        return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0


# Hand-set weights (the first version, kept to compare against).
HAND_MODEL = SimboxModel(
    weights=(1.0, -6.0, -1.5, 3.0, 2.0, 1.5, 1.0, 2.0, 0.5, 0.3),
    bias=-8.0,
    source="hand-set",
)
# The weights `fraudgate calls tune` fitted (gateway/calls/weights.py, docs/calls.md).
FITTED_MODEL = SimboxModel(weights.WEIGHTS, weights.BIAS, weights.SOURCE)


@dataclass(frozen=True, slots=True)
class AnalyzerSettings:
    window: float = 86400.0  # SIM behaviour: the sliding window (seconds)
    min_calls: int = 12  # outgoing calls in the window before a SIM is scored
    threshold: float = 0.8  # SIM-box score that makes a finding
    sibling_threshold: float = 0.4  # a cell sibling's own score needed to become a suspect
    gap: float = 20.0  # "back to back": the next call within this many seconds
    own_prefixes: tuple[str, ...] = ("7701", "7702", "7775", "7778")  # on-net numbers
    intl_trunks: tuple[str, ...] = ("INTL",)  # trunk groups (prefixes) that come from abroad
    wangiri_window: float = 3600.0
    wangiri_min_victims: int = 15
    ring_max: float = 5.0  # an answered call this short still counts as a ring
    premium_prefixes: tuple[str, ...] = ()
    presence_window: float = 900.0  # spoofed CLI: the subscriber seen at home this recently
    spoof_window: float = 3600.0
    spoof_min_victims: int = 5
    max_sims: int = 5_000_000
    max_ranges: int = 200_000
    model: SimboxModel = FITTED_MODEL

    def __post_init__(self) -> None:
        for name in ("window", "wangiri_window", "presence_window", "spoof_window"):
            if getattr(self, name) <= 0:
                raise ValueError(f"[calls] {name} must be positive")
        if not 0 < self.threshold <= 1 or not 0 < self.sibling_threshold <= 1:
            raise ValueError("[calls] threshold and sibling_threshold are within (0, 1]")
        if self.min_calls < 1 or self.wangiri_min_victims < 2 or self.spoof_min_victims < 2:
            raise ValueError("[calls] min_calls >= 1, wangiri/spoof_min_victims >= 2")


# counters of a SIM's window slots (cur at index i, prev at index i + _N)
_OUT, _IN, _SMS, _DATA, _NIGHT, _B2B, _NEW = range(7)
_N = 7
_DESTS = 32  # last called numbers kept per SIM
_CELLS = 8  # last cells kept per SIM
_IMEIS = 4
_IMEI_IMSIS = 16


def valid_imei(imei: str) -> bool:
    """An IMEI that names a device: 14 digits, or 15 whose last is the Luhn check digit, not
    all zeros (switches write zeros when the handset did not give it; cloned and invalid IMEIs
    are shared by unrelated phones and would make them look like one multi-SIM gateway)."""
    if len(imei) not in (14, 15) or not imei.isdigit() or imei[:14] == "0" * 14:
        return False
    if len(imei) == 14:
        return True
    total = 0
    for i, ch in enumerate(imei[:14]):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10 == int(imei[14])


def _h(s: str) -> int:
    """A 32-bit fingerprint of a number (arrays of them stay small)."""
    return hash(s) & 0xFFFFFFFF


class _Sim:
    __slots__ = (
        "alerted",
        "c",
        "cell",
        "cells",
        "ci",
        "dests",
        "di",
        "first_at",
        "imei",
        "imeis",
        "imeis_prev",
        "imsi",
        "last_cell_at",
        "last_out_end",
        "last_seen",
        "nets",
        "score",
        "slot",
    )  # fmt: skip

    def __init__(self, at: float) -> None:
        self.imsi = ""
        self.imei = ""
        self.slot = at  # the current slot's start
        self.c = array("i", bytes(4 * 2 * _N))
        self.dests = array("I")
        self.di = 0
        self.cells = array("I")
        self.ci = 0
        self.imeis = array("I")  # IMEIs seen in the current slot (at most _IMEIS)
        self.imeis_prev = array("I")  # and in the previous one
        self.nets = 0  # bit per network called, this slot and the previous one
        self.last_out_end = 0.0
        self.last_seen = at
        self.last_cell_at = 0.0  # when last seen with a cell of ours
        self.cell = 0  # that cell (lac << 16 | ci)
        self.first_at = 0.0  # first outgoing call of the current run of evidence
        self.alerted = False
        self.score = 0.0

    def roll(self, at: float, window: float) -> None:
        """Move the slots forward to `at`."""
        if at < self.slot + window:
            return
        c = self.c
        if at < self.slot + 2 * window:
            for i in range(_N):
                c[i + _N] = c[i]
                c[i] = 0
            self.slot += window
            self.nets = (self.nets & 0x3F) << 6
            self.imeis_prev, self.imeis = self.imeis, array("I")
        else:
            for i in range(2 * _N):
                c[i] = 0
            self.slot = at
            self.nets = 0
            self.first_at = 0.0
            self.imeis, self.imeis_prev = array("I"), array("I")

    def count(self, i: int, at: float, window: float) -> float:
        """Counter `i` over the sliding window ending at `at`."""
        c = self.c
        prev = c[i + _N]
        if not prev:
            return float(c[i])
        share = 1.0 - (at - self.slot) / window  # of the previous slot still in the window
        return c[i] + prev * min(1.0, max(0.0, share))


class _Imei:
    """The SIMs (IMSI fingerprints) a device was seen with, in two tumbling generations of a
    window each: the count is over both, so it never drops to nothing at a boundary."""

    __slots__ = ("imsis", "last_seen", "prev", "slot")

    def __init__(self, at: float) -> None:
        self.imsis = array("I")
        self.prev = array("I")
        self.slot = at
        self.last_seen = at

    def count(self) -> int:
        imsis = self.imsis
        return len(imsis) + sum(1 for x in self.prev if x not in imsis)

    def all(self) -> set[int]:
        return set(self.imsis) | set(self.prev)


class _Range:
    __slots__ = (
        "alerted",
        "answered",
        "callbacks",
        "first_at",
        "last_at",
        "numbers",
        "rings",
        "victims",
    )  # fmt: skip

    def __init__(self, at: float) -> None:
        self.first_at = at
        self.last_at = at
        self.rings = 0
        self.answered = 0
        self.victims = array("I")
        self.numbers: list[str] = []
        self.alerted = False
        self.callbacks = 0  # calls from our subscribers to the range once it was flagged


class _Spoof:
    __slots__ = ("alerted", "calls", "first_at", "last_at", "trunks", "victims")

    def __init__(self, at: float) -> None:
        self.first_at = at
        self.last_at = at
        self.calls = 0
        self.victims = array("I")
        self.trunks: list[str] = []
        self.alerted = False


@dataclass(slots=True)
class AnalyzerStats:
    records: int = 0
    duplicates: int = 0
    scored: int = 0
    findings: dict[str, int] = field(default_factory=dict)
    evicted_sims: int = 0
    evicted_ranges: int = 0
    callbacks: int = 0  # subscribers calling a flagged Wangiri range back


class CallAnalyzer:
    """The three detectors over one stream of records (docs/calls.md)."""

    def __init__(
        self, settings: AnalyzerSettings | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.s = settings or AnalyzerSettings()
        # a record stamped in the future (a switch's clock, a typo) must not age everything
        # else out: the analyzer's "now" never runs more than SKEW ahead of this clock
        self.clock = clock
        self._limit = 0.0  # the analyzer's time goes no further than this (clock + SKEW)
        self.sims: dict[str, _Sim] = {}
        self.imeis: dict[str, _Imei] = {}
        self.ranges: dict[str, _Range] = {}
        self.spoofs: dict[str, _Spoof] = {}
        self.confirmed: set[str] = set()  # SIMs named by probes (or analysts): no second finding
        self.stats = AnalyzerStats()
        self._own = tuple(self.s.own_prefixes)
        self._premium = tuple(sorted(self.s.premium_prefixes, key=len, reverse=True))
        self._now = 0.0  # the latest record time seen
        # every SIM scored: (msisdn, record time, features); the tuner collects them
        self.observe: Callable[[str, float, tuple[float, ...]], None] | None = None

    # -- input ---------------------------------------------------------------------------------

    def feed(self, records: Iterable[Cdr]) -> list[CallFinding]:
        """Findings from `records` (already de-duplicated: gateway.calls.dedup)."""
        out: list[CallFinding] = []
        for r in records:
            found = self.one(r)
            if found is not None:
                out.append(found)
        return out

    def one(self, r: Cdr) -> CallFinding | None:
        self.stats.records += 1
        at = r.start
        if at > self._now:
            if at > self._limit:  # the clock is read again only when a record passes the limit
                self._limit = self.clock() + SKEW
            self._now = min(at, self._limit)
        t = r.record_type
        if t is RecordType.MOC:
            return self._moc(r, at)
        if t is RecordType.MTC or t is RecordType.TRANSIT:
            return self._incoming(r, at)
        if r.served_msisdn:  # SMS, data: only what the SIM does besides calls
            sim = self._sim(r.served_msisdn, at)
            sim.c[_DATA if t is RecordType.DATA else _SMS] += 1
            self._locate(sim, r, at)
        return None

    # -- SIM box -----------------------------------------------------------------------------

    def _sim(self, msisdn: str, at: float) -> _Sim:
        sim = self.sims.get(msisdn)
        if sim is None:
            if len(self.sims) >= self.s.max_sims:
                self._evict_sims()
            sim = self.sims[msisdn] = _Sim(at)
        if at > sim.last_seen:
            sim.last_seen = at
        sim.roll(at, self.s.window)
        return sim

    def _locate(self, sim: _Sim, r: Cdr, at: float) -> None:
        if not r.cell:
            return
        cell = ((r.lac & 0xFFFF) << 16) | (r.cell & 0xFFFF)
        if at >= sim.last_cell_at:
            sim.last_cell_at = at
            sim.cell = cell
        cells = sim.cells
        if len(cells) < _CELLS:
            cells.append(cell)
        else:
            cells[sim.ci] = cell
            sim.ci = (sim.ci + 1) % _CELLS

    def _moc(self, r: Cdr, at: float) -> CallFinding | None:
        msisdn = r.served_msisdn or r.calling
        if not msisdn:
            return None
        s = self.s
        sim = self._sim(msisdn, at)
        if r.cause in PARTIAL:  # a long call's intermediate record: the call counts once
            return None
        c = sim.c
        c[_OUT] += 1
        if r.served_imsi:
            sim.imsi = r.served_imsi
        if r.served_imei:
            self._device(sim, r.served_imei, sim.imsi or msisdn, at)
        self._locate(sim, r, at)
        if 0 <= at - sim.last_out_end <= s.gap:
            c[_B2B] += 1
        end = at + r.duration
        if end > sim.last_out_end:
            sim.last_out_end = end
        if (at + KZ_OFFSET) % 86400.0 < 21600.0:
            c[_NIGHT] += 1
        called = r.called
        if called:
            hd = _h(called)
            dests = sim.dests
            if hd not in dests:
                c[_NEW] += 1
            if len(dests) < _DESTS:
                dests.append(hd)
            else:
                dests[sim.di] = hd
                sim.di = (sim.di + 1) % _DESTS
            sim.nets |= 1 << self._network(called)
            if self.ranges:
                rng = self.ranges.get(called[:-2])
                if rng is not None and rng.alerted:  # a victim calling a Wangiri range back
                    rng.callbacks += 1
                    self.stats.callbacks += 1
        if not sim.first_at:
            sim.first_at = at
        if sim.alerted or msisdn in self.confirmed:
            return None
        out = sim.count(_OUT, at, s.window)
        if out < s.min_calls:
            return None
        self.stats.scored += 1
        x = self.features(sim, at)
        if self.observe is not None:
            self.observe(msisdn, at, x)
        score = s.model.score(x)
        sim.score = score
        if score < s.threshold:
            return None
        sim.alerted = True
        return self._finding(FindingKind.SIMBOX, msisdn, sim, x, score, at)

    def _device(self, sim: _Sim, full: str, who: str, at: float) -> None:
        imei = full[:14]  # without its check digit (an IMEISV's last digits differ)
        dev = self.imeis.get(imei)
        if dev is None:  # checked once, when first seen
            if not valid_imei(full):
                return  # unknown (zeros) or malformed: shared by unrelated phones, not a device
            dev = self.imeis[imei] = _Imei(at)
        sim.imei = imei
        hi = _h(imei)
        if hi not in sim.imeis and len(sim.imeis) < _IMEIS:
            sim.imeis.append(hi)
        dev.last_seen = max(dev.last_seen, at)
        w = self.s.window
        if at >= dev.slot + w:  # the next generation
            dev.prev = dev.imsis if at < dev.slot + 2 * w else array("I")
            dev.imsis = array("I")
            dev.slot = at
        hs = _h(who)
        if hs not in dev.imsis and len(dev.imsis) < _IMEI_IMSIS:
            dev.imsis.append(hs)

    def _network(self, number: str) -> int:
        """0 own, 1 another Kazakh mobile network, 2 a Kazakh small / VoIP range, 3 Kazakh
        fixed, 4 abroad (incl. Russia on +7), 5 anything else (short codes)."""
        if number.startswith(self._own):
            return 0
        if len(number) == 11 and number[0] == "7":
            d = number[1]
            if d == "7":
                if number[2] in "12":  # national 71xx / 72xx: the area codes of fixed lines
                    return 3
                return 1 if KZ_MOBILE_RE.fullmatch(number) else 2
            if d == "6":
                return 2
            return 4  # Russia shares +7
        if len(number) >= 10:
            return 4
        return 5

    def features(self, sim: _Sim, at: float) -> tuple[float, ...]:
        w = self.s.window
        out = max(sim.count(_OUT, at, w), 1.0)
        dev = self.imeis.get(sim.imei) if sim.imei else None
        cells = sim.cells
        nets = (sim.nets | (sim.nets >> 6)) & 0x3F
        return (
            math.log1p(out),
            sim.count(_IN, at, w) / out,
            math.log1p(sim.count(_SMS, at, w) + sim.count(_DATA, at, w)),
            min(1.0, sim.count(_NEW, at, w) / out),
            min(1.0, sim.count(_B2B, at, w) / out),
            min(1.0, sim.count(_NIGHT, at, w) / out),
            1.0 if len(cells) >= 4 and min(cells) == max(cells) else 0.0,
            math.log(dev.count()) if dev is not None and dev.imsis else 0.0,
            float(
                max(len(sim.imeis) + sum(1 for x in sim.imeis_prev if x not in sim.imeis) - 1, 0)
            ),
            float(bin(nets).count("1")),
        )

    def _finding(
        self, kind: FindingKind, msisdn: str, sim: _Sim, x: tuple[float, ...], score: float,
        at: float, extra: dict[str, object] | None = None,
    ) -> CallFinding:  # fmt: skip
        w = self.s.window
        dev = self.imeis.get(sim.imei) if sim.imei else None
        details: dict[str, object] = {
            "outgoing": round(sim.count(_OUT, at, w)),
            "incoming": round(sim.count(_IN, at, w)),
            "sms": round(sim.count(_SMS, at, w)),
            "data": round(sim.count(_DATA, at, w)),
            "new_numbers": round(sim.count(_NEW, at, w)),
            "cell": f"{sim.cell >> 16}-{sim.cell & 0xFFFF}" if sim.cell else "",
            "imsis_on_imei": dev.count() if dev is not None else 0,
            "tac": sim.imei[:8] if len(sim.imei) >= 14 else "",
            "window_s": w,
        }
        if extra:
            details |= extra
        self._count(kind)
        return CallFinding(
            kind, msisdn, round(score, 4), self._reasons(x, details),
            max(sim.first_at or at, at - w), at,
            msisdn=msisdn, imsi=sim.imsi, imei=sim.imei, details=details,
        )  # fmt: skip

    def _reasons(self, x: tuple[float, ...], d: dict[str, object]) -> tuple[Reason, ...]:
        """The features that pushed the score up most, said as an analyst reads them."""
        text = {
            "log_out": f"{d['outgoing']} outgoing calls in the window",
            "in_ratio": f"{d['incoming']} incoming calls against {d['outgoing']} outgoing",
            "sms_data": f"{d['sms']} SMS and {d['data']} data sessions",
            "new_dest": f"{d['new_numbers']} calls to numbers it had not called before",
            "b2b": "calls placed back to back",
            "night": "calls through the night",
            "one_cell": f"always in one cell ({d['cell']})",
            "imsis_on_imei": f"its IMEI (TAC {d['tac']}) carried {d['imsis_on_imei']} SIMs",
            "imeis": "seen in several devices",
            "networks": "calls spread across networks",
        }
        model = self.s.model
        parts = [
            (w * (v - m), name)
            for name, w, v, m in zip(FEATURES, model.weights, x, _REFERENCE, strict=True)
        ]
        parts.sort(reverse=True)
        top = [(p, name) for p, name in parts[:4] if p > 0]
        return tuple(Reason(f"calls.simbox.{name}", round(p, 3), text[name]) for p, name in top)

    def confirm(self, msisdn: str, at: float) -> list[CallFinding]:
        """A probe test (or an analyst) named `msisdn` a SIM-box SIM: the SIMs on its IMEI, and
        SIMs in its cell already scoring `sibling_threshold`, become suspects."""
        self.confirmed.add(msisdn)
        sim = self.sims.get(msisdn)
        if sim is None:
            return []
        out: list[CallFinding] = []
        dev_imsis = self.imeis[sim.imei].all() if sim.imei in self.imeis else set()
        for other_msisdn, other in self.sims.items():
            if other_msisdn == msisdn or other.alerted or other_msisdn in self.confirmed:
                continue
            via = ""
            same_device = other.imei and other.imei == sim.imei
            if same_device or (dev_imsis and _h(other.imsi or other_msisdn) in dev_imsis):
                via = "imei"
            elif sim.cell and other.cell == sim.cell and other.score >= self.s.sibling_threshold:
                via = "cell"
            if not via:
                continue
            other.alerted = True
            x = self.features(other, at)
            out.append(
                self._finding(
                    FindingKind.SIMBOX_SIBLING, other_msisdn, other, x,
                    max(other.score, self.s.sibling_threshold), at,
                    {"confirmed_sim": msisdn, "via": via},
                )
            )  # fmt: skip
        return out

    # -- incoming: Wangiri and spoofed CLI ---------------------------------------------------

    def _incoming(self, r: Cdr, at: float) -> CallFinding | None:
        victim = r.served_msisdn or r.called
        if r.record_type is RecordType.MTC and r.served_msisdn:
            sim = self._sim(r.served_msisdn, at)
            sim.c[_IN] += 1
            self._locate(sim, r, at)
        calling = r.calling
        if not calling or not victim:
            return None
        if calling[0] != "7" or len(calling) != 11 or calling[1] not in "67":  # foreign
            return self._wangiri(r, calling, victim, at)
        if (
            r.in_trunk
            and r.in_trunk.startswith(self.s.intl_trunks)
            and KZ_MOBILE_RE.fullmatch(calling)
        ):
            return self._spoofed(r, calling, victim, at)
        return None

    def _wangiri(self, r: Cdr, calling: str, victim: str, at: float) -> CallFinding | None:
        s = self.s
        key = calling[:-2]
        rng = self.ranges.get(key)
        if rng is None or at - rng.first_at > s.wangiri_window:  # counted within one window
            if rng is None and len(self.ranges) >= s.max_ranges:
                self._evict_ranges()
            alerted = rng.alerted if rng is not None else False
            rng = self.ranges[key] = _Range(at)
            rng.alerted = alerted
        rng.last_at = max(rng.last_at, at)
        if r.duration > s.ring_max:
            rng.answered += 1
            return None
        rng.rings += 1
        hv = _h(victim)
        if hv not in rng.victims and len(rng.victims) < 4 * s.wangiri_min_victims:
            rng.victims.append(hv)
        if calling not in rng.numbers and len(rng.numbers) < 8:
            rng.numbers.append(calling)
        victims = len(rng.victims)
        if rng.alerted or victims < s.wangiri_min_victims:
            return None
        if rng.answered > 0.2 * (rng.rings + rng.answered):
            return None  # people talk to it: a call centre abroad, not a ring-and-hang-up
        rng.alerted = True
        premium = next((p for p in self._premium if calling.startswith(p)), "")
        reasons = [
            Reason(
                "calls.wangiri.rings", 0.6,
                f"{rng.rings} calls shorter than {s.ring_max:g} s to {victims} subscribers "
                f"within {(at - rng.first_at) / 60:.0f} min",
            )
        ]  # fmt: skip
        if premium:
            reasons.append(
                Reason("calls.wangiri.premium_range", 0.3, f"from a high-cost range (+{premium})")
            )
        many = victims >= 2 * s.wangiri_min_victims
        score = min(1.0, 0.6 + (0.3 if premium else 0.0) + (0.1 if many else 0.0))
        self._count(FindingKind.WANGIRI)
        return CallFinding(
            FindingKind.WANGIRI, key + "xx", score, tuple(reasons), rng.first_at, at,
            details={
                "numbers": list(rng.numbers), "rings": rng.rings, "answered": rng.answered,
                "victims": victims, "premium_prefix": premium, "in_trunk": r.in_trunk,
            },
        )  # fmt: skip

    def _spoofed(self, r: Cdr, calling: str, victim: str, at: float) -> CallFinding | None:
        s = self.s
        sp = self.spoofs.get(calling)
        if sp is None or at - sp.first_at > s.spoof_window:  # counted within one window
            if sp is None and len(self.spoofs) >= s.max_ranges:
                self._evict_spoofs()
            alerted = sp.alerted if sp is not None else False
            sp = self.spoofs[calling] = _Spoof(at)
            sp.alerted = alerted
        sp.last_at = max(sp.last_at, at)
        sp.calls += 1
        hv = _h(victim)
        if hv not in sp.victims and len(sp.victims) < 4 * s.spoof_min_victims:
            sp.victims.append(hv)
        if r.in_trunk not in sp.trunks and len(sp.trunks) < 4:
            sp.trunks.append(r.in_trunk)
        if sp.alerted:
            return None
        owner = self.sims.get(calling)
        home = (
            owner is not None
            and owner.last_cell_at
            and abs(at - owner.last_cell_at) <= (s.presence_window)
        )
        reasons: list[Reason] = []
        score = 0.0
        if home and owner is not None:
            score = 0.9
            reasons.append(
                Reason(
                    "calls.spoofed_cli.subscriber_at_home", 0.9,
                    f"the number's subscriber was in cell {owner.cell >> 16}-{owner.cell & 0xFFFF} "
                    f"{abs(at - owner.last_cell_at) / 60:.0f} min from this call",
                )
            )  # fmt: skip
        victims = len(sp.victims)
        if victims >= s.spoof_min_victims:
            score = max(score, 0.75)
            reasons.append(
                Reason(
                    "calls.spoofed_cli.fan_out",
                    0.75,
                    f"{sp.calls} calls to {victims} subscribers from abroad presenting this number",
                )
            )
        if not reasons:
            return None
        sp.alerted = True
        reasons.insert(
            0,
            Reason(
                "calls.spoofed_cli.intl_trunk", 0.0,
                f"a Kazakh mobile caller id on international trunk {r.in_trunk}",
            ),
        )  # fmt: skip
        self._count(FindingKind.SPOOFED_CLI)
        return CallFinding(
            FindingKind.SPOOFED_CLI, calling, score, tuple(reasons), sp.first_at, at,
            msisdn="",
            details={
                "presented": calling, "in_trunks": list(sp.trunks), "calls": sp.calls,
                "victims": victims, "subscriber_seen_at_home": bool(home),
            },
        )  # fmt: skip

    # -- memory --------------------------------------------------------------------------------

    def expire(self, now: float | None = None) -> int:
        """Forget state idle for longer than its window (run every few thousand records).
        Returns how many entries went."""
        now = self._now if now is None else now
        s = self.s
        gone = 0
        for table, horizon, last in (
            (self.sims, 2 * s.window, "last_seen"),
            (self.imeis, 2 * s.window, "last_seen"),
            (self.ranges, max(s.wangiri_window, 6 * 3600.0), "last_at"),
            (self.spoofs, max(s.spoof_window, 6 * 3600.0), "last_at"),
        ):
            old = [k for k, v in table.items() if now - getattr(v, last) > horizon]
            for k in old:
                del table[k]
            gone += len(old)
        return gone

    def _evict_sims(self) -> None:
        """Past max_sims: the tenth idle longest goes (a sweep would not have freed enough)."""
        self.stats.evicted_sims += _evict_tenth(self.sims, lambda v: v.last_seen)

    def _evict_ranges(self) -> None:
        self.stats.evicted_ranges += _evict_tenth(self.ranges, lambda v: v.last_at)

    def _evict_spoofs(self) -> None:
        self.stats.evicted_ranges += _evict_tenth(self.spoofs, lambda v: v.last_at)

    def _count(self, kind: FindingKind) -> None:
        self.stats.findings[kind.value] = self.stats.findings.get(kind.value, 0) + 1

    @property
    def tracked(self) -> dict[str, int]:
        return {
            "sims": len(self.sims), "imeis": len(self.imeis), "ranges": len(self.ranges),
            "spoofed_numbers": len(self.spoofs),
        }  # fmt: skip


def _evict_tenth(table: dict[str, _V], when: Callable[[_V], float]) -> int:
    """Drop the tenth of `table` (at least one entry) seen least recently; returns how many."""
    n = max(1, len(table) // 10)
    for k, _ in heapq.nsmallest(n, table.items(), key=lambda kv: when(kv[1])):
        del table[k]
    return n


# The feature values of an ordinary subscriber: a reason is a feature above this, weighted.
_REFERENCE: tuple[float, ...] = (math.log1p(12), 0.8, math.log1p(10), 0.3, 0.05, 0.02, 0, 0, 0, 2)
