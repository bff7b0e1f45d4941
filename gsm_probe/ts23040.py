"""SMS transfer-layer PDUs (3GPP TS 23.040 §9.2), sans-I/O: bytes in, dataclasses out, and back.

What the AT layer carries in PDU mode (TS 27.005 §3.1 <pdu>) is the SMSC address (the RP
address of TS 24.011 §8.2.5.1: a length in octets, 00 for "the SIM's default") followed by the
TPDU. The decoders read that prefix when ``with_smsc`` is true (the default: +CMT, +CMGR, +CMGL,
AT+CMGS), the encoders always write it.

Covered: SMS-DELIVER (§9.2.2.1), SMS-SUBMIT (§9.2.2.2), SMS-STATUS-REPORT (§9.2.2.3);
addresses (§9.1.2.5: BCD with '*', '#', 'a'-'c' and the F filler, alphanumeric TON 5 packed in
7 bits); TP-SCTS with its quarter-hour zone (§9.2.3.11); relative TP-VP (§9.2.3.12.1); the
User Data Header (§9.2.3.24) with the concatenation IEs 0x00 and 0x08 and the septet alignment
of 7-bit text after a UDH; TP-DCS per TS 23.038 §4.

Character work is not redone here: the GSM 03.38 default alphabet and its extension table, and
UCS2 (UTF-16BE, surrogate pairs included), come from :mod:`smsc.text` (built on the ``gsm0338``
package); UDH parsing and the concatenation IE rules from :mod:`smsc.concat`. Decoding text never
fails (undecodable characters become U+FFFD); only the PDU structure can be wrong, and then every
decoder raises :class:`TpduError` and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final, Literal, TypeVar

from smsc.concat import UdhError, concat_from_udh, parse_udh
from smsc.text import TextEncodingError, decode_text, encode_text, split_for_sms

__all__ = [
    "Address",
    "Alphabet",
    "Concat",
    "SmsDeliver",
    "SmsStatusReport",
    "SmsSubmit",
    "TpduError",
    "alphabet",
    "decode_deliver",
    "decode_mt",
    "decode_status_report",
    "decode_submit",
    "deliver_parts",
    "encode_deliver",
    "encode_status_report",
    "encode_submit",
    "join_parts",
    "submit_parts",
    "tpdu_length",
]

Alphabet = Literal["gsm7", "8bit", "ucs2"]

MTI_DELIVER: Final = 0b00  # §9.2.3.1, SC -> MS
MTI_SUBMIT: Final = 0b01  # MS -> SC (SMS-SUBMIT-REPORT when SC -> MS)
MTI_STATUS_REPORT: Final = 0b10  # SC -> MS

# §9.2.3.1..§9.2.3.26 first-octet bits.
_MMS: Final = 0x04  # DELIVER / STATUS-REPORT: 1 = no more messages waiting
_RD: Final = 0x04  # SUBMIT: reject duplicates
_SRI: Final = 0x20  # DELIVER: status report indication; SUBMIT: status report request
_UDHI: Final = 0x40
_RP: Final = 0x80
_VPF_NONE, _VPF_ENHANCED, _VPF_RELATIVE, _VPF_ABSOLUTE = 0b00, 0b01, 0b10, 0b11  # §9.2.3.3

_MAX_SEPTETS: Final = 160  # §9.2.3.16: TP-UDL of 7-bit user data, in septets
_MAX_OCTETS: Final = 140  # §9.2.3.16: TP-UDL of 8-bit / UCS2 user data, in octets
_MAX_ADDRESS_DIGITS: Final = 20  # §9.1.2.5: an address field is at most 12 octets
_MAX_SMSC_OCTETS: Final = 11  # TS 24.011 §8.2.5.1: RP address value, TOA + 10 octets
_BCD_DIGITS: Final = "0123456789*#abc"  # §9.1.2.3 semi-octets 0x0-0xE; 0xF is the filler


class TpduError(ValueError):
    """A malformed or inconsistent PDU (or a message that cannot be encoded as one).

    ``offset`` is the octet (counted from the first octet given to the decoder, the SMSC
    prefix included) at which the problem was found, when there is one.
    """

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (at octet {offset})")
        self.offset = offset


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Address:
    """An address (§9.1.2.5). ``ton`` 1 international (no "+" in ``number``), 0 unknown,
    2 national, 5 alphanumeric (``number`` is then the decoded text); ``npi`` 1 ISDN/E.164,
    0 unknown (the usual one with TON 5)."""

    number: str
    ton: int = 1
    npi: int = 1

    @property
    def toa(self) -> int:
        """The type-of-address octet (145 international ISDN, 129 unknown, 208 alphanumeric)."""
        return 0x80 | (self.ton & 0x7) << 4 | (self.npi & 0xF)

    def __str__(self) -> str:
        return f"+{self.number}" if self.ton == 1 and self.number else self.number


@dataclass(frozen=True, slots=True)
class Concat:
    """Concatenated SM position (§9.2.3.24.1 IEI 0x00, 8-bit ``ref``; §9.2.3.24.8 IEI 0x08,
    16-bit ``ref``). When encoding without an explicit UDH, a ``ref`` above 255 selects 0x08."""

    ref: int
    total: int
    seq: int


@dataclass(frozen=True, slots=True)
class SmsDeliver:
    """SMS-DELIVER (§9.2.2.1). ``udh`` is the whole User Data Header as on the wire (TP-UDHL
    first), empty without TP-UDHI; ``user_data`` holds the octets of 8-bit data (``text`` is
    then ""); ``more_messages`` is the inverse of the TP-MMS bit (§9.2.3.2)."""

    originator: Address
    text: str
    timestamp: datetime
    pid: int = 0
    dcs: int = 0
    concat: Concat | None = None
    udh: bytes = b""
    user_data: bytes = b""
    more_messages: bool = False
    status_report_indication: bool = False
    reply_path: bool = False
    smsc: Address | None = None


@dataclass(frozen=True, slots=True)
class SmsSubmit:
    """SMS-SUBMIT (§9.2.2.2). ``validity_minutes`` is a relative TP-VP (§9.2.3.12.1), rounded
    up to the next value the octet can express when encoding; None: no TP-VP (an absolute or
    enhanced TP-VP is skipped when decoding and also gives None)."""

    destination: Address
    text: str
    reference: int = 0
    pid: int = 0
    dcs: int = 0
    concat: Concat | None = None
    udh: bytes = b""
    user_data: bytes = b""
    validity_minutes: int | None = None
    request_status_report: bool = False
    reject_duplicates: bool = False
    smsc: Address | None = None


@dataclass(frozen=True, slots=True)
class SmsStatusReport:
    """SMS-STATUS-REPORT (§9.2.2.3): TP-MR of the SUBMIT it reports on, TP-RA, TP-SCTS, TP-DT
    and TP-ST (§9.2.3.15: 0x00 delivered, 0x20-0x3F temporary, 0x40-0x7F permanent).
    The optional TP-PI and what follows it are not kept."""

    reference: int
    recipient: Address
    timestamp: datetime
    discharge_time: datetime
    status: int
    smsc: Address | None = None


# --------------------------------------------------------------------------------------------
# TS 23.038 §4: data coding scheme
# --------------------------------------------------------------------------------------------

# Bits 3..2 of the general groups; 11 is reserved, read as GSM 7-bit like every reserved coding.
_GENERAL_CHARSETS: Final[tuple[Alphabet, ...]] = ("gsm7", "8bit", "ucs2", "gsm7")


def alphabet(dcs: int) -> Alphabet:
    """The alphabet TP-DCS ``dcs`` selects (TS 23.038 §4).

    00xx xxxx general coding and 01xx xxxx automatic deletion: bit 5 compressed (TS 23.042, not
    decompressed here: its octets are kept as 8-bit data), bits 3..2 the character set (00 GSM
    7-bit, 01 8-bit, 10 UCS2, 11 reserved). 1000..1011: reserved coding groups. 1100 / 1101
    message waiting, discard / store: GSM 7-bit; 1110 message waiting, store: UCS2; 1111 data
    coding / message class: bit 2 set 8-bit, clear GSM 7-bit (bit 3 is reserved, "set to 0",
    and does not change the coding).

    §4: "Any reserved codings shall be assumed to be the GSM 7 bit default alphabet (the same as
    codepoint 00000000) by a receiving entity": the reserved character set 11 and the reserved
    groups are read as GSM 7-bit, their TP-UDL counting septets. Read as 8-bit, a 7-bit message
    is one octet in eight short of its TP-UDL and fails to decode.
    """
    dcs &= 0xFF
    group = dcs >> 4
    if group <= 0x7:
        return "8bit" if dcs & 0x20 else _GENERAL_CHARSETS[(dcs >> 2) & 0x3]
    if group == 0xE:
        return "ucs2"
    if group == 0xF:
        return "8bit" if dcs & 0x04 else "gsm7"
    return "gsm7"  # 1100 and 1101 message waiting; 1000..1011 reserved


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.pos = 0

    def octet(self, what: str) -> int:
        return self.take(1, what)[0]

    def take(self, count: int, what: str) -> bytes:
        left = len(self.data) - self.pos
        if count > left:
            raise TpduError(f"{what}: {count} octets needed, {left} left", offset=self.pos)
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk


def _bcd(body: bytes, digits: int, what: str, offset: int) -> str:
    """§9.1.2.3 semi-octets, low nibble first; only the semi-octet after the last digit may be
    the F filler."""
    out: list[str] = []
    for i in range(digits):
        nibble = (body[i // 2] >> (4 * (i % 2))) & 0xF
        if nibble == 0xF:
            raise TpduError(f"{what}: filler 0xF in digit {i + 1}", offset=offset + i // 2)
        out.append(_BCD_DIGITS[nibble])
    return "".join(out)


def _unpack7(data: bytes, count: int) -> bytes:
    """``count`` septets packed LSB first (TS 23.038 §6.1.2.1.1)."""
    value = int.from_bytes(data, "little")
    return bytes((value >> (7 * i)) & 0x7F for i in range(count))


def _pack7(septets: bytes) -> bytes:
    value = 0
    for i, septet in enumerate(septets):
        value |= septet << (7 * i)
    return value.to_bytes((7 * len(septets) + 7) // 8, "little")


def _read_address(r: _Reader, what: str) -> Address:
    """TP-OA / TP-DA / TP-RA (§9.1.2.5): length in useful semi-octets, TOA, value."""
    start = r.pos
    length = r.octet(f"{what} length")
    if length > _MAX_ADDRESS_DIGITS:
        raise TpduError(f"{what}: length {length} semi-octets, at most 20", offset=start)
    toa = r.octet(f"{what} type of address")
    body = r.take((length + 1) // 2, what)
    ton, npi = (toa >> 4) & 0x7, toa & 0xF
    if ton == 5:  # alphanumeric, GSM 7-bit packed (§9.1.2.5); length counts semi-octets used
        text = decode_text(_unpack7(body, length * 4 // 7), 0).text
        return Address(text, ton, npi)
    return Address(_bcd(body, length, what, start + 2), ton, npi)


def _read_smsc(r: _Reader) -> Address | None:
    """The SMSC address before the TPDU (TS 27.005 §3.1, TS 24.011 §8.2.5.1): length in
    octets (TOA included), 0 when absent."""
    length = r.octet("SMSC address length")
    if length == 0:
        return None
    if length > _MAX_SMSC_OCTETS:
        raise TpduError(f"SMSC address: length {length} octets, at most 11", offset=0)
    toa = r.octet("SMSC type of address")
    body = r.take(length - 1, "SMSC address")
    ton, npi = (toa >> 4) & 0x7, toa & 0xF
    if ton == 5:
        return Address(decode_text(_unpack7(body, len(body) * 8 // 7), 0).text, ton, npi)
    digits = 2 * len(body)
    if body and body[-1] >> 4 == 0xF:
        digits -= 1
    return Address(_bcd(body, digits, "SMSC address", 2), ton, npi)


def _read_scts(r: _Reader, what: str) -> datetime:
    """TP-SCTS / TP-DT (§9.2.3.11): YY MM DD hh mm ss in swapped BCD, then the zone in quarter
    hours (swapped BCD, bit 3 of the first semi-octet the sign)."""
    start = r.pos
    raw = r.take(7, what)
    fields: list[int] = []
    for i, octet in enumerate(raw[:6]):
        low, high = octet & 0xF, octet >> 4
        if low > 9 or high > 9:
            raise TpduError(f"{what}: octet 0x{octet:02x} is not BCD", offset=start + i)
        fields.append(low * 10 + high)
    zone = raw[6]
    tens, units = zone & 0x7, zone >> 4
    if units > 9:
        raise TpduError(f"{what}: time zone 0x{zone:02x} is not BCD", offset=start + 6)
    quarters = tens * 10 + units
    offset = timedelta(minutes=15 * (-quarters if zone & 0x08 else quarters))
    year, month, day, hour, minute, second = fields
    try:
        return datetime(2000 + year, month, day, hour, minute, second, tzinfo=timezone(offset))
    except ValueError as exc:
        raise TpduError(f"{what}: {exc}", offset=start) from None


def _relative_vp_minutes(vp: int) -> int:
    """§9.2.3.12.1."""
    if vp <= 143:
        return (vp + 1) * 5
    if vp <= 167:
        return 12 * 60 + (vp - 143) * 30
    if vp <= 196:
        return (vp - 166) * 24 * 60
    return (vp - 192) * 7 * 24 * 60


_Msg = TypeVar("_Msg")


@dataclass(frozen=True, slots=True)
class _UserData:
    text: str = ""
    udh: bytes = b""
    user_data: bytes = b""
    concat: Concat | None = None


def _read_udh(ud: bytes, offset: int) -> tuple[bytes, Concat | None]:
    if not ud:
        raise TpduError("TP-UDHI set but the user data is empty", offset=offset)
    end = ud[0] + 1
    if end > len(ud):
        raise TpduError(
            f"TP-UDHL {ud[0]} runs past the user data ({len(ud)} octets)", offset=offset
        )
    try:
        elements, _ = parse_udh(ud[:end])
    except UdhError as exc:
        raise TpduError(f"user data header: {exc}", offset=offset) from None
    info = concat_from_udh(elements)
    concat = None if info is None else Concat(info.ref, info.total, info.seq)
    return ud[:end], concat


def _read_user_data(r: _Reader, dcs: int, udhi: bool) -> _UserData:
    """TP-UDL and TP-UD (§9.2.3.16, §9.2.3.24). 7-bit UDL counts septets, header included:
    the header is followed by fill bits up to the next septet boundary."""
    start = r.pos
    udl = r.octet("TP-UDL")
    kind = alphabet(dcs)
    limit = _MAX_SEPTETS if kind == "gsm7" else _MAX_OCTETS
    if udl > limit:
        raise TpduError(f"TP-UDL {udl} over {limit} for {kind} user data", offset=start)
    ud = r.take((udl * 7 + 7) // 8 if kind == "gsm7" else udl, "TP-UD")
    udh, concat = _read_udh(ud, start + 1) if udhi else (b"", None)
    if kind == "gsm7":
        header_septets = (len(udh) * 8 + 6) // 7
        if header_septets > udl:
            raise TpduError(f"UDH of {len(udh)} octets exceeds TP-UDL {udl} septets", offset=start)
        text = decode_text(_unpack7(ud, udl)[header_septets:], 0).text
        return _UserData(text, udh, b"", concat)
    payload = ud[len(udh) :]
    if kind == "ucs2":
        return _UserData(decode_text(payload, 8).text, udh, b"", concat)
    return _UserData("", udh, payload, concat)


def _decode(
    data: bytes, with_smsc: bool, mti: int, body: Callable[[_Reader, int, Address | None], _Msg]
) -> _Msg:
    r = _Reader(data)
    smsc = _read_smsc(r) if with_smsc else None
    first_at = r.pos
    first = r.octet("first octet")
    if first & 0x3 != mti:
        names = {0: "SMS-DELIVER", 1: "SMS-SUBMIT", 2: "SMS-STATUS-REPORT", 3: "reserved"}
        raise TpduError(
            f"TP-MTI {first & 0x3} ({names[first & 0x3]}), expected {names[mti]}", offset=first_at
        )
    return body(r, first, smsc)


def _deliver_body(r: _Reader, first: int, smsc: Address | None) -> SmsDeliver:
    originator = _read_address(r, "TP-OA")
    pid = r.octet("TP-PID")
    dcs = r.octet("TP-DCS")
    timestamp = _read_scts(r, "TP-SCTS")
    ud = _read_user_data(r, dcs, bool(first & _UDHI))
    return SmsDeliver(
        originator=originator,
        text=ud.text,
        timestamp=timestamp,
        pid=pid,
        dcs=dcs,
        concat=ud.concat,
        udh=ud.udh,
        user_data=ud.user_data,
        more_messages=not first & _MMS,
        status_report_indication=bool(first & _SRI),
        reply_path=bool(first & _RP),
        smsc=smsc,
    )


def _submit_body(r: _Reader, first: int, smsc: Address | None) -> SmsSubmit:
    reference = r.octet("TP-MR")
    destination = _read_address(r, "TP-DA")
    pid = r.octet("TP-PID")
    dcs = r.octet("TP-DCS")
    vpf = (first >> 3) & 0x3
    validity: int | None = None
    if vpf == _VPF_RELATIVE:
        validity = _relative_vp_minutes(r.octet("TP-VP"))
    elif vpf != _VPF_NONE:  # absolute (§9.2.3.12.2) or enhanced (§9.2.3.12.3): 7 octets
        r.take(7, "TP-VP")
    ud = _read_user_data(r, dcs, bool(first & _UDHI))
    return SmsSubmit(
        destination=destination,
        text=ud.text,
        reference=reference,
        pid=pid,
        dcs=dcs,
        concat=ud.concat,
        udh=ud.udh,
        user_data=ud.user_data,
        validity_minutes=validity,
        request_status_report=bool(first & _SRI),
        reject_duplicates=bool(first & _RD),
        smsc=smsc,
    )


def _status_report_body(r: _Reader, first: int, smsc: Address | None) -> SmsStatusReport:
    reference = r.octet("TP-MR")
    recipient = _read_address(r, "TP-RA")
    timestamp = _read_scts(r, "TP-SCTS")
    discharge = _read_scts(r, "TP-DT")
    status = r.octet("TP-ST")
    return SmsStatusReport(reference, recipient, timestamp, discharge, status, smsc)


def decode_deliver(data: bytes, *, with_smsc: bool = True) -> SmsDeliver:
    """An SMS-DELIVER (+CMT, +CMGR, +CMGL in PDU mode: SMSC address first, TS 27.005 §3.1)."""
    return _decode(data, with_smsc, MTI_DELIVER, _deliver_body)


def decode_submit(data: bytes, *, with_smsc: bool = True) -> SmsSubmit:
    """An SMS-SUBMIT (what AT+CMGS carries, TS 27.005 §3.5.1)."""
    return _decode(data, with_smsc, MTI_SUBMIT, _submit_body)


def decode_status_report(data: bytes, *, with_smsc: bool = True) -> SmsStatusReport:
    """An SMS-STATUS-REPORT (+CDS, or read from storage)."""
    return _decode(data, with_smsc, MTI_STATUS_REPORT, _status_report_body)


def decode_mt(data: bytes, *, with_smsc: bool = True) -> SmsDeliver | SmsStatusReport:
    """A mobile-terminated TPDU, by its TP-MTI (§9.2.3.1): DELIVER or STATUS-REPORT. An
    SMS-SUBMIT-REPORT and the reserved MTI 11 are TpduError."""
    r = _Reader(data)
    if with_smsc:
        r.take(r.octet("SMSC address length"), "SMSC address")
    if r.octet("first octet") & 0x3 == MTI_STATUS_REPORT:
        return decode_status_report(data, with_smsc=with_smsc)
    return decode_deliver(data, with_smsc=with_smsc)


def tpdu_length(pdu: bytes) -> int:
    """The TPDU length of an SMSC-prefixed PDU: the <length> of AT+CMGS and +CMT (TS 27.005
    §3.1: "the length of the actual TP data unit in octets (the SMSC address octets are not
    counted)")."""
    if not pdu:
        raise TpduError("empty PDU: no SMSC address length", offset=0)
    length = len(pdu) - 1 - pdu[0]
    if length < 1:
        raise TpduError(f"SMSC address length {pdu[0]} leaves no TPDU", offset=0)
    return length


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _bcd_encode(number: str, what: str) -> tuple[int, bytes]:
    digits = number[1:] if number.startswith("+") else number
    nibbles: list[int] = []
    for i, char in enumerate(digits):
        index = _BCD_DIGITS.find(char.lower())
        if index < 0:
            raise TpduError(f"{what}: {char!r} at position {i} is not a BCD digit (0-9 * # a-c)")
        nibbles.append(index)
    count = len(nibbles)
    if count % 2:
        nibbles.append(0xF)
    return count, bytes(nibbles[i] | nibbles[i + 1] << 4 for i in range(0, len(nibbles), 2))


