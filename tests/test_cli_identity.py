"""Who decides on the command line (R7, R8): `fraudgate cases verify|confirm|reject|unblock` run
as an API token's principal or as the OS user mapped in [cli.users], with the API's permission
table, an api_audit row per decision, and the resolved user id and role in the case history.
Through the real CLI on a SQLite database and the switch simulator on a loopback port."""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.api.audit import AuditEntry, AuditLog, AuditQuery
from gateway.api.auth import hash_token
from gateway.cases import Cases, CaseView, State
from gateway.cli import main
from gateway.config import DEFAULT_CONFIG, load
from gateway.config_check import ConfigError
from gateway.registry import Registry
from gateway.store import Store, sqlite_url
from gateway.switch.port import NoSwitch
from gateway.workdays import KzCalendar
from simulators.switch import SwitchSimulator

PROJECT_DIR = Path(__file__).resolve().parents[1]
NUMBER = "+77781234567"
OS_USER = pwd.getpwuid(os.geteuid()).pw_name  # root in the test container: not special
CLIENT = f"cli:{OS_USER}@{socket.gethostname()}"[:64]
SUPERVISOR_TOKEN = "sup-3f9a-token"
ANALYST_TOKEN = "an-71c2-token"


@dataclass
class Site:
    url: str
    config: Path
    case_id: str
    tmp: Path

    def write_config(self, users: str) -> None:
        self.config.write_text(config_text(self.url, self.config.parent / "switch_url", users))


def config_text(url: str, switch_file: Path, users: str) -> str:
    switch = switch_file.read_text() if switch_file.exists() else ""
    return f"""
[store]
url = "{url}"
{switch}
[[api.token]]
sha256 = "{hash_token(SUPERVISOR_TOKEN)}"
user = "u-saule"
role = "supervisor"

[[api.token]]
sha256 = "{hash_token(ANALYST_TOKEN)}"
user = "u-bolat"
role = "analyst"

{users}
"""


ANALYST_OS_USER = f'[cli.users]\n"{OS_USER}" = {{ user_id = "u-aigerim", role = "analyst" }}\n'


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    """A database with one new case, a configuration naming it and a running switch."""
    url = sqlite_url(tmp_path / "data")
    async with SwitchSimulator(token="tok", known={NUMBER}) as sim:
        (tmp_path / "switch_url").write_text(f'[switch]\nurl = "{sim.url}"\ntoken = "tok"\n')
        async with await Store.open(url) as store:
            await store.migrate()
            cases = Cases(
                store, KzCalendar(), switch=NoSwitch(), registry=Registry(store), reports=None
            )
            case = await cases.open(source="complaint", numbers=[NUMBER], received_at=time.time())
        s = Site(url, tmp_path / "fraudgate.toml", case.id, tmp_path)
        s.write_config(ANALYST_OS_USER)
        yield s


async def cli(site: Site, action: str, *options: str) -> int:
    argv = ["cases", "-c", str(site.config), action, site.case_id, "--reason", "r", *options]
    return await asyncio.to_thread(main, argv)


async def facts(site: Site) -> tuple[CaseView, list[AuditEntry]]:
    async with await Store.open(site.url) as store:
        cases = Cases(
            store, KzCalendar(), switch=NoSwitch(), registry=Registry(store), reports=None
        )
        return await cases.get(site.case_id), await AuditLog(store).find(AuditQuery())


def rows(audit: list[AuditEntry]) -> list[tuple[str, str, str, str, str, bool, str]]:
    """Oldest first: (user, role, action, target kind, target, personal data, client)."""
    return [
        (e.user_id, e.role, e.action, e.target_kind, e.target, e.personal_data, e.client)
        for e in reversed(audit)
    ]


