"""SIM-box detection by test calls: classification of what probes see, the matcher's windows,
and test plans from files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.probes.simbox import (
    Expected,
    Outcome,
    TestCallMatcher,
    TestPlanError,
    classify_cli,
    classify_sender,
    clip_ton,
    load_plan,
)
from gsm_probe.events import IncomingCall, SmsReceived

T0 = 1_800_000_000.0
DE = "+4915112345678"  # the partner's German A-number


@pytest.mark.parametrize(
    ("number", "ton", "validity", "outcome", "named"),
    [
        ("+4915112345678", 145, 0, Outcome.CLEAN, "4915112345678"),
        ("004915112345678", 129, 0, Outcome.CLEAN, "4915112345678"),
        ("+77011234567", 145, 0, Outcome.SIMBOX, "77011234567"),
        ("87771234567", 129, 0, Outcome.SIMBOX, "77771234567"),  # national form, Beeline
        ("7471234567", 161, 0, Outcome.SIMBOX, "77471234567"),  # national TON, Tele2
        ("+77172123456", 145, 0, Outcome.LOCAL_CLI, "77172123456"),  # Astana fixed line
        ("", 129, 2, Outcome.CLI_MISSING, ""),
        ("+4915112345678", 145, 1, Outcome.CLI_MISSING, ""),  # withheld: not trusted
        ("+74951234567", 145, 0, Outcome.CLI_FOREIGN, ""),  # Moscow: +7 but Russia
        ("+33612345678", 145, 0, Outcome.CLI_FOREIGN, ""),
        ("+4917099999999", 145, 0, Outcome.CLI_ALTERED, ""),  # another German number
        ("12345", 129, 0, Outcome.CLI_FOREIGN, ""),
    ],
)
def test_cli_classification(
    number: str, ton: int, validity: int, outcome: Outcome, named: str
) -> None:
    assert classify_cli(DE, number, clip_ton(ton), validity)[0] is outcome
    if outcome is not Outcome.CLI_MISSING:
        got = classify_cli(DE, number, clip_ton(ton), validity)[1]
        assert got == named or outcome not in (Outcome.SIMBOX, Outcome.LOCAL_CLI, Outcome.CLEAN)


def test_clip_type_octets() -> None:
    assert (clip_ton(145), clip_ton(129), clip_ton(161)) == (1, 0, 2)


@pytest.mark.parametrize(
    ("originator", "ton", "outcome"),
    [
        ("KaspiBank", 5, Outcome.CLEAN),
        ("kaspibank", 5, Outcome.CLEAN),
        ("+77051234567", 1, Outcome.SIMFARM),
        ("87051234567", 0, Outcome.SIMFARM),
        ("INFO", 5, Outcome.SENDER_ALTERED),
        ("+4915112345678", 1, Outcome.SENDER_ALTERED),
    ],
)
def test_sender_classification(originator: str, ton: int, outcome: Outcome) -> None:
    assert classify_sender("KaspiBank", originator, ton)[0] is outcome


def call(number: str, at: float, probe: str = "p1", ton: int = 145) -> IncomingCall:
    return IncomingCall(probe, number, ton, 0, at)


def test_each_test_yields_one_finding_within_its_window() -> None:
    m = TestCallMatcher(grace=30)
    t = Expected("p1", DE, T0, T0 + 300, route="carrier-A")
    m.expect([t])
    early = m.on_call(call("+77011234567", T0 - 10))
    assert early.outcome is Outcome.UNEXPECTED and early.expected is None and not early.is_evidence
    f = m.on_call(call("+77011234567", T0 + 100))
    assert f.outcome is Outcome.SIMBOX and f.expected == t and f.number == "77011234567"
    assert f.confidence >= 0.9 and "SIM box" in f.description and "carrier-A" in f.description
    again = m.on_call(call("+77011234567", T0 + 120))
    assert again.outcome is Outcome.UNEXPECTED  # the test was used: a second call is not a test
    assert m.handle_timer(T0 + 10_000) == []


def test_a_call_late_within_the_grace_still_counts_and_other_probes_do_not_match() -> None:
    m = TestCallMatcher(grace=30)
    m.expect([Expected("p1", DE, T0, T0 + 60), Expected("p2", DE, T0, T0 + 60)])
    assert m.on_call(call(DE, T0 + 20, probe="p3")).outcome is Outcome.UNEXPECTED
    assert m.on_call(call(DE, T0 + 85, probe="p2")).outcome is Outcome.CLEAN
    assert m.next_deadline() == T0 + 90
    assert m.handle_timer(T0 + 89) == []
    [lost] = m.handle_timer(T0 + 91)
    assert lost.outcome is Outcome.NO_ARRIVAL and lost.probe == "p1" and not lost.is_evidence
    assert m.open_tests == [] and m.next_deadline() is None


def test_test_sms_through_a_sim_farm() -> None:
    m = TestCallMatcher()
    m.expect([Expected("p1", "KaspiBank", T0, T0 + 60, kind="sms", route="aggregator-X")])
    assert m.on_call(call(DE, T0 + 5)).outcome is Outcome.UNEXPECTED  # a call is not the SMS
    f = m.on_sms(SmsReceived("p1", "+77051234567", 1, "Ваш код: 4821", at=T0 + 10))
    assert f.outcome is Outcome.SIMFARM and f.number == "77051234567"


def test_a_reloaded_plan_does_not_announce_a_test_twice() -> None:
    m = TestCallMatcher()
    t = Expected("p1", DE, T0, T0 + 60, id="plan-1")
    assert m.expect([t]) == 1
    assert m.on_call(call(DE, T0 + 1)).outcome is Outcome.CLEAN
    assert m.expect([Expected("p1", DE, T0, T0 + 60, id="plan-2")]) == 1
    assert m.expect([Expected("p1", DE, T0, T0 + 60, id="plan-2")]) == 0


def test_plans_from_toml_json_and_csv(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(
        '[[test]]\nid = "t1"\nprobe = "p1"\na_number = "+4915112345678"\n'
        'start = 2026-11-24T10:00:00+05:00\nend = 2026-11-24T10:05:00+05:00\nroute = "A"\n',
        encoding="utf-8",
    )
    [t] = load_plan(tmp_path / "plan.toml")
    assert t.id == "t1" and t.end - t.start == 300 and t.kind == "call" and t.route == "A"
    (tmp_path / "plan.json").write_text(
        json.dumps(
            [
                {
                    "probe": "p2",
                    "a_number": "KaspiBank",
                    "kind": "sms",
                    "start": "2026-11-24T05:00:00Z",
                    "end": T0 * 2,
                }
            ]
        ),
        encoding="utf-8",
    )
    [s] = load_plan(tmp_path / "plan.json")
    assert s.kind == "sms" and s.start == 1795496400.0
    (tmp_path / "plan.csv").write_text(
        f"probe,a_number,start,end,route\np1,{DE},{T0},{T0 + 60},B\np2,{DE},{T0},{T0 + 9},C\n",
        encoding="utf-8",
    )
    assert [t.route for t in load_plan(tmp_path / "plan.csv")] == ["B", "C"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"probe": "p1", "a_number": DE, "start": T0, "end": T0 - 1}, "window ends before"),
        ({"probe": "p1", "a_number": "not a number", "start": T0, "end": T0 + 1}, "E.164"),
        ({"probe": "p1", "a_number": DE, "start": "tomorrow", "end": T0}, "ISO 8601"),
        ({"probe": "p1", "a_number": DE, "start": "2026-11-24T10:00", "end": T0}, "time zone"),
        ({"probe": "", "a_number": DE, "start": T0, "end": T0 + 1}, "no probe"),
        ({"probe": "p1", "a_number": DE, "start": T0, "end": T0 + 1, "kind": "fax"}, "kind"),
        ({"probe": "p1", "a_number": DE, "end": T0 + 1}, "start missing"),
        ({"probe": "p1", "a_number": DE, "start": T0, "end": T0 + 1, "colour": 1}, "colour"),
    ],
)
def test_bad_plans_are_refused_naming_the_entry(
    tmp_path: Path, row: dict[str, object], message: str
) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps([{"probe": "p0", "a_number": DE, "start": T0, "end": T0 + 1}, row]))
    with pytest.raises(TestPlanError, match=message) as info:
        load_plan(path)
    assert "entry 2" in str(info.value)


def test_unreadable_or_unknown_plan_files(tmp_path: Path) -> None:
    with pytest.raises(TestPlanError, match="cannot read"):
        load_plan(tmp_path / "missing.toml")
    (tmp_path / "plan.xml").write_text("<tests/>")
    with pytest.raises(TestPlanError, match=r"\.toml, \.json or \.csv"):
        load_plan(tmp_path / "plan.xml")
    (tmp_path / "bad.toml").write_text("[[test]\n")
    with pytest.raises(TestPlanError, match=r"bad\.toml"):
        load_plan(tmp_path / "bad.toml")


def test_overlapping_windows_prefer_the_same_a_number_then_the_latest_test() -> None:
    m = TestCallMatcher(grace=0)
    lost = Expected("p1", "+905321234567", T0, T0 + 100, id="a-lost")
    second = Expected("p1", "+971501234567", T0 + 10, T0 + 100, id="b")
    third = Expected("p1", DE, T0 + 20, T0 + 100, id="c")
    m.expect([lost, second, third])
    clean = m.on_call(call("+971501234567", T0 + 30))  # the CLI names its test
    assert clean.outcome is Outcome.CLEAN and clean.expected == second
    box = m.on_call(call("+77011234567", T0 + 31))  # no CLI match: the latest started
    assert box.outcome is Outcome.SIMBOX and box.expected == third
    [gone] = m.handle_timer(T0 + 101)
    assert gone.expected == lost and gone.outcome is Outcome.NO_ARRIVAL


def test_a_concluded_or_stale_test_is_not_announced_again() -> None:
    """A reloaded plan (the partner appended a row) or a restart repeats past tests: they must
    not come back as open tests and end as false "no arrival" findings."""
    m = TestCallMatcher(grace=30)
    found = Expected("p1", DE, T0, T0 + 60, id="t-found")
    lost = Expected("p1", DE, T0 + 100, T0 + 160, id="t-lost")
    m.expect([found, lost])
    assert m.on_call(call(DE, T0 + 10)).outcome is Outcome.CLEAN
    assert [f.expected for f in m.handle_timer(T0 + 200)] == [lost]
    assert m.expect([found, lost], T0 + 300) == 0 and m.open_tests == []
    stale = Expected("p1", DE, T0 + 200, T0 + 260, id="t-stale")  # closed while we were away
    fresh = Expected("p1", DE, T0 + 400, T0 + 460, id="t-fresh")
    assert m.expect([stale, fresh], T0 + 300) == 1 and m.open_tests == [fresh]


def test_plan_files_that_are_not_utf8_or_ragged_are_refused_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "excel.csv").write_bytes(
        "probe,a_number,start,end,route\np1,+4915112345678,1,2,Тест\n".encode("cp1251")
    )
    with pytest.raises(TestPlanError, match="UTF-8"):
        load_plan(tmp_path / "excel.csv")
    (tmp_path / "ragged.csv").write_text(
        "probe,a_number,start,end\np1,+4915112345678,1,2,extra\n", encoding="utf-8"
    )
    with pytest.raises(TestPlanError, match="more fields"):
        load_plan(tmp_path / "ragged.csv")
    (tmp_path / "bom.csv").write_text(
        "\ufeffprobe,a_number,start,end\np1,+4915112345678,1,2\n", encoding="utf-8"
    )
    assert [t.probe for t in load_plan(tmp_path / "bom.csv")] == ["p1"]
