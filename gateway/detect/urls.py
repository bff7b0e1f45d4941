"""Links in SMS text: extraction (also obfuscated) and the `url` detector.

`extract_urls(text)` finds links as people and fraudsters write them: with or without a scheme
("https://x.kz/a", "www.x.kz", bare "x.top/a"), obfuscated ("hxxps://", "kaspi[.]kz",
"kaspi(.)kz", "kaspi . kz", "kaspi dot kz"), with look-alike letters from other alphabets
("kаspi.kz" with a Cyrillic `а`), in punycode ("xn--...") or as raw IPv4 addresses. A bare
"word.word" counts only when the last label is a real top-level domain (the Public Suffix List
snapshot bundled with `tldextract`, read offline), so "т.е." or "12.05.2024" are not links.

`UrlDetector` scores each link against `config/rules/brands.toml`:

* brand impersonation: a protected brand inside another registrable domain
  ("kaspi-bank.kz-secure.com", "kaspi.kz.verify-id.top", "halyk-bonus.top"), the brand's own
  name on another suffix ("kaspi.com"), a look-alike of the brand's domain (same skeleton:
  "kaspl.kz", "halykbаnk.kz" with a Cyrillic `а`, "xn--..." decoding to one), or one or two
  edits away ("kaspii.kz", "halyckbank.kz"); the brands' real domains and their subdomains
  are clean;
* URL shorteners, raw IP hosts, user-info tricks ("https://kaspi.kz@evil.top"), obfuscation,
  mixed alphabets in one label, "kz" posing as a label of a foreign domain, suspicious TLDs
  (a weak signal), internationalised domains (weaker);
* recently seen campaign domains: `remember_campaign(domain, now)` (the pipeline calls it for
  the links of a blocked message) makes the same registrable domain score high for a while;
  memory is bounded (oldest evicted first) and entries expire.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final, NamedTuple, Protocol

import idna
import tldextract

from gateway.config_check import ConfigError
from gateway.detect.rules import (
    DEFAULT_RULES_DIR,
    RuleBacked,
    RuleFile,
    Table,
    fold,
    score_of,
    skeleton,
    string_list,
)
from gateway.domain import Reason, SmsEvent, Span

DEFAULT_BRANDS = DEFAULT_RULES_DIR / "brands.toml"

# --------------------------------------------------------------------------------------------
# Public suffixes (offline)

_EXTRACT: Final = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _top_level_domains() -> frozenset[str]:
    tlds: set[str] = set()
    for suffix in _EXTRACT.tlds:
        last = suffix.rsplit(".", 1)[-1].lower()
        tlds.add(last)
        if not last.isascii():
            with contextlib.suppress(idna.IDNAError, UnicodeError, ValueError):
                tlds.add(idna.encode(last, uts46=True).decode("ascii"))
    return frozenset(tlds)


TLDS: Final = _top_level_domains()
# TLDs accepted around a spaced dot ("kaspi . kz"): only common ones, as "home . me" is prose.
_SPACED_DOT_TLDS: Final = frozenset(
    {
        "kz", "ru", "com", "net", "org", "info", "top", "xyz", "online", "site", "click", "icu",
        "cc", "biz", "pro", "vip", "tk", "ml", "ga", "cf", "gq", "pw", "buzz", "uz", "kg", "by",
        "ua", "su",
    }
)  # fmt: skip


@lru_cache(maxsize=8192)
def _split(host: str) -> tuple[str, str, str]:
    """(subdomain, domain label, public suffix) of an ASCII or Unicode host."""
    r = _EXTRACT(host)
    return r.subdomain, r.domain, r.suffix


def registrable_domain(host: str) -> str:
    """The registrable domain: "kaspi.kz" for "pay.kaspi.kz", "verify-id.top" for
    "kaspi.kz.verify-id.top"; the host itself for an IP or when no public suffix is known."""
    _, dom, suf = _split(host)
    if dom and suf:
        return f"{dom}.{suf}"
    return host


# --------------------------------------------------------------------------------------------
# Extraction

# Explicit ranges: much cheaper for `re` than Unicode categories. Latin, Latin-1/Extended,
# Greek, Cyrillic (with Kazakh) letters and digits.
_ALNUM = "A-Za-z0-9\u00c0-\u024f\u0370-\u03ff\u0400-\u052f"
_DOTWORD = "[dD][oO][tT]"
_DOT = rf"(?:\.|\s?[\[\(\{{]\s?(?:\.|{_DOTWORD})\s?[\]\)\}}]\s?|\s(?:{_DOTWORD}|\.)\s|[．。｡])"
_LABEL = rf"[{_ALNUM}](?:[{_ALNUM}_-]{{0,62}}[{_ALNUM}])?"
_SCHEME = r"(?:[hH](?:[tT][tT]|[xX][xX]|\*\*|[xX][tT]|[tT][xX])[pP][sS]?|[fF][tT][pP])"
# The match starts on the character before the link (a space is put in front of the text): a
# leading character class lets `re` skip inside words quickly, where a look-behind would not.
_URL_RE: Final = re.compile(
    rf"[^{_ALNUM}_.@-]"
    rf"(?P<scheme>{_SCHEME}(?::|\[:\])//)?"
    r"(?(scheme)(?P<userinfo>[^\s/@]{1,64}@)?)"
    rf"(?P<host>(?:{_LABEL}{_DOT})+{_LABEL})"
    r"(?P<port>:\d{1,5}(?![\w.]))?"
    r"(?P<path>[/?#][^\s<>\"«»]*)?"
)
# Cheap tests whether the full expression can match at all (most SMS have no link).
_DOT_ALNUM: Final = re.compile(rf"\.[{_ALNUM}]")
_OBFUSCATED_DOT: Final = re.compile(rf"[\[\(\{{]\s?(?:\.|{_DOTWORD})|\s(?:{_DOTWORD}|\.)\s")
_ODD_DOTS: Final = ("．", "。", "｡")
_OBFUSCATION_CHARS: Final = " \t\n[({．。｡"


def _may_have_url(text: str) -> bool:
    if "." in text and _DOT_ALNUM.search(text) is not None:
        return True
    if "//" in text or any(d in text for d in _ODD_DOTS):
        return True
    return _OBFUSCATED_DOT.search(text) is not None


_DOT_SPLIT: Final = re.compile(_DOT)
_TRAILING = ".,;:!?)]}'\"»…"
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


class FoundUrl(NamedTuple):
    """A link found in a text.

    url: the link de-obfuscated ("hxxps://kaspi[.]kz/x" -> "https://kaspi.kz/x"; no scheme is
        added when none was written); domain: the host as DNS sees it (lower case, punycode for
        non-ASCII); registrable: the registrable domain of `domain`; span: where it is in the
        original text. look: the host with look-alike letters folded to Latin ("kаspi.kz" ->
        "kaspi.kz"), what a reader believes the link is.
    """

    url: str
    domain: str
    registrable: str
    span: Span
    look: str = ""
    unicode_host: str = ""
    obfuscated: bool = False
    homoglyph: bool = False  # look-alike letters from another alphabet were folded
    mixed_script: bool = False  # one label mixes Latin and Cyrillic/Greek letters
    idn: bool = False  # non-ASCII or punycode host
    is_ip: bool = False
    userinfo: bool = False  # "https://kaspi.kz@evil.top": what precedes @ is not the host


_CYR_OR_GREEK = re.compile(r"[\u0370-\u03ff\u0400-\u052f]")
_LATIN = re.compile(r"[a-z]")


def _trim_host(labels: list[str]) -> list[str] | None:
    """Validate the labels; a Kazakh case ending glued by a hyphen ("kaspi.kz-ке") is cut."""
    last = labels[-1]
    if last in TLDS or fold(last) in TLDS:
        return labels
    if "-" in last:
        head, _, tail = last.partition("-")
        if (head in TLDS or fold(head) in TLDS) and not tail.isascii():
            return [*labels[:-1], head]
    return None


def _to_ascii(host: str) -> str:
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return host


def _from_punycode(host: str) -> str:
    if "xn--" not in host:
        return host
    labels = []
    for label in host.split("."):
        if label.startswith("xn--"):
            try:
                label = idna.decode(label)
            except (idna.IDNAError, UnicodeError, ValueError):
                with contextlib.suppress(UnicodeError, ValueError):
                    label = label[4:].encode("ascii").decode("punycode")
        labels.append(label)
    return ".".join(labels)


def extract_urls(text: str) -> list[FoundUrl]:
    """Every link in `text`, in order. Never raises on any text."""
    if not _may_have_url(text):
        return []
    return list(_extract(text))


@lru_cache(maxsize=256)  # detectors of one message (content, url) share the work
def _extract(text: str) -> tuple[FoundUrl, ...]:
    found: list[FoundUrl] = []
    for m in _URL_RE.finditer(" " + text):
        u = _found(m, text)
        if u is not None:
            found.append(u)
    return tuple(found)


def _found(m: re.Match[str], text: str) -> FoundUrl | None:
    """The link matched by `m` on " " + text (offsets are one more than in `text`)."""
    scheme_raw = m.group("scheme") or ""
    raw_host = m.group("host")
    if any(c in raw_host for c in _OBFUSCATION_CHARS):
        labels = [lab.lower() for lab in _DOT_SPLIT.split(raw_host)]
    else:
        labels = raw_host.lower().split(".")
    # each plain "." is one character: anything longer or other is an obfuscated dot
    n_dots = len(labels) - 1
    obfuscated = len(raw_host) - sum(map(len, labels)) != n_dots or raw_host.count(".") != n_dots
    is_ip = _IPV4.fullmatch(raw_host) is not None
    path = m.group("path") or ""
    port = m.group("port") or ""
    end = m.end() - 1
    if is_ip:
        if not _is_ipv4(raw_host) or not (scheme_raw or path or port):
            return None  # "1.2.3.4" alone is more often a version or a list than a link
    else:
        trimmed = _trim_host(labels)
        if trimmed is None:
            if not scheme_raw:
                return None
        elif trimmed[-1] != labels[-1]:  # a Kazakh ending glued to the domain: cut it
            end = m.end("host") - 1 - (len(labels[-1]) - len(trimmed[-1]))
            path, port = "", ""
            labels = trimmed
        # spaced dots only around Latin names and a common TLD: prose has "home . me"
        if not scheme_raw and " " in raw_host and _spaced_prose(labels[-1], raw_host):
            return None
    if path:
        stripped = path.rstrip(_TRAILING)
        end -= len(path) - len(stripped)
        path = stripped
    scheme, odd_scheme = _scheme_of(scheme_raw) if scheme_raw else ("", False)
    obfuscated = obfuscated or odd_scheme
    ascii_written = ".".join(labels)
    unicode_host = _from_punycode(ascii_written)
    idn = not unicode_host.isascii() or unicode_host != ascii_written
    look = unicode_host if unicode_host.isascii() else fold(unicode_host)
    homoglyph = look != unicode_host and look.isascii() and not is_ip
    mixed = homoglyph and _mixed_script(unicode_host)
    domain = _to_ascii(unicode_host)
    registrable = domain if is_ip else registrable_domain(domain)
    url = f"{scheme}://{domain}{port}{path}" if scheme else f"{domain}{port}{path}"
    start = m.start("scheme") - 1 if scheme_raw else m.start("host") - 1
    return FoundUrl(
        url=url,
        domain=domain,
        registrable=registrable,
        span=Span(start, end, text[start:end]),
        look=look if look.isascii() else unicode_host,
        unicode_host=unicode_host,
        obfuscated=obfuscated,
        homoglyph=homoglyph,
        mixed_script=mixed,
        idn=idn,
        is_ip=is_ip,
        userinfo=m.group("userinfo") is not None,
    )


# The helpers of `_found` below run only for the links that need them (raw IPs, spaced dots,
# a scheme, folded look-alikes): the common bare link pays no extra call.


def _is_ipv4(raw_host: str) -> bool:
    """Whether `raw_host` (already shaped like a.b.c.d) is a valid IPv4 address."""
    try:
        ipaddress.IPv4Address(raw_host)
    except ValueError:
        return False
    return True


def _spaced_prose(last: str, raw_host: str) -> bool:
    """Whether a host written with spaced dots is prose: not Latin or not a common TLD."""
    return fold(last) not in _SPACED_DOT_TLDS or not fold(raw_host).isascii()


def _scheme_of(scheme_raw: str) -> tuple[str, bool]:
    """The canonical scheme of a written one ("hxxps://" -> "https") and whether it was
    obfuscated."""
    low = scheme_raw.lower()
    if low.startswith("ftp"):
        return "ftp", "[" in low
    scheme = "https" if low[4:5] == "s" else "http"
    return scheme, low[1:3] != "tt" or "[" in low


def _mixed_script(unicode_host: str) -> bool:
    """Whether one label of the host mixes Latin and Cyrillic/Greek letters."""
    for label in unicode_host.split("."):
        if _CYR_OR_GREEK.search(label) and _LATIN.search(label):
            return True
    return False


# --------------------------------------------------------------------------------------------
# Rules (brands.toml)

KINDS: Final = {
    "homoglyph": (0.95, "link to a look-alike of {brand}'s domain (confusable letters)"),
    "typo": (0.85, "link to a misspelling of {brand}'s domain"),
    "lookalike": (0.9, "link puts {brand}'s name inside another domain"),
    "other_tld": (0.7, "link to {brand}'s name on a domain {brand} does not use"),
    "campaign": (0.9, "link to a domain seen in recently blocked messages"),
    "userinfo": (0.6, "link hides its real host behind user@ syntax"),
    "ip": (0.6, "link to a raw IP address"),
    "confusable": (0.6, "link whose domain is written with look-alike letters of another alphabet"),
    "obfuscated": (0.5, "link written to dodge filters (hxxp, [.], spaced dots)"),
    "fake_kz": (0.4, "'kz' used as a label of a domain outside the .kz zone"),
    "shortener": (0.35, "link through a URL shortener"),
    "suspicious_tld": (0.3, "link on a top-level domain favoured by phishing"),
    "idn": (0.15, "internationalised (non-ASCII) domain name"),
}
_BRAND_KINDS: Final = ("homoglyph", "typo", "lookalike", "other_tld")


@dataclass(frozen=True, slots=True)
class Brand:
    id: str
    name: str
    domains: tuple[str, ...]  # real registrable domains; they and their subdomains are clean
    tokens: tuple[str, ...]  # skeletons that mark impersonation inside another domain
    labels: tuple[str, ...]  # skeletons of the real domains' labels, for the typo check


@dataclass(frozen=True, slots=True)
class UrlRules:
    brands: tuple[Brand, ...]
    trusted: frozenset[str]  # every brand domain, ASCII
    trusted_extra: frozenset[str]  # other domains never scored (operator's own, ...)
    shorteners: frozenset[str]
    suspicious_tlds: frozenset[str]
    scores: dict[str, float]
    block: frozenset[str]
    campaign_ttl: float
    campaign_max: int
    by_label: dict[str, Brand]  # exact label skeleton -> brand
    deletes: dict[str, tuple[tuple[str, Brand], ...]]  # deletion neighbourhood for typos
    typo_max_len: int = 0  # labels longer than this cannot be a typo of any brand label

    def is_trusted(self, host: str) -> bool:
        """host is (a subdomain of) a protected brand's or an allowed domain."""
        h = host.rstrip(".")
        while True:
            if h in self.trusted or h in self.trusted_extra:
                return True
            dot = h.find(".")
            if dot < 0:
                return False
            h = h[dot + 1 :]


