"""`[proxy]`, its `[[proxy.account]]` aggregators and `[[proxy.upstream]]` SMSC binds
(docs/proxy.md), parsed here."""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config_check import ConfigError, Table, parse_hostport
from gateway.detect.sender import plain_id
from gateway.esme_settings import parse_esme
from smsc.bindguard import admits_address
from smsc.client import EsmeConfig
from smsc.constants import Status
from smsc.session import BindType

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ProxyAccount:
    """One aggregator's account: who may bind, how much it may send, what it may claim to be."""

    system_id: str
    password: str
    bind_types: frozenset[BindType] = frozenset(BindType)
    allow: tuple[Network, ...] = ()  # source addresses a bind may come from (empty: any)
    window: int = 50  # submits it may have unanswered at once; beyond: ESME_RTHROTTLED
    max_rate: float = 0.0  # submits per second (0: no limit); beyond: ESME_RTHROTTLED
    # alphanumeric sender ids the account is contracted for (empty: any, the protected ids of
    # senders.toml aside); another alphanumeric id is refused with the spoof status
    senders: frozenset[str] = frozenset()
    # destination prefixes of MO messages that belong to this account (its short codes and
    # long numbers): the SMSC's deliver_sm to them goes to the account's receivers
    numbers: tuple[str, ...] = ()
    # the ids it gets: "hex" (fraudgate's message ids, 32 hex digits) or "decimal" (at most
    # 19 digits, below 2**63: for ESMEs that read ids as numbers, e.g. Kannel's msg-id-type)
    id_format: str = "hex"

    def admits(self, address: str | None) -> bool:
        """Whether a bind may come from `address` (smsc.bindguard.Credentials)."""
        return admits_address(address, self.allow)


@dataclass
class ProxySettings:
    enabled: bool = False
    host: str = "0.0.0.0"
    port: int = 2776
    mode: str = ""  # "" = [gateway] mode; "monitor" | "enforce"
    tls_cert: str = ""  # PEM certificate (and key, or tls_key) for aggregators' TLS binds
    tls_key: str = ""
    block_status: int = 0  # 0 = [gateway] block_status
    spoof_status: int = Status.ESME_RINVSRCADR  # a sender id the account may not use
    throttle_status: int = Status.ESME_RTHROTTLED  # over the rate, the window or the queue
    store_error_status: int = Status.ESME_RMSGQFUL  # the journal or the record failed
    queue_limit: int = 20_000  # submits accepted and not yet confirmed by the SMSC
    # seconds within which the same submit again (same account, addresses, text, UDH, TLVs)
    # is a resubmission of the first (answered with its id, not sent twice): aggregators
    # resubmit within seconds; a real repeat of an A2P notice comes later
    resubmit_window: float = 120.0
    id_node: int = 0  # 0-63, part of every decimal id: distinct per proxy node on one database
    retry_interval: float = 5.0  # seconds before a temporarily refused submit is sent again
    max_attempts: int = 10  # sends of one submit before it fails (a REJECTD receipt)
    reconcile_wait: float = 60.0  # seconds an unconfirmed submit waits for its receipt
    receipt_retry: float = 10.0  # seconds between tries of a kept receipt / MO message
    max_inbound_attempts: int = 100  # tries of a kept receipt / MO before it is given up
    accounts: list[ProxyAccount] = field(default_factory=list)
    upstream: list[EsmeConfig] = field(default_factory=list)


