"""The simulated SMSC's configuration: config/smsc.toml, errors that name the key, CLI flags."""

from __future__ import annotations

import dataclasses
import importlib.util
import ipaddress
import logging
from pathlib import Path
from typing import Any

import pytest

from gateway import cli
from gateway.config_check import ConfigError
from simulators.smsc_cli import config_from_flags, config_from_toml, load_config
from smsc.bindguard import BindGuardConfig
from smsc.client import EsmeClient, EsmeConfig
from smsc.pdu import Pdu
from smsc.session import BindType
from smsc.simulator import Faults, Route, SimulatedSmsc

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "smsc.toml"


def test_documented_example_loads() -> None:
    cfg = load_config(EXAMPLE)
    assert (cfg.host, cfg.port, cfg.system_id) == ("127.0.0.1", 2775, "fraudgate-sim")
    assert (cfg.response_timeout, cfg.enquire_link_interval) == (10.0, 30.0)
    assert (cfg.retry_interval, cfg.max_attempts, cfg.validity, cfg.store_limit) == (
        5.0, 0, 86400.0, 1_000_000)  # fmt: skip
    gateway, loadgen = cfg.accounts
    assert (gateway.system_id, gateway.password, gateway.window) == ("gateway", "secret", 50)
    assert gateway.bind_types == frozenset(BindType)
    assert gateway.allow_ips == (
        ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))  # fmt: skip
    assert gateway.throughput == 0 and gateway.faults == Faults()
    assert loadgen.bind_types == {BindType.TRANSMITTER, BindType.TRANSCEIVER}
    assert loadgen.faults == Faults()  # every fault shown at its default: all off
    assert cfg.routes == [Route("7", "gateway"), Route("", "gateway")]
    assert cfg.bind_guard == BindGuardConfig()  # every key shown at its default


class _Esme:
    def on_bind(self, link: Any, pdu: Pdu, bind_type: BindType) -> None:  # pragma: no cover
        raise AssertionError

    def on_request(self, link: Any, pdu: Pdu) -> None:
        link.respond(pdu.response())

    def on_closed(self, link: Any, reason: str, clean: bool) -> None:
        pass


async def test_documented_example_runs() -> None:
    cfg = dataclasses.replace(load_config(EXAMPLE), port=0)
    async with SimulatedSmsc(cfg) as sim:
        esme = EsmeConfig("127.0.0.1", sim.port, "gateway", "secret", bind_timeout=2)
        async with EsmeClient(esme, _Esme()) as link:
            assert link.session.bound


def _with_account(**fields: Any) -> dict[str, Any]:
    return {"account": [{"system_id": "gw", "password": "pw", **fields}]}


