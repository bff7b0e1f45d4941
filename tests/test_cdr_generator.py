"""The call-record generator (simulators.cdr): determinism, order, record ids, numbering, each
population's defining behaviour, labels that agree with the records, writers, memory, CLI."""

from __future__ import annotations

import csv
import gzip
import io
import json
import statistics
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from itertools import islice, pairwise
from pathlib import Path

import pytest

from gateway.calls.cdr import UNSUCCESSFUL_CALL_ATTEMPT, Cdr, RecordType
from simulators.cdr import (
    FIELDS,
    MIXES,
    SIMBOX_A,
    STEALTH_S1,
    CdrGenerator,
    Labels,
    Mix,
    RecordWriter,
    main,
    write_records,
)
from simulators.cdr_population import (
    BEELINE_PREFIXES,
    LOCAL_OFFSET,
    OWN_PREFIXES,
    TELE2_PREFIXES,
    local_hour,
    local_weekday,
    luhn_digit,
)

SMALL = Mix(
    name="small", normal=600, call_centre=4, taxi=3, m2m=4, two_phones=4, roamers=6, simbox=1,
    stealth=1, wangiri=1, spoofing=1, simbox_variant=replace(SIMBOX_A, ports=(8, 8)),
    stealth_variant=replace(STEALTH_S1, ports=(4, 4)), wangiri_victims=(80, 120),
    spoof_calls=(60, 100),
)  # fmt: skip
MOC, MTC, DATA = RecordType.MOC, RecordType.MTC, RecordType.DATA
SMS = (RecordType.SMS_MO, RecordType.SMS_MT)


@pytest.fixture(scope="module")
def run() -> tuple[list[Cdr], Labels]:
    """Three working days (Mon-Wed) of the small mix."""
    gen = CdrGenerator(seed=7, mix=SMALL, days=3)
    return list(gen), gen.labels


@pytest.fixture(scope="module")
def by_msisdn(run: tuple[list[Cdr], Labels]) -> dict[str, list[Cdr]]:
    out: dict[str, list[Cdr]] = defaultdict(list)
    for c in run[0]:
        out[c.served_msisdn].append(c)
    return out


def of_class(labels: Labels, cls: str) -> list[str]:
    return [m for m, c in labels.classes.items() if c == cls]


def own(number: str) -> bool:
    return len(number) == 11 and number[0] == "7" and number[1:4] in OWN_PREFIXES


