"""Traffic scenarios: TOML files describing streams of SMS, turned into labelled submit_sm PDUs.

A scenario is a list of *streams* (normal subscriber chatter, a smishing campaign, a spoofed bank
sender, a fan-out, ...). Each stream carries the `label` the gateway will later be scored against.
The file format is documented key by key in `config/scenarios/README.md`; in short:

    name = "demo"
    seed = 42                 # optional: the same seed gives the same messages, byte for byte
    messages = 5000           # length of one pass; needed when a stream uses `weight`

    [values]                  # optional placeholder values shared by every stream
    url = ["https://kaspi-bank.kz-secure.com/login"]

    [[streams]]
    name = "kaspi-smishing"
    label = "smishing"        # normal | smishing | spoof | fanout | multipart | greyroute
    count = 300               # exactly 300 per pass (or: weight = 2.5, a share of the rest)
    source = "+7705#######"   # "#" = a random digit; or an alphanumeric id such as "KASPI"
    destination = "+7701#######"
    texts = ["Ваша карта заблокирована, перейдите по ссылке {url}"]

Messages are produced in *passes*: in one pass every stream with a `count` yields exactly that
many messages and the streams with a `weight` share the rest of `messages` in proportion, all
shuffled together. Passes repeat for as long as the caller iterates, so a run can be cut at any
count (a prefix of a shuffled pass is a proportional sample) or go on for a duration.

Randomness comes from `random.Random` seeded with strings derived from the scenario seed (one
generator per stream, one for the order), so adding a stream does not change the others' texts.
Loading never half-works: every problem raises `ScenarioError` naming the key and the reason.
"""

from __future__ import annotations

import math
import random
import string
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from smsc.constants import EsmClass, Tag
from smsc.pdu import SubmitSm, Tlv
from smsc.text import alphabet_of, choose_coding, encode_text, split_for_sms

__all__ = [
    "BUILTIN_PLACEHOLDERS",
    "DEFAULT_DESTINATIONS",
    "LABELS",
    "GeneratedMessage",
    "Scenario",
    "ScenarioError",
    "Stream",
    "derive_ton_npi",
    "load_scenario",
    "loads_scenario",
    "parse_scenario",
]

LABELS: Final = ("normal", "smishing", "spoof", "fanout", "multipart", "greyroute")

#: Destinations when a stream gives none: Kazakh mobile ranges (Kcell, Beeline, Tele2/Altel).
DEFAULT_DESTINATIONS: Final = tuple(
    f"+7{code}#######"
    for code in ("700", "701", "702", "705", "707", "708", "747", "771", "775", "776", "777", "778")
)

# TON / NPI values (SMPP 3.4 §5.2.5, §5.2.6).
TON_UNKNOWN, TON_INTERNATIONAL, TON_ALPHANUMERIC = 0, 1, 5
NPI_UNKNOWN, NPI_ISDN = 0, 1

#: GSM TS 23.040 §9.1.2.5: an alphanumeric address holds at most 11 characters.
MAX_ALPHANUMERIC = 11
#: SMPP 3.4 §4.4.1: source_addr / destination_addr are C-Octet Strings of at most 21 octets.
MAX_ADDRESS = 20

_TOP_KEYS: Final = frozenset({"name", "description", "seed", "messages", "values", "streams"})
_STREAM_KEYS: Final = frozenset(
    {
        "name", "label", "weight", "count", "source", "source_ton", "source_npi", "senders",
        "destination", "dest_ton", "dest_npi", "destinations", "texts", "values",
        "data_coding", "sar", "payload", "ref16", "registered_delivery", "service_type",
    }
)  # fmt: skip


class ScenarioError(ValueError):
    """A scenario file that cannot be used. `key` is the dotted key path ("streams[2].texts[0]"),
    `reason` says what is wrong with it, `origin` is the file (or "<scenario>")."""

    def __init__(self, key: str, reason: str, *, origin: str = "<scenario>") -> None:
        where = f"{origin}: {key}" if key else origin
        super().__init__(f"{where}: {reason}")
        self.key = key
        self.reason = reason
        self.origin = origin


