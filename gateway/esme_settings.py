"""An ESME bind's keys in the configuration (address, credentials, session timers, TLS), shared
by `[[smsc]]` (the gateway's own binds) and `[[proxy.upstream]]` (the A2P proxy's binds to the
operator's SMSC): one parser, so both read the same keys the same way."""

from __future__ import annotations

from gateway.config_check import ConfigError, Table, parse_hostport
from smsc.client import EsmeConfig, TlsConfig
from smsc.session import BindType, SessionConfig


def parse_tls(t: Table) -> TlsConfig | None:
    """[... .tls]: enabled, ca, cert, key, verify. None when TLS is off."""
    tls = TlsConfig(
        ca_file=t.get("ca", str, "") or None,
        cert_file=t.get("cert", str, "") or None,
        key_file=t.get("key", str, "") or None,
        verify=t.get("verify", bool, True),
    )
    enabled = t.get("enabled", bool, False)
    if tls.key_file and not tls.cert_file:  # a cert alone is fine: it may hold its key (PEM)
        raise ConfigError(f"{t.key('cert')}: needed with {t.key('key')}")
    t.done()
    return tls if enabled else None


def parse_esme(t: Table, bind: BindType) -> EsmeConfig:
    """address, system_id, password, system_type, window, response_timeout,
    enquire_link_interval, name, [tls]; the bind type is the caller's (it checked it)."""
    host_port = t.get("address", str)
    host, port = parse_hostport(host_port, t.key("address"))
    tls = parse_tls(t.table("tls"))
    return EsmeConfig(
        host=host,
        port=port,
        system_id=t.get("system_id", str),
        password=t.get("password", str),
        bind_type=bind,
        system_type=t.get("system_type", str, ""),
        session=SessionConfig(
            window=t.integer("window", 50, minimum=1),
            response_timeout=t.number("response_timeout", 30.0, minimum=0.1),
            enquire_link_interval=t.number("enquire_link_interval", 30.0, minimum=0.1),
        ),
        tls=tls,
        name=t.get("name", str, host_port),
    )
