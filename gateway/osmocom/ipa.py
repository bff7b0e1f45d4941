"""IPA multiplex framing (the "ip.access" header Osmocom uses on its TCP links), sans-I/O.

Every frame is `[length: 2 bytes big-endian][protocol: 1 byte]` + payload; `length` counts the
payload only. Protocol 0xEE (OSMO) carries an extension byte as the payload's first byte that
names the Osmocom sub-protocol (0x00 CTRL, 0x05 GSUP); its length counts that byte too:

    00 0b ee 00 47 45 54 20 31 20 61 2e 62      len 11, OSMO, ext CTRL, "GET 1 a.b"

Protocol 0xFE (CCM, the connection-management protocol) has one message-type byte: PING 00,
PONG 01, ID_GET 04, ID_RESP 05, ID_ACK 06. A peer may send PING on any IPA link at any time; it
must be answered with PONG (`fe 01` after the header) or the peer may drop the link.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

HEADER = struct.Struct(">HB")
MAX_PAYLOAD = 0xFFFF


class Proto(IntEnum):
    RSL = 0x00
    OSMO = 0xEE
    CCM = 0xFE
    SCCP = 0xFD
    OML = 0xFF


class OsmoExt(IntEnum):
    """The extension byte of a protocol-0xEE frame."""

    CTRL = 0x00
    MGCP = 0x01
    LAC = 0x02
    SMSC = 0x03
    SUA = 0x04
    GSUP = 0x05
    OAP = 0x06
    RSPRO = 0x07


class Ccm(IntEnum):
    PING = 0x00
    PONG = 0x01
    ID_GET = 0x04
    ID_RESP = 0x05
    ID_ACK = 0x06


class IpaError(ValueError):
    """The byte stream is not valid IPA framing (the link should be dropped)."""


@dataclass(frozen=True, slots=True)
class IpaFrame:
    """One frame; `ext` is set (and not part of `payload`) for protocol 0xEE only."""

    proto: int
    payload: bytes
    ext: int | None = None

    @property
    def is_ping(self) -> bool:
        return self.proto == Proto.CCM and self.payload[:1] == bytes([Ccm.PING])

    @property
    def is_pong(self) -> bool:
        return self.proto == Proto.CCM and self.payload[:1] == bytes([Ccm.PONG])


def encode(proto: int, payload: bytes, ext: int | None = None) -> bytes:
    """One frame on the wire. `ext` is required for protocol 0xEE and refused for others."""
    if not 0 <= proto <= 0xFF:
        raise IpaError(f"protocol {proto} is not a byte")
    if (proto == Proto.OSMO) != (ext is not None):
        raise IpaError("the extension byte goes with protocol 0xEE, and only there")
    body = payload if ext is None else bytes([ext]) + payload
    if len(body) > MAX_PAYLOAD:
        raise IpaError(f"payload of {len(body)} bytes does not fit the 16-bit length")
    return HEADER.pack(len(body), proto) + body


def encode_ctrl(text: bytes) -> bytes:
    return encode(Proto.OSMO, text, OsmoExt.CTRL)


def ping() -> bytes:
    return encode(Proto.CCM, bytes([Ccm.PING]))


def pong() -> bytes:
    return encode(Proto.CCM, bytes([Ccm.PONG]))


def ccm_answer(frame: IpaFrame) -> bytes | None:
    """The automatic answer a frame needs: PONG for a PING, nothing otherwise."""
    return pong() if frame.is_ping else None


class IpaDecoder:
    """Bytes in, complete frames out; a partial frame waits for more bytes. A frame that cannot
    be valid (empty CCM or OSMO frame, longer than `max_payload`) raises IpaError, after which
    the decoder stays broken: framing is lost for good on a byte stream."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._buffer = bytearray()
        self._broken: IpaError | None = None

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[IpaFrame]:
        if self._broken is not None:
            raise self._broken
        self._buffer += data
        frames: list[IpaFrame] = []
        while len(self._buffer) >= HEADER.size:
            length, proto = HEADER.unpack_from(self._buffer)
            self._check(length, proto)
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[HEADER.size : end])
            del self._buffer[:end]
            if proto == Proto.OSMO:
                frames.append(IpaFrame(proto, body[1:], body[0]))
            else:
                frames.append(IpaFrame(proto, body))
        return frames

    def _check(self, length: int, proto: int) -> None:
        problem = ""
        if length > self.max_payload:
            problem = f"frame length {length} over the limit {self.max_payload}"
        elif length == 0 and proto in (Proto.OSMO, Proto.CCM):
            problem = f"empty frame for protocol 0x{proto:02x}"
        if problem:
            self._broken = IpaError(problem)
            raise self._broken


__all__ = [
    "Ccm",
    "IpaDecoder",
    "IpaError",
    "IpaFrame",
    "OsmoExt",
    "Proto",
    "ccm_answer",
    "encode",
    "encode_ctrl",
    "ping",
    "pong",
]
