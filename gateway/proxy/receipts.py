"""Receipts between the SMSC's ids and the aggregators' (sans-I/O, docs/proxy.md "Ids").

The aggregator was answered fraudgate's id for its submit (the SMSC's comes later, or never
from an SMSC like osmo-msc that answers a constant). A receipt from the SMSC is rewritten
before it goes to the aggregator: the `id:` of its Appendix B text and its receipted_message_id
TLV become the id the aggregator knows; everything else passes as the SMSC wrote it. A submit
the SMSC refused for good (or fraudgate gave up on) gets a receipt made here, REJECTD or
UNDELIV with the SMSC's status as err, when the aggregator asked for one."""

from __future__ import annotations

import re
import time

from smsc.constants import EsmClass, MessageState, Tag
from smsc.pdu import DataSm, DeliverSm, Pdu, SubmitMulti, SubmitSm, Tlv
from smsc.receipt import DeliveryReceipt, format_receipt
from smsc.sms import part_as_sms, split_part

_ID_IN_TEXT = re.compile(rb"(?i)\bid:([^ ]*)")
_FINAL_STATS = {
    "DELIVRD": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED,
    "DELETED": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "REJECTD": MessageState.REJECTED,
    "UNKNOWN": MessageState.UNKNOWN,
}
_FINAL_STATES = frozenset(_FINAL_STATS.values())


def final_receipt_state(receipt: DeliveryReceipt) -> MessageState | None:
    """The final state a receipt reports (its message_state TLV, else its stat), None for an
    intermediate one (ENROUTE, ACCEPTD)."""
    if receipt.message_state is not None and receipt.message_state in _FINAL_STATES:
        return MessageState(receipt.message_state)
    return _FINAL_STATS.get(receipt.stat.upper())


def rewrite_receipt(pdu: DeliverSm | DataSm, our_id: str) -> DeliverSm | DataSm:
    """The SMSC's receipt with the aggregator's id in place of the SMSC's (a new PDU)."""
    out: DeliverSm | DataSm
    if isinstance(pdu, DeliverSm):
        out = DeliverSm(
            service_type=pdu.service_type,
            source_addr_ton=pdu.source_addr_ton, source_addr_npi=pdu.source_addr_npi,
            source_addr=pdu.source_addr, dest_addr_ton=pdu.dest_addr_ton,
            dest_addr_npi=pdu.dest_addr_npi, destination_addr=pdu.destination_addr,
            esm_class=pdu.esm_class, protocol_id=pdu.protocol_id,
            priority_flag=pdu.priority_flag, registered_delivery=0,
            data_coding=pdu.data_coding,
            short_message=_ID_IN_TEXT.sub(b"id:" + our_id.encode("ascii"), pdu.short_message, 1),
            tlvs=list(pdu.tlvs),
        )  # fmt: skip
    else:
        out = DataSm(
            service_type=pdu.service_type,
            source_addr_ton=pdu.source_addr_ton, source_addr_npi=pdu.source_addr_npi,
            source_addr=pdu.source_addr, dest_addr_ton=pdu.dest_addr_ton,
            dest_addr_npi=pdu.dest_addr_npi, destination_addr=pdu.destination_addr,
            esm_class=pdu.esm_class, registered_delivery=0, data_coding=pdu.data_coding,
            tlvs=list(pdu.tlvs),
        )  # fmt: skip
    payload = out.tlv_bytes(Tag.MESSAGE_PAYLOAD)
    if payload is not None:
        out.set_tlv(Tag.MESSAGE_PAYLOAD, _ID_IN_TEXT.sub(b"id:" + our_id.encode(), payload, 1))
    if out.tlv(Tag.RECEIPTED_MESSAGE_ID) is not None:
        out.set_tlv(Tag.RECEIPTED_MESSAGE_ID, our_id)
    return out


def wanted(registered_delivery: int, receipt: DeliveryReceipt) -> bool:
    """Whether the aggregator asked for this receipt (§5.2.17 bits 0-1: 1 = on final outcome,
    2 = on failure only; bit 4 = intermediate notifications)."""
    state = final_receipt_state(receipt)
    asked = registered_delivery & 0x03
    if state is None:  # intermediate (ENROUTE, ACCEPTD...)
        return bool(registered_delivery & 0x10)
    if asked == 1:
        return True
    return asked == 2 and state != MessageState.DELIVERED


def made_receipt(
    submit: Pdu, our_id: str, state: MessageState, error: int, submitted_at: float
) -> DeliverSm:
    """A receipt fraudgate writes itself for a submit that never reached a destination."""
    source, dest, ton, npi, dton, dnpi = _addresses(submit)
    text = ""
    if isinstance(submit, SubmitSm | DataSm):
        text = part_as_sms(submit, split_part(submit)).text
    body = format_receipt(our_id, state, error, submitted_at, time.time(), text)
    return DeliverSm(
        source_addr_ton=dton, source_addr_npi=dnpi, source_addr=dest,
        dest_addr_ton=ton, dest_addr_npi=npi, destination_addr=source,
        esm_class=EsmClass.DELIVERY_RECEIPT, short_message=body,
        tlvs=[Tlv.of(Tag.RECEIPTED_MESSAGE_ID, our_id), Tlv.of(Tag.MESSAGE_STATE, int(state))],
    )  # fmt: skip


def _addresses(pdu: Pdu) -> tuple[str, str, int, int, int, int]:
    if isinstance(pdu, SubmitMulti):
        first = next((d for d in pdu.dest_addresses if hasattr(d, "address")), None)
        dest = getattr(first, "address", "")
        return (pdu.source_addr, dest, pdu.source_addr_ton, pdu.source_addr_npi,
                getattr(first, "ton", 0), getattr(first, "npi", 0))  # fmt: skip
    return (
        getattr(pdu, "source_addr", ""), getattr(pdu, "destination_addr", ""),
        getattr(pdu, "source_addr_ton", 0), getattr(pdu, "source_addr_npi", 0),
        getattr(pdu, "dest_addr_ton", 0), getattr(pdu, "dest_addr_npi", 0),
    )  # fmt: skip


def pair_of(pdu: Pdu) -> tuple[str, str]:
    """(source, first destination) of a submit: what its receipts come back between."""
    source, dest, *_ = _addresses(pdu)
    return source, dest