ROUTE_OK = {"prefix": "7", "account": "gw"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"account": [{"system_id": "gw"}]}, "account[0].password: required"),
        ({"account": [{"password": "pw"}]}, "account[0].system_id: required"),
        (_with_account(window="x"), "account[0].window: expected int"),
        (_with_account(window=True), "account[0].window: expected int, got bool"),
        (_with_account(window=0), "account[0].window: must be >= 1"),
        (_with_account(throughput="fast"), "account[0].throughput: expected float"),
        (_with_account(password="123456789"), "account[0].password: at most 8 characters"),
        (_with_account(system_id="x" * 16), "account[0].system_id: 1 to 15 characters"),
        (_with_account(system_id=""), "account[0].system_id: 1 to 15 characters"),
        (_with_account(bind_types=["sender"]), "account[0].bind_types: "),
        (_with_account(bind_types="receiver"), "account[0].bind_types: expected list"),
        (_with_account(allow_ips=["10.0.0.300"]), "account[0].allow_ips[0]: "),
        (_with_account(colour="red"), "account[0].colour: unknown key"),
        (_with_account(faults={"explode": 1}), "account[0].faults.explode: unknown key"),
        (_with_account(faults=3), "account[0].faults: expected a table"),
        (_with_account(faults={"throttle_ratio": 1.5}),
         "account[0].faults.throttle_ratio: a fraction, at most 1"),
        (_with_account(faults={"drop_response_ratio": -0.1}),
         "account[0].faults.drop_response_ratio: must be at least 0"),
        (_with_account(faults={"error_status": "0x45"}),
         "account[0].faults.error_status: expected int"),
        ({"account": [{"system_id": "a", "password": "pw"}, {"system_id": "b"}]},
         "account[1].password: required"),
        ({**_with_account(), "route": [{"prefix": "7", "account": "nobody"}]},
         "route[0].account: no account 'nobody'"),
        ({**_with_account(), "route": [ROUTE_OK, {"prefix": "+7", "account": "gw"}]},
         "route[1].prefix: digits only"),
        ({**_with_account(), "route": [{"prefix": "7"}]}, "route[0].account: required"),
        ({**_with_account(), "route": [{**ROUTE_OK, "weight": 2}]}, "route[0].weight: unknown key"),
        ({**_with_account(), "server": {"listen": "localhost"}},
         "server.listen: expected HOST:PORT"),
        ({**_with_account(), "server": {"listen": "127.0.0.1:99999"}},
         "server.listen: expected HOST:PORT"),
        ({**_with_account(), "server": {"listen": "127.0.0.1:"}},
         "server.listen: expected HOST:PORT"),
        ({**_with_account(), "server": {"listen": 2775}}, "server.listen: expected str"),
        ({**_with_account(), "server": {"port": 2775}}, "server.port: unknown key"),
        ({**_with_account(), "server": {"response_timeout": 0}},
         "server.response_timeout: must be at least 0.1"),
        ({**_with_account(), "delivery": {"retry_interval": -1}},
         "delivery.retry_interval: must be at least"),
        ({**_with_account(), "delivery": {"store_limit": 0}}, "delivery.store_limit: must be >= 1"),
        ({**_with_account(), "delivery": {"retries": 3}}, "delivery.retries: unknown key"),
        ({**_with_account(), "routes": []}, "routes: unknown key"),
        ({**_with_account(), "bind_guard": {"address_failures": 0}},
         "bind_guard.address_failures: must be >= 1"),
        ({**_with_account(), "bind_guard": {"system_id_failures": 2.5}},
         "bind_guard.system_id_failures: expected int"),
        ({**_with_account(), "bind_guard": {"lockout": "1m"}},
         "bind_guard.lockout: expected float"),
        ({**_with_account(), "bind_guard": {"lockout": 120, "max_lockout": 60}},
         "bind_guard.max_lockout: must be at least bind_guard.lockout (120.0), got 60.0"),
        ({**_with_account(), "bind_guard": {"forget_after": 0}},
         "bind_guard.forget_after: must be at least 1.0"),
        ({**_with_account(), "bind_guard": {"log_interval": -1}},
         "bind_guard.log_interval: must be at least 0.0"),
        ({**_with_account(), "bind_guard": {"tries": 3}}, "bind_guard.tries: unknown key"),
        ({**_with_account(), "bind_guard": 5}, "bind_guard: expected a table"),
        ({"account": {"system_id": "gw", "password": "pw"}}, "account: expected an array"),
        ({}, "account: at least one [[account]] is required"),
    ],
)  # fmt: skip
def test_config_error_names_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_toml(data)
    assert str(err.value).startswith(message), str(err.value)


def test_duplicate_system_id_is_refused() -> None:
    data: dict[str, object] = {
        "account": [{"system_id": "gw", "password": "a"}, {"system_id": "gw", "password": "b"}]
    }
    with pytest.raises(ConfigError, match=r"^account\[1\]\.system_id: "):
        config_from_toml(data)


def test_listen_accepts_bracketed_ipv6() -> None:
    cfg = config_from_toml({**_with_account(), "server": {"listen": "[::1]:2775"}})
    assert (cfg.host, cfg.port) == ("::1", 2775)


def test_minimal_config_defaults() -> None:
    cfg = config_from_toml(_with_account())
    assert (cfg.host, cfg.port) == ("127.0.0.1", 2775)
    assert cfg.routes == [Route("", "gw")]  # without routes: everything to the first account
    (gw,) = cfg.accounts
    assert (gw.window, gw.throughput, gw.allow_ips, gw.faults) == (50, 0.0, (), Faults())


