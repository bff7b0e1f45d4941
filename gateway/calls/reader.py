"""Call records from operators' files: CSV or JSON lines, plain or gzip, in the operator's own
column names, time format and codes (a `Mapping`), turned into `Cdr`s (docs/calls-intake.md).

Two layers:

* `RowParser` (sans-I/O): a row of text fields -> `Cdr`, or a `CdrError` naming the field. It
  normalises numbers to E.164 digits, checks IMSI / IMEI shapes, refuses impossible times and
  durations. It keeps small caches (numbers, codes and the minute of the start time repeat
  in a switch's records), so that a canonical CSV parses at 200,000+ rows/s.
  `JsonParser` does the same for one JSON object (a .jsonl line, a streamed line).
* `read_records(path, mapping)`: the file read in blocks of lines (bounded memory whatever its
  size), yielding `(line, Cdr | CdrError)`. A bad row is one CdrError and the next line goes
  on, whatever is wrong with it: a bad field, a line that is not text in the mapping's
  encoding, a quote that does not close within MAX_RECORD_LINES lines, or an exception the
  parser did not expect. What stops the file (a header without the required columns, a
  truncated gzip, MAX_NOT_TEXT lines that are not text with no record among them) is raised as
  `CdrFileError` naming the file and the last line reached, after every record before it was
  yielded.

Synchronous on purpose: the inbox runs it in a worker thread.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import time
import tomllib
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from itertools import chain
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.calls.cdr import CAUSES, Cdr, CdrError, RecordType
from gateway.config_check import ConfigError, Table

COLUMNS: Final = tuple(f.name for f in fields(Cdr))  # the canonical columns, in Cdr order
REQUIRED: Final = ("record_type", "start")
FORMATS: Final = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}

EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC).timestamp()  # no switch wrote CDRs before
FUTURE_SLACK: Final = 86400.0  # a start more than a day ahead of `now` is a wrong clock or field
MAX_DURATION: Final = 2 * 86400.0  # longer calls are cut into partial records (TS 32.298)
MAX_LINE: Final = 64 * 1024  # bytes; a longer line is a bad row, skipped without being kept
MAX_RECORD_LINES: Final = 10  # physical lines one quoted CSV record may span (a stray quote)
MAX_NOT_TEXT: Final = 1000  # lines not text, no record among them: the file is not text
_HELD_MAX: Final = 4 * MAX_NOT_TEXT  # bad rows held back while such a run may be starting
_CACHE_MAX: Final = 100_000  # entries per cache before it starts over (bounded memory)

# TS 32.298 §5.1.2 CallEventRecord choices, as a mediation export names them.
RECORD_NAMES: Final = {
    "moCallRecord": RecordType.MOC,
    "mtCallRecord": RecordType.MTC,
    "transitRecord": RecordType.TRANSIT,
    "moSMSRecord": RecordType.SMS_MO,
    "mtSMSRecord": RecordType.SMS_MT,
}
_SEPARATORS: Final = str.maketrans("", "", " -().\u00a0")
_GZIP_MAGIC: Final = b"\x1f\x8b"


class CdrFileError(Exception):
    """A file that cannot be read on: `name` is the file, `line` the last line read whole (the
    records up to it were yielded), `reason` why it stopped."""

    def __init__(self, name: str, reason: str, *, line: int = 0) -> None:
        self.name = name
        self.reason = reason
        self.line = line
        super().__init__(f"{name}: {reason}")


class MappingError(ConfigError):
    """A mapping file (or Mapping value) that is wrong: the message names the file and key."""


# -- the mapping ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mapping:
    """How one operator writes its records. `columns`: canonical field -> the operator's
    column (CSV header) or key (JSON); a field not named there is looked for under its
    canonical name, "" means the file has no such column. `record_types` / `causes`: the
    operator's codes -> ours (the canonical names and TS 32.298 names are always known)."""

    columns: dict[str, str] = field(default_factory=dict)
    record_types: dict[str, RecordType] = field(default_factory=dict)
    causes: dict[str, int] = field(default_factory=dict)
    time_format: str = "iso"  # iso | epoch | epoch_ms | a strptime pattern ("%Y%m%d%H%M%S")
    timezone: str = ""  # "+05:00", "UTC" or an IANA name: the zone of times written without one
    delimiter: str = ","
    duration_unit: str = "s"  # s | ms
    encoding: str = "utf-8"
    format: str = ""  # "" (by the file's suffix) | csv | jsonl
    source: str = ""  # the mapping file, for messages

    def __post_init__(self) -> None:
        unknown = sorted(set(self.columns) - set(COLUMNS))
        if unknown:
            raise MappingError(f"columns.{unknown[0]}: not a CDR field ({', '.join(COLUMNS)})")
        for name in REQUIRED:
            if self.columns.get(name, name) == "":
                raise MappingError(f"columns.{name}: required, cannot be empty")
        if self.time_format not in ("iso", "epoch", "epoch_ms"):
            _check_pattern(self.time_format, self.timezone)
        _zone(self.timezone)
        if len(self.delimiter) != 1 or self.delimiter in '\r\n"':
            raise MappingError(f"delimiter: one character (not a quote or newline), got "
                               f"{self.delimiter!r}")  # fmt: skip
        if self.duration_unit not in ("s", "ms"):
            raise MappingError(f"duration_unit: s or ms, got {self.duration_unit!r}")
        if self.format not in ("", "csv", "jsonl"):
            raise MappingError(f"format: csv or jsonl, got {self.format!r}")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise MappingError(f"encoding: unknown encoding {self.encoding!r}") from None
        if "7,a;\n".encode(self.encoding, "replace") != b"7,a;\n":
            raise MappingError(f"encoding: {self.encoding!r} is not ASCII-compatible (lines "
                               "are split on the byte 0x0a)")  # fmt: skip

    def column(self, name: str) -> str:
        """The operator's name of canonical field `name` ("" when the file has none)."""
        return self.columns.get(name, name)

    @classmethod
    def load(cls, path: Path | str) -> Mapping:
        """Read a mapping file (TOML, docs/calls-intake.md). Raises MappingError naming the
        file and the key; unknown keys are refused (a typo must not silently map nothing)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise MappingError(f"{path}: cannot read the mapping file: {e.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise MappingError(f"{path}: not a TOML file: {e}") from None
        try:
            return cls._from_table(Table(data, ""), str(path))
        except ConfigError as e:
            raise MappingError(f"{path}: {e}") from None

    @classmethod
    def _from_table(cls, t: Table, source: str) -> Mapping:
        cols = t.table("columns")
        columns = {name: cols.get(name, str) for name in list(cols.data)}
        values = t.table("values")
        rt_table = values.table("record_type")
        record_types: dict[str, RecordType] = {}
        for code in list(rt_table.data):
            canonical = rt_table.get(code, str)
            if canonical not in RecordType.__members__:
                raise MappingError(f"values.record_type.{code}: {canonical!r} is not one of "
                                   f"{', '.join(RecordType.__members__)}")  # fmt: skip
            record_types[code] = RecordType(canonical)
        cause_table = values.table("cause")
        causes: dict[str, int] = {}
        for code in list(cause_table.data):
            value = cause_table.data[code]
            cause_table.seen.add(code)
            if isinstance(value, str) and value in CAUSES:
                causes[code] = CAUSES[value]
            elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                causes[code] = value
            else:
                raise MappingError(f"values.cause.{code}: a cause number or one of "
                                   f"{', '.join(CAUSES)}, got {value!r}")  # fmt: skip
        rt_table.done()
        cause_table.done()
        values.done()
        cols.done()
        mapping = cls(
            columns=columns,
            record_types=record_types,
            causes=causes,
            time_format=t.get("time_format", str, "iso"),
            timezone=t.get("timezone", str, ""),
            delimiter=t.get("delimiter", str, ","),
            duration_unit=t.get("duration_unit", str, "s"),
            encoding=t.get("encoding", str, "utf-8"),
            format=t.get("format", str, ""),
            source=source,
        )
        t.done()
        return mapping


def _zone(text: str) -> tzinfo | None:
    """The zone named by a mapping's `timezone`: "+05:00" / "-03:30", "UTC" / "Z", or an IANA
    name ("Asia/Almaty"). None when not set."""
    if not text:
        return None
    if text in ("UTC", "Z"):
        return UTC
    if text[0] in "+-":
        hh, sep, mm = text[1:].partition(":")
        digits = hh + mm  # ASCII only: int() takes other scripts' digits, refuses "²"
        if sep and len(hh) == len(mm) == 2 and digits.isascii() and digits.isdigit():
            offset = timedelta(hours=int(hh), minutes=int(mm))
            if offset < timedelta(hours=15) and int(mm) < 60:
                return timezone(-offset if text[0] == "-" else offset)
        raise MappingError(f"timezone: expected +HH:MM, got {text!r}")
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(f"timezone: unknown zone {text!r} (+HH:MM, UTC or an IANA name)"
                           ) from None  # fmt: skip


def _check_pattern(pattern: str, zone: str) -> None:
    """A strptime pattern must give the date and time to the minute (it is round-tripped on a
    sample), and a zone must come from it (%z) or from `timezone`."""
    if "%" not in pattern:
        raise MappingError(f"time_format: iso, epoch, epoch_ms or a strptime pattern, got "
                           f"{pattern!r}")  # fmt: skip
    sample = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
    try:
        back = datetime.strptime(sample.strftime(pattern), pattern)
    except ValueError as e:
        raise MappingError(f"time_format: {pattern!r} is not a usable pattern: {e}") from None
    if back.replace(second=0, microsecond=0, tzinfo=None) != datetime(2001, 2, 3, 4, 5):
        raise MappingError(f"time_format: {pattern!r} does not give the date and the time "
                           "(%Y %m %d %H %M at least)")  # fmt: skip
    if back.tzinfo is None and not zone:
        raise MappingError(f"timezone: required, the time_format {pattern!r} has no zone (%z)")


DEFAULT_MAPPING: Final = Mapping()


# -- fields ---------------------------------------------------------------------------------


def e164(raw: str) -> str:
    """A number as E.164 digits ("" stays ""). '+' and "00" / "810" international prefixes
    are removed; Kazakh national forms become international: 8 7xx... (11 digits) and 7xx...
    (10 digits) -> 7 7xx... Any other run of digits is kept as written (international digits
    without '+', short codes such as 102). Raises ValueError with a reason that does not
    repeat the number (personal data)."""
    if raw.isdigit() and raw.isascii():  # as switches write them: no cleaning needed
        s = raw
    else:
        s = raw.strip().translate(_SEPARATORS)
        if not s:
            return ""
    plus = s[0] == "+"
    body = s[1:] if plus else s
    if not (body.isascii() and body.isdigit()):
        raise ValueError(f"not a number ({len(raw)} characters, not only digits)")
    if body.startswith("00"):
        body, plus = body[2:], True
    elif not plus and body.startswith("810") and len(body) > 10:
        body, plus = body[3:], True
    if not plus:
        if len(body) == 11 and body.startswith("87"):
            body = "7" + body[1:]
        elif len(body) == 10 and body[0] == "7":
            body = "7" + body
    if not 1 <= len(body) <= 15:
        raise ValueError(f"not a number ({len(body)} digits, E.164 has at most 15)")
    return body


def imei_of(raw: str) -> str:
    """An IMEI's digits: 14 (without check digit) or 15 kept as written; an IMEISV (16 digits:
    14 + a 2-digit software version) becomes the 15-digit IMEI (its 14 digits + the Luhn check
    digit, 3GPP TS 23.003 §6.2.1), so that both forms of one device compare equal."""
    s = raw.strip()
    if not s:
        return ""
    if not (s.isascii() and s.isdigit()) or not 14 <= len(s) <= 16:
        raise ValueError(f"not an IMEI ({len(s)} characters, expected 14 to 16 digits)")
    if len(s) == 16:
        return s[:14] + luhn_digit(s[:14])
    return s


def luhn_digit(digits: str) -> str:
    """The Luhn check digit of an IMEI's 14 digits (TS 23.003 Annex B): every second digit
    from the left doubled."""
    total = 0
    for i, ch in enumerate(digits):
        v = ord(ch) - 48
        if i % 2:
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return str(-total % 10)


def _imsi(raw: str) -> str:
    s = raw.strip()
    if s and not (s.isascii() and s.isdigit() and 6 <= len(s) <= 15):
        raise ValueError(f"not an IMSI ({len(s)} characters, expected 6 to 15 digits)")
    return s


# -- rows -----------------------------------------------------------------------------------


class RowParser:
    """Text fields -> Cdr, per the mapping. `index[i]` is the position of COLUMNS[i] in a row,
    -1 when the source has no such column: rows are passed with "" appended, so row[-1] is
    the empty value. Raises CdrError naming the field (the caller adds where)."""

    def __init__(self, mapping: Mapping, index: list[int], *, now: float | None = None) -> None:
        self.index = tuple(index)
        self.tz = _zone(mapping.timezone)
        self.scale = 0.001 if mapping.duration_unit == "ms" else 1.0
        self.types: dict[str, RecordType] = {t.value: t for t in RecordType}
        self.types.update(RECORD_NAMES)
        self.types.update(mapping.record_types)
        self.causes: dict[str, int] = {name: code for name, code in CAUSES.items()}
        self.causes.update({str(code): code for code in range(256)})
        self.causes[""] = 0
        self.causes.update(mapping.causes)
        self.numbers: dict[str, str] = {"": ""}
        self.minutes = _Minutes()
        self.time: Callable[[str], float] = self._time_parser(mapping)
        self.latest = 0.0
        self.at(time.time() if now is None else now)
        self.parse: Callable[[list[str]], Cdr] = self._compile()
        """A row (with "" appended) -> Cdr; raises CdrError naming the field."""

    def at(self, now: float) -> None:
        """Times after now + FUTURE_SLACK are refused (a long-running stream moves it on)."""
        self.latest = now + FUTURE_SLACK

    def _compile(self) -> Callable[[list[str]], Cdr]:
        """`parse` as a closure over locals: the hot path reads no attribute but `latest`."""
        (i_type, i_start, i_dur, i_imsi, i_imei, i_msisdn, i_calling, i_called, i_cause,
         i_lac, i_cell, i_in, i_out, i_id) = self.index  # fmt: skip
        types, causes, numbers = self.types.get, self.causes.get, self.numbers.get
        parse_time, scale, earliest = self.time, self.scale, EARLIEST
        record_type, number, cause_of, checked = (
            self._record_type,
            self._number,
            self._cause,
            self._checked,
        )

        def parse(r: list[str]) -> Cdr:
            s = r[i_type]
            rtype = types(s)
            if rtype is None:
                rtype = record_type(s)
            start = parse_time(r[i_start])
            if not earliest <= start <= self.latest:
                raise CdrError(self._out_of_range(start, r[i_start]), field="start")
            duration = 0.0
            if s := r[i_dur]:
                try:
                    duration = float(s) * scale
                except ValueError:
                    duration = -1.0
                if not 0.0 <= duration <= MAX_DURATION:
                    raise CdrError(_bad_duration(s), field="duration")
            imsi = r[i_imsi]
            if imsi and not (imsi.isdigit() and imsi.isascii() and 6 <= len(imsi) <= 15):
                imsi = checked(_imsi, imsi, "served_imsi")
            imei = r[i_imei]
            if imei and not (imei.isdigit() and imei.isascii() and 14 <= len(imei) <= 15):
                imei = checked(imei_of, imei, "served_imei")
            s = r[i_msisdn]
            msisdn = numbers(s)
            if msisdn is None:
                msisdn = number(s, "served_msisdn")
            s = r[i_calling]
            calling = numbers(s)
            if calling is None:
                calling = number(s, "calling")
            s = r[i_called]
            called = numbers(s)
            if called is None:
                called = number(s, "called")
            s = r[i_cause]
            cause = causes(s)
            if cause is None:
                cause = cause_of(s)
            try:
                lac = int(s) if (s := r[i_lac]) else 0
                cell = int(s) if (s := r[i_cell]) else 0
            except ValueError:
                raise self._bad_int(r, i_lac, i_cell) from None
            if lac < 0 or cell < 0:
                raise self._bad_int(r, i_lac, i_cell)
            return Cdr(rtype, start, duration, imsi, imei, msisdn, calling, called, cause, lac,
                       cell, r[i_in].strip(), r[i_out].strip(), r[i_id].strip())  # fmt: skip

        return parse

    # the slow paths: first sight of a value, and errors

    @staticmethod
    def _checked(fn: Callable[[str], str], s: str, name: str) -> str:
        try:
            return fn(s)
        except ValueError as e:
            raise CdrError(str(e), field=name) from None

    def _number(self, s: str, name: str) -> str:
        try:
            value = e164(s)
        except ValueError as e:
            raise CdrError(str(e), field=name) from None
        if len(self.numbers) >= _CACHE_MAX:
            self.numbers.clear()
            self.numbers[""] = ""
        self.numbers[s] = value
        return value

    def _record_type(self, s: str) -> RecordType:
        rtype = self.types.get(s.strip())
        if rtype is None:
            if not s.strip():
                raise CdrError("missing", field="record_type")
            raise CdrError(f"unknown record type {s[:40]!r} (map it in [values.record_type])",
                           field="record_type")  # fmt: skip
        return rtype

    def _cause(self, s: str) -> int:
        t = s.strip()
        cause = self.causes.get(t)
        if cause is not None:
            return cause
        if t.isascii() and t.isdigit():
            return int(t)
        raise CdrError(f"not a cause for termination: {s[:40]!r}", field="cause")

    @staticmethod
    def _bad_int(r: list[str], i_lac: int, i_cell: int) -> CdrError:
        for i, name in ((i_lac, "lac"), (i_cell, "cell")):
            s = r[i].strip()
            if s and not (s.isascii() and s.isdigit()):
                return CdrError(f"not a whole number >= 0: {s[:40]!r}", field=name)
        return CdrError("not a whole number >= 0", field="lac")

    def _out_of_range(self, t: float, s: str) -> str:
        if t < EARLIEST:
            return f"{s[:40]!r} is before 2000-01-01"
        if t > self.latest:
            return f"{s[:40]!r} is more than a day in the future"
        return f"{s[:40]!r} is not a time"

    def _time_parser(self, mapping: Mapping) -> Callable[[str], float]:
        fmt = mapping.time_format
        if fmt == "iso":
            return self._iso
        if fmt in ("epoch", "epoch_ms"):
            scale = 0.001 if fmt == "epoch_ms" else 1.0

            def epoch(s: str) -> float:
                try:
                    return float(s) * scale
                except ValueError:
                    raise CdrError(_bad_time(s, fmt), field="start") from None

            return epoch
        return _pattern_parser(fmt, self.tz)

    def _iso(self, s: str) -> float:
        """ISO 8601 times, by minute: a switch writes many records a minute, so the minute
        (everything but the seconds, zone and fraction included) is parsed once and the
        seconds added (fromisoformat + timestamp cost four times more than this)."""
        sec = _SECONDS.get(s[17:19])
        if sec is not None and s[16:17] == ":":
            key = s[:17] + s[19:]
            base = self.minutes.get(key)
            if base is None:
                try:
                    base = self._iso_full(s[:17] + "00" + s[19:])
                except CdrError:
                    return self._iso_full(s)  # raises, naming the string as written
                self.minutes.put(key, base)
            return base + sec
        return self._iso_full(s)

    def _iso_full(self, s: str) -> float:
        try:
            t = datetime.fromisoformat(s)
        except ValueError as e:
            try:
                t = datetime.fromisoformat(s.strip())
            except ValueError:
                raise CdrError(_bad_time(s, "an ISO 8601 time", e), field="start") from None
        if t.tzinfo is None:
            if self.tz is None:
                raise CdrError(f"{s[:40]!r} has no zone and the mapping sets no timezone",
                               field="start")  # fmt: skip
            t = t.replace(tzinfo=self.tz)
        return t.timestamp()


# The seconds of a time as written, "00" to "59": a lookup is faster than isascii() + isdigit()
# + int(), and lets nothing else through ("0²" is isdigit() but int() refuses it; "٣٠" is
# int() 30). Anything else (a leap second "60", a fraction) takes the slow path.
_SECONDS: Final = {f"{i:02d}": i for i in range(60)}


class _Minutes(dict[str, float]):
    """A bounded cache of parsed minutes (started over when full)."""

    def put(self, key: str, value: float) -> None:
        if len(self) >= 4096:
            self.clear()
        self[key] = value


def _bad_duration(s: str) -> str:
    try:
        float(s)
    except ValueError:
        return f"not a number of seconds: {s[:40]!r}"
    return f"{s[:40]!r} out of range (0 to {MAX_DURATION:.0f} s)"


def _bad_time(s: str, what: str, e: Exception | None = None) -> str:
    if not s.strip():
        return "missing"
    why = f" ({e})" if e is not None and "Invalid isoformat" not in str(e) else ""
    return f"{s[:40]!r} is not {what}{why}"


_WIDTHS: Final = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}


def _pattern_parser(pattern: str, tz: tzinfo | None) -> Callable[[str], float]:
    """A strptime pattern's parser. Patterns of fixed-width %Y %m %d %H %M %S and literal
    characters ("%Y%m%d%H%M%S", "%d.%m.%Y %H:%M:%S") are cut by position (strptime costs ten
    times more); anything else, and any string that does not fit, goes to strptime."""
    slices: list[tuple[str, int, int]] = []
    literals: list[tuple[int, str]] = []
    pos, i, fast = 0, 0, True
    while i < len(pattern):
        if pattern[i] == "%":
            d = pattern[i + 1 : i + 2]
            if d not in _WIDTHS:
                fast = False
                break
            slices.append((d, pos, pos + _WIDTHS[d]))
            pos += _WIDTHS[d]
            i += 2
        else:
            literals.append((pos, pattern[i]))
            pos += 1
            i += 1
    width = pos
    order = [d for d, _, _ in slices]
    fast = fast and len(set(order)) == len(order) and {"Y", "m", "d", "H", "M"} <= set(order)
    parts = {d: (a, b) for d, a, b in slices}
    cut = [parts.get(d, (0, 0)) for d in "YmdHMS"]

    def slow(s: str) -> float:
        try:
            t = datetime.strptime(s.strip(), pattern)
        except ValueError as e:
            raise CdrError(_bad_time(s, pattern, e), field="start") from None
        if t.tzinfo is None:
            t = t.replace(tzinfo=tz)
        return t.timestamp()

    if not fast:
        return slow

    minutes = _Minutes()
    sa, sb = parts.get("S", (width, width))

    def minute(s: str) -> float | None:
        if any(s[p] != c for p, c in literals):
            return None
        fields = [s[a:b] for a, b in cut[:5]]
        if not all(f.isascii() and f.isdigit() for f in fields):
            return None
        y, mo, d, h, mi = map(int, fields)
        try:
            return datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()
        except ValueError as e:  # month 13, 31 April: strptime would say less
            raise CdrError(_bad_time(s, pattern, e), field="start") from None

    def fixed(s: str) -> float:
        if len(s) != width:
            return slow(s)
        sec = _SECONDS.get(s[sa:sb] or "00")
        if sec is None:
            return slow(s)
        key = s[:sa] + s[sb:]
        base = minutes.get(key)
        if base is None:
            base = minute(s)
            if base is None:
                return slow(s)  # not digits where the pattern has them: strptime says why
            minutes.put(key, base)
        return base + sec

    return fixed


# -- files ----------------------------------------------------------------------------------


def file_format(path: Path, mapping: Mapping = DEFAULT_MAPPING) -> str:
    """csv or jsonl: the mapping's `format`, else the suffix (after a .gz)."""
    if mapping.format:
        return mapping.format
    name = path.name.lower().removesuffix(".gz")
    fmt = FORMATS.get(Path(name).suffix)
    if fmt is None:
        raise CdrFileError(path.name, "unknown format: the name ends neither in .csv nor in "
                           ".jsonl / .ndjson / .json (optionally .gz), and the mapping sets no "
                           "format")  # fmt: skip
    return fmt


