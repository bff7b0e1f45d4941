"""AT command engine, sans-I/O (V.250, 3GPP TS 27.007, TS 27.005): bytes in, events out.

    session = AtSession()
    out = session.send("AT+CSQ", now=t)          # bytes to write: b"AT+CSQ\\r"
    for event in session.receive(data, now=t):   # whatever the port delivered, any chunking
        ...                                      # CommandCompleted / Unsolicited / Prompt / Garbage
    session.handle_timer(now)                   # when `next_deadline` has passed
    session.data_to_send()                       # the PDU + Ctrl-Z after a "> " prompt

One command is pending at a time (V.250 §5.2.1: the DCE executes one command line at a time and
answers it with one final result code). Everything the modem says is split into lines on any
<CR> or <LF> (§5.7.1 frames lines <CR><LF>…<CR><LF> but real modems also send bare <LF>, stray
<CR>, and numeric codes ended by <CR> alone with V0), and each line is classified:

- the echo of the pending command (E1, §6.2.4) is dropped;
- a final result code (§5.7.1 table 1, TS 27.007 §9.2 +CME ERROR, TS 27.005 §3.2.5 +CMS ERROR)
  completes the pending command; failures are typed `AtError`s carried as the result;
- unsolicited result codes come out as `Unsolicited` at once, even in the middle of a command's
  response. +CMT / +CDS / +CBM in PDU mode (TS 27.005 §3.4.1) take the next line as their PDU;
- a line whose prefix is the pending command's expected prefix (by default the command's own
  name: "+CREG" for AT+CREG?) is an information line; so +CREG is an answer while AT+CREG? is
  pending and an unsolicited report otherwise (the same for +CLCC, +CPIN, +CUSD …);
- anything that cannot be a line (control characters, longer than `max_line`) is `Garbage`; the
  session resynchronises on the next line end and never raises on input.

Command states are a table (idle -> sent -> (prompted) -> idle); an input the table does not
have is an `AtStateError` (a programming error of the caller, e.g. sending while one is pending).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

# --------------------------------------------------------------------------------------------
# Errors: the failure final result codes, typed


class AtError(Exception):
    """A command failed (its final result code was not OK / CONNECT), or its answer is broken.

    Instances compare equal when type, message, command and line are equal, so events carrying
    them can be compared in tests."""

    def __init__(self, message: str, *, command: str = "", line: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.line = line

    def _key(self) -> tuple[object, ...]:
        return (type(self), self.args, self.command, self.line)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AtError) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


class CommandError(AtError):
    """ERROR (V.250 §5.7.1, numeric 4): the command was not recognised or not allowed."""


class _CodedError(AtError):
    prefix = ""

    def __init__(self, code: int | None, text: str, *, command: str = "", line: str = "") -> None:
        shown = text if code is None else f"{code} {text}".strip()
        super().__init__(f"{self.prefix}: {shown}", command=command, line=line)
        self.code = code
        self.text = text

    def _key(self) -> tuple[object, ...]:
        return (*super()._key(), self.code, self.text)


class CmeError(_CodedError):
    """+CME ERROR: <err> (TS 27.007 §9.2), numeric (AT+CMEE=1) or verbose (AT+CMEE=2): both give
    `code` (None when a verbose text is not in the table) and `text`."""

    prefix = "+CME ERROR"


class CmsError(_CodedError):
    """+CMS ERROR: <err> (TS 27.005 §3.2.5): message service failures (500 unknown)."""

    prefix = "+CMS ERROR"


class CallFailed(AtError):
    """A call setup final result (V.250 §6.3.1): only final for ATD / ATA / ATO."""


class NoCarrier(CallFailed):
    """NO CARRIER (numeric 3)."""


class Busy(CallFailed):
    """BUSY (numeric 7)."""


class NoAnswer(CallFailed):
    """NO ANSWER (numeric 8)."""


class NoDialtone(CallFailed):
    """NO DIALTONE (numeric 6)."""


class AtParseError(AtError, ValueError):
    """A response line does not have the syntax its command defines."""


class AtStateError(AtError):
    """An operation the command state does not allow (sending while a command is pending)."""


# TS 27.007 §9.2.1 / §9.2.2 (+CME ERROR) and TS 27.005 §3.2.5 (+CMS ERROR): numeric <-> verbose.
CME_ERRORS: dict[int, str] = {
    0: "phone failure",
    1: "no connection to phone",
    2: "phone-adaptor link reserved",
    3: "operation not allowed",
    4: "operation not supported",
    5: "PH-SIM PIN required",
    6: "PH-FSIM PIN required",
    7: "PH-FSIM PUK required",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",
    15: "SIM wrong",
    16: "incorrect password",
    17: "SIM PIN2 required",
    18: "SIM PUK2 required",
    20: "memory full",
    21: "invalid index",
    22: "not found",
    23: "memory failure",
    24: "text string too long",
    25: "invalid characters in text string",
    26: "dial string too long",
    27: "invalid characters in dial string",
    30: "no network service",
    31: "network timeout",
    32: "network not allowed - emergency calls only",
    40: "network personalization PIN required",
    41: "network personalization PUK required",
    42: "network subset personalization PIN required",
    43: "network subset personalization PUK required",
    44: "service provider personalization PIN required",
    45: "service provider personalization PUK required",
    46: "corporate personalization PIN required",
    47: "corporate personalization PUK required",
    50: "incorrect parameters",
    100: "unknown",
    103: "illegal MS",
    106: "illegal ME",
    107: "GPRS services not allowed",
    111: "PLMN not allowed",
    112: "location area not allowed",
    113: "roaming not allowed in this location area",
    132: "service option not supported",
    133: "requested service option not subscribed",
    134: "service option temporarily out of order",
    148: "unspecified GPRS error",
    149: "PDP authentication failure",
    150: "invalid mobile class",
}
CMS_ERRORS: dict[int, str] = {
    300: "ME failure",
    301: "SMS service of ME reserved",
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    305: "invalid text mode parameter",
    310: "SIM not inserted",
    311: "SIM PIN required",
    312: "PH-SIM PIN required",
    313: "SIM failure",
    314: "SIM busy",
    315: "SIM wrong",
    316: "SIM PUK required",
    317: "SIM PIN2 required",
    318: "SIM PUK2 required",
    320: "memory failure",
    321: "invalid memory index",
    322: "memory full",
    330: "SMSC address unknown",
    331: "no network service",
    332: "network timeout",
    340: "no +CNMA acknowledgement expected",
    500: "unknown error",
}


def _normalise(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").split())


_CME_BY_TEXT = {_normalise(t): c for c, t in CME_ERRORS.items()}
_CMS_BY_TEXT = {_normalise(t): c for c, t in CMS_ERRORS.items()}


def _coded(value: str, table: dict[int, str], by_text: dict[str, int]) -> tuple[int | None, str]:
    value = value.strip().strip('"')
    if value.isdigit():
        code = int(value)
        return code, table.get(code, "")
    return by_text.get(_normalise(value)), value


# --------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True)
class CommandCompleted:
    """The pending command got its final result code. `result` is "OK" or "CONNECT", or the
    typed failure; `lines` are its information lines (echo and URCs removed), in order."""

    command: str
    lines: list[str]
    result: str | AtError

    @property
    def ok(self) -> bool:
        return not isinstance(self.result, AtError)

    def check(self) -> list[str]:
        """The information lines, or the failure raised."""
        if isinstance(self.result, AtError):
            raise self.result
        return self.lines


@dataclass(frozen=True, slots=True)
class CommandTimedOut:
    """No final result code before the deadline; the session is idle again."""

    command: str
    lines: list[str]


@dataclass(frozen=True, slots=True)
class Unsolicited:
    """An unsolicited result code: `name` ("RING", "+CLIP", "SMS Ready", "^SYSSTART"…), `value`
    (the text after "name: "), the whole `line`, and for +CMT / +CDS / +CBM the PDU that
    followed on the next line (TS 27.005 §3.4.1, PDU mode)."""

    name: str
    value: str
    line: str
    pdu: bytes | None = None


@dataclass(frozen=True, slots=True)
class Prompt:
    """The "> " of AT+CMGS / AT+CMGW (TS 27.005 §3.5.1): the PDU and Ctrl-Z are queued in
    `data_to_send()`."""

    command: str


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes that are not a line: skipped up to the next line end."""

    data: bytes
    reason: str


