"""`[probes]` and its `[[probes.probe]]` modems (docs/probes.md), parsed here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gateway.config_check import ConfigError, Table


@dataclass
class ProbeSettings:
    """One probe modem (gsm_probe.model.ModemConfig is built from it)."""

    name: str
    url: str  # a pyserial URL: /dev/serial/by-id/..., /dev/ttyUSB2, socket://host:port
    baudrate: int = 115200
    pin: str = ""
    command_timeout: float = 5.0
    poll_interval: float = 30.0
    hangup_after_cli: bool = True


@dataclass
class ProbesConfig:
    probes: list[ProbeSettings] = field(default_factory=list)
    plans: list[Path] = field(default_factory=list)  # test plans (TOML/JSON/CSV), reloaded on HUP
    grace: float = 30.0  # seconds a late test call still counts after its window
    down_after: float = 60.0  # unreachable / unregistered this long -> `probe` alert
    silent_after: float = 0.0  # no event at all this long -> `probe` alert (0: not checked)


def _probe(t: Table) -> ProbeSettings:
    name = t.get("name", str)
    if not name or any(c in name for c in "/#+ "):
        raise ConfigError(f"{t.key('name')}: {name!r}: a non-empty name without / # + or spaces")
    url = t.get("url", str)
    if not url:
        raise ConfigError(f"{t.key('url')}: a pyserial URL or device path")
    pin = t.get("pin", str, "")
    if pin and not (pin.isdigit() and 4 <= len(pin) <= 8):
        raise ConfigError(f"{t.key('pin')}: 4 to 8 digits")
    settings = ProbeSettings(
        name=name,
        url=url,
        baudrate=t.integer("baudrate", 115200, minimum=300),
        pin=pin,
        command_timeout=t.number("command_timeout", 5.0, minimum=0.1),
        poll_interval=t.number("poll_interval", 30.0, minimum=0.1),
        hangup_after_cli=t.get("hangup_after_cli", bool, True),
    )
    t.done()
    return settings


def parse_probes(p: Table, base: Path) -> ProbesConfig:
    """[probes] with its [[probes.probe]] modems (docs/probes.md)."""
    cfg = ProbesConfig(
        plans=[base / str(x) for x in p.get("plans", list, [])],
        grace=p.number("grace", 30.0),
        down_after=p.number("down_after", 60.0),
        silent_after=p.number("silent_after", 0.0),
    )
    cfg.probes = [_probe(t) for t in p.tables("probe")]
    p.done()
    names = [x.name for x in cfg.probes]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise ConfigError(f"probes.probe[{i}].name: {n!r} is used twice")
    return cfg