def read_records(
    path: Path | str,
    mapping: Mapping = DEFAULT_MAPPING,
    *,
    start_line: int = 0,
    now: float | None = None,
) -> Generator[tuple[int, Cdr | CdrError], None, None]:
    """The records of a CDR file, as (line number, Cdr or CdrError), from the first line after
    `start_line` (a checkpoint: lines up to it are read but not converted). Raises
    CdrFileError when the file cannot be read on (after yielding what came before)."""
    path = Path(path)
    fmt = file_format(path, mapping)
    try:
        raw = path.open("rb")
    except OSError as e:
        raise CdrFileError(path.name, f"cannot open: {e.strerror}") from None
    with raw:
        try:
            gz = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
        except OSError as e:
            raise CdrFileError(path.name, f"cannot read: {e.strerror}") from None
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        with stream:
            lines = _Lines(stream, path.name, mapping.encoding)
            if fmt == "csv":
                yield from _csv_records(lines, mapping, start_line, now)
            else:
                yield from _json_records(lines, mapping, start_line, now)


class _Readable(Protocol):
    def read1(self, size: int = -1, /) -> bytes: ...


_BLOCK = 256 * 1024  # bytes read at once: decoded and split in one call each


class _Lines:
    """A binary stream's lines as text, without their "\\n" (a "\\r" before it stays), read
    in blocks (at most _BLOCK + MAX_LINE bytes in memory, whatever the file). A line that
    cannot be given (longer than MAX_LINE bytes, or not text in `encoding`) is yielded as ""
    and `marks[line]` says why (the reader pops it: memory stays bounded). Read errors (a
    truncated or corrupt gzip) are raised as CdrFileError naming the last line read whole,
    after every line before it was yielded."""

    def __init__(self, stream: _Readable, name: str, encoding: str) -> None:
        self.stream = stream
        self.name = name
        self.encoding = encoding
        self.marks: dict[int, _Mark] = {}

    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(self._blocks())

    def _blocks(self) -> Iterator[list[str]]:
        # read1: what one read of the file gives, so that an error (a truncated gzip) loses
        # only what comes after the data already returned
        read, n, tail, skipping = self.stream.read1, 0, b"", False
        try:
            while block := read(_BLOCK):
                data = tail + block if tail else block
                if skipping:  # the rest of a long line, dropped up to its end
                    nl = data.find(b"\n")
                    if nl < 0:
                        continue
                    data, skipping = data[nl + 1 :], False
                cut = data.rfind(b"\n")
                tail = data[cut + 1 :]
                if cut >= 0:
                    lines = self._decode(data[:cut], n)
                    n += len(lines)
                    yield lines
                if len(tail) > MAX_LINE:
                    n += 1
                    self.marks[n] = _Mark(_TOO_LONG, False)
                    tail, skipping = b"", True
                    yield [""]
            if tail:
                yield self._decode(tail, n)
        except (EOFError, OSError, zlib.error) as e:
            raise CdrFileError(self.name, f"cannot read past line {n}: {_read_error(e)}",
                               line=n) from None  # fmt: skip

    def _decode(self, raw: bytes, n: int) -> list[str]:
        """The lines of `raw` (lines n+1...); one decode and one split for the whole block
        unless a line is too long or a byte is not text, when it goes line by line."""
        parts = raw.split(b"\n")
        if max(map(len, parts)) <= MAX_LINE:
            try:
                return raw.decode(self.encoding).split("\n")
            except UnicodeDecodeError:
                pass
        lines: list[str] = []
        for i, part in enumerate(parts, n + 1):
            if len(part) > MAX_LINE:
                self.marks[i] = _Mark(_TOO_LONG, False)
                lines.append("")
                continue
            try:
                lines.append(part.decode(self.encoding))
            except UnicodeDecodeError as e:
                # the byte and where it is, never the text around it (personal data)
                self.marks[i] = _Mark(f"not {self.encoding} text (byte {part[e.start]:#04x} "
                                      f"at byte {e.start + 1} of the line)", True)  # fmt: skip
                lines.append("")
        return lines


