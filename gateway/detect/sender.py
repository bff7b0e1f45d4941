"""The `sender` detector: who the message claims to come from, against where it came in.

* Protected sender ids (`config/rules/senders.toml`): "KASPI", "Halyk Bank", "eGov", "1414",
  "KAZPOST"... may only arrive on the SMSC binds (`allowed_smsc`) and routes (`allowed_routes`)
  listed for them. The same id elsewhere is `sender.impersonation.<id>`; a look-alike
  ("KASPl", "Каspi" with a Cyrillic К, "Kaspi-Info", "HalykBonus", one edit away) is
  `sender.lookalike.<id>`. Case, spaces and punctuation never matter ("Kaspi.kz" = "KASPI KZ").
* A Kazakh mobile number (+7 7xx...) as the sender of a message that came in on an
  international route: the classic spoofing / bypass sign (`sender.kz_mobile_international`).
* Malformed source addresses (`sender.malformed.<kind>`): empty, control characters, an
  international (TON 1) address with non-digits or a wrong length, an alphanumeric id over 11
  characters or made of digits only.

Helpers for the pipeline: `normalise_msisdn(address, ton, npi)` (E.164 digits or None) and
`is_kz_mobile(address, ton)`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from gateway.config_check import ConfigError
from gateway.detect.rules import (
    DEFAULT_RULES_DIR,
    RuleBacked,
    RuleFile,
    Table,
    route_list,
    score_of,
    skeleton,
    string_list,
)
from gateway.domain import Reason, Route, SmsEvent

DEFAULT_SENDERS = DEFAULT_RULES_DIR / "senders.toml"

TON_UNKNOWN: Final = 0
TON_INTERNATIONAL: Final = 1
TON_NATIONAL: Final = 2
TON_ALPHANUMERIC: Final = 5
NPI_UNKNOWN: Final = 0
NPI_ISDN: Final = 1

# Kazakhstan mobile numbers, E.164 without "+": 7 + 7xx + 7 digits (the national number
# pattern of the `phonenumbers` metadata for region KZ: 700-702, 705-708, 747, 760-764,
# 771, 775-778, 785).
KZ_MOBILE_RE: Final = re.compile(r"77(?:0[0-25-8]|47|6[0-4]|7[15-8]|85)\d{7}")
_SEPARATORS: Final = str.maketrans("", "", " -().\u00a0")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


def normalise_msisdn(address: str, ton: int = TON_UNKNOWN, npi: int = NPI_ISDN) -> str | None:
    """The E.164 digits ("77011234567") of a phone-number address, or None for an
    alphanumeric id, a short code or anything not a full number.

    TON 1 (international): the digits as they are ("+" allowed). TON 0 / 2 (unknown /
    national, as Kazakh SMSCs send them): "87011234567" and "7011234567" are national forms
    of +7; "77011234567" and "+77011234567" already international; "00..." and "810..."
    international prefixes are removed."""
    if ton == TON_ALPHANUMERIC or not address:
        return None
    if ton not in (TON_INTERNATIONAL, TON_UNKNOWN, TON_NATIONAL):
        return None
    if npi not in (NPI_UNKNOWN, NPI_ISDN) and ton != TON_INTERNATIONAL:
        return None
    a = address.strip().translate(_SEPARATORS)
    plus = a.startswith("+")
    body = a[1:] if plus else a
    if not (body.isascii() and body.isdigit()):
        return None
    if plus or ton == TON_INTERNATIONAL:
        if body.startswith("00"):
            body = body[2:]
        return body if 7 <= len(body) <= 15 and body[0] != "0" else None
    if body.startswith("00"):
        body = body[2:]
        return body if 7 <= len(body) <= 15 and body[0] != "0" else None
    if body.startswith("810") and len(body) > 10:
        body = body[3:]
        return body if 7 <= len(body) <= 15 and body[0] != "0" else None
    if len(body) == 11 and body[0] in "78":
        return "7" + body[1:]
    if len(body) == 10 and body[0] in "3456789":
        return "7" + body
    return None


def is_kz_mobile(address: str, ton: int = TON_UNKNOWN, npi: int = NPI_ISDN) -> bool:
    """A Kazakh mobile number in any of its written forms ("+77011234567", TON 1
    "77011234567", TON 0 "87011234567")."""
    e164 = normalise_msisdn(address, ton, npi)
    return e164 is not None and KZ_MOBILE_RE.fullmatch(e164) is not None


# --------------------------------------------------------------------------------------------
# Configuration (senders.toml)

KINDS: Final = {
    "impersonation": 0.9,
    "lookalike": 0.85,
    "kz_mobile_international": 0.85,
    "malformed": 0.4,
    "volume": 0.5,
}

MALFORMED: Final = {
    "empty": "empty source address",
    "control": "source address holds control or invisible characters",
    "international_not_digits": "international (TON 1) source address with non-digits",
    "international_length": "international (TON 1) source address of an impossible length",
    "kz_length": "+7 source address without 10 digits after the country code",
    "alphanumeric_too_long": "alphanumeric sender id over 11 characters",
    "alphanumeric_digits": "alphanumeric (TON 5) sender id made of digits only",
}


@dataclass(frozen=True, slots=True)
class ProtectedSender:
    id: str
    names: tuple[str, ...]  # as written in the file, for descriptions
    allowed_smsc: frozenset[str]  # empty: any bind
    allowed_routes: frozenset[Route]  # empty: any route
    # the contracted profile: messages a minute it may send (0: not checked). Its volume is
    # judged against this, never against the P2P fan-out limit (a bank sends thousands)
    max_per_minute: int = 0

    def allows(self, smsc: str, route: Route) -> bool:
        return (not self.allowed_smsc or smsc in self.allowed_smsc) and (
            not self.allowed_routes or route in self.allowed_routes
        )


@dataclass(slots=True)
class SenderConfig:
    senders: tuple[ProtectedSender, ...]
    scores: dict[str, float]
    block: frozenset[str]
    plain: dict[str, ProtectedSender]  # lower-case, separators removed -> sender
    numeric: dict[str, ProtectedSender]  # digit ids ("1414")
    skeletons: dict[str, ProtectedSender]
    tokens: tuple[tuple[str, ProtectedSender], ...]  # skeletons found inside a sender id
    deletes: dict[str, tuple[tuple[str, ProtectedSender], ...]]
    # sender id -> (kind, protected) | None; bounded memo (A2P senders repeat all day)
    _memo: dict[str, tuple[str, ProtectedSender] | None] = field(default_factory=dict)

    def match(self, address: str) -> tuple[str, ProtectedSender] | None:
        """("exact" | "lookalike", protected sender) for a sender id, or None."""
        memo = self._memo
        hit = memo.get(address, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[return-value]
        result = self._match(address)
        if len(memo) >= 20_000:
            memo.clear()
        memo[address] = result
        return result

    def _match(self, address: str) -> tuple[str, ProtectedSender] | None:
        a = address.strip()
        digits = a.lstrip("+")
        if digits.isascii() and digits.isdigit():
            p = self.numeric.get(digits)
            return ("exact", p) if p is not None else None
        plain = plain_id(a)
        p = self.plain.get(plain)
        if p is not None:
            return ("exact", p)
        sk = skeleton(a)
        if not sk:
            return None
        p = self.skeletons.get(sk)
        if p is not None:
            return ("lookalike", p)
        for tok, p in self.tokens:
            if tok in sk:
                return ("lookalike", p)
        if 4 <= len(sk) <= 24:
            for d in _deletes(sk, 1):
                for target, p in self.deletes.get(d, ()):
                    if _within_one(sk, target):
                        return ("lookalike", p)
        return None


_MISS: Final = object()
_NON_ALNUM: Final = re.compile(r"[\W_]+")


def plain_id(name: str) -> str:
    """A sender id as compared: case, spaces and punctuation ignored ("Kaspi.kz" = "KASPI KZ")."""
    return _NON_ALNUM.sub("", name.casefold())


def _deletes(word: str, depth: int) -> set[str]:
    out = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


def _within_one(a: str, b: str) -> bool:
    """Levenshtein distance <= 1."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la > lb:
        a, b, la, lb = b, a, lb, la
    i = 0
    while i < la and a[i] == b[i]:
        i += 1
    if la == lb:
        return a[i + 1 :] == b[i + 1 :]
    return a[i:] == b[i + 1 :]


