"""A real Prometheus (Debian's `prometheus`) scrapes a running gateway, and `promtool check
metrics` finds nothing to say about its exposition (docs/operations.md).

Real parts only: the simulated SMSC over loopback TCP, a real mosquitto, SQLite, the
gateway's metrics server, and the prometheus and promtool binaries."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fixtures_services import _stop_process, free_port, require_binary
from harness import Subscriber, eventually, gateway_config, send, smsc_config, start_gateway, submit
from prometheus_client.parser import text_string_to_metric_families

from smsc.simulator import SimulatedSmsc

JOB = "fraudgate"
TRAFFIC = [
    ("77051112233", "Ваша карта заблокирована. Подробнее: kaspi-kz.top/unlock"),  # blocked
    ("77051112234", "Мама, я задержусь, буду в 8"),
    ("77051112235", "Сәлем! Кешке кездесеміз бе?"),
    ("77051112236", "Купи хлеб и молоко"),
]


class Prometheus:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    async def query(self, expr: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as c:
            r = await c.get("/api/v1/query", params={"query": expr})
        r.raise_for_status()
        doc = r.json()
        assert doc["status"] == "success", doc
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    async def value(self, expr: str) -> float | None:
        """The single value of `expr` now, None when it has no sample (yet)."""
        result = await self.query(expr)
        return float(result[0]["value"][1]) if len(result) == 1 else None


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Any]:
    binary = require_binary("prometheus", "prometheus", ["/usr/bin/prometheus"])
    procs: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> Prometheus:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            f"scrape_configs:\n  - job_name: {JOB}\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        port = free_port()
        log = tmp_path / "prometheus.log"
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append(proc)
        return Prometheus(proc, f"http://127.0.0.1:{port}", log)

    yield start
    for proc in procs:
        _stop_process(proc, signal.SIGTERM)


async def _wait_ready(prom: Prometheus, timeout: float = 30.0) -> None:
    """Without blocking the loop: the gateway in it must answer the scrapes meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(base_url=prom.url, timeout=2) as c:
        while True:
            assert prom.proc.poll() is None, prom.log.read_text(errors="replace")[-3000:]
            try:
                if (await c.get("/-/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert loop.time() < deadline, "prometheus not ready in time"
            await asyncio.sleep(0.2)


async def _until(prom: Prometheus, expr: str, want: float, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    got = await prom.value(expr)
    while got != want:
        assert loop.time() < deadline, f"{expr} = {got}, expected {want}"
        await asyncio.sleep(0.5)
        got = await prom.value(expr)


async def test_prometheus_scrapes_a_running_gateway(
    tmp_path: Path, mosquitto: Any, prometheus_factory: Any
) -> None:
    promtool = require_binary("promtool", "prometheus", ["/usr/bin/promtool"])
    sub = Subscriber(mosquitto.host, mosquitto.port)
    sub_task = asyncio.create_task(sub.run())
    await asyncio.wait_for(sub.ready.wait(), 10)
    async with SimulatedSmsc(smsc_config()) as sim:
        cfg = gateway_config(sim.port, tmp_path, "", mosquitto)
        cfg.metrics.listen = f"127.0.0.1:{free_port()}"
        gw = await start_gateway(cfg)
        try:
            for src, text in TRAFFIC:
                assert await send(sim.port, "subs", submit(src, "77019998877", text)) == [0]
            await asyncio.wait_for(sim.wait_idle(), 20)
            await eventually(lambda: sub.kinds().get("sms", 0) >= 1)
            gateway = gw.gateway
            blocked = sum(h.stats.blocked for h in gateway.handlers)
            received = sum(h.stats.received for h in gateway.handlers)
            assert (blocked, received) == (1, len(TRAFFIC))
            assert gateway.metrics is not None
            async with httpx.AsyncClient(base_url=gateway.metrics.url, timeout=5) as c:
                body = (await c.get("/metrics")).text
            # (1) promtool: a valid exposition and no lint findings
            lint = await asyncio.create_subprocess_exec(
                promtool, "check", "metrics", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            out, err = await lint.communicate(body.encode())
            assert lint.returncode == 0, out.decode() + err.decode()
            assert out.decode().strip() == "" and err.decode().strip() == ""
            # (3) no label value looks like a number of a subscriber
            for family in text_string_to_metric_families(body):
                for s in family.samples:
                    for value in s.labels.values():
                        assert not re.search(r"\d{7,}", value), (s.name, s.labels)
            # (2) a real Prometheus scrapes it and holds what the gateway counted
            prom = prometheus_factory(cfg.metrics.listen)
            await _wait_ready(prom)
            await _until(prom, f'up{{job="{JOB}"}}', 1.0)
            await _until(prom, 'sum(fraudgate_sms_total{decision="block"})', float(blocked))
            await _until(prom, "sum(fraudgate_sms_total)", float(received))
            await _until(prom, "fraudgate_mqtt_connected", 1.0)
            dispatcher: Any = gateway.dispatcher
            await _until(prom, "fraudgate_mqtt_published_total", float(dispatcher.published))
            await _until(prom, "min(fraudgate_smsc_bound)", 1.0)
            count = 'sum(fraudgate_inspection_duration_seconds_count{bind="smsc-p2p"})'
            await _until(prom, count, float(received))
            quantile = (
                "histogram_quantile(0.99, sum by (le) "
                "(fraudgate_inspection_duration_seconds_bucket))"
            )
            p99 = await prom.value(quantile)
            assert p99 is not None and 0 < p99 <= 2.5
        finally:
            await gw.finish()
            sub_task.cancel()
