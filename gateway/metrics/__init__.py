"""Monitoring: Prometheus `/metrics`, `/healthz`, `/readyz` on their own port (docs/operations.md).

settings.py  [metrics] of the configuration (no prometheus_client import: config loads it)
registry.py  `Metrics`: one CollectorRegistry per Gateway, the pushed histograms, the
             extension point (`add_collector`, `gauge`)
collector.py the pull collector: counters the daemon keeps, read at scrape time
snapshot.py  database-backed values, refreshed in the background (never per scrape)
health.py    the readiness checks
server.py    the ASGI app and `open_metrics`, the daemon's async context manager
"""
