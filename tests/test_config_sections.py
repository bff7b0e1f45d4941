"""The configuration sections of the probes and the legal workflow: every mistake is refused at
start naming its key (the rest of the file is covered by the gateway's own config tests)."""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fixtures_services import make_tls_material

from gateway import daemon
from gateway.api import ApiLimits
from gateway.cli import cases as cases_cli
from gateway.config import DEFAULT_CONFIG, PROJECT_DIR, from_toml, load
from gateway.config_check import ConfigError
from gateway.pipeline.inspector import Inspector
from gateway.wiring import mqtt_config

BASE: dict[str, Any] = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))


def with_(section: str, **values: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    node = data
    for part in section.split("."):
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node.update(values)
    return data


def test_the_shipped_file_loads_with_probes_and_workflow_defaults() -> None:
    cfg = from_toml(copy.deepcopy(BASE))
    assert cfg.probes.probes == [] and cfg.cases.enabled and not cfg.api.listen


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (with_("probes", probe=[{"name": "p1", "url": "x"}, {"name": "p1", "url": "y"}]),
         r"probes\.probe\[1\]\.name: 'p1' is used twice"),
        (with_("probes", probe=[{"name": "p/1", "url": "x"}]), r"probes\.probe\[0\]\.name"),
        (with_("probes", probe=[{"name": "p1", "url": "x", "pin": "12"}]), "4 to 8 digits"),
        (with_("cases", extra_days_off=["2026-13-01"]), r"cases\.extra_days_off"),
        (with_("cases", auto_confirm_probe_outcomes=["simbx"]), "auto_confirm_probe_outcomes"),
        # keys whose meaning changed are refused with what replaces them
        (with_("cases", confirming_probe_outcomes=["simbox"]), "auto_confirm_probe_outcomes"),
        (with_("cases", block_all_subscriber_numbers=True), 'suspend_scope = "subscriber"'),
        (with_("cases", suspend_scope="subscriber"), r"cases\.suspend_scope_reason: required"),
        (with_("cases", report_detection="sometimes"), r"cases\.report_detection: one of"),
        (with_("cases", work_start="9am"), r"cases\.work_start: a time of day"),
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
        # the store's URL: its scheme checked at load, its password never repeated
        (with_("store", url="mysql://fg:pw@db/x"), r"store\.url: mysql://fg:\*\*\*@db/x: unsup"),
        # a client certificate without its key (or the reverse) is refused, naming the key
        (with_("mqtt", tls_cert="client.pem"), r"mqtt\.tls_key: needed with mqtt\.tls_cert"),
        (with_("mqtt", tls_key="client.key"), r"mqtt\.tls_cert: needed with mqtt\.tls_key"),
        (with_("mqtt", tls="yes"), r"mqtt\.tls: expected bool, got str 'yes'"),
        (with_("mqtt", tls_insecure=True), r"mqtt\.tls_insecure: only with TLS"),
        (with_("smsc.0.tls", key="client.key"), r"smsc\[0\]\.tls\.cert: needed with"),
        # the API's limits (docs/api.md "Limits")
        (with_("api", max_body=100), r"api\.max_body: must be 1024\.\.16777216"),
        (with_("api", max_body="64k"), r"api\.max_body: expected int"),
        (with_("api", max_connections=1), r"api\.max_connections"),
        (with_("api", client_timeout=0), r"api\.client_timeout: must be at least 0\.1"),
        (with_("api", client_timeout=3600), r"api\.client_timeout: must be at most 300"),
        (with_("api", lookup_rate=0), r"api\.lookup_rate"),
        (with_("api", lookup_burst=0), r"api\.lookup_burst"),
        (with_("centre.endpoint", max_connections=0), r"centre\.endpoint\.max_connections"),
        (with_("centre.endpoint", client_timeout=-1), r"centre\.endpoint\.client_timeout"),
    ],
)  # fmt: skip
def test_mistakes_are_refused_naming_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_toml(data)


