"""SMPP 3.4 PDU codec: every PDU of the specification, as typed dataclasses, bytes in and out.

Sans-I/O and allocation-light: `decode_pdu` turns one complete PDU (header included) into an
object, `Pdu.encode` does the reverse. Field layouts are data (`_SPEC`), one table per command,
read by a single generic encoder and decoder, so adding a vendor PDU is one table.

Strings (C-Octet Strings, §3.1) are held as `str` decoded as latin-1, which maps every byte to one
code point and back: nothing a peer sends is lost or rewritten. Message bodies are `bytes`.
Optional parameters (TLVs, §3.2.4 / §5.3) are kept in arrival order as `Tlv(tag, raw value)`:
known tags have typed accessors, unknown tags travel unchanged.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar

from smsc.constants import RESPONSE_BIT, TLV_TYPES, CommandId, Status

HEADER = struct.Struct(">IIII")
HEADER_SIZE = 16
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_TLV_HEAD = struct.Struct(">HH")


class SmppError(Exception):
    """Base of every SMPP error raised by this package."""


class PduError(SmppError):
    """A PDU that cannot be decoded or encoded.

    `status` is the command_status to answer with; `fatal` means the byte stream cannot be trusted
    any more (framing lost) and the session must close.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = Status.ESME_RSYSERR,
        command_id: int = 0,
        sequence: int = 0,
        fatal: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.command_id = command_id
        self.sequence = sequence
        self.fatal = fatal


class UnknownCommandError(PduError):
    """command_id not in SMPP 3.4: answered with generic_nack ESME_RINVCMDID (§5.1.2)."""


class InvalidLengthError(PduError):
    """command_length outside [16, limit]: framing lost, answered with generic_nack and closed."""


# --------------------------------------------------------------------------------------------
# Optional parameters


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    value: bytes

    @classmethod
    def of(cls, tag: int, value: int | str | bytes) -> Tlv:
        """Build a TLV from a typed value, using the type §5.3.2 gives the tag."""
        kind = TLV_TYPES.get(tag, "octets")
        if isinstance(value, int):
            size = {"u8": 1, "u16": 2, "u32": 4}.get(kind)
            if size is None:
                raise PduError(f"TLV 0x{tag:04X} takes {kind}, not an integer")
            try:
                return cls(tag, value.to_bytes(size, "big"))
            except OverflowError as exc:
                raise PduError(
                    f"TLV 0x{tag:04X}={value} does not fit {size} octet(s)",
                    status=Status.ESME_RINVOPTPARAMVAL,
                ) from exc
        if isinstance(value, str):
            try:
                raw = value.encode("latin-1")
            except UnicodeEncodeError as exc:
                raise PduError(
                    f"TLV 0x{tag:04X}: {exc}", status=Status.ESME_RINVOPTPARAMVAL
                ) from exc
            return cls(tag, raw + b"\0" if kind == "cstr" else raw)
        return cls(tag, bytes(value))

    def typed(self) -> int | str | bytes:
        kind = TLV_TYPES.get(self.tag, "octets")
        if kind in ("u8", "u16", "u32"):
            return int.from_bytes(self.value, "big")
        if kind == "cstr":
            return self.value.rstrip(b"\0").decode("latin-1")
        return self.value


_TLV_SIZES = {"u8": 1, "u16": 2, "u32": 4}


def decode_tlvs(data: bytes, offset: int, end: int) -> list[Tlv]:
    tlvs: list[Tlv] = []
    while offset < end:
        if end - offset < 4:
            raise PduError(
                f"{end - offset} stray byte(s) where a TLV header was expected",
                status=Status.ESME_RINVOPTPARSTREAM,
            )
        tag, length = _TLV_HEAD.unpack_from(data, offset)
        offset += 4
        if offset + length > end:
            raise PduError(
                f"TLV 0x{tag:04X} length {length} runs past the PDU end",
                status=Status.ESME_RINVOPTPARSTREAM,
            )
        size = _TLV_SIZES.get(TLV_TYPES.get(tag, ""))
        if size is not None and length != size:
            raise PduError(
                f"TLV 0x{tag:04X} has length {length}, expected {size}",
                status=Status.ESME_RINVPARLEN,
            )
        tlvs.append(Tlv(tag, data[offset : offset + length]))
        offset += length
    return tlvs