class _Mark(NamedTuple):
    """Why _Lines gave a line as "": `reason` for the bad row; `not_text` when it could not be
    decoded (a run of those is a file that is not text)."""

    reason: str
    not_text: bool


_TOO_LONG: Final = f"line over {MAX_LINE // 1024} KiB, skipped"


def _read_error(e: BaseException) -> str:
    if isinstance(e, EOFError):
        return "truncated (the compressed data ends before its end marker)"
    if isinstance(e, gzip.BadGzipFile | zlib.error):
        return f"corrupt gzip data ({e})"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def _where(name: str, line: int) -> str:
    return f"{name}:{line}"


def _unexpected(e: BaseException) -> str:
    """A bad row's reason for an exception the parser did not expect: its type only (its
    message may quote the field, which may be personal data)."""
    return f"cannot be read ({type(e).__name__})"


_Item = tuple[int, Cdr | CdrError]
_Bad = tuple[int, CdrError]


class _Rows:
    """The slow paths shared by the CSV and JSON loops: bad rows, and the run of lines that
    are not text. From the first such line after the last record, bad rows are held back
    (not yielded); the next record releases them. MAX_NOT_TEXT of them with no record among
    them stop the file with a CdrFileError whose line is the one before the run: what was
    yielded ends there, so a checkpoint does not pass lines that another `encoding` would
    read. A file with an odd bad line in another encoding loses that line only."""

    def __init__(self, lines: _Lines) -> None:
        self.name = lines.name
        self.encoding = lines.encoding
        self.marks = lines.marks
        self.held: list[_Bad] = []  # the fast loops test it before each record: never rebound
        self.not_text = 0  # of the held rows

    def bad_row(self, line: int, error: CdrError, *, not_text: bool = False) -> Iterator[_Item]:
        held = self.held
        if not_text:
            self.not_text += 1
            if self.not_text >= MAX_NOT_TEXT:
                raise self._not_text_error(held[0] if held else (line, error))
        elif not held:
            yield line, error
            return
        held.append((line, error))
        if len(held) >= _HELD_MAX:  # junk that decodes too: not a run of another encoding
            yield from self.release()

    def release(self) -> list[_Bad]:
        out = self.held[:]
        self.held.clear()
        self.not_text = 0
        return out

    def failed(self, line: int, first: int, e: Exception) -> Iterator[_Item]:
        """The row ending on `line` (beginning on `first`) raised `e` while parsed."""
        where = _where(self.name, first)
        if isinstance(e, CdrError):
            error = CdrError(e.reason, where=where, field=e.field)
        else:
            error = CdrError(_unexpected(e), where=where)
        yield from self.bad_row(line, error)

    def marked(self, line: int) -> Iterator[_Item]:
        """A blank line: a bad row when _Lines could not give it."""
        mark = self.marks.pop(line, None)
        if mark is not None:
            error = CdrError(mark.reason, where=_where(self.name, line))
            yield from self.bad_row(line, error, not_text=mark.not_text)

    def _not_text_error(self, first: _Bad) -> CdrFileError:
        line, error = first
        self.held.clear()
        self.not_text = 0
        return CdrFileError(
            self.name, f"not {self.encoding} text: {MAX_NOT_TEXT} lines from line {line} on "
            f"cannot be decoded, with no record among them (line {line}: {error.reason}); "
            f"read up to line {line - 1}: set the mapping's encoding if it is text",
            line=line - 1,
        )  # fmt: skip