async def test_an_analyst_may_decide_but_not_unblock_a_supervisor_may(
    site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FRAUDGATE_TOKEN", raising=False)
    assert await cli(site, "verify") == 0  # as the OS user, mapped to u-aigerim (analyst)
    assert await cli(site, "confirm") == 0
    case, _ = await facts(site)
    assert case.state is State.SUSPENDED
    capsys.readouterr()

    assert await cli(site, "unblock") == 1  # the API's table: unblock is the supervisor's
    err = capsys.readouterr().err
    assert "u-aigerim (analyst) may not unblock a case" in err and "cases:unblock" in err
    after, audit = await facts(site)
    assert after.state is State.SUSPENDED and after.transitions == case.transitions

    token_file = site.tmp / "token"
    token_file.write_text(SUPERVISOR_TOKEN + "\n")
    assert await cli(site, "unblock", "--token-file", str(token_file)) == 0
    case, audit = await facts(site)
    assert case.state is State.UNBLOCKED
    decided = [(t.action, t.actor, t.role) for t in case.transitions if t.actor != "system"]
    assert decided == [
        ("start_verification", "u-aigerim", "analyst"),
        ("confirm", "u-aigerim", "analyst"),
        ("unblock", "u-saule", "supervisor"),
    ]
    assert rows(audit) == [
        ("u-aigerim", "analyst", "case.start_verification", "case", site.case_id, False, CLIENT),
        ("u-aigerim", "analyst", "case.confirm", "case", site.case_id, False, CLIENT),
        ("u-saule", "supervisor", "case.unblock", "case", site.case_id, False, CLIENT),
    ]


async def test_an_unknown_caller_is_refused_and_nothing_is_written(
    site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FRAUDGATE_TOKEN", raising=False)
    before, _ = await facts(site)
    site.write_config("")  # no [cli.users]: the OS user (root included) is nobody
    assert await cli(site, "verify") == 2
    err = capsys.readouterr().err
    assert f"OS user {OS_USER!r} is not in [cli.users]" in err and "--token-file" in err

    site.write_config('[cli.users]\nsomeone-else = { user_id = "u-x", role = "supervisor" }\n')
    assert await cli(site, "verify") == 2
    capsys.readouterr()

    site.write_config(ANALYST_OS_USER)  # a mapped OS user does not rescue a bad token
    monkeypatch.setenv("FRAUDGATE_TOKEN", "not-a-configured-token")
    assert await cli(site, "verify") == 2
    assert "unknown token" in capsys.readouterr().err
    missing = site.tmp / "no-such-token"
    assert await cli(site, "verify", "--token-file", str(missing)) == 2
    assert f"token file {missing}" in capsys.readouterr().err
    empty = site.tmp / "empty-token"
    empty.write_text("\n")
    assert await cli(site, "verify", "--token-file", str(empty)) == 2
    assert "empty" in capsys.readouterr().err

    after, audit = await facts(site)
    assert after.state is State.NEW and after.transitions == before.transitions and audit == []


async def test_the_free_text_identity_options_are_gone(site: Site) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse: unrecognized arguments
        await cli(site, "verify", "--actor", "u-boss", "--role", "supervisor")
    assert exited.value.code == 2


async def test_a_token_from_the_environment_through_python_m_gateway_cli(site: Site) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDGATE_")}
    base = [sys.executable, "-m", "gateway.cli", "cases", "-c", str(site.config)]
    result = await asyncio.to_thread(
        subprocess.run,
        [*base, "verify", site.case_id, "--reason", "call from the help line"],
        cwd=PROJECT_DIR, env={**env, "FRAUDGATE_TOKEN": ANALYST_TOKEN},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "verifying" in result.stdout
    case, audit = await facts(site)
    assert [(t.actor, t.role) for t in case.transitions[-1:]] == [("u-bolat", "analyst")]
    assert rows(audit) == [
        ("u-bolat", "analyst", "case.start_verification", "case", site.case_id, False, CLIENT),
    ]


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ('a = { user_id = "u-a", role = "boss" }', r"cli\.users\.a\.role: one of analyst"),
        ('a = { user_id = " ", role = "analyst" }', r"cli\.users\.a\.user_id: empty"),
        ('a = { role = "analyst" }', r"cli\.users\.a\.user_id: required"),
        ('a = { user_id = "u-a", role = "analyst", sudo = true }', r"cli\.users\.a\.sudo: unknown"),
        ('a = "u-a"', r"cli\.users\.a: expected a table"),
    ],
)
def test_bad_cli_users_are_refused_naming_the_key(tmp_path: Path, users: str, message: str) -> None:
    conf = tmp_path / "gw.toml"
    conf.write_text(f"[cli.users]\n{users}\n")
    with pytest.raises(ConfigError, match=message):
        load(conf, {})


def test_cli_users_parse_to_principals(tmp_path: Path) -> None:
    conf = tmp_path / "gw.toml"
    conf.write_text('[cli.users]\n"aigerim" = { user_id = "u-aigerim", role = "supervisor" }\n')
    [(name, who)] = load(conf, {}).cli.users.items()
    assert (name, who.user_id, who.role.value) == ("aigerim", "u-aigerim", "supervisor")


# -- the switch token's variable ----------------------------------------------------------------


def test_the_once_documented_switch_token_name_is_not_read_and_says_which_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="fraudgate.config")
    environ = {"FRAUDGATE_SWITCH_TOKEN": "old-name-secret", "FRAUDGATE_MQTT_PORT": "1"}
    cfg = load(DEFAULT_CONFIG, environ)  # loads: the name is not an override
    assert cfg.switch.token == "" and cfg.mqtt.port != 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "FRAUDGATE_MQTT_PORT is not read: the override is FRAUDGATE_MQTT__PORT",
        "FRAUDGATE_SWITCH_TOKEN is not read: the override is FRAUDGATE_SWITCH__TOKEN",
    ]
    assert "old-name-secret" not in caplog.text
    environ = {"FRAUDGATE_SWITCH__TOKEN": "s3cret", "FRAUDGATE_PG_BINDIR": "/usr/lib/pg/bin"}
    caplog.clear()
    assert load(DEFAULT_CONFIG, environ).switch.token == "s3cret"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
