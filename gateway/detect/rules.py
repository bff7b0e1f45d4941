"""What the rule-driven detectors share: reading a rule file (errors name the file and the key),
text normalisation for matching, the look-alike "skeleton" used to compare names, compiling
rule patterns, and reloading a rule file when it changes.

Normalisation (`normalise`) turns a message into what rules are matched on:

* lower case; `ё` → `е`; Kazakh letters folded to their look-alikes (`қ`→`к`, `ң`→`н`, `ү`/`ұ`
  → `у`, `ә`→`а`, `ө`→`о`, `і`→`i`, `ғ`→`г`, `һ`→`h`), so «кодты айтыныз» typed without Kazakh
  letters matches «кодты айтыңыз»;
* Cyrillic, Greek, full-width and "mathematical" letters that look like Latin ones folded to
  that Latin letter (`а`→`a`, `с`→`c`, `р`→`p`, `к`→`k`, ...), so "kаspi" with a Cyrillic `а`
  and "Kaspi" give the same text. Rule patterns are folded the same way when compiled, so a rule
  author writes plain Russian/Kazakh («назовите код») and it matches whatever mix of alphabets
  the sender used;
* digits and signs standing for letters inside a word (`c0de`, `ka5pi`, `к0д`, `ca$h`) read as
  letters; every kind of white space is a plain space;
* and, only when present (so a normal message costs no index map): runs of spaces collapsed,
  invisible characters (zero-width, soft hyphen, bidi controls) removed, letter-by-letter
  spelling («к о д», "c-o-d-e", «к.о.д») joined.

Matches on the normalised text are mapped back to positions in the original text
(`Normalised.span`), so a Reason's spans always point into `SmsEvent.text`.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import tomllib
import unicodedata
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import Any, Generic, TypeVar

from gateway.config_check import ConfigError, Table
from gateway.domain import Route, Span

__all__ = [
    "DEFAULT_RULES_DIR",
    "ConfigError",
    "Normalised",
    "RuleFile",
    "Table",
    "compile_pattern",
    "fold",
    "normalise",
    "read_rule_file",
    "skeleton",
]

log = logging.getLogger("fraudgate.detect")

DEFAULT_RULES_DIR = Path(__file__).resolve().parent.parent.parent / "config" / "rules"

# --------------------------------------------------------------------------------------------
# Folding tables (built once at import)

_SPACE = " "
_INVISIBLE = "\u200b"  # every invisible character is first mapped to this one, then removed

_CONFUSABLES: dict[str, str] = {
    # Cyrillic (lower case; text is lower-cased first) -> Latin look-alike or Russian base letter
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ь": "b", "п": "n", "и": "u", "г": "r",
    "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "һ": "h",
    "ү": "y", "ұ": "y", "қ": "k", "ң": "h", "ә": "a", "ө": "o", "ғ": "r", "ҙ": "з", "ӑ": "a",
    "ӓ": "a", "ӧ": "o", "ӱ": "y", "ў": "y", "є": "e", "ѐ": "e", "ѝ": "u", "й": "u",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ѵ": "v",
    # Latin oddities
    "ı": "i", "ɑ": "a", "ɡ": "g", "ʀ": "r", "ɩ": "i", "ℓ": "l", "ſ": "s",
}  # fmt: skip

_SPACES = "\t\n\r\v\f\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)
_INVISIBLES = "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f" + (
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)


def _build_fold() -> dict[int, str]:
    table: dict[int, str] = {}
    # Full-width forms, enclosed and mathematical alphanumerics: NFKC gives the plain character.
    ranges = [(0xFF01, 0xFF5E), (0x2460, 0x24FF), (0x1D400, 0x1D7FF), (0x2070, 0x209F)]
    for lo, hi in ranges:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            plain = unicodedata.normalize("NFKC", ch).lower()
            if len(plain) == 1 and plain != ch:
                table[cp] = _CONFUSABLES.get(plain, plain)
    # Latin letters with diacritics -> the base letter (kаspí, hаlуk). Not Cyrillic: й, ё are
    # handled above on purpose.
    for cp in range(0xC0, 0x250):
        ch = chr(cp)
        base = unicodedata.normalize("NFD", ch)[0].lower()
        if base.isascii() and base.isalpha() and base != ch:
            table[cp] = base
    table[ord("ß")] = "s"
    for ch, to in _CONFUSABLES.items():
        table[ord(ch)] = to
        up = ch.upper()
        if len(up) == 1 and up != ch and not up.isascii():
            table[ord(up)] = to  # for pattern folding and texts whose lower() was bypassed
    for ch in _SPACES:
        table[ord(ch)] = _SPACE
    for ch in _INVISIBLES:
        table[ord(ch)] = _INVISIBLE
    for dot in "．。｡":
        table[ord(dot)] = "."
    for quote in "\u2018\u2019\u02bc\u02b9\u0060\u00b4":
        table[ord(quote)] = "'"
    return table


FOLD: dict[int, str] = _build_fold()

# Letters after folding, as explicit ranges (much cheaper for `re` than Unicode categories).
LETTER = "a-z\u00df-\u00ff\u0400-\u052f"
# Digits and signs read as letters when they sit inside a word.
_LEET = {"0": "o", "1": "i", "3": "e", "5": "s", "@": "a", "$": "s"}
_LEET_RE = re.compile(rf"[0135@$](?<=[{LETTER}][0135@$])(?=[{LETTER}])")
# Letter-by-letter spelling: at least 3 single letters, one separator between each.
_SEP = r"[ .\-_*·+/]"
_SPACED_RE = re.compile(rf"[{LETTER}](?<!\w\w)(?:{_SEP}[{LETTER}]){{2,}}(?!\w)")


# Fast path: most SMS text fits the Kazakh code page KZ-1048 (Latin, Russian and Kazakh Cyrillic,
# common punctuation), where lower-casing and folding is one byte table applied in C.
_FAST_CODEC = "kz1048"


def _build_fast_table() -> tuple[bytes, bytes]:
    table = bytearray(range(256))
    slow: list[int] = []  # bytes whose fold is not one byte of the code page (soft hyphen)
    for b in range(256):
        try:
            ch = bytes([b]).decode(_FAST_CODEC)
        except UnicodeDecodeError:
            continue
        try:
            enc = _fold_slow(ch).encode(_FAST_CODEC)
        except UnicodeEncodeError:
            slow.append(b)
            continue
        if len(enc) == 1:
            table[b] = enc[0]
        else:  # pragma: no cover - every folded character is one character
            slow.append(b)
    return bytes(table), bytes(slow)


def _fold_slow(text: str) -> str:
    low = text.lower()
    if len(low) != len(text):  # "İ" and a few others grow when lower-cased
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    return low.translate(FOLD)


_FAST_TABLE, _FAST_SLOW_BYTES = _build_fast_table()


def fold(text: str) -> str:
    """Lower-case and fold look-alikes, same length as `text` (invisibles become U+200B)."""
    try:
        raw = text.encode(_FAST_CODEC)
    except UnicodeEncodeError:
        return _fold_slow(text)
    for b in _FAST_SLOW_BYTES:
        if b in raw:
            return _fold_slow(text)
    return raw.translate(_FAST_TABLE).decode(_FAST_CODEC)


@dataclass(frozen=True, slots=True)
class Normalised:
    """A message as rules see it; `index[i]` is the original position of `text[i]` (None:
    same positions)."""

    original: str
    text: str
    index: tuple[int, ...] | None = None

    def span(self, start: int, end: int) -> Span:
        """The original text behind text[start:end]."""
        if self.index is not None:
            if end <= start:
                pos = self.index[start] if start < len(self.index) else len(self.original)
                return Span(pos, pos, "")
            start, end = self.index[start], self.index[end - 1] + 1
        return Span(start, end, self.original[start:end])


def normalise(text: str) -> Normalised:
    """The rules' view of `text`. Normalised is immutable, so results of SMS-sized texts are
    shared (the content and grey-route detectors normalise the same message, and campaigns
    repeat texts); long texts are not cached, so the cache stays under a few MiB."""
    if len(text) <= 640:
        return _normalise_cached(text)
    return _normalise(text)


@functools.lru_cache(maxsize=4096)
def _normalise_cached(text: str) -> Normalised:
    return _normalise(text)


def _normalise(text: str) -> Normalised:
    t = fold(text)
    if _LEET_RE.search(t) is not None:
        t = _LEET_RE.sub(lambda m: _LEET[m.group()], t)
    if "  " not in t and _INVISIBLE not in t and _SPACED_RE.search(t) is None:
        return Normalised(text, t)
    keep: list[int] = []
    prev = ""
    for i, ch in enumerate(t):
        if ch == _INVISIBLE or (ch == _SPACE and prev == _SPACE):
            continue
        keep.append(i)
        prev = ch
    cleaned = "".join([t[i] for i in keep])
    spaced = list(_SPACED_RE.finditer(cleaned))
    if spaced:
        drop: set[int] = set()
        for m in spaced:
            drop.update(range(m.start() + 1, m.end(), 2))
        keep = [k for j, k in enumerate(keep) if j not in drop]
        cleaned = "".join([c for j, c in enumerate(cleaned) if j not in drop])
    return Normalised(text, cleaned, tuple(keep))


# A name's skeleton: the fold above plus what makes names look alike (l/1/I, 0/O, rn/m, vv/w),
# without separators. "KASPl", "Kaspi.kz", "kаspi" and "KA5PI" share the skeleton of "kaspi".
_SKELETON_MORE = str.maketrans({"l": "i", "1": "i", "|": "i", "!": "i", "0": "o", "3": "e",
                                "5": "s", "$": "s", "@": "a"})  # fmt: skip
_SKELETON_DROP = re.compile(r"[\W_]+")


def skeleton(name: str) -> str:
    s = _SKELETON_DROP.sub("", fold(name).translate(_SKELETON_MORE))
    if "rn" in s or "vv" in s:
        s = s.replace("rn", "m").replace("vv", "w")
    return s


# --------------------------------------------------------------------------------------------
# Patterns

_NON_ASCII_RANGE = re.compile(r"[^\x00-\x7f]-[^\x00-\x7f\]]")
_UPPER_LITERAL = re.compile(r"(?<!\\)[A-Z]")


def compile_pattern(pattern: str, key: str) -> re.Pattern[str]:
    """A rule pattern, folded like the text it will be matched on. Patterns are written in
    lower case (the text is lower-cased) and may use any `re` syntax except ranges of non-ASCII
    letters (`[а-я]`: after folding they would mean something else; use `\\w`)."""
    if not pattern:
        raise ConfigError(f"{key}: empty pattern")
    if _NON_ASCII_RANGE.search(pattern):
        raise ConfigError(f"{key}: ranges of non-Latin letters ([а-я]) are not allowed; use \\w")
    if _UPPER_LITERAL.search(re.sub(r"\(\?P<\w+>|\(\?P=\w+\)|\\N\{[^}]*\}", "", pattern)):
        raise ConfigError(f"{key}: write patterns in lower case (text is lower-cased)")
    folded = "".join(c.lower() if not c.isascii() else c for c in pattern).translate(FOLD)
    try:
        compiled = re.compile(folded)
    except re.error as exc:
        raise ConfigError(f"{key}: not a valid regular expression: {exc}") from exc
    if compiled.search("") is not None:
        raise ConfigError(f"{key}: matches the empty text")
    return compiled


def string_list(t: Table, name: str, default: list[str] | None = None) -> list[str]:
    value = t.get(name, list, default)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(f"{t.key(name)}[{i}]: expected str, got {type(item).__name__}")
    return list(value)


def route_list(t: Table, name: str) -> frozenset[Route]:
    out: set[Route] = set()
    for i, item in enumerate(string_list(t, name, [])):
        try:
            out.add(Route(item))
        except ValueError:
            known = ", ".join(r.value for r in Route)
            raise ConfigError(f"{t.key(name)}[{i}]: unknown route {item!r} ({known})") from None
    return frozenset(out)


def score_of(t: Table, name: str, default: float | None = None) -> float:
    value = t.get(name, float, default)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{t.key(name)}: must be 0..1, got {value}")
    return value


# --------------------------------------------------------------------------------------------
# Rule files

T = TypeVar("T")


def read_rule_file(path: Path) -> Table:
    """The file's top-level table; errors name the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return Table(data, "")


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class RuleFile(Generic[T]):
    """A rule file compiled by `parse` (which raises ConfigError naming the key), held so that
    `reload()` swaps it in one assignment: a reader sees the old rules or the new ones, never a
    mix, and a broken file leaves the old rules in place."""

    def __init__(self, path: Path, parse: Callable[[Table], T]) -> None:
        self.path = path
        self._parse = parse
        self._lock = Lock()
        self._stamp = _stamp(path)
        self.current: T = self._load()  # raises on the first load: no rules, no detector

    def _load(self) -> T:
        table = read_rule_file(self.path)
        try:
            value = self._parse(table)
            table.done()
        except ConfigError as exc:
            raise ConfigError(f"{self.path}: {exc}") from exc
        return value

    def reload(self) -> T:
        """Re-read the file and swap; on a broken file keep the old rules, log and raise."""
        with self._lock:
            stamp = _stamp(self.path)
            try:
                value = self._load()
            except ConfigError as exc:
                self._stamp = stamp  # do not retry until the file changes again
                log.error("rule file not reloaded, keeping the previous rules: %s", exc)
                raise
            self._stamp = stamp
            self.current = value
            log.info("rule file reloaded: %s", self.path)
            return value

    def changed(self) -> bool:
        return _stamp(self.path) != self._stamp

    def maybe_reload(self) -> bool:
        """Reload when the file's mtime or size changed (one stat). True when new rules are in
        use; raises ConfigError (once per change) when the changed file is broken."""
        if not self.changed():
            return False
        self.reload()
        return True


