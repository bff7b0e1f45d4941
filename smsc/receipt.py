"""Delivery receipts: the SMPP 3.4 Appendix B text and the receipted_message_id / message_state
TLVs (§5.3.2.12, §5.3.2.35). Parsed leniently (SMSCs vary in case, order and missing fields) and
written exactly as Appendix B shows by the simulated SMSC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from smsc.constants import MessageState, Tag
from smsc.pdu import Pdu


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