def test_bind_guard_is_read() -> None:
    guard = {"address_failures": 3, "system_id_failures": 10, "lockout": 30, "max_lockout": 600,
             "forget_after": 900, "log_interval": 10}  # fmt: skip
    cfg = config_from_toml({**_with_account(), "bind_guard": guard})
    assert cfg.bind_guard == BindGuardConfig(3, 10, 30.0, 600.0, 900.0, 10.0)
    assert config_from_toml(_with_account()).bind_guard == BindGuardConfig()


def test_faults_are_read() -> None:
    faults = {"throttle_every": 3, "throttle_ratio": 0.5, "response_delay": 1, "error_status": 69,
              "error_prefix": "7702", "disconnect_after": 5, "garbage_after": 2,
              "drop_response_ratio": 0.25}  # fmt: skip
    (acc,) = config_from_toml(_with_account(faults=faults)).accounts
    assert acc.faults == Faults(3, 0.5, 1.0, 0.25, 69, "7702", 5, 2)


def test_load_config_file_errors_carry_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    with pytest.raises(ConfigError, match=r"none\.toml: "):
        load_config(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\nlisten = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_config(broken)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[account]]\nsystem_id = "gw"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert str(err.value) == f"{bad}: account[0].password: required"


# ---- flags ----------------------------------------------------------------------------------


def test_config_from_flags() -> None:
    cfg = config_from_flags("0.0.0.0:2776", ["gw:secret", "rx:p:w"], ["7=rx", "77=gw"])
    assert (cfg.host, cfg.port) == ("0.0.0.0", 2776)
    assert [(a.system_id, a.password) for a in cfg.accounts] == [("gw", "secret"), ("rx", "p:w")]
    assert cfg.routes == [Route("7", "rx"), Route("77", "gw")]
    default = config_from_flags(":0", ["gw:secret"], [])
    assert (default.host, default.port, default.routes) == ("127.0.0.1", 0, [Route("", "gw")])


@pytest.mark.parametrize(
    ("accounts", "routes", "message"),
    [
        (["gw"], [], "--account: expected ID:PASSWORD"),
        (["gw:pw"], ["7"], "--route: expected PREFIX=ACCOUNT"),
        (["gw:pw"], ["7=rx"], "route[0].account: no account 'rx'"),
        (["gw:toolongpw"], [], "account[0].password: at most 8 characters"),
    ],
)
def test_config_from_flags_errors(accounts: list[str], routes: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_flags("127.0.0.1:2775", accounts, routes)
    assert str(err.value).startswith(message)


@pytest.fixture
def importable_subcommands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the subcommands whose module exists (others are being written alongside)."""
    present = {
        name: entry
        for name, entry in cli.SUBCOMMANDS.items()
        if importlib.util.find_spec(entry[0]) is not None
    }
    monkeypatch.setattr(cli, "SUBCOMMANDS", present)


@pytest.mark.usefixtures("importable_subcommands")
@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["smsc"], "give -c FILE or at least one --account"),
        (["smsc", "--account", "gw"], "--account: expected ID:PASSWORD"),
        (["smsc", "--account", "gw:pw", "--route", "7=nobody"], "route[0].account: no account"),
        (["smsc", "-c", "/nonexistent/smsc.toml"], "/nonexistent/smsc.toml: "),
    ],
)
def test_cli_configuration_errors_exit_2(
    argv: list[str], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="fraudgate.smsc")
    assert cli.main(argv) == 2
    assert f"configuration: {reason}" in caplog.text


def test_one_hostport_parser_for_listening_and_connecting() -> None:
    from gateway.config_check import parse_hostport

    assert parse_hostport("[::1]:2775", "x") == ("::1", 2775)
    assert parse_hostport(":0", "x", listen=True) == ("127.0.0.1", 0)  # free port, loopback
    for bad in (":2775", "host:0", "host:65536", "host"):  # connecting needs host and port
        with pytest.raises(ConfigError, match="x: expected HOST:PORT"):
            parse_hostport(bad, "x")
