"""A running gateway against the simulated SMSC, for end-to-end tests: configurations, a
submitting client, an MQTT subscriber counting alerts, start and stop.

Real parts only: the project's simulated SMSC over loopback TCP, a real mosquitto (the tests'
`mosquitto` fixture), SQLite or PostgreSQL, aiomqtt as the subscriber.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt

from gateway.config import GatewayConfig, SmscLink
from gateway.daemon import Gateway, RunReport
from gateway.domain import Inspected, Route
from smsc.client import EsmeClient, EsmeConfig
from smsc.constants import EsmClass
from smsc.link import Link
from smsc.pdu import Pdu, SubmitSm
from smsc.session import BindType
from smsc.simulator import Account, Faults, SmscConfig
from smsc.simulator import Route as SmscRoute
from smsc.text import split_for_sms


class _Quiet:
    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:
        pass

    def on_request(self, link: Link, pdu: Pdu) -> None:
        link.respond(pdu.response())

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        pass


def smsc_config(faults: Faults | None = None, window: int = 50) -> SmscConfig:
    tx = frozenset({BindType.TRANSMITTER, BindType.TRANSCEIVER})
    rx = frozenset({BindType.RECEIVER, BindType.TRANSCEIVER})
    return SmscConfig(
        port=0,
        accounts=[
            Account("agg", "pw", tx),
            Account("subs", "pw", tx),
            Account("gw-a2p", "pw", rx),
            Account("gw-p2p", "pw", rx, window=window, faults=faults or Faults()),
        ],
        routes=[SmscRoute("", "gw-a2p", origin="agg"), SmscRoute("", "gw-p2p", origin="subs")],
        retry_interval=0.2,
        response_timeout=2.0,
    )


def gateway_config(
    port: int, data_dir: Path, store_url: str = "", broker: Any = None
) -> GatewayConfig:
    cfg = GatewayConfig(data_dir=data_dir, store_url=store_url, mode="enforce")
    cfg.smsc = [
        SmscLink(EsmeConfig("127.0.0.1", port, f"gw-{f}", "pw", BindType.RECEIVER,
                            name=f"smsc-{f}"), route)
        for f, route in (("a2p", Route.A2P), ("p2p", Route.LOCAL))
    ]  # fmt: skip
    cfg.reassembly_timeout = 2.0
    cfg.velocity = type(cfg.velocity)(sender_recipients=20)
    # These tests are about the SMS path and count its alerts; the case workflow that blocked
    # senders also feed has its own end-to-end test (test_workflow_e2e.py).
    cfg.cases.enabled = False
    if broker is None:
        cfg.mqtt.enabled = False
    else:
        cfg.mqtt.host, cfg.mqtt.port = broker.host, broker.port
    return cfg


class Subscriber:
    """Counts alerts by id on `fraudgate/alerts/#` (QoS 1, persistent session)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.alerts: list[dict[str, Any]] = []
        self.ready = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    self.host, self.port, identifier="e2e-sub", clean_session=False
                ) as c:
                    await c.subscribe("fraudgate/alerts/#", qos=1)
                    self.ready.set()
                    async for m in c.messages:
                        self.alerts.append(json.loads(bytes(m.payload)))  # type: ignore[arg-type]
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    def kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.alerts:
            out[a["kind"]] = out.get(a["kind"], 0) + 1
        return out


async def eventually(cond: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def submit(src: str, dst: str, text: str, *, ton: int = 1) -> list[SubmitSm]:
    coding, bodies = split_for_sms(text, ref=42)
    multi = len(bodies) > 1
    return [
        SubmitSm(source_addr=src, source_addr_ton=ton, source_addr_npi=0 if ton == 5 else 1,
                 destination_addr=dst, dest_addr_ton=1, dest_addr_npi=1, data_coding=coding,
                 esm_class=EsmClass.UDHI if multi else 0, short_message=b)
        for b in bodies
    ]  # fmt: skip


async def send(port: int, account: str, pdus: list[SubmitSm]) -> list[int]:
    cfg = EsmeConfig("127.0.0.1", port, account, "pw", BindType.TRANSMITTER)
    async with EsmeClient(cfg, _Quiet()) as link:
        return [(await link.request(p)).status for p in pdus]


class Running:
    def __init__(self, gateway: Gateway, task: asyncio.Task[RunReport], stop: asyncio.Event):
        self.gateway, self.task, self.stop = gateway, task, stop
        self.inspected: list[Inspected] = []

    async def finish(self) -> RunReport:
        self.stop.set()
        return await asyncio.wait_for(self.task, 30)


async def start_gateway(cfg: GatewayConfig) -> Running:
    stop = asyncio.Event()
    holder: list[Inspected] = []
    gw = Gateway(cfg, on_inspected=holder.append)
    task = asyncio.create_task(gw.run(stop))
    await asyncio.wait_for(gw.ready.wait(), 30)
    for sup in gw.supervisors:
        await sup.wait_bound(10)
    running = Running(gw, task, stop)
    running.inspected = holder
    return running
