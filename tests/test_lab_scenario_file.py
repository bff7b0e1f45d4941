"""Lab scenario files (simulators/osmo/scenario.py): strict loading with the key at fault, and
the expectation checks the scenario runner applies (no lab needed here)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gateway.config_check import ConfigError
from simulators.osmo.lab import PROJECT_DIR
from simulators.osmo.scenario import (
    PhoneReport,
    ScenarioResult,
    Sent,
    _check,
    format_result,
    load_scenario,
    parse_scenario,
)

SHIPPED = PROJECT_DIR / "config" / "scenarios" / "osmocom-lab.toml"
BASE: dict[str, Any] = {
    "name": "t",
    "phone": [
        {"name": "a", "imsi": "001010000000001", "msisdn": "77010000001"},
        {"name": "b", "imsi": "001010000000002", "msisdn": "77010000002", "role": "fraudster"},
    ],
    "step": [
        {"phone": "b", "to": ["a", "77019999999"], "text": "Код из SMS", "expect": "rejected"}
    ],
}


def test_the_shipped_scenario_loads_with_its_twenty_expectations() -> None:
    sc = load_scenario(SHIPPED)
    assert len(sc.phones) == 9 and len(sc.steps) == 9
    assert sum(len(s.to) * s.repeat for s in sc.steps if s.expect) == 20
    assert {p.role for p in sc.phones} == {"subscriber", "fraudster", "simfarm", "offline"}
    assert sc.phone("fraudster").subscriber.msisdn == "77470000666"
    assert sc.number("aigerim") == "77010000001" and sc.number("77019999999") == "77019999999"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda d: d["phone"][0].update(imsi="123"), r"phone\[0\]: IMSI '123' is not 15 digits"),
        (lambda d: d["phone"][1].update(ki="zz"), r"phone\[1\]: Ki is not 32 hex digits"),
        (lambda d: d["phone"][0].update(imsii="1"), r"phone\[0\]\.imsii: unknown key"),
        (lambda d: d["phone"][1].update(msisdn="77010000001"), "msisdn '77010000001' appears"),
        (lambda d: d["phone"][1].update(role="boss"), r"phone\[1\]\.role: one of"),
        (lambda d: d["step"][0].update(phone="c"), r"step\[0\]\.phone: no phone named 'c'"),
        (lambda d: d["step"][0].update(to=["nobody"]), "'nobody' is neither a phone nor a number"),
        (lambda d: d["step"][0].update(expect="maybe"), r"step\[0\]\.expect: one of"),
        (lambda d: d["step"][0].pop("text"), r"step\[0\]\.to: an sms step needs `to` and `text`"),
        (lambda d: d.update(phone=[]), "no \\[\\[phone\\]\\]"),
    ],
)
def test_a_bad_scenario_is_refused_naming_the_key(change: Any, error: str) -> None:
    data = copy.deepcopy(BASE)
    change(data)
    with pytest.raises(ConfigError, match=error):
        parse_scenario(data, "t.toml")


def test_a_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "s.toml"
    bad.write_text("[[phone]\n")
    with pytest.raises(ConfigError, match=r"s\.toml"):
        load_scenario(bad)


def test_expectations_are_checked_against_what_the_phones_saw() -> None:
    sc = parse_scenario(
        {
            "phone": BASE["phone"],
            "step": [
                {"phone": "a", "to": ["b"], "text": "Сәлем", "expect": "delivered"},
                {"phone": "b", "to": ["a"], "text": "Код из SMS", "expect": "rejected"},
                {"phone": "a", "to": ["77019999999"], "text": "Купи хлеб", "expect": "accepted"},
            ],
        },
        "t.toml",
    )
    a, b = sc.phones
    result = ScenarioResult(
        {
            "a": PhoneReport(a, "attached", [
                Sent("b", "Сәлем", "RP-ACK", True, "delivered"),
                Sent("77019999999", "Купи хлеб", "RP-ERROR cause 1", False, "accepted"),
            ]),
            # the lure was refused, but it reached Aigerim anyway: not what was expected
            "b": PhoneReport(b, "attached", [
                Sent("a", "Код из SMS", "RP-ERROR cause 38", False, "rejected"),
            ], received=[("77010000001", "Сәлем")]),
        }
    )  # fmt: skip
    result.phones["a"].received.append(("77010000002", "Код из SMS"))
    _check(sc, result)
    met = [s.met for r in result.phones.values() for s in r.sent]
    assert met == [True, False, False]
    assert len(result.unmet) == 2
    out = format_result(sc, result)
    assert "UNEXPECTED (expected rejected)" in out and "UNEXPECTED (expected accepted)" in out
    assert "Expectations: 1 met, 2 unmet" in out