def _gsm7(text: str, what: str) -> bytes:
    try:
        return encode_text(text, 0)
    except TextEncodingError as exc:
        raise TpduError(f"{what}: {exc}") from None


def _write_address(address: Address, what: str) -> bytes:
    """§9.1.2.5; an alphanumeric address is at most 11 septets (20 semi-octets)."""
    if address.ton == 5:
        septets = _gsm7(address.number, what)
        semi_octets = (7 * len(septets) + 3) // 4
        if semi_octets > _MAX_ADDRESS_DIGITS:
            raise TpduError(f"{what}: alphanumeric address over 11 septets: {address.number!r}")
        return bytes((semi_octets, address.toa)) + _pack7(septets)
    count, body = _bcd_encode(address.number, what)
    if count > _MAX_ADDRESS_DIGITS:
        raise TpduError(f"{what}: {count} digits, at most 20")
    return bytes((count, address.toa)) + body


def _write_smsc(smsc: Address | None) -> bytes:
    if smsc is None:
        return b"\x00"
    if smsc.ton == 5:
        body = _pack7(_gsm7(smsc.number, "SMSC address"))
    else:
        body = _bcd_encode(smsc.number, "SMSC address")[1]
    if len(body) + 1 > _MAX_SMSC_OCTETS:
        raise TpduError(f"SMSC address {smsc.number!r} over 10 octets")
    return bytes((len(body) + 1, smsc.toa)) + body