def _deletes(word: str, depth: int) -> set[str]:
    out = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


def _typo_depth(n: int) -> int:
    return 2 if n >= 8 else 1 if n >= 5 else 0


def _domain_list(t: Table, name: str, default: list[str] | None = None) -> list[str]:
    out = []
    for i, d in enumerate(string_list(t, name, default)):
        d = d.strip().lower().rstrip(".")
        if not d or " " in d or "/" in d:
            raise ConfigError(f"{t.key(name)}[{i}]: not a domain name: {d!r}")
        out.append(_to_ascii(d))
    return out


def parse_url_rules(root: Table) -> UrlRules:
    scores_t = root.table("scores")
    scores = {kind: score_of(scores_t, kind, default) for kind, (default, _) in KINDS.items()}
    scores_t.done()
    block = string_list(root, "block", [])
    for i, kind in enumerate(block):
        if kind not in KINDS:
            raise ConfigError(f"block[{i}]: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    camp = root.table("campaigns")
    ttl = camp.number("ttl", 86400.0, minimum=1.0)
    max_entries = camp.integer("max_entries", 10000, minimum=1)
    camp.done()
    shorteners = frozenset(_domain_list(root, "shorteners", []))
    tlds = frozenset(t.lstrip(".") for t in _domain_list(root, "suspicious_tlds", []))
    trusted_extra = frozenset(_domain_list(root, "allowed_domains", []))
    brands: list[Brand] = []
    by_label: dict[str, Brand] = {}
    deletes: dict[str, list[tuple[str, Brand]]] = {}
    seen: set[str] = set()
    for bt in root.tables("brand"):
        bid = bt.get("id", str)
        if not re.fullmatch(r"[a-z0-9_]+", bid):
            raise ConfigError(f"{bt.key('id')}: use a-z, 0-9 and _ only, got {bid!r}")
        if bid in seen:
            raise ConfigError(f"{bt.key('id')}: {bid!r} is used twice")
        seen.add(bid)
        domains = _domain_list(bt, "domains")
        if not domains:
            raise ConfigError(f"{bt.key('domains')}: give at least one domain")
        labels = tuple(dict.fromkeys(skeleton(_split(d)[1] or d) for d in domains))
        tokens_raw = string_list(bt, "tokens", [])
        tokens = tuple(dict.fromkeys(skeleton(t) for t in tokens_raw))
        for i, tok in enumerate(tokens):
            if len(tok) < 3:
                raise ConfigError(f"{bt.key('tokens')}[{i}]: too short to be safe (>= 3)")
        brand = Brand(bid, bt.get("name", str, bid), tuple(domains), tokens, labels)
        typo = bt.get("typo", bool, True)
        bt.done()
        brands.append(brand)
        for lab in labels:
            by_label.setdefault(lab, brand)
            depth = _typo_depth(len(lab)) if typo else 0
            if depth:
                for d in _deletes(lab, depth):
                    deletes.setdefault(d, []).append((lab, brand))
    trusted = frozenset(d for b in brands for d in b.domains)
    return UrlRules(
        brands=tuple(brands),
        trusted=trusted,
        trusted_extra=trusted_extra,
        shorteners=shorteners,
        suspicious_tlds=tlds,
        scores=scores,
        block=frozenset(block),
        campaign_ttl=ttl,
        campaign_max=max_entries,
        by_label=by_label,
        deletes={k: tuple(v) for k, v in deletes.items()},
        typo_max_len=max((len(k) for k in deletes), default=0) + 2,
    )


def _distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, or limit + 1 when larger."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        best = i
        for j, cb in enumerate(b, 1):
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            cur.append(v)
            best = min(best, v)
        if best > limit:
            return limit + 1
        prev = cur
    return prev[-1]


# --------------------------------------------------------------------------------------------
# The detector


class UrlDetector(RuleBacked[UrlRules]):
    """Scores the links of a message. `remember_campaign` feeds it the domains of blocked
    messages; `reload` / `maybe_reload` re-read brands.toml (the campaign memory is kept)."""

    name = "url"

    def __init__(self, rules: UrlRules, *, rule_file: RuleFile[UrlRules] | None = None) -> None:
        super().__init__(rules, rule_file=rule_file)
        self._campaigns: OrderedDict[str, float] = OrderedDict()  # registrable -> expiry

    @classmethod
    def from_file(cls, path: str | Path = DEFAULT_BRANDS) -> UrlDetector:
        rf = RuleFile(Path(path), parse_url_rules)
        return cls(rf.current, rule_file=rf)

    # -- campaign memory ------------------------------------------------------------------

    def remember_campaign(self, domain: str, now: float) -> bool:
        """Remember a domain (a host or a URL) of a blocked message; later links to the same
        registrable domain score `campaign`. Brands' real domains and shorteners are never
        remembered (False)."""
        rules = self._rules
        host = domain.strip().lower()
        if "://" in host:
            host = host.split("://", 1)[1]
        host = host.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
        host = _to_ascii(host.rstrip("."))
        if not host or rules.is_trusted(host):
            return False
        key = registrable_domain(host)
        if key in rules.shorteners or host in rules.shorteners:
            return False
        camps = self._campaigns
        camps.pop(key, None)
        camps[key] = now + rules.campaign_ttl
        while len(camps) > rules.campaign_max:
            camps.popitem(last=False)
        return True

    def remember_campaign_urls(self, text: str, now: float) -> list[str]:
        """Remember every link's domain in `text`; returns the registrable domains kept."""
        out = []
        for u in extract_urls(text):
            if self.remember_campaign(u.domain, now):
                out.append(u.registrable)
        return out

    def is_campaign(self, registrable: str, now: float) -> bool:
        camps = self._campaigns
        # expired entries sit at the front (constant TTL, refreshed ones moved to the end)
        while camps:
            key, expiry = next(iter(camps.items()))
            if expiry > now:
                break
            del camps[key]
        found = camps.get(registrable)
        return found is not None and found > now

    def campaign_domains(self) -> list[str]:
        return list(self._campaigns)

    # -- inspection -----------------------------------------------------------------------

    def inspect(self, sms: SmsEvent, now: float) -> Sequence[Reason]:
        urls = extract_urls(sms.text)
        if not urls:
            return ()
        return self.score_urls(urls, now)

    def score_urls(self, urls: Iterable[FoundUrl], now: float) -> list[Reason]:
        rules = self._rules
        hits: dict[str, tuple[float, str, list[Span]]] = {}

        def hit(kind: str, span: Span, brand: Brand | None = None) -> None:
            rule_id = f"url.{kind}.{brand.id}" if brand else f"url.{kind}"
            entry = hits.get(rule_id)
            if entry is None:
                desc = KINDS[kind][1].format(brand=brand.name if brand else "")
                hits[rule_id] = (rules.scores[kind], desc, [span])
            elif span not in entry[2]:
                entry[2].append(span)

        for u in urls:
            self._score_one(u, rules, now, hit)
        return [
            Reason(
                detector=self.name,
                rule_id=rule_id,
                score=score,
                description=desc,
                spans=tuple(spans),
                block=rule_id.split(".")[1] in rules.block,
            )
            for rule_id, (score, desc, spans) in hits.items()
            if score > 0.0
        ]

    def _score_one(self, u: FoundUrl, rules: UrlRules, now: float, hit: _Hit) -> None:
        span = u.span
        if u.is_ip:
            hit("ip", span)
            if u.obfuscated:
                hit("obfuscated", span)
            if self._campaigns and self.is_campaign(u.registrable, now):
                hit("campaign", span)
            return
        if not u.homoglyph and not u.idn and rules.is_trusted(u.domain) and not u.userinfo:
            return
        if u.userinfo:
            hit("userinfo", span)
        if u.obfuscated:
            hit("obfuscated", span)
        if self._campaigns and self.is_campaign(u.registrable, now):
            hit("campaign", span)
        if u.registrable in rules.shorteners or u.domain in rules.shorteners:
            hit("shortener", span)
            return
        look = u.look
        sub, label, suffix = _split(look)
        tld = suffix.rsplit(".", 1)[-1] if suffix else ""
        if tld in rules.suspicious_tlds:
            hit("suspicious_tld", span)
        if u.homoglyph:
            hit("confusable", span)
        elif u.idn:
            hit("idn", span)
        if tld != "kz" and ("kz" in sub.replace("-", ".").split(".") or "kz" in label.split("-")):
            hit("fake_kz", span)
        brand_kind = self._brand_match(u, look, sub, label, rules)
        if brand_kind is not None:
            hit(brand_kind[0], span, brand_kind[1])

    @staticmethod
    def _brand_match(
        u: FoundUrl, look: str, sub: str, label: str, rules: UrlRules
    ) -> tuple[str, Brand] | None:
        if (u.homoglyph or u.idn) and rules.is_trusted(look):
            # reads as the real domain but is not it
            owner = next((b for b in rules.brands if any(_under(look, d) for d in b.domains)), None)
            if owner is not None:
                return ("homoglyph", owner)
            return None
        if not label:
            return None
        lab = skeleton(label)
        brand = rules.by_label.get(lab)
        if brand is not None:
            plain = label in {_split(d)[1] for d in brand.domains}
            if plain and not u.homoglyph:
                return ("other_tld", brand)
            return ("homoglyph", brand)
        front = skeleton(f"{sub}.{label}" if sub else label)
        for b in rules.brands:
            for tok in b.tokens:
                if tok in front:
                    return ("lookalike", b)
        if 4 <= len(lab) <= rules.typo_max_len:
            for d in _deletes(lab, 2 if len(lab) >= 6 else 1):
                for target, b in rules.deletes.get(d, ()):
                    limit = _typo_depth(len(target))
                    if _distance(lab, target, limit) <= limit:
                        return ("typo", b)
        return None


class _Hit(Protocol):
    def __call__(self, kind: str, span: Span, brand: Brand | None = None) -> None: ...


def _under(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)