# --------------------------------------------------------------------------------------------
# Prefilter: literals a pattern cannot match without, and one regex that finds them all

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import sre_constants as _sc
    import sre_parse as _sp

_MIN_LITERAL = 3
_MAX_EXPANSION = 24
_REPEATS = (_sc.MAX_REPEAT, _sc.MIN_REPEAT, getattr(_sc, "POSSESSIVE_REPEAT", _sc.MAX_REPEAT))


def _better(a: set[str] | None, b: set[str] | None) -> set[str] | None:
    if a is None or not a:
        return b
    if b is None or not b:
        return a
    qa, qb = min(map(len, a)), min(map(len, b))
    if qa != qb:
        return a if qa > qb else b
    return a if len(a) <= len(b) else b


def _req_seq(items: Any) -> set[str] | None:
    """The best literal set the sequence needs (see `_better`)."""
    best: set[str] | None = None
    for group in _req_parts(items):
        best = _better(best, group)
    return best


def _req_parts(items: Any) -> list[set[str]]:
    """Every literal set the sequence's mandatory parts need (runs of literals, required
    groups), unfiltered: a set's strings may be short."""
    parts: list[set[str]] = []
    run: set[str] = {""}
    for op, av in items:
        if op is _sc.LITERAL:
            run = {s + chr(av) for s in run}
        elif (
            op is _sc.IN
            and len(av) <= 4
            and all(o is _sc.LITERAL for o, _ in av)
            and len(run) * len(av) <= _MAX_EXPANSION
        ):
            run = {s + chr(c) for s in run for _, c in av}
        else:
            if run and min(map(len, run)) > 0:
                parts.append(run)
            run = {""}
            node = _req_node(op, av)
            if node:
                parts.append(node)
    if run and min(map(len, run)) > 0:
        parts.append(run)
    return parts