# --------------------------------------------------------------------------------------------
# submit_multi structures (§4.5.1.1, §4.5.2)


@dataclass(frozen=True, slots=True)
class SmeAddress:
    """dest_flag 1: an SME address."""

    ton: int = 0
    npi: int = 0
    address: str = ""


@dataclass(frozen=True, slots=True)
class DistributionList:
    """dest_flag 2: a distribution list name."""

    name: str = ""


@dataclass(frozen=True, slots=True)
class UnsuccessSme:
    ton: int = 0
    npi: int = 0
    address: str = ""
    error_status_code: int = 0


# --------------------------------------------------------------------------------------------
# Field specs: (attribute, kind, max octets incl. NUL for C strings, status when invalid)

C, U8, U32, SM, DESTS, UNSUCC = "c", "b", "i", "sm", "dests", "unsucc"
Spec = tuple[tuple[str, str, int, int], ...]

_S = Status


def _c(name: str, size: int, status: int = _S.ESME_RINVCMDLEN) -> tuple[str, str, int, int]:
    return (name, C, size, status)


def _b(name: str) -> tuple[str, str, int, int]:
    return (name, U8, 1, _S.ESME_RINVCMDLEN)


_SOURCE21 = (
    _b("source_addr_ton"),
    _b("source_addr_npi"),
    _c("source_addr", 21, _S.ESME_RINVSRCADR),
)
_DEST21 = (
    _b("dest_addr_ton"),
    _b("dest_addr_npi"),
    _c("destination_addr", 21, _S.ESME_RINVDSTADR),
)
_SUBMIT_TAIL = (
    _b("esm_class"),
    _b("protocol_id"),
    _b("priority_flag"),
    _c("schedule_delivery_time", 17, _S.ESME_RINVSCHED),
    _c("validity_period", 17, _S.ESME_RINVEXPIRY),
    _b("registered_delivery"),
    _b("replace_if_present_flag"),
    _b("data_coding"),
    _b("sm_default_msg_id"),
    ("short_message", SM, 255, _S.ESME_RINVMSGLEN),
)
_BIND: Spec = (
    _c("system_id", 16, _S.ESME_RINVSYSID),
    _c("password", 9, _S.ESME_RINVPASWD),
    _c("system_type", 13, _S.ESME_RINVSYSTYP),
    _b("interface_version"),
    _b("addr_ton"),
    _b("addr_npi"),
    _c("address_range", 41),
)
_MESSAGE_ID: Spec = (_c("message_id", 65, _S.ESME_RINVMSGID),)


# --------------------------------------------------------------------------------------------
# PDUs


