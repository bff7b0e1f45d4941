"""The receipt correlator and the onward submit_sm (gateway/pipeline/delivery.py), without I/O."""

from __future__ import annotations

import pytest

from gateway.pipeline.delivery import (
    DeliveryState,
    Outcome,
    ReceiptCorrelator,
    final_state,
    onward_submit,
    receipt_wanted,
    reference_of,
)
from smsc.constants import Tag
from smsc.pdu import DataSm, DeliverSm, Pdu, Tlv
from smsc.receipt import DeliveryReceipt, parse_receipt, receipt_in

A, B, C = "77011234567", "77021234567", "77771234567"
OSMO = "msg_id_not_implemented"


def osmo_receipt(db_id: int, stat: str = "DELIVRD") -> DeliveryReceipt:
    """The text osmo-msc 1.9 writes (gsm_04_11.c sms_report_alloc), ids zero-padded to 8."""
    return parse_receipt(
        f"id:{db_id:08d} sub:000 dlvrd:000 submit date:YYMMDDhhmm done date:YYMMDDhhmm "
        f"stat:{stat} err:000 text:Сәлем"
    )


def reg(c: ReceiptCorrelator, message_id: str, source: str, dest: str, ids: list[str],
        now: float) -> list[Outcome]:  # fmt: skip
    """Register a message and the submit_sm_resp ids of its parts, as the handler does."""
    out = c.register(message_id, source, dest, len(ids), now)
    for part, submit_id in enumerate(ids):
        c.submitted(message_id, part, submit_id)
    return out


def test_a_receipt_with_an_unrelated_id_goes_to_the_oldest_message_of_its_pair() -> None:
    c = ReceiptCorrelator()
    reg(c, "m1", A, B, [OSMO], 0.0)
    reg(c, "m2", A, C, [OSMO], 1.0)
    reg(c, "m3", A, B, [OSMO], 2.0)
    # the receipt comes FROM the original destination TO the original source
    first = c.match(B, A, osmo_receipt(17), 3.0)
    assert first is not None and first.matched_by == "pair"
    assert first.outcome is not None and first.outcome.message_id == "m1"
    assert first.outcome.state is DeliveryState.DELIVERED
    assert first.outcome.receipt_ids == ("00000017",)
    second = c.match(B, A, osmo_receipt(19, "UNDELIV"), 4.0)
    assert second is not None and second.outcome is not None
    assert (second.outcome.message_id, second.outcome.state) == ("m3", DeliveryState.UNDELIVERABLE)
    assert c.match(B, A, osmo_receipt(20), 5.0) is None  # nothing left for that pair
    assert c.match(A, B, osmo_receipt(21), 5.0) is None  # the reverse direction is another pair
    assert c.stats.unmatched == 2 and len(c) == 1  # m2 still pending


def test_a_constant_submit_id_is_never_used_to_match() -> None:
    c = ReceiptCorrelator()
    reg(c, "m1", A, B, [OSMO], 0.0)
    reg(c, "m2", A, C, [OSMO], 0.0)
    # a receipt quoting the constant id would hit m2 (the last registered) if ids were trusted
    m = c.match(B, A, DeliveryReceipt(OSMO, "DELIVRD"), 1.0)
    assert m is not None and m.message_id == "m1" and m.matched_by == "pair"


def test_a_well_behaved_smsc_is_matched_by_id_across_pairs_and_out_of_order() -> None:
    c = ReceiptCorrelator()
    reg(c, "m1", A, B, ["0A"], 0.0)
    reg(c, "m2", A, B, ["0B"], 0.0)
    m = c.match("+" + B, A, DeliveryReceipt("0B", "DELIVRD"), 1.0)  # '+' is not significant
    assert m is not None and m.matched_by == "id" and m.message_id == "m2"
    # the next receipt of the pair without a usable id now goes to m1 (m2 left the queue)
    m = c.match(B, A, DeliveryReceipt("", "EXPIRED"), 1.0)
    assert m is not None and m.outcome is not None
    assert (m.message_id, m.outcome.state) == ("m1", DeliveryState.EXPIRED)
    assert c.stats.matched_by_id == 1 and c.stats.matched_by_pair == 1


def test_a_multipart_message_is_delivered_when_all_its_parts_are() -> None:
    c = ReceiptCorrelator()
    reg(c, "m1", A, B, ["1", "2", "3"], 0.0)
    r1 = c.match(B, A, DeliveryReceipt("1", "DELIVRD"), 1.0)
    r3 = c.match(B, A, DeliveryReceipt("3", "DELIVRD"), 1.0)
    assert r1 is not None and r1.outcome is None and r1.state is DeliveryState.DELIVERED
    assert r3 is not None and r3.outcome is None and r3.part == 2
    r2 = c.match(B, A, DeliveryReceipt("2", "DELIVRD"), 1.0)
    assert r2 is not None and r2.outcome is not None
    assert r2.outcome.state is DeliveryState.DELIVERED and r2.outcome.parts == 3
    assert r2.outcome.receipt_ids == ("1", "2", "3") and len(c) == 0


