"""Reading operators' CDR files (gateway/calls/reader.py): canonical and mapped CSV, JSON
lines, gzip (whole, truncated, detected by its magic), bad rows that stop nothing, file-level
errors that keep what came before, impossible times and fields, resuming after a line."""

from __future__ import annotations

import gzip
import random
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.calls.cdr import Cdr, CdrError, RecordType
from gateway.calls.reader import (
    DEFAULT_MAPPING,
    MAX_NOT_TEXT,
    MAX_RECORD_LINES,
    CdrFileError,
    JsonParser,
    Mapping,
    MappingError,
    e164,
    imei_of,
    luhn_digit,
    read_records,
)

DATA = Path(__file__).parent / "data" / "cdr"
NOW = datetime(2026, 12, 9, tzinfo=UTC).timestamp()
T0 = datetime(2026, 12, 8, 5, 15, 30, tzinfo=UTC).timestamp()  # 10:15:30 at +05:00
HEADER = "record_type,start,duration,calling,called,record_id\n"


def read(path: Path, mapping: Mapping = DEFAULT_MAPPING, **kw: float) -> list[tuple[int, object]]:
    return list(read_records(path, mapping, now=NOW, **kw))  # type: ignore[arg-type]


def good(items: list[tuple[int, object]]) -> list[Cdr]:
    return [r for _, r in items if isinstance(r, Cdr)]


def bad(items: list[tuple[int, object]]) -> list[CdrError]:
    return [r for _, r in items if isinstance(r, CdrError)]


def rows_file(path: Path, n: int, *, bad_at: int = 0) -> Path:
    """A canonical CSV of n records (line i+2 is record i), one a second from T0."""
    with path.open("w") as f:
        f.write(HEADER)
        for i in range(n):
            start = (
                "not-a-time"
                if i == bad_at - 2
                else f"{datetime.fromtimestamp(T0 + i, UTC):%Y-%m-%dT%H:%M:%SZ}"
            )
            f.write(f"MOC,{start},{i % 60},7701{i % 10_000_000:07d},87051234567,m:{i}\n")
    return path


# -- canonical CSV ----------------------------------------------------------------------------


def test_canonical_csv_becomes_records_with_normalised_fields() -> None:
    items = read(DATA / "canonical.csv")
    assert [line for line, _ in items] == [2, 3, 4, 5] and not bad(items)
    first, second, third, sms = good(items)
    assert first == Cdr(RecordType.MOC, T0, 42.0, "401011234567890", "490154203237518",
                        "77011234567", "77011234567", "77051234567", 0, 1201, 30211, "",
                        "INTL1", "msc1:000001")  # fmt: skip
    assert second.record_type is RecordType.MTC and second.start == T0 + 30  # "Z" and +05:00 agree
    assert second.calling == "442071234567"  # 00 prefix dropped
    assert second.called == "77012223344"  # national 10 digits
    assert second.served_imei == "490154203237518"  # IMEISV: 14 digits + Luhn check digit
    assert second.cause == 3  # unsuccessfulCallAttempt by its TS 32.298 name
    assert third.start == T0 + 95.25 and third.duration == 3.5 and third.called == "102"
    assert third.cause == 16 and third.served_imsi == "" and third.record_id == ""
    assert sms.record_type is RecordType.SMS_MO and sms.served_imei == "35693803564380"


def test_a_gzip_file_reads_the_same_and_is_known_by_its_bytes(tmp_path: Path) -> None:
    plain = read(DATA / "canonical.csv")
    gz = tmp_path / "calls.csv.gz"
    gz.write_bytes(gzip.compress((DATA / "canonical.csv").read_bytes()))
    disguised = tmp_path / "calls.csv"  # gzip without the .gz: the magic bytes say it
    shutil.copy(gz, disguised)
    assert read(gz) == plain
    assert read(disguised) == plain


