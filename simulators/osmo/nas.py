"""SMS over NAS (3GPP TS 24.011), sans-I/O: the CP layer (§7.2) and the RP layer (§7.3).

What the SGsAP NAS message container carries for SMS is a CP message: octet 1 is the
transaction identifier (TS 24.007 §11.2.3.1.3: bit 8 the TI flag, bits 7..5 the TI value) and
the protocol discriminator 9 (SMS messages, TS 24.007 §11.2.3.1.1) in bits 4..1; octet 2 the
message type. CP-DATA carries an RPDU (CP-User data, an LV), CP-ERROR a CP-Cause.

TI flag: the side that starts a transaction sends flag 0, the other side answers with flag 1
(TS 24.007 §11.2.3.1.3). An MO SMS: MS CP-DATA(flag 0), network CP-ACK(flag 1), network
CP-DATA(RP-ACK, flag 1), MS CP-ACK(flag 0). An MT SMS is the mirror image.

The TPDU inside RP-User-Data is left to :mod:`gsm_probe.ts23040`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from gsm_probe.ts23040 import Address

__all__ = [
    "PD_SMS",
    "CpFormatError",
    "CpMessage",
    "CpType",
    "NasError",
    "RpAck",
    "RpData",
    "RpError",
    "RpFormatError",
    "RpMessage",
    "RpSmma",
    "RpType",
    "decode_cp",
    "decode_rp",
    "encode_cp",
    "encode_rp",
]

PD_SMS: Final = 0x9  # TS 24.007 §11.2.3.1.1
_RP_UD_IEI: Final = 0x41  # TS 24.011 §7.3.3 / §7.3.4: RP-User data in RP-ACK / RP-ERROR


class NasError(ValueError):
    """Malformed CP or RP input, or a value that cannot be encoded."""

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (at octet {offset})")
        self.offset = offset


class CpFormatError(NasError):
    """A malformed CP message."""


class RpFormatError(NasError):
    """A malformed RP message (:class:`RpError` is the RP-ERROR message itself)."""


class CpType(IntEnum):
    """TS 24.011 §8.1.3."""

    DATA = 0x01
    ACK = 0x04
    ERROR = 0x10


class RpType(IntEnum):
    """TS 24.011 §8.2.2: the MTI; even values MS -> network, odd network -> MS."""

    DATA_MS_N = 0x00
    DATA_N_MS = 0x01
    ACK_MS_N = 0x02
    ACK_N_MS = 0x03
    ERROR_MS_N = 0x04
    ERROR_N_MS = 0x05
    SMMA_MS_N = 0x06


# --------------------------------------------------------------------------------------------
# CP layer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpMessage:
    """A CP message. ``ti`` 0..7, ``ti_flag`` False from the side that started the
    transaction; ``user_data`` the RPDU of a CP-DATA; ``cause`` the CP-Cause of a CP-ERROR
    (§8.1.4.2: 17 network failure, 22 congestion, 81 invalid TI, 95..111 protocol errors)."""

    type: CpType
    ti: int
    ti_flag: bool = False
    user_data: bytes = b""
    cause: int = 0

    @classmethod
    def data(cls, ti: int, ti_flag: bool, rpdu: bytes) -> CpMessage:
        return cls(CpType.DATA, ti, ti_flag, user_data=rpdu)

    @classmethod
    def ack(cls, ti: int, ti_flag: bool) -> CpMessage:
        return cls(CpType.ACK, ti, ti_flag)

    @classmethod
    def error(cls, ti: int, ti_flag: bool, cause: int) -> CpMessage:
        return cls(CpType.ERROR, ti, ti_flag, cause=cause)

    def __str__(self) -> str:
        extra = f", {len(self.user_data)} octets" if self.type == CpType.DATA else ""
        extra += f", cause {self.cause}" if self.type == CpType.ERROR else ""
        return f"CP-{self.type.name}(ti {self.ti}/{int(self.ti_flag)}{extra})"


def encode_cp(msg: CpMessage) -> bytes:
    if not 0 <= msg.ti <= 7:
        raise CpFormatError(f"TI {msg.ti} outside 0..7")
    head = bytes(((0x80 if msg.ti_flag else 0) | msg.ti << 4 | PD_SMS, msg.type))
    if msg.type == CpType.DATA:
        if len(msg.user_data) > 0xFF:  # §8.1.4.1: at most 248 octets in practice
            raise CpFormatError(f"CP-User data of {len(msg.user_data)} octets, at most 255")
        return head + bytes((len(msg.user_data),)) + msg.user_data
    if msg.type == CpType.ERROR:
        if not 0 <= msg.cause <= 0xFF:
            raise CpFormatError(f"CP-Cause {msg.cause} is not an octet")
        return head + bytes((msg.cause,))
    return head


def decode_cp(data: bytes) -> CpMessage:
    if len(data) < 2:
        raise CpFormatError(f"CP message of {len(data)} octets, at least 2", offset=0)
    if data[0] & 0x0F != PD_SMS:
        raise CpFormatError(f"protocol discriminator {data[0] & 0x0F}, not 9 (SMS)", offset=0)
    ti, flag = (data[0] >> 4) & 0x7, bool(data[0] & 0x80)
    if data[1] not in CpType._value2member_map_:
        raise CpFormatError(f"unknown CP message type 0x{data[1]:02x}", offset=1)
    kind = CpType(data[1])
    if kind == CpType.DATA:
        if len(data) < 3:
            raise CpFormatError("CP-DATA without CP-User data length", offset=2)
        if 3 + data[2] > len(data):
            raise CpFormatError(
                f"CP-User data length {data[2]} runs past the end ({len(data) - 3} left)", offset=2
            )
        return CpMessage(kind, ti, flag, user_data=bytes(data[3 : 3 + data[2]]))
    if kind == CpType.ERROR:
        if len(data) < 3:
            raise CpFormatError("CP-ERROR without CP-Cause", offset=2)
        return CpMessage(kind, ti, flag, cause=data[2])
    return CpMessage(kind, ti, flag)


# --------------------------------------------------------------------------------------------
# RP layer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RpData:
    """RP-DATA (§7.3.1). ``uplink`` True: MS -> network (RP-OA empty, RP-DA the SMSC);
    False: network -> MS (RP-OA the SMSC, RP-DA empty). ``user_data`` is the TPDU."""

    reference: int
    user_data: bytes
    uplink: bool = True
    originator: Address | None = None
    destination: Address | None = None


@dataclass(frozen=True, slots=True)
class RpAck:
    """RP-ACK (§7.3.3); ``user_data`` an optional SMS-DELIVER-REPORT / SUBMIT-REPORT TPDU."""

    reference: int
    uplink: bool = True
    user_data: bytes = b""


@dataclass(frozen=True, slots=True)
class RpError:
    """RP-ERROR (§7.3.4): RP-Cause (§8.2.5.4, table 8.4: 1 unassigned number, 21 short
    message transfer rejected, 22 memory capacity exceeded, 27 destination out of order,
    38 network out of order, 111 protocol error) with an optional diagnostic octet."""

    reference: int
    cause: int
    uplink: bool = True
    diagnostic: bytes = b""
    user_data: bytes = b""


@dataclass(frozen=True, slots=True)
class RpSmma:
    """RP-SMMA (§7.3.2): the MS has memory available again."""

    reference: int


RpMessage = RpData | RpAck | RpError | RpSmma


def _mti(msg: RpMessage) -> int:
    if isinstance(msg, RpSmma):
        return RpType.SMMA_MS_N
    base = {RpData: RpType.DATA_MS_N, RpAck: RpType.ACK_MS_N, RpError: RpType.ERROR_MS_N}
    return base[type(msg)] + (0 if msg.uplink else 1)


def _bcd(number: str) -> bytes:
    digits = number[1:] if number.startswith("+") else number
    table = "0123456789*#abc"
    nibbles = []
    for i, char in enumerate(digits):
        index = table.find(char.lower())
        if index < 0:
            raise RpFormatError(f"RP address: {char!r} at position {i} is not a BCD digit")
        nibbles.append(index)
    if len(nibbles) % 2:
        nibbles.append(0xF)
    return bytes(nibbles[i] | nibbles[i + 1] << 4 for i in range(0, len(nibbles), 2))


def _address_lv(address: Address | None) -> bytes:
    """RP-Originator / RP-Destination address (§8.2.5.1, §8.2.5.2): length, TOA, BCD."""
    if address is None:
        return b"\x00"
    body = bytes((address.toa,)) + _bcd(address.number)
    if len(body) > 11:
        raise RpFormatError(f"RP address {address.number!r} over 10 octets of digits")
    return bytes((len(body),)) + body


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.pos = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def octet(self, what: str) -> int:
        return self.take(1, what)[0]

    def take(self, count: int, what: str) -> bytes:
        if count > self.left:
            raise RpFormatError(f"{what}: {count} octets needed, {self.left} left", offset=self.pos)
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def lv(self, what: str) -> bytes:
        return self.take(self.octet(f"{what} length"), what)


def _read_address(r: _Reader, what: str) -> Address | None:
    start = r.pos
    body = r.lv(what)
    if not body:
        return None
    toa, digits_raw = body[0], body[1:]
    nibbles = [n for octet in digits_raw for n in (octet & 0xF, octet >> 4)]
    if nibbles and nibbles[-1] == 0xF:
        nibbles.pop()
    if 0xF in nibbles:
        raise RpFormatError(f"{what}: F filler inside the digits", offset=start)
    number = "".join("0123456789*#abc"[n] for n in nibbles)
    return Address(number, (toa >> 4) & 0x7, toa & 0xF)


def encode_rp(msg: RpMessage) -> bytes:
    if not 0 <= msg.reference <= 0xFF:
        raise RpFormatError(f"RP message reference {msg.reference} is not an octet")
    head = bytes((_mti(msg), msg.reference))
    if isinstance(msg, RpData):
        if len(msg.user_data) > 0xFF:
            raise RpFormatError(f"RP-User data of {len(msg.user_data)} octets, at most 255")
        return b"".join(
            (
                head,
                _address_lv(msg.originator),
                _address_lv(msg.destination),
                bytes((len(msg.user_data),)),
                msg.user_data,
            )
        )
    if isinstance(msg, RpAck):
        return head + _user_data_tlv(msg.user_data)
    if isinstance(msg, RpError):
        if not 0 <= msg.cause <= 0x7F or len(msg.diagnostic) > 1:
            raise RpFormatError(f"RP-Cause {msg.cause} not 0..127, or diagnostic over 1 octet")
        cause = bytes((msg.cause,)) + msg.diagnostic
        return head + bytes((len(cause),)) + cause + _user_data_tlv(msg.user_data)
    return head


def _user_data_tlv(user_data: bytes) -> bytes:
    if not user_data:
        return b""
    if len(user_data) > 0xFF:
        raise RpFormatError(f"RP-User data of {len(user_data)} octets, at most 255")
    return bytes((_RP_UD_IEI, len(user_data))) + user_data


def _optional_user_data(r: _Reader) -> bytes:
    if not r.left:
        return b""
    start = r.pos
    iei = r.octet("RP-User data IEI")
    if iei != _RP_UD_IEI:
        raise RpFormatError(f"unexpected IEI 0x{iei:02x}, RP-User data is 0x41", offset=start)
    return r.lv("RP-User data")


def decode_rp(data: bytes) -> RpMessage:
    """One RPDU. Trailing octets after the last IE are an error (a CP-User data length that
    does not match its RPDU is a sign of corruption)."""
    r = _Reader(data)
    mti = r.octet("RP-MTI") & 0x07  # bits 8..4 spare (§8.2.2)
    reference = r.octet("RP-Message Reference")
    uplink = mti % 2 == 0
    msg: RpMessage
    if mti in (RpType.DATA_MS_N, RpType.DATA_N_MS):
        originator = _read_address(r, "RP-Originator address")
        destination = _read_address(r, "RP-Destination address")
        user_data = r.lv("RP-User data")
        msg = RpData(reference, user_data, uplink, originator, destination)
    elif mti in (RpType.ACK_MS_N, RpType.ACK_N_MS):
        msg = RpAck(reference, uplink, _optional_user_data(r))
    elif mti in (RpType.ERROR_MS_N, RpType.ERROR_N_MS):
        start = r.pos
        cause = r.lv("RP-Cause")
        if not cause:
            raise RpFormatError("RP-Cause of length 0", offset=start)
        msg = RpError(reference, cause[0] & 0x7F, uplink, cause[1:2], _optional_user_data(r))
    elif mti == RpType.SMMA_MS_N:
        msg = RpSmma(reference)
    else:
        raise RpFormatError(f"reserved RP-MTI {mti}", offset=0)
    if r.left:
        raise RpFormatError(f"{r.left} octets after the RP message", offset=r.pos)
    return msg
