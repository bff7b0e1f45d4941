"""`/metrics`, `/healthz` and `/readyz` on their own port ([metrics] listen), served by the
project's embedded uvicorn server in the daemon's event loop.

    async with open_metrics(gateway, store, recorder) as metrics:   # in Gateway.run
        ...

`gateway.metrics` (built with the Gateway) is wired here whatever the configuration (tests
read it); the database snapshot task and the HTTP server run only with `[metrics] listen` set.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST

from gateway.config_check import ConfigError, parse_hostport
from gateway.http.server import EmbeddedHttpServer

from .collector import GatewayCollector
from .health import Check, readiness
from .registry import Metrics
from .snapshot import DbSnapshot, SnapshotStore

if TYPE_CHECKING:
    from gateway.daemon import Gateway
    from gateway.pipeline.recorder import Recorder

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class MetricsApp:
    """The ASGI application: GET /metrics, /healthz, /readyz; anything else 404."""

    def __init__(self, metrics: Metrics, ready: Callable[[], list[Check]]) -> None:
        self.metrics = metrics
        self.ready = ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method not in ("GET", "HEAD"):
            await _answer(send, 405, b'{"error": "method not allowed"}\n', "application/json")
        elif path == "/metrics":
            await _answer(send, 200, self.metrics.exposition(), CONTENT_TYPE_LATEST)
        elif path == "/healthz":  # the event loop answered: alive
            await _answer(send, 200, b'{"status": "alive"}\n', "application/json")
        elif path == "/readyz":
            checks = self.ready()
            ok = all(c.ok for c in checks)
            doc = {
                "status": "ready" if ok else "not ready",
                "failed": [c.name for c in checks if not c.ok],
                "checks": [c.as_json() for c in checks],
            }
            body = (json.dumps(doc) + "\n").encode()
            await _answer(send, 200 if ok else 503, body, "application/json")
        else:
            await _answer(send, 404, b'{"error": "not found"}\n', "application/json")


async def _answer(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def gateway_readiness(gateway: Gateway, snapshot: DbSnapshot) -> list[Check]:
    """/readyz's checks for a running gateway (health.readiness)."""
    d: Any = gateway.dispatcher
    connected = bool(d.connected) if d is not None and hasattr(d, "connected") else None
    binds = {
        s.config.label: s.link is not None and s.link.session.bound for s in gateway.supervisors
    }
    return readiness(
        started=gateway.ready.is_set(),
        binds=binds,
        database_ok=gateway.database_ok,
        broker_connected=connected,
        oldest_alert_age=snapshot.oldest_age("mqtt", time.time()),
        stuck_after=gateway.cfg.metrics.outbox_stuck_after,
    )


def build_metrics(gateway: Gateway, store: SnapshotStore, recorder: Recorder) -> DbSnapshot:
    """`gateway.metrics` with every collector and hook wired; returns the database snapshot."""
    metrics = gateway.metrics
    for handler in gateway.handlers:
        handler.on_latency = metrics.latency_observer(handler.name)
    recorder.on_batch = metrics.observe_batch
    snapshot = DbSnapshot(store, extra=lambda now: _case_values(gateway, now))
    metrics.set_core([GatewayCollector(gateway, recorder).collect, snapshot.collect])
    return snapshot


async def _case_values(gateway: Gateway, now: float) -> dict[str, dict[str, int]]:
    """Deadlines and centre notices, when the case workflow runs."""
    w = gateway.workflow
    if w is None:
        return {}
    out = {"deadlines": await w.cases.deadline_counts(now)}
    if w.notices is not None:
        out["notices"] = await w.notices.counts()
    return out


@contextlib.asynccontextmanager
async def open_metrics(
    gateway: Gateway, store: SnapshotStore, recorder: Recorder
) -> AsyncIterator[Metrics]:
    snapshot = build_metrics(gateway, store, recorder)
    metrics = gateway.metrics
    settings = gateway.cfg.metrics
    if not settings.listen:
        yield metrics
        return
    host, port = parse_hostport(settings.listen, "metrics.listen", listen=True)
    app = MetricsApp(metrics, lambda: gateway_readiness(gateway, snapshot))
    server = EmbeddedHttpServer(
        app, host=host, port=port, name="metrics",
        error=lambda m: ConfigError(f"metrics.listen: {m}"),
        max_connections=settings.max_connections, client_timeout=settings.client_timeout,
    )  # fmt: skip
    async with snapshot.running(settings.refresh), server:
        metrics.url = server.url
        yield metrics