@dataclass(slots=True, kw_only=True)
class Pdu:
    """Header fields and TLVs common to every PDU (§3.2)."""

    command_id: ClassVar[int]
    _SPEC: ClassVar[Spec] = ()
    # Fields that may be absent from an error response (§4.1.2, §4.4.2: no body on error).
    _OPTIONAL_BODY: ClassVar[bool] = False
    _BODY_ON_ERROR: ClassVar[bool] = False  # encode the (optional) body with an error status too

    sequence: int = 0
    status: int = 0
    tlvs: list[Tlv] = field(default_factory=list)

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)

    @property
    def name(self) -> str:
        try:
            return CommandId(self.command_id).name.lower()
        except ValueError:  # pragma: no cover - every class uses a CommandId
            return f"0x{self.command_id:08X}"

    # TLV access -------------------------------------------------------------------------
    def tlv(self, tag: int) -> Tlv | None:
        for t in self.tlvs:
            if t.tag == tag:
                return t
        return None

    def tlv_int(self, tag: int) -> int | None:
        t = self.tlv(tag)
        return None if t is None else int.from_bytes(t.value, "big")

    def tlv_bytes(self, tag: int) -> bytes | None:
        t = self.tlv(tag)
        return None if t is None else t.value

    def tlv_str(self, tag: int) -> str | None:
        t = self.tlv(tag)
        return None if t is None else t.value.rstrip(b"\0").decode("latin-1")

    def set_tlv(self, tag: int, value: int | str | bytes) -> None:
        new = Tlv.of(tag, value)
        for i, t in enumerate(self.tlvs):
            if t.tag == tag:
                self.tlvs[i] = new
                return
        self.tlvs.append(new)

    # Encoding ---------------------------------------------------------------------------
    def encode(self) -> bytes:
        try:
            body = self._encode_body()
        except (UnicodeEncodeError, ValueError, OverflowError, struct.error) as exc:
            raise PduError(f"{self.name}: {exc}", command_id=self.command_id) from exc
        for t in self.tlvs:
            body += _TLV_HEAD.pack(t.tag, len(t.value)) + t.value
        return (
            HEADER.pack(HEADER_SIZE + len(body), self.command_id, self.status, self.sequence) + body
        )

    def _encode_body(self) -> bytes:
        if (
            self._OPTIONAL_BODY
            and not self._BODY_ON_ERROR
            and self.status != 0
            and not self.tlvs  # TLVs follow the mandatory body, which must then be present
            and not self._has_body_values()
        ):
            return b""
        out = bytearray()
        for name, kind, size, status in self._SPEC:
            value = getattr(self, name)
            if kind == U8:
                if not 0 <= value <= 0xFF:
                    raise PduError(
                        f"{self.name}.{name}={value} does not fit one octet", status=status
                    )
                out.append(value)
            elif kind == C:
                raw = value.encode("latin-1")
                if b"\0" in raw:
                    raise PduError(f"{self.name}.{name} contains a NUL octet", status=status)
                if len(raw) >= size:
                    raise PduError(
                        f"{self.name}.{name} is {len(raw)} octets, at most {size - 1} allowed",
                        status=status,
                    )
                out += raw
                out.append(0)
            elif kind == SM:
                if len(value) > 254:
                    raise PduError(
                        f"{self.name}.short_message is {len(value)} octets; "
                        "over 254 use the message_payload TLV (§5.2.21)",
                        status=status,
                    )
                out.append(len(value))
                out += value
            elif kind == U32:
                out += _U32.pack(value)
            elif kind == DESTS:
                _encode_dests(out, value)
            else:  # UNSUCC
                _encode_unsuccess(out, value)
        return bytes(out)

    def _has_body_values(self) -> bool:
        """True when any body field differs from its default (an error resp may carry a body)."""
        return any(getattr(self, name) not in ("", 0) for name, *_ in self._SPEC)

    # Responses --------------------------------------------------------------------------
    def response(self, status: int = 0, **fields: Any) -> Pdu:
        """The response PDU to this request, with the same sequence number (§2.2.1)."""
        if self.is_response:
            raise SmppError(f"{self.name} is a response; it has no response")
        cls = _RESPONSE_OF.get(type(self))
        if cls is None:
            raise SmppError(
                f"{self.name} has no response PDU (§4.12: outbind and alert_notification)"
            )
        return cls(sequence=self.sequence, status=status, **fields)


def _cstr_bytes(text: str, size: int, what: str, status: int) -> bytes:
    raw = text.encode("latin-1")
    if len(raw) >= size or b"\0" in raw:
        raise PduError(f"{what}: at most {size - 1} octets and no NUL", status=status)
    return raw + b"\0"


def _encode_dests(out: bytearray, dests: list[SmeAddress | DistributionList]) -> None:
    if len(dests) > 254:
        raise PduError("submit_multi allows at most 254 destinations", status=_S.ESME_RINVNUMDESTS)
    out.append(len(dests))
    for d in dests:
        if isinstance(d, SmeAddress):
            out += bytes((1, d.ton, d.npi))
            out += _cstr_bytes(d.address, 21, "dest_address", _S.ESME_RINVDSTADR)
        else:
            out += b"\x02" + _cstr_bytes(d.name, 21, "dl_name", _S.ESME_RINVDLNAME)


