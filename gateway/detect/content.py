"""The `content` detector: fraud themes in the message text, from `config/rules/content.toml`.

Each rule has regular expressions matched on the normalised text (see `gateway.detect.rules`:
lower case, look-alike letters of other alphabets folded, "c0de" and «к о д» undone), a score
and optionally:

* `requires = ["link", "phone"]`: the rule counts only when the message also has one of these —
  `link`: a link that is not to a protected brand's real domain (brands.toml), `phone`: a phone
  number to call. "Your card is blocked" alone is a bank's notice; with a foreign link or a
  number to call it is the fraud;
* `unless`: patterns that cancel the rule (a bank's warning that quotes the scam: «безопасных
  счетов не существует», "never share this code");
* `patterns_from`: reuse an earlier rule's patterns (the same wording, with `requires`, scored
  higher);
* `block = true`: the finding alone blocks.

Scores are independent pieces of evidence (combined by noisy-OR in `gateway.domain.combine`):
an OTP notice ("Код для входа: 1234. Никому не сообщайте") matches nothing; "назовите код
оператору" matches two rules and scores above 0.9.

`ContentDetector.reload()` re-reads the file and swaps the compiled rules in one assignment; a
broken file keeps the old rules, is logged and raises ConfigError naming the key.
`maybe_reload()` does it only when the file changed (one stat).
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
    Normalised,
    RuleBacked,
    RuleFile,
    Table,
    compile_pattern,
    normalise,
    read_rule_file,
    required_literal_groups,
    score_of,
    string_list,
    trie_regex,
)
from gateway.detect.urls import DEFAULT_BRANDS, extract_urls, parse_url_rules
from gateway.domain import Reason, SmsEvent, Span

DEFAULT_CONTENT = DEFAULT_RULES_DIR / "content.toml"

LANGS: Final = frozenset({"ru", "kk", "en", "any"})
FEATURES: Final = frozenset({"link", "phone"})
MAX_SPANS: Final = 4
# Only the start of a very long text is matched (a 10-part SMS is about 1,500 characters): it
# bounds the cost of a pathological message; fraud states its business early.
MAX_TEXT: Final = 2000

# A number to call: Kazakh/Russian +7 / 8 numbers in any grouping, or another international one.
# Candidates are cheap to find (they start with +, 7 or 8); `has_phone` checks their digits.
_PHONE_CAND: Final = re.compile(r"[+78][\d \-.()\u00a0]{9,19}")


def has_phone(text: str) -> bool:
    """A phone number someone is asked to call or write to: +7 / 8 followed by 10 digits
    (any grouping: "+7 701 234 56 78", "8(701)234-56-78") or + and 10-15 digits."""
    for m in _PHONE_CAND.finditer(text):
        start = m.start()
        if start and (text[start - 1].isdigit() or text[start - 1] == "+"):
            continue
        raw = m.group().rstrip(" -.(\u00a0")
        digits = "".join(c for c in raw if c.isdigit())
        if (raw[0] == "+" and 10 <= len(digits) <= 15) or len(digits) == 11:
            return True
    return False


# A one-time-code notice (for the pipeline: OTP-looking text from an unexpected sender).
_OTP_RE: Final = compile_pattern(
    r"(?:код|kod|code|пароль|парол|otp|pin|пин|passcode|растау)\w{0,12}\W{0,3}"
    r"(?:\w{1,20}\W{1,3}){0,6}?\d{4,8}\b|\b\d{4,8}\W{1,3}(?:\w{1,20}\W{1,3}){0,2}?(?:код|code|kod|otp)",
    "otp",
)


def looks_like_otp(text: str) -> bool:
    """True for a one-time-code notice ("Код для входа: 1234", "Your Glovo code: 1234",
    «Растау коды: 1234»). Not a finding by itself: banks send these all day; the pipeline uses it
    with the sender and route (a local SIM sending bank OTPs is a grey route)."""
    return _OTP_RE.search(normalise(text).text) is not None


@dataclass(frozen=True, slots=True)
class ContentRule:
    id: str
    lang: str
    theme: str
    score: float
    description: str
    patterns: tuple[re.Pattern[str], ...]
    requires: frozenset[str] = frozenset()
    unless: tuple[re.Pattern[str], ...] = ()
    block: bool = False


@dataclass(frozen=True, slots=True)
class ContentRules:
    """Compiled rules. The prefilter: every pattern needs one of a few literal strings from
    each of its mandatory parts (`required_literal_groups`); `trigger` (one trie-shaped regex
    of all of them) finds those in the text, `by_literal` names the rules that may match and
    `conjunctions` keeps only those whose every part is present; `always` are rules whose
    patterns give no such literal. A normal SMS usually runs no rule at all."""

    rules: tuple[ContentRule, ...]
    trusted: frozenset[str]  # brands' real domains: links there are not a `link` feature
    trigger: re.Pattern[str] | None = None
    by_literal: dict[str, frozenset[int]] = field(default_factory=dict)
    always: frozenset[int] = frozenset()
    # literal -> the literals it stands for when the trigger reports it (itself and its
    # prefixes: at one position the trie reports the longest)
    found_with: dict[str, frozenset[str]] = field(default_factory=dict)
    # per rule: for each of its patterns, the literal sets a match needs one string of EACH
    # of ("назовите" AND "код"); a rule runs only when one pattern's sets are all present.
    # None: no such sets known, the rule runs whenever triggered.
    conjunctions: tuple[tuple[tuple[frozenset[str], ...], ...] | None, ...] = ()
    _memo: dict[frozenset[str], tuple[int, ...]] = field(default_factory=dict, compare=False)

    def to_run(self, present: frozenset[str]) -> tuple[int, ...]:
        """The rules to run, in order, for the literals found in a text: those triggered whose
        every mandatory part of one pattern is present. Remembered per set of literals (a few
        thousand sets cover the traffic: templates repeat their words)."""
        memo = self._memo
        hit = memo.get(present)
        if hit is not None:
            return hit
        todo: set[int] = set(self.always)
        for lit in present:
            todo |= self.by_literal.get(lit, frozenset())
        run = tuple(i for i in sorted(todo) if _possible(self.conjunctions[i], present))
        if len(memo) >= 8192:
            memo.clear()
        memo[present] = run
        return run

    def is_trusted(self, host: str) -> bool:
        h = host
        while True:
            if h in self.trusted:
                return True
            dot = h.find(".")
            if dot < 0:
                return False
            h = h[dot + 1 :]


_ID_RE = re.compile(r"content\.[a-z0-9_]+(?:\.[a-z0-9_]+)+")
_THEME_RE = re.compile(r"[a-z][a-z0-9_]*")


def parse_content_rules(root: Table, trusted: frozenset[str] = frozenset()) -> ContentRules:
    rules: list[ContentRule] = []
    by_id: dict[str, ContentRule] = {}
    needs: dict[str, set[int]] = {}  # literal -> indexes of the rules needing it
    conjunctions: list[tuple[tuple[frozenset[str], ...], ...] | None] = []
    merged: dict[tuple[str, ...], tuple[re.Pattern[str], ...]] = {}
    always: set[int] = set()
    for t in root.tables("rule"):
        rid = t.get("id", str)
        if not _ID_RE.fullmatch(rid):
            raise ConfigError(f"{t.key('id')}: expected content.<lang>.<name>, got {rid!r}")
        if rid in by_id:
            raise ConfigError(f"{t.key('id')}: {rid!r} is used twice")
        lang = t.get("lang", str)
        if lang not in LANGS:
            raise ConfigError(f"{t.key('lang')}: one of {sorted(LANGS)}, got {lang!r}")
        theme = t.get("theme", str)
        if not _THEME_RE.fullmatch(theme):
            raise ConfigError(f"{t.key('theme')}: a lower-case word, got {theme!r}")
        score = score_of(t, "score")
        description = t.get("description", str)
        if not description.strip():
            raise ConfigError(f"{t.key('description')}: required (English, for analysts)")
        patterns = _rule_patterns(t, by_id)
        requires, unless = _rule_conditions(t)
        conj = _conjunctions(patterns)
        literals = None if conj is None else {lit for c in conj for g in c for lit in g}
        rule = ContentRule(
            id=rid,
            lang=lang,
            theme=theme,
            score=score,
            description=description,
            patterns=_merge(patterns, merged),
            requires=frozenset(requires),
            unless=_merge(unless, merged) if unless else (),
            block=t.get("block", bool, False),
        )
        t.done()
        if literals is None:
            always.add(len(rules))
        else:
            for lit in literals:
                needs.setdefault(lit, set()).add(len(rules))
        conjunctions.append(conj)
        rules.append(rule)
        by_id[rid] = rule
    if not rules:
        raise ConfigError("rule: no rules ([[rule]] tables) in the file")
    by_literal = _literal_closure(needs)
    trigger = re.compile(trie_regex(needs)) if needs else None
    found_with = {
        lit: frozenset(lit[:n] for n in range(1, len(lit) + 1) if lit[:n] in needs)
        for lit in needs
    }
    return ContentRules(
        tuple(rules), trusted, trigger, by_literal, frozenset(always), found_with,
        tuple(conjunctions),
    )  # fmt: skip


def _rule_patterns(t: Table, by_id: dict[str, ContentRule]) -> list[re.Pattern[str]]:
    """A rule's compiled `patterns`, after those of its `patterns_from` rule if it names one."""
    source = t.get("patterns_from", str, "")
    raw = string_list(t, "patterns", [])
    patterns = [compile_pattern(p, f"{t.key('patterns')}[{i}]") for i, p in enumerate(raw)]
    if source:
        base = by_id.get(source)
        if base is None:
            raise ConfigError(f"{t.key('patterns_from')}: no earlier rule {source!r}")
        patterns = [*base.patterns, *patterns]
    if not patterns:
        raise ConfigError(f"{t.key('patterns')}: give at least one pattern")
    return patterns


