"""gsm_probe/at.py: the sans-I/O AT engine against transcripts of real module styles.

Transcripts follow what SIMCom SIM800 / SIM7600 and Quectel EC25 / BG96 send (echo on and off,
verbose and numeric errors, URCs between a command and its final result, +CMT with its PDU line,
the AT+CMGS prompt, boot noise). Every transcript is also fed one byte at a time and in random
chunks: the events must be the same. Hypothesis throws malformed input at the session: only
events come out, never an exception, and the buffers stay bounded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gsm_probe.at import (
    CME_ERRORS,
    TRANSITIONS,
    AtParseError,
    AtSession,
    AtStateError,
    Busy,
    CmeError,
    CmsError,
    CommandCompleted,
    CommandError,
    CommandState,
    CommandTimedOut,
    Event,
    Garbage,
    Input,
    NoAnswer,
    NoCarrier,
    NoDialtone,
    Prompt,
    Unsolicited,
    default_expect,
    first_value,
    info_values,
    params,
    parse_clip,
    parse_cmgs,
    parse_cmti,
    parse_cnum,
    parse_cops,
    parse_creg,
    parse_csq,
    parse_stored_pdus,
    rssi_to_dbm,
    split_line,
    split_params,
)

CLIP = '+CLIP: "+77011234567",145,"",,"",0'
# SMS-DELIVER from +77011234567, UCS2 "Сәлем" (TS 23.040 §9.2.2.1), SMSC +77010000001.
DELIVER_HEX = "07917710000000F1040B917710214365F70008522011915300020A042104D9043B0435043C"
# SMS-SUBMIT to +77011234567, UCS2 "Привет" (§9.2.2.2): TPDU length 25.
SUBMIT = bytes.fromhex("0001000B917710214365F700080C041F04400438043204350442")


# --------------------------------------------------------------------------------------------
# A transcript: commands sent and bytes received, in order


@dataclass
class Step:
    send: str | None = None
    expect: str | None = None
    pdu: bytes | None = None
    data: bytes = b""


@dataclass
class Transcript:
    name: str
    steps: list[Step]
    events: list[Event]
    written: list[bytes] = field(default_factory=list)


def run(steps: list[Step], chunker: random.Random | None = None, byte_wise: bool = False) -> tuple[
    list[Event], list[bytes]
]:  # fmt: skip
    session = AtSession(max_line=256)
    events: list[Event] = []
    written: list[bytes] = []
    for i, step in enumerate(steps):
        if step.send is not None:
            written.append(session.send(step.send, expect=step.expect, pdu=step.pdu, now=i))
        for piece in _pieces(step.data, chunker, byte_wise):
            events += session.receive(piece, now=i)
            out = session.data_to_send()
            if out:
                written.append(out)
    return events, written


def _pieces(data: bytes, chunker: random.Random | None, byte_wise: bool) -> list[bytes]:
    if byte_wise:
        return [data[i : i + 1] for i in range(len(data))]
    if chunker is None:
        return [data]
    out, pos = [], 0
    while pos < len(data):
        size = chunker.randint(1, 12)
        out.append(data[pos : pos + size])
        pos += size
    return out


def ok(command: str, *lines: str) -> CommandCompleted:
    return CommandCompleted(command, list(lines), "OK")


def urc(line: str, pdu: bytes | None = None) -> Unsolicited:
    name, value = split_line(line)
    return Unsolicited(name, value, line, pdu)


TRANSCRIPTS = [
    Transcript(
        "sim800 boot noise then AT with echo on",
        [
            Step(data=b"\x00\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nCall Ready\r\n"),
            Step(data=b"\r\nSMS Ready\r\n"),
            Step("AT", data=b"AT\r\r\nOK\r\n"),
        ],
        [
            Garbage(b"\x00", "control characters in line"),
            urc("RDY"),
            urc("+CFUN: 1"),
            urc("+CPIN: READY"),
            urc("Call Ready"),
            urc("SMS Ready"),
            ok("AT"),
        ],
        [b"AT\r"],
    ),
    Transcript(
        "sim800 identity, echo on",
        [
            Step("AT+CGMI", data=b"AT+CGMI\r\r\nSIMCOM_Ltd\r\n\r\nOK\r\n"),
            Step("AT+CGMR", data=b"AT+CGMR\r\r\nRevision:1418B04SIM800L24\r\n\r\nOK\r\n"),
            Step("ATE0", data=b"ATE0\r\r\nOK\r\n"),
            Step("AT+CGSN", data=b"\r\n866782041234567\r\n\r\nOK\r\n"),
        ],
        [
            ok("AT+CGMI", "SIMCOM_Ltd"),
            ok("AT+CGMR", "Revision:1418B04SIM800L24"),
            ok("ATE0"),
            ok("AT+CGSN", "866782041234567"),
        ],
    ),
    Transcript(
        "sim800 verbose CME error: SIM not inserted",
        [Step("AT+CPIN?", data=b"AT+CPIN?\r\r\n+CME ERROR: SIM not inserted\r\n")],
        [
            CommandCompleted(
                "AT+CPIN?",
                [],
                CmeError(
                    10,
                    "SIM not inserted",
                    command="AT+CPIN?",
                    line="+CME ERROR: SIM not inserted",
                ),
            )
        ],
    ),
    Transcript(
        "ec25 numeric CME error 10, echo off",
        [Step("AT+CIMI", data=b"\r\n+CME ERROR: 10\r\n")],
        [
            CommandCompleted(
                "AT+CIMI",
                [],
                CmeError(10, "SIM not inserted", command="AT+CIMI", line="+CME ERROR: 10"),
            )
        ],
    ),
    Transcript(
        "ec25 verbose CME error not in the table",
        [Step('AT+QENG="servingcell"', data="\r\n+CME ERROR: Жүйе қатесі\r\n".encode())],
        [
            CommandCompleted(
                'AT+QENG="servingcell"',
                [],
                CmeError(
                    None,
                    "Жүйе қатесі",
                    command='AT+QENG="servingcell"',
                    line="+CME ERROR: Жүйе қатесі",
                ),
            )
        ],
    ),
    Transcript(
        "plain ERROR",
        [Step("AT+FOO", data=b"\r\nERROR\r\n")],
        [CommandCompleted("AT+FOO", [], CommandError("ERROR", command="AT+FOO", line="ERROR"))],
    ),
    Transcript(
        "RING and +CLIP between AT+CSQ and its OK (sim800)",
        [
            Step(
                "AT+CSQ",
                data=(
                    b"AT+CSQ\r\r\nRING\r\n\r\n" + CLIP.encode() + b"\r\n\r\n+CSQ: 20,99\r\n"
                    b"\r\nRING\r\n\r\n" + CLIP.encode() + b"\r\n\r\nOK\r\n"
                ),
            )
        ],
        [urc("RING"), urc(CLIP), urc("RING"), urc(CLIP), ok("AT+CSQ", "+CSQ: 20,99")],
    ),
    Transcript(
        "+CRING with AT+CRC=1 (ec25), idle",
        [Step(data=b"\r\n+CRING: VOICE\r\n\r\n" + CLIP.encode() + b"\r\n")],
        [urc("+CRING: VOICE"), urc(CLIP)],
    ),
    Transcript(
        "+CMT with its PDU line mid-command, then +CMTI",
        [
            Step(
                "AT+COPS?",
                data=(
                    b"\r\n+CMT: ,29\r\n" + DELIVER_HEX.encode() + b"\r\n"
                    b'\r\n+COPS: 0,0,"Beeline KZ",7\r\n\r\n+CMTI: "SM",3\r\n\r\nOK\r\n'
                ),
            )
        ],
        [
            urc("+CMT: ,29", bytes.fromhex(DELIVER_HEX)),
            urc('+CMTI: "SM",3'),
            ok("AT+COPS?", '+COPS: 0,0,"Beeline KZ",7'),
        ],
    ),
    Transcript(
        "+CMT with an alpha field, idle, bare LF line ends",
        [Step(data='+CMT: "Айгүл",29\n'.encode() + DELIVER_HEX.encode() + b"\n")],
        [urc('+CMT: "Айгүл",29', bytes.fromhex(DELIVER_HEX))],
    ),
    Transcript(
        "+CMT whose PDU line never came",
        [Step(data=b"\r\n+CMT: ,29\r\n\r\nRING\r\n")],
        [Garbage(b"+CMT: ,29", "+CMT without PDU"), urc("RING")],
    ),
    Transcript(
        "CMGS prompt exchange, echo off (ec25)",
        [Step("AT+CMGS=25", pdu=SUBMIT, data=b"\r\n> "), Step(data=b"\r\n+CMGS: 12\r\n\r\nOK\r\n")],
        [Prompt("AT+CMGS=25"), ok("AT+CMGS=25", "+CMGS: 12")],
        [b"AT+CMGS=25\r", SUBMIT.hex().upper().encode() + b"\x1a"],
    ),
    Transcript(
        "CMGS prompt with echo of command and PDU (sim800)",
        [
            Step("AT+CMGS=25", pdu=SUBMIT, data=b"AT+CMGS=25\r\r\n> "),
            Step(data=SUBMIT.hex().upper().encode() + b"\x1a\r\n+CMGS: 7\r\n\r\nOK\r\n"),
        ],
        [Prompt("AT+CMGS=25"), ok("AT+CMGS=25", "+CMGS: 7")],
        [b"AT+CMGS=25\r", SUBMIT.hex().upper().encode() + b"\x1a"],
    ),
    Transcript(
        "CMGS answered +CMS ERROR: 500 after the prompt",
        [Step("AT+CMGS=25", pdu=SUBMIT, data=b"\r\n> \r\n+CMS ERROR: 500\r\n")],
        [
            Prompt("AT+CMGS=25"),
            CommandCompleted(
                "AT+CMGS=25",
                [],
                CmsError(500, "unknown error", command="AT+CMGS=25", line="+CMS ERROR: 500"),
            ),
        ],
        [b"AT+CMGS=25\r", SUBMIT.hex().upper().encode() + b"\x1a"],
    ),
    Transcript(
        "AT+CREG? answer versus an unsolicited +CREG mid-command",
        [
            Step("AT+CREG?", data=b'\r\n+CREG: 2,1,"1A2B","C3D4"\r\n\r\nOK\r\n'),
            Step("AT+CSQ", data=b'\r\n+CREG: 5,"1A2B","C3D5"\r\n+CSQ: 31,0\r\n\r\nOK\r\n'),
        ],
        [
            ok("AT+CREG?", '+CREG: 2,1,"1A2B","C3D4"'),
            urc('+CREG: 5,"1A2B","C3D5"'),
            ok("AT+CSQ", "+CSQ: 31,0"),
        ],
    ),
    Transcript(
        "+CLCC: answer to AT+CLCC, unsolicited otherwise (sim7600)",
        [
            Step("AT+CLCC", data=b'\r\n+CLCC: 1,1,4,0,0,"+77011234567",145\r\n\r\nOK\r\n'),
            Step(
                "AT+CPSI?",
                data=(
                    b'\r\n+CLCC: 1,1,6,0,0,"+77011234567",145\r\n'
                    b"\r\n+CPSI: LTE,Online,401-02,0x1A2B,27447297,257,EUTRAN-BAND3,1300,5,5\r\n"
                    b"\r\nOK\r\n"
                ),
            ),
        ],
        [
            ok("AT+CLCC", '+CLCC: 1,1,4,0,0,"+77011234567",145'),
            urc('+CLCC: 1,1,6,0,0,"+77011234567",145'),
            ok(
                "AT+CPSI?",
                "+CPSI: LTE,Online,401-02,0x1A2B,27447297,257,EUTRAN-BAND3,1300,5,5",
            ),
        ],
    ),
    Transcript(
        "+CPIN: READY is the answer while AT+CPIN? is pending",
        [Step("AT+CPIN?", data=b"\r\n+CPIN: READY\r\n\r\nOK\r\n")],
        [ok("AT+CPIN?", "+CPIN: READY")],
    ),
    Transcript(
        "NO CARRIER idle is a call end; mid AT+CSQ too; final for ATD",
        [
            Step(data=b"\r\nNO CARRIER\r\n"),
            Step("AT+CSQ", data=b"\r\nNO CARRIER\r\n\r\n+CSQ: 18,99\r\n\r\nOK\r\n"),
            Step("ATD+77011234567;", data=b"\r\nNO CARRIER\r\n"),
            Step("ATD+77011234568;", data=b"\r\nBUSY\r\n"),
            Step("ATD+77011234569;", data=b"\r\nNO ANSWER\r\n"),
            Step("ATD+77011234560;", data=b"\r\nNO DIALTONE\r\n"),
        ],
        [
            urc("NO CARRIER"),
            urc("NO CARRIER"),
            ok("AT+CSQ", "+CSQ: 18,99"),
            CommandCompleted(
                "ATD+77011234567;",
                [],
                NoCarrier("NO CARRIER", command="ATD+77011234567;", line="NO CARRIER"),
            ),
            CommandCompleted(
                "ATD+77011234568;", [], Busy("BUSY", command="ATD+77011234568;", line="BUSY")
            ),
            CommandCompleted(
                "ATD+77011234569;",
                [],
                NoAnswer("NO ANSWER", command="ATD+77011234569;", line="NO ANSWER"),
            ),
            CommandCompleted(
                "ATD+77011234560;",
                [],
                NoDialtone("NO DIALTONE", command="ATD+77011234560;", line="NO DIALTONE"),
            ),
        ],
    ),
    Transcript(
        "numeric result codes (V0): 0 OK, 4 ERROR, 2 RING and 3 NO CARRIER idle",
        [
            Step("ATV0", data=b"0\r"),
            Step("AT+CSQ", data=b"+CSQ: 21,99\r\n0\r"),
            Step("AT+BAD", data=b"4\r"),
            Step(data=b"2\r" + CLIP.encode() + b"\r\n3\r"),
            Step("ATD+77011234567;", data=b"7\r"),
        ],
        [
            ok("ATV0"),
            ok("AT+CSQ", "+CSQ: 21,99"),
            CommandCompleted("AT+BAD", [], CommandError("ERROR", command="AT+BAD", line="4")),
            Unsolicited("RING", "", "2"),
            urc(CLIP),
            Unsolicited("NO CARRIER", "", "3"),
            CommandCompleted(
                "ATD+77011234567;", [], Busy("BUSY", command="ATD+77011234567;", line="7")
            ),
        ],
    ),
    Transcript(
        "framing quirks: bare LF, stray CR, leading CRLFs, CONNECT",
        [
            Step("AT+CSQ", data=b"\r\n\r\n\r+CSQ: 9,99\n\rOK\n"),
            Step("ATD*99#", data=b"\r\nCONNECT 150000000\r\n"),
        ],
        [
            ok("AT+CSQ", "+CSQ: 9,99"),
            CommandCompleted("ATD*99#", [], "CONNECT"),
        ],
    ),
    Transcript(
        "quectel URCs mid-command (+QIND, +CPIN, +QUSIM) and vendor ^ / * URCs",
        [
            Step(data=b"\r\n+QUSIM: 1\r\n\r\n+CPIN: READY\r\n\r\n+QIND: SMS DONE\r\n"),
            Step(
                "AT+CGMM",
                data=(
                    b"\r\n^SYSSTART\r\n\r\nEC25\r\n"
                    b'\r\n*PSUTTZ: 24,11,23,8,0,0,"+20",0\r\n\r\nOK\r\n'
                ),
            ),
            Step("AT+CSQ", data=b'\r\n+QIND: "csq",20,99\r\n+CSQ: 20,99\r\n\r\nOK\r\n'),
        ],
        [
            urc("+QUSIM: 1"),
            urc("+CPIN: READY"),
            urc("+QIND: SMS DONE"),
            urc("^SYSSTART"),
            urc('*PSUTTZ: 24,11,23,8,0,0,"+20",0'),
            ok("AT+CGMM", "EC25"),
            urc('+QIND: "csq",20,99'),
            ok("AT+CSQ", "+CSQ: 20,99"),
        ],
    ),
    Transcript(
        "an unknown +XYZ line while another prefix is expected is a URC",
        [Step("AT+CSQ", data=b"\r\n+CSCON: 1\r\n\r\n+CSQ: 20,99\r\n\r\nOK\r\n")],
        [urc("+CSCON: 1"), ok("AT+CSQ", "+CSQ: 20,99")],
    ),
    Transcript(
        "USSD answer arriving after OK (+CUSD is a URC)",
        [
            Step(
                'AT+CUSD=1,"*102#",15',
                data='\r\nOK\r\n\r\n+CUSD: 0,"Баланс: 1500 тг",72\r\n'.encode(),
            )
        ],
        [ok('AT+CUSD=1,"*102#",15'), urc('+CUSD: 0,"Баланс: 1500 тг",72')],
    ),
    Transcript(
        "UTF-8 and latin-1 operator names",
        [
            Step("AT+COPS?", data='\r\n+COPS: 0,0,"Қазақтелеком",7\r\n\r\nOK\r\n'.encode()),
            Step("AT+COPS?", data=b'\r\n+COPS: 0,0,"K\xe9cell",2\r\n\r\nOK\r\n'),
        ],
        [
            ok("AT+COPS?", '+COPS: 0,0,"Қазақтелеком",7'),
            ok("AT+COPS?", '+COPS: 0,0,"Kécell",2'),
        ],
    ),
    Transcript(
        "garbage mid-response: the command still completes",
        [Step("AT+CSQ", data=b"\r\n+CSQ: 20,99\r\n\xff\x00\x1b\x07zz\r\n\r\nOK\r\n")],
        [
            Garbage(b"\xff\x00\x1b\x07zz", "control characters in line"),
            ok("AT+CSQ", "+CSQ: 20,99"),
        ],
    ),
    Transcript(
        "an over-long line is garbage, the next line is read",
        [Step("AT+CSQ", data=b"\r\n" + b"A" * 600 + b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n")],
        [Garbage(b"A" * 256, "line too long"), ok("AT+CSQ", "+CSQ: 20,99")],
    ),
    Transcript(
        "a final result with nothing pending (late OK after a timeout)",
        [Step(data=b"\r\nOK\r\n\r\n+CME ERROR: 3\r\n")],
        [
            Garbage(b"OK", "final result with no command"),
            Garbage(b"+CME ERROR: 3", "final result with no command"),
        ],
    ),
    Transcript(
        "CMGL listing with PDU lines (bg96)",
        [
            Step(
                "AT+CMGL=4",
                data=(
                    b"\r\n+CMGL: 1,0,,29\r\n" + DELIVER_HEX.encode() + b"\r\n"
                    b"+CMGL: 4,1,,29\r\n" + DELIVER_HEX.encode() + b"\r\n\r\nOK\r\n"
                ),
            )
        ],
        [ok("AT+CMGL=4", "+CMGL: 1,0,,29", DELIVER_HEX, "+CMGL: 4,1,,29", DELIVER_HEX)],
    ),
]


@pytest.mark.parametrize("t", TRANSCRIPTS, ids=[t.name for t in TRANSCRIPTS])
def test_transcript(t: Transcript) -> None:
    events, written = run(t.steps)
    assert events == t.events
    if t.written:
        assert written == t.written


@pytest.mark.parametrize("t", TRANSCRIPTS, ids=[t.name for t in TRANSCRIPTS])
def test_transcript_one_byte_at_a_time(t: Transcript) -> None:
    assert run(t.steps, byte_wise=True) == run(t.steps)


@pytest.mark.parametrize("t", TRANSCRIPTS, ids=[t.name for t in TRANSCRIPTS])
def test_transcript_random_chunks(t: Transcript) -> None:
    whole = run(t.steps)
    for seed in range(40):
        assert run(t.steps, chunker=random.Random(seed)) == whole, seed


def test_every_split_position_of_one_exchange() -> None:
    steps = TRANSCRIPTS[6].steps  # RING/+CLIP inside AT+CSQ
    data = steps[0].data
    whole = run(steps)
    for cut in range(len(data) + 1):
        session = AtSession(max_line=256)
        session.send("AT+CSQ", now=0)
        events = session.receive(data[:cut], 0) + session.receive(data[cut:], 0)
        assert events == whole[0], cut


# --------------------------------------------------------------------------------------------
# Command states, timeouts, sending


def test_state_table_walk() -> None:
    s = AtSession()
    assert s.state is CommandState.IDLE and s.pending is None
    s.send("AT+CMGS=25", pdu=SUBMIT, now=0)
    assert s.state is CommandState.SENT and s.pending == "AT+CMGS=25"
    s.receive(b"\r\n> ", 0)
    assert s.state is CommandState.PROMPTED
    s.receive(b"\r\n+CMGS: 1\r\n\r\nOK\r\n", 0)
    assert s.state is CommandState.IDLE and s.pending is None


def test_missing_transitions_are_errors() -> None:
    for state in CommandState:
        for inp in Input:
            s = AtSession()
            s.state = state
            if (state, inp) in TRANSITIONS:
                s._transition(inp)
                assert s.state is TRANSITIONS[(state, inp)]
            else:
                with pytest.raises(AtStateError):
                    s._transition(inp)


def test_send_while_pending_is_an_error() -> None:
    s = AtSession()
    s.send("AT", now=0)
    with pytest.raises(AtStateError):
        s.send("AT+CSQ", now=0)
    assert s.pending == "AT"


def test_command_with_line_end_refused() -> None:
    with pytest.raises(ValueError):
        AtSession().send("AT\rAT", now=0)


def test_timeout() -> None:
    s = AtSession(command_timeout=5.0)
    s.send("AT+CSQ", now=100.0)
    assert s.next_deadline == 105.0
    assert s.receive(b"\r\n+CSQ: 20,99\r\n", 101.0) == []
    assert s.handle_timer(104.9) == []
    assert s.handle_timer(105.0) == [CommandTimedOut("AT+CSQ", ["+CSQ: 20,99"])]
    assert s.pending is None and s.next_deadline is None
    assert s.handle_timer(200.0) == []
    # the late OK is not taken for the next command's
    assert s.receive(b"\r\nOK\r\n", 106.0) == [Garbage(b"OK", "final result with no command")]
    s.send("AT", now=107.0, timeout=1.0)
    assert s.next_deadline == 108.0


def test_timeout_after_prompt() -> None:
    s = AtSession()
    s.send("AT+CMGS=25", pdu=SUBMIT, now=0, timeout=60.0)
    s.receive(b"\r\n> ", 1)
    assert s.handle_timer(61.0) == [CommandTimedOut("AT+CMGS=25", [])]
    assert s.state is CommandState.IDLE


def test_prompt_only_when_a_pdu_is_waiting() -> None:
    s = AtSession()
    s.send("AT+CSQ", now=0)
    events = s.receive(b"\r\n> hello\r\nOK\r\n", 0)
    assert events == [ok("AT+CSQ", "> hello")]
    assert s.data_to_send() == b""


def test_explicit_expect_and_no_filter() -> None:
    s = AtSession()
    s.send("AT+CCID", expect="+ICCID", now=0)  # SIM7600 answers AT+CCID with +ICCID
    assert s.receive(b"\r\n+ICCID: 8997101234567890123\r\n\r\nOK\r\n", 0) == [
        ok("AT+CCID", "+ICCID: 8997101234567890123")
    ]
    s.send("ATI", now=0)  # no prefix: every non-URC line is information
    assert s.receive(b"\r\nQuectel\r\nEC25\r\nRevision: EC25EFAR06A06M4G\r\n\r\nOK\r\n", 0) == [
        ok("ATI", "Quectel", "EC25", "Revision: EC25EFAR06A06M4G")
    ]
    s.send("AT&V", expect="", now=0)
    assert s.receive(b"\r\n+CSQ: 1\r\n+CMEE: 2\r\n+CREG: 0\r\nOK\r\n", 0) == [
        urc("+CREG: 0"),
        ok("AT&V", "+CSQ: 1", "+CMEE: 2"),
    ]


def test_too_many_lines_bounded() -> None:
    s = AtSession(max_lines=3)
    s.send("AT+CMGL=4", now=0)
    events = s.receive(b"".join(b"%d\r\n" % (10 + i) for i in range(5)) + b"OK\r\n", 0)
    assert events[-1] == ok("AT+CMGL=4", "10", "11", "12")
    assert [e.reason for e in events if isinstance(e, Garbage)] == ["too many lines"] * 2


def test_cme_codes_round_trip_verbose_to_numeric() -> None:
    for code, text in CME_ERRORS.items():
        s = AtSession()
        s.send("AT+CPIN?", now=0)
        (event,) = s.receive(f"\r\n+CME ERROR: {text.upper()}\r\n".encode(), 0)
        assert isinstance(event, CommandCompleted)
        assert isinstance(event.result, CmeError) and event.result.code == code
        with pytest.raises(CmeError):
            event.check()


def test_default_expect() -> None:
    assert default_expect("AT+CREG?") == "+CREG"
    assert default_expect('at+qeng="servingcell"') == "+QENG"
    assert default_expect("AT^SYSINFO") == "^SYSINFO"
    assert default_expect("ATE0") is None
    assert default_expect("ATD+77011234567;") is None


# --------------------------------------------------------------------------------------------
# Hypothesis: malformed input never raises, memory stays bounded

TOKENS = [
    b"\r",
    b"\n",
    b"\r\n",
    b"> ",
    b">",
    b"OK",
    b"ERROR",
    b"0",
    b"3",
    b"RING",
    b"NO CARRIER",
    b"+CMT: ,29",
    b'+CMTI: "SM",1',
    b"+CME ERROR: ",
    b"+CMS ERROR: 5",
    b"+CREG: ",
    b'+CLIP: "',
    b",",
    b'"',
    b"\x1a",
    b"\x00",
    b"\xff\xfe",
    b"\xd2\x9b",
    DELIVER_HEX.encode(),
    b"A" * 70,
]

chunks = st.lists(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=40)), max_size=60).map(
    b"".join
)


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["AT+CSQ", "AT+CMGS=25", "ATD+7701;", "AT+CREG?", None]),
            chunks,
            st.integers(0, 3),
        ),
        max_size=12,
    )
)
def test_malformed_input_only_events(ops: list[tuple[str | None, bytes, int]]) -> None:
    s = AtSession(max_line=128, max_lines=16)
    now = 0.0
    for command, data, tick in ops:
        now += tick
        if command is not None and s.pending is None:
            pdu = SUBMIT if command == "AT+CMGS=25" else None
            s.send(command, pdu=pdu, now=now, timeout=2.0)
        for event in s.receive(data, now) + s.handle_timer(now):
            assert isinstance(
                event, CommandCompleted | CommandTimedOut | Unsolicited | Prompt | Garbage
            )
            if isinstance(event, Garbage):
                assert len(event.data) <= 128 * 4  # a line at most, whatever its text
        s.data_to_send()
        assert len(s._buf) <= 128
        assert len(s._lines) <= 16


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_chunking_never_changes_events(data: bytes, cuts: list[int]) -> None:
    steps_whole = [Step("AT+CMGS=25", pdu=SUBMIT, data=data)]
    whole = run(steps_whole)
    points = sorted({min(c, len(data)) for c in cuts})
    session = AtSession(max_line=256)
    session.send("AT+CMGS=25", pdu=SUBMIT, now=0)
    events: list[Event] = []
    prev = 0
    for p in [*points, len(data)]:
        events += session.receive(data[prev:p], 0)
        prev = p
    assert events == whole[0]


@settings(max_examples=100, deadline=None)
@given(size=st.integers(300, 5000))
def test_garbage_flood_is_bounded(size: int) -> None:
    s = AtSession(max_line=256)
    events = s.receive(b"\x00" * size, 0)
    assert events == [Garbage(b"\x00" * 256, "line too long")]
    assert len(s._buf) == 0
    assert s.receive(b"still the same line\r\nRING\r\n", 0) == [urc("RING")]


# --------------------------------------------------------------------------------------------
# Parse helpers


def test_split_params_quotes_and_parentheses() -> None:
    assert split_params('"a,b",1,,"",(1,2),"x(y"') == ['"a,b"', "1", "", '""', "(1,2)", '"x(y"']
    assert params('"Билайн, ТОО",2') == ["Билайн, ТОО", "2"]
    assert params("") == [""]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"+77011234567",145,"",,"",0', ("+77011234567", 145, 0)),
        ('"87011234567",129', ("87011234567", 129, 0)),
        ('"+77011234567",145,,,"Асқар, досым",0', ("+77011234567", 145, 0)),
        ('"",128,,,,1', ("", 128, 1)),
        ('"",128,,,,2', ("", 128, 2)),
        ('"",128', ("", 128, 2)),
        ('"7011234567",161', ("7011234567", 161, 0)),
        ('"+77011234567",', ("+77011234567", 129, 0)),
    ],
)
def test_parse_clip(value: str, expected: tuple[str, int, int]) -> None:
    assert parse_clip(value) == expected


@pytest.mark.parametrize("value", ["", "abc,def", '"+7701",x', '"+7701",145,,,,y'])
def test_parse_clip_broken(value: str) -> None:
    with pytest.raises(AtParseError):
        parse_clip(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", (None, 1, "", "")),  # URC, n=1
        ("0,1", (0, 1, "", "")),  # query, n=0
        ('1,"1A2B","C3D4"', (None, 1, "1A2B", "C3D4")),  # URC n=2, 2G
        ('2,5,"1a2b","c3d4"', (2, 5, "1A2B", "C3D4")),  # query n=2, 2G
        ('1,"1A2B","01C3D4E5",7', (None, 1, "1A2B", "01C3D4E5")),  # URC, 4G lengths
        ('2,1,"1A2B","01C3D4E5",7', (2, 1, "1A2B", "01C3D4E5")),  # query, 4G
        ('2,1,"1A2B","C3D4",0,"05"', (2, 1, "1A2B", "C3D4")),  # +CGREG query with <rac>
        ("2,2", (2, 2, "", "")),  # searching
        ('0,"",""', (None, 0, "", "")),
        ("1,0x1A2B,0xC3D4", (None, 1, "1A2B", "C3D4")),
        ('3,"1A2B","C3D4",7,0,3', (None, 3, "1A2B", "C3D4")),  # +CEREG URC with reject cause
    ],
)
def test_parse_creg(value: str, expected: tuple[int | None, int, str, str]) -> None:
    assert parse_creg(value) == expected


def test_parse_creg_broken() -> None:
    for value in ("", "x", '"1A2B"'):
        with pytest.raises(AtParseError):
            parse_creg(value)


def test_parse_csq_and_dbm() -> None:
    assert parse_csq("20,99") == (20, 99)
    assert [rssi_to_dbm(r) for r in (0, 1, 2, 20, 30, 31, 99)] == [
        -113,
        -111,
        -109,
        -73,
        -53,
        -51,
        None,
    ]
    assert rssi_to_dbm(100) == -116 and rssi_to_dbm(191) == -25 and rssi_to_dbm(199) is None
    with pytest.raises(AtParseError):
        parse_csq("20")
    with pytest.raises(AtParseError):
        parse_csq("a,b")


def test_parse_cmti_cops_cmgs_cnum() -> None:
    assert parse_cmti('"SM",3') == ("SM", 3)
    assert parse_cmti('"ME",12') == ("ME", 12)
    assert parse_cops('0,0,"Beeline KZ",7') == (0, 0, "Beeline KZ", 7)
    assert parse_cops('0,0,"Kcell, Activ",2') == (0, 0, "Kcell, Activ", 2)
    assert parse_cops("2") == (2, None, "", None)
    assert parse_cmgs("12") == 12
    assert parse_cmgs('200,"07"') == 200
    assert parse_cnum('"Менің нөмірім","+77011234567",145') == (
        "Менің нөмірім",
        "+77011234567",
        145,
    )
    assert parse_cnum(',"87011234567",129') == ("", "87011234567", 129)
    for bad in (lambda: parse_cmti('"SM"'), lambda: parse_cops(""), lambda: parse_cnum('""')):
        with pytest.raises(AtParseError):
            bad()


def test_info_values_and_stored_pdus() -> None:
    lines = ["+CMGL: 1,0,,29", DELIVER_HEX, "+CMGL: 4,1,,29", DELIVER_HEX]
    assert info_values(lines, "+CMGL") == ["1,0,,29", "4,1,,29"]
    assert first_value(["+CSQ: 20,99"], "+CSQ") == "20,99"
    with pytest.raises(AtParseError):
        first_value([], "+CSQ")
    pdu = bytes.fromhex(DELIVER_HEX)
    assert parse_stored_pdus(lines, "+CMGL") == [(1, 0, pdu), (4, 1, pdu)]
    assert parse_stored_pdus(["+CMGR: 0,,29", DELIVER_HEX], "+CMGR") == [(None, 0, pdu)]
    assert parse_stored_pdus([], "+CMGR") == []
    for broken in (["+CMGL: 1,0,,29"], ["+CMGL: 1,0,,29", "+CMGL: 2,0,,29"], ["zz"]):
        with pytest.raises(AtParseError):
            parse_stored_pdus(broken, "+CMGL")
