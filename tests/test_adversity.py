"""The network made bad between the gateway and its real peers (simulators/faultproxy.py): a
half-open SMPP link, a broker that stops answering, garbage on the wire. Nothing the SMSC
hands over is lost or recorded twice, and every alert reaches the broker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from harness import Subscriber, eventually, gateway_config, send, smsc_config, start_gateway, submit

from gateway.store import Store
from simulators.faultproxy import FaultProxy
from smsc.session import SessionConfig
from smsc.simulator import SimulatedSmsc

FRAUD = "Ваша карта заблокирована! Назовите код из SMS оператору: +7 701 555 44 33"


def _through(proxy: FaultProxy, cfg: Any) -> None:
    """The gateway's binds go through the proxy; enquire_link every 0.3 s, answered within 0.5."""
    for link in cfg.smsc:
        link.esme.port = proxy.port
        link.esme.session = SessionConfig(enquire_link_interval=0.3, response_timeout=0.5)


async def _records(tmp_path: Path) -> dict[str, int]:
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'fraudgate.db'}") as store:
        return await store.counts()


async def test_a_half_open_smpp_link_is_noticed_and_nothing_is_lost_or_doubled(
    tmp_path: Path,
) -> None:
    async with SimulatedSmsc(smsc_config()) as sim, FaultProxy("127.0.0.1", sim.port) as proxy:
        cfg = gateway_config(sim.port, tmp_path)
        _through(proxy, cfg)
        gw = await start_gateway(cfg)
        texts = [f"Сообщение номер {i}" for i in range(10)]
        for i, t in enumerate(texts[:5]):
            await send(sim.port, "subs", submit(f"7701300{i:04d}", "77017654321", t))
        await eventually(lambda: len(gw.inspected) == 5)
        proxy.freeze()  # the TCP connections stay up; nothing passes
        for i, t in enumerate(texts[5:], start=5):
            await send(sim.port, "subs", submit(f"7701300{i:04d}", "77017654321", t))
        p2p = gw.gateway.supervisors[1]
        await eventually(lambda: p2p.outage.down, timeout=10)  # enquire_link went unanswered
        proxy.thaw()
        await asyncio.wait_for(sim.wait_idle(), 30)
        await gw.finish()
    assert {i.sms.text for i in gw.inspected} == set(texts)
    assert (await _records(tmp_path))["messages"] == len(texts)
    assert sum(m.state == 2 for m in sim.messages.values()) == len(texts)  # all DELIVERED
    assert proxy.stats.accepted >= 3  # two binds, and the p2p one again


async def test_garbage_on_the_smpp_link_resets_it_and_nothing_is_lost(tmp_path: Path) -> None:
    async with SimulatedSmsc(smsc_config()) as sim, FaultProxy("127.0.0.1", sim.port) as proxy:
        cfg = gateway_config(sim.port, tmp_path)
        _through(proxy, cfg)
        gw = await start_gateway(cfg)
        texts = [f"Хабарлама {i}" for i in range(8)]
        for i, t in enumerate(texts[:4]):
            await send(sim.port, "subs", submit(f"7701400{i:04d}", "77017654321", t))
        await eventually(lambda: len(gw.inspected) == 4)
        proxy.garble(1)  # the next bytes from the SMSC arrive inverted: no valid header
        for i, t in enumerate(texts[4:], start=4):
            await send(sim.port, "subs", submit(f"7701400{i:04d}", "77017654321", t))
        await asyncio.wait_for(sim.wait_idle(), 30)
        await gw.finish()
    assert proxy.stats.garbled == 1
    assert {i.sms.text for i in gw.inspected} == set(texts)
    assert (await _records(tmp_path))["messages"] == len(texts)


async def test_a_broker_that_stops_answering_gets_every_alert_after(
    tmp_path: Path, mosquitto: Any
) -> None:
    """Half-open MQTT: the connection stays up and no PUBACK comes. The dispatcher gives up on
    it (its publish timeout), keeps the alerts in the outbox and publishes them once the
    broker answers again; QoS 1 may deliver one twice, with the same id."""
    sub = Subscriber(mosquitto.host, mosquitto.port)
    sub_task = asyncio.create_task(sub.run())
    await asyncio.wait_for(sub.ready.wait(), 10)
    async with SimulatedSmsc(smsc_config()) as sim, \
            FaultProxy(mosquitto.host, mosquitto.port) as proxy:  # fmt: skip
        cfg = gateway_config(sim.port, tmp_path, "", mosquitto)
        cfg.mqtt.port, cfg.mqtt.timeout = proxy.port, 0.5
        gw = await start_gateway(cfg)
        dispatcher = gw.gateway.dispatcher
        await send(sim.port, "subs", submit("77050000001", "77011110001", FRAUD))
        await eventually(lambda: len(sub.alerts) >= 1)
        proxy.freeze()
        for i in range(5):
            await send(sim.port, "subs", submit(f"7705000002{i}", f"770111200{i:02d}", FRAUD))
        await asyncio.wait_for(sim.wait_idle(), 20)
        await eventually(lambda: getattr(dispatcher, "broker_down", False), timeout=10)
        proxy.thaw()
        await eventually(lambda: len({a["id"] for a in sub.alerts if a["kind"] == "sms"}) >= 6,
                         timeout=30)  # fmt: skip
        await gw.finish()
    sub_task.cancel()
    ids = [a["id"] for a in sub.alerts if a["kind"] == "sms"]
    assert len(set(ids)) == 6  # every alert, each at least once