def test_a_truncated_gzip_keeps_the_records_before_and_names_the_last_line(
    tmp_path: Path,
) -> None:
    src = rows_file(tmp_path / "src.csv", 20_000)
    data = gzip.compress(src.read_bytes())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(data[: len(data) // 2])
    got: list[int] = []
    with pytest.raises(CdrFileError) as info:
        for line, r in read_records(cut, now=NOW):
            assert isinstance(r, Cdr)
            got.append(line)
    assert got == list(range(2, len(got) + 2)) and 1000 < len(got) < 19_000
    assert info.value.name == "cut.csv.gz" and info.value.line == got[-1]
    assert "truncated" in str(info.value) and "cut.csv.gz" in str(info.value)
    assert f"line {got[-1]}" in str(info.value)


def test_bytes_that_are_not_text_are_a_bad_row_naming_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(
        (HEADER + "MOC,2026-12-08T10:15:30+05:00,1,77011234567,,a\n").encode()
        + b"MOC,2026-12-08T10:15:31+05:00,1,77011234567,,\xff\xfe\n"
        + b"MOC,2026-12-08T10:15:32+05:00,1,77011234567,,c\n"
    )
    items = read(path)
    assert [(line, type(r).__name__) for line, r in items] == [
        (2, "Cdr"), (3, "CdrError"), (4, "Cdr")
    ]  # fmt: skip
    (error,) = bad(items)
    assert str(error) == "latin.csv:3: not utf-8 text (byte 0xff at byte 46 of the line)"
    latin = good(read(path, Mapping(encoding="latin-1")))
    assert [r.record_id for r in latin] == ["a", "ÿþ", "c"]


def test_one_latin_1_byte_in_3000_rows_loses_that_row_only(tmp_path: Path) -> None:
    """Issue 18: one bad line in the middle, a clear message naming file and line, and
    nothing else lost (before: the file stopped there, 1,499 of 3,000 records kept)."""
    src = rows_file(tmp_path / "src.csv", 3000).read_bytes().split(b"\n")
    src[1500] = src[1500].replace(b",m:", b",caf\xe9:")  # record 1499, on line 1501
    for path in (tmp_path / "mixed.csv", tmp_path / "mixed.csv.gz"):
        data = b"\n".join(src)
        path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
        items = read(path)
        assert len(good(items)) == 2999
        (error,) = bad(items)
        assert str(error) == f"{path.name}:1501: not utf-8 text (byte 0xe9 at byte 56 of the line)"


def test_a_run_of_lines_that_are_not_text_stops_the_file_before_the_run(tmp_path: Path) -> None:
    """cp1251 read as UTF-8: MAX_NOT_TEXT lines with no record among them stop the file, and
    what was yielded ends before the run (a checkpoint there lets the right encoding read it
    again); fewer, followed by a record, are bad rows each."""
    good_line = "MOC,2026-12-08T10:15:30+05:00,1,77011234567,,ok{}\n"
    cyrillic = "MOC,2026-12-08T10:15:30+05:00,1,77011234567,,Алматы{}\n"

    def body(run: int) -> bytes:
        return (
            (HEADER + good_line.format(0)).encode()
            + "".join(cyrillic.format(i) for i in range(run)).encode("cp1251")
            + good_line.format(1).encode()
        )

    path = tmp_path / "cp1251.csv"
    path.write_bytes(body(MAX_NOT_TEXT - 1))
    items = read(path)
    assert [r.record_id for r in good(items)] == ["ok0", "ok1"]
    assert [line for line, _ in items] == list(range(2, MAX_NOT_TEXT + 3))  # in order
    assert {e.reason for e in bad(items)} == {"not utf-8 text (byte 0xc0 at byte 46 of the line)"}
    path.write_bytes(body(MAX_NOT_TEXT))
    got: list[int] = []
    with pytest.raises(CdrFileError) as info:
        got.extend(line for line, _ in read_records(path, now=NOW))
    assert got == [2] and info.value.line == 2
    assert str(info.value) == (
        f"cp1251.csv: not utf-8 text: {MAX_NOT_TEXT} lines from line 3 on cannot be decoded, "
        "with no record among them (line 3: not utf-8 text (byte 0xc0 at byte 46 of the line)); "
        "read up to line 2: set the mapping's encoding if it is text"
    )
    resumed = read(path, Mapping(encoding="cp1251"), start_line=2)
    assert len(good(resumed)) == MAX_NOT_TEXT + 1 and not bad(resumed)


def test_a_binary_file_stops_as_not_text(tmp_path: Path) -> None:
    path = tmp_path / "photo.csv"
    noise = random.Random(7).randbytes(600_000)
    path.write_bytes((HEADER + "MOC,2026-12-08T10:15:30+05:00,1,77011234567,,a\n").encode() + noise)
    got: list[object] = []
    with pytest.raises(CdrFileError, match=r"photo\.csv: not utf-8 text: 1000 lines from line 3"):
        got.extend(r for _, r in read_records(path, now=NOW))
    assert len(got) == 1 and isinstance(got[0], Cdr)


def test_a_header_without_the_required_columns_is_a_file_error_naming_them(
    tmp_path: Path,
) -> None:
    with pytest.raises(CdrFileError) as info:
        read(DATA / "wrong-columns.csv")
    text = str(info.value)
    assert text.startswith("wrong-columns.csv: ")
    assert "record_type, start" in text and "'type', 'time', 'calling', 'called'" in text
    mapped = Mapping(columns={"start": "START_TIME"})
    path = tmp_path / "x.csv"
    path.write_text("record_type,start\nMOC,2026-12-08T10:15:30+05:00\n")
    with pytest.raises(CdrFileError, match=r"start \(as 'START_TIME'\).*'record_type', 'start'"):
        read(path, mapped)


def test_header_names_match_ignoring_case_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffRecord_Type, START \nMOC,2026-12-08T10:15:30+05:00\n".encode())
    assert [r.start for r in good(read(path))] == [T0]


# -- bad rows ---------------------------------------------------------------------------------


def test_impossible_times_and_values_are_bad_rows_naming_file_line_and_field() -> None:
    items = read(DATA / "dates.csv")
    errors = bad(items)
    assert [(e.where, e.field) for e in errors] == [
        ("dates.csv:2", "start"),  # month 13
        ("dates.csv:3", "start"),  # not a time
        ("dates.csv:4", "start"),  # 1999
        ("dates.csv:5", "start"),  # more than a day after `now`
        ("dates.csv:6", "start"),  # no zone, and the mapping has none
        ("dates.csv:7", "duration"),  # negative
        ("dates.csv:8", "duration"),  # over two days
        ("dates.csv:9", "calling"),  # letters
    ]
    assert "month must be in 1..12" in errors[0].reason
    assert "before 2000-01-01" in errors[2].reason and "future" in errors[3].reason
    assert "no zone" in errors[4].reason
    assert "7701abc4567" not in str(errors[7])  # a number is personal data: never echoed
    assert [line for line, r in items if isinstance(r, Cdr)] == [10]
    # the same naive time is fine once the mapping gives the zone
    assert read(DATA / "dates.csv", Mapping(timezone="+05:00"))[4][1] == good(items)[0]


def test_field_shapes(tmp_path: Path) -> None:
    path = tmp_path / "shapes.csv"
    rows = [
        "record_type,start,served_imsi,served_imei,cause,lac,cell",
        "MOC,2026-12-08T10:15:30+05:00,40101,,,,",  # IMSI too short
        "MOC,2026-12-08T10:15:30+05:00,,4901542032375,,,",  # IMEI 13 digits
        "MOC,2026-12-08T10:15:30+05:00,,,hangup,,",  # unknown cause
        "MOC,2026-12-08T10:15:30+05:00,,,,-3,",  # negative LAC
        "MOC,2026-12-08T10:15:30+05:00,,,,,x1",  # cell not a number
        "MOCX,2026-12-08T10:15:30+05:00,,,,,",  # unknown record type
        ",2026-12-08T10:15:30+05:00,,,,,",  # no record type
        "MOC,2026-12-08T10:15:30+05:00,,,,1",  # a field short
        "",  # blank lines are skipped
        "moCallRecord,2026-12-08T10:15:30+05:00, 401011234567890 ,,abnormalRelease,7,8",
    ]
    path.write_text("\n".join(rows) + "\n")
    items = read(path)
    assert [(e.where, e.field) for e in bad(items)] == [
        ("shapes.csv:2", "served_imsi"), ("shapes.csv:3", "served_imei"), ("shapes.csv:4", "cause"),
        ("shapes.csv:5", "lac"), ("shapes.csv:6", "cell"), ("shapes.csv:7", "record_type"),
        ("shapes.csv:8", "record_type"), ("shapes.csv:9", ""),
    ]  # fmt: skip
    assert "6 fields, the header has 7" in str(bad(items)[-1])
    (last,) = good(items)
    assert (last.record_type, last.served_imsi, last.cause, last.lac, last.cell) == (
        RecordType.MOC, "401011234567890", 4, 7, 8
    )  # fmt: skip


@pytest.mark.parametrize(
    ("time_format", "start"),
    [
        ("iso", "2026-12-08T10:15:0\u00b2+05:00"),  # "0²": isdigit() but not int()
        ("%Y%m%d%H%M%S", "2026120810150\u00b2"),
        ("%Y%m%d%H%M%S", "20261208101\u00b230"),
    ],
)
def test_a_seconds_field_of_non_ascii_digits_is_a_bad_row(
    tmp_path: Path, time_format: str, start: str
) -> None:
    path = tmp_path / "sup.csv"
    mapping = Mapping(time_format=time_format, timezone="+05:00")
    later = "2026-12-08T10:15:31+05:00" if time_format == "iso" else "20261208101531"
    path.write_text(f"{HEADER}MOC,{start},1,77011234567,,a\nMOC,{later},1,77011234567,,b\n")
    items = read(path, mapping)
    assert [r.record_id for r in good(items)] == ["b"]
    ((line, error),) = [(line, r) for line, r in items if isinstance(r, CdrError)]
    assert (line, error.where, error.field) == (2, "sup.csv:2", "start")


def test_a_line_nested_too_deep_for_json_is_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    rec = '{"record_type": "MOC", "start": "2026-12-08T10:15:30+05:00"}\n'
    path.write_text(rec + "[" * 40_000 + "\n" + rec)  # under 64 KiB: RecursionError in json
    items = read(path)
    assert [(line, type(r).__name__) for line, r in items] == [
        (1, "Cdr"), (2, "CdrError"), (3, "Cdr")
    ]  # fmt: skip
    assert str(bad(items)[0]) == "deep.jsonl:2: not JSON (nested too deeply)"
    with pytest.raises(CdrError, match="nested too deeply"):
        JsonParser(DEFAULT_MAPPING, now=NOW).parse(b"[" * 40_000)


def test_any_exception_while_parsing_a_row_is_a_bad_row_without_its_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(raw: str) -> str:
        raise RuntimeError(f"a bug that quotes {raw}")

    monkeypatch.setattr("gateway.calls.reader.e164", broken)
    path = tmp_path / "bug.csv"
    path.write_text(HEADER + "MOC,2026-12-08T10:15:30+05:00,1,77011234567,,a\n"
                    "MOC,2026-12-08T10:15:31+05:00,1,,,b\n")  # fmt: skip
    items = read(path)
    assert [r.record_id for r in good(items)] == ["b"]  # "" is cached: e164 is not called
    assert [str(e) for e in bad(items)] == ["bug.csv:2: cannot be read (RuntimeError)"]
    json_path = tmp_path / "bug.jsonl"
    json_path.write_text('{"record_type": "MOC", "start": 1796706930, "calling": "7701"}\n')
    assert [str(e) for e in bad(read(json_path, Mapping(time_format="epoch")))] == [
        "bug.jsonl:1: cannot be read (RuntimeError)"
    ]


def test_a_stray_quote_costs_its_line_only(tmp_path: Path) -> None:
    """Issue 18: a quote that never closes took every following line up to the csv field
    limit (1,639 rows of 20,000 vanished, uncounted). Now a quoted record spans at most
    MAX_RECORD_LINES lines; past that its first line is a bad row and the others are read."""
    lines = rows_file(tmp_path / "src.csv", 20_000).read_text().split("\n")
    lines[1500] = lines[1500].replace(",m:", ',"m:')  # record 1499, on line 1501
    path = tmp_path / "stray.csv"
    path.write_text("\n".join(lines))
    items = read(path)
    assert len(good(items)) == 19_999
    assert [line for line, _ in items] == list(range(2, 20_002))
    assert [str(e) for e in bad(items)] == [
        f"stray.csv:1501: a quote opened on this line is not closed within {MAX_RECORD_LINES} "
        "lines; the next lines are read on their own"
    ]


def test_stray_quotes_near_the_end_and_closed_by_another(tmp_path: Path) -> None:
    rows = [f"MOC,2026-12-08T10:15:30+05:00,1,77011234567,,r{i}" for i in range(12)]
    rows[2] = rows[2].replace(",7701", ',"7701')  # closed by the quote on row 5: 4 fields
    rows[5] = rows[5].replace(",r5", ',r5"')
    rows[10] = rows[10].replace(",r10", ',"r10')  # still open at the end of the file
    path = tmp_path / "q.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    items = read(path)
    assert [r.record_id for r in good(items)] == [
        "r0", "r1", "r3", "r4", 'r5"', "r6", "r7", "r8", "r9", "r11"
    ]  # fmt: skip
    assert [line for line, _ in items] == list(range(2, 14))
    reasons = [(e.where, e.reason) for e in bad(items)]
    assert reasons == [
        ("q.csv:4", "4 fields over lines 4 to 7, the header has 6: a stray quote; the next lines "
         "are read on their own"),
        ("q.csv:12", "a quote opened on this line is not closed before the end of the file; the "
         "next lines are read on their own"),
    ]  # fmt: skip
    resumed = read(path, start_line=5)
    assert [(ln, str(r)) for ln, r in resumed] == [(ln, str(r)) for ln, r in items if ln > 5]


def test_quoted_fields_may_hold_delimiters_and_newlines(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    path.write_text(
        HEADER
        + 'MOC,2026-12-08T10:15:30+05:00,1,77011234567,,"msc1:a,b"\n'
        + 'MOC,2026-12-08T10:15:31+05:00,1,77011234567,,"two\nlines"\n'
        + "MOC,2026-12-08T10:15:32+05:00,1,77011234567,,c\n"
    )
    items = read(path)
    assert [(line, r.record_id) for line, r in items if isinstance(r, Cdr)] == [
        (2, "msc1:a,b"), (4, "two\nlines"), (5, "c")
    ]  # fmt: skip


def test_a_line_over_64_kib_is_one_bad_row_and_the_next_line_is_read(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(
        HEADER
        + "MOC,2026-12-08T10:15:30+05:00,1,77011234567,,"
        + "x" * 70_000
        + "\nMOC,2026-12-08T10:15:31+05:00,1,77011234567,,b\n"
    )
    items = read(path)
    assert [(e.where, "64 KiB" in e.reason) for e in bad(items)] == [("long.csv:2", True)]
    assert [(line, r.record_id) for line, r in items if isinstance(r, Cdr)] == [(3, "b")]


def test_start_line_resumes_after_a_checkpoint(tmp_path: Path) -> None:
    path = rows_file(tmp_path / "r.csv", 100, bad_at=50)
    items = read(path, start_line=40)
    assert [line for line, _ in items] == list(range(41, 102))
    assert [e.where for e in bad(items)] == ["r.csv:50"]


# -- JSON lines ---------------------------------------------------------------------------------


def test_json_lines_take_canonical_keys_and_refuse_what_is_not_an_object() -> None:
    items = read(DATA / "calls.jsonl")
    assert [(line, type(r).__name__) for line, r in items] == [
        (1, "Cdr"), (3, "CdrError"), (4, "CdrError"), (5, "CdrError"), (6, "Cdr")
    ]  # fmt: skip
    first, last = good(items)
    assert (first.start, first.duration, first.lac, first.called) == (T0, 42.0, 1201,
                                                                      "4420712345678")  # fmt: skip
    assert (last.served_msisdn, last.cause, last.record_id) == ("77012223344", 3, "")
    errors = bad(items)
    assert "not a JSON object" in errors[0].reason and "not JSON" in errors[1].reason
    assert errors[2].field == "lac" and errors[2].where == "calls.jsonl:5"


def test_json_lines_with_epoch_times_and_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "calls.ndjson.gz"
    path.write_bytes(gzip.compress(
        b'{"type": "0", "ts": 1796706930123, "dur": 5}\n{"type": "9", "ts": 1796706930000}\n'
    ))  # fmt: skip
    mapping = Mapping(columns={"record_type": "type", "start": "ts", "duration": "dur"},
                      record_types={"0": RecordType.MOC}, time_format="epoch_ms")  # fmt: skip
    items = read(path, mapping)
    assert good(items)[0].start == pytest.approx(T0 + 0.123) and good(items)[0].duration == 5
    assert bad(items)[0].field == "record_type" and "'9'" in bad(items)[0].reason


# -- operators' mappings ------------------------------------------------------------------------


def test_an_operator_mapping_with_local_compact_times() -> None:
    mapping = Mapping.load(DATA / "operator.toml")
    items = read(DATA / "operator.csv", mapping)
    first, second = good(items)
    assert first.start == T0 and first.duration == 42.0  # 20261208101530 at +05:00, ms
    assert (first.served_msisdn, first.calling, first.called) == (
        "77011234567", "77011234567", "4420712345678"
    )  # fmt: skip
    assert first.record_type is RecordType.MOC and first.cause == 0 and first.record_id == "msc7-1"
    assert second.record_type is RecordType.MTC and second.cause == 3
    assert second.calling == "37060012345" and second.start == T0 + 30
    (error,) = bad(items)  # month 13
    assert error.where == "operator.csv:4" and "month must be in 1..12" in error.reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time_zone = '+05:00'\n", r"time_zone: unknown key"),
        ("[columns]\nstrat = 'START'\n", r"columns\.strat: not a CDR field"),
        ("[columns]\nstart = ''\n", r"columns\.start: required"),
        ("[columns]\nstart = 5\n", r"columns\.start: expected str"),
        ("[values.record_type]\n'0' = 'VOICE'\n", r"values\.record_type\.0: 'VOICE' is not one"),
        ("[values.cause]\nBUSY = 'busy'\n", r"values\.cause\.BUSY: a cause number"),
        ("[values.duration]\n'x' = 1\n", r"values\.duration: unknown key"),
        ("time_format = '%Y%m%d%H%M%S'\n", r"timezone: required, the time_format"),
        ("time_format = '%H:%M:%S'\ntimezone = 'UTC'\n", r"does not give the date"),
        ("time_format = 'unix'\n", r"time_format: iso, epoch, epoch_ms or a strptime"),
        ("timezone = '+5'\n", r"timezone: expected \+HH:MM"),
        ("timezone = 'Mars/Olympus'\n", r"timezone: unknown zone"),
        ("delimiter = ';;'\n", r"delimiter: one character"),
        ("duration_unit = 'min'\n", r"duration_unit: s or ms"),
        ("encoding = 'klingon'\n", r"encoding: unknown encoding"),
        ("encoding = 'utf-16'\n", r"encoding: 'utf-16' is not ASCII-compatible"),
        ("columns = 'x'\n", r"columns: expected a table"),
        ("time_format = \n", r"not a TOML file"),
    ],
)
def test_mapping_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "op.toml"
    path.write_text(text)
    with pytest.raises(MappingError, match=message) as info:
        Mapping.load(path)
    assert str(info.value).startswith(f"{path}: ")


def test_mapping_zones_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read the mapping file"):
        Mapping.load(tmp_path / "missing.toml")
    path = tmp_path / "almaty.csv"
    path.write_text("record_type,start\nMOC,08.12.2026 10:15:30\n")
    for zone in ("+05:00", "Asia/Almaty"):  # Kazakhstan is on +05:00 all year since 2024
        mapping = Mapping(time_format="%d.%m.%Y %H:%M:%S", timezone=zone)
        assert [r.start for r in good(read(path, mapping))] == [T0]


def test_the_format_comes_from_the_suffix_or_the_mapping(tmp_path: Path) -> None:
    path = tmp_path / "calls.dat"
    shutil.copy(DATA / "canonical.csv", path)
    with pytest.raises(CdrFileError, match=r"calls\.dat: unknown format"):
        read(path)
    assert len(good(read(path, Mapping(format="csv")))) == 4


# -- field helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("+77011234567", "77011234567"), ("77011234567", "77011234567"),
        ("87011234567", "77011234567"), ("7011234567", "77011234567"),
        ("+7 (701) 123-45-67", "77011234567"), ("0077011234567", "77011234567"),
        ("81077011234567", "77011234567"), ("+4420712345678", "4420712345678"),
        ("4420712345678", "4420712345678"), ("81312345678", "81312345678"),  # Tokyo, not +7
        ("102", "102"), ("", ""), ("  ", ""),
    ],
)  # fmt: skip
def test_numbers_become_e164_digits(raw: str, digits: str) -> None:
    assert e164(raw) == digits