# --------------------------------------------------------------------------------------------
# Placeholders

_FIRST_NAMES: Final = (
    "Айгерим", "Ержан", "Асель", "Нурлан", "Дана", "Бауыржан", "Алия", "Тимур", "Мадина",
    "Дмитрий", "Ольга", "Сергей", "Жанар", "Данияр", "Гүлнар", "Арман",
)  # fmt: skip

# Look-alike domains used by the built-in {url}; a scenario can give its own in `values.url`.
_LOOKALIKE_URLS: Final = (
    "https://kaspi-bank.kz-secure.com",
    "https://halyk-bonus.top",
    "https://egov-kz.online",
    "https://post-kz.delivery",
    "http://kaspi.kz-pay.info",
    "https://homebank-halyk.site",
)
_TOKEN_CHARS: Final = string.ascii_lowercase + string.digits


def _kz_mobile(rng: random.Random, grouped: bool) -> str:
    code = rng.choice(DEFAULT_DESTINATIONS)[2:5]
    digits = "".join(rng.choice(string.digits) for _ in range(7))
    if grouped:
        return f"+7 {code} {digits[:3]} {digits[3:5]} {digits[5:]}"
    return f"+7{code}{digits}"


def _amount(rng: random.Random) -> str:
    # Tenge amounts as people write them: "125 000".
    value = rng.choice((rng.randint(10, 99) * 100, rng.randint(10, 500) * 1000))
    return f"{value:,}".replace(",", " ")


def _token(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(_TOKEN_CHARS) for _ in range(size))


BUILTIN_PLACEHOLDERS: Final[dict[str, Callable[[random.Random], str]]] = {
    "code": lambda r: f"{r.randrange(10_000):04d}",
    "code6": lambda r: f"{r.randrange(1_000_000):06d}",
    "amount": _amount,
    "url": lambda r: f"{r.choice(_LOOKALIKE_URLS)}/{_token(r, 6)}",
    "phone": lambda r: _kz_mobile(r, grouped=True),
    "order": lambda r: f"{r.randrange(10_000_000, 100_000_000)}",
    "time": lambda r: f"{r.randrange(7, 23):02d}:{r.choice((0, 15, 30, 45)):02d}",
    "date": lambda r: f"{r.randint(1, 28):02d}.{r.randint(1, 12):02d}",
    "name": lambda r: r.choice(_FIRST_NAMES),
}


# --------------------------------------------------------------------------------------------
# Address patterns


def derive_ton_npi(address: str) -> tuple[int, int, str]:
    """(TON, NPI, address as sent) for a sender or recipient written the human way.

    "+7701..." is international E.164: TON 1, NPI 1 (ISDN), the "+" stripped. Digits without a
    "+" ("1414", "87011234567") are left to the SMSC: TON 0, NPI 1. Anything else is an
    alphanumeric sender id ("KASPI", "Halyk Bank"): TON 5, NPI 0 (SMPP 3.4 §5.2.5-6).
    The "#" of a pattern counts as a digit.
    """
    body = address[1:] if address.startswith("+") else address
    numeric = body != "" and all(c.isdigit() or c == "#" for c in body)
    if numeric and address.startswith("+"):
        return TON_INTERNATIONAL, NPI_ISDN, body
    if numeric:
        return TON_UNKNOWN, NPI_ISDN, body
    return TON_ALPHANUMERIC, NPI_UNKNOWN, address


def _expand(pattern: str, rng: random.Random) -> str:
    if "#" not in pattern:
        return pattern
    return "".join(rng.choice(string.digits) if c == "#" else c for c in pattern)


def _capacity(patterns: Sequence[str]) -> int:
    return sum(10 ** p.count("#") for p in patterns)


def _enumerate(pattern: str) -> Iterator[str]:
    holes = pattern.count("#")
    pieces = pattern.split("#")
    for n in range(10**holes):
        digits = f"{n:0{holes}d}" if holes else ""
        yield "".join(p + (digits[i] if i < holes else "") for i, p in enumerate(pieces))


