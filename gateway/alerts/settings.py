"""`[mqtt]`: where and how alerts are published (docs/mqtt.md "Configuration"), parsed here."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config_check import ConfigError, Table

# With [shared] (several nodes) and this default, each node's client id gets "-<node>" appended
DEFAULT_CLIENT_ID = "fraudgate"


@dataclass
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = DEFAULT_CLIENT_ID
    username: str = ""
    password: str = ""
    topic_prefix: str = "fraudgate"
    tls: bool = False  # TLS, verified with the system's CAs unless tls_ca is set
    tls_ca: str = ""  # any of tls_ca, tls_cert (+ tls_key) turns TLS on as well
    tls_cert: str = ""
    tls_key: str = ""
    tls_insecure: bool = False
    enabled: bool = True
    gather: float = 0.25  # seconds alerts wait to be published together (fewer database writes)
    keepalive: int = 30  # seconds: MQTT keep-alive (the broker drops a silent client after 1.5x)
    timeout: float = 10.0  # seconds for the CONNACK and each PUBACK: a silent broker is given up


def _pair(t: Table, a: str, a_value: str, b: str, b_value: str) -> None:
    """Two keys set together or not at all (a client certificate and its private key)."""
    if bool(a_value) != bool(b_value):
        missing, given = (b, a) if a_value else (a, b)
        raise ConfigError(f"{t.key(missing)}: needed with {t.key(given)} (set both or neither)")


def parse_mqtt(m: Table) -> MqttSettings:
    """[mqtt] (docs/mqtt.md "Configuration"); the TLS files are read when the daemon starts."""
    settings = MqttSettings(
        enabled=m.get("enabled", bool, True),
        host=m.get("host", str, "127.0.0.1"),
        port=m.integer("port", 1883, minimum=1, maximum=65535),
        client_id=m.get("client_id", str, DEFAULT_CLIENT_ID),
        username=m.get("username", str, ""),
        password=m.get("password", str, ""),
        topic_prefix=m.get("topic_prefix", str, "fraudgate"),
        tls=m.get("tls", bool, False),
        tls_ca=m.get("tls_ca", str, ""),
        tls_cert=m.get("tls_cert", str, ""),
        tls_key=m.get("tls_key", str, ""),
        tls_insecure=m.get("tls_insecure", bool, False),
        gather=m.number("gather", 0.25),
        keepalive=m.integer("keepalive", 30, minimum=1, maximum=65535),
        timeout=m.number("timeout", 10.0, minimum=0.1),
    )
    _pair(m, "tls_cert", settings.tls_cert, "tls_key", settings.tls_key)
    uses_tls = settings.tls or bool(settings.tls_ca or settings.tls_cert)
    if settings.tls_insecure and not uses_tls:
        raise ConfigError(
            f"{m.key('tls_insecure')}: only with TLS (tls = true, or tls_ca / tls_cert set)"
        )
    m.done()
    return settings