def _account(t: Table) -> ProxyAccount:
    system_id = t.get("system_id", str)
    if not 0 < len(system_id) <= 15:  # SMPP 3.4 §5.2.1: C-octet string of 16
        raise ConfigError(f"{t.key('system_id')}: 1 to 15 characters")
    password = t.get("password", str)
    if not 0 < len(password) <= 8:  # §5.2.2: 9 octets with the NUL
        raise ConfigError(f"{t.key('password')}: 1 to 8 characters (SMPP 3.4 limit)")
    try:
        bind_types = frozenset(
            BindType(x) for x in t.get("bind_types", list, [b.value for b in BindType])
        )
        allow = tuple(ipaddress.ip_network(str(x), strict=False) for x in t.get("allow", list, []))
    except ValueError as exc:
        raise ConfigError(f"{t.path}: {exc}") from exc
    numbers = tuple(str(x) for x in t.get("numbers", list, []))
    if not all(n.isdigit() for n in numbers):
        raise ConfigError(f'{t.key("numbers")}: digit prefixes, e.g. ["7555"]')
    account = ProxyAccount(
        system_id=system_id,
        password=password,
        bind_types=bind_types,
        allow=allow,
        window=t.integer("window", 50, minimum=1),
        max_rate=t.number("max_rate", 0.0),
        senders=frozenset(plain_id(str(x)) for x in t.get("senders", list, [])),
        numbers=numbers,
        id_format=t.get("id_format", str, "hex"),
    )
    if account.id_format not in ("hex", "decimal"):
        raise ConfigError(f"{t.key('id_format')}: 'hex' or 'decimal', got {account.id_format!r}")
    t.done()
    return account


def parse_proxy(p: Table, base: Path) -> ProxySettings:
    """[proxy] (docs/proxy.md)."""
    cfg = ProxySettings(enabled=p.get("enabled", bool, False))
    cfg.host, cfg.port = parse_hostport(
        p.get("listen", str, "0.0.0.0:2776"), p.key("listen"), listen=True
    )
    cfg.mode = p.get("mode", str, "")
    if cfg.mode not in ("", "monitor", "enforce"):
        raise ConfigError(f"{p.key('mode')}: '', 'monitor' or 'enforce', got {cfg.mode!r}")
    cert, key = p.get("tls_cert", str, ""), p.get("tls_key", str, "")
    if key and not cert:
        raise ConfigError(f"{p.key('tls_cert')}: needed with {p.key('tls_key')}")
    cfg.tls_cert = str(base / cert) if cert else ""
    cfg.tls_key = str(base / key) if key else ""
    status = {"minimum": 1, "maximum": 0xFFFFFFFF}
    cfg.block_status = p.integer("block_status", 0, minimum=0, maximum=0xFFFFFFFF)
    cfg.spoof_status = p.integer("spoof_status", cfg.spoof_status, **status)
    cfg.throttle_status = p.integer("throttle_status", cfg.throttle_status, **status)
    cfg.store_error_status = p.integer("store_error_status", cfg.store_error_status, **status)
    cfg.queue_limit = p.integer("queue_limit", cfg.queue_limit, minimum=1)
    cfg.resubmit_window = p.number("resubmit_window", cfg.resubmit_window, minimum=1.0)
    cfg.id_node = p.integer("id_node", 0, minimum=0, maximum=63)
    cfg.retry_interval = p.number("retry_interval", cfg.retry_interval, minimum=0.01)
    cfg.max_attempts = p.integer("max_attempts", cfg.max_attempts, minimum=1)
    cfg.reconcile_wait = p.number("reconcile_wait", cfg.reconcile_wait, minimum=0.0)
    cfg.receipt_retry = p.number("receipt_retry", cfg.receipt_retry, minimum=0.01)
    cfg.max_inbound_attempts = p.integer("max_inbound_attempts", 100, minimum=1)
    cfg.accounts = [_account(t) for t in p.tables("account")]
    cfg.upstream = []
    for t in p.tables("upstream"):
        binds = t.integer("binds", 1, minimum=1, maximum=64)
        esme = parse_esme(t, BindType.TRANSCEIVER)
        t.done()
        for n in range(binds):  # several binds to one SMSC: each its own link and window
            name = esme.label if binds == 1 else f"{esme.label}#{n + 1}"
            cfg.upstream.append(dataclasses.replace(esme, name=name))
    p.done()
    ids = [a.system_id for a in cfg.accounts]
    for i, sid in enumerate(ids):
        if sid in ids[:i]:
            raise ConfigError(f"proxy.account[{i}].system_id: {sid!r} is used twice")
    if cfg.enabled and not (cfg.accounts and cfg.upstream):
        raise ConfigError("proxy: enabled needs at least one [[proxy.account]] and one "
                          "[[proxy.upstream]]")  # fmt: skip
    return cfg
