"""Forward mode against the real osmo-msc 1.9 with `smpp-first`: virtual phones over SGs send MO
SMS, osmo-msc hands each to the gateway (deliver_sm), the gateway inspects it and submits the
accepted ones onward on the same transceiver bind; osmo-msc pages the receiver, and its receipt
('msg_id_not_implemented' answered to submit_sm, `id:<database id>` in the receipt) is matched
back to the original message by address pair."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from conftest import OsmoLab
from waiting import eventually

from gateway.config import GatewayConfig, SmscLink
from gateway.daemon import Gateway, RunReport
from gateway.domain import Route
from gateway.osmocom.ctrl import CtrlClient
from gateway.pipeline.inspector import Inspector
from gateway.store import Store
from gateway.wiring import build_inspector
from simulators.osmo.lab import Lab
from simulators.osmo.mme import VirtualMme
from simulators.osmo.provision import LabSubscriber, provision
from smsc.client import EsmeConfig
from smsc.session import BindType, SessionConfig

pytestmark = pytest.mark.interop

ALICE = ("001010000000001", "4900001")
BOB = ("001010000000002", "4900002")
HELLO = "Сәлем, достым! Кешке кездесеміз бе?"
KAZAKH_LONG = "Құрметті клиент! Ертең сағат 10-да жиналыс болады. " * 3
FRAUD = (
    "Ваша карта заблокирована. Для разблокировки перейдите по ссылке kaspi-bank.kz-secure.com "
    "и введите код из SMS."
)


@pytest.fixture
def inspector() -> Inspector:
    return build_inspector(GatewayConfig())


@asynccontextmanager
async def forwarding_gateway(
    lab: Lab, inspector: Inspector, data_dir: Path
) -> AsyncIterator[tuple[Gateway, asyncio.Event, asyncio.Task[RunReport]]]:
    cfg = GatewayConfig(data_dir=data_dir, mode="enforce")
    esme = EsmeConfig(
        lab.cfg.host, lab.cfg.smpp_port, lab.cfg.esme_system_id, lab.cfg.esme_password,
        BindType.TRANSCEIVER, bind_timeout=5, session=SessionConfig(response_timeout=5),
        name="osmo-msc",
    )  # fmt: skip
    cfg.smsc = [SmscLink(esme, Route.LOCAL, forward=True, forward_timeout=3.0)]
    cfg.cases.enabled = False
    cfg.mqtt.enabled = False
    gateway = Gateway(cfg, inspector=inspector)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    try:
        await asyncio.wait_for(gateway.ready.wait(), 10)
        await gateway.supervisors[0].wait_bound(5)
        yield gateway, stop, task
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def test_phones_through_the_forwarding_gateway(
    osmo_lab: OsmoLab, inspector: Inspector, tmp_path: Path
) -> None:
    lab = await osmo_lab(smpp_first=True)
    async with CtrlClient(lab.cfg.host, lab.hlr_ctrl) as ctrl:
        await provision(ctrl, [LabSubscriber(*ALICE), LabSubscriber(*BOB)])
    async with (
        forwarding_gateway(lab, inspector, tmp_path / "data") as (gateway, _, task),
        VirtualMme(lab.cfg.host, lab.cfg.sgs_port) as mme,
    ):
        handler = gateway.handlers[0]
        alice, bob = mme.phone(*ALICE), mme.phone(*BOB)
        assert (await alice.attach()).accepted and (await bob.attach()).accepted

        # Allowed: RP-ACK to Alice only after osmo-msc accepted the onward copy; Bob gets it
        # from Alice's number although it was the gateway that submitted it.
        [sent] = await alice.send_sms(BOB[1], HELLO, status_report=True)
        assert sent.ok, sent
        got = await bob.next_sms(10)
        assert got.text == HELLO and got.originator.lstrip("+") == ALICE[1]
        await eventually(lambda: handler.stats.receipts_matched == 1)

        # Blocked while enforcing: deliver_sm_resp 0x66 -> RP-ERROR cause 38, nothing onward.
        # Part 1 alone ("...по ссылке ka") is only flagged: acknowledged and held; the last
        # part completes the look-alike link and blocks the message, the held part with it.
        blocked = await alice.send_sms(BOB[1], FRAUD)
        assert [(r.outcome, r.rp_cause) for r in blocked] == [("ack", None)] * (
            len(blocked) - 1
        ) + [("error", 38)]

        # Three parts, each submitted onward with its UDH; Bob's phone joins them.
        long = await alice.send_sms(BOB[1], KAZAKH_LONG)
        assert [r.outcome for r in long] == ["ack"] * 3
        got = await bob.next_sms(10)
        assert got.text == KAZAKH_LONG and len(got.parts) == 3
        await eventually(lambda: handler.stats.receipts_matched == 4)

        with pytest.raises(TimeoutError):  # the blocked message never reached Bob
            await bob.next_sms(1.0)
        # smpp-first routes osmo-msc's status report to the ESME, not to Alice's phone
        with pytest.raises(TimeoutError):
            await alice.next_report(0.5)
        st = handler.stats  # a long SMS is decided part by part, held, forwarded whole
        assert (st.forwarded, st.forward_failed, st.rejected) == (2, 0, 1)
        assert st.held == 2 + len(blocked) - 1 and st.held_dropped == len(blocked) - 1
        # osmo-msc echoes 8 bits of user_message_reference; its ids never match
        assert handler.correlator.stats.matched_by_ref == 4
        assert handler.correlator.stats.matched_by_id == 0
    report = await task
    assert report.stats["osmo-msc"].receipts_unmatched == 0
    async with await Store.open(gateway.cfg.database_url) as store:
        rows = await store.deliveries()
    rows = sorted(rows, key=lambda r: r["submitted_at"])
    assert [(r["parts"], r["onward_status"], r["final_state"]) for r in rows] == [
        (1, "submitted", "delivered"),
        (3, "submitted", "delivered"),
    ]
    assert rows[0]["submit_ids"] == "msg_id_not_implemented"
    assert [r["receipt_requested"] for r in rows] == [True, False]
    receipt_ids = [i for r in rows for i in r["receipt_id"].split()]  # by part, space-separated
    assert len(receipt_ids) == 4 and len(set(receipt_ids)) == 4
    assert all(len(i) == 8 and i.isdigit() for i in receipt_ids)  # osmo-msc's database ids


async def test_onward_to_a_number_osmo_msc_does_not_know(
    osmo_lab: OsmoLab, inspector: Inspector, tmp_path: Path
) -> None:
    """osmo-msc stores a submit_sm to any number (store-and-forward mode): the sender gets RP-ACK
    and the delivery stays pending (no receipt)."""
    lab = await osmo_lab(smpp_first=True)
    async with CtrlClient(lab.cfg.host, lab.hlr_ctrl) as ctrl:
        await provision(ctrl, [LabSubscriber(*ALICE)])
    async with (
        forwarding_gateway(lab, inspector, tmp_path / "data") as (gateway, _, task),
        VirtualMme(lab.cfg.host, lab.cfg.sgs_port) as mme,
    ):
        alice = mme.phone(*ALICE)
        assert (await alice.attach()).accepted
        [sent] = await alice.send_sms("4900077", "Купи хлеб и молоко")
        assert sent.ok, sent
        assert gateway.handlers[0].stats.forwarded == 1
    await task
    async with await Store.open(gateway.cfg.database_url) as store:
        [row] = await store.deliveries()
    assert (row["onward_status"], row["final_state"]) == ("submitted", None)
