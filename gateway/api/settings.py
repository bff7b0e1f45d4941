"""`[api]`: the HTTP API's settings, parsed here (docs/api.md): address, TLS files, token hashes
and the limits of what one client may ask."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.config_check import ConfigError, Table, parse_hostport


@dataclass
class ApiSettings:
    """[api]: the HTTP API (docs/api.md); no listen: no API. The limits are what one client may
    ask of it (docs/api.md "Limits"; gateway.api.ApiLimits)."""

    listen: str = ""  # HOST:PORT
    cert: str = ""
    key: str = ""
    tokens: tuple[tuple[str, str, str], ...] = ()  # (sha256 hex of the token, user, role)
    max_body: int = 64 * 1024
    max_connections: int = 32
    client_timeout: float = 10.0
    lookup_rate: float = 20.0  # per user and minute
    lookup_burst: int = 10


def parse_api(a: Table, base: Path) -> ApiSettings:
    """[api] (docs/api.md); the limits' ranges are ApiLimits's (limits.py)."""
    api = ApiSettings(
        listen=a.get("listen", str, ""),
        cert=a.file("cert", base),
        key=a.file("key", base),
        tokens=_tokens(a),
        max_body=a.integer("max_body", 64 * 1024, minimum=1024, maximum=16 * 1024 * 1024),
        max_connections=a.integer("max_connections", 32, minimum=2, maximum=10_000),
        client_timeout=a.number("client_timeout", 10.0, minimum=0.1, maximum=300.0),
        lookup_rate=a.number("lookup_rate", 20.0, minimum=0.01, maximum=100_000.0),
        lookup_burst=a.integer("lookup_burst", 10, minimum=1, maximum=100_000),
    )
    if bool(api.cert) != bool(api.key):
        raise ConfigError(f"{a.path}: cert and key: both (TLS) or neither (plain HTTP)")
    if api.listen:
        host, _ = parse_hostport(api.listen, a.key("listen"), listen=True)
        if not api.cert and host not in ("", "127.0.0.1", "localhost", "::1"):
            raise ConfigError(
                f"{a.key('listen')}: tokens and personal data over plain HTTP only on loopback "
                f"(behind a TLS proxy); give cert and key to listen on {host}"
            )
    a.done()
    return api


def _tokens(a: Table) -> tuple[tuple[str, str, str], ...]:
    tokens = []
    for t in a.tables("token"):
        digest, user, role = t.get("sha256", str), t.get("user", str), t.get("role", str)
        if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
            raise ConfigError(f"{t.key('sha256')}: the SHA-256 hex of the token, not the token")
        if role not in ("analyst", "helpline", "supervisor", "auditor", "registrar"):
            raise ConfigError(
                f"{t.key('role')}: analyst, helpline, supervisor, auditor or registrar"
            )
        t.done()
        tokens.append((digest, user, role))
    return tuple(tokens)
