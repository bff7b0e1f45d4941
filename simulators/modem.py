"""A simulated GSM probe modem (SIMCom SIM7600 / Quectel EC25 style) on a pty or a TCP port.

Two layers, as everywhere in fraudgate:

* :class:`ModemCore` is sans-I/O: :meth:`ModemCore.receive` takes the bytes a client wrote,
  :meth:`ModemCore.data_to_send` gives back what the modem says (echo, responses, unsolicited
  result codes), time is passed in as ``now`` and :meth:`ModemCore.poll` runs what is due
  (rings, the end of a call, the end of a hang) by :meth:`ModemCore.next_deadline`.
* :class:`ModemSimulator` pumps a core over a pseudo-terminal (a stable symlink to the pty slave,
  like /dev/serial/by-id) or a TCP listener, and can unplug and replug the device.

The command set is what TS 27.007, TS 27.005 and V.250 define and what a real AT client
(the driver, and gammu) asks: V.250 command lines (several commands per line, ``;`` between
extended ones, §5.2-5.4), verbose or numeric result codes with ``\\r\\n`` framing (§5.7.1),
echo, +CME ERROR per +CMEE (TS 27.007 §9.1), +CMS ERROR for SMS commands (TS 27.005 §3.2.5),
PDU and text mode SMS with storage, +CNMI indications, incoming calls with +CLIP / +CRING and
registration URCs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import os
import shutil
import tempfile
import tty
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

from gsm_probe.ts23040 import (
    Address,
    SmsDeliver,
    SmsSubmit,
    TpduError,
    alphabet,
    decode_deliver,
    decode_submit,
    deliver_parts,
    tpdu_length,
)
from smsc.text import TextEncodingError, decode_text, encode_text

__all__ = [
    "ModemCore",
    "ModemProfile",
    "ModemSimulator",
    "Network",
    "SmsStorage",
    "StorageFullError",
]

log = logging.getLogger("fraudgate.sim.modem")

KZ_TIME: Final = timezone(timedelta(hours=5))  # Kazakhstan, one zone since March 2024
CTRL_Z: Final = 0x1A
ESC: Final = 0x1B

# TS 27.007 §9.2.1 / §9.2.2: +CME ERROR codes and their verbose texts.
CME_TEXT: Final[dict[int, str]] = {
    0: "phone failure",
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    11: "SIM PIN required",
    16: "incorrect password",
    21: "invalid index",
    30: "no network service",
    50: "Incorrect parameters",
    100: "unknown",
}
# TS 27.005 §3.2.5 +CMS ERROR codes used here.
CMS_OPERATION_NOT_ALLOWED: Final = 302
CMS_INVALID_PDU_PARAMETER: Final = 304
CMS_INVALID_TEXT_PARAMETER: Final = 305
CMS_SIM_PIN_REQUIRED: Final = 311
CMS_INVALID_INDEX: Final = 321
CMS_MEMORY_FULL: Final = 322
# V.250 §5.7.1 numeric result codes (ATV0).
NUMERIC: Final[dict[str, int]] = {"OK": 0, "RING": 2, "NO CARRIER": 3, "ERROR": 4}
# TS 27.005 §3.1 <stat> in PDU mode (integers) and text mode (strings).
STAT_TEXT: Final = ("REC UNREAD", "REC READ", "STO UNSENT", "STO SENT")
STAT_ALL: Final = 4


@dataclass
class ModemProfile:
    """What the modem says about itself, its SIM and its network."""

    manufacturer: str = "SIMCOM INCORPORATED"
    model: str = "SIMCOM_SIM7600E-H"
    revision: str = "LE20B04SIM7600M22"
    imei: str = "867584030123456"
    imsi: str = "401021234567890"
    msisdn: str = "+77011234567"
    operator: str = "KZ KCELL"
    operator_numeric: str = "40102"
    lac: str = "1A2B"
    cell_id: str = "0000C3D4"
    rssi: int = 20
    smsc: str = "+77010000000"
    pin: str | None = None


class StorageFullError(RuntimeError):
    """An SMS arrived for a memory with no free slot (TS 27.005 +CMS ERROR 322)."""


@dataclass
class StoredSms:
    stat: int  # TS 27.005 §3.1 <stat>: 0 REC UNREAD, 1 REC READ, 2 STO UNSENT, 3 STO SENT
    pdu: bytes  # SMSC-prefixed, as +CMGR shows it


class SmsStorage:
    """The message memories (TS 27.005 §3.2.2 <mem>): "SM" on the SIM, "ME" in the modem.
    Kept across unplug / replug, like a SIM."""

    def __init__(self, sizes: dict[str, int] | None = None) -> None:
        self.sizes = dict(sizes or {"SM": 30, "ME": 100})
        self.slots: dict[str, dict[int, StoredSms]] = {mem: {} for mem in self.sizes}
        self.last_mr = 0  # the last TP-MR used (EF_SMSS, TS 31.102 §4.2.28)

    def used(self, mem: str) -> int:
        return len(self.slots[mem])

    def free(self, mem: str) -> int:
        return self.sizes[mem] - self.used(mem)

    def store(self, mem: str, sms: StoredSms) -> int:
        slots = self.slots[mem]
        for index in range(1, self.sizes[mem] + 1):
            if index not in slots:
                slots[index] = sms
                return index
        raise StorageFullError(f'memory "{mem}" is full ({self.sizes[mem]} messages)')


@dataclass
class Network:
    """The radio side, which survives a power cycle: registration and signal."""

    stat: int = 1  # TS 27.007 §7.2 <stat>: 1 registered home, 5 roaming, 2 searching, 0, 3, 4
    lac: str = ""
    cell_id: str = ""
    rssi: int = 20
    concat_ref: int = 0  # the SMSC's last concatenation reference towards this subscriber


class CallState(enum.Enum):
    RINGING = 4  # TS 27.007 §7.18 +CLCC <stat>: 4 incoming
    ACTIVE = 0


@dataclass
class Call:
    number: str
    ton: int
    validity: int
    interval: float
    rings_left: int
    due: float  # the next ring, or NO CARRIER
    state: CallState = CallState.RINGING


@dataclass(frozen=True, slots=True)
class Command:
    """One command of a command line: ``name`` ("+CMGF", "E", "&F", "S0"), ``kind`` ("exec",
    "set", "read", "test") and the raw ``args`` after "="."""

    name: str
    kind: str
    args: str = ""


FailKind = Literal["error", "cme", "cms", "final"]


class Fail(Exception):
    """Ends a command line: ERROR, +CME ERROR (per +CMEE), +CMS ERROR, or another final result
    code such as NO CARRIER (``kind`` "final", the code in ``text``)."""

    def __init__(self, kind: FailKind, code: int = 0, text: str = "") -> None:
        super().__init__(kind, code, text)
        self.kind: FailKind = kind
        self.code = code
        self.text = text


@dataclass(frozen=True, slots=True)
class Prompt:
    """An AT+CMGS waiting for its PDU (``length`` TPDU octets) or text (to ``destination``)."""

    mode: Literal["pdu", "text"]
    length: int = 0
    destination: Address | None = None


def _error() -> Fail:
    return Fail("error")


def _cme(code: int) -> Fail:
    return Fail("cme", code, CME_TEXT.get(code, "unknown"))


def _cms(code: int) -> Fail:
    return Fail("cms", code)


PROMPT: Final = object()  # a handler result: the command waits for SMS text after "> "
Reply = list[str] | object


# --------------------------------------------------------------------------------------------
# Command line syntax (V.250 §5.2-5.4)
# --------------------------------------------------------------------------------------------


def _split_commands(body: str) -> list[Command]:
    """The commands after the "AT" prefix. Basic commands are a letter (or & and a letter) and
    a number; S-parameters are Sn=v / Sn?; D takes the rest of the line; extended commands
    (+, ^, $, %, *, #) run to the next ';' outside a string."""
    out: list[Command] = []
    i, size = 0, len(body)
    while i < size:
        char = body[i].upper()
        if char in " ;":
            i += 1
        elif char in "+^$%*#!":
            end, quoted = i, False
            while end < size and (quoted or body[end] != ";"):
                quoted ^= body[end] == '"'
                end += 1
            out.append(_extended(body[i:end]))
            i = end + 1
        elif char == "D":
            out.append(Command("D", "set", body[i + 1 :]))
            break
        elif char == "&" or char.isalpha():
            i = _basic(body, i, out)
        else:
            raise _error()
    return out


def _extended(text: str) -> Command:
    name_end = 0
    while name_end < len(text) and text[name_end] not in "=?":
        name_end += 1
    name, rest = text[:name_end].strip().upper(), text[name_end:]
    if rest.startswith("=?"):
        return Command(name, "test")
    if rest.startswith("="):
        return Command(name, "set", rest[1:])
    if rest.startswith("?"):
        return Command(name, "read")
    return Command(name, "exec")


def _basic(body: str, i: int, out: list[Command]) -> int:
    start = i
    i += 2 if body[i] == "&" else 1
    name = body[start:i].upper()
    if name == "S":
        digits_end = i
        while digits_end < len(body) and body[digits_end].isdigit():
            digits_end += 1
        name, i = "S" + body[i:digits_end], digits_end
        if body[i : i + 1] == "?":
            out.append(Command(name, "read"))
            return i + 1
        if body[i : i + 1] == "=":
            i += 1
    end = i
    while end < len(body) and body[end].isdigit():
        end += 1
    out.append(Command(name, "set" if end > i else "exec", body[i:end]))
    return end


def _params(args: str) -> list[str]:
    """Comma-separated parameters, string quotes removed ("" for an omitted one)."""
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for char in args:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            out.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    out.append("".join(current).strip())
    return out


def _int(text: str, low: int, high: int, default: int | None = None) -> int:
    if text == "" and default is not None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise _error() from None
    if not low <= value <= high:
        raise _error()
    return value


def _scts_text(when: datetime) -> str:
    """TS 27.005 §3.3.1 <scts> in text mode: "yy/MM/dd,hh:mm:ss±zz" (zz in quarter hours)."""
    offset = when.utcoffset() or timedelta(0)
    quarters = int(offset.total_seconds()) // 900
    return when.strftime("%y/%m/%d,%H:%M:%S") + f"{quarters:+03d}"


# --------------------------------------------------------------------------------------------
# The sans-I/O modem
# --------------------------------------------------------------------------------------------


class ModemCore:
    """A modem's command interpreter and its state since power-on.

    Feed client bytes with :meth:`receive`, collect what to send back with
    :meth:`data_to_send`, call :meth:`poll` at :meth:`next_deadline`. ``storage``,
    ``network``, ``sent`` and ``commands`` may be shared with a later core (a replug keeps
    the SIM's messages, the network and the test's records; everything else restarts)."""

    def __init__(
        self,
        profile: ModemProfile | None = None,
        *,
        storage: SmsStorage | None = None,
        network: Network | None = None,
        sent: list[SmsSubmit] | None = None,
        commands: list[str] | None = None,
    ) -> None:
        self.profile = profile or ModemProfile()
        self.storage = storage or SmsStorage()
        self.network = network or Network(
            lac=self.profile.lac, cell_id=self.profile.cell_id, rssi=self.profile.rssi
        )
        self.sent: list[SmsSubmit] = [] if sent is None else sent
        self.commands: list[str] = [] if commands is None else commands
        self._out = bytearray()
        self._line = bytearray()
        self._prompt: Prompt | None = None
        self._now = 0.0
        self.call: Call | None = None
        self.hung_until: float | None = None
        self.pin_ok = self.profile.pin is None
        self._power_on()

    def _power_on(self) -> None:
        """Settings after power-on or ATZ / AT&F (V.250 §6.1.1, §6.1.2)."""
        self.echo = True
        self.verbose = True
        self.cmee = 0
        self.cmgf = 0
        self.cscs = "GSM"
        self.cnmi = [0, 0, 0, 0, 0]
        self.clip = 0
        self.crc = 0
        self.reg_n = {"+CREG": 0, "+CGREG": 0, "+CEREG": 0}
        self.cops_format = 0
        self.mems = ["SM", "SM", "SM"]
        self.cfun = 1
        self.csdh = 0
        self.csmp = [17, 167, 0, 0]
        self.csms = 0
        self.sregs = {0: 0, 3: 13, 4: 10, 5: 8, 7: 60, 8: 2, 10: 15}

    # ---- the sans-I/O interface ------------------------------------------------------------

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def hung(self) -> bool:
        return self.hung_until is not None

    def next_deadline(self) -> float | None:
        times = [] if self.call is None else [self.call.due]
        if self.hung_until is not None:
            times.append(self.hung_until)
        return min(times, default=None)

    def handle_timer(self, now: float) -> None:
        self._now = now
        if self.hung_until is not None and now >= self.hung_until:
            self.hung_until = None
        call = self.call
        while call is not None and call is self.call and now >= call.due:
            self._call_tick(call)

    def receive(self, data: bytes, now: float) -> None:
        self.handle_timer(now)
        if self.hung:
            return  # a hung modem reads nothing: the bytes are lost
        for byte in data:
            if self._prompt is not None:
                self._prompt_byte(byte)
            else:
                self._command_byte(byte)

    # ---- events from the network ------------------------------------------------------------

    def incoming_call(
        self,
        number: str,
        *,
        ton: int = 145,
        validity: int = 0,
        rings: int = 3,
        interval: float = 1.0,
        now: float,
    ) -> None:
        """A mobile-terminated voice call: RING / +CRING now and every ``interval``, each
        followed by +CLIP when enabled (TS 27.007 §7.6); NO CARRIER after ``rings``."""
        self._now = now
        self.call = Call(number, ton, validity, interval, max(rings, 1), now)
        self._call_tick(self.call)

    def _call_tick(self, call: Call) -> None:
        if call.state is CallState.ACTIVE or call.rings_left == 0:
            self.call = None
            self._result("NO CARRIER")
            return
        self._result("+CRING: VOICE" if self.crc else "RING")
        if self.clip:
            self._urc(f'+CLIP: "{call.number}",{call.ton},,,,{call.validity}')
        call.rings_left -= 1
        call.due += call.interval

    def receive_sms(
        self, originator: str, text: str, *, ton: int | None = None, when: datetime | None = None
    ) -> list[int]:
        """An SMS from the network, split into SMS-DELIVER parts (TS 23.040). Stored in <mem3>
        and announced with +CMTI (+CNMI <mt> 1, or 3 for a message that is not class 3), or
        routed to the client with +CMT and not stored (<mt> 2), TS 27.005 §3.4.1. +CNMI <mode>
        0 ("buffer in the TA") is simplified to: no indication. Returns the storage indices
        (empty when routed); StorageFullError when <mem3> cannot take every part."""
        address = _address(originator, ton)
        timestamp = when or datetime.now(KZ_TIME).replace(microsecond=0)
        self.network.concat_ref = (self.network.concat_ref + 1) & 0xFF
        smsc = _address(self.profile.smsc, None)
        pdus = deliver_parts(
            address, text, timestamp=timestamp, concat_ref=self.network.concat_ref, smsc=smsc
        )
        mt = self.cnmi[1]
        if mt == 2:
            for pdu in pdus:
                self._announce_cmt(pdu)
            return []
        mem = self.mems[2]
        if self.storage.free(mem) < len(pdus):
            raise StorageFullError(f'memory "{mem}" has no room for {len(pdus)} parts')
        indices = [self.storage.store(mem, StoredSms(0, pdu)) for pdu in pdus]
        if mt in (1, 3) and self.cnmi[0] > 0:
            for index in indices:
                self._urc(f'+CMTI: "{mem}",{index}')
        return indices

    def _announce_cmt(self, pdu: bytes) -> None:
        if self.cnmi[0] == 0:
            return
        if self.cmgf == 0:
            self._urc(f"+CMT: ,{tpdu_length(pdu)}", pdu.hex().upper())
            return
        msg = decode_deliver(pdu)
        header = f'+CMT: "{self._to_te(str(msg.originator))}",,"{_scts_text(msg.timestamp)}"'
        self._urc(header, self._text_data(msg))

    def set_registration(
        self, stat: int, *, lac: str | None = None, cell_id: str | None = None
    ) -> None:
        """A registration change; +CREG / +CGREG / +CEREG URCs where enabled (TS 27.007 §7.2,
        §10.1.20, §10.1.22)."""
        net = self.network
        net.stat, net.lac, net.cell_id = stat, lac or net.lac, cell_id or net.cell_id
        for name, n in self.reg_n.items():
            if n:
                self._urc(f"{name}: {self._registration(name, with_n=False)}")

    def set_signal(self, rssi: int) -> None:
        self.network.rssi = rssi

    def hang(self, seconds: float | None, *, now: float) -> None:
        """Stop answering anything; None: until :meth:`unhang`."""
        self.hung_until = float("inf") if seconds is None else now + seconds

    def unhang(self) -> None:
        self.hung_until = None

    # ---- output -----------------------------------------------------------------------------

    def _emit(self, data: bytes) -> None:
        if not self.hung:
            self._out += data

    def _info(self, lines: list[str]) -> None:
        """Information text (V.250 §5.7.1): <cr><lf>text<cr><lf> in verbose mode."""
        if not lines:
            return
        body = "\r\n".join(lines)
        self._emit(((f"\r\n{body}\r\n") if self.verbose else f"{body}\r\n").encode("latin-1"))

    def _result(self, code: str) -> None:
        if self.verbose:
            self._emit(f"\r\n{code}\r\n".encode("latin-1"))
        elif code in NUMERIC:
            self._emit(f"{NUMERIC[code]}\r".encode())
        else:
            self._emit(f"{code}\r\n".encode("latin-1"))

    def _urc(self, *lines: str) -> None:
        self._info(list(lines))

    def _fail(self, fail: Fail) -> None:
        if fail.kind == "final":
            self._result(fail.text)
        elif fail.kind == "error" or self.cmee == 0:
            self._result("ERROR")
        elif fail.kind == "cms":
            self._result(f"+CMS ERROR: {fail.code}")
        else:
            self._result(f"+CME ERROR: {fail.code if self.cmee == 1 else fail.text}")

    # ---- command lines ----------------------------------------------------------------------

    def _command_byte(self, byte: int) -> None:
        if self.echo:
            self._emit(bytes((byte,)))
        if byte == self.sregs[3]:
            line = self._line.decode("latin-1")
            self._line.clear()
            self._execute_line(line)
        elif byte == self.sregs[5]:
            del self._line[-1:]
        elif byte != self.sregs[4] or self._line:
            self._line.append(byte)

    def _execute_line(self, line: str) -> None:
        at = line.upper().find("AT")
        if at < 0:
            return  # V.250 §5.2.1: nothing but an "AT" prefix starts a command line
        self.commands.append(line[at:])
        log.debug("command %r", line[at:])
        try:
            commands = _split_commands(line[at + 2 :])
            for command in commands:
                reply = self._dispatch(command)
                if reply is PROMPT:
                    self._emit(b"\r\n> ")
                    return
                if isinstance(reply, list):
                    self._info(reply)
        except Fail as fail:
            self._fail(fail)
            return
        self._result("OK")

    def _dispatch(self, command: Command) -> Reply:
        handler = _HANDLERS.get(command.name)
        if handler is None:
            raise _cme(4) if self.cmee else _error()
        if command.name in _NEEDS_SIM and not self.pin_ok:
            raise _cms(CMS_SIM_PIN_REQUIRED) if command.name in _SMS else _cme(11)
        return handler(self, command)

    # ---- SMS text after "> " (TS 27.005 §3.5.1, §4.3) ------------------------------------------

    def _prompt_byte(self, byte: int) -> None:
        assert self._prompt is not None
        if byte == ESC:
            self._prompt = None
            self._line.clear()
            self._result("OK")
            return
        if byte == CTRL_Z:
            prompt, self._prompt = self._prompt, None
            data = bytes(self._line)
            self._line.clear()
            try:
                self._send(prompt, data)
            except Fail as fail:
                self._fail(fail)
            return
        if self.echo:
            self._emit(bytes((byte,)))
        if byte == 0x0D and self._prompt.mode == "text":
            self._line += b"\n"
            self._emit(b"\r\n> ")
        elif byte not in b"\r\n":
            self._line.append(byte)

    def _send(self, prompt: Prompt, data: bytes) -> None:
        if prompt.destination is None:
            msg = self._submit_from_pdu(data, prompt.length)
        else:
            msg = self._submit_from_text(prompt.destination, data)
        # TS 23.040 §9.2.3.6: the MS sets TP-MR, one more than the last one (kept on the SIM)
        self.storage.last_mr = mr = (self.storage.last_mr + 1) & 0xFF
        self.sent.append(dataclasses.replace(msg, reference=mr))
        log.debug("AT+CMGS: TP-MR %d, %d characters", mr, len(msg.text))
        self._info([f"+CMGS: {mr}"])
        self._result("OK")

    def _submit_from_pdu(self, data: bytes, length: int) -> SmsSubmit:
        try:
            pdu = bytes.fromhex(data.decode("ascii").strip())
            if tpdu_length(pdu) != length:
                raise TpduError(f"<length> {length}, the TPDU has {tpdu_length(pdu)} octets")
            return decode_submit(pdu)
        except (ValueError, UnicodeDecodeError) as exc:  # TpduError included
            log.warning("AT+CMGS: bad PDU: %s", exc)
            raise _cms(CMS_INVALID_PDU_PARAMETER) from None

    def _submit_from_text(self, destination: Address, data: bytes) -> SmsSubmit:
        text = self._from_te(data.decode("latin-1"))
        dcs = self.csmp[3]
        if alphabet(dcs) != "ucs2":
            try:
                encode_text(text, 0)
            except TextEncodingError:
                dcs = 0x08
        return SmsSubmit(destination, text, dcs=dcs, validity_minutes=None)

    # ---- TE character set (TS 27.007 §5.5 +CSCS) ----------------------------------------------

    def _to_te(self, text: str) -> str:
        if self.cscs == "UCS2":
            return text.encode("utf-16-be").hex().upper()
        if self.cscs == "GSM":
            out = bytearray()
            for char in text:
                try:
                    out += encode_text(char, 0)
                except TextEncodingError:
                    out += b"?"
            return out.decode("latin-1")
        return text.encode("ascii", "replace").decode("ascii")

    def _from_te(self, text: str) -> str:
        if self.cscs == "UCS2":
            try:
                return bytes.fromhex(text).decode("utf-16-be")
            except ValueError:
                raise _cms(CMS_INVALID_TEXT_PARAMETER) from None
        if self.cscs == "GSM":
            return decode_text(text.encode("latin-1", "replace"), 0).text
        return text

    def _text_data(self, msg: SmsDeliver) -> str:
        """TS 27.005 §3.1 <data> in text mode: GSM 7-bit text in the TE character set, UCS2 and
        8-bit data as hexadecimal octets."""
        kind = alphabet(msg.dcs)
        if kind == "ucs2":
            return msg.text.encode("utf-16-be").hex().upper()
        if kind == "8bit":
            return msg.user_data.hex().upper()
        return self._to_te(msg.text)

    # ---- V.250 basic commands ----------------------------------------------------------------

    def _flag(self, command: Command, low: int = 0, high: int = 1) -> int:
        return _int(command.args, low, high, default=0)

    def h_echo(self, command: Command) -> Reply:
        self.echo = bool(self._flag(command))
        return []

    def h_verbose(self, command: Command) -> Reply:
        self.verbose = bool(self._flag(command))
        return []

    def h_accept(self, command: Command) -> Reply:
        """Settings a pty has no use for (Q0, X, &C, &D, &K, &W, L, M, +IPR, +IFC...)."""
        return []

    def h_reset(self, command: Command) -> Reply:
        self._power_on()
        return []

    def h_info(self, command: Command) -> Reply:
        p = self.profile
        return [
            f"Manufacturer: {p.manufacturer}",
            f"Model: {p.model}",
            f"Revision: {p.revision}",
            f"IMEI: {p.imei}",
            "+GCAP: +CGSM",
        ]

    def h_sreg(self, command: Command) -> Reply:
        number = _int(command.name[1:], 0, 255)
        if command.kind == "read":
            return [f"{self.sregs.get(number, 0):03d}"]
        self.sregs[number] = _int(command.args, 0, 255, default=0)
        return []

    def h_dial(self, command: Command) -> Reply:
        raise Fail("final", text="NO CARRIER")  # no outgoing calls from a probe

    # ---- identification (TS 27.007 §5) ----------------------------------------------------------

    def _ident(self, command: Command, value: str) -> Reply:
        if command.kind == "test":
            return []
        return [value]

    def h_cgmi(self, command: Command) -> Reply:
        return self._ident(command, self.profile.manufacturer)

    def h_cgmm(self, command: Command) -> Reply:
        return self._ident(command, self.profile.model)

    def h_cgmr(self, command: Command) -> Reply:
        return self._ident(command, self.profile.revision)

    def h_cgsn(self, command: Command) -> Reply:
        return self._ident(command, self.profile.imei)

    def h_cimi(self, command: Command) -> Reply:
        return self._ident(command, self.profile.imsi)

    def h_gcap(self, command: Command) -> Reply:
        return ["+GCAP: +CGSM,+FCLASS,+DS"]

    def h_cnum(self, command: Command) -> Reply:
        number = self.profile.msisdn
        if command.kind == "test" or not number:
            return []
        toa = 145 if number.startswith("+") else 129
        return [f'+CNUM: "","{self._to_te(number)}",{toa}']

    def h_cmee(self, command: Command) -> Reply:
        return self._setting(command, "cmee", "(0-2)", 0, 2)

    def _setting(self, command: Command, attr: str, test: str, low: int, high: int) -> Reply:
        if command.kind == "test":
            return [f"{command.name}: {test}"]
        if command.kind == "read":
            return [f"{command.name}: {getattr(self, attr)}"]
        setattr(self, attr, _int(_params(command.args)[0], low, high, default=0))
        return []

    # ---- SIM and network (TS 27.007 §7, §8) ----------------------------------------------------

    def h_cpin(self, command: Command) -> Reply:
        if command.kind == "read":
            return ["+CPIN: READY" if self.pin_ok else "+CPIN: SIM PIN"]
        if command.kind == "set":
            if self.pin_ok:
                return []
            if _params(command.args)[0] != self.profile.pin:
                raise _cme(16)
            self.pin_ok = True
        return []

    def h_csq(self, command: Command) -> Reply:
        if command.kind == "test":
            return ["+CSQ: (0-31,99),(0-7,99)"]
        return [f"+CSQ: {self.network.rssi},99"]

    def h_cfun(self, command: Command) -> Reply:
        return self._setting(command, "cfun", "(0,1,4),(0-1)", 0, 4)

    def h_cpas(self, command: Command) -> Reply:
        call = self.call
        status = 0 if call is None else 3 if call.state is CallState.RINGING else 4
        return [f"+CPAS: {status}"]

    def _registration(self, name: str, *, with_n: bool) -> str:
        net = self.network
        n = self.reg_n[name]
        parts = [str(n)] if with_n else []
        parts.append(str(net.stat if self.pin_ok else 0))
        if n >= 2 and net.stat in (1, 5):
            parts += [f'"{net.lac}"', f'"{net.cell_id}"']
            if name == "+CEREG":
                parts.append("7")  # <AcT> E-UTRAN
        return ",".join(parts)

    def h_creg(self, command: Command) -> Reply:
        if command.kind == "test":
            return [f"{command.name}: (0-2)"]
        if command.kind == "read":
            return [f"{command.name}: {self._registration(command.name, with_n=True)}"]
        self.reg_n[command.name] = _int(_params(command.args)[0], 0, 2, default=0)
        return []

    def h_cops(self, command: Command) -> Reply:
        p = self.profile
        if command.kind == "test":
            network = f'(2,"{p.operator}","{p.operator[:10]}","{p.operator_numeric}",7)'
            return [f"+COPS: {network},,(0-4),(0-2)"]
        if command.kind == "set":
            params = _params(command.args)
            if _int(params[0], 0, 4) == 3:
                self.cops_format = _int(params[1] if len(params) > 1 else "", 0, 2, default=0)
            return []
        if self.network.stat not in (1, 5) or not self.pin_ok:
            return ["+COPS: 0"]
        name = (p.operator, p.operator[:10], p.operator_numeric)[self.cops_format]
        return [f'+COPS: 0,{self.cops_format},"{name}",7']

    def h_cpsi(self, command: Command) -> Reply:
        """SIMCom serving cell (SIM7600 AT manual, AT+CPSI?)."""
        p, net = self.profile, self.network
        mcc, mnc = p.operator_numeric[:3], p.operator_numeric[3:]
        dbm = -113 + 2 * net.rssi if net.rssi != 99 else -113
        cell = int(net.cell_id or "0", 16)
        radio = f"318,EUTRAN-BAND3,1300,5,5,-10,-94,{dbm},15"
        return [f"+CPSI: LTE,Online,{mcc}-{mnc},0x{net.lac},{cell},{radio}"]

    def h_qeng(self, command: Command) -> Reply:
        """Quectel serving cell (EC25 AT manual, AT+QENG="servingcell")."""
        p, net = self.profile, self.network
        mcc, mnc = p.operator_numeric[:3], p.operator_numeric[3:]
        dbm = -113 + 2 * net.rssi if net.rssi != 99 else -113
        cell = f"{mcc},{mnc},{net.cell_id},318,1300,3,5,5,{net.lac}"
        return [f'+QENG: "servingcell","NOCONN","LTE","FDD",{cell},-94,-10,{dbm},15,-']

    def h_cclk(self, command: Command) -> Reply:
        if command.kind == "read":
            return [f'+CCLK: "{_scts_text(datetime.now(KZ_TIME))}"']
        return []

    # ---- calls (TS 27.007 §6, §7.6, §7.18) -----------------------------------------------------

    def h_answer(self, command: Command) -> Reply:
        call = self.call
        if call is None or call.state is not CallState.RINGING:
            raise Fail("final", text="NO CARRIER")
        call.state = CallState.ACTIVE
        call.due = self._now + call.interval  # the caller hangs up after a moment
        return []

    def h_hangup(self, command: Command) -> Reply:
        if command.kind != "test":
            self.call = None
        return []

    def h_clip(self, command: Command) -> Reply:
        if command.kind == "read":
            return [f"+CLIP: {self.clip},1"]
        return self._setting(command, "clip", "(0,1)", 0, 1)

    def h_crc(self, command: Command) -> Reply:
        return self._setting(command, "crc", "(0,1)", 0, 1)

    def h_clcc(self, command: Command) -> Reply:
        call = self.call
        if call is None or command.kind == "test":
            return []
        return [f'+CLCC: 1,1,{call.state.value},0,0,"{call.number}",{call.ton}']

    # ---- SMS settings (TS 27.005 §3.2) ---------------------------------------------------------

    def h_cmgf(self, command: Command) -> Reply:
        return self._setting(command, "cmgf", "(0,1)", 0, 1)

    def h_cscs(self, command: Command) -> Reply:
        if command.kind == "test":
            return ['+CSCS: ("IRA","GSM","UCS2")']
        if command.kind == "read":
            return [f'+CSCS: "{self.cscs}"']
        charset = _params(command.args)[0].upper()
        if charset not in ("IRA", "GSM", "UCS2"):
            raise _cme(4) if self.cmee else _error()
        self.cscs = charset
        return []

    def h_csca(self, command: Command) -> Reply:
        if command.kind == "read":
            number = self.profile.smsc
            toa = 145 if number.startswith("+") else 129
            return [f'+CSCA: "{self._to_te(number)}",{toa}']
        if command.kind == "set":
            self.profile.smsc = self._from_te(_params(command.args)[0])
        return []

    def h_csms(self, command: Command) -> Reply:
        if command.kind == "test":
            return ["+CSMS: (0,1)"]
        if command.kind == "read":
            return [f"+CSMS: {self.csms},1,1,1"]
        self.csms = _int(_params(command.args)[0], 0, 1)
        return ["+CSMS: 1,1,1"]

    def h_cpms(self, command: Command) -> Reply:
        mems = ",".join(f'"{m}"' for m in self.storage.sizes)
        if command.kind == "test":
            return [f"+CPMS: ({mems}),({mems}),({mems})"]
        if command.kind == "read":
            return ["+CPMS: " + ",".join(f'"{m}",{self._usage(m)}' for m in self.mems)]
        wanted = [m.upper() for m in _params(command.args) if m]
        if not wanted or len(wanted) > 3 or any(m not in self.storage.sizes for m in wanted):
            raise _cms(CMS_OPERATION_NOT_ALLOWED)
        self.mems[: len(wanted)] = wanted
        return ["+CPMS: " + ",".join(self._usage(m) for m in self.mems)]

    def _usage(self, mem: str) -> str:
        return f"{self.storage.used(mem)},{self.storage.sizes[mem]}"

    def h_cnmi(self, command: Command) -> Reply:
        if command.kind == "test":
            return ["+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)"]
        if command.kind == "read":
            return ["+CNMI: " + ",".join(map(str, self.cnmi))]
        params = _params(command.args)
        limits = (2, 3, 3, 2, 1)
        if len(params) > 5:
            raise _error()
        for i, text in enumerate(params):
            self.cnmi[i] = _int(text, 0, limits[i], default=self.cnmi[i])
        return []

    def h_csdh(self, command: Command) -> Reply:
        return self._setting(command, "csdh", "(0,1)", 0, 1)

    def h_csmp(self, command: Command) -> Reply:
        if command.kind == "read":
            return ["+CSMP: " + ",".join(map(str, self.csmp))]
        if command.kind == "set":
            for i, text in enumerate(_params(command.args)[:4]):
                self.csmp[i] = _int(text, 0, 255, default=self.csmp[i])
        return []

    def h_cnma(self, command: Command) -> Reply:
        return []

    # ---- SMS storage (TS 27.005 §3.4.2, §3.5) ----------------------------------------------------

    def _slots(self) -> dict[int, StoredSms]:
        return self.storage.slots[self.mems[0]]

    def _index(self, text: str) -> int:
        try:
            index = int(text)
        except ValueError:
            raise _error() from None
        if not 1 <= index <= self.storage.sizes[self.mems[0]]:
            raise _cms(CMS_INVALID_INDEX)
        return index

    def h_cmgl(self, command: Command) -> Reply:
        if command.kind == "test":
            return ["+CMGL: (0-4)" if self.cmgf == 0 else f"+CMGL: {self._stat_list()}"]
        wanted = self._wanted_stat(_params(command.args)[0] if command.kind == "set" else "")
        lines: list[str] = []
        for index, sms in sorted(self._slots().items()):
            if wanted in (STAT_ALL, sms.stat):
                lines += self._listing("+CMGL", index, sms)
                if sms.stat == 0:
                    sms.stat = 1
        return lines

    def _stat_list(self) -> str:
        return "(" + ",".join(f'"{s}"' for s in (*STAT_TEXT, "ALL")) + ")"

    def _wanted_stat(self, text: str) -> int:
        if self.cmgf == 0:
            return _int(text, 0, STAT_ALL, default=0)
        names = [*STAT_TEXT, "ALL"]
        if text.upper() not in names and text:
            raise _cms(CMS_INVALID_TEXT_PARAMETER)
        return names.index(text.upper()) if text else 0

    def _listing(self, prefix: str, index: int | None, sms: StoredSms) -> list[str]:
        """+CMGL / +CMGR response lines (TS 27.005 §3.4.2, §4.1, §4.4)."""
        where = "" if index is None else f"{index},"
        if self.cmgf == 0:
            header = f"{prefix}: {where}{sms.stat},,{tpdu_length(sms.pdu)}"
            return [header, sms.pdu.hex().upper()]
        msg = decode_deliver(sms.pdu)
        oa = self._to_te(str(msg.originator))
        scts = _scts_text(msg.timestamp)
        header = f'{prefix}: {where}"{STAT_TEXT[sms.stat]}","{oa}",,"{scts}"'
        if self.csdh:
            header += f",{msg.originator.toa},{len(msg.text or msg.user_data)}"
        return [header, self._text_data(msg)]

    def h_cmgr(self, command: Command) -> Reply:
        if command.kind == "test":
            return []
        if command.kind != "set":
            raise _error()
        index = self._index(_params(command.args)[0])
        sms = self._slots().get(index)
        if sms is None:
            return []  # an empty slot: OK only, as SIMCom modems answer
        lines = self._listing("+CMGR", None, sms)
        if sms.stat == 0:
            sms.stat = 1
        return lines

    def h_cmgd(self, command: Command) -> Reply:
        slots = self._slots()
        if command.kind == "test":
            used = ",".join(map(str, sorted(slots)))
            return [f"+CMGD: ({used}),(0-4)"]
        params = _params(command.args)
        flag = _int(params[1] if len(params) > 1 else "", 0, 4, default=0)
        if flag == 0:
            slots.pop(self._index(params[0]), None)
            return []
        # <delflag> 1 read, 2 read + sent, 3 read + sent + unsent, 4 all (TS 27.005 §3.5.4)
        doomed = {1: {1}, 2: {1, 3}, 3: {1, 2, 3}, 4: {0, 1, 2, 3}}[flag]
        for index in [i for i, sms in slots.items() if sms.stat in doomed]:
            del slots[index]
        return []

    def h_cmgs(self, command: Command) -> Reply:
        if command.kind == "test":
            return []
        if command.kind != "set":
            raise _error()
        params = _params(command.args)
        if self.cmgf == 0:
            self._prompt = Prompt("pdu", length=_int(params[0], 7, 164))
            return PROMPT
        if not params[0]:
            raise _cms(CMS_INVALID_TEXT_PARAMETER)
        number = self._from_te(params[0])
        toda = _int(params[1] if len(params) > 1 else "", 0, 255, default=0)
        self._prompt = Prompt("text", destination=_address(number, toda or None))
        return PROMPT


def _address(number: str, ton: int | None) -> Address:
    """An Address from a number as a user writes it. ``ton`` may be a TON (0..7) or a whole
    type-of-address octet (129, 145, 208...); None: international for "+digits" or digits,
    alphanumeric (TON 5) for anything else."""
    if ton is not None and ton > 7:
        ton, npi = (ton >> 4) & 0x7, ton & 0xF
        return Address(number.removeprefix("+") if ton != 5 else number, ton, npi)
    digits = number.removeprefix("+")
    if ton is None:
        ton = 1 if digits.isdigit() else 5
    if ton == 5:
        return Address(number, 5, 0)
    return Address(digits, ton, 1)


_Handler = Callable[[ModemCore, Command], Reply]

# V.250 / TS 27.007 / TS 27.005 command -> handler. Anything missing is ERROR (+CME ERROR 4).
_HANDLERS: Final[dict[str, _Handler]] = {
    "E": ModemCore.h_echo,
    "V": ModemCore.h_verbose,
    "Q": ModemCore.h_accept,
    "X": ModemCore.h_accept,
    "L": ModemCore.h_accept,
    "M": ModemCore.h_accept,
    "&C": ModemCore.h_accept,
    "&D": ModemCore.h_accept,
    "&K": ModemCore.h_accept,
    "&W": ModemCore.h_accept,
    "+IPR": ModemCore.h_accept,
    "+IFC": ModemCore.h_accept,
    "Z": ModemCore.h_reset,
    "&F": ModemCore.h_reset,
    "I": ModemCore.h_info,
    "A": ModemCore.h_answer,
    "H": ModemCore.h_hangup,
    "D": ModemCore.h_dial,
    "+CHUP": ModemCore.h_hangup,
    "+CMEE": ModemCore.h_cmee,
    "+CGMI": ModemCore.h_cgmi,
    "+GMI": ModemCore.h_cgmi,
    "+CGMM": ModemCore.h_cgmm,
    "+GMM": ModemCore.h_cgmm,
    "+CGMR": ModemCore.h_cgmr,
    "+GMR": ModemCore.h_cgmr,
    "+CGSN": ModemCore.h_cgsn,
    "+GSN": ModemCore.h_cgsn,
    "+CIMI": ModemCore.h_cimi,
    "+GCAP": ModemCore.h_gcap,
    "+CNUM": ModemCore.h_cnum,
    "+CPIN": ModemCore.h_cpin,
    "+CSQ": ModemCore.h_csq,
    "+CFUN": ModemCore.h_cfun,
    "+CPAS": ModemCore.h_cpas,
    "+CREG": ModemCore.h_creg,
    "+CGREG": ModemCore.h_creg,
    "+CEREG": ModemCore.h_creg,
    "+COPS": ModemCore.h_cops,
    "+CPSI": ModemCore.h_cpsi,
    "+QENG": ModemCore.h_qeng,
    "+CCLK": ModemCore.h_cclk,
    "+CLIP": ModemCore.h_clip,
    "+CRC": ModemCore.h_crc,
    "+CLCC": ModemCore.h_clcc,
    "+CMGF": ModemCore.h_cmgf,
    "+CSCS": ModemCore.h_cscs,
    "+CSCA": ModemCore.h_csca,
    "+CSMS": ModemCore.h_csms,
    "+CPMS": ModemCore.h_cpms,
    "+CNMI": ModemCore.h_cnmi,
    "+CSDH": ModemCore.h_csdh,
    "+CSMP": ModemCore.h_csmp,
    "+CNMA": ModemCore.h_cnma,
    "+CMGL": ModemCore.h_cmgl,
    "+CMGR": ModemCore.h_cmgr,
    "+CMGD": ModemCore.h_cmgd,
    "+CMGS": ModemCore.h_cmgs,
}
_HANDLERS.update({f"S{n}": ModemCore.h_sreg for n in range(13)})
_SMS: Final = frozenset({"+CSCA", "+CPMS", "+CMGL", "+CMGR", "+CMGD", "+CMGS", "+CNMI"})
_NEEDS_SIM: Final = _SMS | {"+CIMI", "+CNUM"}


# --------------------------------------------------------------------------------------------
# The I/O pump
# --------------------------------------------------------------------------------------------


_PTY_BACKLOG: Final = 64 * 1024


class _Pty:
    """A pseudo-terminal whose slave is the device: the master end is read with add_reader and
    written with a small buffer (a client that does not read must not block the loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_data: Callable[[bytes], None]) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self._loop = loop
        self._on_data = on_data
        self._pending = bytearray()
        loop.add_reader(self.master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except OSError:  # EAGAIN; EIO only without a slave open (we keep one until close)
            return
        if data:
            self._on_data(data)

    def write(self, data: bytes) -> None:
        was_empty = not self._pending
        self._pending += data
        # Nobody reading: a UART would overrun; keep the newest bytes only.
        del self._pending[: max(0, len(self._pending) - _PTY_BACKLOG)]
        if was_empty:
            self._writable()

    def _writable(self) -> None:
        try:
            written = os.write(self.master, self._pending)
        except (BlockingIOError, InterruptedError):
            written = 0
        except OSError as exc:
            log.debug("pty write: %s", exc)
            self._pending.clear()
            written = 0
        del self._pending[:written]
        if self._pending:
            self._loop.add_writer(self.master, self._writable)
        else:
            self._loop.remove_writer(self.master)

    def close(self) -> None:
        self._loop.remove_reader(self.master)
        self._loop.remove_writer(self.master)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class ModemSimulator:
    """A simulated modem as a device: a pty behind a stable symlink (``url`` is its path), or
    a TCP listener (``url`` is "socket://127.0.0.1:<port>"). One async context manager; it
    closes everything it opened.

    The event methods (:meth:`incoming_call`, :meth:`receive_sms`...) must be called from the
    event loop the simulator runs in."""

    def __init__(
        self,
        profile: ModemProfile | None = None,
        *,
        tcp: bool = False,
        name: str = "probe-1",
        link_dir: Path | None = None,
        link_path: Path | None = None,
        port: int = 0,
    ) -> None:
        self.profile = profile or ModemProfile()
        self.name = name
        self.tcp = tcp
        self.port = port
        self.storage = SmsStorage()
        self.network = Network(
            lac=self.profile.lac, cell_id=self.profile.cell_id, rssi=self.profile.rssi
        )
        self.sent: list[SmsSubmit] = []
        self.commands: list[str] = []
        self.core = self._new_core()
        self.url = ""
        self._link_dir = link_dir
        self._link_path = link_path
        self._own_dir: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pty: _Pty | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._timer: asyncio.TimerHandle | None = None

    def _new_core(self) -> ModemCore:
        return ModemCore(
            self.profile,
            storage=self.storage,
            network=self.network,
            sent=self.sent,
            commands=self.commands,
        )

    @property
    def link(self) -> Path:
        """The symlink a client opens (pty mode)."""
        if self._link_path is not None:
            return self._link_path
        if self._link_dir is None:
            if self._own_dir is None:
                self._own_dir = Path(tempfile.mkdtemp(prefix="fraudgate-modem-"))
            self._link_dir = self._own_dir
        return self._link_dir / f"ttyPROBE-{self.name}"

    async def __aenter__(self) -> ModemSimulator:
        self._loop = asyncio.get_running_loop()
        await self._plug()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._unplug()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)

    # ---- plugging ----------------------------------------------------------------------------

    async def _plug(self) -> None:
        loop = self._running_loop()
        if self.tcp:
            self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]
            self.url = f"socket://127.0.0.1:{self.port}"
        else:
            self._pty = _Pty(loop, self._on_data)
            link = self.link
            link.parent.mkdir(parents=True, exist_ok=True)
            tmp = link.with_name(f".{link.name}.new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self._pty.path)
            tmp.replace(link)  # atomic: a client never sees the link missing during a replug
            self.url = str(link)
        log.info("modem %s plugged in at %s", self.name, self.url)

    async def _unplug(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pty is not None:
            self._pty.close()
            self._pty = None
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            self._writers.clear()
            await self._server.wait_closed()
            self._server = None

    async def unplug(self) -> None:
        """The device disappears: the pty is closed (the client reads EIO / hang-up) and the
        symlink removed; TCP: the listener and its connections are closed."""
        await self._unplug()
        log.info("modem %s unplugged", self.name)

    async def replug(self) -> None:
        """A new pty behind the same symlink (TCP: the same port), the modem at power-on
        (echo on, +CNMI off, no call...); the SIM's messages are kept."""
        await self._unplug()
        self.core = self._new_core()
        await self._plug()

    @property
    def plugged(self) -> bool:
        return self._pty is not None or self._server is not None

    # ---- I/O ---------------------------------------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("ModemSimulator is used outside its 'async with'")
        return self._loop

    def _now(self) -> float:
        return self._running_loop().time()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while data := await reader.read(4096):
                self._on_data(data)
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _on_data(self, data: bytes) -> None:
        self.core.receive(data, self._now())
        self._flush()

    def _write(self, data: bytes) -> None:
        if not data:
            return
        if self._pty is not None:
            self._pty.write(data)
        for writer in self._writers:
            writer.write(data)

    def _flush(self) -> None:
        self._write(self.core.data_to_send())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.core.next_deadline()
        if deadline is not None and deadline != float("inf"):
            self._timer = self._running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.core.handle_timer(self._now())
        self._flush()

    # ---- events ------------------------------------------------------------------------------

    def incoming_call(
        self,
        number: str,
        *,
        ton: int = 145,
        validity: int = 0,
        rings: int = 3,
        interval: float = 1.0,
    ) -> None:
        """RING (+CRING: VOICE after AT+CRC=1) every ``interval`` with +CLIP after AT+CLIP=1;
        ATH / AT+CHUP end it (OK); after ``rings`` rings NO CARRIER; ATA answers (OK) and the
        caller hangs up ``interval`` later (NO CARRIER)."""
        self.core.incoming_call(
            number, ton=ton, validity=validity, rings=rings, interval=interval, now=self._now()
        )
        self._flush()

    def receive_sms(
        self, originator: str, text: str, *, ton: int | None = None, when: datetime | None = None
    ) -> list[int]:
        """See :meth:`ModemCore.receive_sms`. ``ton`` None: alphanumeric (5) unless the
        originator is digits or +digits (then international, 145)."""
        indices = self.core.receive_sms(originator, text, ton=ton, when=when)
        self._flush()
        return indices

    def set_registration(
        self, stat: int, *, lac: str | None = None, cell_id: str | None = None
    ) -> None:
        self.core.set_registration(stat, lac=lac, cell_id=cell_id)
        self._flush()

    def set_signal(self, rssi: int) -> None:
        self.core.set_signal(rssi)

    def hang(self, seconds: float | None = None) -> None:
        """Stop answering anything (what the client writes meanwhile is lost); None: until
        :meth:`unhang` or a replug."""
        self.core.hang(seconds, now=self._now())
        self._flush()

    def unhang(self) -> None:
        self.core.unhang()
        self._flush()

    def garbage(self, data: bytes) -> None:
        """Raw bytes to the client now (line noise), whatever the modem's state."""
        self._write(data)
