"""Settings of the two centre links and the TLS contexts they use (mutual TLS both ways), and
`[centre]` with `[centre.endpoint]` as the configuration file gives them (`parse_centre`)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config_check import ConfigError, Table, parse_hostport

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


@dataclass
class EndpointSettings:
    """[centre.endpoint]: the inbound mTLS endpoint the centre posts to (empty listen: none)."""

    listen: str = ""  # HOST:PORT
    cert: str = ""
    key: str = ""
    client_ca: str = ""
    max_connections: int = 16  # the centre posts one report at a time
    client_timeout: float = 10.0


@dataclass
class CentreSettings:
    """[centre]: the National Bank's anti-fraud centre (docs/centre-api.md); no url: reports
    stay queued in the database."""

    url: str = ""
    operator: str = "operator"
    client_cert: str = ""
    client_key: str = ""
    ca: str = ""
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)


def parse_endpoint(ep: Table, base: Path) -> EndpointSettings:
    """[centre.endpoint] (docs/centre-api.md)."""
    endpoint = EndpointSettings(
        listen=ep.get("listen", str, ""),
        cert=ep.file("cert", base),
        key=ep.file("key", base),
        client_ca=ep.file("client_ca", base),
        max_connections=ep.integer("max_connections", 16, minimum=2, maximum=10_000),
        client_timeout=ep.number("client_timeout", 10.0, minimum=0.1, maximum=300.0),
    )
    if endpoint.listen:
        parse_hostport(endpoint.listen, ep.key("listen"), listen=True)
        if not (endpoint.cert and endpoint.key and endpoint.client_ca):
            raise ConfigError(f"{ep.path}: cert, key and client_ca are needed with listen")
    ep.done()
    return endpoint


def parse_centre(ce: Table, base: Path) -> CentreSettings:
    """[centre] with [centre.endpoint] (docs/centre-api.md)."""
    centre = CentreSettings(
        url=ce.get("url", str, ""),
        operator=ce.get("operator", str, "operator"),
        client_cert=ce.file("client_cert", base),
        client_key=ce.file("client_key", base),
        ca=ce.file("ca", base),
        endpoint=parse_endpoint(ce.table("endpoint"), base),
    )
    if centre.url and not centre.url.startswith("https://"):
        raise ConfigError(f"{ce.key('url')}: the centre is reached over https:// only")
    if centre.url and centre.operator == "operator":
        raise ConfigError(f"{ce.key('operator')}: the operator id agreed with the centre")
    if centre.url and not (centre.client_cert and centre.client_key and centre.ca):
        raise ConfigError(f"{ce.path}: client_cert, client_key and ca are needed with url")
    ce.done()
    return centre