def local_day(t: float) -> int:
    return int((t + LOCAL_OFFSET) // 86_400)


# --- determinism, order, ids ----------------------------------------------------------------------


def test_same_seed_gives_the_same_records_and_labels() -> None:
    a = CdrGenerator(3, SMALL, days=1)
    first, labels_a = list(a), a.labels.to_json()
    again = list(a)  # a second iteration starts afresh
    b = CdrGenerator(3, SMALL, days=1)
    assert first == again == list(b)
    assert labels_a == a.labels.to_json() == b.labels.to_json()


def test_different_seeds_differ() -> None:
    a = list(islice(CdrGenerator(1, SMALL, days=1), 2000))
    b = list(islice(CdrGenerator(2, SMALL, days=1), 2000))
    assert [c.start for c in a] != [c.start for c in b]
    assert {c.served_msisdn for c in a} != {c.served_msisdn for c in b}


def test_records_are_in_time_order_within_the_window(run: tuple[list[Cdr], Labels]) -> None:
    records, labels = run
    starts = [c.start for c in records]
    assert starts == sorted(starts)
    assert labels.start <= starts[0] and starts[-1] < labels.end
    assert all(s == int(s) for s in starts)  # TS 32.298 time stamps have whole seconds
    assert len(records) > 50_000


def test_record_ids_increase_per_recording_entity(run: tuple[list[Cdr], Labels]) -> None:
    last: dict[str, int] = {}
    for c in run[0]:
        entity, _, seq = c.record_id.partition(":")
        assert len(seq) == 9 and seq.isdigit()
        assert entity == ("pgw1" if c.record_type is DATA else entity)
        assert entity in {"msc1", "msc2", "msc3", "pgw1"}
        assert int(seq) == last.get(entity, 0) + 1  # no gap, no repeat
        last[entity] = int(seq)
    assert set(last) == {"msc1", "msc2", "msc3", "pgw1"}


# --- numbering and record fields ------------------------------------------------------------------


def test_identities_follow_the_numbering_plan(run: tuple[list[Cdr], Labels]) -> None:
    for c in run[0]:
        assert own(c.served_msisdn), c
        assert len(c.served_imsi) == 15 and c.served_imsi.startswith("40102")
        assert len(c.served_imei) == 15 and luhn_digit(c.served_imei[:14]) == c.served_imei[14]
        assert c.lac > 0 and c.cell > 0


def test_parties_and_trunks_agree(run: tuple[list[Cdr], Labels]) -> None:
    nat = {p: "NAT-BEELINE" for p in BEELINE_PREFIXES} | {p: "NAT-TELE2" for p in TELE2_PREFIXES}
    for c in run[0]:
        if c.record_type is MOC:
            assert c.calling == c.served_msisdn and c.in_trunk == ""
            if own(c.called):  # on-net, or to one of ours who is abroad
                assert c.out_trunk in ("", "INTL-1")
            elif c.called.startswith("77"):
                assert c.out_trunk == nat[c.called[1:4]]
            else:
                assert c.out_trunk.startswith("INTL")
        elif c.record_type is MTC:
            assert c.called == c.served_msisdn and c.out_trunk == ""
            if c.in_trunk == "":
                assert own(c.calling)
            elif c.in_trunk.startswith("NAT"):
                assert c.in_trunk == nat[c.calling[1:4]]
            else:
                assert c.in_trunk in ("INTL-1", "INTL-2")
        elif c.record_type is DATA:
            assert c.calling == c.called == "" and c.duration > 0
        if c.duration == 0 and c.record_type in (MOC, MTC):
            assert c.cause == UNSUCCESSFUL_CALL_ATTEMPT


def test_calls_between_members_have_both_records(run: tuple[list[Cdr], Labels]) -> None:
    """Records exist for the simulated sample: a call between two members has the caller's MOC
    and the callee's MTC; a call with a number outside the sample has only the member's."""
    records, labels = run
    key = {MOC: Counter[tuple[float, str, str, float]](), MTC: Counter()}
    for c in records:
        if c.record_type in key:
            key[c.record_type][c.start, c.calling, c.called, c.duration] += 1
    between = [
        c
        for c in records
        if c.record_type in key and c.calling in labels.classes and c.called in labels.classes
        and c.in_trunk == c.out_trunk == ""
    ]  # fmt: skip
    assert len(between) > 1000
    for c in between:
        other = MTC if c.record_type is MOC else MOC
        assert key[other][c.start, c.calling, c.called, c.duration] > 0, c
    outside = [c for c in records if c.record_type is MOC and own(c.called)]
    assert sum(c.called not in labels.classes for c in outside) > 1000


def test_every_served_subscriber_is_labelled(run: tuple[list[Cdr], Labels]) -> None:
    records, labels = run
    assert {c.served_msisdn for c in records} <= set(labels.classes)
    counts = Counter(labels.classes.values())
    assert counts["normal"] == 600 and counts["call_centre"] == 4 and counts["taxi"] == 3
    assert counts["m2m"] == 4 and counts["roamer"] == 6 and counts["two_phones"] == 6
    assert counts["simbox"] == 16 and counts["simbox_stealth"] == 8  # 8 and 4 ports, x2 SIMs


# --- normal subscribers -------------------------------------------------------------------------


def test_normal_subscribers_call_the_same_few_numbers(
    run: tuple[list[Cdr], Labels], by_msisdn: dict[str, list[Cdr]]
) -> None:
    shares = []
    for m in of_class(run[1], "normal"):
        called = Counter(c.called for c in by_msisdn[m] if c.record_type is MOC)
        if sum(called.values()) >= 10:
            shares.append(sum(n for _, n in called.most_common(3)) / sum(called.values()))
    assert len(shares) > 100
    assert statistics.mean(shares) > 0.4


def test_normal_durations_and_daily_rhythm(
    run: tuple[list[Cdr], Labels], by_msisdn: dict[str, list[Cdr]]
) -> None:
    calls = [c for m in of_class(run[1], "normal") for c in by_msisdn[m] if c.record_type is MOC]
    answered = [c.duration for c in calls if c.duration > 0]
    assert 45 <= statistics.median(answered) <= 80  # lognormal, median ~60 s
    assert 90 <= statistics.mean(answered) <= 140  # mean ~1.8 min
    assert 0.12 < 1 - len(answered) / len(calls) < 0.28  # ~20 % unanswered
    hours = Counter(local_hour(c.start) for c in calls)
    assert sum(hours[h] for h in (2, 3, 4)) * 10 < sum(hours[h] for h in (18, 19, 20))


# --- SIM boxes ----------------------------------------------------------------------------------


def test_simbox_sims_only_call_once_in_the_box(
    run: tuple[list[Cdr], Labels], by_msisdn: dict[str, list[Cdr]]
) -> None:
    labels = run[1]
    sims = [s for s in labels.simbox.values() if not s.stealth]
    assert sims and all(s.first_fraud_call is not None for s in sims)
    aged = 0
    for s in sims:
        gw = labels.gateways[s.gateway]
        first = s.first_fraud_call
        assert first is not None and first >= s.joined
        before = [c for c in by_msisdn[s.msisdn] if c.start < first]
        after = [c for c in by_msisdn[s.msisdn] if c.start >= first]
        assert after and all(c.record_type is MOC for c in after)  # no MTC, SMS or DATA
        assert all([c.lac, c.cell] in gw.cells and c.served_imei in gw.imeis for c in after)
        assert all(c.served_imei not in gw.imeis for c in before)
        if s.aged:  # lived as a normal subscriber first (one with little activity may not show)
            aged += bool(before)
            assert all(c.start < s.joined for c in before)
        else:
            assert not before
    assert aged >= 1


def test_simbox_traffic_looks_like_a_simbox(
    run: tuple[list[Cdr], Labels], by_msisdn: dict[str, list[Cdr]]
) -> None:
    labels = run[1]
    gw = next(g for g in labels.gateways.values() if g.variant == "A")
    calls = sorted(
        (c for m in gw.sims for c in by_msisdn[m] if c.served_imei in gw.imeis),
        key=lambda c: c.start,
    )
    per_sim_day: dict[tuple[str, int], list[str]] = defaultdict(list)
    for c in calls:
        per_sim_day[c.served_msisdn, local_day(c.start)].append(c.called)
    ratios = [len(set(v)) / len(v) for v in per_sim_day.values() if len(v) >= 20]
    assert ratios and min(ratios) > 0.8  # nearly every call to another number
    assert {c.out_trunk for c in calls} >= {"", "NAT-BEELINE", "NAT-TELE2"}  # all KZ networks
    assert {local_hour(c.start) for c in calls} == set(range(24))  # 24/7
    gaps = [b.start - a.start for a, b in pairwise(calls)]
    assert statistics.median(gaps) < 40  # the ports together keep calling, day and night
    # one IMEI per module, SIMs rotate through the modules
    imsis_per_imei = Counter(c.served_imei for c in {(c.served_imei, c.served_imsi): c
                                                      for c in calls}.values())  # fmt: skip
    assert set(imsis_per_imei) == set(gw.imeis) and min(imsis_per_imei.values()) >= 2
    imeis_per_sim = [len({c.served_imei for c in calls if c.served_msisdn == m}) for m in gw.sims]
    assert statistics.median(imeis_per_sim) >= 2
    # a port carries one SIM at a time: its calls never overlap
    for imei in gw.imeis:
        on_port = sorted((c.start, c.start + c.duration) for c in calls if c.served_imei == imei)
        assert all(b[0] >= a[1] for a, b in pairwise(on_port))


def test_stealth_simbox_fakes_some_human_behaviour(
    run: tuple[list[Cdr], Labels], by_msisdn: dict[str, list[Cdr]]
) -> None:
    labels = run[1]
    gw = next(g for g in labels.gateways.values() if g.variant == "S1")
    assert len(gw.cells) == 2
    in_box = [
        c
        for m in gw.sims
        for c in by_msisdn[m]
        if c.start >= (labels.simbox[m].first_fraud_call or labels.end)
    ]
    kinds = Counter(c.record_type for c in in_box)
    assert kinds[MTC] > 0 and kinds[RecordType.SMS_MO] + kinds[RecordType.SMS_MT] > 0
    assert kinds[MOC] > 5 * kinds[MTC]
    assert {(c.lac, c.cell) for c in in_box} == {tuple(cell) for cell in gw.cells}
    assert not [c for c in in_box if 1 <= local_hour(c.start) < 6]  # sleeps like a person
    called = Counter(c.called for c in in_box if c.record_type is MOC)
    assert called.most_common(1)[0][1] >= 3  # repeats some numbers


# --- Wangiri and spoofing -------------------------------------------------------------------------


def test_wangiri_rings_and_call_backs(run: tuple[list[Cdr], Labels]) -> None:
    records, labels = run
    assert labels.wangiri
    ids = {c.record_id: c for c in records}
    unanswered = total = 0
    for number, w in labels.wangiri.items():
        rings = [c for c in records if c.calling == number and c.record_type is MTC]
        assert rings and [c.served_msisdn for c in rings] == w.victims
        assert w.first_ring == rings[0].start
        assert all(c.in_trunk == w.trunk and c.in_trunk.startswith("INTL") for c in rings)
        assert all(c.duration <= 3 for c in rings)
        unanswered += sum(c.cause == UNSUCCESSFUL_CALL_ATTEMPT for c in rings)
        total += len(rings)
        for rid in w.callbacks:
            back = ids[rid]
            assert back.record_type is MOC and back.called == number
            assert back.served_msisdn in w.victims and back.out_trunk.startswith("INTL")
            assert back.start > w.first_ring
        assert w.number[:3] in {"222", "232", "224", "252", "235", "257", "265", "216", "375"}
    assert unanswered > 0.8 * total  # one ring, then cut
    assert sum(len(w.callbacks) for w in labels.wangiri.values()) > 0


def test_spoofed_cli_calls(run: tuple[list[Cdr], Labels], by_msisdn: dict[str, list[Cdr]]) -> None:
    records, labels = run
    ids = {c.record_id: c for c in records}
    assert len(labels.spoofed_calls) >= 30
    for rid in labels.spoofed_calls:
        c = ids[rid]
        assert c.record_type is MTC and c.in_trunk.startswith("INTL")
        assert c.calling.startswith("77") and len(c.calling) == 11
        assert c.calling in labels.spoofed_clis
    assert len({ids[r].served_msisdn for r in labels.spoofed_calls}) > 0.8 * len(
        labels.spoofed_calls
    )
    for cli, owner in labels.spoofed_clis.items():
        assert (owner == "onnet") == own(cli)
        if owner == "onnet":  # a subscriber of ours, at home: not a roamer, with local records
            assert labels.classes[cli] == "normal" and by_msisdn[cli]
            spoofed = {ids[r].start for r in labels.spoofed_calls if ids[r].calling == cli}
            made = {c.start for c in by_msisdn[cli] if c.record_type is MOC}
            assert not spoofed & made


# --- legitimate look-alikes ---------------------------------------------------------------------


def test_call_centre_employees(
    run: tuple[list[Cdr], Labels], by_msisdn: dict[str, list[Cdr]]
) -> None:
    for m in of_class(run[1], "call_centre"):
        recs = by_msisdn[m]
        kinds = Counter(c.record_type for c in recs)
        assert kinds[DATA] > 0 and kinds[RecordType.SMS_MO] + kinds[RecordType.SMS_MT] > 0
        office = [c for c in recs if 9 <= local_hour(c.start) < 18 and local_weekday(c.start) < 5]
        cells = Counter((c.lac, c.cell) for c in office)
        assert cells.most_common(1)[0][1] >= 0.9 * len(office)  # one cell in the day
        per_day: dict[int, set[tuple[int, int]]] = defaultdict(set)
        for c in recs:
            per_day[local_day(c.start)].add((c.lac, c.cell))
        assert max(len(s) for s in per_day.values()) > 1  # home at night
        moc = [c for c in office if c.record_type is MOC]
        assert len(moc) > 150 and len({c.called for c in moc}) > 0.9 * len(moc)
        assert not [c for c in moc if local_hour(c.start) < 9]


def test_taxi_drivers_move(run: tuple[list[Cdr], Labels], by_msisdn: dict[str, list[Cdr]]) -> None:
    for m in of_class(run[1], "taxi"):
        recs = by_msisdn[m]
        assert len({(c.lac, c.cell) for c in recs}) > 30
        assert sum(c.record_type in (MOC, MTC) for c in recs) > 60


def test_m2m_devices(run: tuple[list[Cdr], Labels], by_msisdn: dict[str, list[Cdr]]) -> None:
    for m in of_class(run[1], "m2m"):
        recs = by_msisdn[m]
        kinds = Counter(c.record_type for c in recs)
        assert len({(c.lac, c.cell) for c in recs}) == 1
        assert kinds[DATA] > 50 and kinds[RecordType.SMS_MO] > 0
        assert kinds[MOC] + kinds[MTC] <= 3


def test_two_phones(run: tuple[list[Cdr], Labels], by_msisdn: dict[str, list[Cdr]]) -> None:
    labels = run[1]
    assert set(labels.two_phones.values()) == {"two_imeis", "dual_sim"}
    dual: dict[str, set[str]] = defaultdict(set)
    for m, variant in labels.two_phones.items():
        imeis = {c.served_imei for c in by_msisdn[m]}
        if variant == "two_imeis":
            assert len(imeis) == 2
        else:
            assert len(imeis) == 1
            dual[imeis.pop()].add(m)
    assert dual and all(len(sims) == 2 for sims in dual.values())  # one IMEI, two IMSIs


def test_roamers_call_home_and_leave_no_local_records(
    run: tuple[list[Cdr], Labels], by_msisdn: dict[str, list[Cdr]]
) -> None:
    records, labels = run
    home_calls = seen_before = 0
    for m in of_class(labels, "roamer"):
        (start, end, country), *_ = labels.trips[m]
        assert isinstance(start, float) and isinstance(end, float) and isinstance(country, str)
        assert not [c for c in by_msisdn[m] if start <= c.start < end]
        seen_before += any(c.start < start for c in by_msisdn[m])  # at home before the trip
        calls = [c for c in records if c.calling == m and c.record_type is MTC]
        during = [c for c in calls if start <= c.start < end]
        assert all(c.in_trunk.startswith("INTL") for c in during)
        assert all(c.in_trunk == "" for c in calls if not start <= c.start < end)
        home_calls += len(during)
    assert home_calls > 0 and seen_before >= 4


# --- labels -------------------------------------------------------------------------------------


def test_labels_json_round_trip(run: tuple[list[Cdr], Labels]) -> None:
    labels = run[1]
    text = labels.to_json()
    assert Labels.from_json(text) == labels
    assert json.loads(text)["mix"] == "small"


def test_named_mixes_differ() -> None:
    tune, ev, bench = MIXES["tune"], MIXES["eval"], MIXES["bench"]
    assert tune.simbox_variant != ev.simbox_variant and tune.stealth_variant != ev.stealth_variant
    assert tune.simbox_variant and ev.simbox_variant
    assert set(ev.simbox_variant.tacs) - set(tune.simbox_variant.tacs)  # a TAC tune never shows
    assert tune.normal / tune.call_centre != ev.normal / ev.call_centre
    assert bench.normal >= 50 * (bench.call_centre + bench.taxi + bench.m2m + bench.roamers) / 4


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown mix 'nope'"):
        CdrGenerator(1, "nope")
    with pytest.raises(ValueError, match="days must be positive"):
        CdrGenerator(1, "tune", days=0)


# --- writers ------------------------------------------------------------------------------------


def parse_start(text: str) -> float:
    if text.endswith("Z"):
        return datetime.fromisoformat(text[:-1] + "+00:00").timestamp()
    return float(text)


def from_row(row: dict[str, object]) -> Cdr:
    """Our reading of the documented format (docs/calls-generator.md), field by field."""
    return Cdr(
        record_type=RecordType(str(row["record_type"])),
        start=parse_start(str(row["start"])),
        duration=float(str(row["duration"])),
        served_imsi=str(row["served_imsi"]),
        served_imei=str(row["served_imei"]),
        served_msisdn=str(row["served_msisdn"]),
        calling=str(row["calling"]),
        called=str(row["called"]),
        cause=int(str(row["cause"])),
        lac=int(str(row["lac"])),
        cell=int(str(row["cell"])),
        in_trunk=str(row["in_trunk"]),
        out_trunk=str(row["out_trunk"]),
        record_id=str(row["record_id"]),
    )


def read_back(path: Path, fmt: str) -> Iterator[Cdr]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        if fmt == "csv":
            reader = csv.DictReader(f)
            assert tuple(reader.fieldnames or ()) == FIELDS
            yield from (from_row(row) for row in reader)
        else:
            yield from (from_row(json.loads(line)) for line in f)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("epoch", [False, True])
def test_files_round_trip_through_the_cdr_fields(
    tmp_path: Path, run: tuple[list[Cdr], Labels], fmt: str, gz: bool, epoch: bool
) -> None:
    sample = run[0][:3000]
    path = tmp_path / (f"cdr.{fmt}" + (".gz" if gz else ""))
    assert write_records(sample, path, fmt, epoch=epoch) == len(sample)
    if gz:
        with gzip.open(path, "rb") as f:
            assert f.read(11) == (b"record_type" if fmt == "csv" else b'{"record_ty')
    assert list(read_back(path, fmt)) == sample


def test_writers_quote_what_needs_quoting(tmp_path: Path) -> None:
    odd = Cdr(
        RecordType.MTC, 1_741_000_000.5, 12.25, "401020000000001", "", "77010000001",
        'a,"b"', "x\\y\n", 0, 1, 2, "INTL-1", "", "",
    )  # fmt: skip
    for fmt in ("csv", "jsonl"):
        path = tmp_path / f"odd.{fmt}"
        write_records([odd], path, fmt)
        assert list(read_back(path, fmt)) == [odd]


def test_csv_start_formats() -> None:
    c = Cdr(RecordType.DATA, 1_740_942_000.0, 60.0, record_id="pgw1:000000001")
    for epoch, expected in ((False, "2025-03-02T19:00:00Z"), (True, "1740942000")):
        buf = io.StringIO()
        RecordWriter(buf, "csv", epoch=epoch).write_all([c])
        header, line = buf.getvalue().splitlines()
        assert header == ",".join(FIELDS)
        assert line.split(",")[1] == expected and line.split(",")[2] == "60"


# --- memory and the command line ------------------------------------------------------------------


def test_a_long_stream_runs_in_bounded_memory() -> None:
    """300,000 records: the peak after the first 50,000 hardly grows (records are not kept)."""
    mix = replace(SMALL, normal=2000, wangiri=0, spoofing=0)
    tracemalloc.start()
    try:
        it = iter(CdrGenerator(5, mix, days=30))
        for _ in islice(it, 50_000):
            pass
        early, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        n = 50_000 + sum(1 for _ in islice(it, 250_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 300_000
    assert peak < early + 1_000_000, (early, peak)
    assert peak < 10_000_000


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["--seed", "2", "--mix", "eval", "--days", "1", "--out", str(out), "--rows", "3000"]
    assert main(argv) == 0
    assert "3,000 records" in capsys.readouterr().err
    rows = list(read_back(out / "cdr.csv", "csv"))
    assert len(rows) == 3000
    labels = Labels.from_json((out / "labels.json").read_text())
    assert labels.mix == "eval" and labels.seed == 2
    assert {c.served_msisdn for c in rows} <= set(labels.classes)

    assert main([*argv, "--format", "jsonl", "--gzip", "--epoch"]) == 0
    assert list(read_back(out / "cdr.jsonl.gz", "jsonl")) == rows

    split = tmp_path / "split"
    assert main([*argv[:-3], str(split), "--rows", "3000", "--split"]) == 0
    files = sorted(p.name for p in split.glob("cdr-*.csv"))
    assert files == ["cdr-msc1.csv", "cdr-msc2.csv", "cdr-msc3.csv", "cdr-pgw1.csv"]
    merged = sorted((c for f in files for c in read_back(split / f, "csv")), key=lambda c: c.start)
    assert sorted(rows, key=lambda c: (c.start, c.record_id)) == sorted(
        merged, key=lambda c: (c.start, c.record_id)
    )
