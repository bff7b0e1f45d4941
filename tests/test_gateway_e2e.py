"""End to end: simulated SMSC -> gateway -> SQLite / PostgreSQL -> mosquitto -> a subscriber.

Real parts only: the project's simulated SMSC over loopback TCP, a real mosquitto, a real
PostgreSQL cluster (initdb in a temp dir) or SQLite file, aiomqtt as the subscriber.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
from harness import (
    Subscriber,
    eventually,
    gateway_config,
    send,
    smsc_config,
    start_gateway,
    submit,
)

from gateway.store import Store
from smsc.constants import EsmClass, Status, Tag
from smsc.pdu import SubmitSm, Tlv
from smsc.simulator import Faults, SimulatedSmsc
from smsc.text import encode_text

ROOT = Path(__file__).resolve().parent.parent
KAZ_SMISHING = (
    "Құрметті клиент! Сіздің Kaspi картаңыз бұғатталды. Картаны бұғаттан шығару үшін "
    "kaspi-bank.kz-secure.com сілтемесіне өтіп, SMS кодты енгізіңіз. Әйтпесе шотыңыз жабылады."
)
NORMAL = ["Мама, я задержусь, буду в 8", "Сәлем! Кешке кездесеміз бе?", "Купи хлеб и молоко"]
MIXED_SCRIPT = "Сәлем! Привет! Hello! مرحبا 你好 Γειά σου Қазақстан 🇰🇿 kаspi.kz"
TEN_PARTS = ("Құрметті абонент! Ертең таңертең жиналыс болады, кешікпеңіз. " * 11)[:660]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def smsc() -> AsyncIterator[SimulatedSmsc]:
    async with SimulatedSmsc(smsc_config()) as sim:
        yield sim


async def test_smishing_spoofing_and_fanout_alerted_normal_traffic_not(
    smsc: SimulatedSmsc, store_url: str, tmp_path: Path, mosquitto: Any
) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port)
    sub_task = asyncio.create_task(sub.run())
    await asyncio.wait_for(sub.ready.wait(), 10)
    gw = await start_gateway(gateway_config(smsc.port, tmp_path, store_url, mosquitto))
    # normal traffic first: nothing may be alerted
    for i, text in enumerate(NORMAL):
        assert await send(smsc.port, "subs", submit(f"7701000000{i}", "77017654321", text)) == [0]
    # a smishing message in Kazakh: UCS2, three parts
    parts = submit("77051112233", "77019998877", KAZ_SMISHING)
    assert len(parts) == 3 and parts[0].data_coding == 8
    assert await send(smsc.port, "subs", parts) == [0, 0, 0]
    # a spoofed bank sender arriving on the aggregator bind
    spoof = submit(
        "KASPI", "77013334455", "Ваша карта заблокирована. Подробнее: kaspi-kz.top/unlock", ton=5
    )
    assert await send(smsc.port, "agg", spoof) == [0]
    # a fan-out burst: one SIM to 30 distinct recipients
    burst = [
        p
        for i in range(30)
        for p in submit("77757770000", f"7702{i:07d}", "Привет! Посмотри фото vk.cc/abc")
    ]
    assert len(await send(smsc.port, "subs", burst)) == 30
    await asyncio.wait_for(smsc.wait_idle(), 20)
    await eventually(lambda: sub.kinds().get("fanout", 0) >= 1 and sub.kinds().get("sms", 0) >= 3)
    report = await gw.finish()
    sub_task.cancel()

    sms_alerts = [a for a in sub.alerts if a["kind"] == "sms"]
    by_source = {a["source"]: a for a in sms_alerts}
    assert "77051112233" in by_source and by_source["77051112233"]["decision"] == "block"
    assert by_source["77051112233"]["parts"] == 3
    assert "KASPI" in by_source and any(
        r.startswith("sender.") for r in by_source["KASPI"]["rule_ids"]
    )
    assert not any(a["source"].startswith("7701000000") for a in sms_alerts)  # normal: none
    fanout = [a for a in sub.alerts if a["kind"] == "fanout"]
    assert [a["sender"] for a in fanout] == ["77757770000"]
    assert len({a["id"] for a in sub.alerts}) == len(sub.alerts)  # none doubled
    schema = json.loads((ROOT / "docs" / "mqtt-alert.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for a in sub.alerts:  # every published alert is what docs/mqtt.md documents
        validator.validate(a)
    for a in sub.alerts:  # personal data never leaves unmasked
        assert "iin" not in json.dumps(a).lower()
        if "dest" in a:
            assert "***" in a["dest"]
    async with await Store.open(store_url) as store:
        counts = await store.counts()
    assert counts["messages"] == len(NORMAL) + 1 + 1 + 30
    assert counts["alerts_pending"] == 0 and counts["alerts_sent"] == len(sub.alerts)
    assert report.store_failures == 0
    # enforcing: the blocked smishing parts were rejected with 0x66 -> UNDELIV at the SMSC
    undeliv = [m for m in smsc.messages.values() if m.error == Status.ESME_RX_R_APPN]
    assert len(undeliv) >= 3


async def test_broker_outage_delays_alerts_none_lost_none_doubled(
    smsc: SimulatedSmsc, tmp_path: Path, mosquitto: Any
) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port)
    sub_task = asyncio.create_task(sub.run())
    await asyncio.wait_for(sub.ready.wait(), 10)
    gw = await start_gateway(gateway_config(smsc.port, tmp_path, "", mosquitto))
    fraud = "Ваша карта заблокирована! Назовите код из SMS оператору: +7 701 555 44 33"
    await send(smsc.port, "subs", submit("77050000001", "77011110001", fraud))
    await eventually(lambda: len(sub.alerts) >= 1)
    mosquitto.stop()
    for i in range(5):  # alerts recorded while the broker is away
        await send(smsc.port, "subs", submit(f"7705000001{i}", f"770111100{i + 2:02d}", fraud))
    await asyncio.wait_for(smsc.wait_idle(), 20)
    await asyncio.sleep(0.5)
    assert len(sub.alerts) == 1
    mosquitto.start()
    await eventually(lambda: len(sub.alerts) >= 6, timeout=30)
    await gw.finish()
    await asyncio.sleep(0.3)
    sub_task.cancel()
    ids = [a["id"] for a in sub.alerts if a["kind"] == "sms"]
    assert len(ids) == 6 and len(set(ids)) == 6


async def test_smsc_link_cut_mid_stream_loses_nothing(tmp_path: Path) -> None:
    async with SimulatedSmsc(smsc_config(Faults(disconnect_after=7))) as sim:
        gw = await start_gateway(gateway_config(sim.port, tmp_path))
        texts = [f"Сообщение номер {i}" for i in range(20)]
        for i, t in enumerate(texts):
            await send(sim.port, "subs", submit(f"7701200{i:04d}", "77017654321", t))
        await asyncio.wait_for(sim.wait_idle(), 30)
        await gw.finish()
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'fraudgate.db'}") as store:
        counts = await store.counts()
    recorded = {i.sms.text for i in gw.inspected}
    assert recorded == set(texts)  # every message inspected (a redelivered one twice) ...
    assert counts["messages"] == len(texts)  # ... and recorded once
    assert sum(m.state == 2 for m in sim.messages.values()) == len(texts)  # all DELIVERED


async def test_bad_input_gets_a_verdict_with_a_reason_never_a_crash(
    smsc: SimulatedSmsc, tmp_path: Path
) -> None:
    gw = await start_gateway(gateway_config(smsc.port, tmp_path))
    bad = [
        SubmitSm(source_addr="77010000001", destination_addr="77010000002", data_coding=8,
                 short_message=b"\x04\x10\x04"),  # odd-length UCS2
        SubmitSm(source_addr="77010000001", destination_addr="77010000003", short_message=b""),
        SubmitSm(source_addr="77010000001", destination_addr="77010000004",
                 tlvs=[Tlv.of(Tag.MESSAGE_PAYLOAD, b"A" * 65000)]),
        SubmitSm(source_addr="77010000001", destination_addr="77010000005",
                 esm_class=EsmClass.UDHI, short_message=b"\x09\x00\x03\x01hello"),  # broken UDH
        SubmitSm(source_addr="77010000001", destination_addr="77010000006", data_coding=0,
                 short_message=encode_text("ok", 0) + b"\x80\xff"),  # bytes outside GSM 7-bit
        SubmitSm(source_addr="77010000001", destination_addr="77010000007", data_coding=8,
                 short_message="😀🎉🙏👍🔥".encode("utf-16-be")),  # emoji only
        SubmitSm(source_addr="77010000001", destination_addr="77010000008", data_coding=8,
                 short_message=b"\x04\x10\xd8\x00\x04\x11"),  # a lone surrogate: invalid UCS2
        *submit("77010000001", "77010000009", MIXED_SCRIPT),
        *submit("77010000001", "77010000010", TEN_PARTS),
    ]  # fmt: skip
    assert await send(smsc.port, "subs", bad) == [0] * len(bad)
    await asyncio.wait_for(smsc.wait_idle(), 20)
    report = await gw.finish()
    by_dest = {i.sms.dest: i for i in gw.inspected}
    assert set(by_dest) == {f"770100000{n:02d}" for n in range(2, 11)}
    assert by_dest["77010000007"].sms.text == "😀🎉🙏👍🔥"
    assert "encoding.invalid" in by_dest["77010000008"].verdict.rule_ids
    assert by_dest["77010000009"].sms.text == MIXED_SCRIPT
    ten = by_dest["77010000010"].sms
    assert ten.parts == 10 and ten.complete and ten.text == TEN_PARTS
    assert "encoding.invalid" in by_dest["77010000002"].verdict.rule_ids
    assert "encoding.empty" in by_dest["77010000003"].verdict.rule_ids
    assert len(by_dest["77010000004"].sms.text) == 65000
    assert "encoding.invalid" in by_dest["77010000005"].verdict.rule_ids
    assert "encoding.invalid" in by_dest["77010000006"].verdict.rule_ids
    assert report.store_failures == 0


async def test_database_down_answers_retry_status_and_records_after(
    postgres_server: Any, postgres_url: str, tmp_path: Path
) -> None:
    async with SimulatedSmsc(smsc_config()) as sim:
        gw = await start_gateway(gateway_config(sim.port, tmp_path, postgres_url))
        await send(sim.port, "subs", submit("77013000001", "77017654321", "до сбоя"))
        await asyncio.wait_for(sim.wait_idle(), 20)
        postgres_server.stop()
        try:
            await send(sim.port, "subs", submit("77013000002", "77017654321", "во время сбоя"))
            await eventually(lambda: sim.stats.retries >= 1)  # answered 0x14: the SMSC retries
        finally:
            postgres_server.start()
        await asyncio.wait_for(sim.wait_idle(), 60)
        report = await gw.finish()
    assert report.store_failures >= 1
    async with await Store.open(postgres_url) as store:
        assert (await store.counts())["messages"] == 2


def test_gateway_killed_and_restarted_loses_no_message_and_no_alert(
    tmp_path: Path, mosquitto: Any, store_url: str
) -> None:
    """SIGKILL mid-stream: what the SMSC saw acknowledged is recorded; the rest is redelivered
    after the restart, and a message recorded before the kill but not acknowledged keeps its
    id: recorded once, alerted once; alerts recorded before the kill still go out."""
    asyncio.run(_kill_restart(tmp_path, mosquitto, store_url))


async def _kill_restart(tmp_path: Path, mosquitto: Any, store_url: str) -> None:
    async with SimulatedSmsc(smsc_config(window=1)) as sim:
        conf = tmp_path / "gw.toml"
        conf.write_text(
            # small, slow batches so that the kill lands mid-stream
            f'[gateway]\nmode = "monitor"\ndata_dir = "{tmp_path}"\n'
            f"batch_max = 4\nbatch_delay = 0.05\n"
            f'[store]\nurl = "{store_url}"\n'
            f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\n'
            f'[[smsc]]\nname = "smsc-p2p"\naddress = "127.0.0.1:{sim.port}"\n'
            f'system_id = "gw-p2p"\npassword = "pw"\nroute = "local"\n'
            f'[[smsc]]\nname = "smsc-a2p"\naddress = "127.0.0.1:{sim.port}"\n'
            f'system_id = "gw-a2p"\npassword = "pw"\nroute = "a2p"\n'
        )

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "run", "-c", str(conf)],
                cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip

        fraud = "Сіздің картаңыз бұғатталды, кодты айтыңыз: +77015554433"
        texts = [f"{fraud} #{i}" for i in range(40)]
        proc = start()
        sender = asyncio.create_task(
            send(
                sim.port,
                "subs",
                [p for i, t in enumerate(texts) for p in submit(f"7705{i:07d}", "77019990000", t)],
            )
        )
        await eventually(lambda: sim.stats.delivered >= 10, timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert sim.pending() > 0, "the kill should land mid-stream"
        await sender
        proc = start()
        try:
            await eventually(lambda: len(sim.accounts["gw-p2p"].links) == 1, timeout=60)
            await asyncio.wait_for(sim.wait_idle(), 90)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
    async with await Store.open(store_url) as store:
        counts = await store.counts()
        pending = await store.pending_alerts(1000)
        async with store.engine.connect() as conn:
            rows = await conn.execute(sa.text("SELECT kind, count(*) FROM alerts GROUP BY kind"))
            kinds = {str(kind): int(n) for kind, n in rows}
    # none lost, none recorded twice (a redelivered message keeps its first id)
    assert counts["messages"] == len(texts)
    assert counts["block"] + counts["flag"] == len(texts)
    assert kinds["sms"] == len(texts)  # one alert per message, whatever was redelivered
    assert pending == []  # every alert published


def test_sighup_reloads_rules_without_a_restart(tmp_path: Path) -> None:
    """A new content rule added to the file while the daemon runs applies after SIGHUP."""
    asyncio.run(_sighup(tmp_path))


async def _sighup(tmp_path: Path) -> None:
    import shutil

    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "config" / "rules", rules)
    novel = "Ваш тариф изменён, подтвердите словом ЖЕЛТЫЙКИТ"  # no shipped rule knows this word
    async with SimulatedSmsc(smsc_config()) as sim:
        conf = tmp_path / "gw.toml"
        conf.write_text(
            f'[gateway]\nmode = "enforce"\ndata_dir = "{tmp_path}"\n'
            f'[detectors]\nrules_dir = "{rules}"\n[mqtt]\nenabled = false\n'
            f'[[smsc]]\nname = "smsc-p2p"\naddress = "127.0.0.1:{sim.port}"\n'
            f'system_id = "gw-p2p"\npassword = "pw"\nroute = "local"\n'
        )
        proc = subprocess.Popen(  # noqa: ASYNC220 - a daemon under test, reaped in finally
            [sys.executable, "-m", "gateway.cli", "run", "-c", str(conf)],
            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            await eventually(lambda: len(sim.accounts["gw-p2p"].links) == 1, timeout=60)
            await send(sim.port, "subs", submit("77011230001", "77019990001", novel))
            await asyncio.wait_for(sim.wait_idle(), 20)
            before = [m for m in sim.messages.values() if m.dest == "77019990001"]
            assert [m.state for m in before] == [2]  # delivered: not blocked yet
            with (rules / "content.toml").open("a", encoding="utf-8") as f:
                f.write(
                    '\n[[rule]]\nid = "content.ru.test_reload"\nlang = "ru"\ntheme = "test"\n'
                    'score = 0.95\nblock = true\ndescription = "added while running"\n'
                    "patterns = ['желтыйкит']\n"
                )
            proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(1.0)
            await send(sim.port, "subs", submit("77011230001", "77019990002", novel))
            await asyncio.wait_for(sim.wait_idle(), 20)
            after = [m for m in sim.messages.values() if m.dest == "77019990002"]
            assert [m.error for m in after] == [Status.ESME_RX_R_APPN]  # now stopped inline
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0


async def test_text_retention_erases_old_texts_and_keeps_the_verdicts(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fraudgate.db'}"
    async with SimulatedSmsc(smsc_config()) as sim:
        gw = await start_gateway(gateway_config(sim.port, tmp_path))
        await send(sim.port, "subs", submit("77014000001", "77017654321", "Купи хлеб"))
        await asyncio.wait_for(sim.wait_idle(), 20)
        await gw.finish()
        async with await Store.open(url) as store:
            assert (await store.counts())["texts"] == 1
        cfg = gateway_config(sim.port, tmp_path)
        cfg.text_retention_days = 0.0  # everything recorded so far is past retention
        gw = await start_gateway(cfg)
        async with await Store.open(url) as store:
            deadline = time.monotonic() + 10
            while (counts := await store.counts())["texts"] and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await gw.finish()
    assert counts["messages"] == 1 and counts["verdicts"] == 1
    assert counts["texts"] == 0
