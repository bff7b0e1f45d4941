"""The call analyzer on records built here, one behaviour at a time (sans-I/O): a SIM-box SIM is
named with its reasons and an ordinary subscriber is not; Wangiri rings and spoofed caller ids
are found and their look-alikes (answered calls from abroad, a roamer calling home) are not;
re-delivered records count once; memory stays within its bounds."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from gateway.calls.analyzer import AnalyzerSettings, CallAnalyzer, FindingKind
from gateway.calls.cdr import Cdr, RecordType
from gateway.calls.dedup import RecentRecords
from gateway.calls.settings import parse_calls
from gateway.config_check import ConfigError, Table

T0 = 1_780_000_000.0  # 2026-05-28, a Thursday
MOC, MTC, SMS, DATA = RecordType.MOC, RecordType.MTC, RecordType.SMS_MO, RecordType.DATA


def simbox_calls(msisdn: str, imsi: str, imei: str, n: int, start: float = T0) -> list[Cdr]:
    """A SIM-box SIM: calls to a new number each time, back to back, one cell."""
    out, t = [], start
    for i in range(n):
        out.append(Cdr(MOC, t, 95.0, imsi, imei, msisdn, msisdn, f"7705{i:07d}", lac=11, cell=4242))
        t += 95.0 + 8.0
    return out


def ordinary_day(msisdn: str, start: float = T0) -> list[Cdr]:
    """An ordinary subscriber on a busy day: 20 calls to 5 contacts, called back, data, SMS,
    three cells."""
    imei, imsi = "35693803564380", "401021234567890"
    contacts = ["77011111111", "77052222222", "77473333333", "77014444444", "77015555555"]
    out: list[Cdr] = []
    for i in range(20):
        t = start + i * 1800
        cell = (100, 200, 300)[i % 3]
        out.append(Cdr(MOC, t, 120, imsi, imei, msisdn, msisdn, contacts[i % 5], lac=1, cell=cell))
        if i % 2:
            out.append(Cdr(MTC, t + 600, 60, imsi, imei, msisdn, contacts[i % 5], msisdn, lac=1,
                           cell=cell))  # fmt: skip
        if i % 4 == 0:
            out.append(Cdr(DATA, t + 900, 600, imsi, imei, msisdn, lac=1, cell=cell))
            out.append(Cdr(SMS, t + 1000, 0, imsi, imei, msisdn, msisdn, contacts[0], lac=1,
                           cell=cell))  # fmt: skip
    return sorted(out, key=lambda r: r.start)


def test_a_simbox_sim_is_named_with_its_reasons() -> None:
    a = CallAnalyzer()
    found = a.feed(simbox_calls("77011234567", "401021111111111", "86123400000001", 40))
    assert [f.kind for f in found] == [FindingKind.SIMBOX]
    f = found[0]
    assert f.subject == f.msisdn == "77011234567" and f.imsi == "401021111111111"
    assert f.score >= 0.8
    assert f.details["outgoing"] >= 12 and f.details["incoming"] == 0
    assert f.details["tac"] == "86123400" and f.details["cell"] == "11-4242"
    ids = {r.id for r in f.reasons}
    assert "calls.simbox.in_ratio" in ids or "calls.simbox.new_dest" in ids
    assert f.first_at == T0 and f.at > T0


def test_one_finding_per_sim_however_long_it_goes_on() -> None:
    a = CallAnalyzer()
    found = a.feed(simbox_calls("77011234567", "401021111111111", "86123400000001", 300))
    assert len(found) == 1


def test_an_ordinary_subscriber_is_not_named() -> None:
    a = CallAnalyzer()
    assert a.feed(ordinary_day("77017654321")) == []
    assert a.stats.scored > 0  # it was scored, and scored low


def test_too_few_calls_are_not_scored() -> None:
    a = CallAnalyzer(AnalyzerSettings(min_calls=50))
    assert a.feed(simbox_calls("77011234567", "401021111111111", "86123400000001", 49)) == []
    assert a.stats.scored == 0


def test_many_imsis_on_one_imei_count_as_evidence() -> None:
    alone, shared = CallAnalyzer(), CallAnalyzer()
    msisdn, imei = "77011234567", "86123400000001"
    for k in range(10):  # ten SIMs took turns in the module, a call each
        shared.one(Cdr(MOC, T0 - 5000 + k, 60, f"4010200000000{k:02d}", imei, f"770100000{k:02d}",
                       f"770100000{k:02d}", "77050000000", lac=11, cell=4242))  # fmt: skip
    calls = simbox_calls(msisdn, "401021111111111", imei, 12)
    alone.feed(calls)
    shared.feed(calls)
    sim_alone, sim_shared = alone.sims[msisdn], shared.sims[msisdn]
    x_alone = alone.features(sim_alone, calls[-1].start)
    x_shared = shared.features(sim_shared, calls[-1].start)
    assert x_shared[7] > x_alone[7] == 0.0  # log(IMSIs on its IMEI)
    assert sim_shared.score > sim_alone.score


def test_a_confirmed_sim_makes_its_imei_and_cell_siblings_suspects() -> None:
    a = CallAnalyzer(AnalyzerSettings(threshold=0.999, sibling_threshold=0.2))
    imei = "86123400000001"
    a.feed(simbox_calls("77011234567", "401021111111111", imei, 12))
    a.feed(simbox_calls("77019999999", "401029999999999", imei, 2, start=T0 + 5000))
    a.feed(simbox_calls("77018888888", "401028888888888", "86123400000077", 12, start=T0 + 10))
    a.feed(ordinary_day("77017654321"))
    found = a.confirm("77011234567", T0 + 6000)
    got = {f.subject: f.details["via"] for f in found}
    assert got == {"77019999999": "imei", "77018888888": "cell"}
    assert all(f.kind is FindingKind.SIMBOX_SIBLING for f in found)
    assert a.confirm("77011234567", T0 + 6001) == []  # each suspect once
    # a confirmed SIM is not named again by its own behaviour
    assert a.feed(simbox_calls("77011234567", "401021111111111", imei, 30, T0 + 7000)) == []


def wangiri(
    calling: str, victims: int, duration: float = 0.0, start: float = T0, first: int = 0
) -> list[Cdr]:
    return [
        Cdr(MTC, start + 7 * i, duration, f"4010200000{i:05d}", "", f"77010{i:06d}", calling,
            f"77010{i:06d}", cause=3, lac=1, cell=5, in_trunk="INTL-1")
        for i in range(first, first + victims)
    ]  # fmt: skip


def test_wangiri_rings_from_one_range_to_many_subscribers() -> None:
    a = CallAnalyzer(AnalyzerSettings(premium_prefixes=("222",)))
    calls = wangiri("22245123401", 10) + wangiri("22245123477", 10, start=T0 + 100, first=10)
    found = a.feed(sorted(calls, key=lambda r: r.start))
    assert [f.kind for f in found] == [FindingKind.WANGIRI]
    f = found[0]
    assert f.subject == "222451234xx"
    assert f.details["victims"] == 15 and f.details["premium_prefix"] == "222"
    assert f.score == pytest.approx(0.9)
    assert {"calls.wangiri.rings", "calls.wangiri.premium_range"} == {r.id for r in f.reasons}
    # victims calling the range back are counted
    a.one(Cdr(MOC, T0 + 400, 30, "", "", "77010000003", "77010000003", "22245123401"))
    assert a.ranges["222451234"].callbacks == 1


def test_answered_calls_from_abroad_are_not_wangiri() -> None:
    a = CallAnalyzer()
    assert a.feed(wangiri("4915112345678", 40, duration=180.0)) == []
    few = CallAnalyzer()
    assert few.feed(wangiri("4915112345678", 14)) == []  # fewer victims than the minimum


def test_a_local_cli_from_abroad_while_its_subscriber_is_home_is_spoofed() -> None:
    a = CallAnalyzer()
    owner = "77011234567"
    a.one(Cdr(DATA, T0, 300, "401021234567890", "", owner, lac=7, cell=77))
    found = a.feed([Cdr(MTC, T0 + 400, 30, "401020000000001", "", "77015550001", owner,
                        "77015550001", lac=1, cell=5, in_trunk="INTL-2")])  # fmt: skip
    assert [f.kind for f in found] == [FindingKind.SPOOFED_CLI]
    f = found[0]
    assert f.subject == owner and f.msisdn == "" and f.details["subscriber_seen_at_home"]
    assert f.details["in_trunks"] == ["INTL-2"]


def test_a_roamer_calling_home_is_not_spoofing_but_a_fan_out_is() -> None:
    a = CallAnalyzer()
    roamer = "77011234567"
    a.one(Cdr(DATA, T0 - 3 * 86400, 300, "401021234567890", "", roamer, lac=7, cell=77))
    calls = [
        Cdr(MTC, T0 + 60 * i, 300, "", "", f"7701555000{i}", roamer, f"7701555000{i}",
            in_trunk="INTL-1")
        for i in range(2)
    ]  # fmt: skip
    assert a.feed(calls) == []  # away for three days, two calls home: a roamer
    spoofer = "77017777777"
    fan = [
        Cdr(MTC, T0 + 30 * i, 40, "", "", f"770255500{i:02d}", spoofer, f"770255500{i:02d}",
            in_trunk="INTL-1")
        for i in range(6)
    ]  # fmt: skip
    found = a.feed(fan)
    assert [(f.kind, f.subject) for f in found] == [(FindingKind.SPOOFED_CLI, spoofer)]
    assert found[0].details["victims"] == 5  # decided at the fifth subscriber


def test_a_national_trunk_with_a_local_cli_is_ordinary() -> None:
    a = CallAnalyzer()
    calls = [
        Cdr(MTC, T0 + i, 40, "", "", f"770255500{i:02d}", "77057777777", f"770255500{i:02d}",
            in_trunk="NAT-BEELINE")
        for i in range(20)
    ]  # fmt: skip
    assert a.feed(calls) == []


def test_redelivered_records_count_once_within_the_window() -> None:
    recent = RecentRecords(window=3600)
    first = Cdr(MOC, T0, 60, served_msisdn="77011234567", called="77050000000", record_id="m1:1")
    same_id = Cdr(MOC, T0 + 1, 61, served_msisdn="77011234567", record_id="m1:1")
    no_id = Cdr(MOC, T0, 60, served_msisdn="77011234567", called="77050000001")
    assert recent.fresh(first) and not recent.fresh(same_id)
    assert recent.fresh(no_id) and not recent.fresh(Cdr(**{**_fields(no_id)}))
    later = Cdr(MOC, T0 + 3 * 3600, 60, served_msisdn="1", record_id="m1:2")
    assert recent.fresh(later)  # two windows on: the old generations are gone
    assert recent.fresh(first)  # so a re-delivery that late counts again (documented)


def _fields(r: Cdr) -> dict[str, object]:
    return {k: getattr(r, k) for k in Cdr.__slots__}  # type: ignore[attr-defined]


def test_state_is_swept_and_capped() -> None:
    a = CallAnalyzer(AnalyzerSettings(max_sims=1000, window=3600))
    for i in range(3000):
        a.one(Cdr(SMS, T0 + i, 0, "", "", f"7701{i:07d}", lac=1, cell=1))
    assert len(a.sims) <= 1000 and a.stats.evicted_sims >= 2000
    assert "77010002999" in a.sims  # the newest stay
    a.one(Cdr(SMS, T0 + 3 * 3600 + 3000, 0, "", "", "77019999999"))
    assert a.expire() >= 900 and len(a.sims) == 1


def test_a_sims_state_stays_near_a_kilobyte() -> None:
    a = CallAnalyzer()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(600):
        base = T0 + i
        for k in range(40):  # 40 calls each: the destination ring and cells fill up
            own = f"7701{i:07d}"
            a.one(Cdr(MOC, base + 100 * k, 30, f"40102{i:010d}", f"3569380{i:07d}", own, own,
                      f"7705{k:07d}", lac=1, cell=k % 9))  # fmt: skip
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    per_sim = used / 600
    print(f"{per_sim:.0f} bytes per SIM")
    assert per_sim < 1600, per_sim  # SIM state + its IMEI's, with the dict entries


def test_calls_settings_are_checked(tmp_path: Path) -> None:
    cfg = parse_calls(Table({"enabled": True, "inbox": "cdr", "min_calls": 20,
                             "premium_prefixes": ["222", "882"]}, "calls"), tmp_path)  # fmt: skip
    assert cfg.inbox == str(tmp_path / "cdr") and cfg.analyzer.min_calls == 20
    assert cfg.analyzer.premium_prefixes == ("222", "882")
    with pytest.raises(ConfigError, match="calls: enabled needs an inbox"):
        parse_calls(Table({"enabled": True}, "calls"), tmp_path)
    with pytest.raises(ConfigError, match=r"calls\.premium_prefixes: digit prefixes"):
        parse_calls(Table({"premium_prefixes": ["+222"]}, "calls"), tmp_path)
    with pytest.raises(ConfigError, match=r"calls\.threshold"):
        parse_calls(Table({"threshold": 1.5}, "calls"), tmp_path)
    with pytest.raises(ConfigError, match=r"calls\.after"):
        parse_calls(Table({"after": "shred"}, "calls"), tmp_path)
    with pytest.raises(ConfigError, match=r"calls\.wangiri_min_victims"):
        parse_calls(Table({"wangiri_min_victims": 1}, "calls"), tmp_path)


def test_bench_calls_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """`fraudgate bench calls` with a small count: every phase prints its figure."""
    from gateway.cli import main

    argv = ["bench", "calls", "--rows", "20000", "--trace-rows", "5000", "--inbox-rows", "5000"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for phase in ("generate:", "read:", "score:", "bytes:", "inbox:"):
        assert phase in out, out
    assert "20,000 records read, de-duplicated and scored" in out
    assert "5,000 records through Inbox -> CallService -> SQLite" in out


def test_an_unknown_or_invalid_imei_is_not_one_device_shared_by_many() -> None:
    """Switches write zeros when the handset gave no IMEI; a 15-digit IMEI whose check digit is
    wrong is cloned or mistyped. Neither may make its subscribers look like one gateway."""
    from gateway.calls.analyzer import valid_imei

    assert valid_imei("35693803564380") and valid_imei("356938035643809")
    assert not valid_imei("356938035643801")  # check digit wrong
    assert not valid_imei("000000000000000") and not valid_imei("00000000000000")
    a = CallAnalyzer()
    for k in range(20):  # 20 people, 20 calls each at night, all with IMEI zeros
        own = f"770100000{k:02d}"
        a.feed([Cdr(MOC, T0 + 300 * i + k, 60.0, f"4010200000001{k:02d}", "000000000000000",
                    own, own, f"7705{i:07d}", lac=1, cell=k) for i in range(20)])  # fmt: skip
    assert "000000000000000" not in a.imeis and "00000000000000" not in a.imeis
    assert all(sim.imei == "" for sim in a.sims.values())


def test_wangiri_counts_victims_within_one_window_not_over_a_long_trickle() -> None:
    a = CallAnalyzer()
    trickle = [
        Cdr(MTC, T0 + 3000 * i, 0.0, "", "", f"77010{i:06d}", "22245123401", f"77010{i:06d}",
            cause=3, in_trunk="INTL-1")
        for i in range(30)  # a ring every 50 minutes: never 15 within an hour
    ]  # fmt: skip
    assert a.feed(trickle) == []


def test_a_roamer_calling_five_relatives_over_hours_is_not_a_spoofing_fan_out() -> None:
    a = CallAnalyzer()
    calls = [
        Cdr(MTC, T0 + 3000 * i, 300.0, "", "", f"770155500{i:02d}", "77011234567",
            f"770155500{i:02d}", in_trunk="INTL-1")
        for i in range(5)  # five calls home, 50 minutes apart
    ]  # fmt: skip
    assert a.feed(calls) == []


def test_a_findings_first_call_lies_within_its_window() -> None:
    """An aged SIM lived as a person for weeks before the box: the facts begin within the
    window that decided, not on its first day (the holder at that time is the one reported)."""
    a = CallAnalyzer()
    own, imei = "77011234567", "86123400000001"
    for day in range(20):  # weeks of a daytime life, called back, some data
        t = T0 - (30 - day) * 86400 + 6 * 3600
        a.one(Cdr(MOC, t, 60.0, "401021111111111", imei, own, own, "77050000001", lac=1, cell=1))
        a.one(Cdr(MTC, t + 600, 60.0, "401021111111111", imei, own, "77050000001", own))
        a.one(Cdr(DATA, t + 900, 600.0, "401021111111111", imei, own, lac=1, cell=1))
    found = a.feed(simbox_calls(own, "401021111111111", imei, 60))
    assert [f.subject for f in found] == [own]
    assert found[0].first_at >= found[0].at - a.s.window


def test_a_record_from_the_future_does_not_wipe_the_state_of_the_present() -> None:
    now = T0 + 10 * 86400
    a = CallAnalyzer(clock=lambda: now)
    a.feed(wangiri("22245123401", 10, start=now - 600))
    a.one(Cdr(SMS, now + 86400, 0.0, "", "", "77019999999"))  # a switch's clock a day ahead
    a.expire()
    assert "222451234" in a.ranges  # the burst is still being counted
    found = a.feed(wangiri("22245123401", 10, start=now - 300, first=10))
    assert [f.kind for f in found] == [FindingKind.WANGIRI]


def test_a_gateways_sim_count_does_not_drop_to_nothing_at_a_window_boundary() -> None:
    a = CallAnalyzer(AnalyzerSettings(window=3600))
    imei = "86123400000001"
    for k in range(6):  # six SIMs in the module during the first hour
        own = f"770100000{k:02d}"
        a.one(Cdr(MOC, T0 + 500 * k, 60.0, f"4010200000000{k:02d}", imei, own, own, "7705000001"))
    own = "77010000099"  # the first call after the boundary
    a.one(Cdr(MOC, T0 + 3700, 60.0, "401020000000099", imei, own, own, "7705000002"))
    assert a.imeis[imei].count() == 7


def test_a_stream_open_beyond_loopback_needs_its_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"calls\.stream_token: required"):
        parse_calls(Table({"stream_listen": "0.0.0.0:7030"}, "calls"), tmp_path)
    cfg = parse_calls(Table({"stream_listen": "127.0.0.1:0"}, "calls"), tmp_path)
    assert cfg.stream_host == "127.0.0.1" and cfg.stream_port == 0
    with pytest.raises(ConfigError, match=r"calls\.intl_trunks: an empty prefix"):
        parse_calls(Table({"intl_trunks": [""]}, "calls"), tmp_path)


def test_a_long_calls_partial_records_count_as_one_call_and_fixed_lines_are_a_network() -> None:
    a = CallAnalyzer()
    own = "77011234567"
    parts = [Cdr(MOC, T0, 1800.0, "", "", own, own, "77172123456", cause=1, lac=1, cell=1)
             for _ in range(3)]  # fmt: skip
    a.feed([*parts, Cdr(MOC, T0, 600.0, "", "", own, own, "77172123456", lac=1, cell=1)])
    assert a.sims[own].c[0] == 1  # one outgoing call
    assert a._network("77172123456") == 3 and a._network("77711234567") == 1
    assert a._network("77011234567") == 0 and a._network("79161234567") == 4