def _csv_records(
    lines: _Lines, mapping: Mapping, start_line: int, now: float | None
) -> Iterator[_Item]:
    """CSV rows: a line without a quote is split on the delimiter (four times faster than the
    csv module); a line with one goes to `csv` (_CsvRows.quoted). The line yielded is the
    record's last (the checkpoint resumes after it); `where` names its first."""
    it = iter(lines)
    header, n = _csv_header(it, lines, mapping.delimiter)
    if not header:
        return  # an empty file: nothing to read
    parser = RowParser(mapping, _header_index(header, mapping, lines.name, n), now=now)
    rows = _CsvRows(lines, it, mapping.delimiter, len(header), parser.parse, start_line)
    parse, width, delimiter, marks, held = (
        parser.parse, len(header), mapping.delimiter, lines.marks, rows.held
    )  # fmt: skip
    try:
        for text in it:
            n += 1
            if '"' in text:
                n = yield from rows.quoted(text, n)
                continue
            if n <= start_line:
                if not text:
                    marks.pop(n, None)
                continue
            row = text.rstrip("\r").split(delimiter)
            if len(row) != width:
                yield from rows.misfit(n, n, row)
                continue
            row.append("")
            try:
                record = parse(row)
            except Exception as e:  # any: one row never stops the file
                yield from rows.failed(n, n, e)
                continue
            if held:
                yield from rows.release()
            yield n, record
    except CdrFileError:
        yield from rows.release()  # bad rows held before a read error (none if not text)
        raise
    yield from rows.release()


