"""Streaming readers for CRM/billing exports: CSV and JSON (JSON Lines or one JSON array).

Each yields `(line, row)` pairs: the source line where the record starts (CSV: where it ends, as
`csv.reader.line_num` counts) and the record as a mapping of lower-case column names, or
`Unreadable(reason)` for a record that cannot be parsed. Only a chunk of the file and one record
are in memory at a time.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TextIO

from .errors import RegistryError

REQUIRED_COLUMNS = ("iin", "surname", "name", "msisdn")
CHUNK = 64 * 1024
MAX_RECORD = 1024 * 1024  # a JSON record longer than this is refused (bounded memory)


@dataclass(frozen=True, slots=True)
class Unreadable:
    reason: str


SourceRow = tuple[int, Mapping[str, object] | Unreadable]


def read_csv(f: TextIO) -> Iterator[SourceRow]:
    """Rows of a CSV file with a header line (delimiter ',' or ';', as the header uses).
    RegistryError when the header lacks a required column."""
    header = f.readline()
    delimiter = ";" if header.count(";") > header.count(",") else ","
    columns = [c.strip().lower() for c in next(csv.reader([header], delimiter=delimiter), [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise RegistryError(f"CSV header: missing column(s) {', '.join(missing)}")
    reader = csv.reader(f, delimiter=delimiter)
    try:
        for fields in reader:
            line = reader.line_num + 1  # the header was read outside the reader
            if not any(v.strip() for v in fields):
                continue
            if len(fields) > len(columns):
                yield line, Unreadable(f"{len(fields)} fields, the header has {len(columns)}")
                continue
            yield line, dict(zip(columns, fields, strict=False))
    except csv.Error as e:
        yield reader.line_num + 1, Unreadable(f"not valid CSV: {e}")


def read_json(f: TextIO) -> Iterator[SourceRow]:
    """JSON Lines (one object per line) or a JSON array of objects, told apart by the first
    character."""
    chunks = _Chunks(f)
    first = chunks.skip_ws()
    if first == "[":
        chunks.pos += 1
        yield from _array(chunks)
    elif first:
        yield from _lines(chunks)


def _record(value: object) -> Mapping[str, object] | Unreadable:
    if not isinstance(value, dict):
        return Unreadable("not a JSON object")
    return {str(k).strip().lower(): v for k, v in value.items()}


def _lines(chunks: _Chunks) -> Iterator[SourceRow]:
    pending = chunks.buf[chunks.pos :]
    start = chunks.line
    for n, text in enumerate(_join_lines(pending, chunks.f), start=start):
        if not text.strip():
            continue
        try:
            yield n, _record(json.loads(text))
        except json.JSONDecodeError as e:
            yield n, Unreadable(f"not valid JSON: {e.msg}")


def _join_lines(pending: str, f: TextIO) -> Iterator[str]:
    """The lines of `pending` (already read) followed by the rest of `f`."""
    *whole, partial = pending.split("\n")
    yield from whole
    yield partial + f.readline()  # completes the line the chunk boundary cut
    yield from f


def _array(chunks: _Chunks) -> Iterator[SourceRow]:
    c = chunks.skip_ws()
    if c == "]":
        return
    while True:
        line = chunks.line
        try:
            value = chunks.value()
        except json.JSONDecodeError as e:
            yield line, Unreadable(f"not valid JSON ({e.msg}): reading stopped")
            return
        yield line, _record(value)
        c = chunks.skip_ws()
        if c == ",":
            chunks.pos += 1
            chunks.skip_ws()
            continue
        if c != "]":
            yield chunks.line, Unreadable("not valid JSON (expected ',' or ']'): reading stopped")
        return


_WS = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()


class _Chunks:
    """A window on a text file for json.JSONDecoder.raw_decode, counting lines as it goes."""

    def __init__(self, f: TextIO) -> None:
        self.f = f
        self.buf = ""
        self.pos = 0
        self.line = 1
        self.eof = False

    def more(self) -> bool:
        chunk = self.f.read(CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def skip_ws(self) -> str:
        """The next character that is not white space ("" at the end of the file)."""
        while True:
            end = _WS.match(self.buf, self.pos)
            assert end is not None  # the pattern matches the empty string
            self.line += self.buf.count("\n", self.pos, end.end())
            self.pos = end.end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def value(self) -> object:
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if len(self.buf) - self.pos > MAX_RECORD or not self.more():
                    raise
                continue
            if end == len(self.buf) and not isinstance(value, dict | list) and self.more():
                continue  # a number or literal cut by the chunk boundary: read on
            self.line += self.buf.count("\n", self.pos, end)
            self.pos = end
            return value