def test_a_loopback_api_without_tls_and_hashed_tokens_load() -> None:
    token = {"sha256": "ab" * 32, "user": "a.nurlanova", "role": "analyst"}
    data = with_("api", listen="127.0.0.1:8080", token=[token])
    w = from_toml(data).api
    assert w.listen == "127.0.0.1:8080" and w.tokens == (("ab" * 32, "a.nurlanova", "analyst"),)


def test_the_api_limits_default_as_in_the_code_and_load() -> None:
    w = from_toml(copy.deepcopy(BASE)).api
    shipped = ApiLimits(
        max_body=w.max_body,
        max_connections=w.max_connections,
        client_timeout=w.client_timeout,
        lookup_rate=w.lookup_rate,
        lookup_burst=w.lookup_burst,
    )
    assert shipped == ApiLimits()  # the file shows the defaults (its header says so)
    w = from_toml(with_("api", max_body=4096, lookup_rate=2.5, client_timeout=3)).api
    assert (w.max_body, w.lookup_rate, w.client_timeout) == (4096, 2.5, 3.0)


@pytest.mark.parametrize(
    ("values", "tls", "where"),
    [
        ({}, False, "mqtt://127.0.0.1:1883"),
        ({"tls": True, "port": 8883}, True, "mqtts://127.0.0.1:8883"),  # the system's CAs
        ({"tls": False, "tls_ca": "{ca}"}, True, "mqtts://127.0.0.1:1883"),  # tls_ca implies it
        ({"tls": True, "tls_ca": "{ca}", "tls_insecure": True}, True, "mqtts://127.0.0.1:1883"),
    ],
    ids=["plain", "tls-true", "tls-ca-alone", "tls-insecure"],
)  # fmt: skip
def test_mqtt_tls_true_is_a_key_and_the_files_imply_it(
    tmp_path: Path, values: dict[str, Any], tls: bool, where: str
) -> None:
    ca = str(make_tls_material(tmp_path).ca) if "{ca}" in values.values() else ""
    data = with_("mqtt", **{k: ca if v == "{ca}" else v for k, v in values.items()})
    settings = from_toml(data).mqtt
    assert settings.tls is values.get("tls", False)
    mqtt = mqtt_config(settings)
    assert (mqtt.use_tls, mqtt.where, mqtt.tls_ca) == (tls, where, ca or None)
    assert mqtt.tls_insecure is values.get("tls_insecure", False)


# -- files that the configuration names, found unusable at start-up -------------------------------


def _toml(value: Any) -> str:
    return json.dumps(value)  # strings, booleans and numbers are written alike in TOML