def _encode_unsuccess(out: bytearray, items: list[UnsuccessSme]) -> None:
    if len(items) > 255:
        raise PduError("no_unsuccess is one octet: at most 255 unsuccess_sme entries")
    out.append(len(items))
    for u in items:
        out += bytes((u.ton, u.npi))
        out += _cstr_bytes(u.address, 21, "unsuccess_sme address", _S.ESME_RINVDSTADR)
        out += _U32.pack(u.error_status_code)


@dataclass(slots=True, kw_only=True)
class _Bind(Pdu):
    _SPEC: ClassVar[Spec] = _BIND
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(slots=True, kw_only=True)
class _BindResp(Pdu):
    _SPEC: ClassVar[Spec] = (_c("system_id", 16, _S.ESME_RINVSYSID),)
    _OPTIONAL_BODY: ClassVar[bool] = True
    system_id: str = ""


@dataclass(slots=True, kw_only=True)
class BindTransmitter(_Bind):
    command_id: ClassVar[int] = CommandId.BIND_TRANSMITTER


@dataclass(slots=True, kw_only=True)
class BindTransmitterResp(_BindResp):
    command_id: ClassVar[int] = CommandId.BIND_TRANSMITTER_RESP


@dataclass(slots=True, kw_only=True)
class BindReceiver(_Bind):
    command_id: ClassVar[int] = CommandId.BIND_RECEIVER


@dataclass(slots=True, kw_only=True)
class BindReceiverResp(_BindResp):
    command_id: ClassVar[int] = CommandId.BIND_RECEIVER_RESP


@dataclass(slots=True, kw_only=True)
class BindTransceiver(_Bind):
    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER


@dataclass(slots=True, kw_only=True)
class BindTransceiverResp(_BindResp):
    command_id: ClassVar[int] = CommandId.BIND_TRANSCEIVER_RESP


@dataclass(slots=True, kw_only=True)
class Outbind(Pdu):
    command_id: ClassVar[int] = CommandId.OUTBIND
    _SPEC: ClassVar[Spec] = (
        _c("system_id", 16, _S.ESME_RINVSYSID),
        _c("password", 9, _S.ESME_RINVPASWD),
    )
    system_id: str = ""
    password: str = ""


@dataclass(slots=True, kw_only=True)
class Unbind(Pdu):
    command_id: ClassVar[int] = CommandId.UNBIND


@dataclass(slots=True, kw_only=True)
class UnbindResp(Pdu):
    command_id: ClassVar[int] = CommandId.UNBIND_RESP


@dataclass(slots=True, kw_only=True)
class EnquireLink(Pdu):
    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK


@dataclass(slots=True, kw_only=True)
class EnquireLinkResp(Pdu):
    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK_RESP


@dataclass(slots=True, kw_only=True)
class GenericNack(Pdu):
    command_id: ClassVar[int] = CommandId.GENERIC_NACK


@dataclass(slots=True, kw_only=True)
class _ShortMessage(Pdu):
    """The common body of submit_sm and deliver_sm (§4.4.1, §4.6.1)."""

    _SPEC: ClassVar[Spec] = (
        _c("service_type", 6, _S.ESME_RINVSERTYP),
        *_SOURCE21,
        *_DEST21,
        *_SUBMIT_TAIL,
    )
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


@dataclass(slots=True, kw_only=True)
class _MessageIdResp(Pdu):
    _SPEC: ClassVar[Spec] = _MESSAGE_ID
    _OPTIONAL_BODY: ClassVar[bool] = True
    message_id: str = ""


@dataclass(slots=True, kw_only=True)
class SubmitSm(_ShortMessage):
    command_id: ClassVar[int] = CommandId.SUBMIT_SM


@dataclass(slots=True, kw_only=True)
class SubmitSmResp(_MessageIdResp):
    command_id: ClassVar[int] = CommandId.SUBMIT_SM_RESP


@dataclass(slots=True, kw_only=True)
class DeliverSm(_ShortMessage):
    command_id: ClassVar[int] = CommandId.DELIVER_SM