def test_one_failed_part_makes_the_message_undelivered() -> None:
    c = ReceiptCorrelator()
    reg(c, "m1", A, B, [OSMO, OSMO], 0.0)
    assert c.match(B, A, osmo_receipt(1, "REJECTD"), 1.0) is not None
    m = c.match(B, A, osmo_receipt(2), 1.0)
    assert m is not None and m.outcome is not None
    assert m.outcome.state is DeliveryState.REJECTED


def test_an_enroute_receipt_keeps_the_part_pending() -> None:
    c = ReceiptCorrelator()
    reg(c, "m1", A, B, [OSMO], 0.0)
    m = c.match(B, A, osmo_receipt(1, "ENROUTE"), 1.0)
    assert m is not None and m.state is None and m.outcome is None and len(c) == 1
    m = c.match(B, A, osmo_receipt(1), 2.0)
    assert m is not None and m.outcome is not None and len(c) == 0


def test_entries_expire_after_the_ttl_as_unknown() -> None:
    c = ReceiptCorrelator(ttl=100.0)
    reg(c, "m1", A, B, [OSMO, OSMO], 0.0)
    assert c.match(B, A, osmo_receipt(1), 10.0) is not None  # one part delivered
    reg(c, "m2", A, C, [OSMO], 50.0)
    assert c.handle_timer(100.0) == []
    (out,) = c.handle_timer(101.0)
    assert (out.message_id, out.state, out.matched_by) == ("m1", DeliveryState.UNKNOWN, "expiry")
    assert out.receipt_ids == ("00000001", "")
    assert c.match(B, A, osmo_receipt(2), 102.0) is None  # too late: counted unmatched
    assert [o.message_id for o in c.handle_timer(151.0)] == ["m2"]
    assert len(c) == 0 and c.stats.expired == 2


def test_memory_is_bounded_by_evicting_the_oldest() -> None:
    c = ReceiptCorrelator(max_pending=1000)
    evicted = []
    for i in range(5000):
        evicted += reg(c, f"m{i}", A, f"7700{i:07d}", [OSMO], float(i))
    assert len(c) == 1000 and c.stats.evicted == 4000
    assert [o.message_id for o in evicted[:2]] == ["m0", "m1"]
    assert all(o.state is DeliveryState.UNKNOWN for o in evicted)
    assert len(c._by_pair) == 1000 and len(c._order) <= 2000
    # matched entries in the middle of the order do not pile up either
    for i in range(4000, 5000, 2):
        assert c.match(f"7700{i:07d}", A, osmo_receipt(i), 5000.0) is not None
    for i in range(5000, 9000):
        reg(c, f"m{i}", A, f"7700{i:07d}", [OSMO], float(i))
    assert len(c) == 1000 and len(c._order) <= 2 * 1000 + 1


@pytest.mark.parametrize(
    ("stat", "state"),
    [("DELIVRD", DeliveryState.DELIVERED), ("UNDELIV", DeliveryState.UNDELIVERABLE),
     ("EXPIRED", DeliveryState.EXPIRED), ("REJECTD", DeliveryState.REJECTED),
     ("DELETED", DeliveryState.UNDELIVERABLE), ("UNKNOWN", DeliveryState.UNKNOWN),
     ("delivrd", DeliveryState.DELIVERED), ("ENROUTE", None), ("", None),
     ("WHATEVER", DeliveryState.UNKNOWN)],
)  # fmt: skip
def test_receipt_stat_values(stat: str, state: DeliveryState | None) -> None:
    assert final_state(stat) is state


def test_the_onward_submit_keeps_addresses_coding_text_and_the_udhi_bit() -> None:
    udh = bytes([5, 0, 3, 0x2A, 2, 1])
    text = "Сәлем, кешке кездесеміз бе?".encode("utf-16-be")
    mo = DeliverSm(
        service_type="CMT", source_addr_ton=3, source_addr_npi=1, source_addr=A,
        dest_addr_ton=1, dest_addr_npi=1, destination_addr=B, esm_class=0x41,
        protocol_id=0x7F, data_coding=8, registered_delivery=1, short_message=udh + text,
        tlvs=[Tlv.of(Tag.USER_MESSAGE_REFERENCE, 7), Tlv.of(0x1403, b"\x01")],  # + an osmo TLV
    )  # fmt: skip
    sub = onward_submit(mo)
    assert (sub.source_addr_ton, sub.source_addr_npi, sub.source_addr) == (3, 1, A)
    assert (sub.dest_addr_ton, sub.dest_addr_npi, sub.destination_addr) == (1, 1, B)
    assert sub.esm_class == 0x40  # UDHI kept, the datagram mode bit (0x01) cleared
    assert (sub.protocol_id, sub.data_coding, sub.short_message) == (0x7F, 8, udh + text)
    assert sub.registered_delivery == 1 and sub.service_type == ""
    assert [t.tag for t in sub.tlvs] == [Tag.USER_MESSAGE_REFERENCE]
    assert receipt_wanted([mo]) and not receipt_wanted([DeliverSm()])
    assert sub.encode()  # encodable as it is


