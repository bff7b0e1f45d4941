"""`[metrics]`: the monitoring endpoint (docs/operations.md). No listen: no metrics server."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config_check import Table, parse_hostport


@dataclass
class MetricsSettings:
    listen: str = ""  # HOST:PORT of /metrics, /healthz, /readyz; empty: none
    refresh: float = 15.0  # seconds between refreshes of the database-backed values
    outbox_stuck_after: float = 300.0  # /readyz: the oldest pending alert, broker connected
    max_connections: int = 8  # scrapers and probes at once (the loop also answers the SMSC)
    client_timeout: float = 10.0


def parse_metrics(t: Table) -> MetricsSettings:
    m = MetricsSettings(
        listen=t.get("listen", str, ""),
        refresh=t.number("refresh", 15.0, minimum=1.0, maximum=3600.0),
        outbox_stuck_after=t.number("outbox_stuck_after", 300.0, minimum=1.0),
        max_connections=t.integer("max_connections", 8, minimum=2, maximum=1000),
        client_timeout=t.number("client_timeout", 10.0, minimum=0.1, maximum=300.0),
    )
    if m.listen:
        parse_hostport(m.listen, t.key("listen"), listen=True)
    t.done()
    return m