@pytest.mark.parametrize("raw", ["7701abc", "+", "1234567890123456", "٧٧٠١"])
def test_what_is_not_a_number_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="not a number"):
        e164(raw)


def test_imei_forms() -> None:
    assert luhn_digit("49015420323751") == "8"  # TS 23.003 Annex B's example
    assert imei_of("4901542032375101") == "490154203237518"
    assert imei_of("49015420323751") == "49015420323751"
    with pytest.raises(ValueError, match="not an IMEI"):
        imei_of("49015420323751012")


def test_lines_across_read_blocks_long_lines_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "blocks.csv.gz"
    body = [HEADER.replace("\n", "\r\n")]
    for i in range(30_000):  # ~1.6 MB: several 256 KiB blocks
        if i == 10_000:
            body.append("MOC,2026-12-08T10:15:30+05:00,1,77011234567,," + "y" * 600_000 + "\r\n")
        body.append(f"MOC,2026-12-08T10:15:30+05:00,1,77011234567,,r{i}\r\n")
    body.append("MOC,2026-12-08T10:15:30+05:00,1,77011234567,,last" + "z" * 70_000)  # no \n
    path.write_bytes(gzip.compress("".join(body).encode()))
    items = read(path)
    assert [(e.where, "64 KiB" in e.reason) for e in bad(items)] == [
        ("blocks.csv.gz:10002", True), ("blocks.csv.gz:30003", True)
    ]  # fmt: skip
    records = [(line, r.record_id) for line, r in items if isinstance(r, Cdr)]
    assert len(records) == 30_000 and records[0] == (2, "r0") and records[-1] == (30_002, "r29999")
    assert records[10_000] == (10_003, "r10000")