def _csv_header(it: Iterator[str], lines: _Lines, delimiter: str) -> tuple[list[str], int]:
    """The first line that is not blank, split, and its last line number ([] at the end)."""
    name, n = lines.name, 0
    for text in it:
        n += 1
        if not text and (mark := lines.marks.pop(n, None)) is not None:
            raise CdrFileError(name, f"the header (line {n}): {mark.reason}", line=n)
        if '"' in text:
            header, taken, why = _quoted(text, it, delimiter, lines.marks, n)
            if why is not None:
                raise CdrFileError(name, f"the header (line {n}) is not CSV: {why}", line=n)
            n += len(taken)
        else:
            header = text.rstrip("\r").split(delimiter)
        if any(cell.strip() for cell in header):
            header[0] = header[0].removeprefix("\ufeff")
            return header, n
    return [], n


class _CsvRows(_Rows):
    """The CSV loop's slow paths: quoted records, rows of the wrong width."""

    def __init__(
        self,
        lines: _Lines,
        it: Iterator[str],
        delimiter: str,
        width: int,
        parse: Callable[[list[str]], Cdr],
        start_line: int,
    ) -> None:
        super().__init__(lines)
        self.it = it
        self.delimiter = delimiter
        self.width = width
        self.parse = parse
        self.start_line = start_line

    def quoted(self, text: str, n: int) -> Generator[_Item, None, int]:
        """The record beginning on line n with `text` (which has a quote); returns the last
        line read. A quote that does not close within MAX_RECORD_LINES lines (or closes into
        a row of the wrong width: a stray quote closed by another) makes line n a bad row,
        and the lines it took are read again as rows of their own."""
        queue, line = [text], n
        while queue:
            text = queue.pop(0)
            if '"' not in text:
                yield from self.plain(line, text)
                line += 1
                continue
            row, taken, why = _quoted(text, chain(queue, self.it), self.delimiter, self.marks,
                                      line)  # fmt: skip
            last, rest = line + len(taken), queue[len(taken) :]
            if why is None and (not taken or len(row) == self.width):
                if last > self.start_line:
                    yield from self.complete(last, line, row)
                queue, line = rest, last + 1
                continue
            if why is None:
                why = (f"{len(row)} fields over lines {line} to {last}, the header has "
                       f"{self.width}: a stray quote")  # fmt: skip
            if line > self.start_line:
                error = CdrError(f"{why}; the next lines are read on their own",
                                 where=_where(self.name, line))  # fmt: skip
                yield from self.bad_row(line, error)
            queue, line = taken + rest, line + 1
        return line - 1

    def plain(self, line: int, text: str) -> Iterator[_Item]:
        """A line without a quote, read again after a quote that did not close."""
        if line <= self.start_line:
            if not text:
                self.marks.pop(line, None)
            return
        yield from self.complete(line, line, text.rstrip("\r").split(self.delimiter))

    def complete(self, line: int, first: int, row: list[str]) -> Iterator[_Item]:
        """A row of fields (lines first..line) -> its record or bad row."""
        if len(row) != self.width:
            yield from self.misfit(line, first, row)
            return
        row.append("")
        try:
            record = self.parse(row)
        except Exception as e:  # any: one row never stops the file
            yield from self.failed(line, first, e)
            return
        if self.held:
            yield from self.release()
        yield line, record

    def misfit(self, line: int, first: int, row: list[str]) -> Iterator[_Item]:
        """A row whose field count is not the header's: blank (skipped, or a line _Lines
        could not give), or a bad row."""
        if len(row) <= 1 and not row[0].strip():
            yield from self.marked(line)
            return
        error = CdrError(f"{len(row)} fields, the header has {self.width}",
                         where=_where(self.name, first))  # fmt: skip
        yield from self.bad_row(line, error)