def _rule_conditions(t: Table) -> tuple[list[str], list[re.Pattern[str]]]:
    """A rule's checked `requires` features and its compiled `unless` patterns."""
    requires = string_list(t, "requires", [])
    for i, feature in enumerate(requires):
        if feature not in FEATURES:
            raise ConfigError(
                f"{t.key('requires')}[{i}]: one of {sorted(FEATURES)}, got {feature!r}"
            )
    unless = [
        compile_pattern(p, f"{t.key('unless')}[{i}]")
        for i, p in enumerate(string_list(t, "unless", []))
    ]
    return requires, unless


def _conjunctions(
    patterns: Sequence[re.Pattern[str]],
) -> tuple[tuple[frozenset[str], ...], ...] | None:
    """Per pattern, the literal groups it needs; None when some pattern needs no literal (the
    rule must then run on every message)."""
    conj: list[tuple[frozenset[str], ...]] = []
    for p in patterns:
        groups = required_literal_groups(p)
        if groups is None:
            return None
        conj.append(groups)
    return tuple(conj)


def _literal_closure(needs: dict[str, set[int]]) -> dict[str, frozenset[int]]:
    """Rules to run when the trigger reports a literal. At one position the trie regex reports
    the longest literal; the shorter ones starting there (its prefixes) count as found too."""
    out: dict[str, frozenset[int]] = {}
    for lit in needs:
        idx: set[int] = set()
        for n in range(1, len(lit) + 1):
            idx |= needs.get(lit[:n], set())
        out[lit] = frozenset(idx)
    return out


