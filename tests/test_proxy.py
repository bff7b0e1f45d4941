"""The A2P proxy end to end (docs/proxy.md): aggregators bind to the gateway's [proxy] as to an
SMSC; every submit is inspected, answered with fraudgate's id, forwarded to the simulated SMSC
(the operator's), and its receipts come back with the id the aggregator knows."""

from __future__ import annotations

from pathlib import Path

from waiting import eventually

from smsc.constants import Status
from smsc.pdu import SubmitSm
from smsc.receipt import receipt_in
from smsc.text import split_for_sms
from tests.helpers.proxy_lab import KASPI_AGGR, proxy_lab

B = "77021234567"
HELLO = "Ваш заказ №5512 доставлен в пункт выдачи. Код получения 4471."


def submit(source: str, dest: str, text: str, *, ton: int = 5, receipt: int = 1) -> SubmitSm:
    coding, bodies = split_for_sms(text, ref=1)
    (body,) = bodies
    return SubmitSm(
        source_addr_ton=ton, source_addr_npi=0 if ton == 5 else 1, source_addr=source,
        dest_addr_ton=1, dest_addr_npi=1, destination_addr=dest,
        registered_delivery=receipt, data_coding=coding, short_message=body,
    )  # fmt: skip


async def test_a_submit_goes_to_the_smsc_and_its_receipt_comes_back_with_our_id(
    tmp_path: Path,
) -> None:
    async with proxy_lab(tmp_path) as lab:
        link, mine = await lab.aggregator()
        resp = await link.request(submit("SHOP", B, HELLO))
        assert resp.status == 0
        our_id = resp.message_id  # type: ignore[attr-defined]
        await eventually(lambda: len(lab.phones.received) == 1)
        assert lab.phones.received[0].destination_addr == B
        await eventually(lambda: len(mine.receipts()) == 1)
        receipt = receipt_in(mine.receipts()[0])
        assert receipt is not None and receipt.message_id == our_id and receipt.stat == "DELIVRD"
        assert lab.at_smsc == 1


async def test_a_spoofed_bank_sender_is_refused_and_never_reaches_the_smsc(
    tmp_path: Path,
) -> None:
    async with proxy_lab(tmp_path) as lab:
        link, _ = await lab.aggregator()
        resp = await link.request(submit("Kaspi.kz", B, HELLO))
        assert resp.status == Status.ESME_RINVSRCADR
        other, _ = await lab.aggregator(KASPI_AGGR)
        ok = await other.request(submit("Kaspi.kz", B, HELLO))
        assert ok.status == 0
        await eventually(lambda: len(lab.phones.received) == 1)
        assert lab.phones.received[0].source_addr == "Kaspi.kz"
        assert lab.at_smsc == 1
