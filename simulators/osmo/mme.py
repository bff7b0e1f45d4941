"""A virtual MME on SGs (3GPP TS 29.118 / TS 23.272): many virtual phones over one link.

    async with VirtualMme("127.0.0.1", lab.cfg.sgs_port) as mme:
        alice = mme.phone("001010000000001", "4900001")
        bob = mme.phone("001010000000002", "4900002")
        assert (await alice.attach()).accepted
        await bob.attach()
        results = await alice.send_sms("4900002", "Сәлем!")
        sms = await bob.next_sms(timeout=10)

osmo-msc trusts the MME on SGs (no authentication), so one TCP connection to its SGs port
(through the lab's SCTP shim) carries the location updates, paging and SMS of every phone.
The SGsAP and NAS work is done by the sans-I/O codecs :mod:`.sgsap` and :mod:`.nas`; TPDUs by
:mod:`gsm_probe.ts23040`. This module is the asyncio pump: a reader task dispatching messages
by IMSI, and a writer task.

Uplink framing. osmo-msc reads its SGs socket one sctp_recvmsg() per SGsAP message (SCTP keeps
message boundaries); the lab's shim (simulators/osmo/sctp_shim.c) makes that socket TCP, and
SGsAP has no length field. Two ways to keep osmo-msc reading whole messages (``framing``):

- ``"length"`` (default): the MME opens the connection with the preamble ``FGS1`` and sends each
  message as a 2-byte big-endian length + the message, as fast as it likes (queued messages go
  out together, in order); the shim hands osmo-msc one message per call. Needs a shim that knows
  the framing: :func:`shim_framing` tells from the built library.
- ``"paced"``: no preamble, bare messages, one at a time; before the next, the writer waits
  until osmo-msc has read the last one (its receive queue in /proc/net/tcp and our unsent bytes,
  SIOCOUTQNSD, both empty; against a remote MSC a fixed gap). For a shim without framing.
  Two messages that reached osmo-msc's buffer together would be read as one (the second lost).

The downlink needs neither: osmo-msc's messages are split by walking their IEs (sgsap.Framer).

Automatic answers (TS 29.118): PAGING-REQUEST -> SERVICE-REQUEST (service indicator as
paged, UE EMM mode CONNECTED) for a known phone, PAGING-REJECT otherwise; LOCATION-UPDATE-ACCEPT
with a new TMSI -> TMSI-REALLOCATION-COMPLETE; ALERT-REQUEST -> ALERT-ACK; RESET-INDICATION ->
RESET-ACK; MM-INFORMATION-REQUEST and RELEASE-REQUEST need no answer (recorded as events).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeVar

from gsm_probe.ts23040 import (
    Address,
    SmsDeliver,
    SmsStatusReport,
    TpduError,
    decode_mt,
    join_parts,
    submit_parts,
)
from simulators.osmo import sgsap
from simulators.osmo.nas import (
    CpMessage,
    CpType,
    NasError,
    RpAck,
    RpData,
    RpError,
    decode_cp,
    decode_rp,
    encode_cp,
    encode_rp,
)
from simulators.osmo.sgsap import Iei, Lai, Message, MsgType

__all__ = [
    "DEFAULT_MME_NAME",
    "FRAMING_PREAMBLE",
    "AttachResult",
    "Framing",
    "MmeError",
    "Phone",
    "PhoneEvent",
    "ReceivedSms",
    "SendResult",
    "VirtualMme",
    "shim_framing",
]

# osmo-msc parses the MME name as a GUMMEI domain (TS 23.003 §19.4.2.4) and wants at least 55
# octets of it: this form, mmec<2 hex>.mmegi<4 hex>.mme.epc.mnc<3>.mcc<3>.3gppnetwork.org.
DEFAULT_MME_NAME: Final = "mmec01.mmegi0001.mme.epc.mnc001.mcc001.3gppnetwork.org"
RP_CAUSE_INVALID_MANDATORY: Final = 96  # TS 24.011 table 8.4
CP_CAUSE_SEMANTICALLY_INCORRECT: Final = 95  # TS 24.011 §8.1.4.2
# linux/sockios.h: bytes of the send queue not yet handed to the network layer. (SIOCOUTQ, the
# bytes not yet acked, would wait for the peer's delayed ACK: 40 ms per message.)
SIOCOUTQNSD: Final = 0x894B
HOLD_TIME: Final = 0.002  # s: how long the framer may hold a message that could still grow
Framing = Literal["length", "paced"]
FRAMING_PREAMBLE: Final = b"FGS1"  # opens a length-framed connection (sctp_shim.c)
# What sctp_shim.c puts in the library when it understands FRAMING_PREAMBLE.
SHIM_FRAMING_MARK: Final = b"fraudgate-sctp-shim: framing FGS1"

T = TypeVar("T")


class MmeError(Exception):
    """The SGs link is down (osmo-msc closed it, or the MME was closed), or osmo-msc answered
    a phone's request with a message that ends it (STATUS, RESET-INDICATION)."""


