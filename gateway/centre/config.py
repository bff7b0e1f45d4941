"""Settings of the two centre links and the TLS contexts they use (mutual TLS both ways)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from .errors import CentreConfigError


@dataclass(frozen=True, slots=True)
class CentreConfig:
    """Outbound: where the centre takes reports, and who we are.

    `client_cert`/`client_key` are the operator's client certificate (issued under the agreement
    of point 117); `ca_file` is the CA that signed the centre's server certificate."""

    url: str  # base URL, https://...; reports go to {url}/v1/reports
    operator: str
    client_cert: Path
    client_key: Path
    ca_file: Path
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.url.startswith("https://"):
            raise CentreConfigError(f"centre url {self.url!r}: must be https:// (mutual TLS)")
        if self.timeout <= 0:
            raise CentreConfigError("centre timeout must be positive")

    @property
    def reports_url(self) -> str:
        return self.url.rstrip("/") + "/v1/reports"

    def ssl_context(self) -> ssl.SSLContext:
        """Verify the centre's certificate and host name; present ours."""
        return client_context(self.ca_file, self.client_cert, self.client_key)


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """Inbound: the HTTPS endpoint where the centre posts its reports. Only clients with a
    certificate signed by `client_ca` (the centre's CA) complete the handshake."""

    cert: Path
    key: Path
    client_ca: Path
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (tests); see CentreEndpoint.port
    max_body: int = 64 * 1024  # a report is a few KiB; more: 413, counted as it arrives
    max_connections: int = 16  # open connections at once; more: 503 (the centre retries)
    client_timeout: float = 10.0  # seconds for a request's headers, and for its body

    def ssl_context(self) -> ssl.SSLContext:
        return server_context(self.cert, self.key, self.client_ca)


def client_context(ca_file: Path, cert: Path, key: Path) -> ssl.SSLContext:
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as e:
        raise CentreConfigError(f"centre TLS client files ({cert}, {key}, {ca_file}): {e}") from e
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def server_context(cert: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    try:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(client_ca))
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as e:
        raise CentreConfigError(f"TLS server files ({cert}, {key}, {client_ca}): {e}") from e
    ctx.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no handshake
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


__all__ = ["CentreConfig", "EndpointConfig", "client_context", "server_context"]