def _quoted(
    text: str, rest: Iterator[str], delimiter: str, marks: dict[int, _Mark], line: int
) -> tuple[list[str], list[str], str | None]:
    """One CSV record beginning with `text` (line `line`, which has a quote), parsed by `csv`:
    the row, the lines it took from `rest` (a quoted field with newlines), and why it is not a
    record (None when it is): a quote still open after MAX_RECORD_LINES lines, at the end of
    the file or at a line _Lines could not give, or a csv error."""
    taken: list[str] = []
    why: list[str] = []

    def source() -> Iterator[str]:
        yield text + "\n"  # csv keeps a quoted field's newlines only when it sees them
        # csv asks for another line only while a quoted field is open
        while len(taken) < MAX_RECORD_LINES - 1:
            more = next(rest, None)
            if more is None:
                why.append("before the end of the file")
                return
            taken.append(more)
            if not more and line + len(taken) in marks:
                why.append(f"before line {line + len(taken)}, which cannot be read")
                return
            yield more + "\n"
        why.append(f"within {MAX_RECORD_LINES} lines")

    try:
        row = next(csv.reader(source(), delimiter=delimiter))
    except csv.Error as e:
        return [], taken, f"not CSV: {e}"
    if why:
        return row, taken, f"a quote opened on this line is not closed {why[0]}"
    return row, taken, None


