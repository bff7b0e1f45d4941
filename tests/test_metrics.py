"""Monitoring (gateway.metrics, docs/operations.md): the readiness checks, [metrics], the
database snapshot, the switch's call counts, and a running gateway's /healthz, /readyz and
/metrics while its SMSC goes away and comes back and while its database fails.

Real parts: the simulated SMSC over loopback TCP, SQLite or PostgreSQL, the embedded HTTP
server; the database is broken by renaming a table under the running gateway."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Running, eventually, gateway_config, send, smsc_config, start_gateway, submit
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import from_toml
from gateway.config_check import ConfigError
from gateway.metrics.collector import command_label, family_label, status_label
from gateway.metrics.health import readiness
from gateway.metrics.registry import Metrics
from gateway.metrics.snapshot import DbSnapshot
from gateway.store import Store
from gateway.switch.config import SwitchSettings, open_switch
from gateway.switch.port import CountedSwitch, SwitchUnavailable
from smsc.simulator import SimulatedSmsc

FRAUD = "Ваша карта заблокирована. Подробнее: kaspi-kz.top/unlock"


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """{sorted labels: value} of the samples named `name` in an exposition."""
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


# -- readiness ------------------------------------------------------------------------------------


def _ready(**over: Any) -> list[str]:
    args: dict[str, Any] = {
        "started": True,
        "binds": {"smsc-a": True, "smsc-b": True},
        "database_ok": True,
        "broker_connected": True,
        "oldest_alert_age": 10.0,
        "stuck_after": 300.0,
    }
    args.update(over)
    return [c.name for c in readiness(**args) if not c.ok]


def test_readiness_names_each_failing_check() -> None:
    assert _ready() == []
    assert _ready(started=False) == ["started"]
    assert _ready(binds={"smsc-a": True, "smsc-b": False}) == ["binds"]
    assert _ready(database_ok=False) == ["database"]
    assert _ready(oldest_alert_age=301.0) == ["outbox"]
    # alerts wait by design while the broker is down, or when MQTT is off: not stuck
    assert _ready(oldest_alert_age=3000.0, broker_connected=False) == []
    assert _ready(oldest_alert_age=3000.0, broker_connected=None) == []
    assert _ready(oldest_alert_age=None) == []
    checks = readiness(
        started=True, binds={"smsc-a": False}, database_ok=False, broker_connected=True,
        oldest_alert_age=500.0, stuck_after=300.0,
    )  # fmt: skip
    details = {c.name: c.detail for c in checks}
    assert details["binds"] == "not bound: smsc-a"
    assert "500 s" in details["outbox"]


# -- configuration --------------------------------------------------------------------------------


def test_metrics_section_is_parsed_and_checked() -> None:
    assert from_toml({}).metrics.listen == ""  # off unless asked for
    m = from_toml({"metrics": {"listen": "127.0.0.1:9464", "refresh": 5}}).metrics
    assert (m.listen, m.refresh, m.outbox_stuck_after) == ("127.0.0.1:9464", 5.0, 300.0)
    with pytest.raises(ConfigError, match=r"metrics.listen: expected HOST:PORT"):
        from_toml({"metrics": {"listen": "9464"}})
    with pytest.raises(ConfigError, match=r"metrics.refresh: must be at least"):
        from_toml({"metrics": {"refresh": 0.1}})
    with pytest.raises(ConfigError, match=r"metrics.lisen: unknown key"):
        from_toml({"metrics": {"lisen": "127.0.0.1:9464"}})


def test_shipped_configuration_documents_the_section() -> None:
    text = (Path(__file__).resolve().parent.parent / "config" / "fraudgate.toml").read_text()
    assert "[metrics]" in text and "outbox_stuck_after" in text


# -- labels ----------------------------------------------------------------------------------------


def test_label_values_come_from_bounded_sets() -> None:
    assert command_label(0x00000005) == "deliver_sm"
    assert command_label(0x7777) == "other"
    assert status_label(0x66) == "ESME_RX_R_APPN"
    assert status_label(0x12345) == "other"
    assert family_label("content") == "content"
    assert family_label("77011234567") == "other"  # a number is never a label
    assert family_label("x" * 40) == "other"


# -- the registry's extension point ----------------------------------------------------------------


def test_collectors_and_gauges_added_later_are_exposed() -> None:
    from prometheus_client.core import GaugeMetricFamily

    metrics, other = Metrics(), Metrics()
    held = {"recorder": True, "workflow": False}

    def lease() -> list[GaugeMetricFamily]:
        g = GaugeMetricFamily("fraudgate_lease_held", "Leases held", labels=["role"])
        for role, on in held.items():
            g.add_metric([role], 1 if on else 0)
        return [g]

    metrics.add_collector(lease)
    up = metrics.gauge("fraudgate_shared_state_up", "1 while Redis answers")
    up.set(1)
    text = metrics.exposition().decode()
    assert samples(text, "fraudgate_lease_held") == {
        (("role", "recorder"),): 1.0,
        (("role", "workflow"),): 0.0,
    }
    held["workflow"] = True  # read at each scrape
    assert (
        samples(metrics.exposition().decode(), "fraudgate_lease_held")[(("role", "workflow"),)]
        == 1.0
    )
    assert samples(text, "fraudgate_shared_state_up") == {(): 1.0}
    # each gateway has its own registry: the same name again elsewhere is no conflict
    other.gauge("fraudgate_shared_state_up", "1 while Redis answers")
    assert "fraudgate_lease_held" not in other.exposition().decode()


# -- the switch's call counts ----------------------------------------------------------------------


async def test_switch_calls_are_counted_by_action_and_outcome() -> None:
    async with open_switch(SwitchSettings()) as switch:  # kind "none": every block waits
        with pytest.raises(SwitchUnavailable):
            await switch.block("77011234567", reason="r", case_id="c1")
        with pytest.raises(SwitchUnavailable):
            await switch.block("77011234568", reason="r", case_id="c1")
        assert await switch.status("77011234567") == "unknown"
        assert isinstance(switch, CountedSwitch)
        calls = switch.calls
    assert calls == {("block", "unavailable"): 2, ("status", "ok"): 1}


# -- the database snapshot -------------------------------------------------------------------------


async def test_snapshot_failure_keeps_the_scrape_and_counts_it(store: Store) -> None:
    snapshot = DbSnapshot(store)
    assert await snapshot.refresh()
    text = "".join(f.name for f in snapshot.collect())
    assert "fraudgate_outbox_pending" in text
    await store.close()  # every query now fails
    assert not await snapshot.refresh()
    assert snapshot.failures == 1 and "closed" in snapshot.last_error
    metrics = Metrics()
    metrics.add_collector(snapshot.collect)
    exposed = metrics.exposition().decode()  # the previous values, and the failure
    assert samples(exposed, "fraudgate_db_snapshot_failures_total") == {(): 1.0}
    assert samples(exposed, "fraudgate_outbox_pending") == {
        (("outbox", "centre"),): 0.0,
        (("outbox", "mqtt"),): 0.0,
    }


# -- a running gateway -----------------------------------------------------------------------------


@pytest.fixture
async def smsc() -> AsyncIterator[SimulatedSmsc]:
    async with SimulatedSmsc(smsc_config()) as sim:
        yield sim


async def _running(sim_port: int, tmp_path: Path, store_url: str = "") -> Running:
    cfg = gateway_config(sim_port, tmp_path, store_url)
    cfg.metrics.listen = "127.0.0.1:0"
    cfg.metrics.refresh = 1.0
    return await start_gateway(cfg)


async def _get(gw: Running, path: str) -> httpx.Response:
    assert gw.gateway.metrics is not None
    async with httpx.AsyncClient(base_url=gw.gateway.metrics.url, timeout=5) as c:
        return await c.get(path)


async def _wait_status(gw: Running, path: str, status: int, timeout: float = 20.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await _get(gw, path)
        if r.status_code == status:
            return r.json()
        assert loop.time() < deadline, f"{path}: {r.status_code} {r.text}"
        await asyncio.sleep(0.1)


async def test_readyz_follows_the_smsc_binds(smsc: SimulatedSmsc, tmp_path: Path) -> None:
    gw = await _running(smsc.port, tmp_path)
    try:
        assert (await _get(gw, "/healthz")).status_code == 200
        assert (await _wait_status(gw, "/readyz", 200))["failed"] == []
        port = smsc.port
        await smsc.__aexit__(None, None, None)  # the SMSC goes away
        body = await _wait_status(gw, "/readyz", 503)
        assert body["failed"] == ["binds"]
        binds = next(c for c in body["checks"] if c["name"] == "binds")
        assert "smsc-a2p" in binds["detail"] and "smsc-p2p" in binds["detail"]
        assert (await _get(gw, "/healthz")).status_code == 200  # alive all the same
        text = (await _get(gw, "/metrics")).text
        assert set(samples(text, "fraudgate_smsc_bound").values()) == {0.0}
        cfg = smsc_config()
        cfg.port = port
        async with SimulatedSmsc(cfg):  # back on the same port: rebound with backoff
            assert (await _wait_status(gw, "/readyz", 200, timeout=30))["status"] == "ready"
            text = (await _get(gw, "/metrics")).text
            assert set(samples(text, "fraudgate_smsc_bound").values()) == {1.0}
            reconnects = samples(text, "fraudgate_smsc_reconnects_total")
            assert reconnects == {(("bind", "smsc-a2p"),): 1.0, (("bind", "smsc-p2p"),): 1.0}
            assert all(v >= 1 for v in samples(text, "fraudgate_smsc_link_failures_total").values())
            await gw.finish()
    finally:
        if not gw.task.done():
            await gw.finish()


async def test_readyz_names_a_failing_database_and_metrics_count_the_sms(
    smsc: SimulatedSmsc, tmp_path: Path
) -> None:
    db = tmp_path / "metrics.db"
    gw = await _running(smsc.port, tmp_path, f"sqlite+aiosqlite:///{db}")
    try:
        assert await send(smsc.port, "subs", submit("77051112233", "77019998877", FRAUD)) == [0]
        assert await send(smsc.port, "subs", submit("77051112234", "77019998877", "Привет")) == [0]
        await asyncio.wait_for(smsc.wait_idle(), 20)
        # the blocked SMS's alert waits in the outbox (MQTT is off): seen at the next refresh
        await eventually(lambda: _pending_mqtt(gw) == 1.0)
        text = (await _get(gw, "/metrics")).text
        sms = samples(text, "fraudgate_sms_total")
        assert sms[(("bind", "smsc-p2p"), ("decision", "block"))] == 1.0
        assert sms[(("bind", "smsc-p2p"), ("decision", "allow"))] == 1.0
        pdus = samples(text, "fraudgate_smsc_pdus_total")
        key = (("bind", "smsc-p2p"), ("command", "deliver_sm_resp"), ("direction", "out"))
        assert pdus[(*key, ("status", "ESME_RX_R_APPN"))] >= 1.0  # the blocked one, enforcing
        assert pdus[(*key, ("status", "ESME_ROK"))] >= 1.0
        latency = samples(text, "fraudgate_inspection_duration_seconds_count")
        assert latency[(("bind", "smsc-p2p"),)] == 2.0
        assert samples(text, "fraudgate_store_batch_size_sum") == {(): 2.0}
        families = samples(text, "fraudgate_verdict_findings_total")
        assert {dict(k)["family"] for k in families} >= {"content", "url"}
        assert not re.search(r'="[^"]*\d{7,}', text)  # no number in any label value
        # the database fails: the SMSC's next message is answered for retry, /readyz says why
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE messages RENAME TO messages_away")
        sender = asyncio.create_task(
            send(smsc.port, "subs", submit("77051112235", "77019998877", "Кешке келемін"))
        )
        body = await _wait_status(gw, "/readyz", 503)
        assert body["failed"] == ["database"]
        text = (await _get(gw, "/metrics")).text
        assert samples(text, "fraudgate_database_up") == {(): 0.0}
        assert samples(text, "fraudgate_store_failed_total")[()] >= 1.0
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE messages_away RENAME TO messages")
        await _wait_status(gw, "/readyz", 200)  # the SMSC's retry is recorded
        assert await sender == [0]
    finally:
        await gw.finish()


def _pending_mqtt(gw: Running) -> float | None:
    assert gw.gateway.metrics is not None
    text = gw.gateway.metrics.exposition().decode()
    return samples(text, "fraudgate_outbox_pending").get((("outbox", "mqtt"),))
