"""From deliver_sm / data_sm / submit_sm PDUs to whole SMS: body extraction, UDH, reassembly, text.

`SmsAssembler.feed(pdu, now)` returns an `Sms` when a message is whole (a single part at once;
a concatenated one when its last part arrives), `handle_timer(now)` returns the groups whose time
limit passed, marked `complete=False`: every PDU fed comes out in exactly one `Sms.pdus`, so the
caller can answer every part and nothing is dropped. Concatenation is recognised from a UDH
(IEI 0x00 / 0x08, TS 23.040 §9.2.3.24.1 and .8) or from the sar_* TLVs (SMPP 3.4 §5.3.2.22-24);
a message_payload TLV (§5.3.2.32) replaces an empty short_message.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from smsc.concat import (
    Assembled,
    ConcatInfo,
    Reassembler,
    UdhError,
    concat_from_sar,
    concat_from_udh,
    parse_udh,
)
from smsc.constants import EsmClass, Tag
from smsc.pdu import DataSm, DeliverSm, Pdu, SubmitSm
from smsc.receipt import receipt_in
from smsc.text import DataCoding, decode_text

ShortMessagePdu = DeliverSm | SubmitSm | DataSm
_Token = tuple[ShortMessagePdu, list[str], str]  # the part's PDU, its errors, how it was split


@dataclass(slots=True)
class Sms:
    source: str
    source_ton: int
    source_npi: int
    dest: str
    dest_ton: int
    dest_npi: int
    data_coding: int
    esm_class: int
    text: str
    alphabet: str
    body: bytes  # user data of all parts joined, UDH removed
    pdus: list[Pdu]
    via: str = ""  # how it was split: "udh", "sar", "payload" or "" (one short_message)
    total: int = 1
    complete: bool = True
    missing: tuple[int, ...] = ()
    errors: list[str] = field(default_factory=list)

    @property
    def is_receipt(self) -> bool:
        """A delivery receipt: esm_class says so and the text parses as one (`receipt_in`)."""
        return bool(self.pdus) and receipt_in(self.pdus[0]) is not None


@dataclass(slots=True)
class _Part:
    body: bytes
    concat: ConcatInfo | None
    errors: list[str]
    via: str


def split_part(pdu: ShortMessagePdu) -> _Part:
    """The user data of one PDU and its concatenation info; problems become errors, not raises."""
    errors: list[str] = []
    body = b"" if isinstance(pdu, DataSm) else pdu.short_message
    payload = pdu.tlv_bytes(Tag.MESSAGE_PAYLOAD)
    via = ""
    if payload is not None:
        if body:
            errors.append("both short_message and message_payload present; payload used (§5.2.21)")
        body, via = payload, "payload"
    concat = None
    if pdu.esm_class & EsmClass.UDHI and receipt_in(pdu) is None:
        try:
            elements, body = parse_udh(body)
            concat = concat_from_udh(elements)
            via = "udh" if concat is not None else via
        except UdhError as exc:
            errors.append(f"broken UDH: {exc}")
    if concat is None:
        sar = (
            pdu.tlv_int(Tag.SAR_MSG_REF_NUM),
            pdu.tlv_int(Tag.SAR_TOTAL_SEGMENTS),
            pdu.tlv_int(Tag.SAR_SEGMENT_SEQNUM),
        )
        if any(v is not None for v in sar):
            concat = concat_from_sar(*sar)
            if concat is None:
                errors.append(f"unusable sar_* TLVs {sar}")
            else:
                via = "sar"
    return _Part(body, concat, errors, via)


class SmsAssembler:
    """Joins the parts of concatenated messages. `ia5_is_gsm`: the peer sends the GSM 03.38
    default alphabet (unpacked) labelled data_coding 1 (IA5), as osmo-msc 1.9 and node `smpp`
    do; decoded as GSM so '@', '_', '$', '£' and the extension table read right."""

    def __init__(
        self, *, timeout: float = 60.0, max_pending: int = 100_000, ia5_is_gsm: bool = False
    ) -> None:
        self._reassembler: Reassembler[_Token] = Reassembler(
            timeout=timeout, max_pending=max_pending
        )
        self.ia5_is_gsm = ia5_is_gsm

    def feed(self, pdu: ShortMessagePdu, now: float, scope: Hashable = "") -> Sms | None:
        """`scope` separates sources that may reuse references (e.g. the bind it came on)."""
        part = split_part(pdu)
        if part.concat is None or part.concat.total == 1:
            return _sms(pdu, part.body, [pdu], part.errors, part.via, self.ia5_is_gsm)
        key = (scope, pdu.source_addr, pdu.destination_addr)
        token = (pdu, part.errors, part.via)
        done = self._reassembler.add(key, part.concat, part.body, token, now)
        return None if done is None else _from_group(done, self.ia5_is_gsm)

    def handle_timer(self, now: float) -> list[Sms]:
        return [_from_group(g, self.ia5_is_gsm) for g in self._reassembler.handle_timer(now)]

    def next_deadline(self) -> float | None:
        return self._reassembler.next_deadline()

    @property
    def pending(self) -> int:
        return self._reassembler.pending_count


def _from_group(group: Assembled[_Token], ia5_is_gsm: bool = False) -> Sms:
    pdus = [pdu for pdu, _, _ in group.tokens]
    errors = [e for _, errs, _ in group.tokens for e in errs]
    if not group.complete:
        errors.append(
            f"incomplete: {group.parts_received}/{group.total} parts, missing {list(group.missing)}"
        )
    first, _, via = group.tokens[0]
    sms = _sms(first, group.payload, list(pdus), errors, via, ia5_is_gsm)
    sms.total, sms.complete, sms.missing = group.total, group.complete, group.missing
    return sms


def part_as_sms(pdu: ShortMessagePdu, part: _Part, ia5_is_gsm: bool = False) -> Sms:
    """One part (from `split_part`) on its own as an Sms, its own text decoded."""
    return _sms(pdu, part.body, [pdu], part.errors, part.via, ia5_is_gsm)


def text_coding(data_coding: int, ia5_is_gsm: bool) -> int:
    """The data_coding to decode with: IA5 (1) read as the GSM default alphabet (0) for peers
    that label GSM text that way."""
    return DataCoding.DEFAULT if ia5_is_gsm and data_coding == DataCoding.IA5 else data_coding


def _sms(
    pdu: ShortMessagePdu,
    body: bytes,
    pdus: list[Pdu],
    errors: list[str],
    via: str,
    ia5_is_gsm: bool = False,
) -> Sms:
    if receipt_in(pdu) is not None:  # Appendix B text is ASCII whatever the coding
        decoded = decode_text(body, 1)
    else:
        decoded = decode_text(body, text_coding(pdu.data_coding, ia5_is_gsm))
    return Sms(
        source=pdu.source_addr,
        source_ton=pdu.source_addr_ton,
        source_npi=pdu.source_addr_npi,
        dest=pdu.destination_addr,
        dest_ton=pdu.dest_addr_ton,
        dest_npi=pdu.dest_addr_npi,
        data_coding=pdu.data_coding,
        esm_class=pdu.esm_class,
        text=decoded.text,
        alphabet=decoded.alphabet,
        body=body,
        pdus=pdus,
        via=via,
        errors=[*errors, *decoded.errors],
    )