def test_bytes_that_are_not_text_deep_in_a_json_file_are_one_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    rec = b'{"record_type": "MOC", "start": "2026-12-08T10:15:30+05:00"}\n'
    path.write_bytes(rec * 19_999 + b'{"record_type": "MOC\xc3\x28"}\n' + rec * 100)
    items = read(path)
    assert [line for line, _ in items] == list(range(1, 20_101)) and len(good(items)) == 20_099
    assert [str(e) for e in bad(items)] == [
        "deep.jsonl:20000: not utf-8 text (byte 0xc3 at byte 21 of the line)"
    ]


def test_a_gzip_without_its_trailer_keeps_every_whole_line(tmp_path: Path) -> None:
    path = tmp_path / "short.csv.gz"
    path.write_bytes(gzip.compress((DATA / "canonical.csv").read_bytes())[:-8])
    lines: list[int] = []
    with pytest.raises(CdrFileError, match="truncated") as info:
        lines.extend(line for line, _ in read_records(path, now=NOW))
    assert lines == [2, 3, 4, 5] and info.value.line == 5


def test_json_parser_edges() -> None:
    parse = JsonParser(Mapping(columns={"cause": ""}), now=NOW).parse
    base = '"record_type": "MOC", "start": "2026-12-08T10:15:30+05:00"'
    assert parse("  {" + base + "}\r").start == T0  # spaces around: json.loads takes it
    assert parse(("{" + base + ', "cause": "bogus", "lac": null}').encode()).cause == 0
    cases: list[tuple[str | bytes, str]] = [
        ("{" + base + "} trailing", "not JSON (Extra data"),
        (b'{"record_type": "MOC\xff"}', "not UTF-8 text (byte 0xff at column 21)"),
        ("{" + base + ', "duration": true}', "expected a string or a number, got a JSON boolean"),
        ('"MOC"', "not a JSON object (a JSON string)"),
        ("{}", "missing"),
    ]
    for line, reason in cases:
        with pytest.raises(CdrError) as info:
            parse(line)
        assert info.value.reason.startswith(reason), (line, info.value.reason)
