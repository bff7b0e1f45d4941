"""SGsAP (3GPP TS 29.118) codec, sans-I/O: messages, IEs, and stream framing over TCP.

An SGsAP message is one octet of message type (§9.2) followed by IEs, each a one-octet tag
(§9.3), a one-octet length and the value (§9.1: every IE but the message type is TLV).
Unknown message types and unknown IEs are kept as they are (raw tag and value); only a
structural fault (an IE cut short, a length past the end) is a :class:`SgsapError`.

Framing. SGsAP has no length field: on a real SGs link each SCTP message is one SGsAP message.
In the lab, osmo-msc's SCTP socket is a TCP stream (the LD_PRELOAD shim), so message boundaries
are lost. :class:`Framer` restores them on the receive side by walking IEs with the table
:data:`MESSAGES` (which IEs each message type may carry and which are mandatory, TS 29.118 §8):
a message ends where the next octet cannot be one of its IEs (tag not allowed, or already
present). Where an octet could be read both ways (a message type whose value is also an
optional IE of the message before), the reading under which the whole buffer parses into
complete messages wins, the longer message first. In practice osmo-msc's messages arrive one
per TCP segment; the framer makes two or more in one read (and one message split over two
reads) safe as well. The sending side cannot be fixed here: osmo-msc treats each recv() as one
message, so the MME paces its writes (see :mod:`simulators.osmo.mme`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from itertools import pairwise
from typing import Final

__all__ = [
    "MESSAGES",
    "EmmMode",
    "EpsLuType",
    "Framer",
    "Ie",
    "Iei",
    "ImsiDetachNonEpsType",
    "Lai",
    "Message",
    "MessageSpec",
    "MsgType",
    "ServiceIndicator",
    "SgsCause",
    "SgsapError",
    "can_grow",
    "decode",
    "decode_dns_name",
    "decode_imsi",
    "decode_lai",
    "decode_mobile_identity",
    "encode_dns_name",
    "encode_imsi",
    "encode_lai",
    "encode_tmsi",
    "split",
]


class SgsapError(ValueError):
    """Malformed SGsAP input (or a value that cannot be encoded). ``offset`` counts octets
    from the start of the data given to the decoder, when known."""

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (at octet {offset})")
        self.offset = offset


class MsgType(IntEnum):
    """TS 29.118 §9.2."""

    PAGING_REQ = 0x01
    PAGING_REJ = 0x02
    SERVICE_REQ = 0x06
    DOWNLINK_UNITDATA = 0x07
    UPLINK_UNITDATA = 0x08
    LOCATION_UPDATE_REQ = 0x09
    LOCATION_UPDATE_ACCEPT = 0x0A
    LOCATION_UPDATE_REJECT = 0x0B
    TMSI_REALLOC_COMPLETE = 0x0C
    ALERT_REQ = 0x0D
    ALERT_ACK = 0x0E
    ALERT_REJ = 0x0F
    UE_ACTIVITY_IND = 0x10
    EPS_DETACH_IND = 0x11
    EPS_DETACH_ACK = 0x12
    IMSI_DETACH_IND = 0x13
    IMSI_DETACH_ACK = 0x14
    RESET_IND = 0x15
    RESET_ACK = 0x16
    SERVICE_ABORT_REQ = 0x17
    MO_CSFB_IND = 0x18
    MM_INFO_REQ = 0x1A
    RELEASE_REQ = 0x1B
    STATUS = 0x1D
    UE_UNREACHABLE = 0x1F


class Iei(IntEnum):
    """TS 29.118 §9.3."""

    IMSI = 0x01
    VLR_NAME = 0x02
    TMSI = 0x03
    LAI = 0x04
    CHANNEL_NEEDED = 0x05
    EMLPP_PRIORITY = 0x06
    TMSI_STATUS = 0x07
    SGS_CAUSE = 0x08
    MME_NAME = 0x09
    EPS_LU_TYPE = 0x0A
    GLOBAL_CN_ID = 0x0B
    MOBILE_IDENTITY = 0x0E
    REJECT_CAUSE = 0x0F
    IMSI_DETACH_EPS_TYPE = 0x10
    IMSI_DETACH_NONEPS_TYPE = 0x11
    IMEISV = 0x15
    NAS_CONTAINER = 0x16
    MM_INFORMATION = 0x17
    ERRONEOUS_MESSAGE = 0x1B
    CLI = 0x1C
    LCS_CLIENT_ID = 0x1D
    LCS_INDICATOR = 0x1E
    SS_CODE = 0x1F
    SERVICE_INDICATOR = 0x20
    UE_TIME_ZONE = 0x21
    MS_CLASSMARK2 = 0x22
    TAI = 0x23
    EUTRAN_CGI = 0x24
    UE_EMM_MODE = 0x25
    ADDITIONAL_PAGING_INDICATORS = 0x26
    TMSI_BASED_NRI_CONTAINER = 0x27
    SELECTED_CS_DOMAIN_OPERATOR = 0x28
    MAX_UE_AVAILABILITY_TIME = 0x29
    SM_DELIVERY_TIMER = 0x2A
    SM_DELIVERY_START_TIME = 0x2B
    ADDITIONAL_UE_UNREACHABLE_INDICATORS = 0x2C
    MAX_RETRANSMISSION_TIME = 0x2D
    REQUESTED_RETRANSMISSION_TIME = 0x2E


class EpsLuType(IntEnum):
    """§9.4.2."""

    IMSI_ATTACH = 0x01
    NORMAL = 0x02


class ImsiDetachNonEpsType(IntEnum):
    """§9.4.8."""

    EXPLICIT_UE = 0x01
    COMBINED_UE = 0x02
    IMPLICIT_NETWORK = 0x03


class ServiceIndicator(IntEnum):
    """§9.4.17."""

    CS_CALL = 0x01
    SMS = 0x02


class SgsCause(IntEnum):
    """§9.4.18."""

    IMSI_DETACHED_EPS = 0x01
    IMSI_DETACHED_EPS_NONEPS = 0x02
    IMSI_UNKNOWN = 0x03
    IMSI_DETACHED_NONEPS = 0x04
    IMSI_IMPLICITLY_DETACHED_NONEPS = 0x05
    UE_UNREACHABLE = 0x06
    MESSAGE_INCOMPATIBLE_STATE = 0x07
    MISSING_MANDATORY_IE = 0x08
    INVALID_MANDATORY_IE = 0x09
    CONDITIONAL_IE_ERROR = 0x0A
    SEMANTICALLY_INCORRECT = 0x0B
    MESSAGE_UNKNOWN = 0x0C
    MT_CSFB_REJECTED_BY_USER = 0x0D
    UE_TEMPORARILY_UNREACHABLE = 0x0E


class EmmMode(IntEnum):
    """§9.4.21c."""

    IDLE = 0x00
    CONNECTED = 0x01


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ie:
    tag: int
    value: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.tag <= 0xFF:
            raise SgsapError(f"IE tag {self.tag} is not an octet")
        if len(self.value) > 0xFF:
            raise SgsapError(f"IE 0x{self.tag:02x}: {len(self.value)} octets, at most 255")

    def __str__(self) -> str:
        name = Iei(self.tag).name if self.tag in Iei._value2member_map_ else f"0x{self.tag:02x}"
        return f"{name}={self.value.hex()}"


@dataclass(frozen=True, slots=True)
class Message:
    """One SGsAP message: ``type`` (a :class:`MsgType`, or the raw octet when unknown) and its
    IEs in wire order."""

    type: int
    ies: tuple[Ie, ...] = ()

    @classmethod
    def build(cls, msg_type: int, *ies: tuple[int, bytes]) -> Message:
        return cls(_msg_type(msg_type), tuple(Ie(tag, bytes(value)) for tag, value in ies))

    def get(self, tag: int) -> bytes | None:
        """The value of the first IE ``tag``, or None."""
        return next((ie.value for ie in self.ies if ie.tag == tag), None)

    def get_all(self, tag: int) -> list[bytes]:
        return [ie.value for ie in self.ies if ie.tag == tag]

    def require(self, tag: int) -> bytes:
        """The value of IE ``tag``; SgsapError when absent."""
        value = self.get(tag)
        if value is None:
            raise SgsapError(f"{self.name}: mandatory IE {_iei_name(tag)} missing")
        return value

    def octet(self, tag: int) -> int | None:
        """A one-octet IE's value (EPS LU type, SGs cause, service indicator, EMM mode...)."""
        value = self.get(tag)
        if value is None:
            return None
        if len(value) != 1:
            raise SgsapError(f"{self.name}: IE {_iei_name(tag)} of {len(value)} octets, not 1")
        return value[0]

    @property
    def imsi(self) -> str | None:
        value = self.get(Iei.IMSI)
        return None if value is None else decode_imsi(value)

    @property
    def name(self) -> str:
        return MsgType(self.type).name if _known(self.type) else f"type 0x{self.type:02x}"

    def encode(self) -> bytes:
        out = bytearray((self.type,))
        for ie in self.ies:
            out += bytes((ie.tag, len(ie.value))) + ie.value
        return bytes(out)

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(str, self.ies))})"