def _header_index(header: list[str], mapping: Mapping, name: str, line: int) -> list[int]:
    """Positions of the canonical columns in the file's header (exact name, else ignoring
    case and surrounding spaces); CdrFileError when a required one is missing."""
    exact = {h: i for i, h in reversed(list(enumerate(header)))}
    loose = {h.strip().lower(): i for i, h in reversed(list(enumerate(header)))}
    index: list[int] = []
    missing: list[str] = []
    for canonical in COLUMNS:
        col = mapping.column(canonical)
        i = exact.get(col, loose.get(col.strip().lower(), -1)) if col else -1
        if i < 0 and canonical in REQUIRED:
            missing.append(canonical if col == canonical else f"{canonical} (as {col!r})")
        index.append(i)
    if missing:
        has = ", ".join(repr(h) for h in header[:30]) + (", ..." if len(header) > 30 else "")
        via = f" with the mapping {mapping.source}" if mapping.source else ""
        raise CdrFileError(name, f"the header (line {line}) lacks the required column"
                           f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}{via}; it "
                           f"has {has}", line=line)  # fmt: skip
    return index


class JsonParser:
    """One JSON object (a line of a .jsonl file or of the stream) -> Cdr, per the mapping's
    keys (a key the object lacks, or null, is an empty value). Raises CdrError (the caller
    adds where)."""

    def __init__(self, mapping: Mapping, *, now: float | None = None) -> None:
        # a column mapped to nothing is looked up under a key no JSON object has
        self.keys = [mapping.column(c) or "\x00absent" for c in COLUMNS]
        self.rows = RowParser(mapping, list(range(len(COLUMNS))), now=now)
        # json.loads without its wrappers (a third less per line); not in the type stubs
        self._scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]

    def at(self, now: float) -> None:
        self.rows.at(now)

    def parse(self, line: str | bytes) -> Cdr:
        """A line -> Cdr. Raises CdrError and nothing else, whatever the line holds: one line
        never stops a file or a stream."""
        try:
            return self._parse(line)
        except CdrError:
            raise
        except Exception as e:
            raise CdrError(_unexpected(e)) from None

    def _parse(self, line: str | bytes) -> Cdr:
        if type(line) is bytes:
            try:
                line = line.decode()
            except UnicodeDecodeError as e:
                raise CdrError(f"not UTF-8 text (byte {e.object[e.start]:#04x} at column "
                               f"{e.start + 1})") from None  # fmt: skip
        assert isinstance(line, str)
        try:
            obj, end = self._scan(line, 0)
            if end != len(line) and not line[end:].isspace():
                raise ValueError
        except RecursionError:  # "[[[[..." deeper than the interpreter's recursion limit
            raise CdrError("not JSON (nested too deeply)") from None
        except (ValueError, StopIteration):
            try:  # leading spaces, or not JSON: json.loads says which
                obj = json.loads(line)
            except ValueError as e:
                raise CdrError(f"not JSON ({e})") from None
        if type(obj) is not dict:
            raise CdrError(f"not a JSON object (a JSON {_json_type(obj)})")
        get = obj.get
        row: list[Any] = [get(k, "") for k in self.keys]
        kinds = set(map(type, row))
        if len(kinds) > 1 or str not in kinds:
            row = [
                v if type(v) is str else self._text(v, c) for v, c in zip(row, COLUMNS, strict=True)
            ]
        row.append("")
        return self.rows.parse(row)

    @staticmethod
    def _text(v: object, name: str) -> str:
        if v is None:
            return ""
        if type(v) is int:
            return str(v)
        if type(v) is float:
            return repr(v)
        raise CdrError(f"expected a string or a number, got a JSON {_json_type(v)}", field=name)