def _start(tmp_path: Path, sections: dict[str, dict[str, Any]]) -> int:
    """`fraudgate run -c FILE` as the command runs it (no detectors: they take seconds to
    build and are not what is tested); it must stop before binding anything."""
    tables: dict[str, dict[str, Any]] = {
        "gateway": {"data_dir": str(tmp_path / "var")},
        "mqtt": {"enabled": False},
    }
    for name, values in sections.items():
        tables[name] = tables.get(name, {}) | values
    text = '[[smsc]]\naddress = "127.0.0.1:9"\nsystem_id = "gw"\npassword = "x"\n'
    for name, values in tables.items():
        text += f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items())
    path = tmp_path / "fraudgate.toml"
    path.write_text(text, encoding="utf-8")
    return daemon.run(argparse.Namespace(config=path))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"mqtt": {"enabled": True, "tls_cert": "client.pem"}}, "mqtt.tls_key: needed with"),
        ({"mqtt": {"enabled": True, "tls": True, "tls_ca": "{missing}"}},
         "not a readable PEM CA file ([Errno 2] No such file or directory)"),
        ({"mqtt": {"enabled": True, "tls_cert": "{junk}", "tls_key": "{junk}"}},
         "mqtt: tls_cert, tls_key: not a PEM certificate and its private key"),
        ({"api": {"listen": "127.0.0.1:0", "cert": "{junk}", "key": "{missing}"}},
         "api.key: no such file"),
        ({"api": {"listen": "127.0.0.1:0", "cert": "{junk}", "key": "{junk}"}},
         "api.cert, api.key: not a PEM certificate"),
        ({"centre.endpoint": {"listen": "127.0.0.1:0", "cert": "{junk}", "key": "{junk}",
                              "client_ca": "{junk}"}}, "centre.endpoint (cert, key, client_ca):"),
    ],
    ids=["mqtt-cert-without-key", "mqtt-ca-missing", "mqtt-not-pem", "api-key-missing",
         "api-not-pem", "endpoint-not-pem"],
)  # fmt: skip
def test_unusable_tls_files_stop_the_start_in_one_line(
    tmp_path: Path,
    section: dict[str, dict[str, Any]],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(daemon, "build_inspector", lambda cfg, **_: Inspector([], cfg.thresholds))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    files = {"{junk}": str(junk), "{missing}": str(tmp_path / "missing.pem")}
    data = {
        name: {k: files.get(v, v) if isinstance(v, str) else v for k, v in values.items()}
        for name, values in section.items()
    }
    code = _start(tmp_path, data)  # an exception escaping it would be the traceback
    stderr = capsys.readouterr().err
    assert (code, stderr.count("\n")) == (2, 1), stderr
    assert stderr.startswith("fraudgate run: configuration error: ") and message in stderr


# -- environment overrides: FRAUDGATE_<SECTION>__<KEY> only -------------------------------------

UNRELATED_ENV = {
    "FRAUDGATE_HOME": "/opt/fraudgate",
    "FRAUDGATE_SWITCH_TOKEN": "old-name-secret",  # the name docs/cases.md once gave
    "FRAUDGATE_OPERATOR": "kcell",  # `fraudgate cases --operator` default
    "FRAUDGATE_PG_BINDIR": "/usr/lib/postgresql/16/bin",  # the tests' PostgreSQL
    "FRAUDGATE_": "x",
    "FRAUDGATE__MQTT": "x",
    "FRAUDGATE_MQTT__": "x",
}


def test_other_fraudgate_variables_are_ignored_with_one_debug_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="fraudgate.config")
    overrides = {"FRAUDGATE_MQTT__PORT": "8883", "FRAUDGATE_SMSC__0__PASSWORD": "p4ss"}
    cfg = load(DEFAULT_CONFIG, {**UNRELATED_ENV, **overrides, "PATH": "/usr/bin"})
    assert cfg.mqtt.port == 8883 and cfg.smsc[0].esme.password == "p4ss"
    assert cfg.switch.token == ""  # the single-underscore name is not the token
    [line] = [r.getMessage() for r in caplog.records if r.name == "fraudgate.config"]
    assert all(name in line for name in UNRELATED_ENV)
    assert "old-name-secret" not in line and "PATH" not in line  # names only, ours only


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("FRAUDGATE_MQTT__HOSTT", r"mqtt\.hostt: unknown key \(set by FRAUDGATE_MQTT__HOSTT\)"),
        ("FRAUDGATE_SMSC__0__HOSTT", r"smsc\[0\]\.hostt: unknown key \(set by FRAUDGATE_SMSC"),
        ("FRAUDGATE_MQQT__HOST", r"mqqt: unknown key \(set by FRAUDGATE_MQQT__HOST\)"),
        ("FRAUDGATE_SMSC__7__PASSWORD", r"FRAUDGATE_SMSC__7__PASSWORD: no item 7 in smsc"),
    ],
)
def test_an_override_naming_an_unknown_key_is_refused_naming_it(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(DEFAULT_CONFIG, {**UNRELATED_ENV, name: "x"})


def test_the_switch_token_is_one_variable_for_the_daemon_and_the_cases_command() -> None:
    environ = {**UNRELATED_ENV, "FRAUDGATE_SWITCH__TOKEN": "s3cret"}
    configured = load(DEFAULT_CONFIG, environ).switch
    assert configured.token == "s3cret"
    settings = cases_cli.switch_settings(configured, "http://127.0.0.1:8099")
    assert (settings.kind, settings.url, settings.token) == (
        "http",
        "http://127.0.0.1:8099",
        "s3cret",
    )
    assert cases_cli.switch_settings(configured, "") is configured


def test_fraudgate_cases_runs_with_unrelated_fraudgate_variables(tmp_path: Path) -> None:
    conf = tmp_path / "gw.toml"
    conf.write_text(f'[gateway]\ndata_dir = "{tmp_path}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDGATE_")}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "cases", "-c", str(conf), "list"],
        cwd=PROJECT_DIR, env={**env, **UNRELATED_ENV}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "error" not in result.stderr.lower()


PROXY_ACCOUNT = {"system_id": "aggr", "password": "pw", "allow": ["10.1.0.0/16"]}
PROXY_UPSTREAM = {"address": "127.0.0.1:2775", "system_id": "fraudgate", "password": "pw"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"enabled": True}, r"proxy: enabled needs at least one \[\[proxy\.account\]\]"),
        ({"account": [{**PROXY_ACCOUNT, "password": "longer-than-8"}]},
         r"proxy\.account\[0\]\.password: 1 to 8"),
        ({"account": [{**PROXY_ACCOUNT, "allow": ["10.1.0.300/16"]}]}, r"proxy\.account\[0\]"),
        ({"account": [PROXY_ACCOUNT, PROXY_ACCOUNT]}, r"proxy\.account\[1\]\.system_id: 'aggr'"),
        ({"account": [{**PROXY_ACCOUNT, "numbers": ["+7555"]}]}, r"numbers: digit prefixes"),
        ({"account": [{**PROXY_ACCOUNT, "bind_type": ["receiver"]}]}, "bind_type"),
        ({"upstream": [{**PROXY_UPSTREAM, "bind": "receiver"}]}, r"proxy\.upstream\[0\]\.bind"),
        ({"upstream": [{**PROXY_UPSTREAM, "address": "nowhere"}]}, r"upstream\[0\]\.address"),
        ({"mode": "enforcing"}, r"proxy\.mode"),
        ({"listen": "0.0.0.0"}, r"proxy\.listen"),
    ],
)  # fmt: skip
def test_proxy_mistakes_are_refused_naming_the_key(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_toml(with_("proxy", **values))


def test_a_proxy_section_loads_with_its_accounts_and_each_upstream_bind() -> None:
    import ipaddress

    cfg = from_toml(with_("proxy", enabled=True, listen="127.0.0.1:0",
                          account=[{**PROXY_ACCOUNT, "senders": ["Shop.KZ"], "numbers": ["7555"]}],
                          upstream=[{**PROXY_UPSTREAM, "binds": 2, "window": 20}]))  # fmt: skip
    p = cfg.proxy
    assert p.enabled and (p.host, p.port) == ("127.0.0.1", 0)
    (acct,) = p.accounts
    assert acct.senders == frozenset({"shopkz"}) and acct.numbers == ("7555",)
    assert acct.admits("10.1.2.3") and not acct.admits("10.2.0.1") and not acct.admits(None)
    assert acct.admits("::ffff:10.1.2.3")  # an IPv4 client on a dual-stack socket
    assert acct.allow == (ipaddress.ip_network("10.1.0.0/16"),)
    assert [u.name for u in p.upstream] == ["127.0.0.1:2775#1", "127.0.0.1:2775#2"]
    assert {u.session.window for u in p.upstream} == {20}


def test_the_proxy_lab_file_loads_with_the_proxy_alone() -> None:
    cfg = load(PROJECT_DIR / "config" / "proxy-lab.toml")
    assert cfg.proxy.enabled and not cfg.smsc and cfg.enforcing
    assert [a.system_id for a in cfg.proxy.accounts] == ["aggr", "kaspi-a2p"]
    assert (cfg.proxy.upstream[0].port, cfg.proxy.upstream[0].system_id) == (2775, "loadgen")