Event = CommandCompleted | CommandTimedOut | Unsolicited | Prompt | Garbage


# --------------------------------------------------------------------------------------------
# Command state table


class CommandState(Enum):
    IDLE = "idle"
    SENT = "sent"  # command line written, waiting for the final result (or the prompt)
    PROMPTED = "prompted"  # PDU + Ctrl-Z written after "> ", waiting for the final result


class Input(Enum):
    SEND = "send"
    PROMPT = "prompt"
    FINAL = "final"
    TIMEOUT = "timeout"


TRANSITIONS: dict[tuple[CommandState, Input], CommandState] = {
    (CommandState.IDLE, Input.SEND): CommandState.SENT,
    (CommandState.SENT, Input.PROMPT): CommandState.PROMPTED,
    (CommandState.SENT, Input.FINAL): CommandState.IDLE,
    (CommandState.PROMPTED, Input.FINAL): CommandState.IDLE,
    (CommandState.SENT, Input.TIMEOUT): CommandState.IDLE,
    (CommandState.PROMPTED, Input.TIMEOUT): CommandState.IDLE,
}

# --------------------------------------------------------------------------------------------
# Line classification tables

CTRL_Z = b"\x1a"  # ends the PDU after the prompt (TS 27.005 §3.5.1)
ESC = b"\x1b"  # cancels it