def _draw_distinct(patterns: Sequence[str], n: int, rng: random.Random) -> list[str]:
    """n distinct expansions of the patterns, in random order."""
    capacity = _capacity(patterns)
    if capacity <= 100_000 and n > capacity // 2:  # dense: enumerate, then sample
        every = list(dict.fromkeys(a for p in patterns for a in _enumerate(p)))
        if len(every) < n:
            raise ValueError(f"only {len(every)} distinct addresses match {list(patterns)}")
        return rng.sample(every, n)
    seen: dict[str, None] = {}
    tries = 0
    while len(seen) < n:
        tries += 1
        if tries > 50 * n + 1000:  # overlapping patterns overstated the capacity
            raise ValueError(f"could not draw {n} distinct addresses from {list(patterns)}")
        seen.setdefault(_expand(rng.choice(patterns), rng))
    return list(seen)


# --------------------------------------------------------------------------------------------
# The validated model


@dataclass(frozen=True, slots=True)
class Stream:
    """One validated stream; see `config/scenarios/README.md` for the meaning of each field."""

    name: str
    label: str
    weight: float | None
    count: int | None
    sources: tuple[str, ...]  # patterns, "+" already stripped
    source_ton: int
    source_npi: int
    senders: int | None  # distinct senders for the whole stream; None: a fresh one per message
    destinations_patterns: tuple[str, ...]
    dest_ton: int
    dest_npi: int
    destinations: int | None  # fan-out: this many distinct recipients, cycled through
    texts: tuple[str, ...]
    fields: tuple[tuple[str, ...], ...]  # placeholder names used by each text
    values: Mapping[str, tuple[str, ...]] = field(hash=False)
    data_coding: int | None = None
    sar: bool = False
    payload: bool = False
    ref16: bool = False
    registered_delivery: int = 0
    service_type: str = ""


@dataclass(slots=True)
class GeneratedMessage:
    """One message of a run: the truth (`label`, `stream`), what was written and its PDUs.

    `pdus` holds one SubmitSm, or one per part of a concatenated message (UDH or sar_* TLVs),
    or one with a message_payload TLV. `index` is the message's position in the run."""

    label: str
    stream: str
    source: str
    source_ton: int
    source_npi: int
    destination: str
    text: str
    pdus: list[SubmitSm]
    dest_ton: int = TON_INTERNATIONAL
    dest_npi: int = NPI_ISDN
    data_coding: int = 0
    index: int = 0


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    streams: tuple[Stream, ...]
    pass_length: int  # messages in one pass
    seed: int | None = None
    description: str = ""
    origin: str = "<scenario>"
    _shares: tuple[int, ...] = field(default=(), repr=False)  # messages per stream per pass

    def effective_seed(self, seed: int | None = None) -> int:
        """The seed a run uses: the one given, else the file's, else a fresh random one."""
        if seed is not None:
            return seed
        if self.seed is not None:
            return self.seed
        return random.SystemRandom().randrange(2**32)

    def shares(self) -> dict[str, int]:
        """Messages each stream contributes to one pass."""
        return {s.name: n for s, n in zip(self.streams, self._shares, strict=True)}

    def generate(self, seed: int | None = None) -> Iterator[GeneratedMessage]:
        """Messages forever, pass after pass; cut it with itertools.islice or a duration.

        Pass the same seed (or rely on the file's `seed`) for a reproducible run."""
        return _Generator(self, self.effective_seed(seed)).messages()

    def messages(self, count: int | None = None, seed: int | None = None) -> list[GeneratedMessage]:
        """The first `count` messages (default: one pass) as a list."""
        it = self.generate(seed)
        return [next(it) for _ in range(self.pass_length if count is None else count)]


# --------------------------------------------------------------------------------------------
# Generation