@dataclass(slots=True, kw_only=True)
class DeliverSmResp(_MessageIdResp):
    """§4.6.2: message_id is unused and set to NULL: the one-octet body is sent with an error
    status too (only submit_sm_resp's body goes on error, §4.4.2). osmo-msc's libsmpp34 drops a
    bodyless deliver_sm_resp, so a message the gateway refused would time out at the phone
    instead of getting its RP-ERROR. A bodyless one is still read."""

    command_id: ClassVar[int] = CommandId.DELIVER_SM_RESP
    _BODY_ON_ERROR: ClassVar[bool] = True


@dataclass(slots=True, kw_only=True)
class SubmitMulti(Pdu):
    command_id: ClassVar[int] = CommandId.SUBMIT_MULTI
    _SPEC: ClassVar[Spec] = (
        _c("service_type", 6, _S.ESME_RINVSERTYP),
        *_SOURCE21,
        ("dest_addresses", DESTS, 0, _S.ESME_RINVDESTFLAG),
        *_SUBMIT_TAIL,
    )
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addresses: list[SmeAddress | DistributionList] = field(default_factory=list)
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


@dataclass(slots=True, kw_only=True)
class SubmitMultiResp(Pdu):
    command_id: ClassVar[int] = CommandId.SUBMIT_MULTI_RESP
    _SPEC: ClassVar[Spec] = (*_MESSAGE_ID, ("unsuccess_smes", UNSUCC, 0, _S.ESME_RINVCMDLEN))
    _OPTIONAL_BODY: ClassVar[bool] = True
    message_id: str = ""
    unsuccess_smes: list[UnsuccessSme] = field(default_factory=list)

    def _has_body_values(self) -> bool:
        return bool(self.message_id or self.unsuccess_smes)


@dataclass(slots=True, kw_only=True)
class DataSm(Pdu):
    command_id: ClassVar[int] = CommandId.DATA_SM
    _SPEC: ClassVar[Spec] = (
        _c("service_type", 6, _S.ESME_RINVSERTYP),
        _b("source_addr_ton"),
        _b("source_addr_npi"),
        _c("source_addr", 65, _S.ESME_RINVSRCADR),
        _b("dest_addr_ton"),
        _b("dest_addr_npi"),
        _c("destination_addr", 65, _S.ESME_RINVDSTADR),
        _b("esm_class"),
        _b("registered_delivery"),
        _b("data_coding"),
    )
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0


@dataclass(slots=True, kw_only=True)
class DataSmResp(_MessageIdResp):
    command_id: ClassVar[int] = CommandId.DATA_SM_RESP


@dataclass(slots=True, kw_only=True)
class QuerySm(Pdu):
    command_id: ClassVar[int] = CommandId.QUERY_SM
    _SPEC: ClassVar[Spec] = (*_MESSAGE_ID, *_SOURCE21)
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


@dataclass(slots=True, kw_only=True)
class QuerySmResp(Pdu):
    command_id: ClassVar[int] = CommandId.QUERY_SM_RESP
    _SPEC: ClassVar[Spec] = (
        *_MESSAGE_ID,
        _c("final_date", 17),
        _b("message_state"),
        _b("error_code"),
    )
    _OPTIONAL_BODY: ClassVar[bool] = True
    message_id: str = ""
    final_date: str = ""
    message_state: int = 0
    error_code: int = 0


@dataclass(slots=True, kw_only=True)
class CancelSm(Pdu):
    command_id: ClassVar[int] = CommandId.CANCEL_SM
    _SPEC: ClassVar[Spec] = (
        _c("service_type", 6, _S.ESME_RINVSERTYP),
        *_MESSAGE_ID,
        *_SOURCE21,
        *_DEST21,
    )
    service_type: str = ""
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


@dataclass(slots=True, kw_only=True)
class CancelSmResp(Pdu):
    command_id: ClassVar[int] = CommandId.CANCEL_SM_RESP


@dataclass(slots=True, kw_only=True)
class ReplaceSm(Pdu):
    command_id: ClassVar[int] = CommandId.REPLACE_SM
    _SPEC: ClassVar[Spec] = (
        *_MESSAGE_ID,
        *_SOURCE21,
        _c("schedule_delivery_time", 17, _S.ESME_RINVSCHED),
        _c("validity_period", 17, _S.ESME_RINVEXPIRY),
        _b("registered_delivery"),
        _b("sm_default_msg_id"),
        ("short_message", SM, 255, _S.ESME_RINVMSGLEN),
    )
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