# V.250 §5.7.1 table 1: numeric result codes (V0).
NUMERIC_RESULTS = {
    "0": "OK",
    "1": "CONNECT",
    "2": "RING",
    "3": "NO CARRIER",
    "4": "ERROR",
    "6": "NO DIALTONE",
    "7": "BUSY",
    "8": "NO ANSWER",
}
_CALL_RESULTS: dict[str, type[CallFailed]] = {
    "NO CARRIER": NoCarrier,
    "BUSY": Busy,
    "NO ANSWER": NoAnswer,
    "NO DIALTONE": NoDialtone,
    "NO DIAL TONE": NoDialtone,
}
# Commands whose final result may be a call result (V.250 §6.3.1 D, §6.3.5 A, §6.3.7 O).
_CALL_COMMAND = re.compile(r"^AT[DAO]", re.IGNORECASE)

# URCs with a PDU on the next line (TS 27.005 §3.4.1, PDU mode).
PDU_URCS = frozenset({"+CMT", "+CDS", "+CBM"})
# Prefixed URCs (TS 27.007 §6.11 +CRING, §7.6 +CLIP, §7.12 +CCWA, §7.2 +CREG, §10.1.20 +CGREG,
# §10.1.22 +CEREG, §7.15 +CUSD, §7.18 +CLCC, §8.10 +CIEV; TS 27.005 §3.4.1) and vendor ones.
PREFIXED_URCS = frozenset(
    {
        *PDU_URCS,
        "+CRING",
        "+CLIP",
        "+CCWA",
        "+COLP",
        "+CMTI",
        "+CDSI",
        "+CBMI",
        "+CREG",
        "+CGREG",
        "+CEREG",
        "+C5GREG",
        "+CUSD",
        "+CLCC",
        "+CIEV",
        "+CPIN",
        "+CFUN",
        "+CSQN",
        "+CTZV",
        "+CTZE",
        "+CTZU",
        "+CGEV",
        "+CSCON",
        "+CUSATP",
        "+PACSP",
        "+QIND",
        "+QUSIM",
        "+QNITZ",
        "+QSTAT",
        "+STIN",
        "+DTMF",
    }
)
# Unprefixed URCs: RING (V.250 §6.3), boot and power notices of SIMCom and Quectel modules.
PLAIN_URCS = frozenset(
    {
        "RING",
        "RDY",
        "SMS Ready",
        "Call Ready",
        "PB DONE",
        "START",
        "NORMAL POWER DOWN",
        "POWERED DOWN",
        "UNDER-VOLTAGE POWER DOWN",
        "UNDER-VOLTAGE WARNNING",
        "OVER-VOLTAGE POWER DOWN",
        "OVER-VOLTAGE WARNNING",
    }
)
_VENDOR_MARKS = ("^", "*", "$", "%", "#")  # ^SYSSTART, *PSUTTZ, *ST* … (never an answer of ours)
_PREFIX_MARKS = ("+", *_VENDOR_MARKS)