class _StreamState:
    def __init__(self, stream: Stream, rng: random.Random, shared_ref: list[int]) -> None:
        self.stream = stream
        self.rng = rng
        self.sent = 0
        self._ref = shared_ref
        self.sender_pool = self._pool(stream.sources, stream.senders, "senders")
        self.dest_pool = self._pool(
            stream.destinations_patterns, stream.destinations, "destinations"
        )

    def _pool(self, patterns: Sequence[str], n: int | None, key: str) -> list[str] | None:
        if n is None:
            return None
        try:
            return _draw_distinct(patterns, n, self.rng)
        except ValueError as exc:  # patterns overlap: fewer distinct addresses than counted
            raise ScenarioError(f"streams.{self.stream.name}.{key}", str(exc)) from None

    def next_ref(self) -> int:
        self._ref[0] = (self._ref[0] + 1) & 0xFFFF
        return self._ref[0]

    def make(self, index: int) -> GeneratedMessage:
        s, rng = self.stream, self.rng
        if self.sender_pool is not None:
            source = rng.choice(self.sender_pool)
        else:
            source = _expand(rng.choice(s.sources), rng)
        if self.dest_pool is not None:
            dest = self.dest_pool[self.sent % len(self.dest_pool)]
        else:
            dest = _expand(rng.choice(s.destinations_patterns), rng)
        which = rng.randrange(len(s.texts))
        text = _render(s.texts[which], s.fields[which], s.values, rng)
        self.sent += 1
        coding = int(choose_coding(text)) if s.data_coding is None else s.data_coding
        pdus = _build_pdus(s, source, dest, text, coding, self.next_ref)
        return GeneratedMessage(
            label=s.label,
            stream=s.name,
            source=source,
            source_ton=s.source_ton,
            source_npi=s.source_npi,
            destination=dest,
            text=text,
            pdus=pdus,
            dest_ton=s.dest_ton,
            dest_npi=s.dest_npi,
            data_coding=coding,
            index=index,
        )


class _Generator:
    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.order_rng = random.Random(f"{seed}/order")
        ref = [random.Random(f"{seed}/ref").randrange(0x10000)]
        self.states = [
            _StreamState(s, random.Random(f"{seed}/stream/{s.name}"), ref) for s in scenario.streams
        ]
        self.template = [i for i, n in enumerate(scenario._shares) for _ in range(n)]

    def messages(self) -> Iterator[GeneratedMessage]:
        index = 0
        while True:
            order = list(self.template)
            self.order_rng.shuffle(order)
            for i in order:
                yield self.states[i].make(index)
                index += 1


def _render(
    text: str, names: tuple[str, ...], values: Mapping[str, tuple[str, ...]], rng: random.Random
) -> str:
    filled: dict[str, str] = {}
    for name in names:  # each placeholder once per message: "{code}" twice is the same code
        given = values.get(name)
        filled[name] = rng.choice(given) if given else BUILTIN_PLACEHOLDERS[name](rng)
    return text.format_map(filled)


def _build_pdus(
    s: Stream, source: str, dest: str, text: str, coding: int, next_ref: Callable[[], int]
) -> list[SubmitSm]:
    def pdu(body: bytes, esm_class: int = 0, tlvs: list[Tlv] | None = None) -> SubmitSm:
        return SubmitSm(
            service_type=s.service_type,
            source_addr_ton=s.source_ton,
            source_addr_npi=s.source_npi,
            source_addr=source,
            dest_addr_ton=s.dest_ton,
            dest_addr_npi=s.dest_npi,
            destination_addr=dest,
            esm_class=esm_class,
            registered_delivery=s.registered_delivery,
            data_coding=coding,
            short_message=body,
            tlvs=tlvs or [],
        )

    if s.payload:  # the whole text in message_payload, short_message empty (SMPP 3.4 §5.3.2.32)
        return [pdu(b"", tlvs=[Tlv.of(Tag.MESSAGE_PAYLOAD, encode_text(text, coding))])]
    _, bodies = split_for_sms(text, ref=0, data_coding=coding)
    if len(bodies) == 1:
        return [pdu(bodies[0])]
    ref = next_ref()
    if s.sar:  # same split, the UDH replaced by sar_* TLVs (SMPP 3.4 §5.3.2.22-24)
        total = len(bodies)
        return [
            pdu(
                body[body[0] + 1 :],
                tlvs=[
                    Tlv.of(Tag.SAR_MSG_REF_NUM, ref),
                    Tlv.of(Tag.SAR_TOTAL_SEGMENTS, total),
                    Tlv.of(Tag.SAR_SEGMENT_SEQNUM, seq),
                ],
            )
            for seq, body in enumerate(bodies, 1)
        ]
    _, bodies = split_for_sms(
        text, ref=ref if s.ref16 else ref & 0xFF, data_coding=coding, ref16=s.ref16
    )
    return [pdu(body, EsmClass.UDHI) for body in bodies]