def _write_scts(value: datetime, what: str) -> bytes:
    offset = value.utcoffset()
    if offset is None:
        raise TpduError(f"{what}: {value.isoformat()} has no time zone")
    seconds = int(offset.total_seconds())
    quarters, rest = divmod(abs(seconds), 15 * 60)
    if rest or quarters > 79 or not 2000 <= value.year <= 2099:
        raise TpduError(f"{what}: {value.isoformat()} cannot be a TP-SCTS (§9.2.3.11)")
    fields = (value.year - 2000, value.month, value.day, value.hour, value.minute, value.second)
    out = bytes((n % 10) << 4 | n // 10 for n in fields)
    sign = 0x08 if seconds < 0 else 0
    return out + bytes(((quarters % 10) << 4 | quarters // 10 | sign,))


def _relative_vp(minutes: int) -> int:
    """The smallest relative TP-VP (§9.2.3.12.1) that lasts at least ``minutes``."""
    if minutes < 0 or minutes > 63 * 7 * 24 * 60:
        raise TpduError(f"validity of {minutes} minutes outside 0..63 weeks")
    if minutes <= 12 * 60:
        return max(0, -(-minutes // 5) - 1)
    if minutes <= 24 * 60:
        return 143 + -(-(minutes - 12 * 60) // 30)
    if minutes <= 30 * 24 * 60:
        return 166 + -(-minutes // (24 * 60))
    return 192 + -(-minutes // (7 * 24 * 60))


def _concat_udh(concat: Concat) -> bytes:
    if not 1 <= concat.seq <= concat.total <= 255 or not 0 <= concat.ref <= 0xFFFF:
        raise TpduError(f"{concat}: needs 1 <= seq <= total <= 255 and ref 0..65535")
    if concat.ref > 0xFF:  # §9.2.3.24.8
        return bytes((6, 0x08, 4, concat.ref >> 8, concat.ref & 0xFF, concat.total, concat.seq))
    return bytes((5, 0x00, 3, concat.ref, concat.total, concat.seq))  # §9.2.3.24.1


def _header(udh: bytes, concat: Concat | None) -> bytes:
    if not udh:
        return b"" if concat is None else _concat_udh(concat)
    found = _read_udh(udh, 0)
    if len(found[0]) != len(udh):
        raise TpduError(f"udh: TP-UDHL {udh[0]} does not match its {len(udh)} octets")
    if concat is not None and found[1] != concat:
        raise TpduError(f"udh carries {found[1]}, the message says {concat}")
    return udh


def _write_user_data(dcs: int, text: str, udh: bytes, user_data: bytes) -> bytes:
    """TP-UDL + TP-UD; 7-bit text starts on the septet boundary after the UDH (§9.2.3.24)."""
    kind = alphabet(dcs)
    if kind == "gsm7":
        septets = _gsm7(text, "text")
        header_septets = (len(udh) * 8 + 6) // 7
        udl = header_septets + len(septets)
        if udl > _MAX_SEPTETS:
            raise TpduError(f"user data of {udl} septets, at most {_MAX_SEPTETS}")
        packed = bytearray(_pack7(bytes(header_septets) + septets))
        packed[: len(udh)] = udh
        return bytes((udl,)) + bytes(packed)
    try:
        payload = text.encode("utf-16-be") if kind == "ucs2" else bytes(user_data)
    except UnicodeEncodeError as exc:
        raise TpduError(f"text: {exc.reason} at position {exc.start}") from None
    udl = len(udh) + len(payload)
    if udl > _MAX_OCTETS:
        raise TpduError(f"user data of {udl} octets, at most {_MAX_OCTETS}")
    return bytes((udl,)) + udh + payload


def _octet(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise TpduError(f"{what} {value} is not an octet")
    return value


def encode_deliver(msg: SmsDeliver) -> bytes:
    """SMSC prefix (00 without ``msg.smsc``) + SMS-DELIVER."""
    udh = _header(msg.udh, msg.concat)
    first = MTI_DELIVER | (0 if msg.more_messages else _MMS)
    first |= (_SRI if msg.status_report_indication else 0) | (_UDHI if udh else 0)
    first |= _RP if msg.reply_path else 0
    return b"".join(
        (
            _write_smsc(msg.smsc),
            bytes((first,)),
            _write_address(msg.originator, "TP-OA"),
            bytes((_octet(msg.pid, "TP-PID"), _octet(msg.dcs, "TP-DCS"))),
            _write_scts(msg.timestamp, "TP-SCTS"),
            _write_user_data(msg.dcs, msg.text, udh, msg.user_data),
        )
    )


def encode_submit(msg: SmsSubmit) -> bytes:
    """SMSC prefix (00 without ``msg.smsc``) + SMS-SUBMIT."""
    udh = _header(msg.udh, msg.concat)
    vpf = _VPF_NONE if msg.validity_minutes is None else _VPF_RELATIVE
    first = MTI_SUBMIT | (_RD if msg.reject_duplicates else 0) | vpf << 3
    first |= (_SRI if msg.request_status_report else 0) | (_UDHI if udh else 0)
    vp = b"" if msg.validity_minutes is None else bytes((_relative_vp(msg.validity_minutes),))
    return b"".join(
        (
            _write_smsc(msg.smsc),
            bytes((first, _octet(msg.reference, "TP-MR"))),
            _write_address(msg.destination, "TP-DA"),
            bytes((_octet(msg.pid, "TP-PID"), _octet(msg.dcs, "TP-DCS"))),
            vp,
            _write_user_data(msg.dcs, msg.text, udh, msg.user_data),
        )
    )


def encode_status_report(msg: SmsStatusReport) -> bytes:
    """SMSC prefix + SMS-STATUS-REPORT (TP-SRQ 0: the report of an SMS-SUBMIT), no TP-PI."""
    return b"".join(
        (
            _write_smsc(msg.smsc),
            bytes((MTI_STATUS_REPORT | _MMS, _octet(msg.reference, "TP-MR"))),
            _write_address(msg.recipient, "TP-RA"),
            _write_scts(msg.timestamp, "TP-SCTS"),
            _write_scts(msg.discharge_time, "TP-DT"),
            bytes((_octet(msg.status, "TP-ST"),)),
        )
    )


# --------------------------------------------------------------------------------------------
# Splitting and joining
# --------------------------------------------------------------------------------------------


def _split(text: str, concat_ref: int) -> list[tuple[int, str, bytes, Concat | None]]:
    """(TP-DCS, text, UDH, concat) per part: GSM 7-bit if every character is in the default
    alphabet or its extension table, else UCS2; 160 / 70 characters alone, else 153 / 67 per
    part with an 8-bit reference (152 / 66 with a 16-bit one, for ``concat_ref`` > 255), an
    extension character or a surrogate pair never cut (the rules of smsc.text.split_for_sms)."""
    if not 0 <= concat_ref <= 0xFFFF:
        raise TpduError(f"concatenation reference {concat_ref} outside 0..65535")
    try:
        dcs, bodies = split_for_sms(text, ref=concat_ref, ref16=concat_ref > 0xFF)
    except ValueError as exc:  # TextEncodingError included
        raise TpduError(f"text: {exc}") from None
    if len(bodies) == 1:
        return [(dcs, text, b"", None)]
    parts: list[tuple[int, str, bytes, Concat | None]] = []
    for seq, body in enumerate(bodies, 1):
        udh = body[: body[0] + 1]
        piece = decode_text(body[len(udh) :], dcs).text
        parts.append((dcs, piece, udh, Concat(concat_ref, len(bodies), seq)))
    return parts


def submit_parts(
    destination: Address,
    text: str,
    *,
    reference: int,
    concat_ref: int,
    request_status_report: bool = False,
) -> list[bytes]:
    """SMSC-prefixed (00) SMS-SUBMIT PDUs carrying ``text``; TP-MR ``reference`` for the first
    part, counting up (mod 256) for the next ones."""
    return [
        encode_submit(
            SmsSubmit(
                destination=destination,
                text=piece,
                reference=(reference + i) & 0xFF,
                dcs=dcs,
                concat=concat,
                udh=udh,
                request_status_report=request_status_report,
            )
        )
        for i, (dcs, piece, udh, concat) in enumerate(_split(text, concat_ref))
    ]


def deliver_parts(
    originator: Address,
    text: str,
    *,
    timestamp: datetime,
    concat_ref: int,
    smsc: Address | None = None,
) -> list[bytes]:
    """SMSC-prefixed SMS-DELIVER PDUs carrying ``text``, split like :func:`submit_parts`."""
    return [
        encode_deliver(
            SmsDeliver(
                originator=originator,
                text=piece,
                timestamp=timestamp,
                dcs=dcs,
                concat=concat,
                udh=udh,
                smsc=smsc,
            )
        )
        for dcs, piece, udh, concat in _split(text, concat_ref)
    ]


def join_parts(parts: list[SmsDeliver]) -> str:
    """The text of a complete concatenated set (any order in, seq order out); a single
    message without concatenation stands for itself. TpduError when the set is not one
    whole message: mixed references or totals, a part missing or repeated."""
    if len(parts) == 1 and parts[0].concat is None:
        return parts[0].text
    if not parts:
        raise TpduError("no parts to join")
    by_seq: dict[int, SmsDeliver] = {}
    first = parts[0].concat
    mixed = TpduError(f"parts of different messages: {[p.concat for p in parts]}")
    if first is None:
        raise mixed
    for part in parts:
        concat = part.concat
        if concat is None or (concat.ref, concat.total) != (first.ref, first.total):
            raise mixed
        by_seq.setdefault(concat.seq, part)
    if len(by_seq) != len(parts) or sorted(by_seq) != list(range(1, first.total + 1)):
        have = sorted(p.concat.seq for p in parts if p.concat is not None)
        raise TpduError(f"incomplete or repeated parts {have} of {first.total} (ref {first.ref})")
    return "".join(by_seq[seq].text for seq in range(1, first.total + 1))
