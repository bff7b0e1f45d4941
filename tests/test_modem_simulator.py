"""simulators.modem: the sans-I/O core byte for byte, then the pty / TCP pump driven by pyserial.

The core is fed bytes and ``now``; what it answers is compared with what TS 27.007 / 27.005 and
V.250 prescribe. The pump tests open the simulator's URL with pyserial (in a thread, blocking
reads with a timeout) exactly as the driver does.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import serial

from gateway.config_check import ConfigError
from gsm_probe.ts23040 import (
    Address,
    SmsSubmit,
    decode_deliver,
    join_parts,
    submit_parts,
    tpdu_length,
)
from simulators.modem import ModemCore, ModemProfile, ModemSimulator, StorageFullError
from simulators.modem_cli import script_from_toml

KZ = timezone(timedelta(hours=5))
WHEN = datetime(2024, 11, 23, 10, 15, 30, tzinfo=KZ)
KAZAKH = "Сәлеметсіз бе! Тест қоңырауы"
RUSSIAN = "Ваш код: 4821"
LONG_KAZAKH = (KAZAKH + ". Қазақстан Республикасы, Алматы қаласы. ") * 2  # 3 UCS2 parts
CALLER = "+77011234567"


def at(core: ModemCore, line: str, now: float = 0.0) -> str:
    """Send one command line, return everything the modem answered (echo included)."""
    core.receive(line.encode("latin-1") + b"\r", now)
    return core.data_to_send().decode("latin-1")


def quiet_core(**profile: str | None) -> ModemCore:
    core = ModemCore(ModemProfile(**profile))  # type: ignore[arg-type]
    at(core, "ATE0")
    return core


# --------------------------------------------------------------------------------------------
# Core: V.250 framing


def test_echo_and_final_result_framing() -> None:
    core = ModemCore()
    assert at(core, "AT") == "AT\r\r\nOK\r\n"  # V.250 §5.7.1: echo, then <cr><lf>OK<cr><lf>
    assert at(core, "ATE0") == "ATE0\r\r\nOK\r\n"  # echoed before it takes effect
    assert at(core, "AT") == "\r\nOK\r\n"
    assert at(core, "ATE1") == "\r\nOK\r\n"
    assert at(core, "at") == "at\r\r\nOK\r\n"


def test_line_editing_and_junk_before_prefix() -> None:
    core = quiet_core()
    core.receive(b"\x1b\r", 0.0)  # gammu's "escape SMS mode": no AT prefix, no answer
    assert core.data_to_send() == b""
    core.receive(b"\nAT+CGMX\x08I\r", 0.0)  # backspace (S5) corrects the line
    assert core.data_to_send() == b"\r\nSIMCOM INCORPORATED\r\n\r\nOK\r\n"
    core.receive(b"\x00\xffAT\r", 0.0)
    assert core.data_to_send() == b"\r\nOK\r\n"
    core.receive(b"A", 0.0)
    core.receive(b"T+CSQ\r", 0.0)  # a line may come in pieces
    assert core.data_to_send() == b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"


def test_several_commands_on_one_line() -> None:
    core = quiet_core()
    assert at(core, "AT+CGMI;+CGMM;E0V1") == (
        "\r\nSIMCOM INCORPORATED\r\n\r\nSIMCOM_SIM7600E-H\r\n\r\nOK\r\n"
    )
    # An error stops the line: no OK, and nothing after it runs (V.250 §5.2.3)
    assert at(core, "AT+CGMI;+NOPE;+CGMM") == "\r\nSIMCOM INCORPORATED\r\n\r\nERROR\r\n"


def test_numeric_result_codes() -> None:
    core = quiet_core()
    assert at(core, "ATV0") == "0\r"
    assert at(core, "AT+CGMI") == "SIMCOM INCORPORATED\r\n0\r"
    assert at(core, "AT+NOPE") == "4\r"
    assert at(core, "ATV1") == "\r\nOK\r\n"


def test_s_registers_and_reset() -> None:
    core = quiet_core()
    assert at(core, "ATS0?") == "\r\n000\r\n\r\nOK\r\n"
    assert at(core, "ATS0=2") == "\r\nOK\r\n"
    assert at(core, "ATS0?") == "\r\n002\r\n\r\nOK\r\n"
    at(core, "AT+CMEE=2")
    assert at(core, "ATZ") == "\r\nOK\r\n"
    assert at(core, "AT+CMEE?") == "AT+CMEE?\r\r\n+CMEE: 0\r\n\r\nOK\r\n"  # echo back on


# --------------------------------------------------------------------------------------------
# Core: identity, errors, SIM, network


def test_identity() -> None:
    core = quiet_core()
    for command, value in [
        ("AT+CGMI", "SIMCOM INCORPORATED"),
        ("AT+GMI", "SIMCOM INCORPORATED"),
        ("AT+CGMM", "SIMCOM_SIM7600E-H"),
        ("AT+CGMR", "LE20B04SIM7600M22"),
        ("AT+CGSN", "867584030123456"),
        ("AT+GSN", "867584030123456"),
        ("AT+CIMI", "401021234567890"),
        ("AT+CNUM", '+CNUM: "","+77011234567",145'),
    ]:
        assert at(core, command) == f"\r\n{value}\r\n\r\nOK\r\n", command
    assert at(core, "ATI") == (
        "\r\nManufacturer: SIMCOM INCORPORATED\r\nModel: SIMCOM_SIM7600E-H\r\n"
        "Revision: LE20B04SIM7600M22\r\nIMEI: 867584030123456\r\n+GCAP: +CGSM\r\n\r\nOK\r\n"
    )


def test_cmee_variants() -> None:
    core = quiet_core()
    assert at(core, "AT+FOO") == "\r\nERROR\r\n"
    assert at(core, "AT+CMGR=99") == "\r\nERROR\r\n"
    assert at(core, "AT+CMEE=1") == "\r\nOK\r\n"
    assert at(core, "AT+FOO") == "\r\n+CME ERROR: 4\r\n"
    assert at(core, "AT+CMGR=99") == "\r\n+CMS ERROR: 321\r\n"  # TS 27.005 §3.2.5
    assert at(core, "AT+CMEE=2") == "\r\nOK\r\n"
    assert at(core, "AT+FOO") == "\r\n+CME ERROR: operation not supported\r\n"
    assert at(core, "AT+CMEE?") == "\r\n+CMEE: 2\r\n\r\nOK\r\n"
    assert at(core, "AT+CMEE=?") == "\r\n+CMEE: (0-2)\r\n\r\nOK\r\n"
    assert at(core, "AT+CMEE=7") == "\r\nERROR\r\n"


def test_sim_pin() -> None:
    core = quiet_core(pin="1234")
    at(core, "AT+CMEE=1")
    assert at(core, "AT+CPIN?") == "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n"
    assert at(core, "AT+CIMI") == "\r\n+CME ERROR: 11\r\n"
    assert at(core, "AT+CMGL=4") == "\r\n+CMS ERROR: 311\r\n"
    assert at(core, "AT+COPS?") == "\r\n+COPS: 0\r\n\r\nOK\r\n"
    assert at(core, 'AT+CPIN="0000"') == "\r\n+CME ERROR: 16\r\n"
    assert at(core, 'AT+CPIN="1234"') == "\r\nOK\r\n"
    assert at(core, "AT+CPIN?") == "\r\n+CPIN: READY\r\n\r\nOK\r\n"
    assert at(core, "AT+CIMI") == "\r\n401021234567890\r\n\r\nOK\r\n"


def test_signal_operator_and_serving_cell() -> None:
    core = quiet_core()
    core.set_signal(7)
    assert at(core, "AT+CSQ") == "\r\n+CSQ: 7,99\r\n\r\nOK\r\n"
    assert at(core, "AT+COPS?") == '\r\n+COPS: 0,0,"KZ KCELL",7\r\n\r\nOK\r\n'
    assert at(core, "AT+COPS=3,2") == "\r\nOK\r\n"
    assert at(core, "AT+COPS?") == '\r\n+COPS: 0,2,"40102",7\r\n\r\nOK\r\n'
    assert "+CPSI: LTE,Online,401-02,0x1A2B,50132," in at(core, "AT+CPSI?")
    assert '+QENG: "servingcell","NOCONN","LTE","FDD",401,02,0000C3D4' in at(
        core, 'AT+QENG="servingcell"'
    )
    assert at(core, "AT+CFUN?") == "\r\n+CFUN: 1\r\n\r\nOK\r\n"


def test_registration_read_and_urc() -> None:
    core = quiet_core()
    assert at(core, "AT+CREG?") == "\r\n+CREG: 0,1\r\n\r\nOK\r\n"
    at(core, "AT+CREG=2")
    at(core, "AT+CEREG=1")
    assert at(core, "AT+CREG?") == '\r\n+CREG: 2,1,"1A2B","0000C3D4"\r\n\r\nOK\r\n'
    core.set_registration(5, lac="0F0F", cell_id="00001234")
    assert core.data_to_send() == b'\r\n+CREG: 5,"0F0F","00001234"\r\n\r\n+CEREG: 5\r\n'
    core.set_registration(2)
    assert core.data_to_send() == b"\r\n+CREG: 2\r\n\r\n+CEREG: 2\r\n"
    assert at(core, "AT+CGREG?") == "\r\n+CGREG: 0,2\r\n\r\nOK\r\n"
    assert at(core, "AT+COPS?") == "\r\n+COPS: 0\r\n\r\nOK\r\n"


def test_charset_queries() -> None:
    core = quiet_core()
    assert at(core, "AT+CSCS?") == '\r\n+CSCS: "GSM"\r\n\r\nOK\r\n'
    assert at(core, "AT+CSCS=?") == '\r\n+CSCS: ("IRA","GSM","UCS2")\r\n\r\nOK\r\n'
    assert at(core, 'AT+CSCS="UCS2"') == "\r\nOK\r\n"
    assert at(core, "AT+CSCA?") == (
        '\r\n+CSCA: "002B00370037003000310030003000300030003000300030",145\r\n\r\nOK\r\n'
    )
    assert at(core, 'AT+CSCS="KOI8-R"') == "\r\nERROR\r\n"


# --------------------------------------------------------------------------------------------
# Core: SMS storage, sending, indications


def test_pdu_list_read_delete() -> None:
    core = quiet_core()
    assert core.receive_sms(CALLER, KAZAKH, when=WHEN) == [1]
    assert core.receive_sms("KCELL", RUSSIAN, when=WHEN) == [2]
    assert core.data_to_send() == b""  # +CNMI off at power-on: stored silently
    assert at(core, "AT+CPMS?") == '\r\n+CPMS: "SM",2,30,"SM",2,30,"SM",2,30\r\n\r\nOK\r\n'
    listing = at(core, "AT+CMGL=4")
    lines = listing.split("\r\n")
    assert lines[1].startswith("+CMGL: 1,0,,") and lines[3].startswith("+CMGL: 2,0,,")
    first, second = bytes.fromhex(lines[2]), bytes.fromhex(lines[4])
    assert int(lines[1].rsplit(",", 1)[1]) == tpdu_length(first)
    assert decode_deliver(first).text == KAZAKH
    assert decode_deliver(first).originator == Address("77011234567")
    assert decode_deliver(first).smsc == Address("77010000000")
    assert decode_deliver(first).timestamp == WHEN
    assert decode_deliver(second).originator == Address("KCELL", ton=5, npi=0)
    assert decode_deliver(second).text == RUSSIAN
    # Listed messages are read now (TS 27.005 §3.4.2)
    assert at(core, "AT+CMGL=0") == "\r\nOK\r\n"
    assert at(core, "AT+CMGR=2").startswith("\r\n+CMGR: 1,,")
    assert at(core, "AT+CMGD=1") == "\r\nOK\r\n"
    assert at(core, "AT+CMGR=1") == "\r\nOK\r\n"  # empty slot: no +CMGR
    assert at(core, "AT+CMGD=?") == "\r\n+CMGD: (2),(0-4)\r\n\r\nOK\r\n"
    assert at(core, "AT+CMGD=1,4") == "\r\nOK\r\n"
    assert at(core, "AT+CMGL=4") == "\r\nOK\r\n"


def test_cpms_selects_memories() -> None:
    core = quiet_core()
    assert at(core, "AT+CPMS=?") == ('\r\n+CPMS: ("SM","ME"),("SM","ME"),("SM","ME")\r\n\r\nOK\r\n')
    assert at(core, 'AT+CPMS="ME","ME","ME"') == "\r\n+CPMS: 0,100,0,100,0,100\r\n\r\nOK\r\n"
    core.receive_sms(CALLER, "hello", when=WHEN)
    assert at(core, 'AT+CPMS="SM"') == "\r\n+CPMS: 0,30,1,100,1,100\r\n\r\nOK\r\n"
    assert at(core, 'AT+CPMS="XX"') == "\r\nERROR\r\n"


def test_text_mode_list_and_read() -> None:
    core = quiet_core()
    core.receive_sms(CALLER, KAZAKH, when=WHEN)
    core.receive_sms("Kaspi", "Kod 4821 {OTP}", when=WHEN)
    at(core, "AT+CMGF=1")
    listing = at(core, 'AT+CMGL="ALL"')
    assert listing == (
        '\r\n+CMGL: 1,"REC UNREAD","+77011234567",,"24/11/23,10:15:30+20"\r\n'
        + KAZAKH.encode("utf-16-be").hex().upper()  # UCS2 data as hex (TS 27.005 §3.1 <data>)
        + '\r\n+CMGL: 2,"REC UNREAD","Kaspi",,"24/11/23,10:15:30+20"\r\n'
        + "Kod 4821 \x1b(OTP\x1b)"  # GSM 7-bit text in the "GSM" TE character set
        + "\r\n\r\nOK\r\n"
    )
    assert at(core, "AT+CMGR=2").startswith('\r\n+CMGR: "REC READ","Kaspi",,"24/11/23,')


def test_cmgs_pdu_mode() -> None:
    core = quiet_core()
    pdu = submit_parts(Address("77071234567"), "Сәлем", reference=0, concat_ref=0)[0]
    assert at(core, f"AT+CMGS={tpdu_length(pdu)}") == "\r\n> "
    core.receive(pdu.hex().upper().encode() + b"\x1a", 0.0)
    assert core.data_to_send() == b"\r\n+CMGS: 1\r\n\r\nOK\r\n"
    assert core.sent == [SmsSubmit(Address("77071234567"), "Сәлем", reference=1, dcs=8)]
    # a wrong <length> is an invalid PDU mode parameter (TS 27.005 §3.2.5, 304)
    at(core, "AT+CMEE=1")
    at(core, f"AT+CMGS={tpdu_length(pdu) + 1}")
    core.receive(pdu.hex().encode() + b"\x1a", 0.0)
    assert core.data_to_send() == b"\r\n+CMS ERROR: 304\r\n"
    # ESC cancels (TS 27.005 §3.5.1)
    at(core, "AT+CMGS=10")
    core.receive(b"0011\x1b", 0.0)
    assert core.data_to_send() == b"\r\nOK\r\n"
    assert len(core.sent) == 1


def test_cmgs_pdu_mode_echoes_the_pdu() -> None:
    core = ModemCore()
    pdu = submit_parts(Address("77071234567"), "test", reference=0, concat_ref=0)[0]
    assert at(core, f"AT+CMGS={tpdu_length(pdu)}").endswith("\r\n> ")
    core.receive(pdu.hex().encode() + b"\x1a", 0.0)
    assert core.data_to_send() == pdu.hex().encode() + b"\r\n+CMGS: 1\r\n\r\nOK\r\n"


def test_cmgs_text_mode() -> None:
    core = quiet_core()
    at(core, "AT+CMGF=1")
    assert at(core, 'AT+CMGS="+77071234567"') == "\r\n> "
    core.receive(b"Kod: 4821\rline 2\x1a", 0.0)
    assert core.data_to_send() == b"\r\n> \r\n+CMGS: 1\r\n\r\nOK\r\n"
    at(core, 'AT+CSCS="UCS2"')
    at(core, "AT+CSMP=17,167,0,8")
    number = "+77071234567".encode("utf-16-be").hex()
    assert at(core, f'AT+CMGS="{number}",145') == "\r\n> "
    core.receive(KAZAKH.encode("utf-16-be").hex().encode() + b"\x1a", 0.0)
    assert core.data_to_send() == b"\r\n+CMGS: 2\r\n\r\nOK\r\n"
    first, second = core.sent
    assert (first.destination, first.text, first.dcs) == (
        Address("77071234567"),
        "Kod: 4821\nline 2",
        0,
    )
    assert (second.destination, second.text, second.dcs) == (Address("77071234567"), KAZAKH, 8)


def test_cnmi_cmti_for_multipart() -> None:
    core = quiet_core()
    assert at(core, "AT+CNMI=2,1,0,0,0") == "\r\nOK\r\n"
    assert core.receive_sms(CALLER, LONG_KAZAKH, when=WHEN) == [1, 2, 3]
    assert core.data_to_send() == b"".join(b'\r\n+CMTI: "SM",%d\r\n' % i for i in (1, 2, 3))
    parts = []
    for index in (3, 1, 2):
        lines = at(core, f"AT+CMGR={index}").split("\r\n")
        parts.append(decode_deliver(bytes.fromhex(lines[2])))
    assert join_parts(parts) == LONG_KAZAKH
    assert {p.dcs for p in parts} == {8}


def test_cnmi_cmt_routes_without_storing() -> None:
    core = quiet_core()
    at(core, "AT+CNMI=2,2,0,0,0")
    assert core.receive_sms(CALLER, LONG_KAZAKH, when=WHEN) == []
    out = core.data_to_send().decode()
    found = re.findall(r"\r\n\+CMT: ,(\d+)\r\n([0-9A-F]+)\r\n", out)
    assert len(found) == 3
    assert all(int(length) == tpdu_length(bytes.fromhex(pdu)) for length, pdu in found)
    assert join_parts([decode_deliver(bytes.fromhex(pdu)) for _, pdu in found]) == LONG_KAZAKH
    assert at(core, "AT+CPMS?").startswith('\r\n+CPMS: "SM",0,30')
    at(core, "AT+CMGF=1")
    core.receive_sms("KCELL", "Balans 100 tg", when=WHEN)
    assert core.data_to_send() == (
        b'\r\n+CMT: "KCELL",,"24/11/23,10:15:30+20"\r\nBalans 100 tg\r\n'
    )


def test_storage_full() -> None:
    core = quiet_core()
    for _ in range(29):
        core.receive_sms(CALLER, "x", when=WHEN)
    with pytest.raises(StorageFullError, match="no room for 3 parts"):
        core.receive_sms(CALLER, LONG_KAZAKH, when=WHEN)
    assert core.receive_sms(CALLER, "last", when=WHEN) == [30]


# --------------------------------------------------------------------------------------------
# Core: calls, hang


def test_incoming_call_rings_then_no_carrier() -> None:
    core = quiet_core()
    at(core, "AT+CLIP=1")
    core.incoming_call(CALLER, rings=2, interval=1.0, now=10.0)
    ring = b'\r\nRING\r\n\r\n+CLIP: "+77011234567",145,,,,0\r\n'
    assert core.data_to_send() == ring
    assert core.next_deadline() == 11.0
    assert at(core, "AT+CLCC", now=10.5) == (
        '\r\n+CLCC: 1,1,4,0,0,"+77011234567",145\r\n\r\nOK\r\n'
    )
    core.handle_timer(11.0)
    assert core.data_to_send() == ring
    core.handle_timer(11.9)
    assert core.data_to_send() == b""
    core.handle_timer(12.0)
    assert core.data_to_send() == b"\r\nNO CARRIER\r\n"
    assert core.next_deadline() is None
    assert at(core, "AT+CLCC", now=13.0) == "\r\nOK\r\n"


def test_crc_withheld_number_and_hangup() -> None:
    core = quiet_core()
    at(core, "AT+CRC=1;+CLIP=1")
    core.incoming_call("", ton=129, validity=1, rings=5, interval=0.5, now=0.0)
    assert core.data_to_send() == b'\r\n+CRING: VOICE\r\n\r\n+CLIP: "",129,,,,1\r\n'
    assert at(core, "ATH", now=0.2) == "\r\nOK\r\n"
    core.handle_timer(5.0)
    assert core.data_to_send() == b""  # nothing more after ATH


def test_answer_then_caller_hangs_up() -> None:
    core = quiet_core()
    core.incoming_call(CALLER, rings=3, interval=1.0, now=0.0)
    assert core.data_to_send() == b"\r\nRING\r\n"  # no +CLIP before AT+CLIP=1
    assert at(core, "ATA", now=0.5) == "\r\nOK\r\n"
    assert at(core, "AT+CLCC", now=0.6).startswith("\r\n+CLCC: 1,1,0,0,0,")
    core.handle_timer(1.4)
    assert core.data_to_send() == b""
    core.handle_timer(1.5)
    assert core.data_to_send() == b"\r\nNO CARRIER\r\n"
    assert at(core, "ATA", now=2.0) == "\r\nNO CARRIER\r\n"
    assert at(core, "AT+CHUP", now=2.0) == "\r\nOK\r\n"


def test_hang_for_a_while() -> None:
    core = quiet_core()
    core.hang(2.0, now=0.0)
    assert at(core, "AT", now=1.0) == ""
    core.receive_sms(CALLER, "lost announcement", when=WHEN)
    assert core.next_deadline() == 2.0
    assert at(core, "AT", now=2.5) == "\r\nOK\r\n"
    core.hang(None, now=3.0)
    assert at(core, "AT", now=100.0) == ""
    core.unhang()
    assert at(core, "AT", now=100.0) == "\r\nOK\r\n"


# --------------------------------------------------------------------------------------------
# The pump, with pyserial


class Client:
    """A blocking pyserial client, run in a thread."""

    def __init__(self, url: str) -> None:
        self.port = serial.serial_for_url(url, timeout=0.05)
        self.buffer = b""

    def read_until(self, pattern: str, timeout: float = 3.0) -> str:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern.encode("latin-1"), re.S)
        while (found := regex.search(self.buffer)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {pattern!r} in {self.buffer!r}")
            self.buffer += self.read_some()
        text = self.buffer[: found.end()].decode("latin-1")
        self.buffer = self.buffer[found.end() :]
        return text

    def command(self, line: str, timeout: float = 3.0) -> str:
        self.port.write(line.encode("latin-1") + b"\r")
        final = r"\r\n(OK|ERROR|\+CM[ES] ERROR: [^\r]*|NO CARRIER)\r\n|\r\n> "
        return self.read_until(final, timeout)

    def silent_for(self, seconds: float) -> bytes:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.buffer += self.read_some()
        return self.buffer

    def read_some(self) -> bytes:
        # read(1) waits up to the timeout; then whatever else is there. (After a pty hang-up
        # pyserial's read raises SerialException, but in_waiting a bare OSError: EIO.)
        chunk: bytes = self.port.read(1)
        return chunk + self.port.read(self.port.in_waiting) if chunk else chunk

    def close(self) -> None:
        self.port.close()


def link_target(path: str) -> str | None:
    """Where the symlink points, None when it is gone."""
    try:
        return os.readlink(path)
    except FileNotFoundError:
        return None


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    opened: list[Client] = []
    yield opened
    for client in opened:
        client.close()


async def connect(url: str, clients: list[Client]) -> Client:
    client = await asyncio.to_thread(Client, url)
    clients.append(client)
    return client


async def test_pty_echo_identity_and_symlink(tmp_path: Path, clients: list[Client]) -> None:
    async with ModemSimulator(name="kcell-1", link_dir=tmp_path) as sim:
        assert sim.url == str(tmp_path / "ttyPROBE-kcell-1")
        assert (link_target(sim.url) or "").startswith("/dev/pts/")
        client = await connect(sim.url, clients)
        assert await asyncio.to_thread(client.command, "AT") == "AT\r\r\nOK\r\n"
        await asyncio.to_thread(client.command, "ATE0")
        reply = await asyncio.to_thread(client.command, "AT+CGSN;+CIMI")
        assert reply == "\r\n867584030123456\r\n\r\n401021234567890\r\n\r\nOK\r\n"
        assert sim.commands == ["AT", "ATE0", "AT+CGSN;+CIMI"]
    assert not (tmp_path / "ttyPROBE-kcell-1").exists()


async def test_pty_sms_cmti_read_delete(clients: list[Client]) -> None:
    async with ModemSimulator() as sim:
        client = await connect(sim.url, clients)
        await asyncio.to_thread(client.command, "ATE0;+CMEE=1;+CMGF=0;+CNMI=2,1,0,0,0")
        indices = sim.receive_sms(CALLER, LONG_KAZAKH, when=WHEN)
        urcs = await asyncio.to_thread(client.read_until, r'\+CMTI: "SM",3\r\n')
        assert re.findall(r'\+CMTI: "SM",(\d)', urcs) == ["1", "2", "3"] == list(map(str, indices))
        listing = await asyncio.to_thread(client.command, "AT+CMGL=4")
        pdus = re.findall(r"\+CMGL: \d,0,,\d+\r\n([0-9A-F]+)", listing)
        assert join_parts([decode_deliver(bytes.fromhex(p)) for p in pdus]) == LONG_KAZAKH
        assert await asyncio.to_thread(client.command, "AT+CMGD=1,4") == "\r\nOK\r\n"
        assert await asyncio.to_thread(client.command, "AT+CMGR=1") == "\r\nOK\r\n"


async def test_pty_sms_cmt_multipart_ucs2(clients: list[Client]) -> None:
    async with ModemSimulator() as sim:
        client = await connect(sim.url, clients)
        await asyncio.to_thread(client.command, "ATE0;+CNMI=2,2,0,0,0")
        assert sim.receive_sms(CALLER, LONG_KAZAKH, when=WHEN) == []
        text = await asyncio.to_thread(client.read_until, r"(\+CMT: ,\d+\r\n[0-9A-F]+\r\n.*){3}")
        pdus = re.findall(r"\+CMT: ,\d+\r\n([0-9A-F]+)\r\n", text)
        parts = [decode_deliver(bytes.fromhex(p)) for p in pdus]
        assert join_parts(parts) == LONG_KAZAKH
        assert {p.originator for p in parts} == {Address("77011234567")}


async def test_pty_cmgs_pdu_and_text(clients: list[Client]) -> None:
    async with ModemSimulator() as sim:
        client = await connect(sim.url, clients)
        await asyncio.to_thread(client.command, "ATE0")
        pdus = submit_parts(Address("77071234567"), LONG_KAZAKH, reference=0, concat_ref=9)
        for pdu in pdus:
            assert await asyncio.to_thread(client.command, f"AT+CMGS={tpdu_length(pdu)}") == (
                "\r\n> "
            )
            client.port.write(pdu.hex().upper().encode() + b"\x1a")
            await asyncio.to_thread(client.read_until, r"\+CMGS: \d+\r\n\r\nOK\r\n")
        assert "".join(m.text for m in sim.sent) == LONG_KAZAKH
        assert [m.reference for m in sim.sent] == [1, 2, 3]
        await asyncio.to_thread(client.command, "AT+CMGF=1")
        assert await asyncio.to_thread(client.command, 'AT+CMGS="87071234567",129') == "\r\n> "
        client.port.write(b"Test 4821\x1a")
        assert await asyncio.to_thread(client.read_until, r"OK\r\n") == (
            "\r\n+CMGS: 4\r\n\r\nOK\r\n"
        )
        assert sim.sent[-1].destination == Address("87071234567", ton=0, npi=1)
        assert sim.sent[-1].text == "Test 4821"


async def test_pty_incoming_call_with_clip(clients: list[Client]) -> None:
    async with ModemSimulator() as sim:
        client = await connect(sim.url, clients)
        await asyncio.to_thread(client.command, "ATE0;+CLIP=1")
        started = time.monotonic()
        sim.incoming_call(CALLER, rings=2, interval=0.2)
        text = await asyncio.to_thread(client.read_until, r"NO CARRIER\r\n")
        assert time.monotonic() - started >= 0.35
        assert text.count('RING\r\n\r\n+CLIP: "+77011234567",145,,,,0\r\n') == 2
        sim.incoming_call("+74951234567", rings=10, interval=0.3)
        await asyncio.to_thread(client.read_until, r'\+CLIP: "\+74951234567",145,,,,0\r\n')
        assert await asyncio.to_thread(client.command, "ATA") == "\r\nOK\r\n"
        assert await asyncio.to_thread(client.read_until, r"\r\n[A-Z ]+\r\n") == (
            "\r\nNO CARRIER\r\n"  # no more rings once answered; the caller hangs up
        )


async def test_pty_registration_urc(clients: list[Client]) -> None:
    async with ModemSimulator() as sim:
        client = await connect(sim.url, clients)
        await asyncio.to_thread(client.command, "ATE0;+CREG=2")
        sim.set_registration(5, lac="00AA", cell_id="0000BEEF")
        assert await asyncio.to_thread(client.read_until, r"\+CREG: [^\r]*\r\n") == (
            '\r\n+CREG: 5,"00AA","0000BEEF"\r\n'
        )
        sim.set_signal(31)
        assert "+CSQ: 31,99" in await asyncio.to_thread(client.command, "AT+CSQ")


async def test_pty_hang_and_unhang(clients: list[Client]) -> None:
    async with ModemSimulator() as sim:
        client = await connect(sim.url, clients)
        await asyncio.to_thread(client.command, "ATE0")
        sim.hang()
        client.port.write(b"AT\r")
        assert await asyncio.to_thread(client.silent_for, 0.3) == b""
        sim.unhang()
        assert await asyncio.to_thread(client.command, "AT") == "\r\nOK\r\n"
        sim.hang(0.2)
        client.port.write(b"AT+CGMI\r")
        await asyncio.sleep(0.3)
        assert await asyncio.to_thread(client.command, "AT") == "\r\nOK\r\n"  # the first is lost


async def test_pty_garbage(clients: list[Client]) -> None:
    async with ModemSimulator() as sim:
        client = await connect(sim.url, clients)
        sim.garbage(b"\xff\x00\x13noise")
        assert await asyncio.to_thread(client.read_until, "noise") == "\xff\x00\x13noise"


async def test_pty_unplug_and_replug_same_path(tmp_path: Path, clients: list[Client]) -> None:
    async with ModemSimulator(link_dir=tmp_path) as sim:
        url = sim.url
        assert link_target(url) is not None
        client = await connect(url, clients)
        await asyncio.to_thread(client.command, "ATE0;+CNMI=2,1")
        sim.receive_sms(CALLER, RUSSIAN, when=WHEN)
        await asyncio.to_thread(client.read_until, r"\+CMTI")
        await sim.unplug()
        assert link_target(url) is None
        with pytest.raises(serial.SerialException):
            await asyncio.to_thread(client.read_until, "never")
        await sim.replug()
        assert sim.url == url
        assert link_target(url) is not None  # a new pty (the kernel may reuse the number)
        again = await connect(url, clients)
        # power-on state: echo is back on, +CNMI off; the SIM's messages are kept
        assert await asyncio.to_thread(again.command, "AT+CNMI?") == (
            "AT+CNMI?\r\r\n+CNMI: 0,0,0,0,0\r\n\r\nOK\r\n"
        )
        listing = await asyncio.to_thread(again.command, "AT+CMGL=4")
        pdu = re.findall(r"\+CMGL: 1,0,,\d+\r\n([0-9A-F]+)", listing)[0]
        assert decode_deliver(bytes.fromhex(pdu)).text == RUSSIAN


async def test_tcp_mode(clients: list[Client]) -> None:
    async with ModemSimulator(tcp=True) as sim:
        assert sim.url.startswith("socket://127.0.0.1:")
        client = await connect(sim.url, clients)
        assert await asyncio.to_thread(client.command, "AT+CGMM") == (
            "AT+CGMM\r\r\nSIMCOM_SIM7600E-H\r\n\r\nOK\r\n"
        )
        url = sim.url
        await sim.unplug()
        with pytest.raises(serial.SerialException):
            await asyncio.to_thread(client.read_until, "never", 2.0)
        await sim.replug()
        assert sim.url == url
        again = await connect(url, clients)
        assert await asyncio.to_thread(again.command, "ATE0") == "ATE0\r\r\nOK\r\n"


# --------------------------------------------------------------------------------------------
# The CLI script


def test_script_events() -> None:
    events = script_from_toml(
        {
            "event": [
                {"at": 2.0, "kind": "call", "number": CALLER, "rings": 2},
                {"at": 1, "kind": "sms", "originator": "KCELL", "text": KAZAKH},
                {"at": 3, "kind": "unplug"},
            ]
        }
    )
    assert [(e.at, e.kind) for e in events] == [(1.0, "sms"), (2.0, "call"), (3.0, "unplug")]
    with pytest.raises(ConfigError, match=r"event\[0\]\.kind: 'boom'"):
        script_from_toml({"event": [{"at": 1, "kind": "boom"}]})
    with pytest.raises(ConfigError, match=r"event\[0\]\.colour: unknown key"):
        script_from_toml({"event": [{"at": 1, "kind": "signal", "rssi": 3, "colour": 1}]})
    with pytest.raises(ConfigError, match=r"event\[0\]\.number: required"):
        script_from_toml({"event": [{"at": 1, "kind": "call"}]})


async def test_cli_runs_a_scripted_modem(tmp_path: Path, clients: list[Client]) -> None:
    script = tmp_path / "modem.toml"
    script.write_text(
        '[[event]]\nat = 0\nkind = "sms"\noriginator = "KCELL"\ntext = "Ваш код: 4821"\n'
        '[[event]]\nat = 0.1\nkind = "registration"\nstat = 5\n',
        encoding="utf-8",
    )
    link = tmp_path / "dev" / "ttyLAB"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "modem", "--link", str(link), "--imsi",
        "401029990000001", "--script", str(script),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()
        assert url == str(link)
        client = await connect(url, clients)
        assert "401029990000001" in await asyncio.to_thread(client.command, "AT+CIMI")
        for _ in range(100):  # until the script's second event has played
            if "+CREG: 0,5" in await asyncio.to_thread(client.command, "AT+CREG?"):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the scripted registration change never came")
        listing = await asyncio.to_thread(client.command, "AT+CMGL=4")
        pdu = re.findall(r"\+CMGL: 1,0,,\d+\r\n([0-9A-F]+)", listing)[0]
        assert decode_deliver(bytes.fromhex(pdu)).text == "Ваш код: 4821"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    assert link_target(str(link)) is None
