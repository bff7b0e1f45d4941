"""Labelled SMS corpora for training and evaluating the text classifier.

Two formats, both UTF-8 (a byte-order mark is ignored), read as a stream (one message at a time):

* `uci`: one message a line, `label<TAB>text` (the UCI SMS Spam Collection's layout). The text is
  everything after the first tab. The first line is a header, and skipped, when its label field
  is one of `label`, `labels`, `class`, `category`, `type`, `v1` (any case). Blank lines are
  ignored.
* `csv`: RFC 4180 CSV (quoted fields may hold commas, quotes and line breaks) whose first row is a
  header naming the columns `label` and `text` (any case, any position). Optional columns
  describe the traffic and the row (`fraudgate eval` uses them): `source` (sender address),
  `route` (local / international / a2p), `lang`, `theme`, `channel`, `publisher` (where the
  text was published: the unit a held-out split keeps on one side); other columns are ignored.

Labels: `ham` (any case) is a legitimate message; every other label (`spam`, `fraud`,
`smishing`, ...) is fraud / spam.

Malformed rows (a `uci` line without a tab, a CSV row missing the label or text column, an empty
label or text, bytes that are not UTF-8) are errors by default: `CorpusError` names the file, the
line and what is wrong, because a corpus with broken rows cannot be trusted to be labelled right.
With `strict=False` they are skipped instead and listed in a `CorpusReport` (count and line
numbers) for the caller to print.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final, Literal

Format = Literal["uci", "csv"]
FORMATS: Final = ("uci", "csv")
HAM: Final = "ham"
HEADER_LABELS: Final = frozenset({"label", "labels", "class", "category", "type", "v1"})
META_COLUMNS: Final = ("source", "route", "lang", "theme", "channel", "publisher")


class CorpusError(ValueError):
    """A corpus that cannot be read; `line` is 1-based (0: the file as a whole)."""

    def __init__(self, origin: str, line: int, reason: str) -> None:
        where = f"{origin}:{line}" if line else origin
        super().__init__(f"{where}: {reason}")
        self.origin = origin
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    fraud: bool
    label: str  # as written in the file
    line: int  # where the message starts
    meta: Mapping[str, str] = field(default_factory=dict)  # the optional CSV columns given


@dataclass(slots=True)
class CorpusReport:
    """What a non-strict read skipped."""

    read: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    def summary(self, origin: str, limit: int = 5) -> str:
        if not self.skipped:
            return f"{origin}: {self.read} messages"
        lines = ", ".join(str(n) for n, _ in self.skipped[:limit])
        more = ", ..." if len(self.skipped) > limit else ""
        first = self.skipped[0][1]
        return (
            f"{origin}: {self.read} messages, {len(self.skipped)} malformed rows skipped "
            f"(lines {lines}{more}; first: {first})"
        )


def is_fraud(label: str) -> bool:
    return label.strip().lower() != HAM


def guess_format(path: str | Path) -> Format:
    """`csv` for a .csv file, else `uci`."""
    return "csv" if str(path).lower().endswith(".csv") else "uci"


def read_corpus(
    path: str | Path,
    fmt: Format | None = None,
    *,
    strict: bool = True,
    report: CorpusReport | None = None,
) -> Iterator[Example]:
    """The messages of a corpus file, one at a time (format guessed from the name if None)."""
    origin = str(path)
    fmt = fmt or guess_format(path)
    if fmt not in FORMATS:
        raise CorpusError(origin, 0, f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the generator below
    except OSError as exc:
        raise CorpusError(origin, 0, f"cannot open: {exc.strerror or exc}") from None
    return _read_file(fh, origin, fmt, strict, report)


def _read_file(
    fh: BinaryIO, origin: str, fmt: Format, strict: bool, report: CorpusReport | None
) -> Iterator[Example]:
    with fh:
        lines = decode_lines(fh, origin)
        reader = read_uci if fmt == "uci" else read_csv
        yield from reader(lines, origin=origin, strict=strict, report=report)


def decode_lines(raw: Iterable[bytes], origin: str) -> Iterator[str]:
    """UTF-8 lines (line ends kept) from byte lines; a bad byte is a CorpusError with its line."""
    for number, line in enumerate(raw, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorpusError(
                origin,
                number,
                f"not UTF-8 (byte {exc.start + 1}: {line[exc.start : exc.start + 1]!r})",
            ) from None
        if number == 1 and text.startswith(codecs.BOM_UTF8.decode("utf-8")):
            text = text[1:]
        yield text


class _Sink:
    def __init__(self, origin: str, strict: bool, report: CorpusReport | None) -> None:
        self.origin = origin
        self.strict = strict
        self.report = report if report is not None else CorpusReport()

    def bad(self, line: int, reason: str) -> None:
        if self.strict:
            raise CorpusError(self.origin, line, reason)
        self.report.skipped.append((line, reason))

    def good(
        self, label: str, text: str, line: int, meta: Mapping[str, str] | None = None
    ) -> Example:
        self.report.read += 1
        return Example(text=text, fraud=is_fraud(label), label=label, line=line, meta=meta or {})


def read_uci(
    lines: Iterable[str],
    *,
    origin: str = "<uci>",
    strict: bool = True,
    report: CorpusReport | None = None,
) -> Iterator[Example]:
    """`label<TAB>text` lines; see the module's docstring."""
    sink = _Sink(origin, strict, report)
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        label, tab, text = line.partition("\t")
        label = label.strip()
        if number == 1 and tab and label.lower() in HEADER_LABELS:
            continue
        if not tab:
            sink.bad(number, "no tab between label and text")
        elif not label:
            sink.bad(number, "empty label")
        elif not text.strip():
            sink.bad(number, "empty text")
        else:
            yield sink.good(label, text, number)