def _known(msg_type: int) -> bool:
    return msg_type in MsgType._value2member_map_


def _msg_type(value: int) -> int:
    if not 0 <= value <= 0xFF:
        raise SgsapError(f"message type {value} is not an octet")
    return MsgType(value) if _known(value) else value


def _iei_name(tag: int) -> str:
    return Iei(tag).name if tag in Iei._value2member_map_ else f"0x{tag:02x}"


def _walk_ies(data: bytes, start: int, end: int) -> Iterator[tuple[int, Ie]]:
    pos = start
    while pos < end:
        if pos + 2 > end:
            raise SgsapError("IE header cut short", offset=pos)
        tag, length = data[pos], data[pos + 1]
        if pos + 2 + length > end:
            raise SgsapError(
                f"IE {_iei_name(tag)} length {length} runs past the end "
                f"({end - pos - 2} octets left)",
                offset=pos + 1,
            )
        yield pos, Ie(tag, bytes(data[pos + 2 : pos + 2 + length]))
        pos += 2 + length


def decode(data: bytes) -> Message:
    """One whole SGsAP message (what one SCTP message carries)."""
    if not data:
        raise SgsapError("empty message: no message type", offset=0)
    ies = tuple(ie for _, ie in _walk_ies(data, 1, len(data)))
    return Message(_msg_type(data[0]), ies)


