"""Stable ids for what the SMSC hands over, so that a redelivered SMS is recorded once and
alerted once.

An SMSC redelivers a deliver_sm it has not seen acknowledged: after a gateway crash, a cut link,
a response that came too late, a database that answered 0x14. A fresh random id per delivery
recorded such a message again, with new alert ids consumers could not de-duplicate (5-12
duplicates after each kill or cut, 100 after a database freeze). Here the id is derived from
what the SMSC sends, so the second delivery has the first one's id and `Store.record` skips it
(with its alerts and complaint: their ids derive from the message id too).

The key (`message_key`): the SMSC account the message came through (`scope`: two gateway nodes
bound to one account share it, so a message redelivered to the other node is still the same),
and for every part in order: command, source and destination (TON, NPI, address), esm_class,
protocol_id, priority, data_coding, service_type, schedule_delivery_time, validity_period,
the short_message bytes (the UDH with its concatenation reference included) and the TLVs that
carry content or identity (message_payload, sar_*, user_message_reference, source_port,
destination_port, receipted_message_id, message_state). The sequence number is not in it: an
SMSC resends with a new one.

The redelivery window (`window`, seconds, default 600): ids are time-bucketed. A message's id
is made of the start of its bucket (48 bits of milliseconds, so ids still sort by time and the
database appends to its index) and 74 bits of the key's hash; `prior` is the id the same
message had in the previous bucket. A message is a redelivery when a message with its id or its
prior id is recorded: every redelivery within `window` seconds of the first delivery is caught
(redeliveries up to 2 x window may be).

The limit, by design: two genuinely identical messages (same account, addresses, text, UDH
reference) within the window are one message. Phones vary the UDH reference and SMSCs number
receipts, so identical texts from one person to one person within minutes are what this merges
(a repeated "ok" to the same number), and their verdict would be the same.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from typing import Final

from gateway.pipeline.delivery import ONWARD_TLVS
from smsc.constants import Tag
from smsc.pdu import Pdu, SubmitMulti, SubmitSm

DEFAULT_WINDOW: Final = 600.0
# what identifies a message beyond its fields: the TLVs carried onward, and a receipt's own
_KEYED_TLVS: Final = ONWARD_TLVS | {Tag.RECEIPTED_MESSAGE_ID, Tag.MESSAGE_STATE}
_FIELDS: Final = (
    "service_type",
    "source_addr_ton",
    "source_addr_npi",
    "source_addr",
    "dest_addr_ton",
    "dest_addr_npi",
    "destination_addr",
    "esm_class",
    "protocol_id",
    "priority_flag",
    "schedule_delivery_time",
    "validity_period",
    "data_coding",
)


def message_key(pdus: Iterable[Pdu], scope: str) -> bytes:
    """16 bytes identifying a message as the SMSC delivered it (see the module's docstring)."""
    parts: list[bytes] = [scope.encode("utf-8", "surrogatepass")]
    for pdu in pdus:
        fields = tuple(getattr(pdu, name, None) for name in _FIELDS)
        parts.append(b"\x00%d\x01" % pdu.command_id + repr(fields).encode("utf-8", "replace"))
        if isinstance(pdu, SubmitMulti | SubmitSm):  # the A2P proxy's: a list of addresses,
            more = (getattr(pdu, "dest_addresses", None), pdu.sm_default_msg_id)  # a canned text
            parts.append(b"\x04" + repr(more).encode("utf-8", "replace"))
        parts.append(b"\x02" + getattr(pdu, "short_message", b""))
        for tlv in pdu.tlvs:
            if tlv.tag in _KEYED_TLVS:
                parts.append(b"\x03%d:" % tlv.tag + tlv.value)
    # one hash call over the joined fields: cheaper than an update per field
    return hashlib.blake2b(b"".join(parts), digest_size=16, person=b"fraudgate-msg").digest()


def _bucket_id(key: bytes, bucket: int, window: float) -> str:
    ms = int(bucket * window * 1000) & 0xFFFF_FFFF_FFFF
    tail = int.from_bytes(key[:10], "big") & ((1 << 76) - 1)
    # 48 bits of time, version nibble 8 (RFC 9562 "custom"), 76 bits of the key's hash
    return f"{ms:012x}8{tail:019x}"


def stable_ids(key: bytes, at: float, window: float = DEFAULT_WINDOW) -> tuple[str, str]:
    """(the message's id, the id it had in the previous window bucket)."""
    bucket = math.floor(at / window)
    return _bucket_id(key, bucket, window), _bucket_id(key, bucket - 1, window)


def derived_id(parent: str, label: str) -> str:
    """An id that follows from another record's id: a message's alerts and complaint, so that a
    redelivered message's second inspection produces the same alert ids (consumers de-duplicate
    by them, and the outbox keeps one row)."""
    digest = hashlib.blake2b(f"{parent}/{label}".encode(), digest_size=16).hexdigest()
    return parent[:12] + "8" + digest[:19]
