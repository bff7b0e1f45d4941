"""The centre link's HTTPS server: mutual TLS on the embedded server (gateway/http/server.py).

Client certificates are required (ssl.CERT_REQUIRED): a client without one, or with one from
another CA, never completes the handshake and never reaches the application.
"""

from __future__ import annotations

import ssl
from typing import Any

from gateway.http.server import EmbeddedHttpServer

from .config import server_context
from .errors import CentreConfigError


class TlsHttpServer(EmbeddedHttpServer):
    """`async with TlsHttpServer(app, cert, key, client_ca, host, port) as s:` serves `app` on
    https://{host}:{s.port}/ until the block ends."""

    def __init__(
        self,
        app: Any,
        *,
        cert: Any,
        key: Any,
        client_ca: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "https",
        max_connections: int = 32,
        client_timeout: float = 10.0,
    ) -> None:
        server_context(cert, key, client_ca)  # fail early, typed, on unusable files
        tls = {
            "ssl_certfile": str(cert),
            "ssl_keyfile": str(key),
            "ssl_ca_certs": str(client_ca),
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        }
        super().__init__(
            app,
            host=host,
            port=port,
            name=name,
            ssl=tls,
            error=CentreConfigError,
            max_connections=max_connections,
            client_timeout=client_timeout,
        )


__all__ = ["TlsHttpServer"]