def _req_node(op: Any, av: Any) -> set[str] | None:
    if op is _sc.SUBPATTERN:
        return _req_seq(av[-1])
    if op is _sc.BRANCH:
        out: set[str] = set()
        for seq in av[1]:
            r = _req_seq(seq)
            if r is None:
                return None
            out |= r
        return out
    if op in _REPEATS:
        return _req_seq(av[2]) if av[0] >= 1 else None
    if op is getattr(_sc, "ATOMIC_GROUP", None):
        return _req_seq(av)
    return None


def required_literal_groups(pattern: re.Pattern[str]) -> tuple[frozenset[str], ...] | None:
    """The literal sets every match of `pattern` needs one string of EACH of (None: none
    known, the pattern must always run). See `required_literals` for the best single set."""
    try:
        parsed = _sp.parse(pattern.pattern, pattern.flags)
    except Exception:  # a parser change must not break loading: then the rule always runs
        return None
    # every part, not only the best: a pattern `(?:назовите|скажите) ... (?:код|пароль)` needs
    # a verb AND a noun, and a message with only the verb need not run it
    groups = [g for g in _req_parts(parsed) if min(map(len, g)) >= _MIN_LITERAL]
    return tuple(frozenset(g) for g in groups) or None


def required_literals(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Strings one of which every match of `pattern` contains (None: no useful set, i.e. the
    pattern must always be run). Works on the compiled (folded) pattern's source."""
    try:
        parsed = _sp.parse(pattern.pattern, pattern.flags)
    except Exception:  # a parser change must not break loading: then the rule always runs
        return None
    req = _req_seq(parsed)
    if not req or min(map(len, req)) < _MIN_LITERAL:
        return None
    return frozenset(req)


def trie_regex(words: Iterable[str]) -> str:
    """A regex alternation of `words` factored as a trie: one branch per first character, so
    the engine tries few alternatives at each position."""
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        end = "" in node
        alts = [re.escape(ch) + build(sub) for ch, sub in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if end:
            body = "(?:" + body + ")?"
        return body

    return build(trie)


class RuleBacked(Generic[T]):
    """A detector whose rules come from a RuleFile: `rules`, `reload()`, `maybe_reload()`.

    Reloading swaps the parsed rules in one assignment; a broken file keeps the old rules and
    raises ConfigError naming the key (RuleFile.reload)."""

    name: str

    def __init__(self, rules: T, *, rule_file: RuleFile[T] | None = None) -> None:
        self._rules = rules
        self._file = rule_file

    @property
    def rules(self) -> T:
        return self._rules

    def reload(self) -> None:
        """Re-read the rule file; on error the old rules stay and ConfigError is raised."""
        if self._file is None:
            raise ConfigError(f"{self.name} detector: built without a rule file")
        self._rules = self._file.reload()

    def maybe_reload(self) -> bool:
        """Reload if the file changed since the last (attempted) load; True when reloaded."""
        if self._file is None or not self._file.changed():
            return False
        self.reload()
        return True