# --------------------------------------------------------------------------------------------
# Results and events
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttachResult:
    """LOCATION-UPDATE-ACCEPT (``accepted``, ``tmsi`` when one was allocated) or -REJECT
    (``cause``: the reject cause IE, a TS 24.008 §10.5.3.6 MM cause)."""

    accepted: bool
    tmsi: int | None = None
    lai: Lai | None = None
    cause: int | None = None


Outcome = Literal["ack", "error", "cp-error", "released", "timeout"]


@dataclass(frozen=True, slots=True)
class SendResult:
    """One MO SMS part: ``ack`` (RP-ACK), ``error`` (RP-ERROR, ``rp_cause``), ``cp-error``
    (CP-ERROR, ``cp_cause``), ``released`` (RELEASE-REQUEST or STATUS with an SGs cause while
    waiting, ``sgs_cause``), ``timeout``."""

    part: int
    parts: int
    tp_mr: int
    rp_mr: int
    ti: int
    outcome: Outcome
    rp_cause: int | None = None
    cp_cause: int | None = None
    sgs_cause: int | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "ack"

    def __str__(self) -> str:
        cause = next(
            (f" {n} {v}" for n, v in (("rp", self.rp_cause), ("cp", self.cp_cause),
                                     ("sgs", self.sgs_cause)) if v is not None), ""
        )  # fmt: skip
        return f"part {self.part}/{self.parts} mr {self.tp_mr}: {self.outcome}{cause}"


@dataclass(frozen=True, slots=True)
class ReceivedSms:
    """An MT SMS, concatenated parts joined: ``parts`` the SMS-DELIVERs in sequence order."""

    originator: str
    text: str
    timestamps: tuple[datetime, ...]
    concat_ref: int | None
    dcs: int
    parts: tuple[SmsDeliver, ...]

    @property
    def status_report_indication(self) -> bool:
        return any(p.status_report_indication for p in self.parts)


@dataclass(frozen=True, slots=True)
class PhoneEvent:
    at: float  # time.time()
    imsi: str
    kind: str
    detail: str = ""

    def __str__(self) -> str:
        stamp = (
            time.strftime("%H:%M:%S", time.localtime(self.at)) + f".{int(self.at % 1 * 1000):03d}"
        )
        return f"{stamp} {self.imsi} {self.kind}{': ' + self.detail if self.detail else ''}"


@dataclass(frozen=True, slots=True)
class _Abort:
    """Ends a waiting MO transaction: a RELEASE-REQUEST with a cause or a STATUS."""

    sgs_cause: int | None


_Down = CpMessage | _Abort


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _address(number: str | Address) -> Address:
    """``+`` prefix: international (TON 1); digits only: TON unknown (0), NPI ISDN."""
    if isinstance(number, Address):
        return number
    if number.startswith("+"):
        return Address(number[1:], 1, 1)
    return Address(number, 0, 1)


# --------------------------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------------------------