def test_a_data_sm_goes_onward_with_its_payload() -> None:
    payload = ("Ертең сағат 10-да жиналыс. " * 12).encode("utf-16-be")
    mo = DataSm(source_addr=A, destination_addr=B, data_coding=8, esm_class=0x00,
                tlvs=[Tlv.of(Tag.MESSAGE_PAYLOAD, payload)])  # fmt: skip
    sub = onward_submit(mo)
    assert sub.short_message == b"" and sub.tlv_bytes(Tag.MESSAGE_PAYLOAD) == payload
    assert len(sub.encode()) > 255


def test_receipt_text_in_the_payload_or_the_short_message() -> None:
    body = b"id:00000042 sub:000 dlvrd:000 stat:DELIVRD err:000 text:x"
    pdus: list[Pdu] = [
        DeliverSm(esm_class=4, short_message=body),
        DataSm(esm_class=4, tlvs=[Tlv.of(Tag.MESSAGE_PAYLOAD, body)]),
    ]
    for pdu in pdus:
        r = receipt_in(pdu)
        assert r is not None and (r.message_id, r.stat) == ("00000042", "DELIVRD")


def test_a_receipt_read_before_the_submit_resp_is_matched_by_pair() -> None:
    c = ReceiptCorrelator()
    c.register("m1", A, B, 2, 0.0)  # before the first submit_sm goes out
    m = c.match(B, A, DeliveryReceipt("X1", "DELIVRD"), 0.1)  # the resp is not processed yet
    assert m is not None and (m.message_id, m.part, m.matched_by) == ("m1", 0, "pair")
    c.submitted("m1", 0, "X1")  # too late for this part: nothing changes
    c.submitted("m1", 1, "X2")
    m = c.match("7000", "7000", DeliveryReceipt("X2", "DELIVRD"), 0.2)  # by id, any addresses
    assert m is not None and m.outcome is not None and m.outcome.parts == 2


def test_a_cancelled_message_leaves_nothing_behind() -> None:
    c = ReceiptCorrelator()
    c.register("m1", A, B, 3, 0.0)
    c.submitted("m1", 0, "X1")
    c.cancel("m1")  # part 2 refused onward
    assert len(c) == 0 and not c._by_pair and not c._by_id and not c._tracks
    assert c.match(B, A, DeliveryReceipt("X1", "DELIVRD"), 1.0) is None
    assert c.handle_timer(1e9) == []


def test_parts_accepted_before_a_failure_keep_their_receipts() -> None:
    """X's part 0 was accepted, part 1 refused: X's part-0 receipt must not be taken for the
    next message between the same numbers (Y)."""
    c = ReceiptCorrelator()
    c.register("X", A, B, 2, 0.0)
    c.submitted("X", 0, OSMO)
    c.cancel("X", from_part=1)
    assert len(c) == 1
    reg(c, "Y", A, B, [OSMO], 1.0)
    first = c.match(B, A, osmo_receipt(5, "UNDELIV"), 2.0)
    assert first is not None and first.message_id == "X"
    assert first.outcome is not None and first.outcome.parts == 2  # what was sent of X
    second = c.match(B, A, osmo_receipt(6), 3.0)
    assert second is not None and second.outcome is not None
    assert (second.outcome.message_id, second.outcome.state) == ("Y", DeliveryState.DELIVERED)
    c.register("Z", A, C, 2, 4.0)
    c.cancel("Z")  # nothing reached the SMSC: all forgotten
    assert len(c) == 0 and c.match(C, A, osmo_receipt(7), 5.0) is None


def test_osmo_msc_receipts_are_matched_by_their_reference_within_the_pair() -> None:
    """osmo-msc echoes the low 8 bits of the onward submit's user_message_reference: a message
    it never delivers (no receipt ever) no longer takes the receipt of the next one."""
    c = ReceiptCorrelator()
    c.register("lost", A, B, 1, 0.0, refs=[0x0105])  # never delivered: no receipt will come
    c.register("next", A, B, 1, 1.0, refs=[0x0106])
    first = c.match(B, A, osmo_receipt(9), 2.0, ref=0x06)
    assert first is not None and (first.message_id, first.matched_by) == ("next", "reference")
    # without a reference (another SMSC) the oldest of the pair is taken, as before
    c.register("later", A, B, 1, 3.0)
    second = c.match(B, A, osmo_receipt(10), 4.0)
    assert second is not None and (second.message_id, second.matched_by) == ("lost", "pair")
    # a reference that matches nothing pending falls back to the pair's oldest
    third = c.match(B, A, osmo_receipt(11), 5.0, ref=0x77)
    assert third is not None and third.message_id == "later"
    assert (c.stats.matched_by_ref, c.stats.matched_by_pair) == (1, 2)


def test_the_reference_tlv_is_read_from_the_pdu() -> None:
    pdu = DeliverSm(tlvs=[Tlv(Tag.USER_MESSAGE_REFERENCE, (0x1234).to_bytes(2, "big"))])
    assert reference_of(pdu) == 0x1234
    assert reference_of(DeliverSm()) is None
    assert reference_of(DeliverSm(tlvs=[Tlv(Tag.USER_MESSAGE_REFERENCE, b"\x01\x02\x03")])) is None