# --------------------------------------------------------------------------------------------
# Loading and validation


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (TOML). Raises ScenarioError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError("", f"cannot read: {exc.strerror or exc}", origin=str(p)) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError("", f"not UTF-8: {exc}", origin=str(p)) from None
    scenario = loads_scenario(text, origin=str(p))
    if scenario.name == "":
        scenario = _with_name(scenario, p.stem)
    return scenario


def loads_scenario(text: str, *, origin: str = "<scenario>") -> Scenario:
    """Validate a scenario given as TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError("", f"invalid TOML: {exc}", origin=origin) from None
    return parse_scenario(data, origin=origin)


def _with_name(scenario: Scenario, name: str) -> Scenario:
    return Scenario(
        name=name,
        streams=scenario.streams,
        pass_length=scenario.pass_length,
        seed=scenario.seed,
        description=scenario.description,
        origin=scenario.origin,
        _shares=scenario._shares,
    )


class _Checker:
    """Typed reads of a TOML table that fail with the key path and the reason."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, key: str, reason: str) -> ScenarioError:
        return ScenarioError(key, reason, origin=self.origin)

    def keys(self, table: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                raise self.fail(f"{prefix}{key}", f"unknown key (known keys: {hint})")

    def string(self, value: object, key: str, *, empty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, not {_kind(value)}")
        if not empty and value.strip() == "":
            raise self.fail(key, "must not be empty")
        return value

    def integer(self, value: object, key: str, low: int, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, not {_kind(value)}")
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f">= {low}"
            raise self.fail(key, f"{value} is out of range ({bounds})")
        return value

    def boolean(self, value: object, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {_kind(value)}")
        return value

    def strings(self, value: object, key: str) -> tuple[str, ...]:
        """A string or a non-empty list of strings."""
        if isinstance(value, str):
            return (self.string(value, key),)
        if not isinstance(value, list) or not value:
            raise self.fail(key, f"must be a string or a non-empty list of strings, not "
                            f"{_kind(value)}")  # fmt: skip
        return tuple(self.string(v, f"{key}[{i}]") for i, v in enumerate(value))

    def values(self, value: object, key: str) -> dict[str, tuple[str, ...]]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table of placeholder = [values], not {_kind(value)}")
        out: dict[str, tuple[str, ...]] = {}
        for name, items in value.items():
            if not name.isidentifier():
                raise self.fail(f"{key}.{name}", "placeholder names are identifiers (a-z, 0-9, _)")
            out[name] = self.strings(items, f"{key}.{name}")
        return out


def _kind(value: object) -> str:
    return {
        str: "a string", int: "an integer", float: "a number", bool: "a boolean",
        list: "a list", dict: "a table",
    }.get(type(value), type(value).__name__)  # fmt: skip


def parse_scenario(data: Mapping[str, Any], *, origin: str = "<scenario>") -> Scenario:
    """Validate an already parsed scenario (a dict as tomllib returns)."""
    c = _Checker(origin)
    c.keys(data, _TOP_KEYS, "")
    name = c.string(data["name"], "name") if "name" in data else ""
    description = c.string(data.get("description", ""), "description", empty=True)
    seed = c.integer(data["seed"], "seed", 0) if "seed" in data else None
    shared = c.values(data["values"], "values") if "values" in data else {}
    raw_streams = data.get("streams")
    if raw_streams is None:
        raise c.fail("streams", "missing: a scenario needs at least one [[streams]] table")
    if not isinstance(raw_streams, list) or not raw_streams:
        raise c.fail("streams", "must be a non-empty array of tables ([[streams]])")
    streams: list[Stream] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_streams):
        key = f"streams[{i}]"
        if not isinstance(raw, dict):
            raise c.fail(key, f"must be a table, not {_kind(raw)}")
        stream = _parse_stream(c, raw, key, shared)
        if stream.name in seen:
            raise c.fail(f"{key}.name", f"duplicate stream name {stream.name!r}")
        seen.add(stream.name)
        streams.append(stream)
    pass_length, shares = _allocate(c, data, streams)
    return Scenario(
        name=name,
        streams=tuple(streams),
        pass_length=pass_length,
        seed=seed,
        description=description,
        origin=origin,
        _shares=shares,
    )


def _allocate(
    c: _Checker, data: Mapping[str, Any], streams: list[Stream]
) -> tuple[int, tuple[int, ...]]:
    """Messages per stream in one pass: counts as given, the rest split by weight."""
    counted = sum(s.count or 0 for s in streams)
    weighted = [s for s in streams if s.weight is not None]
    if "messages" in data:
        total = c.integer(data["messages"], "messages", 1)
    elif weighted:
        raise c.fail(
            "messages",
            f"missing: stream {weighted[0].name!r} has a weight, and weights are shares of "
            "`messages` (the length of one pass)",
        )
    else:
        total = counted
    if total < counted:
        raise c.fail("messages", f"{total} is less than the streams' counts ({counted})")
    if total > counted and not weighted:
        raise c.fail(
            "messages",
            f"{total} exceeds the streams' counts ({counted}) and no stream has a weight to "
            "fill the rest",
        )
    if total == 0:
        raise c.fail("streams", "every count is 0: a pass would hold no message")
    rest = total - counted
    weight_sum = sum(s.weight or 0.0 for s in weighted)
    exact = {s.name: rest * (s.weight or 0.0) / weight_sum for s in weighted}
    share = {name: math.floor(x) for name, x in exact.items()}
    # largest remainder, ties in file order, so the shares add up to `rest` exactly
    left = rest - sum(share.values())
    by_remainder = sorted(exact, key=lambda n: -(exact[n] - share[n]))
    for name in by_remainder[:left]:
        share[name] += 1
    return total, tuple(s.count if s.count is not None else share[s.name] for s in streams)


def _parse_stream(
    c: _Checker, raw: Mapping[str, Any], key: str, shared: Mapping[str, tuple[str, ...]]
) -> Stream:
    c.keys(raw, _STREAM_KEYS, f"{key}.")
    k = key + "."
    for required in ("name", "label", "source", "texts"):
        if required not in raw:
            raise c.fail(f"{k}{required}", "missing (required)")
    name = c.string(raw["name"], f"{k}name")
    label = c.string(raw["label"], f"{k}label")
    if label not in LABELS:
        raise c.fail(f"{k}label", f"{label!r} is not one of {', '.join(LABELS)}")

    destinations = (
        c.integer(raw["destinations"], f"{k}destinations", 1) if "destinations" in raw else None
    )
    weight, count = _weight_count(c, raw, k, destinations)

    (source_ton, source_npi, sources), (dest_ton, dest_npi, dests) = _stream_addresses(
        c, raw, k, destinations
    )
    senders = _senders(c, raw, k, destinations, sources)

    values = dict(shared)
    if "values" in raw:
        values.update(c.values(raw["values"], f"{k}values"))
    texts = c.strings(raw["texts"], f"{k}texts")
    fields = tuple(_placeholders(c, t, f"{k}texts[{j}]", values) for j, t in enumerate(texts))

    data_coding, sar, payload, ref16, service_type = _encoding_options(c, raw, k)

    stream = Stream(
        name=name,
        label=label,
        weight=weight,
        count=count,
        sources=sources,
        source_ton=source_ton,
        source_npi=source_npi,
        senders=senders,
        destinations_patterns=dests,
        dest_ton=dest_ton,
        dest_npi=dest_npi,
        destinations=destinations,
        texts=texts,
        fields=fields,
        values=values,
        data_coding=data_coding,
        sar=sar,
        payload=payload,
        ref16=ref16,
        registered_delivery=c.integer(
            raw.get("registered_delivery", 0), f"{k}registered_delivery", 0, 255
        ),
        service_type=service_type,
    )
    _check_encodable(c, stream, k)
    return stream


def _stream_addresses(
    c: _Checker, raw: Mapping[str, Any], k: str, destinations: int | None
) -> tuple[tuple[int, int, tuple[str, ...]], tuple[int, int, tuple[str, ...]]]:
    """A stream's (ton, npi, patterns) for its sources and its destinations, checked."""
    source = _addresses(c, raw, k, "source", "source_ton", "source_npi", raw["source"])
    dest = _addresses(
        c, raw, k, "destination", "dest_ton", "dest_npi",
        raw.get("destination", list(DEFAULT_DESTINATIONS)),
    )  # fmt: skip
    dests = dest[2]
    if any(not _is_numeric(d) for d in dests):
        raise c.fail(f"{k}destination", "recipients are numbers: digits and '#' after '+'")
    if destinations is not None and destinations > _capacity(dests):
        raise c.fail(
            f"{k}destinations",
            f"{destinations} distinct recipients cannot come from {list(dests)} "
            f"({_capacity(dests)} possible)",
        )
    return source, dest


def _senders(
    c: _Checker,
    raw: Mapping[str, Any],
    k: str,
    destinations: int | None,
    sources: tuple[str, ...],
) -> int | None:
    """How many distinct senders a stream uses (None: any), checked against its patterns."""
    senders = c.integer(raw["senders"], f"{k}senders", 1) if "senders" in raw else None
    if senders is None and destinations is not None:
        senders = 1  # a fan-out is one sender writing to many
    if senders is not None and senders > _capacity(sources):
        raise c.fail(
            f"{k}senders",
            f"{senders} distinct senders cannot come from {list(sources)} "
            f"({_capacity(sources)} possible)",
        )
    return senders


def _encoding_options(
    c: _Checker, raw: Mapping[str, Any], k: str
) -> tuple[int | None, bool, bool, bool, str]:
    """A stream's data_coding, sar, payload, ref16 and service_type, checked together."""
    data_coding = (
        c.integer(raw["data_coding"], f"{k}data_coding", 0, 255) if "data_coding" in raw else None
    )
    sar = c.boolean(raw.get("sar", False), f"{k}sar")
    payload = c.boolean(raw.get("payload", False), f"{k}payload")
    ref16 = c.boolean(raw.get("ref16", False), f"{k}ref16")
    if sar and payload:
        raise c.fail(f"{k}payload", "sar and payload are two ways to send a long text: pick one")
    if ref16 and (sar or payload):
        raise c.fail(f"{k}ref16", "ref16 selects the UDH reference size; it needs a UDH split")
    service_type = c.string(raw.get("service_type", ""), f"{k}service_type", empty=True)
    if len(service_type) > 5:
        raise c.fail(f"{k}service_type", "at most 5 characters (SMPP 3.4 §5.2.11)")
    return data_coding, sar, payload, ref16, service_type


def _weight_count(
    c: _Checker, raw: Mapping[str, Any], k: str, destinations: int | None
) -> tuple[float | None, int | None]:
    if "weight" in raw and "count" in raw:
        raise c.fail(f"{k}count", "give weight or count, not both")
    if "weight" in raw:
        w = raw["weight"]
        if isinstance(w, bool) or not isinstance(w, int | float):
            raise c.fail(f"{k}weight", f"must be a number, not {_kind(w)}")
        if not (w > 0 and math.isfinite(w)):
            raise c.fail(f"{k}weight", f"{w} must be a positive number")
        return float(w), None
    if "count" in raw:
        return None, c.integer(raw["count"], f"{k}count", 0)
    if destinations is not None:
        return None, destinations  # a fan-out writes once to each recipient by default
    raise c.fail(f"{k}weight", "missing: give weight (a share) or count (messages per pass)")


def _is_numeric(pattern: str) -> bool:
    return pattern != "" and all(ch.isdigit() or ch == "#" for ch in pattern)


def _addresses(
    c: _Checker,
    raw: Mapping[str, Any],
    k: str,
    key: str,
    ton_key: str,
    npi_key: str,
    value: object,
) -> tuple[int, int, tuple[str, ...]]:
    """Address patterns with their TON/NPI: explicit keys win, else derived from the first."""
    patterns = c.strings(value, f"{k}{key}")
    derived = [derive_ton_npi(p) for p in patterns]
    explicit_ton = ton_key in raw
    ton = c.integer(raw[ton_key], f"{k}{ton_key}", 0, 255) if explicit_ton else derived[0][0]
    npi = c.integer(raw[npi_key], f"{k}{npi_key}", 0, 255) if npi_key in raw else derived[0][1]
    if not explicit_ton and len({d[0] for d in derived}) > 1:
        raise c.fail(
            f"{k}{key}",
            f"mixes numbers and alphanumeric ids ({list(patterns)}): the TON would differ per "
            f"message; split the stream or set {ton_key}",
        )
    out: list[str] = []
    for i, (pattern, (d_ton, _, sent)) in enumerate(zip(patterns, derived, strict=True)):
        where = f"{k}{key}" if len(patterns) == 1 else f"{k}{key}[{i}]"
        if not pattern.isprintable() or any(ord(ch) > 0x7E for ch in pattern):
            raise c.fail(where, f"{pattern!r}: addresses are printable ASCII")
        if d_ton == TON_ALPHANUMERIC and not explicit_ton and len(sent) > MAX_ALPHANUMERIC:
            raise c.fail(
                where,
                f"{pattern!r} is {len(sent)} characters; an alphanumeric sender holds at most "
                f"{MAX_ALPHANUMERIC} (TS 23.040 §9.1.2.5) - set {ton_key} to send it anyway",
            )
        if len(sent) > MAX_ADDRESS:
            raise c.fail(where, f"{pattern!r} is over {MAX_ADDRESS} characters (SMPP 3.4 §4.4.1)")
        out.append(sent)
    return ton, npi, tuple(dict.fromkeys(out))


def _placeholders(
    c: _Checker, text: str, key: str, values: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise c.fail(key, f"{exc} (write {{{{ and }}}} for literal braces)") from None
    for _, field_name, spec, conversion in parsed:
        if field_name is None:
            continue
        if not field_name.isidentifier() or spec or conversion:
            raise c.fail(key, f"{{{field_name}}}: placeholders are plain names like {{code}}")
        if field_name not in values and field_name not in BUILTIN_PLACEHOLDERS:
            known = ", ".join(sorted({*BUILTIN_PLACEHOLDERS, *values}))
            raise c.fail(key, f"unknown placeholder {{{field_name}}} (known: {known})")
        if field_name not in names:
            names.append(field_name)
    return tuple(names)


def _check_encodable(c: _Checker, stream: Stream, k: str) -> None:
    """Render every text with sample values and encode / split it as generation will."""
    if stream.data_coding is not None and alphabet_of(stream.data_coding) == "binary":
        raise c.fail(f"{k}data_coding", f"0x{stream.data_coding:02X} is binary: it carries no text")
    rng = random.Random(0)
    for j, template in enumerate(stream.texts):
        names = stream.fields[j]
        text = _render(template, names, stream.values, rng)
        # every value a scenario lists must fit the coding too, not only the one drawn here
        listed = "".join(v for name in names for v in stream.values.get(name, ()))
        try:
            coding = choose_coding(text) if stream.data_coding is None else stream.data_coding
            encode_text(listed, stream.data_coding if stream.data_coding is not None
                        else choose_coding(listed))  # fmt: skip
            if stream.payload:
                size = len(encode_text(text, coding))
                if size > 0xFFFF:
                    raise ValueError(f"{size} octets do not fit message_payload (65535 at most)")
            else:
                split_for_sms(text, ref=0, data_coding=coding)
        except ValueError as exc:  # TextEncodingError, or more than 255 parts
            raise c.fail(f"{k}texts[{j}]", str(exc)) from None
