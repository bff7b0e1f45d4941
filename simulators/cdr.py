"""Synthetic call records (CDRs) of a Kcell-like operator, with fraud and its labels.

    python -m simulators.cdr --seed 2 --mix eval --days 3 --out DIR [--format csv|jsonl]
                             [--gzip] [--rows N] [--epoch] [--start 2025-03-03] [--split]

writes DIR/cdr.csv (or .jsonl, .gz) and DIR/labels.json. From Python:

    gen = CdrGenerator(seed=2, mix="eval", days=3)
    for cdr in gen:          # gateway.calls.cdr.Cdr, in time order, generated lazily
        ...
    gen.labels               # complete once the iteration ends

Populations (simulators/cdr_population.py has the behaviour, docs/calls-generator.md the figures
and their sources): normal subscribers; SIM-box SIMs (plain and stealth gateways); Wangiri
campaigns; spoofed-CLI campaigns; and legitimate look-alikes, labelled as such: call-centre
employees, taxi drivers, M2M devices, two-phone subscribers and roamers who call home.

The same seed, mix, days and start give the same records and labels, byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gzip
import io
import itertools
import json
import math
import queue
import sys
import threading
import time
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from random import Random
from typing import Any, TextIO

from gateway.calls.cdr import Cdr
from simulators.cdr_population import (
    BEELINE_PREFIXES,
    DAY,
    DEFAULT_START,
    FLAT,
    GATEWAY_TACS,
    HUMAN_WEEKDAY,
    HUMAN_WEEKEND,
    INTL_TRUNKS,
    LOCAL_OFFSET,
    M2M_TACS,
    MAX_MEMBERS,
    OFFICE_WEEKDAY,
    OWN_MCC_MNC,
    PHONE_TACS,
    REGIONS,
    ROAMING_COUNTRIES,
    TAXI_DAY,
    TELE2_PREFIXES,
    WANGIRI_RANGES,
    ActivityClock,
    Behaviour,
    Cell,
    Engine,
    Gateway,
    GatewayLabel,
    Labels,
    Life,
    Member,
    Mix,
    Port,
    SimboxSimLabel,
    SimboxVariant,
    Spoofer,
    SubscriberClass,
    Wangiri,
    WangiriLabel,
    Work,
    imei,
    mix64,
)

__all__ = [
    "FIELDS",
    "MIXES",
    "CdrGenerator",
    "Labels",
    "Mix",
    "SimboxVariant",
    "SubscriberClass",
    "main",
    "write_records",
]

FIELDS = tuple(f.name for f in dataclasses.fields(Cdr))
_REGION_CUM = list(itertools.accumulate(r[2] for r in REGIONS))

# --- mixes --------------------------------------------------------------------------------------

SIMBOX_A = SimboxVariant(
    name="A", ports=(8, 32), sims_per_port=2.0, rotation=2 * 3600.0, gap_median=60.0,
    answer_median=90.0, p_unanswered=0.35, aged_share=0.3, tacs=GATEWAY_TACS[:2],
)  # fmt: skip
SIMBOX_B = SimboxVariant(
    name="B", ports=(4, 64), sims_per_port=3.0, rotation=4 * 3600.0, gap_median=120.0,
    answer_median=120.0, p_unanswered=0.4, aged_share=0.6, tacs=GATEWAY_TACS[1:],
)  # fmt: skip
STEALTH_S1 = SimboxVariant(
    name="S1", ports=(4, 8), sims_per_port=2.0, rotation=3 * 3600.0, gap_median=240.0,
    answer_median=100.0, p_unanswered=0.3, aged_share=0.5, tacs=GATEWAY_TACS[:2], stealth=True,
    cells=2, night_pause=(1, 6), p_mtc=0.03, p_sms=0.03, p_repeat=0.2,
)  # fmt: skip
STEALTH_S2 = SimboxVariant(
    name="S2", ports=(4, 16), sims_per_port=3.0, rotation=6 * 3600.0, gap_median=400.0,
    answer_median=110.0, p_unanswered=0.3, aged_share=0.8, tacs=GATEWAY_TACS[2:], stealth=True,
    cells=2, night_pause=(0, 7), p_mtc=0.05, p_sms=0.05, p_repeat=0.3,
)  # fmt: skip

MIXES: dict[str, Mix] = {
    # to tune detectors on: SIM-box variant A and stealth S1
    "tune": Mix(
        name="tune",
        normal=3000,
        call_centre=6,
        taxi=6,
        m2m=12,
        two_phones=6,
        roamers=12,
        simbox=2,
        stealth=1,
        wangiri=2,
        spoofing=2,
        simbox_variant=SIMBOX_A,
        stealth_variant=STEALTH_S1,
    ),
    # to evaluate them on: other proportions, variant B (bigger banks, more aged SIMs, a TAC the
    # tune mix never shows) and stealth S2 (slower, more human-like)
    "eval": Mix(
        name="eval",
        normal=4000,
        call_centre=10,
        taxi=10,
        m2m=20,
        two_phones=10,
        roamers=20,
        simbox=3,
        stealth=2,
        wangiri=3,
        spoofing=3,
        simbox_variant=SIMBOX_B,
        stealth_variant=STEALTH_S2,
        wangiri_victims=(150, 600),
        spoof_calls=(150, 400),
    ),
    # throughput: mostly normal subscribers, about 1.6 million records a day
    "bench": Mix(
        name="bench",
        normal=100_000,
        call_centre=20,
        taxi=20,
        m2m=50,
        two_phones=20,
        roamers=50,
        simbox=2,
        stealth=1,
        wangiri=2,
        spoofing=2,
        simbox_variant=SIMBOX_A,
        stealth_variant=STEALTH_S1,
        wangiri_victims=(500, 2000),
        spoof_calls=(200, 500),
    ),
}


def behaviours(start: float) -> dict[str, Behaviour]:
    """Per-class behaviour (docs/calls-generator.md gives each figure's source or says
    "assumption"). Counts are per average day of the week."""
    human = ActivityClock(HUMAN_WEEKDAY, HUMAN_WEEKEND, start)
    office = ActivityClock(OFFICE_WEEKDAY, (0.0,) * 24, start)
    taxi = ActivityClock(TAXI_DAY, TAXI_DAY, start)
    flat = ActivityClock(FLAT, FLAT, start)
    return {
        "normal": Behaviour(human, moc=3.5, mtc=2.0, sms_mo=0.5, sms_mt=2.0, data=6.0),
        "work": Behaviour(  # call-centre shift: 110 calls made, 8 received per working day
            office,
            moc=110 * 5 / 7,
            mtc=8 * 5 / 7,
            sms_mo=0,
            sms_mt=0,
            data=0,
            call_median=45.0,
            call_sigma=0.9,
            p_unanswered=0.35,
        ),
        "taxi": Behaviour(
            taxi,
            moc=25.0,
            mtc=22.0,
            sms_mo=1.0,
            sms_mt=2.0,
            data=8.0,
            p_contact_out=0.25,
            p_contact_in=0.2,
            call_median=35.0,
            call_sigma=0.9,
            p_unanswered=0.15,
            data_median=1800.0,
        ),
        "m2m": Behaviour(
            flat,
            moc=0.05,
            mtc=0.02,
            sms_mo=4.0,
            sms_mt=1.0,
            data=60.0,
            call_median=20.0,
            data_median=20.0,
            data_sigma=0.8,
            p_burst=0.0,
        ),
    }


# --- building the world -------------------------------------------------------------------------


class _Builder:
    """Creates the members of a mix and schedules their actors on the engine."""

    ACTIVITY_SIGMA = 0.8  # heterogeneity of subscribers' activity (lognormal, mean 1)

    def __init__(self, seed: int, mix: Mix, start: float, days: float) -> None:
        self.rng = Random(seed)
        self.mix = mix
        self.start = start
        self.end = start + days * DAY
        self.days = days
        self.eng = Engine(self.rng, start, self.end, Labels(seed, mix.name, start, self.end))
        self.b = behaviours(start)
        self.n = 0
        self.eng.msisdn_offset = mix64(seed) % 10_000_000
        self.imsi_offset = mix64(seed + 1) % 10_000_000_000
        self.normals: list[Member] = []

    # identities ---------------------------------------------------------------------------------

    def member(self, cls: SubscriberClass, region: int | None = None, home: Cell | None = None,
               tacs: Sequence[str] = PHONE_TACS) -> Member:  # fmt: skip
        """A new SIM of ours. Numbers come from bijections of the member's index, so they are
        unique without a set of them to check."""
        rng, i = self.rng, self.n
        self.n += 1
        if i >= MAX_MEMBERS:
            raise ValueError(f"a mix may have at most {MAX_MEMBERS:,} subscribers")
        msisdn = self.eng.own_number(i)
        imsi = f"{OWN_MCC_MNC}{(i * 7_654_321_123 + self.imsi_offset) % 10_000_000_000:010d}"
        if region is None:
            region = min(bisect_right(_REGION_CUM, rng.random()), len(REGIONS) - 1)
        if home is None:
            home = self.cell(region)
        device = imei(tacs[int(rng.random() * len(tacs))], rng.randrange(1_000_000))
        m = Member(cls, msisdn, imsi, device, region, home, rng.getrandbits(64))
        m.n_contacts = min(150, 3 + int(9 * math.exp(0.6 * rng.gauss())))
        self.eng.labels.classes[msisdn] = cls.value
        return m

    def cell(self, region: int) -> Cell:
        cells = self.eng.cells[region]
        return cells[int(self.rng.random() * len(cells))]

    def level(self, sigma: float = ACTIVITY_SIGMA) -> float:
        return math.exp(sigma * self.rng.gauss() - sigma * sigma / 2)

    def live(self, m: Member, b: Behaviour, level: float, stop: float = math.inf) -> Life:
        life = Life(m, b, level, stop)
        self.eng.schedule(life.first(self.start, self.rng), life)
        return life

    def offnet(self) -> str:
        prefixes = BEELINE_PREFIXES + TELE2_PREFIXES
        return f"7{prefixes[int(self.rng.random() * 9)]}{self.rng.randrange(10_000_000):07d}"

    def local_time(self, day: int, hour: float) -> float:
        """Epoch seconds of `hour` (local) on the window's `day` (0 = the first)."""
        first = math.floor((self.start + LOCAL_OFFSET) / DAY)
        return (first + day) * DAY - LOCAL_OFFSET + hour * 3600.0

    def some_day(self) -> int:
        return self.rng.randrange(max(1, math.ceil(self.days)))

    # populations --------------------------------------------------------------------------------

    def build(self) -> Engine:
        mix, eng = self.mix, self.eng
        for _ in range(mix.normal):
            m = self.member(SubscriberClass.NORMAL)
            if self.rng.random() < 0.65:
                m.work = self.cell(m.region)
            self.live(m, self.b["normal"], self.level())
            self.normals.append(m)
        eng.humans.extend(self.normals)
        self.call_centres()
        self.taxis()
        self.m2m()
        self.two_phones()
        self.roamers()
        if not eng.humans:
            raise ValueError(f"mix {mix.name!r} has no subscribers for anyone to call")
        for k in range(mix.simbox):
            self.gateway(f"gw{k + 1}", mix.simbox_variant or SIMBOX_A)
        for k in range(mix.stealth):
            self.gateway(f"gw{mix.simbox + k + 1}", mix.stealth_variant or STEALTH_S1)
        for k in range(mix.wangiri):
            self.wangiri(f"wangiri{k + 1}")
        for k in range(mix.spoofing):
            self.spoofing(f"spoof{k + 1}")
        return eng

    def call_centres(self) -> None:
        n = self.mix.call_centre
        offices = [self.cell(0) for _ in range(1 + (n - 1) // 8)] if n else []
        for k in range(n):
            m = self.member(SubscriberClass.CALL_CENTRE, region=0)
            m.work = offices[k % len(offices)]
            m.wander = 0.03
            self.live(m, self.b["normal"], 0.7)
            work = Work(m, self.b["work"], m.work)
            clock = self.b["work"].clock
            self.eng.schedule(clock.next_after(self.start, work.rate, self.rng), work)
            self.eng.humans.append(m)

    def taxis(self) -> None:
        for _ in range(self.mix.taxi):
            m = self.member(SubscriberClass.TAXI)
            m.mobile = True
            self.live(m, self.b["taxi"], self.level(0.3))
            self.eng.humans.append(m)

    def m2m(self) -> None:
        server = ""
        for k in range(self.mix.m2m):
            if k % 10 == 0:
                server = self.offnet()  # one platform number per fleet of ten devices
            m = self.member(SubscriberClass.M2M, tacs=M2M_TACS)
            m.wander = 0.0
            m.peer = server
            self.live(m, self.b["m2m"], self.level(0.3))

    def two_phones(self) -> None:
        labels = self.eng.labels
        for k in range(self.mix.two_phones):
            m = self.member(SubscriberClass.TWO_PHONES)
            m.work = self.cell(m.region)
            if k % 2 == 0:  # one SIM moved between two phones
                m.imei2 = imei(PHONE_TACS[int(self.rng.random() * len(PHONE_TACS))],
                               self.rng.randrange(1_000_000))  # fmt: skip
                labels.two_phones[m.msisdn] = "two_imeis"
                self.live(m, self.b["normal"], self.level())
                self.eng.humans.append(m)
                continue
            # two SIMs of one person in one dual-SIM phone with a single IMEI
            m2 = self.member(SubscriberClass.TWO_PHONES, region=m.region, home=m.home)
            m2.work, m2.imei = m.work, m.imei
            m.wander = m2.wander = 0.03
            for sim, level in ((m, self.level()), (m2, 0.5 * self.level())):
                labels.two_phones[sim.msisdn] = "dual_sim"
                self.live(sim, self.b["normal"], level)
                self.eng.humans.append(sim)

    def roamers(self) -> None:
        span = self.end - self.start
        for _ in range(self.mix.roamers):
            m = self.member(SubscriberClass.ROAMER)
            if self.rng.random() < 0.65:
                m.work = self.cell(m.region)
            m.trip_start = self.start + span * (0.15 + 0.5 * self.rng.random())
            m.trip_end = m.trip_start + 2 * DAY * math.exp(0.5 * self.rng.gauss())
            m.family = self.normals[int(self.rng.random() * len(self.normals))]
            country = ROAMING_COUNTRIES[int(self.rng.random() * len(ROAMING_COUNTRIES))]
            self.eng.labels.trips[m.msisdn] = [[m.trip_start, m.trip_end, country]]
            level = self.level()
            life = self.live(m, self.b["normal"], level)
            life.p_home = min(1.0, 1.5 / (self.b["normal"].per_day * level))  # 1.5 calls a day
            self.eng.humans.append(m)

    # fraud --------------------------------------------------------------------------------------

    def gateway(self, name: str, v: SimboxVariant) -> None:
        rng, eng = self.rng, self.eng
        sizes = [s for s in (4, 8, 16, 32, 64) if v.ports[0] <= s <= v.ports[1]] or [v.ports[0]]
        n_ports = sizes[int(rng.random() * len(sizes))]
        region = 0 if rng.random() < 0.6 else 1 + int(rng.random() * (len(REGIONS) - 1))
        cells: list[Cell] = []
        while len(cells) < v.cells:
            c = self.cell(region)
            if c not in cells:
                cells.append(c)
        tac = v.tacs[int(rng.random() * len(v.tacs))]
        serial = rng.randrange(1_000_000 - n_ports)  # one batch of modules: consecutive serials
        gw = Gateway(name, v)
        ports = [Port(gw, imei(tac, serial + k), cells[k % len(cells)]) for k in range(n_ports)]
        cls = SubscriberClass.SIMBOX_STEALTH if v.stealth else SubscriberClass.SIMBOX
        span = self.end - self.start
        joined: list[tuple[float, Member]] = []
        for _ in range(max(n_ports, round(n_ports * v.sims_per_port))):
            sim = self.member(cls, region=region)
            aged = rng.random() < v.aged_share
            if aged:  # lived as a normal subscriber until put in the box
                when = self.start + span * (0.25 + 0.5 * rng.random())
                if rng.random() < 0.65:
                    sim.work = self.cell(region)
                self.live(sim, self.b["normal"], 0.6, stop=when)
            else:
                when = self.start - DAY * (1 + 29 * rng.random())
            joined.append((when, sim))
            eng.labels.simbox[sim.msisdn] = SimboxSimLabel(
                sim.msisdn, sim.imsi, name, v.stealth, when, aged
            )
        joined.sort(key=lambda js: js[0])
        gw.pending.extend(joined)
        gw.repeat = [eng.party(0.5) for _ in range(8)]
        gw.accomplices = [self.offnet() for _ in range(3)]
        eng.labels.gateways[name] = GatewayLabel(
            name,
            v.name,
            tac,
            n_ports,
            [list(c) for c in cells],
            [p.imei for p in ports],
            [sim.msisdn for _, sim in joined],
        )
        for p in ports:
            eng.schedule(self.start + 60.0 * rng.random(), p)

    def campaign_start(self, night: bool, hours: tuple[float, float]) -> float:
        """A start inside the window: at local night (00-04) or within `hours` of some day."""
        lo, hi = (0.0, 4.0) if night else hours
        t = self.local_time(self.some_day(), lo + (hi - lo) * self.rng.random())
        if not self.start <= t < self.end - 600:
            t = self.start + (self.end - self.start) * 0.8 * self.rng.random()
        return t

    def wangiri(self, name: str) -> None:
        rng, eng = self.rng, self.eng
        cc, nsn = WANGIRI_RANGES[int(rng.random() * len(WANGIRI_RANGES))]
        numbers = [
            f"{cc}{1 + int(9 * rng.random())}{rng.randrange(10 ** (nsn - 1)):0{nsn - 1}d}"
            for _ in range(1 + int(3 * rng.random()))
        ]
        lo, hi = self.mix.wangiri_victims
        n = min(lo + int((hi - lo + 1) * rng.random()), len(eng.humans) // 2)
        victims = sorted(rng.sample(eng.humans, n), key=lambda m: m.msisdn)  # dialled in order
        trunk = INTL_TRUNKS[int(rng.random() * 2)]
        for number in numbers:
            eng.labels.wangiri[number] = WangiriLabel(number, name, trunk)
        t = self.campaign_start(rng.random() < 0.6, (9.0, 21.0))
        eng.schedule(t, Wangiri(numbers, victims, trunk))

    def spoofing(self, _name: str) -> None:
        rng = self.rng
        clis: list[tuple[str, str]] = []
        for _ in range(3 + int(6 * rng.random())):
            if self.normals and rng.random() < 0.7:  # a subscriber of ours, at home meanwhile
                clis.append((self.normals[int(rng.random() * len(self.normals))].msisdn, "onnet"))
            else:
                clis.append((self.offnet(), "offnet"))
        lo, hi = self.mix.spoof_calls
        calls = lo + int((hi - lo + 1) * rng.random())
        t = self.campaign_start(False, (10.0, 17.0))
        until = t + calls * 40.0 * math.exp(0.32)  # mean gap between calls: 40 s x e^(0.8^2/2)
        self.eng.schedule(t, Spoofer(clis, until, INTL_TRUNKS[int(rng.random() * 2)]))


class CdrGenerator:
    """Iterable over the records of `mix` from `seed`, time-ordered and lazy; `labels` holds the
    truth about them (complete once an iteration ends). Each iteration starts afresh and yields
    the same records."""

    def __init__(self, seed: int, mix: Mix | str, days: float = 3.0,
                 start: float = DEFAULT_START) -> None:  # fmt: skip
        if isinstance(mix, str):
            if mix not in MIXES:
                raise ValueError(f"unknown mix {mix!r}: choose one of {', '.join(MIXES)}")
            mix = MIXES[mix]
        if not days > 0:
            raise ValueError(f"days must be positive, not {days}")
        self.seed = seed
        self.mix = mix
        self.days = days
        self.start = start
        self.labels = Labels(seed, mix.name, start, start + days * DAY)

    def __iter__(self) -> Iterator[Cdr]:
        eng = _Builder(self.seed, self.mix, self.start, self.days).build()
        self.labels = eng.labels
        return eng.run()


# --- writers ------------------------------------------------------------------------------------

_HM = [f"T{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
_SS = [f"{s:02d}Z" for s in range(60)]


class _Times:
    """ISO 8601 UTC ("2025-03-03T08:15:42Z") fast: the date is formatted once per day, the rest
    from tables (records come in time order, so the day rarely changes)."""

    def __init__(self) -> None:
        self._day = -1
        self._date = ""

    def iso(self, t: float) -> str:
        s = int(t)
        if s != t:
            return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
        d, r = divmod(s, 86_400)
        if d != self._day:
            self._day = d
            self._date = datetime.fromtimestamp(d * 86_400, UTC).strftime("%Y-%m-%d")
        m, sec = divmod(r, 60)
        return self._date + _HM[m] + _SS[sec]


def _number(x: float) -> float | int:
    return int(x) if x.is_integer() else x


class _GzipInBackground(io.RawIOBase):
    """A binary sink that gzips in a thread: zlib releases the GIL while it compresses, so
    compression runs on another core while the generator keeps this one. Chunks wait in a
    bounded queue (at most 8 chunks of 4 MB), so memory stays bounded."""

    def __init__(self, path: Path, compresslevel: int) -> None:
        super().__init__()
        self._gz = gzip.open(path, "wb", compresslevel=compresslevel)  # noqa: SIM115 (closed in close)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="gzip-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._gz.write(chunk)
                except BaseException as exc:  # reported to the writer at its next write / close
                    self._error = exc

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if self._error is not None:
            raise OSError(f"writing {self._gz.name}: {self._error}") from self._error
        chunk = bytes(b)
        self._queue.put(chunk)
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            self._queue.put(None)
            self._thread.join()
            self._gz.close()
            super().close()
            if self._error is not None:
                raise OSError(f"writing {self._gz.name}: {self._error}") from self._error


def open_text(path: Path, compresslevel: int = 1) -> TextIO:
    """A text file to write, gzip-compressed when the name ends in .gz (level 1, in a thread:
    the generator is the bottleneck, not the disk)."""
    if path.suffix == ".gz":
        sink = io.BufferedWriter(_GzipInBackground(path, compresslevel), buffer_size=4 << 20)
        return io.TextIOWrapper(sink, encoding="utf-8", newline="", write_through=False)
    return path.open("w", encoding="utf-8", newline="")


class RecordWriter:
    """Writes records as CSV (header = the Cdr field names in order) or JSON lines; `start` as
    ISO 8601 UTC with 'Z', or as epoch seconds with `epoch`; `duration` and `cause` as numbers.

    Fast path: each line is one f-string, checked in C-speed string operations for anything that
    would need quoting or escaping (a comma, quote, backslash or control character in a field);
    only such a line goes through the csv / json modules. Lines are written in batches."""

    BATCH = 4096
    _JSON_QUOTES = 2 * len(FIELDS) + 2 * 9  # keys, and the nine string fields besides start

    def __init__(self, out: TextIO, fmt: str = "csv", *, epoch: bool = False) -> None:
        if fmt not in ("csv", "jsonl"):
            raise ValueError(f"format must be csv or jsonl, not {fmt!r}")
        self.out = out
        self.fmt = fmt
        self.epoch = epoch
        self.count = 0
        self._times = _Times()
        self._last_t = math.nan
        self._last_s = ""
        self._buf: list[str] = []
        self._quotes = self._JSON_QUOTES + (0 if epoch else 2)
        if fmt == "csv":
            self._buf.append(",".join(FIELDS) + "\n")

    def _start(self, t: float) -> str:
        if t != self._last_t:
            self._last_t = t
            self._last_s = str(_number(t)) if self.epoch else self._times.iso(t)
        return self._last_s

    def line(self, c: Cdr) -> str:
        """The record as one line of the writer's format (with its newline)."""
        d = c.duration
        dur = int(d) if d.is_integer() else d
        if self.fmt == "csv":
            line = (
                f"{c.record_type},{self._start(c.start)},{dur},{c.served_imsi},{c.served_imei},"
                f"{c.served_msisdn},{c.calling},{c.called},{c.cause},{c.lac},{c.cell},"
                f"{c.in_trunk},{c.out_trunk},{c.record_id}"
            )
            if line.count(",") == 13 and '"' not in line and line.isprintable():
                return line + "\n"
            return self._slow_csv(c)
        start = self._start(c.start) if self.epoch else f'"{self._start(c.start)}"'
        line = (
            f'{{"record_type":"{c.record_type}","start":{start},"duration":{dur},'
            f'"served_imsi":"{c.served_imsi}","served_imei":"{c.served_imei}",'
            f'"served_msisdn":"{c.served_msisdn}","calling":"{c.calling}","called":"{c.called}",'
            f'"cause":{c.cause},"lac":{c.lac},"cell":{c.cell},"in_trunk":"{c.in_trunk}",'
            f'"out_trunk":"{c.out_trunk}","record_id":"{c.record_id}"}}'
        )
        if line.count('"') == self._quotes and "\\" not in line and line.isprintable():
            return line + "\n"
        return self._slow_json(c)

    def _slow_csv(self, c: Cdr) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([self._value(c, f) for f in FIELDS])
        return buf.getvalue()

    def _slow_json(self, c: Cdr) -> str:
        row = {f: self._value(c, f) for f in FIELDS}
        return json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n"

    def _value(self, c: Cdr, name: str) -> object:
        if name == "start":
            return _number(c.start) if self.epoch else self._start(c.start)
        if name == "duration":
            return _number(c.duration)
        if name == "record_type":
            return c.record_type.value
        return getattr(c, name)

    def write(self, c: Cdr) -> None:
        self._buf.append(self.line(c))
        self.count += 1
        if len(self._buf) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self.out.write("".join(self._buf))
            self._buf.clear()

    def write_all(self, records: Iterable[Cdr]) -> int:
        """Write every record (and flush); returns the count written so far."""
        if self.fmt == "csv":
            return self._write_all_csv(records)
        buf, line, batch = self._buf, self.line, self.BATCH
        for c in records:
            buf.append(line(c))
            self.count += 1
            if len(buf) >= batch:
                self.flush()
        self.flush()
        return self.count

    def _write_all_csv(self, records: Iterable[Cdr]) -> int:
        """`line` for CSV, inlined: this loop is a third of the time of a generated file."""
        buf, batch, n = self._buf, self.BATCH, 0
        last_t, last_s = self._last_t, self._last_s
        for c in records:
            t = c.start
            if t != last_t:
                last_t, last_s = t, self._start(t)
            d = c.duration
            line = (
                f"{c.record_type},{last_s},{int(d) if d.is_integer() else d},{c.served_imsi},"
                f"{c.served_imei},{c.served_msisdn},{c.calling},{c.called},{c.cause},{c.lac},"
                f"{c.cell},{c.in_trunk},{c.out_trunk},{c.record_id}\n"
            )
            if line.count(",") != 13 or '"' in line or not line[:-1].isprintable():
                line = self._slow_csv(c)
            buf.append(line)
            n += 1
            if len(buf) >= batch:
                self.flush()
        self.count += n
        self.flush()
        return self.count


def write_records(records: Iterable[Cdr], path: Path | str, fmt: str = "csv", *,
                  epoch: bool = False) -> int:  # fmt: skip
    """Write `records` to `path` (gzip when it ends in .gz); returns how many."""
    with open_text(Path(path)) as out:
        return RecordWriter(out, fmt, epoch=epoch).write_all(records)


def write_split(records: Iterable[Cdr], directory: Path, fmt: str = "csv", *, gz: bool = False,
                epoch: bool = False) -> dict[str, int]:  # fmt: skip
    """One file per recording entity (cdr-msc1.csv, ..., cdr-pgw1.csv), as switches deliver."""
    files: dict[str, TextIO] = {}
    writers: dict[str, RecordWriter] = {}
    try:
        for c in records:
            ent = c.record_id.partition(":")[0]
            w = writers.get(ent)
            if w is None:
                name = f"cdr-{ent}.{fmt}" + (".gz" if gz else "")
                files[ent] = open_text(directory / name)
                w = writers[ent] = RecordWriter(files[ent], fmt, epoch=epoch)
            w.write(c)
    finally:
        for ent, f in files.items():
            writers[ent].flush()
            f.close()
    return {ent: w.count for ent, w in sorted(writers.items())}


# --- command line -------------------------------------------------------------------------------


def _parse_start(text: str) -> float:
    """A date (local midnight, UTC+5) or an ISO 8601 time with its offset."""
    try:
        if len(text) == 10:
            return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() - LOCAL_OFFSET
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from exc
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give the time's offset (Z or +05:00): {text!r}")
    return moment.timestamp()


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> float:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m simulators.cdr",
        description="Write synthetic call records with SIM-box, Wangiri and spoofed-CLI fraud, "
        "and labels.json saying which is which.",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mix", choices=sorted(MIXES), default="tune")
    p.add_argument("--days", type=_positive(float), default=3.0)
    p.add_argument("--out", type=Path, required=True, help="directory to write into")
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    p.add_argument("--gzip", action="store_true", help="compress the records (.gz)")
    p.add_argument("--rows", type=_positive(int), help="stop after this many records")
    p.add_argument("--epoch", action="store_true", help="start as epoch seconds, not ISO 8601")
    p.add_argument(
        "--start",
        type=_parse_start,
        default=DEFAULT_START,
        help="first day (local midnight, UTC+5) or ISO time; default 2025-03-03",
    )
    p.add_argument("--split", action="store_true", help="one file per MSC / PGW")
    args = p.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    gen = CdrGenerator(args.seed, args.mix, args.days, args.start)
    records: Iterable[Cdr] = gen
    if args.rows:
        records = islice(gen, args.rows)
    began = time.perf_counter()
    if args.split:
        counts = write_split(records, args.out, args.format, gz=args.gzip, epoch=args.epoch)
        rows, target = sum(counts.values()), f"{args.out}/cdr-*.{args.format}"
    else:
        path = args.out / (f"cdr.{args.format}" + (".gz" if args.gzip else ""))
        rows, target = write_records(records, path, args.format, epoch=args.epoch), str(path)
    took = time.perf_counter() - began
    (args.out / "labels.json").write_text(gen.labels.to_json(), encoding="utf-8")
    rate = rows / took if took > 0 else float("inf")
    print(f"{rows:,} records in {took:.1f} s ({rate:,.0f} rows/s) -> {target}", file=sys.stderr)
    print(f"labels -> {args.out / 'labels.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