_EOL = re.compile(rb"[\r\n]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_COMMAND_NAME = re.compile(r"^AT([+^$*%#][A-Z0-9]+)", re.IGNORECASE)


def split_line(line: str) -> tuple[str, str]:
    """("+CLIP", '"+7701…",145') from '+CLIP: "+7701…",145'; a plain line is its own name."""
    if line.startswith(_PREFIX_MARKS):
        name, sep, value = line.partition(":")
        if sep:
            return name.strip().upper(), value.strip()
        return line.strip(), ""
    return line, ""


def default_expect(command: str) -> str | None:
    """The information prefix a command answers with by default: AT+CREG? -> "+CREG"."""
    m = _COMMAND_NAME.match(command)
    return m.group(1).upper() if m else None


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # every byte maps: a line is never undecodable


# --------------------------------------------------------------------------------------------
# The session


class AtSession:
    """One AT command interpreter link (see the module docstring)."""

    def __init__(
        self, *, command_timeout: float = 5.0, max_line: int = 2048, max_lines: int = 1024
    ) -> None:
        self.command_timeout = command_timeout
        self.max_line = max_line  # longest line kept (a PDU line is < 600 characters)
        self.max_lines = max_lines  # most information lines kept for one command
        self.state = CommandState.IDLE
        self._command = ""
        self._expect: str | None = None
        self._pdu: bytes | None = None
        self._deadline: float | None = None
        self._lines: list[str] = []
        self._buf = bytearray()
        self._discarding = False  # inside an over-long line: skip to its end
        self._pdu_header: Unsolicited | None = None  # +CMT line waiting for its PDU line
        self._out = bytearray()
        self._events: list[Event] = []

    # ------------------------------------------------------------------ state
    @property
    def pending(self) -> str | None:
        """The command awaiting its final result, or None."""
        return None if self.state is CommandState.IDLE else self._command

    @property
    def next_deadline(self) -> float | None:
        return self._deadline

    def _transition(self, inp: Input) -> None:
        new = TRANSITIONS.get((self.state, inp))
        if new is None:
            raise AtStateError(f"{inp.value} not allowed in state {self.state.value}")
        self.state = new

    # ------------------------------------------------------------------ sending
    def send(
        self,
        command: str,
        *,
        expect: str | None = None,
        pdu: bytes | None = None,
        now: float,
        timeout: float | None = None,
    ) -> bytes:
        """Start a command; returns the bytes to write. `expect` is the information prefix
        ("+CSQ"; None: the command's own name; "": any line is information); `pdu` is written
        in hex with Ctrl-Z once the "> " prompt comes (AT+CMGS, TS 27.005 §3.5.1)."""
        if "\r" in command or "\n" in command:
            raise ValueError("a command line must not contain <CR> or <LF>")
        data = command.encode("latin-1") + b"\r"  # S3 ends the command line (V.250 §5.2.1)
        if self.state is not CommandState.IDLE:
            raise AtStateError(f"{command!r} sent while {self._command!r} is pending")
        self._transition(Input.SEND)
        self._command = command
        self._expect = default_expect(command) if expect is None else expect.upper() or None
        self._pdu = pdu
        self._lines = []
        self._deadline = now + (self.command_timeout if timeout is None else timeout)
        return data

    def data_to_send(self) -> bytes:
        """Bytes the session itself wants written (the PDU after a prompt)."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def handle_timer(self, now: float) -> list[Event]:
        if self._deadline is None or now < self._deadline:
            return []
        event = CommandTimedOut(self._command, self._lines)
        self._transition(Input.TIMEOUT)
        self._finish()
        return [event]

    def _finish(self) -> None:
        self._deadline = None
        self._pdu = None
        self._lines = []

    # ------------------------------------------------------------------ receiving
    def receive(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes as read; any chunking gives the same events. Never raises."""
        self._events = []
        pos, size = 0, len(data)
        while pos < size:
            m = _EOL.search(data, pos)
            end = m.start() if m else size
            if self._discarding:
                self._discarding = m is None
            elif not self._buf and data[pos] == 0x3E and self._awaiting_prompt():  # ">"
                self._prompt()
                end = pos  # consume only the ">"; a following " " is stripped as blank
            else:
                self._take(data[pos:end], m is not None)
            pos = end + 1
        events, self._events = self._events, []
        return events

    def _take(self, piece: bytes, line_ends: bool) -> None:
        self._buf += piece
        if len(self._buf) > self.max_line:
            self._events.append(Garbage(bytes(self._buf[: self.max_line]), "line too long"))
            self._buf.clear()
            self._discarding = not line_ends
            return
        if line_ends:
            raw = bytes(self._buf)
            self._buf.clear()
            self._line(raw)

    def _awaiting_prompt(self) -> bool:
        return self.state is CommandState.SENT and self._pdu is not None

    def _prompt(self) -> None:
        assert self._pdu is not None
        self._transition(Input.PROMPT)
        self._out += self._pdu.hex().upper().encode("ascii") + CTRL_Z
        self._events.append(Prompt(self._command))

    def _line(self, raw: bytes) -> None:
        text = _decode(raw).strip(" \t")
        if not text:
            return
        if self.state is CommandState.PROMPTED and self._is_pdu_echo(text):
            return
        if _CONTROL.search(text):
            self._drop_pdu_header()
            self._events.append(Garbage(raw, "control characters in line"))
            return
        if self._pdu_header is not None and self._pdu_line(text):
            return
        if self.state is CommandState.IDLE:
            self._idle_line(text)
        else:
            self._pending_line(text)

    def _is_pdu_echo(self, text: str) -> bool:
        # With E1 the modem echoes the hex PDU it was typed (SIM800 does).
        assert self._pdu is not None
        return text.rstrip("\x1a").strip().upper() == self._pdu.hex().upper()

    def _pdu_line(self, text: str) -> bool:
        header, self._pdu_header = self._pdu_header, None
        assert header is not None
        if _HEX.fullmatch(text):
            self._events.append(
                Unsolicited(header.name, header.value, header.line, bytes.fromhex(text))
            )
            return True
        self._events.append(Garbage(header.line.encode("utf-8"), f"{header.name} without PDU"))
        return False

    def _drop_pdu_header(self) -> None:
        if self._pdu_header is not None:
            line = self._pdu_header.line
            self._events.append(Garbage(line.encode("utf-8"), "PDU line broken"))
            self._pdu_header = None

    def _idle_line(self, text: str) -> None:
        plain = NUMERIC_RESULTS.get(text, text)
        if plain not in _CALL_RESULTS and _final(plain, "", text) is not None:
            self._events.append(Garbage(text.encode("utf-8"), "final result with no command"))
            return
        self._unsolicited(plain, text)

    def _pending_line(self, text: str) -> None:
        if text.upper() == self._command.upper():
            return  # echo (E1)
        plain = NUMERIC_RESULTS.get(text, text)
        call_result = plain in _CALL_RESULTS
        if not call_result or _CALL_COMMAND.match(self._command):
            result = _final(plain, self._command, text)
            if result is not None:
                self._complete(result)
                return
        name, _ = split_line(plain)
        if self._expect is not None and name == self._expect:
            self._info(text)
        elif call_result or _is_urc(name, plain) or self._foreign(name, plain):
            self._unsolicited(plain, text)
        else:
            self._info(text)

    def _foreign(self, name: str, plain: str) -> bool:
        # A "+XYZ:" line while a command expecting another prefix is pending is a URC we do
        # not know by name; without an expected prefix it is taken as information.
        return self._expect is not None and plain.startswith(_PREFIX_MARKS) and name != plain

    def _info(self, text: str) -> None:
        if len(self._lines) >= self.max_lines:
            self._events.append(Garbage(text.encode("utf-8"), "too many lines"))
            return
        self._lines.append(text)

    def _unsolicited(self, plain: str, text: str) -> None:
        name, value = split_line(plain)
        event = Unsolicited(name, value, text)
        if name in PDU_URCS:
            self._pdu_header = event  # its PDU is the next line
        else:
            self._events.append(event)

    def _complete(self, result: str | AtError) -> None:
        event = CommandCompleted(self._command, self._lines, result)
        self._transition(Input.FINAL)
        self._finish()
        self._events.append(event)


def _is_urc(name: str, plain: str) -> bool:
    return name in PREFIXED_URCS or plain in PLAIN_URCS or name.startswith(_VENDOR_MARKS)


def _final(plain: str, command: str, line: str) -> str | AtError | None:
    """The final result a line is, or None (V.250 §5.7.1, TS 27.007 §9.2, TS 27.005 §3.2.5)."""
    if plain == "OK":
        return "OK"
    if plain == "CONNECT" or plain.startswith("CONNECT "):
        return "CONNECT"
    if plain == "ERROR":
        return CommandError("ERROR", command=command, line=line)
    if plain in _CALL_RESULTS:
        return _CALL_RESULTS[plain](plain, command=command, line=line)
    head, _, value = plain.partition(":")
    head = head.strip().upper()
    if head == "+CME ERROR":
        code, text = _coded(value, CME_ERRORS, _CME_BY_TEXT)
        return CmeError(code, text, command=command, line=line)
    if head == "+CMS ERROR":
        code, text = _coded(value, CMS_ERRORS, _CMS_BY_TEXT)
        return CmsError(code, text, command=command, line=line)
    return None


# --------------------------------------------------------------------------------------------
# Parse helpers for information lines and URC values


def split_params(value: str) -> list[str]:
    """Top-level comma-separated fields; commas inside quotes or parentheses do not split.
    Fields keep their quotes (so "" and an omitted field differ); see `params`."""
    fields: list[str] = []
    current: list[str] = []
    quoted = False
    depth = 0
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth = max(0, depth - 1)
        elif ch == "," and not quoted and depth == 0:
            fields.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    fields.append("".join(current).strip())
    return fields


def unquote(field: str) -> str:
    if len(field) >= 2 and field[0] == '"' and field[-1] == '"':
        return field[1:-1]
    return field


def params(value: str) -> list[str]:
    """The fields of a value, unquoted: '"+7701",145,,' -> ["+7701", "145", "", ""]."""
    return [unquote(f) for f in split_params(value)]


def _int(field: str, what: str, value: str) -> int:
    try:
        return int(unquote(field))
    except ValueError:
        raise AtParseError(f"{what}: not a number in {value!r}", line=value) from None


def _opt_int(field: str, what: str, value: str) -> int | None:
    return None if unquote(field) == "" else _int(field, what, value)


def parse_clip(value: str) -> tuple[str, int, int]:
    """+CLIP: <number>,<type>[,<subaddr>,<satype>[,[<alpha>][,<CLI validity>]]] (TS 27.007
    §7.6) -> (number, ton, validity). Without <CLI validity> an empty number counts as "not
    available" (2), as §7.6 gives an empty <number> exactly then."""
    fields = split_params(value)
    if not fields or not fields[0]:
        raise AtParseError(f"+CLIP: no number field in {value!r}", line=value)
    number = unquote(fields[0])
    ton = _opt_int(fields[1], "+CLIP type", value) if len(fields) > 1 else None
    validity = _opt_int(fields[5], "+CLIP validity", value) if len(fields) > 5 else None
    if validity is None:
        validity = 0 if number else 2
    return number, 129 if ton is None else ton, validity


def parse_creg(value: str) -> tuple[int | None, int, str, str]:
    """+CREG / +CGREG / +CEREG in both forms (TS 27.007 §7.2, §10.1.20, §10.1.22) -> (n, stat,
    lac, ci). The answer to a query starts <n>,<stat>; the URC starts <stat> (n is None). LAC/TAC
    and CI are hex strings as sent (upper case, "" when absent); 2G (4-digit CI) and 4G (28-bit
    CI, 4-digit TAC) lengths alike."""
    fields = split_params(value)
    if not fields or not fields[0]:
        raise AtParseError(f"registration: empty value {value!r}", line=value)
    query = len(fields) >= 2 and _is_stat(fields[1])
    n = _int(fields[0], "registration <n>", value) if query else None
    rest = fields[1:] if query else fields
    stat = _int(rest[0], "registration <stat>", value)
    lac = unquote(rest[1]).upper() if len(rest) > 1 else ""
    ci = unquote(rest[2]).upper() if len(rest) > 2 else ""
    return n, stat, lac.removeprefix("0X"), ci.removeprefix("0X")


def _is_stat(field: str) -> bool:
    # <stat> is an unquoted integer 0..11; a quoted or hex field is a <lac> (URC form).
    return field.isdigit() and int(field) <= 11


def parse_csq(value: str) -> tuple[int, int]:
    """+CSQ: <rssi>,<ber> (TS 27.007 §8.5)."""
    fields = split_params(value)
    if len(fields) < 2:
        raise AtParseError(f"+CSQ: two fields expected in {value!r}", line=value)
    return _int(fields[0], "+CSQ rssi", value), _int(fields[1], "+CSQ ber", value)


def rssi_to_dbm(rssi: int) -> int | None:
    """TS 27.007 §8.5: 0 -> -113 dBm or less, 1 -> -111, 2..30 -> -109..-53, 31 -> -51 or more,
    99 unknown; 100..191 is the TD-SCDMA range (-116..-25 dBm), 199 unknown."""
    if 0 <= rssi <= 31:
        return -113 + 2 * rssi
    if 100 <= rssi <= 191:
        return -116 + (rssi - 100)
    return None


def parse_cmti(value: str) -> tuple[str, int]:
    """+CMTI: <mem>,<index> (TS 27.005 §3.4.1) -> (mem, index); also +CDSI."""
    fields = split_params(value)
    if len(fields) < 2:
        raise AtParseError(f"+CMTI: two fields expected in {value!r}", line=value)
    return unquote(fields[0]), _int(fields[1], "+CMTI index", value)


def parse_cops(value: str) -> tuple[int, int | None, str, int | None]:
    """+COPS: <mode>[,<format>,<oper>[,<AcT>]] (TS 27.007 §7.3) -> (mode, format, oper, act)."""
    fields = split_params(value)
    if not fields or not fields[0]:
        raise AtParseError(f"+COPS: empty value {value!r}", line=value)
    mode = _int(fields[0], "+COPS mode", value)
    fmt = _opt_int(fields[1], "+COPS format", value) if len(fields) > 1 else None
    oper = unquote(fields[2]) if len(fields) > 2 else ""
    act = _opt_int(fields[3], "+COPS AcT", value) if len(fields) > 3 else None
    return mode, fmt, oper, act


def parse_cmgs(value: str) -> int:
    """+CMGS: <mr>[,<ackpdu>] (TS 27.005 §3.5.1) -> the message reference."""
    return _int(split_params(value)[0], "+CMGS mr", value)


def parse_cnum(value: str) -> tuple[str, str, int | None]:
    """+CNUM: [<alpha>],<number>,<type> (TS 27.007 §7.1) -> (alpha, number, type)."""
    fields = split_params(value)
    if len(fields) < 2:
        raise AtParseError(f"+CNUM: number expected in {value!r}", line=value)
    ton = _opt_int(fields[2], "+CNUM type", value) if len(fields) > 2 else None
    return unquote(fields[0]), unquote(fields[1]), ton


def info_values(lines: list[str], prefix: str) -> list[str]:
    """The values of the information lines named `prefix`: ["20,99"] for "+CSQ: 20,99"."""
    out: list[str] = []
    for line in lines:
        name, value = split_line(line)
        if name == prefix.upper():
            out.append(value)
    return out


def first_value(lines: list[str], prefix: str) -> str:
    """The value of the first `prefix` line, or AtParseError when there is none."""
    values = info_values(lines, prefix)
    if not values:
        raise AtParseError(f"no {prefix} line in {lines!r}", line="\n".join(lines))
    return values[0]


def parse_stored_pdus(lines: list[str], prefix: str) -> list[tuple[int | None, int, bytes]]:
    """+CMGL: <index>,<stat>,[<alpha>],<length> / +CMGR: <stat>,[<alpha>],<length>, each
    followed by its PDU line (TS 27.005 §3.4.2, §3.4.3, PDU mode) -> (index, stat, pdu); index
    is None for +CMGR. A header without a hex PDU line after it raises AtParseError."""
    out: list[tuple[int | None, int, bytes]] = []
    header: list[str] | None = None
    for line in lines:
        name, value = split_line(line)
        if name == prefix.upper():
            if header is not None:
                raise AtParseError(f"{prefix} without its PDU line", line=line)
            header = split_params(value)
        elif header is not None and _HEX.fullmatch(line):
            out.append(_stored(header, prefix, line))
            header = None
        else:
            raise AtParseError(f"unexpected line in {prefix} answer: {line!r}", line=line)
    if header is not None:
        raise AtParseError(f"{prefix} without its PDU line", line=",".join(header))
    return out


def _stored(header: list[str], prefix: str, pdu_line: str) -> tuple[int | None, int, bytes]:
    listed = prefix.upper() == "+CMGL"
    text = ",".join(header)
    if listed and len(header) < 2:
        raise AtParseError(f"{prefix}: short header {text!r}", line=text)
    index = _int(header[0], f"{prefix} index", text) if listed else None
    stat = _int(header[1 if listed else 0], f"{prefix} stat", text)
    return index, stat, bytes.fromhex(pdu_line)
