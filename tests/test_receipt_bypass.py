"""A delivery receipt is a receipt only when it is one (issue: inspection bypass).

Before: any deliver_sm with esm_class bit 0x04 was answered 0 at once, never inspected,
recorded or alerted, even when enforcing: a smishing SMS submitted with esm_class 4 reached its
destination. Now esm_class is only a claim: the PDU must parse as an Appendix B receipt (and,
in forward mode, match a message sent onward), else it is inspected like any message.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness import gateway_config, send, smsc_config, start_gateway, submit

from gateway.store import Store
from smsc.constants import EsmClass, Status, Tag
from smsc.pdu import DeliverSm, SubmitSm, Tlv
from smsc.receipt import format_receipt, is_receipt_type, receipt_in
from smsc.simulator import SimulatedSmsc
from smsc.sms import SmsAssembler
from smsc.text import split_for_sms

SMISHING = "Ваша карта заблокирована! Назовите код из SMS оператору: +7 701 555 44 33"
KAZ_SMISHING = "Сіздің Kaspi картаңыз бұғатталды. kaspi-bank.kz-secure.com сілтемесіне өтіңіз"


def _receipt_pdu(
    body: bytes, esm_class: int = EsmClass.DELIVERY_RECEIPT, **kw: object
) -> DeliverSm:
    return DeliverSm(source_addr="77011112233", destination_addr="KASPI", esm_class=esm_class,
                     short_message=body, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_only_the_receipt_types_of_esm_class_claim_a_receipt() -> None:
    assert is_receipt_type(0x04) and is_receipt_type(0x44) and is_receipt_type(0x20)
    for esm in (0x00, 0x01, 0x03, 0x08, 0x0C, 0x14, 0x1C, 0x24, 0x40, 0x43):
        assert not is_receipt_type(esm), hex(esm)


def test_a_text_dressed_as_a_receipt_is_not_one() -> None:
    good = format_receipt("abc123", 2, 0, 1_700_000_000, 1_700_000_010, "hello")
    assert receipt_in(_receipt_pdu(good)) is not None
    assert receipt_in(_receipt_pdu(SMISHING.encode("utf-16-be"), data_coding=8)) is None
    assert receipt_in(_receipt_pdu(b"Your card is blocked, call +77015554433")) is None
    assert receipt_in(_receipt_pdu(b"id: stat:DELIVRD")) is None  # no message id
    assert receipt_in(_receipt_pdu(b"id:77 stat:HACKED")) is None  # no known state
    assert receipt_in(_receipt_pdu(good, esm_class=0x0C)) is None  # reserved type
    # the TLVs alone make a receipt (SMPP 3.4 §5.3.2.12 / §5.3.2.35)
    tlvs = [Tlv.of(Tag.RECEIPTED_MESSAGE_ID, "abc123"), Tlv.of(Tag.MESSAGE_STATE, 2)]
    assert receipt_in(_receipt_pdu(b"", tlvs=tlvs)) is not None


def test_a_false_receipt_is_decoded_with_its_data_coding_and_udh() -> None:
    """A UCS2 text with esm_class 0x44 (receipt + UDHI) is read as the UCS2 message it is."""
    coding, bodies = split_for_sms(KAZ_SMISHING * 2, ref=7)
    assert coding == 8 and len(bodies) > 1
    assembler = SmsAssembler()
    out = None
    for body in bodies:
        pdu = DeliverSm(source_addr="77011112233", destination_addr="77019998877",
                        esm_class=0x44, data_coding=8, short_message=body)  # fmt: skip
        out = assembler.feed(pdu, 0.0) or out
    assert out is not None and out.text == KAZ_SMISHING * 2 and out.complete


def _esm(pdus: list[SubmitSm], esm_class: int) -> list[SubmitSm]:
    for p in pdus:
        p.esm_class |= esm_class
    return pdus


async def test_smishing_with_esm_class_4_is_inspected_blocked_recorded(tmp_path: Path) -> None:
    async with SimulatedSmsc(smsc_config()) as smsc:
        gw = await start_gateway(gateway_config(smsc.port, tmp_path))
        fake = _esm(submit("77051234567", "77019998877", SMISHING), EsmClass.DELIVERY_RECEIPT)
        kaz = _esm(submit("77051234568", "77019998878", KAZ_SMISHING), 0x04)
        junk = _esm(submit("77051234569", "77019998879", "hello there"), 0x04)
        for pdus in (fake, kaz, junk):
            assert await send(smsc.port, "subs", pdus) == [0] * len(pdus)
        await asyncio.wait_for(smsc.wait_idle(), 20)
        await gw.finish()
        by_source = {i.sms.source: i for i in gw.inspected}
        stats = [h.stats for h in gw.gateway.handlers]
    parts = len(fake) + len(kaz) + len(junk)  # counted per deliver_sm
    assert sum(s.false_receipts for s in stats) == parts and sum(s.receipts for s in stats) == 0
    for source in ("77051234567", "77051234568"):
        verdict = by_source[source].verdict
        assert verdict.decision == "block", (source, verdict.rule_ids)
        assert "smpp.receipt_malformed" in verdict.rule_ids
    junk_verdict = by_source["77051234569"].verdict
    assert junk_verdict.decision == "flag" and junk_verdict.rule_ids == ["smpp.receipt_malformed"]
    # enforcing: the smishing never reached its destination
    rejected = [m for m in smsc.messages.values() if m.error == Status.ESME_RX_R_APPN]
    assert {m.source for m in rejected} == {"77051234567", "77051234568"}
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'fraudgate.db'}") as store:
        counts = await store.counts()
    assert counts["messages"] == 3 and counts["alerts_pending"] == 3


async def test_a_real_receipt_still_passes_uninspected(tmp_path: Path) -> None:
    async with SimulatedSmsc(smsc_config()) as smsc:
        gw = await start_gateway(gateway_config(smsc.port, tmp_path))
        receipt = format_receipt("feed01", 2, 0, 1_700_000_000, 1_700_000_005, "Код: 1234")
        pdu = SubmitSm(source_addr="77011112233", source_addr_ton=1, source_addr_npi=1,
                       destination_addr="77019990000", dest_addr_ton=1, dest_addr_npi=1,
                       esm_class=EsmClass.DELIVERY_RECEIPT, short_message=receipt)  # fmt: skip
        assert await send(smsc.port, "subs", [pdu]) == [0]
        await asyncio.wait_for(smsc.wait_idle(), 20)
        await gw.finish()
        stats = [h.stats for h in gw.gateway.handlers]
    assert sum(s.receipts for s in stats) == 1 and sum(s.false_receipts for s in stats) == 0
    assert gw.inspected == []