# --------------------------------------------------------------------------------------------
# Message table (TS 29.118 §8) and framing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """The IEs a message type carries: ``mandatory`` ones, ``optional`` ones (conditional IEs
    count as optional), and IEs allowed more than once (``repeat``: tag -> most occurrences)."""

    mandatory: frozenset[int]
    optional: frozenset[int] = frozenset()
    repeat: dict[int, int] = field(default_factory=dict)

    def allows(self, tag: int) -> bool:
        return tag in self.mandatory or tag in self.optional

    def most(self, tag: int) -> int:
        return self.repeat.get(tag, 1)


def _spec(
    mandatory: Iterable[int], optional: Iterable[int] = (), repeat: dict[int, int] | None = None
) -> MessageSpec:
    return MessageSpec(frozenset(mandatory), frozenset(optional), dict(repeat or {}))


_RADIO = (Iei.IMEISV, Iei.UE_TIME_ZONE, Iei.MS_CLASSMARK2, Iei.TAI, Iei.EUTRAN_CGI)
MESSAGES: Final[dict[int, MessageSpec]] = {
    MsgType.PAGING_REQ: _spec(  # §8.14
        (Iei.IMSI, Iei.VLR_NAME, Iei.SERVICE_INDICATOR),
        (
            Iei.TMSI,
            Iei.CLI,
            Iei.LAI,
            Iei.GLOBAL_CN_ID,
            Iei.SS_CODE,
            Iei.LCS_INDICATOR,
            Iei.LCS_CLIENT_ID,
            Iei.CHANNEL_NEEDED,
            Iei.EMLPP_PRIORITY,
            Iei.ADDITIONAL_PAGING_INDICATORS,
            Iei.SM_DELIVERY_TIMER,
            Iei.SM_DELIVERY_START_TIME,
            Iei.MAX_RETRANSMISSION_TIME,
        ),
    ),
    MsgType.PAGING_REJ: _spec((Iei.IMSI, Iei.SGS_CAUSE)),  # §8.13
    MsgType.SERVICE_REQ: _spec(  # §8.17
        (Iei.IMSI, Iei.SERVICE_INDICATOR), (*_RADIO, Iei.UE_EMM_MODE)
    ),
    MsgType.DOWNLINK_UNITDATA: _spec((Iei.IMSI, Iei.NAS_CONTAINER)),  # §8.4
    MsgType.UPLINK_UNITDATA: _spec((Iei.IMSI, Iei.NAS_CONTAINER), _RADIO),  # §8.22
    MsgType.LOCATION_UPDATE_REQ: _spec(  # §8.11: new LAI, then the optional old LAI
        (Iei.IMSI, Iei.MME_NAME, Iei.EPS_LU_TYPE, Iei.LAI),
        (
            Iei.TMSI_STATUS,
            Iei.IMEISV,
            Iei.TAI,
            Iei.EUTRAN_CGI,
            Iei.TMSI_BASED_NRI_CONTAINER,
            Iei.SELECTED_CS_DOMAIN_OPERATOR,
        ),
        repeat={Iei.LAI: 2},
    ),
    MsgType.LOCATION_UPDATE_ACCEPT: _spec((Iei.IMSI, Iei.LAI), (Iei.MOBILE_IDENTITY,)),  # §8.9
    MsgType.LOCATION_UPDATE_REJECT: _spec((Iei.IMSI, Iei.REJECT_CAUSE), (Iei.LAI,)),  # §8.10
    MsgType.TMSI_REALLOC_COMPLETE: _spec((Iei.IMSI,)),  # §8.19
    MsgType.ALERT_REQ: _spec((Iei.IMSI,)),  # §8.3
    MsgType.ALERT_ACK: _spec((Iei.IMSI,)),  # §8.1
    MsgType.ALERT_REJ: _spec((Iei.IMSI, Iei.SGS_CAUSE)),  # §8.2
    MsgType.UE_ACTIVITY_IND: _spec((Iei.IMSI,), (Iei.MAX_UE_AVAILABILITY_TIME,)),  # §8.20
    MsgType.EPS_DETACH_IND: _spec(  # §8.6
        (Iei.IMSI, Iei.MME_NAME, Iei.IMSI_DETACH_EPS_TYPE)
    ),
    MsgType.EPS_DETACH_ACK: _spec((Iei.IMSI,)),  # §8.5
    MsgType.IMSI_DETACH_IND: _spec(  # §8.8
        (Iei.IMSI, Iei.MME_NAME, Iei.IMSI_DETACH_NONEPS_TYPE),
        (Iei.UE_TIME_ZONE, Iei.TAI, Iei.EUTRAN_CGI),
    ),
    MsgType.IMSI_DETACH_ACK: _spec((Iei.IMSI,)),  # §8.7
    MsgType.RESET_IND: _spec((), (Iei.MME_NAME, Iei.VLR_NAME)),  # §8.16
    MsgType.RESET_ACK: _spec((), (Iei.MME_NAME, Iei.VLR_NAME)),  # §8.15
    MsgType.SERVICE_ABORT_REQ: _spec((Iei.IMSI,)),  # §8.24
    MsgType.MO_CSFB_IND: _spec((Iei.IMSI,), (Iei.TAI, Iei.EUTRAN_CGI)),  # §8.25
    MsgType.MM_INFO_REQ: _spec((Iei.IMSI, Iei.MM_INFORMATION)),  # §8.12
    MsgType.RELEASE_REQ: _spec((Iei.IMSI,), (Iei.SGS_CAUSE,)),  # §8.23
    # §8.18; the erroneous message is mandatory but taken as optional here, to be lenient
    MsgType.STATUS: _spec((Iei.SGS_CAUSE,), (Iei.IMSI, Iei.ERRONEOUS_MESSAGE)),
    MsgType.UE_UNREACHABLE: _spec(  # §8.21
        (Iei.IMSI, Iei.SGS_CAUSE),
        (Iei.REQUESTED_RETRANSMISSION_TIME, Iei.ADDITIONAL_UE_UNREACHABLE_INDICATORS),
    ),
}


@dataclass(frozen=True, slots=True)
class _Walk:
    ends: tuple[int, ...]  # offsets where a complete message may end, shortest first
    truncated: bool  # the buffer ended inside (or before the mandatory IEs of) this message


def _walk_message(data: bytes, start: int, *, unknown: bool) -> _Walk:
    """Where the message starting at ``start`` may end. An unknown type cannot be delimited:
    with ``unknown`` it takes every IE to the end of the buffer (at least one), without it
    it is no message at all."""
    spec = MESSAGES.get(data[start])
    if spec is None and not unknown:
        return _Walk((), False)
    if spec is None:
        pos = start + 1
        while pos + 2 <= len(data) and pos + 2 + data[pos + 1] <= len(data):
            pos += 2 + data[pos + 1]
        if pos == len(data) and pos > start + 1:
            return _Walk((pos,), False)
        return _Walk((), True)  # the buffer ends inside an IE, or right after the type
    counts: dict[int, int] = {}
    ends: list[int] = []
    pos = start + 1
    while True:
        complete = all(tag in counts for tag in spec.mandatory)
        if complete:
            ends.append(pos)
        if pos == len(data):
            return _Walk(tuple(ends), not complete)
        tag = data[pos]
        if not spec.allows(tag) or counts.get(tag, 0) >= spec.most(tag):
            return _Walk(tuple(ends), False)
        if pos + 2 > len(data) or pos + 2 + data[pos + 1] > len(data):
            return _Walk(tuple(ends), True)
        counts[tag] = counts.get(tag, 0) + 1
        pos += 2 + data[pos + 1]


def split(data: bytes) -> tuple[list[bytes], bytes]:
    """Cut a byte stream into SGsAP messages: ``(messages, rest)``, where ``rest`` is the
    start of a message still incomplete (wait for more bytes). SgsapError when the bytes
    cannot be read as messages at all. Readings with known message types only come first
    (complete, else waiting for more); an unknown type is accepted only when nothing else
    explains the bytes."""
    known = [_walk_message(data, p, unknown=False) for p in range(len(data))]
    framed = _complete(data, known)
    if framed is not None:
        return framed, b""
    waiting = _waiting(data, known)
    if waiting is not None:
        return waiting
    framed = _complete(data, [_walk_message(data, p, unknown=True) for p in range(len(data))])
    if framed is not None:
        return framed, b""
    raise SgsapError(f"cannot frame {data[:64].hex()}: no message structure fits", offset=0)


def _complete(data: bytes, walks: list[_Walk]) -> list[bytes] | None:
    """A reading of the whole buffer as complete messages, longer messages preferred."""
    n = len(data)
    full: list[int | None] = [None] * (n + 1)  # the end of the first message from p
    parses = [False] * (n + 1)
    parses[n] = True
    for p in range(n - 1, -1, -1):
        for end in reversed(walks[p].ends):  # the longer message first
            if parses[end]:
                full[p], parses[p] = end, True
                break
    if not parses[0]:
        return None
    out: list[bytes] = []
    p = 0
    while p < n:
        stop = full[p]
        assert stop is not None
        out.append(data[p:stop])
        p = stop
    return out


def _waiting(data: bytes, walks: list[_Walk]) -> tuple[list[bytes], bytes] | None:
    """Complete messages up to the first reachable message start whose message is merely cut
    short by the end of the buffer; None if there is none. The first, not the last: a message
    that may continue is not cut off from its next IE."""
    n = len(data)
    reach: dict[int, int] = {0: -1}
    frontier = [0]
    while frontier:
        p = frontier.pop()
        for end in walks[p].ends:
            if end < n and end not in reach:
                reach[end] = p
                frontier.append(end)
    waiting = [p for p in reach if walks[p].truncated]
    if not waiting:
        return None
    cut = min(waiting)
    starts: list[int] = []
    p = cut
    while p > 0:
        p = reach[p]
        starts.append(p)
    bounds = [*reversed(starts), cut]
    return [data[a:b] for a, b in pairwise(bounds)], data[cut:]


def can_grow(frame: bytes) -> bool:
    """Whether a complete message could still take another IE (an optional one not present
    yet, or a repeatable one below its count): at the end of a buffer, more may follow."""
    spec = MESSAGES.get(frame[0]) if frame else None
    if spec is None:
        return False
    counts: dict[int, int] = {}
    for _, ie in _walk_ies(frame, 1, len(frame)):
        counts[ie.tag] = counts.get(ie.tag, 0) + 1
    return any(counts.get(tag, 0) < spec.most(tag) for tag in (*spec.mandatory, *spec.optional))


class Framer:
    """Bytes from the TCP stream in, whole :class:`Message` objects out.

    A message that ends exactly at the end of the data but could still take an optional IE
    is held back (:attr:`holding`): the next bytes tell whether they continue it or start a
    new message. When nothing more comes for a moment, :meth:`flush` releases it (the reader
    calls it after a short quiet time; on loopback one write of osmo-msc arrives whole, so the
    wait is only ever spent after a message that really ended)."""

    __slots__ = ("_buffer", "_holding", "messages", "multi_reads", "reads")

    def __init__(self) -> None:
        self._buffer = b""
        self._holding = False
        self.reads = 0  # feed() calls with data
        self.messages = 0  # messages framed
        self.multi_reads = 0  # feed() calls that completed more than one message

    @property
    def pending(self) -> bytes:
        return self._buffer

    @property
    def holding(self) -> bool:
        """A complete message is held back, waiting to see if more IEs follow."""
        return self._holding

    def feed(self, data: bytes) -> list[Message]:
        if not data:
            return []
        self.reads += 1
        frames, rest = split(self._buffer + data)
        self._holding = False
        if not rest and frames and can_grow(frames[-1]):
            rest = frames.pop()
            self._holding = True
        self._buffer = rest
        return self._emit(frames, count_read=True)

    def flush(self) -> list[Message]:
        """Release a held message (nothing more arrived)."""
        if not self._holding:
            return []
        self._holding = False
        frames, self._buffer = split(self._buffer)
        return self._emit(frames, count_read=False)

    def _emit(self, frames: list[bytes], *, count_read: bool) -> list[Message]:
        self.messages += len(frames)
        self.multi_reads += count_read and len(frames) > 1
        return [decode(frame) for frame in frames]


# --------------------------------------------------------------------------------------------
# IE values
# --------------------------------------------------------------------------------------------

_MI_IMSI: Final = 0x1
_MI_TMSI: Final = 0x4


def encode_imsi(imsi: str) -> bytes:
    """TS 24.008 §10.5.1.4 mobile identity (type IMSI) from octet 3 on, as the SGsAP IMSI IE
    carries it (§9.4.6): digit 1 and the odd/even flag in the first octet, then BCD pairs,
    F filler after an even count."""
    if not imsi.isdigit() or not 6 <= len(imsi) <= 15 or not imsi.isascii():
        raise SgsapError(f"IMSI {imsi!r}: 6 to 15 decimal digits expected")
    digits = [int(c) for c in imsi]
    odd = len(digits) % 2
    out = [digits[0] << 4 | odd << 3 | _MI_IMSI]
    rest = digits[1:] + ([] if odd else [0xF])
    out += [rest[i] | rest[i + 1] << 4 for i in range(0, len(rest), 2)]
    return bytes(out)


def encode_tmsi(tmsi: int) -> bytes:
    """A mobile identity of type TMSI (§10.5.1.4, octets 3..7): F4 + four octets."""
    if not 0 <= tmsi <= 0xFFFFFFFF:
        raise SgsapError(f"TMSI {tmsi} is not 32 bits")
    return bytes((0xF0 | _MI_TMSI,)) + tmsi.to_bytes(4, "big")


def decode_mobile_identity(value: bytes) -> tuple[str, str | int]:
    """``("imsi", digits)`` / ``("imei", digits)`` / ``("imeisv", digits)`` or ``("tmsi", int)``."""
    if not value:
        raise SgsapError("empty mobile identity", offset=0)
    kind = value[0] & 0x7
    if kind == _MI_TMSI:
        if len(value) != 5:
            raise SgsapError(f"TMSI identity of {len(value)} octets, not 5", offset=0)
        return "tmsi", int.from_bytes(value[1:], "big")
    names = {1: "imsi", 2: "imei", 3: "imeisv"}
    if kind not in names:
        raise SgsapError(f"mobile identity type {kind} not supported", offset=0)
    nibbles = [value[0] >> 4]
    for octet in value[1:]:
        nibbles += [octet & 0xF, octet >> 4]
    if not value[0] & 0x08:  # even number of digits: the last nibble is the F filler
        if nibbles[-1] != 0xF:
            raise SgsapError("even-length identity without F filler", offset=len(value) - 1)
        nibbles.pop()
    if any(d > 9 for d in nibbles):
        raise SgsapError(f"mobile identity {value.hex()} has non-decimal digits", offset=0)
    return names[kind], "".join(map(str, nibbles))


def decode_imsi(value: bytes) -> str:
    kind, ident = decode_mobile_identity(value)
    if kind != "imsi" or not isinstance(ident, str):
        raise SgsapError(f"mobile identity {value.hex()} is a {kind}, not an IMSI", offset=0)
    return ident


@dataclass(frozen=True, slots=True)
class Lai:
    """Location area identification (TS 24.008 §10.5.1.3; SGsAP §9.4.11)."""

    mcc: str
    mnc: str
    lac: int

    def __str__(self) -> str:
        return f"{self.mcc}-{self.mnc}-{self.lac}"


def encode_lai(lai: Lai) -> bytes:
    if not (lai.mcc.isdigit() and len(lai.mcc) == 3 and lai.mnc.isdigit()):
        raise SgsapError(f"LAI {lai}: MCC of 3 digits and MNC of 2 or 3 digits expected")
    if len(lai.mnc) not in (2, 3) or not 0 <= lai.lac <= 0xFFFF:
        raise SgsapError(f"LAI {lai}: MNC of 2 or 3 digits and LAC 0..65535 expected")
    c = [int(x) for x in lai.mcc]
    m = [int(x) for x in lai.mnc]
    mnc3 = m[2] if len(m) == 3 else 0xF
    head = bytes((c[1] << 4 | c[0], mnc3 << 4 | c[2], m[1] << 4 | m[0]))
    return head + lai.lac.to_bytes(2, "big")


def decode_lai(value: bytes) -> Lai:
    if len(value) != 5:
        raise SgsapError(f"LAI of {len(value)} octets, not 5", offset=0)
    nib = [n for octet in value[:3] for n in (octet & 0xF, octet >> 4)]
    mcc = nib[0:3]
    mnc = [nib[4], nib[5]] + ([] if nib[3] == 0xF else [nib[3]])
    if any(d > 9 for d in mcc + mnc):
        raise SgsapError(f"LAI {value.hex()} has non-decimal MCC/MNC digits", offset=0)
    return Lai("".join(map(str, mcc)), "".join(map(str, mnc)), int.from_bytes(value[3:], "big"))


def encode_dns_name(name: str) -> bytes:
    """A host name as DNS labels (RFC 1035 §3.1, without the root label): MME name §9.4.13,
    VLR name §9.4.22."""
    out = bytearray()
    for label in name.split("."):
        raw = label.encode("ascii", "strict") if label.isascii() else b""
        if not raw or len(raw) > 63:
            raise SgsapError(f"name {name!r}: label {label!r} empty, too long or not ASCII")
        out += bytes((len(raw),)) + raw
    if len(out) > 0xFF:
        raise SgsapError(f"name {name!r} over 255 octets")
    return bytes(out)


def decode_dns_name(value: bytes) -> str:
    """DNS labels to a dotted name. Some implementations send the dotted text itself (osmo-msc
    accepts both); such a value is returned as it is."""
    labels: list[str] = []
    pos = 0
    while pos < len(value):
        length = value[pos]
        if length == 0 and pos == len(value) - 1:  # a root label some encoders add
            break
        if not 1 <= length <= 63 or pos + 1 + length > len(value):
            return _ascii(value)
        labels.append(_ascii(value[pos + 1 : pos + 1 + length]))
        pos += 1 + length
    return ".".join(labels)


def _ascii(value: bytes) -> str:
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise SgsapError(f"name {value.hex()} is not ASCII", offset=0) from None


# --------------------------------------------------------------------------------------------
# Builders for the messages a virtual MME sends
# --------------------------------------------------------------------------------------------


def location_update_request(
    imsi: str, mme_name: str, lai: Lai, lu_type: EpsLuType = EpsLuType.IMSI_ATTACH
) -> Message:
    """§8.11."""
    return Message.build(
        MsgType.LOCATION_UPDATE_REQ,
        (Iei.IMSI, encode_imsi(imsi)),
        (Iei.MME_NAME, encode_dns_name(mme_name)),
        (Iei.EPS_LU_TYPE, bytes((lu_type,))),
        (Iei.LAI, encode_lai(lai)),
    )


def tmsi_realloc_complete(imsi: str) -> Message:
    """§8.19."""
    return Message.build(MsgType.TMSI_REALLOC_COMPLETE, (Iei.IMSI, encode_imsi(imsi)))


def uplink_unitdata(imsi: str, nas: bytes) -> Message:
    """§8.22."""
    return Message.build(
        MsgType.UPLINK_UNITDATA, (Iei.IMSI, encode_imsi(imsi)), (Iei.NAS_CONTAINER, nas)
    )


def downlink_unitdata(imsi: str, nas: bytes) -> Message:
    """§8.4 (the VLR's side; for tests)."""
    return Message.build(
        MsgType.DOWNLINK_UNITDATA, (Iei.IMSI, encode_imsi(imsi)), (Iei.NAS_CONTAINER, nas)
    )


def service_request(
    imsi: str, indicator: int = ServiceIndicator.SMS, emm_mode: int = EmmMode.CONNECTED
) -> Message:
    """§8.17: the answer to a paging request."""
    return Message.build(
        MsgType.SERVICE_REQ,
        (Iei.IMSI, encode_imsi(imsi)),
        (Iei.SERVICE_INDICATOR, bytes((indicator,))),
        (Iei.UE_EMM_MODE, bytes((emm_mode,))),
    )


def paging_reject(imsi: str, cause: int) -> Message:
    """§8.13."""
    return Message.build(
        MsgType.PAGING_REJ, (Iei.IMSI, encode_imsi(imsi)), (Iei.SGS_CAUSE, bytes((cause,)))
    )


def imsi_detach_indication(
    imsi: str, mme_name: str, kind: ImsiDetachNonEpsType = ImsiDetachNonEpsType.EXPLICIT_UE
) -> Message:
    """§8.8."""
    return Message.build(
        MsgType.IMSI_DETACH_IND,
        (Iei.IMSI, encode_imsi(imsi)),
        (Iei.MME_NAME, encode_dns_name(mme_name)),
        (Iei.IMSI_DETACH_NONEPS_TYPE, bytes((kind,))),
    )


def alert_ack(imsi: str) -> Message:
    """§8.1."""
    return Message.build(MsgType.ALERT_ACK, (Iei.IMSI, encode_imsi(imsi)))


def reset_ack(mme_name: str) -> Message:
    """§8.15, from the MME."""
    return Message.build(MsgType.RESET_ACK, (Iei.MME_NAME, encode_dns_name(mme_name)))
