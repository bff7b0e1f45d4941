"""The [switch] table: kinds, sub-tables, mistakes refused naming the key, and open_switch."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from gateway.config import DEFAULT_CONFIG, from_toml
from gateway.config_check import ConfigError, Table
from gateway.switch.command import CommandSwitch
from gateway.switch.config import SwitchSettings, open_switch, parse_switch
from gateway.switch.osmocom import OsmocomSettings, OsmocomSwitch
from gateway.switch.port import CountedSwitch, HttpSwitch, NoSwitch, SwitchUnavailable

BASE: dict[str, Any] = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
TOOL = ["/opt/prov/hlrctl", "barring", "--msisdn", "{msisdn}", "--on"]
UNTOOL = ["/opt/prov/hlrctl", "barring", "--msisdn", "{msisdn}", "--off"]


def parse(text: str) -> SwitchSettings:
    return parse_switch(Table(tomllib.loads(text).get("switch", {}), "switch"))


def test_the_shipped_file_has_no_switch() -> None:
    cfg = from_toml(copy.deepcopy(BASE))
    assert cfg.switch == SwitchSettings() and not cfg.switch.configured


def test_the_old_keys_still_mean_http() -> None:
    data = copy.deepcopy(BASE)
    data["switch"] = {"url": "https://prov.example/api", "token": "t", "timeout": 2}
    sw = from_toml(data).switch
    assert sw == SwitchSettings("http", "https://prov.example/api", "t", 2.0)


def test_command_kind() -> None:
    sw = parse(
        """
        [switch]
        kind = "command"
        [switch.command]
        block = ["/opt/prov/hlrctl", "barring", "--msisdn", "{msisdn}", "--on"]
        unblock = ["/opt/prov/hlrctl", "barring", "--msisdn", "{msisdn}", "--off"]
        status = ["/opt/prov/hlrctl", "show", "--msisdn", "{msisdn}"]
        blocked_pattern = "^barring: on"
        active_pattern = "^barring: off"
        retry_codes = [75]
        unknown_codes = [3]
        timeout = 12
        env = ["HLRCTL_CONFIG", "LANG=C"]
        """
    )
    assert sw.kind == "command" and sw.command is not None and sw.osmocom is None
    c = sw.command
    assert c.block[3] == "{msisdn}" and c.status[1] == "show"
    assert (c.ok_codes, c.retry_codes, c.unknown_codes, c.timeout) == ((0,), (75,), (3,), 12.0)
    assert c.env == ("HLRCTL_CONFIG", "LANG=C")


def test_osmocom_kind_defaults_and_hlr_only() -> None:
    sw = parse('[switch]\nkind = "osmocom"\ntimeout = 3')
    assert sw.osmocom == OsmocomSettings(timeout=3.0)  # the lab's ports, [switch] timeout
    sw = parse(
        '[switch]\nkind = "osmocom"\n[switch.osmocom]\nhlr_ctrl = "10.0.0.5:4259"\n'
        'msc_vty = ""\ntimeout = 1.5'
    )
    assert sw.osmocom == OsmocomSettings("10.0.0.5", 4259, "", 0, 1.5)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"kind": "ss7"}, r"switch\.kind: one of none, http, command, osmocom"),
        ({"url": "ftp://switch"}, r"switch\.url: an http\(s\)://"),
        ({"kind": "http"}, r"switch\.url: an http\(s\)://"),
        ({"kind": "osmocom", "url": "https://x"}, r"switch\.url: only with kind = \"http\""),
        ({"timeout": 0}, r"switch\.timeout: must be at least 0\.1"),
        ({"kind": "command"}, r"switch\.command\.block: required"),
        ({"kind": "command", "command": {"block": TOOL}}, r"switch\.command\.unblock: required"),
        ({"kind": "command", "command": {"block": "hlrctl --on", "unblock": UNTOOL}},
         r"switch\.command\.block: expected list"),
        ({"kind": "command", "command": {"block": ["/x", 5], "unblock": UNTOOL}},
         r"switch\.command\.block\[1\]: expected a string"),
        ({"kind": "command", "command": {"block": ["sh", "-c", "x {msisdn}"], "unblock": UNTOOL}},
         r"switch\.command\.block: runs a shell"),
        ({"kind": "command", "command": {"block": ["/x", "{imsi}"], "unblock": UNTOOL}},
         r"switch\.command\.block: '\{imsi\}' is not one of"),
        ({"kind": "command", "command": {"block": TOOL, "unblock": UNTOOL, "status": TOOL}},
         r"switch\.command\.status: needs blocked_pattern"),
        ({"kind": "command", "command": {"block": TOOL, "unblock": UNTOOL, "expect": "(["}},
         r"switch\.command\.expect: not a regular expression"),
        ({"kind": "command", "command": {"block": TOOL, "unblock": UNTOOL, "retry_codes": [256]}},
         r"switch\.command\.retry_codes\[0\]: an exit code"),
        ({"kind": "command", "command": {"block": TOOL, "unblock": UNTOOL, "env": ["A B"]}},
         r"switch\.command\.env"),
        ({"kind": "command", "command": {"block": TOOL, "unblock": UNTOOL, "colour": 1}},
         r"switch\.command\.colour: unknown key"),
        # a sub-table for another kind is still checked
        ({"command": {"block": ["bash", "-c", "x"], "unblock": UNTOOL}},
         r"switch\.command\.block: runs a shell"),
        ({"kind": "osmocom", "osmocom": {"hlr_ctrl": "localhost"}},
         r"switch\.osmocom\.hlr_ctrl: expected HOST:PORT"),
        ({"kind": "osmocom", "osmocom": {"msc_vty": "127.0.0.1:0"}},
         r"switch\.osmocom\.msc_vty: expected HOST:PORT"),
        ({"kind": "osmocom", "osmocom": {"ctrl": "127.0.0.1:4259"}},
         r"switch\.osmocom\.ctrl: unknown key"),
        ({"krind": "osmocom"}, r"switch\.krind: unknown key"),
    ],
)  # fmt: skip
def test_mistakes_are_refused_naming_the_key(table: dict[str, Any], message: str) -> None:
    data = copy.deepcopy(BASE)
    data["switch"] = table
    with pytest.raises(ConfigError, match=message):
        from_toml(data)


async def test_open_switch_builds_each_kind() -> None:
    # every adapter comes wrapped in CountedSwitch (its calls counted for /metrics)
    async with open_switch(SwitchSettings()) as none:
        assert isinstance(none, CountedSwitch) and isinstance(none.inner, NoSwitch)
        with pytest.raises(SwitchUnavailable):
            await none.block("77011234567", reason="r", case_id="c1")
        assert none.calls == {("block", "unavailable"): 1}
    async with open_switch(SwitchSettings.http("http://127.0.0.1:1", "t")) as http:
        assert isinstance(http, CountedSwitch) and isinstance(http.inner, HttpSwitch)
    cmd = parse(
        '[switch]\nkind = "command"\n[switch.command]\nblock = ["/bin/true"]\n'
        'unblock = ["/bin/true"]'
    )
    async with open_switch(cmd) as command:
        assert isinstance(command, CountedSwitch) and isinstance(command.inner, CommandSwitch)
        assert (await command.block("77011234567", reason="r", case_id="c1")).status == "blocked"
    async with open_switch(parse('[switch]\nkind = "osmocom"')) as counted:
        osmo = counted.inner
        assert isinstance(osmo, OsmocomSwitch)
        assert osmo.settings.hlr_ctrl_port == 4259 and osmo.settings.msc_vty_port == 4254