def _merge(
    patterns: Sequence[re.Pattern[str]], cache: dict[tuple[str, ...], tuple[re.Pattern[str], ...]]
) -> tuple[re.Pattern[str], ...]:
    """One alternation for the rule when the patterns allow it (one scan instead of several).
    Rules with the same patterns (`patterns_from`) share the compiled objects, so a message
    scans them once."""
    key = tuple(p.pattern for p in patterns)
    merged = cache.get(key)
    if merged is not None:
        return merged
    if len(patterns) == 1 or any(p.groups for p in patterns):  # back-references would shift
        merged = tuple(patterns)
    else:
        try:
            merged = (re.compile("|".join(f"(?:{p.pattern})" for p in patterns)),)
        except re.error:  # pragma: no cover - each compiled alone, so the union compiles
            merged = tuple(patterns)
    cache[key] = merged
    return merged


def _trusted_domains(brands: Path | None) -> frozenset[str]:
    if brands is None or not brands.exists():
        return frozenset()
    table = read_rule_file(brands)
    try:
        parsed = parse_url_rules(table)
        table.done()
    except ConfigError as exc:
        raise ConfigError(f"{brands}: {exc}") from exc
    return parsed.trusted | parsed.trusted_extra


class ContentDetector(RuleBacked[ContentRules]):
    name = "content"

    @classmethod
    def from_file(
        cls, path: str | Path = DEFAULT_CONTENT, *, brands: str | Path | None = None
    ) -> ContentDetector:
        """Rules from `path`; brands' real domains (what a `link` is not) from `brands`,
        default brands.toml beside the rule file."""
        path = Path(path)
        brands_path = Path(brands) if brands is not None else path.parent / "brands.toml"
        if brands is None and not brands_path.exists():
            brands_path = DEFAULT_BRANDS

        def parse(root: Table) -> ContentRules:
            return parse_content_rules(root, _trusted_domains(brands_path))

        rf = RuleFile(path, parse)
        return cls(rf.current, rule_file=rf)

    def inspect(self, sms: SmsEvent, now: float) -> Sequence[Reason]:
        text = sms.text
        if not text:
            return ()
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT]
        rules = self._rules
        norm = normalise(text)
        t = norm.text
        present: set[str] = set()
        if rules.trigger is not None:
            found_with = rules.found_with
            search = rules.trigger.search
            m = search(t)
            while m is not None:  # every position: literals may overlap
                present |= found_with[m.group()]
                m = search(t, m.start() + 1)
        todo = rules.to_run(frozenset(present))
        if not todo:
            return ()
        out: list[Reason] = []
        features: frozenset[str] | None = None
        found: dict[int, tuple[Span, ...]] = {}  # id(patterns) -> spans; rules share patterns
        all_rules = rules.rules
        for i in todo:
            rule = all_rules[i]
            if rule.requires and features is not None and not rule.requires & features:
                continue
            key = id(rule.patterns)
            spans = found.get(key)
            if spans is None:
                spans = found[key] = _match(rule.patterns, norm)
            if not spans:
                continue
            if rule.unless and any(u.search(t) is not None for u in rule.unless):
                continue
            if rule.requires:
                if features is None:
                    features = self._features(text, rules)
                if not rule.requires & features:
                    continue
            out.append(
                Reason(
                    detector=self.name,
                    rule_id=rule.id,
                    score=rule.score,
                    description=rule.description,
                    spans=spans,
                    block=rule.block,
                )
            )
        return out

    @staticmethod
    def _features(text: str, rules: ContentRules) -> frozenset[str]:
        found: set[str] = set()
        for u in extract_urls(text):
            if u.homoglyph or u.userinfo or not rules.is_trusted(u.domain):
                found.add("link")
                break
        if has_phone(text):
            found.add("phone")
        return frozenset(found)


def _possible(
    conj: tuple[tuple[frozenset[str], ...], ...] | None, present: frozenset[str]
) -> bool:
    """Whether one of the patterns has every part it needs present (None: parts unknown, the
    rule may match). Plain loops: this runs for every triggered rule of a new literal set."""
    if conj is None:
        return True
    for groups in conj:
        for group in groups:
            if group.isdisjoint(present):
                break
        else:
            return True
    return False


def _match(patterns: tuple[re.Pattern[str], ...], norm: Normalised) -> tuple[Span, ...]:
    """Where the patterns match (original-text spans, in order, at most MAX_SPANS); () if not."""
    t = norm.text
    spans: list[Span] = []
    for p in patterns:
        for m in p.finditer(t):
            if m.end() > m.start():
                spans.append(norm.span(m.start(), m.end()))
                if len(spans) >= MAX_SPANS:
                    break
        if len(spans) >= MAX_SPANS:
            break
    if len(spans) > 1:
        spans = sorted(set(spans), key=lambda s: (s.start, s.end))
    return tuple(spans)