def _json_type(v: object) -> str:
    return {dict: "object", list: "array", bool: "boolean", str: "string"}.get(type(v), "number")


def _json_records(
    lines: _Lines, mapping: Mapping, start_line: int, now: float | None
) -> Iterator[_Item]:
    marks, rows = lines.marks, _Rows(lines)
    parse, held = JsonParser(mapping, now=now).parse, rows.held
    try:
        for line, text in enumerate(lines, 1):
            if line == 1:
                text = text.removeprefix("\ufeff")
            if not text or text.isspace():
                if line <= start_line:
                    marks.pop(line, None)
                else:
                    yield from rows.marked(line)
                continue
            if line <= start_line:
                continue
            try:
                record = parse(text)
            except CdrError as e:  # and nothing else: JsonParser.parse says so
                yield from rows.failed(line, line, e)
                continue
            if held:
                yield from rows.release()
            yield line, record
    except CdrFileError:
        yield from rows.release()  # bad rows held before a read error (none if not text)
        raise
    yield from rows.release()


__all__ = [
    "COLUMNS",
    "DEFAULT_MAPPING",
    "MAX_NOT_TEXT",
    "MAX_RECORD_LINES",
    "REQUIRED",
    "CdrFileError",
    "JsonParser",
    "Mapping",
    "MappingError",
    "RowParser",
    "e164",
    "file_format",
    "imei_of",
    "read_records",
]
