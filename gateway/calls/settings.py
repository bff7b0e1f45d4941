"""[calls]: call records in, call fraud out (docs/calls.md)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from gateway.calls.analyzer import AnalyzerSettings
from gateway.config_check import ConfigError, Table, parse_hostport


@dataclass
class CallsSettings:
    enabled: bool = False
    inbox: str = ""  # a folder the switch's mediation drops CDR files in ("" = none)
    after: Literal["keep", "move", "delete"] = "keep"  # what becomes of a file once read
    scan_interval: float = 5.0
    mapping: str = ""  # the operator's column names (docs/calls-intake.md), "" = canonical
    stream_host: str = ""  # a TCP listener for streamed JSON-lines CDRs ("" = none)
    stream_port: int = 0
    stream_token: str = ""
    stream_idle_timeout: float = 300.0  # a connection silent this long is flushed and closed
    stream_max_clients: int = 64  # connections beyond are told why and closed
    dedup_window: float = 7200.0  # a record re-delivered within this (record time) counts once
    analyzer: AnalyzerSettings = field(default_factory=AnalyzerSettings)


def parse_calls(t: Table, base: Path) -> CallsSettings:
    cfg = CallsSettings(enabled=t.get("enabled", bool, False))
    inbox = t.get("inbox", str, "")
    cfg.inbox = str(base / inbox) if inbox else ""
    after = t.get("after", str, "keep")
    if after not in ("keep", "move", "delete"):
        raise ConfigError(f"{t.key('after')}: 'keep', 'move' or 'delete', got {after!r}")
    cfg.after = after  # type: ignore[assignment]  # checked just above
    cfg.scan_interval = t.number("scan_interval", cfg.scan_interval, minimum=0.05)
    cfg.mapping = t.file("mapping", base)
    if cfg.mapping:
        from gateway.calls.reader import Mapping  # refused at start, named: MappingError

        Mapping.load(cfg.mapping)
    listen = t.get("stream_listen", str, "")
    if listen:
        cfg.stream_host, cfg.stream_port = parse_hostport(
            listen, t.key("stream_listen"), listen=True
        )
    cfg.stream_token = t.get("stream_token", str, "")
    if cfg.stream_host and not cfg.stream_token and not _loopback(cfg.stream_host):
        raise ConfigError(
            f"{t.key('stream_token')}: required when {t.key('stream_listen')} is not a loopback "
            "address (anyone reaching the port could feed records that open SIM-box cases)"
        )
    cfg.stream_idle_timeout = t.number("stream_idle_timeout", cfg.stream_idle_timeout, minimum=1.0)
    cfg.stream_max_clients = t.integer("stream_max_clients", cfg.stream_max_clients, minimum=1)
    cfg.dedup_window = t.number("dedup_window", cfg.dedup_window, minimum=1.0)
    d = AnalyzerSettings()

    def prefixes(name: str, default: tuple[str, ...], digits: bool) -> tuple[str, ...]:
        values = tuple(str(x) for x in t.get(name, list, list(default)))
        if digits and not all(v.isdigit() for v in values):
            raise ConfigError(f'{t.key(name)}: digit prefixes, e.g. ["7701"]')
        if not all(v.strip() for v in values):
            raise ConfigError(f"{t.key(name)}: an empty prefix would match everything")
        return values

    try:
        cfg.analyzer = replace(
            d,
            window=t.number("window", d.window, minimum=60.0),
            min_calls=t.integer("min_calls", d.min_calls, minimum=1),
            threshold=t.number("threshold", d.threshold, minimum=0.01, maximum=1.0),
            sibling_threshold=t.number(
                "sibling_threshold", d.sibling_threshold, minimum=0.01, maximum=1.0
            ),
            gap=t.number("gap", d.gap),
            own_prefixes=prefixes("own_prefixes", d.own_prefixes, True),
            intl_trunks=prefixes("intl_trunks", d.intl_trunks, False),
            premium_prefixes=prefixes("premium_prefixes", d.premium_prefixes, True),
            wangiri_window=t.number("wangiri_window", d.wangiri_window, minimum=60.0),
            wangiri_min_victims=t.integer("wangiri_min_victims", d.wangiri_min_victims, minimum=2),
            ring_max=t.number("ring_max", d.ring_max),
            presence_window=t.number("presence_window", d.presence_window, minimum=1.0),
            spoof_window=t.number("spoof_window", d.spoof_window, minimum=60.0),
            spoof_min_victims=t.integer("spoof_min_victims", d.spoof_min_victims, minimum=2),
            max_sims=t.integer("max_sims", d.max_sims, minimum=1000),
            max_ranges=t.integer("max_ranges", d.max_ranges, minimum=100),
        )
    except ValueError as exc:
        raise ConfigError(f"{t.path}: {exc}") from exc
    if cfg.enabled and not (cfg.inbox or cfg.stream_host):
        raise ConfigError(f"{t.path}: enabled needs an inbox folder or a stream_listen address")
    t.done()
    return cfg


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
