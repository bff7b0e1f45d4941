"""The configuration sections of the probes and the legal workflow: every mistake is refused at
start naming its key (the rest of the file is covered by the gateway's own config tests)."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from gateway.config import DEFAULT_CONFIG, from_toml
from gateway.config_check import ConfigError

BASE: dict[str, Any] = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))


def with_(section: str, **values: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    node = data
    for part in section.split("."):
        node = node.setdefault(part, {})
    node.update(values)
    return data


def test_the_shipped_file_loads_with_probes_and_workflow_defaults() -> None:
    cfg = from_toml(copy.deepcopy(BASE))
    assert cfg.probes.probes == [] and cfg.workflow.enabled and not cfg.workflow.api_listen


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (with_("probes", probe=[{"name": "p1", "url": "x"}, {"name": "p1", "url": "y"}]),
         r"probes\.probe\[1\]\.name: 'p1' is used twice"),
        (with_("probes", probe=[{"name": "p/1", "url": "x"}]), r"probes\.probe\[0\]\.name"),
        (with_("probes", probe=[{"name": "p1", "url": "x", "pin": "12"}]), "4 to 8 digits"),
        (with_("cases", extra_days_off=["2026-13-01"]), r"cases\.extra_days_off"),
        (with_("cases", confirming_probe_outcomes=["simbx"]), "confirming_probe_outcomes"),
        (with_("switch", url="ftp://switch"), r"switch\.url"),
        (with_("centre", url="http://centre"), r"centre\.url.*https"),
        (with_("centre", url="https://centre", client_cert="a", client_key="b", ca="c"),
         r"centre\.operator"),
        (with_("centre", url="https://centre", operator="kcell"), "client_cert, client_key"),
        (with_("centre", url="https://centre"), r"centre\.operator"),
        (with_("centre.endpoint", listen="127.0.0.1:8443"), "cert, key and client_ca"),
        (with_("api", listen="0.0.0.0:8080"), "plain HTTP only on loopback"),
        (with_("api", cert="a.pem"), "both"),
        (with_("api", token=[{"sha256": "secret", "user": "u", "role": "analyst"}]), "SHA-256"),
        (with_("api", token=[{"sha256": "a" * 64, "user": "u", "role": "root"}]), "role"),
        (with_("cases", colour="red"), r"cases\.colour: unknown key"),
    ],
)  # fmt: skip
def test_mistakes_are_refused_naming_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_toml(data)


def test_a_loopback_api_without_tls_and_hashed_tokens_load() -> None:
    token = {"sha256": "ab" * 32, "user": "a.nurlanova", "role": "analyst"}
    data = with_("api", listen="127.0.0.1:8080", token=[token])
    w = from_toml(data).workflow
    assert w.api_listen == "127.0.0.1:8080" and w.api_tokens == (
        ("ab" * 32, "a.nurlanova", "analyst"),
    )
