"""The API's HTTP(S) server inside the current event loop (uvicorn, no signal handlers).

    async with ApiServer(ApiConfig(host="0.0.0.0", port=8443, cert=..., key=...), app) as s:
        ...   # https://{host}:{s.port}/v1/...

It is the embedded uvicorn server of gateway/http/server.py: the socket is bound there (errors
raised, port 0 allowed) and the daemon root keeps the signals. TLS is server-side
only (clients authenticate with bearer tokens); without cert and key it serves plain HTTP,
for loopback behind a TLS-terminating proxy. `ApiConfig.limits` bounds connections and slow
clients here; build_api takes the same limits for bodies and look-ups.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.http.server import EmbeddedHttpServer

from .errors import ApiConfigError
from .limits import ApiLimits


@dataclass(frozen=True, slots=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    cert: Path | None = None  # PEM certificate chain; TLS when cert and key are set
    key: Path | None = None
    limits: ApiLimits = field(default_factory=ApiLimits)

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ApiConfigError("api.cert and api.key: set both (TLS) or neither (plain HTTP)")
        for name, path in (("api.cert", self.cert), ("api.key", self.key)):
            if path is not None and not Path(path).is_file():
                raise ApiConfigError(f"{name}: no such file {path}")
        if self.cert is not None and self.key is not None:
            _check_tls_files(self.cert, self.key)
        if not 0 <= self.port <= 65535:
            raise ApiConfigError(f"api.port: {self.port} is not a TCP port")

    @property
    def tls(self) -> bool:
        return self.cert is not None


def _check_tls_files(cert: Path, key: Path) -> None:
    """Fail at start, naming the keys, rather than when uvicorn loads them (a traceback)."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ApiConfigError(
            f"api.cert, api.key: not a PEM certificate and its private key ({e})"
        ) from None


class ApiServer(EmbeddedHttpServer):
    """`async with ApiServer(config, app) as s:` serves `app` on s.url until the block ends."""

    def __init__(self, config: ApiConfig, app: Any) -> None:
        self.config = config
        tls: dict[str, Any] = {}
        if config.cert is not None and config.key is not None:
            tls = {"ssl_certfile": str(config.cert), "ssl_keyfile": str(config.key)}
        super().__init__(
            app,
            host=config.host,
            port=config.port,
            name="api",
            ssl=tls,
            error=ApiConfigError,
            max_connections=config.limits.max_connections,
            client_timeout=config.limits.client_timeout,
        )
