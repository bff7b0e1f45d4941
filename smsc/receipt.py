"""Delivery receipts: the SMPP 3.4 Appendix B text and the receipted_message_id / message_state
TLVs (§5.3.2.12, §5.3.2.35). Parsed leniently (SMSCs vary in case, order and missing fields) and
written exactly as Appendix B shows by the simulated SMSC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from smsc.constants import EsmClass, MessageState, Tag
from smsc.pdu import Pdu

# esm_class message types (bits 2-5, SMPP 3.4 §5.2.12) that carry a receipt rather than a
# message: SMSC Delivery Receipt (xx0001xx) and Intermediate Delivery Notification (xx1000xx).
# Other values with bit 2 set (xx0011xx, xx0101xx...) are reserved: NOT receipts.
RECEIPT_TYPES = frozenset({EsmClass.DELIVERY_RECEIPT, 0x20})
# The stat values of Appendix B (and the message_state names of §5.2.28).
RECEIPT_STATS = frozenset(
    {"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "ENROUTE"}
)


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """A delivery receipt, from the SMPP 3.4 Appendix B text and the receipted_message_id /
    message_state TLVs (the TLVs win when both are present). Fields missing are ""."""

    message_id: str
    stat: str
    err: str = ""
    sub: str = ""
    dlvrd: str = ""
    submit_date: str = ""
    done_date: str = ""
    text: str = ""
    message_state: int | None = None


_RECEIPT_KEYS = re.compile(r"\b(id|sub|dlvrd|submit date|done date|stat|err|text):", re.IGNORECASE)
_MESSAGE_STATES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV",
                   6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD"}  # fmt: skip


def parse_receipt(body: str, pdu: Pdu | None = None) -> DeliveryReceipt:
    """Parse 'id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:... stat:DDDDDDD err:E
    text:...' leniently (any order, any case, missing fields)."""
    fields: dict[str, str] = {}
    matches = list(_RECEIPT_KEYS.finditer(body))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        key = m.group(1).lower().replace(" ", "_")
        if key not in fields:
            fields[key] = body[m.end() : end].strip() if key != "text" else body[m.end() : end]
    message_id = fields.get("id", "")
    state: int | None = None
    if pdu is not None:
        message_id = pdu.tlv_str(Tag.RECEIPTED_MESSAGE_ID) or message_id
        state = pdu.tlv_int(Tag.MESSAGE_STATE)
    stat = fields.get("stat", "")
    if not stat and state is not None:
        stat = _MESSAGE_STATES.get(state, str(state))
    return DeliveryReceipt(
        message_id=message_id,
        stat=stat,
        err=fields.get("err", ""),
        sub=fields.get("sub", ""),
        dlvrd=fields.get("dlvrd", ""),
        submit_date=fields.get("submit_date", ""),
        done_date=fields.get("done_date", ""),
        text=fields.get("text", ""),
        message_state=state,
    )


def is_receipt_type(esm_class: int) -> bool:
    """esm_class says "delivery receipt" (or intermediate notification). Only a claim: a peer
    can set these bits on any text, so `receipt_in` decides whether the PDU really is one."""
    return esm_class & EsmClass.TYPE_MASK in RECEIPT_TYPES


def receipt_in(pdu: Pdu) -> DeliveryReceipt | None:
    """The receipt a deliver_sm / data_sm carries, or None when it is not one: esm_class must
    say receipt AND the PDU must parse as one: a message id (receipted_message_id or the
    text's `id:`) and a known state (`stat:` of Appendix B or a message_state TLV 1-8).
    A smishing text sent with esm_class 0x04 is not a receipt and must be inspected."""
    if not is_receipt_type(getattr(pdu, "esm_class", 0)):
        return None
    body = pdu.tlv_bytes(Tag.MESSAGE_PAYLOAD)
    if body is None:
        body = getattr(pdu, "short_message", b"")
    if len(body) > 512 or not body.isascii():  # Appendix B text is short ASCII
        return None
    receipt = parse_receipt(body.decode("ascii"), pdu)
    state_ok = receipt.message_state is not None and 1 <= receipt.message_state <= 8
    stat_ok = receipt.stat.upper() in RECEIPT_STATS
    id_ok = 0 < len(receipt.message_id) <= 65 and receipt.message_id.isprintable()
    return receipt if id_ok and (stat_ok or state_ok) else None


STAT_OF_STATE: dict[int, str] = {
    MessageState.DELIVERED: "DELIVRD",
    MessageState.EXPIRED: "EXPIRED",
    MessageState.DELETED: "DELETED",
    MessageState.UNDELIVERABLE: "UNDELIV",
    MessageState.REJECTED: "REJECTD",
}


def format_receipt(
    message_id: str,
    state: int,
    error: int,
    submitted_at: float,
    done_at: float,
    text: str,
) -> bytes:
    """'id:… sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:… stat:DELIVRD err:000 text:…'
    with the first 20 characters of the original message's decoded text."""
    stat = STAT_OF_STATE.get(state, "UNKNOWN")
    delivered = "001" if state == MessageState.DELIVERED else "000"
    return (
        f"id:{message_id} sub:001 dlvrd:{delivered} submit date:{_stamp(submitted_at)} "
        f"done date:{_stamp(done_at)} stat:{stat} err:{error & 0xFFF:03d} "
        f"text:{text[:20]}"
    ).encode("ascii", "replace")  # Appendix B text is ASCII: a Cyrillic original shows as '?'


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%y%m%d%H%M")
