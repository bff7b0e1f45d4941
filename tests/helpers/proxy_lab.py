"""The A2P proxy in a lab (tests): the simulated SMSC as the operator's SMSC (the proxy binds to
it as account `fraudgate`; a receiver ESME `phones` plays the handsets, answering every
deliver_sm and counting them), the gateway daemon with `[proxy]` on a free port and a real
SQLite / PostgreSQL store, and aggregators that bind to the proxy with `aggregator()`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config import GatewayConfig
from gateway.daemon import Gateway, RunReport
from gateway.domain import Inspected
from gateway.proxy.service import Proxy
from gateway.proxy.settings import ProxyAccount, ProxySettings
from smsc.client import EsmeClient, EsmeConfig
from smsc.constants import Status
from smsc.link import Link
from smsc.pdu import DeliverSm, Pdu
from smsc.session import BindType, SessionConfig
from smsc.simulator import Account, Faults, SimulatedSmsc, SmscConfig
from smsc.simulator import Route as SmscRoute

AGGR, KASPI_AGGR = "aggr", "kaspi-a2p"  # senders.toml: KASPI only from the account kaspi-a2p
PASSWORD = "pw"


class Receiver:
    """An ESME's handler that answers deliver_sm with `status_of(pdu)` and keeps them."""

    def __init__(self) -> None:
        self.received: list[DeliverSm] = []
        self.status_of: Callable[[DeliverSm], int] = lambda pdu: Status.ESME_ROK

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:
        pass

    def on_request(self, link: Link, pdu: Pdu) -> None:
        assert isinstance(pdu, DeliverSm)
        status = self.status_of(pdu)
        if status == Status.ESME_ROK:
            self.received.append(pdu)
        link.respond(pdu.response(status=status))

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        pass

    def receipts(self) -> list[DeliverSm]:
        return [p for p in self.received if p.esm_class & 0x04]


@dataclass
class ProxyLab:
    smsc: SimulatedSmsc
    gateway: Gateway
    phones: Receiver
    store_url: str
    stop_event: asyncio.Event
    task: asyncio.Task[RunReport]
    inspected: list[Inspected]
    clients: list[EsmeClient] = field(default_factory=list)

    @property
    def proxy(self) -> Proxy:
        assert self.gateway.proxy is not None
        return self.gateway.proxy

    @property
    def at_smsc(self) -> int:
        """Submits the SMSC accepted from the proxy."""
        return self.smsc.stats.submitted

    async def aggregator(
        self, system_id: str = AGGR, bind: BindType = BindType.TRANSCEIVER, window: int = 10
    ) -> tuple[Link, Receiver]:
        handler = Receiver()
        client = EsmeClient(
            EsmeConfig("127.0.0.1", self.proxy.port, system_id, PASSWORD, bind,
                       session=SessionConfig(window=window, response_timeout=10)),
            handler,
        )  # fmt: skip
        link = await client.__aenter__()
        self.clients.append(client)
        return link, handler

    async def stop(self) -> RunReport:
        for client in reversed(self.clients):
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)
        self.clients.clear()
        self.stop_event.set()
        return await asyncio.wait_for(asyncio.shield(self.task), 30)


def proxy_settings(port: int, **overrides: object) -> ProxySettings:
    settings = ProxySettings(
        enabled=True,
        host="127.0.0.1",
        port=0,
        accounts=[
            ProxyAccount(AGGR, PASSWORD, senders=frozenset({"shop", "taxi"}), numbers=("7555",)),
            ProxyAccount(KASPI_AGGR, PASSWORD),
        ],
        upstream=[
            EsmeConfig("127.0.0.1", port, "fraudgate", PASSWORD, BindType.TRANSCEIVER,
                       session=SessionConfig(window=50, response_timeout=2.0), name="smsc")
        ],
        retry_interval=0.2,
        reconcile_wait=2.0,
        receipt_retry=0.3,
    )  # fmt: skip
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings


@contextlib.asynccontextmanager
async def proxy_lab(
    tmp_path: Path,
    *,
    store_url: str = "",
    mode: str = "enforce",
    upstream_faults: Faults | None = None,
    fixed_submit_id: str = "",
    **overrides: object,
) -> AsyncIterator[ProxyLab]:
    rx = frozenset({BindType.RECEIVER, BindType.TRANSCEIVER})
    smsc = SimulatedSmsc(
        SmscConfig(
            port=0,
            accounts=[
                Account("fraudgate", PASSWORD, rx, faults=upstream_faults or Faults()),
                Account("phones", PASSWORD, rx),
            ],
            routes=[SmscRoute("", "phones", origin="fraudgate"), SmscRoute("", "fraudgate")],
            retry_interval=0.2,
            response_timeout=5.0,
            fixed_submit_id=fixed_submit_id,
            receipt_tlvs=not fixed_submit_id,
        )
    )
    await smsc.__aenter__()
    phones = Receiver()
    phones_client = EsmeClient(
        EsmeConfig("127.0.0.1", smsc.port, "phones", PASSWORD, BindType.RECEIVER), phones
    )
    await phones_client.__aenter__()
    cfg = GatewayConfig(data_dir=tmp_path / "data", store_url=store_url, mode=mode)
    cfg.cases.enabled = False
    cfg.mqtt.enabled = False
    cfg.proxy = proxy_settings(smsc.port, **overrides)
    inspected: list[Inspected] = []
    gateway = Gateway(cfg, on_inspected=inspected.append)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    try:
        await asyncio.wait_for(gateway.ready.wait(), 20)
        assert gateway.proxy is not None
        await asyncio.wait_for(gateway.proxy.ready.wait(), 10)
        await gateway.proxy.forwarder.supervisors[0].wait_bound(10)
        lab = ProxyLab(smsc, gateway, phones, cfg.database_url, stop, task, inspected)
        yield lab
        await lab.stop()
    finally:
        if not task.done():
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)
        await phones_client.__aexit__(None, None, None)
        await smsc.__aexit__(None, None, None)