class Phone:
    """One virtual phone (IMSI) behind the MME. Create with :meth:`VirtualMme.phone`.

    ``mt_rp_error``: when set (e.g. 22, memory capacity exceeded), every MT SMS-DELIVER is
    answered with RP-ERROR and this cause instead of RP-ACK. ``answer_paging`` False: paging
    for this phone is rejected (PAGING-REJECT, UE unreachable)."""

    def __init__(self, mme: VirtualMme, imsi: str, msisdn: str = "") -> None:
        sgsap.encode_imsi(imsi)  # validates
        self.mme = mme
        self.imsi = imsi
        self.msisdn = msisdn
        self.tmsi: int | None = None
        self.attached = False
        self.mt_rp_error: int | None = None
        self.answer_paging = True
        self.inbox: asyncio.Queue[ReceivedSms] = asyncio.Queue()
        self.reports: asyncio.Queue[SmsStatusReport] = asyncio.Queue()
        self.events: list[PhoneEvent] = []
        self._lu: asyncio.Future[AttachResult] | None = None
        self._detach: asyncio.Future[None] | None = None
        self._mo: dict[int, asyncio.Queue[_Down]] = {}
        self._mo_lock = asyncio.Lock()
        self._parts: dict[tuple[str, int, int], dict[int, SmsDeliver]] = {}
        self._next_ti = 0
        self._tp_mr = 0
        self._rp_mr = 0
        self._concat_ref = 0

    def __repr__(self) -> str:
        return f"Phone({self.imsi}, msisdn={self.msisdn!r}, attached={self.attached})"

    def _event(self, kind: str, detail: str = "") -> None:
        self.events.append(PhoneEvent(time.time(), self.imsi, kind, detail))

    # ---- attach / detach ---------------------------------------------------------------------

    async def attach(self, timeout: float = 5.0) -> AttachResult:
        """IMSI attach (LOCATION-UPDATE-REQUEST, EPS LU type IMSI attach). TimeoutError when
        osmo-msc does not answer in time, MmeError when the link goes down or osmo-msc answers
        with STATUS / RESET-INDICATION."""
        self.mme._check_open()
        self._lu = asyncio.get_running_loop().create_future()
        self.mme._send(sgsap.location_update_request(self.imsi, self.mme.mme_name, self.mme.lai))
        try:
            return await self.mme._race(self._lu, timeout, f"attach of {self.imsi}")
        finally:
            self._lu = None

    async def detach(self, timeout: float = 5.0) -> None:
        """Explicit UE-initiated IMSI detach from non-EPS services; waits for IMSI-DETACH-ACK."""
        self.mme._check_open()
        self._detach = asyncio.get_running_loop().create_future()
        self.mme._send(sgsap.imsi_detach_indication(self.imsi, self.mme.mme_name))
        try:
            await self.mme._race(self._detach, timeout, f"detach of {self.imsi}")
        finally:
            self._detach = None

    # ---- MO SMS -------------------------------------------------------------------------------

    async def send_sms(
        self,
        dest: str | Address,
        text: str,
        *,
        status_report: bool = False,
        timeout: float = 10.0,
    ) -> list[SendResult]:
        """Send ``text`` to ``dest``: GSM 7-bit if it fits the default alphabet, else UCS2;
        concatenated (8-bit reference) when too long for one SMS. One CP/RP transaction per
        part, in order; ``timeout`` applies to each part. A part that fails does not stop the
        next ones (a phone sends them all; the receiver will miss a part)."""
        address = _address(dest)
        ref = self._concat_ref
        self._concat_ref = (ref + 1) & 0xFF
        first = self._tp_mr
        tpdus = submit_parts(
            address, text, reference=first, concat_ref=ref, request_status_report=status_report
        )
        self._tp_mr = (first + len(tpdus)) & 0xFF
        results = []
        for i, pdu in enumerate(tpdus, 1):  # pdu[0] is the empty SMSC prefix of ts23040
            results.append(
                await self._mo_transaction(pdu[1:], i, len(tpdus), (first + i - 1) & 0xFF, timeout)
            )
        outcome = ", ".join(r.outcome for r in results)
        self._event("sms-sent", f"to {address} {_short(text)!r} ({len(tpdus)} parts): {outcome}")
        return results

    async def send_tpdu(self, tpdu: bytes, *, timeout: float = 10.0) -> SendResult:
        """One raw RP-DATA transaction carrying ``tpdu`` (an SMS-SUBMIT without SMSC prefix)."""
        tp_mr = tpdu[1] if len(tpdu) > 1 else 0
        result = await self._mo_transaction(tpdu, 1, 1, tp_mr, timeout)
        self._event("tpdu-sent", f"{len(tpdu)} octets: {result.outcome}")
        return result

    async def _mo_transaction(
        self, tpdu: bytes, part: int, parts: int, tp_mr: int, timeout: float
    ) -> SendResult:
        mme = self.mme
        mme._check_open()
        async with self._mo_lock:  # one SMS transfer at a time, like a real MS
            ti = self._next_ti
            self._next_ti = (ti + 1) % 7  # TI 7 is reserved (TS 24.007 §11.2.3.1.3)
            rp_mr = self._rp_mr
            self._rp_mr = (rp_mr + 1) & 0xFF
            queue: asyncio.Queue[_Down] = asyncio.Queue()
            self._mo[ti] = queue
            loop = asyncio.get_running_loop()
            started = loop.time()

            def result(
                outcome: Outcome,
                rp_cause: int | None = None,
                cp_cause: int | None = None,
                sgs_cause: int | None = None,
            ) -> SendResult:
                return SendResult(
                    part, parts, tp_mr, rp_mr, ti, outcome, rp_cause, cp_cause, sgs_cause,
                    loop.time() - started,
                )  # fmt: skip

            try:
                rpdu = encode_rp(RpData(rp_mr, tpdu, uplink=True, destination=mme.smsc))
                self._uplink(CpMessage.data(ti, False, rpdu))
                while True:
                    left = started + timeout - loop.time()
                    try:
                        item = await mme._race(queue.get(), left, "SMS transfer")
                    except TimeoutError:
                        return result("timeout")
                    if isinstance(item, _Abort):
                        return result("released", sgs_cause=item.sgs_cause)
                    if item.type == CpType.ACK:
                        continue
                    if item.type == CpType.ERROR:
                        return result("cp-error", cp_cause=item.cause)
                    self._uplink(CpMessage.ack(ti, False))
                    try:
                        rp = decode_rp(item.user_data)
                    except NasError as exc:
                        self._event("protocol-error", f"MO RP answer: {exc}")
                        return result("error")
                    if isinstance(rp, RpAck):
                        return result("ack")
                    if isinstance(rp, RpError):
                        return result("error", rp_cause=rp.cause)
                    self._event("protocol-error", f"MO answered with {type(rp).__name__}")
                    return result("error")
            finally:
                del self._mo[ti]

    def _uplink(self, cp: CpMessage) -> None:
        self.mme._send(sgsap.uplink_unitdata(self.imsi, encode_cp(cp)))

    # ---- MT SMS -------------------------------------------------------------------------------

    async def next_sms(self, timeout: float = 10.0) -> ReceivedSms:
        """The next complete MT SMS (TimeoutError if none arrives in time)."""
        return await self.mme._race(self.inbox.get(), timeout, f"SMS for {self.imsi}")

    async def next_report(self, timeout: float = 10.0) -> SmsStatusReport:
        return await self.mme._race(self.reports.get(), timeout, f"report for {self.imsi}")

    def _on_nas(self, nas: bytes) -> None:
        try:
            cp = decode_cp(nas)
        except NasError as exc:
            self._event("protocol-error", f"downlink NAS {nas.hex()}: {exc}")
            return
        if cp.ti_flag:  # the network answers a transaction this phone started
            queue = self._mo.get(cp.ti)
            if queue is not None:
                queue.put_nowait(cp)
                return
            # An answer after the transaction timed out here: acknowledged, recorded.
            detail = str(cp)
            if cp.type == CpType.DATA:
                self._uplink(CpMessage.ack(cp.ti, False))
                with contextlib.suppress(NasError):
                    detail += f" {decode_rp(cp.user_data)}"
            self._event("late-answer", detail)
        elif cp.type == CpType.DATA:
            self._on_mt_data(cp)
        elif cp.type == CpType.ERROR:
            self._event("mt-cp-error", str(cp))
        # CP-ACK with flag 0: the network acknowledges our CP-DATA(RP-ACK); the MT is over.

    def _on_mt_data(self, cp: CpMessage) -> None:
        self._uplink(CpMessage.ack(cp.ti, True))
        try:
            rp = decode_rp(cp.user_data)
        except NasError as exc:
            self._event("protocol-error", f"MT RPDU: {exc}")
            self._uplink(CpMessage.error(cp.ti, True, CP_CAUSE_SEMANTICALLY_INCORRECT))
            return
        if not isinstance(rp, RpData):
            self._event("protocol-error", f"MT CP-DATA carries {type(rp).__name__}")
            return
        try:
            tpdu = decode_mt(rp.user_data, with_smsc=False)
        except TpduError as exc:
            self._event("protocol-error", f"MT TPDU {rp.user_data.hex()}: {exc}")
            self._rp_answer(cp.ti, RpError(rp.reference, RP_CAUSE_INVALID_MANDATORY))
            return
        if isinstance(tpdu, SmsStatusReport):
            self._rp_answer(cp.ti, RpAck(rp.reference))
            self._event("report", f"mr {tpdu.reference} to {tpdu.recipient} status {tpdu.status}")
            self.reports.put_nowait(tpdu)
            return
        if self.mt_rp_error is not None:
            self._rp_answer(cp.ti, RpError(rp.reference, self.mt_rp_error))
            self._event("sms-refused", f"from {tpdu.originator}, RP-ERROR {self.mt_rp_error}")
            return
        self._rp_answer(cp.ti, RpAck(rp.reference))
        self._collect(tpdu)

    def _rp_answer(self, ti: int, rp: RpAck | RpError) -> None:
        self._uplink(CpMessage.data(ti, True, encode_rp(rp)))

    def _collect(self, sms: SmsDeliver) -> None:
        if sms.concat is None:
            self._deliver([sms])
            return
        key = (str(sms.originator), sms.concat.ref, sms.concat.total)
        parts = self._parts.setdefault(key, {})
        parts[sms.concat.seq] = sms
        if len(parts) == sms.concat.total:
            del self._parts[key]
            self._deliver([parts[seq] for seq in sorted(parts)])

    def _deliver(self, parts: list[SmsDeliver]) -> None:
        try:
            text = join_parts(parts)
        except TpduError as exc:
            self._event("protocol-error", f"reassembly: {exc}")
            return
        first = parts[0]
        sms = ReceivedSms(
            originator=str(first.originator),
            text=text,
            timestamps=tuple(p.timestamp for p in parts),
            concat_ref=None if first.concat is None else first.concat.ref,
            dcs=first.dcs,
            parts=tuple(parts),
        )
        self._event("sms-received", f"from {sms.originator} ({len(parts)} parts) {_short(text)!r}")
        self.inbox.put_nowait(sms)

    # ---- other downlink messages --------------------------------------------------------------

    def _on_message(self, msg: Message) -> None:
        kind = msg.type
        if kind == MsgType.LOCATION_UPDATE_ACCEPT:
            self._on_lu_accept(msg)
        elif kind == MsgType.LOCATION_UPDATE_REJECT:
            cause = msg.octet(Iei.REJECT_CAUSE)
            self.attached = False
            self._event("attach-rejected", f"cause {cause}")
            self._settle(self._lu, AttachResult(False, cause=cause))
        elif kind in (MsgType.IMSI_DETACH_ACK, MsgType.EPS_DETACH_ACK):
            self.attached = False
            self._event("detached")
            self._settle(self._detach, None)
        elif kind == MsgType.DOWNLINK_UNITDATA:
            self._on_nas(msg.require(Iei.NAS_CONTAINER))
        elif kind == MsgType.RELEASE_REQ:
            cause = msg.octet(Iei.SGS_CAUSE)
            self._event("released", "" if cause is None else f"SGs cause {cause}")
            if cause is not None:  # osmo-msc: not associated / unknown; a plain end has none
                self._abort_mo(cause)
        elif kind == MsgType.STATUS:
            cause = msg.octet(Iei.SGS_CAUSE)
            self._event("status", f"SGs cause {cause}")
            error = MmeError(f"osmo-msc answered {self.imsi} with STATUS, SGs cause {cause}")
            self._fail(self._lu, error)
            self._fail(self._detach, error)
            self._abort_mo(cause)
        elif kind == MsgType.MM_INFO_REQ:
            self._event("mm-info", msg.require(Iei.MM_INFORMATION).hex())
        else:
            self._event("message", str(msg))

    def _on_lu_accept(self, msg: Message) -> None:
        tmsi: int | None = None
        ident = msg.get(Iei.MOBILE_IDENTITY)
        if ident is not None:
            kind, value = sgsap.decode_mobile_identity(ident)
            if kind == "tmsi" and isinstance(value, int):
                tmsi = value
        lai = sgsap.decode_lai(msg.require(Iei.LAI))
        if tmsi is not None:
            self.tmsi = tmsi
            self.mme._send(sgsap.tmsi_realloc_complete(self.imsi))
        self.attached = True
        self._event("attach-accepted", f"TMSI {tmsi:08x}" if tmsi is not None else "no new TMSI")
        self._settle(self._lu, AttachResult(True, tmsi=tmsi, lai=lai))

    def _abort_mo(self, cause: int | None) -> None:
        for queue in self._mo.values():
            queue.put_nowait(_Abort(cause))

    @staticmethod
    def _settle(future: asyncio.Future[T] | None, value: T) -> None:
        if future is not None and not future.done():
            future.set_result(value)

    @staticmethod
    def _fail(future: asyncio.Future[T] | None, error: BaseException) -> None:
        if future is not None and not future.done():
            future.set_exception(error)


