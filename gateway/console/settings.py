"""`[console]`: the analysts' web console (docs/console.md), served under /console by the API's
server ([api] listen, tokens and TLS). On by default wherever the API is."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config_check import ConfigError, Table


@dataclass
class ConsoleSettings:
    enabled: bool = True
    session_idle: float = 30 * 60.0  # seconds without a request before a session ends
    session_lifetime: float = 12 * 3600.0  # seconds after the login, whatever happens
    max_sessions: int = 1000


def parse_console(t: Table) -> ConsoleSettings:
    c = ConsoleSettings(
        enabled=t.get("enabled", bool, True),
        session_idle=t.number("session_idle", 1800.0, minimum=60.0, maximum=86_400.0),
        session_lifetime=t.number("session_lifetime", 43_200.0, minimum=60.0, maximum=7 * 86_400.0),
        max_sessions=t.integer("max_sessions", 1000, minimum=1, maximum=100_000),
    )
    if c.session_idle > c.session_lifetime:
        raise ConfigError(f"{t.key('session_idle')}: longer than session_lifetime")
    t.done()
    return c