@dataclass(slots=True, kw_only=True)
class ReplaceSmResp(Pdu):
    command_id: ClassVar[int] = CommandId.REPLACE_SM_RESP


@dataclass(slots=True, kw_only=True)
class AlertNotification(Pdu):
    command_id: ClassVar[int] = CommandId.ALERT_NOTIFICATION
    _SPEC: ClassVar[Spec] = (
        _b("source_addr_ton"),
        _b("source_addr_npi"),
        _c("source_addr", 65, _S.ESME_RINVSRCADR),
        _b("esme_addr_ton"),
        _b("esme_addr_npi"),
        _c("esme_addr", 65),
    )
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    esme_addr_ton: int = 0
    esme_addr_npi: int = 0
    esme_addr: str = ""


PDU_CLASSES: dict[int, type[Pdu]] = {
    cls.command_id: cls
    for cls in (
        BindTransmitter, BindTransmitterResp, BindReceiver, BindReceiverResp, BindTransceiver,
        BindTransceiverResp, Outbind, Unbind, UnbindResp, EnquireLink, EnquireLinkResp,
        GenericNack, SubmitSm, SubmitSmResp, DeliverSm, DeliverSmResp, SubmitMulti,
        SubmitMultiResp, DataSm, DataSmResp, QuerySm, QuerySmResp, CancelSm, CancelSmResp,
        ReplaceSm, ReplaceSmResp, AlertNotification,
    )
}  # fmt: skip

_RESPONSE_OF: dict[type[Pdu], type[Pdu]] = {
    cls: PDU_CLASSES[cls.command_id | RESPONSE_BIT]
    for cls in PDU_CLASSES.values()
    if not cls.command_id & RESPONSE_BIT and (cls.command_id | RESPONSE_BIT) in PDU_CLASSES
}


# --------------------------------------------------------------------------------------------
# Decoding


def peek_header(data: bytes | bytearray | memoryview) -> tuple[int, int, int, int]:
    """(command_length, command_id, command_status, sequence_number) of the PDU at data[0:16]."""
    length, command_id, status, sequence = HEADER.unpack_from(data, 0)
    return length, command_id, status, sequence


def decode_pdu(data: bytes) -> Pdu:
    """Decode one complete PDU. `len(data)` must equal its command_length.

    Raises UnknownCommandError, or PduError carrying the command_status to answer with.
    """
    if len(data) < HEADER_SIZE:
        raise InvalidLengthError(
            f"PDU of {len(data)} octets is shorter than the 16-octet header",
            status=Status.ESME_RINVCMDLEN,
            fatal=True,
        )
    length, command_id, status, sequence = HEADER.unpack_from(data, 0)
    if length != len(data):
        raise InvalidLengthError(
            f"command_length {length} but {len(data)} octets given",
            status=Status.ESME_RINVCMDLEN,
            command_id=command_id,
            sequence=sequence,
            fatal=True,
        )
    cls = PDU_CLASSES.get(command_id)
    if cls is None:
        raise UnknownCommandError(
            f"unknown command_id 0x{command_id:08X}",
            status=Status.ESME_RINVCMDID,
            command_id=command_id,
            sequence=sequence,
        )
    try:
        kwargs, offset = _decode_body(cls, data, HEADER_SIZE, length, status)
        tlvs = decode_tlvs(data, offset, length) if offset < length else []
    except PduError as exc:
        exc.command_id, exc.sequence = command_id, sequence
        raise
    pdu = cls(sequence=sequence, status=status, tlvs=tlvs, **kwargs)
    return pdu


