"""The `[switch]` configuration: which SwitchControl adapter blocks numbers, and its settings
(docs/switch.md). `open_switch` turns the settings into a running adapter.

    [switch]
    kind = "none" | "http" | "command" | "osmocom"   # absent: "http" if url is set, else "none"
    url = "https://..."  token = "..."  timeout = 5.0   # kind "http" (docs/cases.md)
    [switch.command]   block, unblock, status (argv arrays), ok_codes, retry_codes, unknown_codes,
                       expect, unchanged_pattern, blocked_pattern, active_pattern, timeout, env,
                       max_concurrent
    [switch.osmocom]   hlr_ctrl = "127.0.0.1:4259", msc_vty = "127.0.0.1:4254" ("" : HLR only),
                       timeout (default: [switch] timeout),
                       unblock_restores = ["cs", "ps"] (the flags unblock sets; ["cs"]: no PS)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from gateway.config_check import ConfigError, Table, parse_hostport
from gateway.switch.command import CommandSettings, CommandTemplateError
from gateway.switch.osmocom import OsmocomSettings
from gateway.switch.port import SwitchControl

KINDS = ("none", "http", "command", "osmocom")


@dataclass(frozen=True, slots=True)
class SwitchSettings:
    kind: str = "none"
    url: str = ""
    token: str = ""
    timeout: float = 5.0
    command: CommandSettings | None = None
    osmocom: OsmocomSettings | None = None

    @classmethod
    def http(cls, url: str, token: str = "", timeout: float = 5.0) -> SwitchSettings:
        return cls("http", url, token, timeout)

    @property
    def configured(self) -> bool:
        return self.kind != "none"


def parse_switch(t: Table) -> SwitchSettings:
    """The settings from the `[switch]` table; ConfigError names the key."""
    url, token = t.get("url", str, ""), t.get("token", str, "")
    timeout = t.number("timeout", 5.0, minimum=0.1)
    kind = t.get("kind", str, "http" if url else "none")
    if kind not in KINDS:
        raise ConfigError(f"{t.key('kind')}: one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "http" and not url.startswith(("http://", "https://")):
        raise ConfigError(f"{t.key('url')}: an http(s):// URL")
    if kind != "http" and url:
        raise ConfigError(f'{t.key("url")}: only with kind = "http" (kind is {kind!r})')
    # Sub-tables are checked whenever present, so a mistake does not wait for the day the kind
    # is switched to them.
    command = _command(t.table("command"), kind == "command")
    osmocom = _osmocom(t.table("osmocom"), timeout)
    t.done()
    return SwitchSettings(
        kind, url, token, timeout,
        command=command if kind == "command" else None,
        osmocom=osmocom if kind == "osmocom" else None,
    )  # fmt: skip


def _argv(t: Table, name: str, required: bool) -> tuple[str, ...]:
    if name not in t.data:
        if required:
            raise ConfigError(f"{t.key(name)}: required (an argv array)")
        t.seen.add(name)
        return ()
    items: list[Any] = t.get(name, list)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ConfigError(f"{t.key(name)}[{i}]: expected a string, got {item!r}")
    return tuple(items)


def _codes(t: Table, name: str, default: list[int]) -> tuple[int, ...]:
    items: list[Any] = t.get(name, list, default)
    for i, item in enumerate(items):
        if not isinstance(item, int) or isinstance(item, bool) or not 0 <= item <= 255:
            raise ConfigError(f"{t.key(name)}[{i}]: an exit code 0..255, got {item!r}")
    return tuple(items)


def _command(t: Table, required: bool) -> CommandSettings | None:
    if not t.data and not required:
        return None
    env: list[Any] = t.get("env", list, [])
    if not all(isinstance(e, str) for e in env):
        raise ConfigError(f"{t.key('env')}: an array of NAME or NAME=VALUE strings")
    settings = CommandSettings(
        block=_argv(t, "block", True),
        unblock=_argv(t, "unblock", True),
        status=_argv(t, "status", False),
        ok_codes=_codes(t, "ok_codes", [0]),
        retry_codes=_codes(t, "retry_codes", []),
        unknown_codes=_codes(t, "unknown_codes", []),
        expect=t.get("expect", str, ""),
        unchanged_pattern=t.get("unchanged_pattern", str, ""),
        blocked_pattern=t.get("blocked_pattern", str, ""),
        active_pattern=t.get("active_pattern", str, ""),
        timeout=t.number("timeout", 30.0, minimum=0.1),
        env=tuple(env),
        max_concurrent=t.integer("max_concurrent", 4, minimum=1, maximum=64),
    )
    t.done()
    try:
        settings.check()
    except CommandTemplateError as e:
        raise ConfigError(f"{t.path}.{e}") from None  # the message starts with the key's name
    return settings


def _osmocom(t: Table, timeout: float) -> OsmocomSettings:
    hlr_host, hlr_port = parse_hostport(t.get("hlr_ctrl", str, "127.0.0.1:4259"), t.key("hlr_ctrl"))
    msc_vty = t.get("msc_vty", str, "127.0.0.1:4254")
    msc_host, msc_port = parse_hostport(msc_vty, t.key("msc_vty")) if msc_vty else ("", 0)
    settings = OsmocomSettings(
        hlr_ctrl_host=hlr_host,
        hlr_ctrl_port=hlr_port,
        msc_vty_host=msc_host,
        msc_vty_port=msc_port,
        timeout=t.number("timeout", timeout, minimum=0.1),
        unblock_restores=_restores(t),
    )
    t.done()
    return settings


def _restores(t: Table) -> tuple[str, ...]:
    items: list[Any] = t.get("unblock_restores", list, ["cs", "ps"])
    if sorted(map(str, items)) not in (["cs"], ["cs", "ps"]):  # status() reads cs
        key = t.key("unblock_restores")
        raise ConfigError(f'{key}: ["cs", "ps"] or ["cs"], got {items!r}')
    return tuple(items)


@contextlib.asynccontextmanager
async def _open(settings: SwitchSettings) -> AsyncIterator[SwitchControl]:
    from gateway.switch.command import CommandSwitch
    from gateway.switch.osmocom import OsmocomSwitch
    from gateway.switch.port import HttpSwitch, NoSwitch

    if settings.kind == "http":
        async with HttpSwitch(settings.url, settings.token, settings.timeout) as http:
            yield http
    elif settings.kind == "command":
        if settings.command is None:
            raise ConfigError('switch.command: required with kind = "command"')
        async with CommandSwitch(settings.command) as command:
            yield command
    elif settings.kind == "osmocom":
        async with OsmocomSwitch(settings.osmocom or OsmocomSettings()) as osmocom:
            yield osmocom
    else:
        yield NoSwitch()


@contextlib.asynccontextmanager
async def _counted(settings: SwitchSettings) -> AsyncIterator[SwitchControl]:
    from gateway.switch.port import CountedSwitch

    async with _open(settings) as switch:
        yield CountedSwitch(switch)


def open_switch(settings: SwitchSettings) -> AbstractAsyncContextManager[SwitchControl]:
    """`async with open_switch(settings) as switch:` the adapter `settings.kind` names
    (NoSwitch for "none": block actions wait and are retried once a switch is configured),
    wrapped in a CountedSwitch (calls and failures for gateway.metrics)."""
    return _counted(settings)


__all__ = ["KINDS", "SwitchSettings", "open_switch", "parse_switch"]