# --------------------------------------------------------------------------------------------
# The MME
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pacer:
    """Waits until osmo-msc has read what was sent (see the module docstring)."""

    fd: int
    family: int
    local: tuple[str, int]
    peer: tuple[str, int]
    fallback_gap: float = 0.005
    limit: float = 1.0
    _proc_key: tuple[str, str] | None = None
    _proc_ok: bool = True
    slow: int = field(default=0)  # sends after which the limit ran out

    def __post_init__(self) -> None:
        if self.family == socket.AF_INET:
            self._proc_key = (_proc_addr(*self.peer[:2]), _proc_addr(*self.local[:2]))
        self._proc_ok = self._proc_key is not None and self._peer_unread() is not None

    async def settle(self) -> None:
        if not self._proc_ok:
            await asyncio.sleep(self.fallback_gap)
            return
        deadline = time.monotonic() + self.limit
        delay = 0.0002
        while time.monotonic() < deadline:
            if self._unsent() == 0 and self._peer_unread() == 0:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.005)
        self.slow += 1

    def _unsent(self) -> int:
        try:
            raw = fcntl.ioctl(self.fd, SIOCOUTQNSD, b"\0\0\0\0")
        except OSError:
            return 0
        return int(struct.unpack("i", raw)[0])

    def _peer_unread(self) -> int | None:
        """rx_queue of the peer's socket (peer address local, ours remote), or None."""
        assert self._proc_key is not None
        want_local, want_remote = self._proc_key
        try:
            lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
        except OSError:
            return None
        for line in lines:
            fields = line.split()
            if fields[1] == want_local and fields[2] == want_remote:
                return int(fields[4].split(":")[1], 16)
        return None


