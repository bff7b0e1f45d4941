"""Exactly-once records (issue: records were not idempotent): a message the SMSC delivers again
keeps its first id, so it is recorded once and its alerts, whose ids derive from it, once; a
frozen database is answered for retry within the commit timeout, logged, and its health made
visible; after it thaws every message is there once."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from harness import gateway_config, send, smsc_config, start_gateway, submit

from gateway.domain import Decision, Inspected, SmsEvent, Verdict
from gateway.pipeline.message_ids import derived_id, message_key, stable_ids
from gateway.store import Store
from smsc.constants import Tag
from smsc.pdu import DeliverSm, Tlv
from smsc.simulator import SimulatedSmsc


def _pdu(text: bytes, seq: int = 1, ref: int | None = None) -> DeliverSm:
    tlvs = [Tlv.of(Tag.SAR_MSG_REF_NUM, ref)] if ref is not None else []
    return DeliverSm(sequence=seq, source_addr="77011234567", destination_addr="77021234567",
                     short_message=text, tlvs=tlvs)  # fmt: skip


def test_the_key_is_what_the_smsc_sent_not_how_it_sent_it() -> None:
    key = message_key([_pdu(b"hello", seq=1)], "gw@smsc:2775")
    assert message_key([_pdu(b"hello", seq=99)], "gw@smsc:2775") == key  # a resend: new sequence
    assert message_key([_pdu(b"hello!")], "gw@smsc:2775") != key
    assert message_key([_pdu(b"hello", ref=7)], "gw@smsc:2775") != key  # another long SMS
    assert message_key([_pdu(b"hello")], "other@smsc:2775") != key  # another account


def test_ids_are_bucketed_and_a_redelivery_across_a_boundary_names_the_first_id() -> None:
    key = message_key([_pdu(b"hello")], "s")
    first, _ = stable_ids(key, 1_000_000.0, 600)
    same, _ = stable_ids(key, 1_000_000.0 + 100, 600)
    assert first == same and len(first) == 32 and int(first, 16) >= 0
    later, prior = stable_ids(key, 1_000_000.0 + 700, 600)  # the next bucket
    assert later != first and prior == first
    # ids sort by their bucket's time
    assert stable_ids(key, 2_000_000.0, 600)[0] > first
    assert derived_id(first, "sms") == derived_id(first, "sms") != derived_id(first, "fanout")


def _inspected(mid: str, prior: str = "", text: str = "x") -> Inspected:
    sms = SmsEvent(source="77011234567", dest="77021234567", text=text, id=mid, prior_id=prior)
    return Inspected(sms, Verdict(0.0, Decision.ALLOW, []))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_store_records_a_redelivery_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    key = message_key([_pdu(b"hello")], "s")
    first, _ = stable_ids(key, 1_000_000.0)
    later, prior = stable_ids(key, 1_000_000.0 + 700)
    other, _ = stable_ids(message_key([_pdu(b"other")], "s"), 1_000_000.0)
    async with await Store.open(url) as store:
        await store.migrate()
        assert await store.record([_inspected(first)]) == set()
        # the same id again, the next window's id naming it as prior, and a repeat in a batch
        repeated = await store.record(
            [_inspected(first), _inspected(later, prior), _inspected(other), _inspected(other)]
        )
        assert repeated == {first, later}
        assert (await store.counts())["messages"] == 2


async def _alerts(host: str, port: int, got: list[dict[str, Any]], ready: asyncio.Event) -> None:
    async with aiomqtt.Client(host, port, identifier="once-sub", clean_session=False) as c:
        await c.subscribe("fraudgate/alerts/#", qos=1)
        ready.set()
        async for m in c.messages:
            got.append(json.loads(bytes(m.payload)))  # type: ignore[arg-type]


async def test_a_frozen_database_is_answered_for_retry_and_everything_is_recorded_once(
    postgres_server: Any,
    postgres_url: str,
    tmp_path: Path,
    mosquitto: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGSTOP on PostgreSQL (the server and its backends) mid-stream: within the commit
    timeout the SMSC gets 0x14 (it retries), one log line says so, the retained health is
    'failing'; after SIGCONT the retried messages are recorded once each, with one alert each."""
    got: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(_alerts(mosquitto.host, mosquitto.port, got, ready))
    await asyncio.wait_for(ready.wait(), 10)

    async def health() -> None:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
            await c.subscribe("fraudgate/health/database", qos=1)
            async for m in c.messages:
                states.append(json.loads(bytes(m.payload)))  # type: ignore[arg-type]

    watcher = asyncio.create_task(health())
    caplog.set_level(logging.WARNING, logger="fraudgate.pipeline")
    fraud = "Ваша карта заблокирована! Назовите код из SMS оператору: +7 701 555 44 33"
    async with SimulatedSmsc(smsc_config()) as sim:
        cfg = gateway_config(sim.port, tmp_path, postgres_url, mosquitto)
        cfg.commit_timeout = 1.0
        gw = await start_gateway(cfg)
        texts = [f"{fraud} #{i}" for i in range(30)]
        first = [p for t in texts[:10] for p in submit("77051110000", "77010000001", t)]
        await send(sim.port, "subs", first)
        await asyncio.wait_for(sim.wait_idle(), 20)
        postgres_server.freeze()
        try:
            sender = asyncio.create_task(
                send(sim.port, "subs",
                     [p for t in texts[10:] for p in submit("77051110000", "77010000001", t)])
            )  # fmt: skip
            loop = asyncio.get_running_loop()
            frozen_at = loop.time()
            while sim.stats.retries < 1:
                assert loop.time() - frozen_at < 5.0, "no 0x14 within 5 s of the freeze"
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.0)  # retries keep coming while it is frozen
        finally:
            postgres_server.thaw()
        await sender
        await asyncio.wait_for(sim.wait_idle(), 60)
        await asyncio.sleep(1.0)
        report = await gw.finish()
    await asyncio.sleep(0.5)
    listener.cancel()
    watcher.cancel()
    assert report.store_failures >= 1
    assert any("cannot record SMS" in r.getMessage() for r in caplog.records)
    assert [s["state"] for s in states][-2:] == ["failing", "ok"]
    async with await Store.open(postgres_url) as store:
        counts = await store.counts()
    assert counts["messages"] == len(texts)  # none lost, none recorded twice
    sms_alerts = {a["id"] for a in got if a["kind"] == "sms"}
    assert len(sms_alerts) == len(texts) == counts["alerts_sent"]