def read_csv(
    lines: Iterable[str],
    *,
    origin: str = "<csv>",
    strict: bool = True,
    report: CorpusReport | None = None,
) -> Iterator[Example]:
    """CSV with a header naming `label` and `text`; see the module's docstring."""
    sink = _Sink(origin, strict, report)
    counted = _Counted(lines)
    reader = csv.reader(counted)
    try:
        header = next(reader, None)
        if header is None:
            raise CorpusError(origin, 0, "empty file (a CSV corpus needs a header row)")
        columns = [c.strip().lower() for c in header]
        missing = [c for c in ("label", "text") if c not in columns]
        if missing:
            raise CorpusError(
                origin,
                1,
                f"header has no {' and no '.join(repr(m) for m in missing)} column "
                f"(columns: {', '.join(repr(c) for c in header) or 'none'})",
            )
        at_label, at_text = columns.index("label"), columns.index("text")
        at_meta = {c: columns.index(c) for c in META_COLUMNS if c in columns}
        need = max(at_label, at_text) + 1
        start = counted.count + 1
        for row in reader:
            line, start = start, counted.count + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < need:
                sink.bad(line, f"{len(row)} fields, the header has {len(header)}")
                continue
            label, text = row[at_label].strip(), row[at_text]
            if not label:
                sink.bad(line, "empty label")
            elif not text.strip():
                sink.bad(line, "empty text")
            else:
                meta = {c: row[i].strip() for c, i in at_meta.items() if i < len(row)}
                yield sink.good(label, text, line, {c: v for c, v in meta.items() if v})
    except csv.Error as exc:
        raise CorpusError(origin, counted.count, f"CSV: {exc}") from None


class _Counted:
    """Counts the lines the csv module has taken (for the line numbers of records)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._it = iter(lines)
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._it)
        self.count += 1
        return line


def load_corpus(
    path: str | Path,
    fmt: Format | None = None,
    *,
    strict: bool = True,
    report: CorpusReport | None = None,
) -> tuple[list[str], list[bool]]:
    """All texts and labels (True = fraud) of a corpus file."""
    texts: list[str] = []
    labels: list[bool] = []
    for ex in read_corpus(path, fmt, strict=strict, report=report):
        texts.append(ex.text)
        labels.append(ex.fraud)
    return texts, labels