def _proc_addr(ip: str, port: int) -> str:
    """An IPv4 address as /proc/net/tcp prints it (the 32-bit word in host order, hex)."""
    raw = socket.inet_aton(ip)
    word = raw[::-1] if sys.byteorder == "little" else raw
    return f"{word.hex().upper()}:{port:04X}"


def shim_framing(shim: str | os.PathLike[str] | None) -> Framing:
    """The framing for an osmo-msc run with this shim preloaded (``Lab.shim``, or
    ``LabState.shim`` of a lab already running): ``"length"`` when the built library carries
    the framing mark (a shim built from this source), ``"paced"`` for an older shim (a lab
    left running with it) or none (kernel SCTP, which this TCP MME does not speak anyway)."""
    if not shim:
        return "paced"
    try:
        return "length" if SHIM_FRAMING_MARK in Path(shim).read_bytes() else "paced"
    except OSError:
        return "paced"


def _frame(msg: Message) -> bytes:
    data = msg.encode()
    if len(data) > 0xFFFF:
        raise MmeError(f"{msg}: {len(data)} octets do not fit a 2-byte length")
    return len(data).to_bytes(2, "big") + data


class VirtualMme:
    """One SGs association to osmo-msc (an async context manager) and the phones behind it.

    ``framing``: how uplink messages keep their boundaries through the lab's shim (module
    docstring): ``"length"`` for the shim of this source, ``"paced"`` for one without framing.
    Callers that know the lab pass ``shim_framing(lab.shim)``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 29118,
        *,
        mme_name: str = DEFAULT_MME_NAME,
        lai: Lai | None = None,
        smsc: Address | None = None,
        connect_timeout: float = 5.0,
        framing: Framing = "length",
    ) -> None:
        if framing not in ("length", "paced"):
            raise ValueError(f"framing must be 'length' or 'paced', not {framing!r}")
        self.host, self.port = host, port
        self.framing: Framing = framing
        self.mme_name = mme_name
        self.lai = lai or Lai("001", "01", 1)
        self.smsc = smsc or Address("1000", 1, 1)  # RP-DA of MO RP-DATA; osmo-msc needs one
        self.connect_timeout = connect_timeout
        self.phones: dict[str, Phone] = {}
        self.events: list[PhoneEvent] = []  # messages for no phone of ours, link state
        self.trace: deque[tuple[float, str, Message]] = deque(maxlen=5000)
        self.framer = sgsap.Framer()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pacer: _Pacer | None = None
        self._outq: asyncio.Queue[Message] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed: asyncio.Future[None] | None = None
        self._error: MmeError | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise MmeError(f"cannot connect to SGs {self.host}:{self.port}: {exc}") from exc
        self._reader, self._writer = reader, writer
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.framing == "length":
            writer.write(FRAMING_PREAMBLE)  # goes out with the first message
        else:
            self._pacer = _Pacer(sock.fileno(), sock.family, sock.getsockname(), sock.getpeername())
        self._closed = asyncio.get_running_loop().create_future()
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="sgs-reader"),
            asyncio.create_task(self._write_loop(), name="sgs-writer"),
        ]
        self._mme_event(
            "connected", f"{self.host}:{self.port} as {self.mme_name}, {self.framing} framing"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._shutdown(MmeError("the virtual MME was closed"))
        for task in self._tasks:
            task.cancel()
        if self._writer is not None:
            # Also ends a read whose cancellation asyncio.wait_for swallowed (Python 3.11 returns
            # the result when the read completes together with the cancel): it gets EOF.
            self._writer.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        for task in self._tasks:  # retrieve what they ended with (nothing to report: closing)
            if task.done() and not task.cancelled():
                task.exception()
        self._tasks = []
        if self._writer is not None:
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(self._writer.wait_closed(), 1.0)
            self._writer = None

    @property
    def closed(self) -> bool:
        return self._error is not None

    @property
    def error(self) -> MmeError | None:
        return self._error

    def phone(self, imsi: str, msisdn: str = "") -> Phone:
        """The phone with this IMSI (created on first use)."""
        phone = self.phones.get(imsi)
        if phone is None:
            phone = self.phones[imsi] = Phone(self, imsi, msisdn)
        elif msisdn and not phone.msisdn:
            phone.msisdn = msisdn
        return phone

    @property
    def slow_sends(self) -> int:
        """Paced framing: sends after which osmo-msc had not read the message within the pacing
        limit (always 0 with length framing)."""
        return 0 if self._pacer is None else self._pacer.slow

    # ---- plumbing -----------------------------------------------------------------------------

    def _mme_event(self, kind: str, detail: str = "") -> None:
        self.events.append(PhoneEvent(time.time(), "-", kind, detail))

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed is None:
            raise MmeError("the virtual MME is not connected (use `async with VirtualMme(...)`)")

    def _send(self, msg: Message) -> None:
        self._check_open()
        self._outq.put_nowait(msg)

    async def _race(self, aw: Awaitable[T], timeout: float, what: str) -> T:
        """``aw``, unless the link goes down first (MmeError) or ``timeout`` passes
        (TimeoutError)."""
        self._check_open()
        assert self._closed is not None
        task = asyncio.ensure_future(aw)
        waiting: set[asyncio.Future[Any]] = {task, self._closed}
        try:
            done, _ = await asyncio.wait(
                waiting, timeout=max(timeout, 0), return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            task.cancel()
            raise
        if task in done:
            return task.result()
        task.cancel()
        if self._error is not None:
            raise MmeError(f"{what}: {self._error}") from self._error
        raise TimeoutError(f"{what}: no answer in {timeout:g} s")

    def _shutdown(self, error: MmeError) -> None:
        if self._error is None:
            self._error = error
            self._mme_event("down", str(error))
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        for phone in self.phones.values():
            Phone._fail(phone._lu, self._error)
            Phone._fail(phone._detach, self._error)

    async def _write_loop(self) -> None:
        assert self._writer is not None
        try:
            while True:
                msg = await self._outq.get()
                if self._pacer is not None:  # paced: one message, then wait until it was read
                    self.trace.append((time.time(), "tx", msg))
                    self._writer.write(msg.encode())
                    await self._writer.drain()
                    await self._pacer.settle()
                    continue
                batch = [msg]  # length-framed: whatever is queued goes out in one write
                while not self._outq.empty():
                    batch.append(self._outq.get_nowait())
                now = time.time()
                self.trace.extend((now, "tx", m) for m in batch)
                self._writer.write(b"".join(_frame(m) for m in batch))
                await self._writer.drain()
        except (OSError, ConnectionError) as exc:
            self._shutdown(MmeError(f"SGs link to {self.host}:{self.port} broke: {exc}"))
        except MmeError as exc:
            self._shutdown(exc)

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while self._error is None:  # not after close(), even if a cancel got lost
                if self.framer.holding:  # a message that might still grow: wait a moment
                    try:
                        data = await asyncio.wait_for(self._reader.read(65536), HOLD_TIME)
                    except TimeoutError:
                        for msg in self.framer.flush():
                            self.trace.append((time.time(), "rx", msg))
                            self._dispatch(msg)
                        continue
                else:
                    data = await self._reader.read(65536)
                if not data:
                    raise MmeError(f"osmo-msc closed the SGs connection ({self.host}:{self.port})")
                for msg in self.framer.feed(data):
                    self.trace.append((time.time(), "rx", msg))
                    self._dispatch(msg)
        except MmeError as exc:
            self._shutdown(exc)
        except (OSError, ConnectionError) as exc:
            self._shutdown(MmeError(f"SGs link to {self.host}:{self.port} broke: {exc}"))
        except sgsap.SgsapError as exc:
            self._shutdown(MmeError(f"unreadable SGsAP from osmo-msc: {exc}"))

    def _dispatch(self, msg: Message) -> None:
        try:
            imsi = msg.imsi
        except sgsap.SgsapError as exc:
            self._mme_event("protocol-error", f"{msg}: {exc}")
            return
        try:
            if msg.type == MsgType.PAGING_REQ and imsi is not None:
                self._on_paging(imsi, msg)
            elif msg.type == MsgType.ALERT_REQ and imsi is not None:
                self._send(sgsap.alert_ack(imsi))
            elif msg.type == MsgType.RESET_IND:
                self._on_reset(msg)
            elif imsi is not None and imsi in self.phones:
                self.phones[imsi]._on_message(msg)
            else:
                self._mme_event("message", str(msg))
        except sgsap.SgsapError as exc:
            self._mme_event("protocol-error", f"{msg}: {exc}")

    def _on_paging(self, imsi: str, msg: Message) -> None:
        indicator = msg.octet(Iei.SERVICE_INDICATOR) or sgsap.ServiceIndicator.SMS
        phone = self.phones.get(imsi)
        if phone is None or not phone.answer_paging:
            self._send(sgsap.paging_reject(imsi, sgsap.SgsCause.UE_UNREACHABLE))
            (phone._event if phone else self._mme_event)("paging-rejected", imsi)
            return
        phone._event("paged", f"service indicator {indicator}")
        self._send(sgsap.service_request(imsi, indicator, sgsap.EmmMode.CONNECTED))

    def _on_reset(self, msg: Message) -> None:
        """VLR restart (or osmo-msc's answer to an HLR failure during a location update): the
        VLR forgot every association."""
        self._send(sgsap.reset_ack(self.mme_name))
        self._mme_event("vlr-reset", str(msg))
        error = MmeError("osmo-msc sent RESET-INDICATION (VLR reset / HLR failure)")
        for phone in self.phones.values():
            phone.attached = False
            Phone._fail(phone._lu, error)