_ID_RE = re.compile(r"[a-z0-9_]+")


def parse_sender_config(root: Table) -> SenderConfig:
    scores_t = root.table("scores")
    scores = {kind: score_of(scores_t, kind, default) for kind, default in KINDS.items()}
    scores_t.done()
    block = string_list(root, "block", [])
    for i, kind in enumerate(block):
        if kind not in KINDS:
            raise ConfigError(f"block[{i}]: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    senders: list[ProtectedSender] = []
    plain: dict[str, ProtectedSender] = {}
    numeric: dict[str, ProtectedSender] = {}
    skeletons: dict[str, ProtectedSender] = {}
    tokens: list[tuple[str, ProtectedSender]] = []
    deletes: dict[str, list[tuple[str, ProtectedSender]]] = {}
    seen: set[str] = set()
    for t in root.tables("sender"):
        p, fuzzy, extra_tokens = _protected_sender(t, seen)
        senders.append(p)
        for i, name in enumerate(p.names):
            key = f"{t.key('names')}[{i}]"
            if not name.strip():
                raise ConfigError(f"{key}: empty")
            digits = name.strip().lstrip("+")
            if digits.isascii() and digits.isdigit():
                _claim(numeric, digits, p, key)
                continue
            _claim(plain, plain_id(name), p, key)
            if fuzzy:
                sk = skeleton(name)
                skeletons.setdefault(sk, p)
                if len(sk) >= 5:
                    for d in _deletes(sk, 1):
                        deletes.setdefault(d, []).append((sk, p))
        for i, tok in enumerate(extra_tokens):
            sk = skeleton(tok)
            if len(sk) < 4:
                raise ConfigError(f"{t.key('tokens')}[{i}]: too short to be safe (>= 4)")
            tokens.append((sk, p))
    tokens.sort(key=lambda tp: -len(tp[0]))
    return SenderConfig(
        senders=tuple(senders),
        scores=scores,
        block=frozenset(block),
        plain=plain,
        numeric=numeric,
        skeletons=skeletons,
        tokens=tuple(tokens),
        deletes={k: tuple(v) for k, v in deletes.items()},
    )


def _protected_sender(t: Table, seen: set[str]) -> tuple[ProtectedSender, bool, list[str]]:
    """One checked [[sender]] table (its id added to `seen`): the sender, whether look-alikes
    of its names are searched (`fuzzy`) and its extra `tokens`."""
    sid = t.get("id", str)
    if not _ID_RE.fullmatch(sid):
        raise ConfigError(f"{t.key('id')}: use a-z, 0-9 and _ only, got {sid!r}")
    if sid in seen:
        raise ConfigError(f"{t.key('id')}: {sid!r} is used twice")
    seen.add(sid)
    names = string_list(t, "names")
    if not names:
        raise ConfigError(f"{t.key('names')}: give at least one sender id")
    smsc = frozenset(string_list(t, "allowed_smsc", []))
    routes = route_list(t, "allowed_routes")
    if not smsc and not routes:
        raise ConfigError(
            f"{t.path}: give allowed_smsc and/or allowed_routes (else anyone may use it)"
        )
    fuzzy = t.get("fuzzy", bool, True)
    extra_tokens = string_list(t, "tokens", [])
    per_minute = t.integer("max_per_minute", 0, minimum=0)
    t.done()
    return ProtectedSender(sid, tuple(names), smsc, routes, per_minute), fuzzy, extra_tokens


def _claim(table: dict[str, ProtectedSender], key: str, p: ProtectedSender, where: str) -> None:
    other = table.get(key)
    if other is not None and other is not p:
        raise ConfigError(f"{where}: {key!r} already belongs to sender {other.id!r}")
    table[key] = p


# --------------------------------------------------------------------------------------------
# The detector


class SenderDetector(RuleBacked[SenderConfig]):
    name = "sender"

    def __init__(self, rules: SenderConfig, *, rule_file: RuleFile[SenderConfig] | None = None):
        super().__init__(rules, rule_file=rule_file)
        # per protected sender id: (start of the current minute, messages in it)
        self._minute: dict[str, tuple[float, int]] = {}

    @classmethod
    def from_file(cls, path: str | Path = DEFAULT_SENDERS) -> SenderDetector:
        rf = RuleFile(Path(path), parse_sender_config)
        return cls(rf.current, rule_file=rf)

    @property
    def config(self) -> SenderConfig:
        return self._rules

    def protected(self, sms: SmsEvent) -> ProtectedSender | None:
        """The registered sender this message comes from, when it arrives where its contract
        says (its id exactly, on an allowed bind and route): protected A2P, which content and
        classifier findings may flag for an analyst but never block."""
        hit = self._rules.match(sms.source) if sms.source else None
        if hit is None or hit[0] != "exact" or not hit[1].allows(sms.smsc, sms.route):
            return None
        return hit[1]

    def contracted_bind(self, address: str) -> str | None:
        """The first bind a registered sender id is contracted on (None: not registered, or
        allowed on any bind)."""
        hit = self._rules.match(address)
        if hit is None or hit[0] != "exact" or not hit[1].allowed_smsc:
            return None
        return min(hit[1].allowed_smsc)

    def inspect(self, sms: SmsEvent, now: float) -> Sequence[Reason]:
        cfg = self._rules
        source = sms.source
        ton = sms.source_ton
        out: list[Reason] = []
        malformed = _malformed(source, ton)
        if malformed is not None:
            rule_id = f"sender.malformed.{malformed}"
            out.append(self._reason(cfg, "malformed", rule_id, MALFORMED[malformed]))
        if not source:
            return out
        if sms.route is Route.INTERNATIONAL and is_kz_mobile(source, ton, sms.source_npi):
            out.append(
                self._reason(
                    cfg,
                    "kz_mobile_international",
                    "sender.kz_mobile_international",
                    "Kazakh mobile number as sender of a message from an international route",
                )
            )
        hit = cfg.match(source)
        if hit is not None:
            how, p = hit
            if how == "exact" and p.allows(sms.smsc, sms.route):
                if p.max_per_minute and self._over_profile(p, now):
                    out.append(
                        self._reason(
                            cfg,
                            "volume",
                            f"sender.volume.{p.id}",
                            f"registered sender {p.names[0]!r} over its contracted "
                            f"{p.max_per_minute} messages a minute",
                        )
                    )
            elif not p.allows(sms.smsc, sms.route):
                kind = "impersonation" if how == "exact" else "lookalike"
                what = "protected sender id" if how == "exact" else "look-alike of sender id"
                out.append(
                    self._reason(
                        cfg,
                        kind,
                        f"sender.{kind}.{p.id}",
                        f"{what} {p.names[0]!r} from a bind or route not allowed to use it",
                    )
                )
        return out

    def _over_profile(self, p: ProtectedSender, now: float) -> bool:
        start, count = self._minute.get(p.id, (now, 0))
        if now - start >= 60.0:
            start, count = now, 0
        count += 1
        self._minute[p.id] = (start, count)
        return count > p.max_per_minute

    def _reason(self, cfg: SenderConfig, kind: str, rule_id: str, description: str) -> Reason:
        return Reason(
            detector=self.name,
            rule_id=rule_id,
            score=cfg.scores[kind],
            description=description,
            spans=(),
            block=kind in cfg.block,
        )


def _malformed(source: str, ton: int) -> str | None:
    if not source.strip():
        return "empty"
    if _CONTROL.search(source) is not None:
        return "control"
    if ton == TON_INTERNATIONAL:
        body = source[1:] if source.startswith("+") else source
        if not (body.isascii() and body.isdigit()):
            return "international_not_digits"
        if body.startswith("7") and len(body) != 11:
            return "kz_length"
        if not 7 <= len(body) <= 15:
            return "international_length"
        return None
    if ton == TON_ALPHANUMERIC:
        if len(source) > 11:
            return "alphanumeric_too_long"
        body = source.lstrip("+")
        if body.isascii() and body.isdigit():
            return "alphanumeric_digits"
        return None
    if source.startswith("+"):
        body = source[1:]
        if body.isascii() and body.isdigit() and body.startswith("7") and len(body) != 11:
            return "kz_length"
    return None
