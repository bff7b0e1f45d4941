"""What one client may ask of the API (docs/api.md "Limits"; [api] in the configuration).

`ApiLimits` bounds the transport: bodies, connections and slow clients (gateway/http_guard.py
and gateway/http_server.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ApiConfigError


@dataclass(frozen=True, slots=True)
class ApiLimits:
    max_body: int = 64 * 1024  # bytes of a request body; a complaint is about 1 KiB
    max_connections: int = 32  # open connections (uvicorn's limit_concurrency); more: 503
    client_timeout: float = 10.0  # seconds for a request's headers, and for its body

    def __post_init__(self) -> None:
        _within("api.max_body", self.max_body, 1024, 16 * 1024 * 1024)
        _within("api.max_connections", self.max_connections, 2, 10_000)
        _within("api.client_timeout", self.client_timeout, 0.1, 300.0)


def _within(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ApiConfigError(f"{key}: must be {low:g}..{high:g}, got {value:g}")