def _decode_body(
    cls: type[Pdu], data: bytes, offset: int, end: int, status: int
) -> tuple[dict[str, Any], int]:
    kwargs: dict[str, Any] = {}
    if offset == end and (cls._OPTIONAL_BODY or not cls._SPEC):
        return kwargs, offset  # error responses carry no body (§4.4.2)
    name = ""
    for name, kind, size, err in cls._SPEC:
        if kind == C:
            nul = data.find(b"\0", offset, min(end, offset + size))
            if nul < 0:
                if end - offset < size:
                    raise PduError(
                        f"{name}: C-Octet String not terminated before the PDU end", status=err
                    )
                raise PduError(f"{name}: longer than {size - 1} octets", status=err)
            kwargs[name] = data[offset:nul].decode("latin-1")
            offset = nul + 1
        elif kind == U8:
            if offset >= end:
                raise PduError(f"{name}: PDU ends before this field", status=err)
            kwargs[name] = data[offset]
            offset += 1
        elif kind == SM:
            if offset >= end:
                raise PduError("sm_length: PDU ends before this field", status=err)
            sm_length = data[offset]
            offset += 1
            if sm_length > 254:
                raise PduError(
                    "sm_length 255: at most 254 octets, longer text goes in message_payload",
                    status=Status.ESME_RINVMSGLEN,
                )
            if offset + sm_length > end:
                raise PduError(
                    f"sm_length {sm_length} runs past the PDU end ({end - offset} octets left)",
                    status=Status.ESME_RINVMSGLEN,
                )
            kwargs[name] = data[offset : offset + sm_length]
            offset += sm_length
        elif kind == DESTS:
            kwargs[name], offset = _decode_dests(data, offset, end)
        elif kind == UNSUCC:
            if offset == end:  # some SMSCs omit no_unsuccess when all succeeded
                kwargs[name] = []
                continue
            kwargs[name], offset = _decode_unsuccess(data, offset, end)
        else:  # pragma: no cover - U32 is only used inside lists
            raise AssertionError(kind)
    return kwargs, offset


def _cstr(data: bytes, offset: int, end: int, size: int, what: str, status: int) -> tuple[str, int]:
    nul = data.find(b"\0", offset, min(end, offset + size))
    if nul < 0:
        raise PduError(
            f"{what}: C-Octet String missing its NUL within {size} octets", status=status
        )
    return data[offset:nul].decode("latin-1"), nul + 1


def _decode_dests(
    data: bytes, offset: int, end: int
) -> tuple[list[SmeAddress | DistributionList], int]:
    if offset >= end:
        raise PduError("number_of_dests missing", status=_S.ESME_RINVNUMDESTS)
    count = data[offset]
    offset += 1
    dests: list[SmeAddress | DistributionList] = []
    for i in range(count):
        if offset >= end:
            raise PduError(f"dest_address {i} missing", status=_S.ESME_RINVNUMDESTS)
        flag = data[offset]
        offset += 1
        if flag == 1:
            if offset + 2 > end:
                raise PduError(f"dest_address {i} truncated", status=_S.ESME_RINVDSTADR)
            ton, npi = data[offset], data[offset + 1]
            addr, offset = _cstr(data, offset + 2, end, 21, f"dest_address {i}", _S.ESME_RINVDSTADR)
            dests.append(SmeAddress(ton, npi, addr))
        elif flag == 2:
            name, offset = _cstr(data, offset, end, 21, f"dl_name {i}", _S.ESME_RINVDLNAME)
            dests.append(DistributionList(name))
        else:
            raise PduError(f"dest_flag {flag} of dest_address {i}", status=_S.ESME_RINVDESTFLAG)
    return dests, offset


def _decode_unsuccess(data: bytes, offset: int, end: int) -> tuple[list[UnsuccessSme], int]:
    count = data[offset]
    offset += 1
    items: list[UnsuccessSme] = []
    for i in range(count):
        if offset + 2 > end:
            raise PduError(f"unsuccess_sme {i} truncated", status=_S.ESME_RINVCMDLEN)
        ton, npi = data[offset], data[offset + 1]
        addr, offset = _cstr(data, offset + 2, end, 21, f"unsuccess_sme {i}", _S.ESME_RINVCMDLEN)
        if offset + 4 > end:
            raise PduError(f"unsuccess_sme {i} error_status_code truncated")
        (code,) = _U32.unpack_from(data, offset)
        offset += 4
        items.append(UnsuccessSme(ton, npi, addr, code))
    return items, offset
