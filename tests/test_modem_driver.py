"""gsm_probe/modem.py over real ptys (os.openpty, raw mode) and TCP (socket://).

The modem side is a small scripted responder written here: it reads command lines, answers
them from a table in the SIMCom style (echo on until ATE0, verbose results), keeps an SMS
storage, takes a PDU after the "> " prompt, and lets a test inject URCs, garbage, hangs and an
unplug (the pty master closed, its symlink removed) and a replug at the same path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

import pytest

from gsm_probe.at import AtParseError, CmeError, CmsError, CommandError
from gsm_probe.errors import ModemGone, ModemHung, ModemTimeout, SimLocked
from gsm_probe.events import (
    IncomingCall,
    ProbeEvent,
    ProbeHealth,
    RegistrationChanged,
    SmsReceived,
)
from gsm_probe.model import ModemConfig, ServingCell
from gsm_probe.modem import Modem
from gsm_probe.supervisor import ModemSupervisor
from gsm_probe.ts23040 import (
    Address,
    decode_submit,
    deliver_parts,
    tpdu_length,
)
from simulators.modem import ModemProfile, ModemSimulator

E = TypeVar("E")

KZ_TEXT = (
    "Сәлеметсіз бе! Сіздің тексеру кодыңыз: 4821. Бұл хабарламаны ешкімге көрсетпеңіз, "
    "банк қызметкерлері кодты ешқашан сұрамайды. Қазақстан Республикасы."
)
RU_TEXT = (
    "Здравствуйте! Это тестовое сообщение зонда для проверки маршрута SMS; оно длиннее "
    "семидесяти символов, поэтому уходит несколькими частями."
)
CALLER = "+77011234567"
CLIP = f'+CLIP: "{CALLER}",145,"",,"",0'
SCTS = datetime(2025, 2, 11, 19, 35, tzinfo=timezone(timedelta(hours=5)))

INFO: dict[str, list[str]] = {
    "AT+CPIN?": ["+CPIN: READY"],
    "AT+CGMI": ["SIMCOM_Ltd"],
    "AT+CGMM": ["SIMCOM_SIM7600E-H"],
    "AT+CGMR": ["+CGMR: LE11B08SIM7600M22"],
    "AT+CGSN": ["866782041234567"],
    "AT+CIMI": ["401771234567890"],
    "AT+CNUM": ['+CNUM: "Менің нөмірім","+77071234567",145'],
    "AT+CPMS?": ['+CPMS: "SM",0,30,"SM",0,30,"SM",0,30'],
    "AT+CREG?": ['+CREG: 2,1,"1A2B","C3D4"'],
    "AT+CSQ": ["+CSQ: 20,99"],
    "AT+COPS?": ['+COPS: 0,0,"Beeline KZ",7'],
    "AT+CPSI?": ["+CPSI: LTE,Online,401-01,0x1A2B,27447297,257,EUTRAN-BAND3,1300,5,5,-94"],
}
OK_ONLY = {"AT", "ATH", "AT+CMEE=2", "AT+CLIP=1", "AT+CRC=1", "AT+CMGF=0", "AT+CREG=2"}


def reply(*lines: str, final: str = "OK") -> str:
    return "".join(f"\r\n{line}\r\n" for line in lines) + f"\r\n{final}\r\n"


Answer = str | Callable[[str], str | None] | None


class Responder:
    """The modem end of the wire (see the module docstring)."""

    def __init__(self) -> None:
        self.write: Callable[[bytes], None] = lambda data: None
        self.echo = True
        self.commands: list[str] = []
        self.answers: dict[str, Answer] = {}
        self.storage: dict[int, bytes] = {}
        self.sent: list[bytes] = []
        self.ignore = 0  # the next commands get no answer (a hang)
        self.hung = False
        self.cms_error_on_send = False
        self._buf = bytearray()
        self._pdu_entry = False

    def reset(self) -> None:
        self.echo = True
        self._buf.clear()
        self._pdu_entry = False

    def urc(self, *lines: str) -> None:
        self.write("".join(f"\r\n{line}\r\n" for line in lines).encode())

    def feed(self, data: bytes) -> None:
        for byte in data:
            if self._pdu_entry:
                self._pdu_byte(byte)
            elif byte == 0x1B:
                self._buf.clear()  # ESC
            elif byte == 0x0D:
                line = self._buf.decode("latin-1")
                self._buf.clear()
                if line.strip():
                    self._command(line.strip())
            elif byte != 0x0A:
                self._buf.append(byte)

    def _pdu_byte(self, byte: int) -> None:
        if byte == 0x1B:
            self._pdu_entry = False
            self._buf.clear()
        elif byte == 0x1A:
            self._pdu_entry = False
            pdu = bytes.fromhex(self._buf.decode())
            self._buf.clear()
            self.sent.append(pdu)
            if self.cms_error_on_send:
                self.write(b"\r\n+CMS ERROR: 500\r\n")
            else:
                self.write(reply(f"+CMGS: {len(self.sent)}").encode())
        else:
            self._buf.append(byte)

    def _command(self, line: str) -> None:
        if self.echo:
            self.write(line.encode() + b"\r")
        self.commands.append(line)
        if self.hung:
            return
        if self.ignore:
            self.ignore -= 1
            return
        answer = self.answer(line)
        if answer:
            self.write(answer.encode("utf-8"))

    def answer(self, line: str) -> str | None:
        up = line.upper()
        if up in self.answers:
            scripted = self.answers[up]
            return scripted(line) if callable(scripted) else scripted
        if up in ("ATE0", "ATE1"):
            self.echo = up == "ATE1"
            return reply()
        if up.startswith("AT+CMGS="):
            self._pdu_entry = True
            return "\r\n> "
        if up.startswith(("AT+CMGL=", "AT+CMGR=", "AT+CMGD=")):
            return self._storage(up)
        if up in INFO:
            return reply(*INFO[up])
        if up in OK_ONLY or up.startswith(("AT+CNMI=", "AT+CPMS=")):
            return reply()
        return reply(final="ERROR")

    def _storage(self, up: str) -> str:
        arg = int(up.split("=")[1])
        if up.startswith("AT+CMGL="):
            lines: list[str] = []
            for index, pdu in sorted(self.storage.items()):
                lines += [f"+CMGL: {index},0,,{tpdu_length(pdu)}", pdu.hex().upper()]
            return reply(*lines)
        if up.startswith("AT+CMGR="):
            pdu = self.storage.get(arg)
            if pdu is None:
                return reply()
            return reply(f"+CMGR: 0,,{tpdu_length(pdu)}", pdu.hex().upper())
        self.storage.pop(arg, None)
        return reply()

    def deliver(self, pdus: list[bytes], *, stored: bool = True) -> None:
        """New SMS: stored + "+CMTI" (CNMI mt=1), or "+CMT" with the PDU (mt=2)."""
        for pdu in pdus:
            if stored:
                index = max(self.storage, default=-1) + 1
                self.storage[index] = pdu
                self.urc(f'+CMTI: "SM",{index}')
            else:
                self.urc(f"+CMT: ,{tpdu_length(pdu)}", pdu.hex().upper())


class PtyModem:
    """A responder on the master side of a pty; `url` is a symlink to the slave."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.responder = Responder()
        self.responder.write = self._write
        self.master: int | None = None
        self.slave: int | None = None
        self.replug()

    @property
    def url(self) -> str:
        return str(self.link)

    def replug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        tmp = self.link.with_suffix(".new")
        os.symlink(os.ttyname(self.slave), tmp)
        os.replace(tmp, self.link)
        self.responder.reset()
        asyncio.get_running_loop().add_reader(self.master, self._read)

    def unplug(self) -> None:
        if self.master is None or self.slave is None:
            return
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        os.close(self.slave)  # the driver's reads now fail with EIO, as on a USB unplug
        self.master = self.slave = None
        self.link.unlink(missing_ok=True)

    def _read(self) -> None:
        assert self.master is not None
        try:
            data = os.read(self.master, 4096)
        except OSError:
            return
        self.responder.feed(data)

    def _write(self, data: bytes) -> None:
        if self.master is not None:
            os.write(self.master, data)


class TcpModem:
    """The same responder behind a TCP listener, for socket:// URLs."""

    def __init__(self) -> None:
        self.responder = Responder()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.responder.reset()
        self.responder.write = writer.write
        while data := await reader.read(4096):
            self.responder.feed(data)
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[PtyModem]:
    modem = PtyModem(tmp_path / "ttyProbe1")
    yield modem
    modem.unplug()


def config(url: str, **changes: object) -> ModemConfig:
    cfg = ModemConfig(
        name="p1",
        url=url,
        command_timeout=0.5,
        sms_timeout=2.0,
        poll_interval=0.2,
        ring_timeout=0.4,
        concat_timeout=0.4,
        retry_delay=0.05,
        cli_timeout=0.2,
    )
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


async def next_event(modem: Modem, kind: type[E], timeout: float = 3.0) -> E:
    """The next event of `kind`, others skipped."""

    async def find() -> E:
        while True:
            event = await modem.events.get()
            if isinstance(event, kind):
                return event

    return await asyncio.wait_for(find(), timeout)


def drain(modem: Modem, kind: type[E]) -> list[E]:
    out: list[E] = []
    while not modem.events.empty():
        event = modem.events.get_nowait()
        if isinstance(event, kind):
            out.append(event)
    return out


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("condition not met")


def kz_parts(ref: int = 7) -> list[bytes]:
    return deliver_parts(
        Address(CALLER[1:]), KZ_TEXT, timestamp=SCTS, concat_ref=ref, smsc=Address("77010000001")
    )


# --------------------------------------------------------------------------------------------
# Init and identity


async def test_init_sequence_and_identity(fake: PtyModem) -> None:
    async with Modem(config(fake.url)) as modem:
        ident = modem.identity
        assert (ident.manufacturer, ident.model) == ("SIMCOM_Ltd", "SIMCOM_SIM7600E-H")
        assert ident.revision == "LE11B08SIM7600M22"
        assert (ident.imei, ident.imsi, ident.msisdn) == (
            "866782041234567",
            "401771234567890",
            "+77071234567",
        )
        assert modem.vendor == "simcom"
        reg = await next_event(modem, RegistrationChanged)
        assert (reg.probe, reg.stat, reg.lac, reg.cell_id) == ("p1", 1, "1A2B", "C3D4")
    cmds = fake.responder.commands
    order = [
        "ATE0",
        "AT+CMEE=2",
        "AT+CPIN?",
        "AT+CLIP=1",
        "AT+CRC=1",
        "AT+CMGF=0",
        "AT+CNMI=2,1,0,1,0",
        "AT+CREG=2",
        "AT+CMGL=4",
    ]
    assert [c for c in cmds if c in order] == order
    assert cmds[0] == "AT"


async def test_sim_pin_entered(fake: PtyModem) -> None:
    state = {"pin": False}

    def cpin(line: str) -> str:
        return reply("+CPIN: READY" if state["pin"] else "+CPIN: SIM PIN")

    def enter(line: str) -> str:
        state["pin"] = True
        return reply()

    fake.responder.answers["AT+CPIN?"] = cpin
    fake.responder.answers['AT+CPIN="4321"'] = enter
    async with Modem(config(fake.url, pin="4321")) as modem:
        assert modem.identity.imei
    fake.responder.answers["AT+CPIN?"] = reply("+CPIN: SIM PUK")
    with pytest.raises(SimLocked):
        async with Modem(config(fake.url, pin="4321")):
            pass


async def test_sim_not_inserted_is_a_typed_error(fake: PtyModem) -> None:
    fake.responder.answers["AT+CPIN?"] = reply(final="+CME ERROR: SIM not inserted")
    with pytest.raises(CmeError) as caught:
        async with Modem(config(fake.url)):
            pass
    assert caught.value.code == 10
    # the port was closed: it opens again (exclusive lock released)
    fake.responder.answers.pop("AT+CPIN?")
    async with Modem(config(fake.url)) as modem:
        assert modem.identity.imsi == "401771234567890"


async def test_no_answer_at_all_is_hung(fake: PtyModem) -> None:
    fake.responder.hung = True
    with pytest.raises(ModemHung):
        async with Modem(config(fake.url, command_timeout=0.1, init_attempts=2)):
            pass


async def test_prompt_left_open_by_a_previous_run(fake: PtyModem) -> None:
    fake.responder._pdu_entry = True  # "> " waiting for a PDU: AT is taken as PDU text
    async with Modem(config(fake.url, command_timeout=0.2)) as modem:
        assert modem.identity.imei == "866782041234567"  # ESC cancelled it, then AT worked
    assert fake.responder.sent == []  # and no half PDU went out as an SMS


async def test_open_missing_port_is_modem_gone(tmp_path: Path) -> None:
    with pytest.raises(ModemGone):
        async with Modem(config(str(tmp_path / "ttyNothing"))):
            pass


async def test_stored_sms_read_and_deleted_at_start(fake: PtyModem) -> None:
    single = deliver_parts(
        Address("KaspiBank", ton=5, npi=0), "Код: 1234", timestamp=SCTS, concat_ref=0
    )[0]
    parts = kz_parts()
    fake.responder.storage = {3: single, 5: parts[1], 8: parts[0], 9: parts[2]}
    async with Modem(config(fake.url)) as modem:
        first = await next_event(modem, SmsReceived)
        second = await next_event(modem, SmsReceived)
        await until(lambda: not fake.responder.storage)
    assert (first.originator, first.originator_ton, first.text) == ("KaspiBank", 5, "Код: 1234")
    assert (second.originator, second.originator_ton) == (CALLER, 1)
    assert (second.text, second.parts, second.smsc) == (KZ_TEXT, 3, "+77010000001")
    assert second.sent_at == SCTS.timestamp()
    assert {c for c in fake.responder.commands if c.startswith("AT+CMGD")} == {
        "AT+CMGD=3",
        "AT+CMGD=5",
        "AT+CMGD=8",
        "AT+CMGD=9",
    }


# --------------------------------------------------------------------------------------------
# Calls


async def ring(
    fake: PtyModem, rings: int, clip: str | None = CLIP, gap: float = 0.05, line: str = "RING"
) -> None:
    """A call alerting `rings` times, `gap` apart; like a modem, it stops once hung up."""
    hangups = sum(c in ("ATH", "AT+CHUP") for c in fake.responder.commands)
    for _ in range(rings):
        if sum(c in ("ATH", "AT+CHUP") for c in fake.responder.commands) > hangups:
            return
        fake.responder.urc(line, *([clip] if clip else []))
        await asyncio.sleep(gap)


async def test_one_incoming_call_per_call_and_hangup(fake: PtyModem) -> None:
    async with Modem(config(fake.url)) as modem:
        await ring(fake, 3)
        call = await next_event(modem, IncomingCall)
        assert (call.probe, call.number, call.ton, call.validity) == ("p1", CALLER, 145, 0)
        await until(lambda: "ATH" in fake.responder.commands)
        await asyncio.sleep(0.5)  # RINGs stopped for longer than ring_timeout: the call ended
        assert drain(modem, IncomingCall) == []
        await ring(fake, 2, '+CLIP: "87011234567",129,"",,"",0', line="+CRING: VOICE")
        second = await next_event(modem, IncomingCall)
        assert (second.number, second.ton) == ("87011234567", 129)
        assert fake.responder.commands.count("ATH") == 2


async def test_a_call_we_hung_up_is_over_at_once(fake: PtyModem) -> None:
    """Test calls come back to back: after our ATH the next RING is a new call, even within
    ring_timeout (the regression: it was taken for the old call and its CLI never read)."""
    async with Modem(config(fake.url, ring_timeout=30.0)) as modem:
        await ring(fake, 1)
        first = await next_event(modem, IncomingCall)
        await until(lambda: "ATH" in fake.responder.commands)
        await asyncio.sleep(0.05)
        await ring(fake, 1, '+CLIP: "+77471234504",145,"",,"",0')
        second = await next_event(modem, IncomingCall)
        assert (first.number, second.number) == (CALLER, "+77471234504")


async def test_call_without_cli_and_no_carrier(fake: PtyModem) -> None:
    async with Modem(config(fake.url, hangup_after_cli=False, ring_timeout=5.0)) as modem:
        await ring(fake, 2, clip=None)
        call = await next_event(modem, IncomingCall)
        assert (call.number, call.validity) == ("", 2)
        fake.responder.urc("NO CARRIER")  # the caller gave up: the call ended
        await asyncio.sleep(0.05)
        fake.responder.urc("RING", '+CLIP: "",128,,,,1')  # a new call, CLI withheld
        withheld = await next_event(modem, IncomingCall)
        assert (withheld.number, withheld.ton, withheld.validity) == ("", 128, 1)
        assert "ATH" not in fake.responder.commands


async def test_urcs_between_a_command_and_its_ok(fake: PtyModem) -> None:
    fake.responder.answers["AT+CSQ"] = (
        f'\r\nRING\r\n\r\n{CLIP}\r\n\r\n+CSQ: 25,99\r\n\r\n+CMTI: "SM",4\r\n\r\nOK\r\n'
    )
    async with Modem(config(fake.url)) as modem:
        fake.responder.storage[4] = deliver_parts(
            Address(CALLER[1:]), "Тест", timestamp=SCTS, concat_ref=0
        )[0]
        assert await modem.signal_dbm() == -63
        call = await next_event(modem, IncomingCall)
        sms = await next_event(modem, SmsReceived)
        assert call.number == CALLER and sms.text == "Тест"


# --------------------------------------------------------------------------------------------
# SMS


async def test_multipart_ucs2_sms_via_cmti(fake: PtyModem) -> None:
    async with Modem(config(fake.url, concat_timeout=5.0)) as modem:
        fake.responder.deliver(kz_parts())
        sms = await next_event(modem, SmsReceived)
        assert (sms.originator, sms.text, sms.parts) == (CALLER, KZ_TEXT, 3)
        assert sms.complete and sms.total == 3
        await until(lambda: not fake.responder.storage)


async def test_multipart_ucs2_sms_via_cmt(fake: PtyModem) -> None:
    async with Modem(config(fake.url, cnmi="2,2,0,1,0", concat_timeout=5.0)) as modem:
        parts = kz_parts(ref=200)
        fake.responder.deliver([parts[2], parts[0], parts[1]], stored=False)
        sms = await next_event(modem, SmsReceived)
        assert (sms.text, sms.parts) == (KZ_TEXT, 3)
    assert "AT+CNMI=2,2,0,1,0" in fake.responder.commands


async def test_incomplete_sms_handed_on_after_timeout(fake: PtyModem) -> None:
    async with Modem(config(fake.url, concat_timeout=0.3)) as modem:
        parts = kz_parts()
        fake.responder.deliver([parts[0], parts[2]])
        sms = await next_event(modem, SmsReceived)
        assert sms.parts == 2 and sms.text.startswith("Сәлеметсіз бе!")
        assert sms.total == 3 and not sms.complete  # 2 of 3: marked, not mistaken for whole
        await until(lambda: not fake.responder.storage)


async def test_cmt_parts_handed_on_at_close(fake: PtyModem) -> None:
    modem = Modem(config(fake.url, concat_timeout=60.0))
    async with modem:
        fake.responder.deliver([kz_parts()[0]], stored=False)
        await asyncio.sleep(0.2)
    assert drain(modem, SmsReceived)[0].parts == 1


async def test_send_sms_multipart(fake: PtyModem) -> None:
    async with Modem(config(fake.url)) as modem:
        refs = await modem.send_sms("+77021234567", RU_TEXT)
    assert refs == [1, 2, 3]
    sent = [decode_submit(pdu) for pdu in fake.responder.sent]
    assert "".join(s.text for s in sent) == RU_TEXT
    assert {str(s.destination) for s in sent} == {"+77021234567"}
    lengths = [c for c in fake.responder.commands if c.startswith("AT+CMGS=")]
    assert lengths == [f"AT+CMGS={tpdu_length(pdu)}" for pdu in fake.responder.sent]


async def test_send_sms_cms_error_typed(fake: PtyModem) -> None:
    fake.responder.cms_error_on_send = True
    async with Modem(config(fake.url)) as modem:
        with pytest.raises(CmsError) as caught:
            await modem.send_sms("+77021234567", "Сәлем")
        assert caught.value.code == 500
        assert await modem.signal_dbm() == -73  # still usable


async def test_read_list_delete(fake: PtyModem) -> None:
    pdu = deliver_parts(Address(CALLER[1:]), "Сәлем", timestamp=SCTS, concat_ref=0)[0]
    async with Modem(config(fake.url)) as modem:
        fake.responder.storage = {1: pdu, 2: b"\x00\x04"}  # 2: not a valid TPDU
        listed = await modem.list_sms()
        assert [s.index for s in listed] == [1, 2]
        assert listed[0].message is not None and listed[1].message is None and listed[1].error
        stored = await modem.read_sms(1)
        assert stored is not None and stored.pdu == pdu
        await modem.delete_sms(1)
        assert await modem.read_sms(1) is None


# --------------------------------------------------------------------------------------------
# Errors, garbage, hangs


async def test_typed_errors_and_session_stays_usable(fake: PtyModem) -> None:
    r = fake.responder
    r.answers["AT+CPBR=1"] = reply(final="+CME ERROR: SIM not inserted")
    r.answers["AT+CMGR=99"] = reply(final="+CMS ERROR: 321")
    async with Modem(config(fake.url)) as modem:
        with pytest.raises(CmeError) as cme:
            await modem.command("AT+CPBR=1")
        assert (cme.value.code, cme.value.text) == (10, "SIM not inserted")
        with pytest.raises(CmsError) as cms:
            await modem.command("AT+CMGR=99")
        assert cms.value.code == 321
        with pytest.raises(CommandError):
            await modem.command("AT+NOSUCH")
        r.answers["AT+CSQ"] = reply("+CSQ: плохо")  # a broken answer
        with pytest.raises(AtParseError):
            await modem.signal_dbm()
        r.answers.pop("AT+CSQ")
        assert await modem.signal_dbm() == -73


async def test_garbage_mid_response(fake: PtyModem) -> None:
    fake.responder.answers["AT+COPS?"] = (
        '\r\n\xff\x00\x13junk\r\n+COPS: 0,0,"Kcell",7\r\n\x01\x02\x03\r\n\r\nOK\r\n'
    )
    async with Modem(config(fake.url)) as modem:
        fake.responder.write(b"\x00\xfe\xfe\x1b[noise")  # no line end: joins the next line
        assert await modem.operator() == "Kcell"
        assert modem.garbage >= 2
        assert await modem.signal_dbm() == -73


async def test_timeouts_then_esc_and_at_recover(fake: PtyModem) -> None:
    async with Modem(config(fake.url, command_timeout=0.2)) as modem:
        fake.responder.ignore = 2
        with pytest.raises(ModemTimeout):
            await modem.command("AT+CSQ")
        with pytest.raises(ModemTimeout):
            await modem.command("AT+CSQ")  # second in a row: ESC + AT, answered
        assert modem.reopens == 0
        assert await modem.signal_dbm() == -73


async def test_hang_reopens_and_reinitialises(fake: PtyModem) -> None:
    async with Modem(config(fake.url, command_timeout=0.2)) as modem:
        before = len(fake.responder.commands)
        fake.responder.ignore = 3  # two commands and the AT after ESC
        for _ in range(2):
            with pytest.raises(ModemTimeout):
                await modem.command("AT+CSQ")
        assert modem.reopens == 1 and not modem.closed
        assert "AT+CNMI=2,1,0,1,0" in fake.responder.commands[before:]
        await ring(fake, 1)
        assert (await next_event(modem, IncomingCall)).number == CALLER


async def test_hang_for_good_is_modem_hung(fake: PtyModem) -> None:
    async with Modem(config(fake.url, command_timeout=0.1, init_attempts=1)) as modem:
        fake.responder.hung = True
        for _ in range(2):
            with pytest.raises(ModemTimeout):
                await modem.command("AT+CSQ")
        failure = await asyncio.wait_for(modem.wait_closed(), 2.0)
        assert isinstance(failure, ModemHung)
        with pytest.raises(ModemHung):
            await modem.command("AT")
        assert not (await modem.health()).connected


async def test_cancelled_command_does_not_wedge_the_session(fake: PtyModem) -> None:
    async with Modem(config(fake.url, command_timeout=0.3)) as modem:
        fake.responder.ignore = 1
        task = asyncio.create_task(modem.command("AT+CSQ"))
        await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert await modem.signal_dbm() == -73


async def test_unplug_is_modem_gone(fake: PtyModem) -> None:
    async with Modem(config(fake.url)) as modem:
        fake.responder.urc("RING", CLIP)
        await until(lambda: "ATH" in fake.responder.commands)  # the call was reported
        fake.unplug()
        failure = await asyncio.wait_for(modem.wait_closed(), 2.0)
        assert isinstance(failure, ModemGone)
        with pytest.raises(ModemGone):
            await modem.command("AT")
        seen = [event async for event in modem]  # what came before the unplug, then the end
        assert any(isinstance(e, IncomingCall) for e in seen)


async def test_modem_restart_reinitialises(fake: PtyModem) -> None:
    pdu = deliver_parts(Address(CALLER[1:]), "Қайта іске қосылды", timestamp=SCTS, concat_ref=0)
    async with Modem(config(fake.url)) as modem:
        before = len(fake.responder.commands)
        fake.responder.reset()  # echo back on, as after a power cycle
        fake.responder.storage[1] = pdu[0]  # arrived while it rebooted, and announced late
        fake.responder.urc("RDY", "+CFUN: 1", "+CPIN: READY", "SMS Ready", '+CMTI: "SM",1')
        await until(lambda: "AT+CREG=2" in fake.responder.commands[before:])
        assert "ATE0" in fake.responder.commands[before:]
        assert (await next_event(modem, SmsReceived)).text == "Қайта іске қосылды"
        await until(lambda: not fake.responder.storage)
        assert await modem.signal_dbm() == -73
        assert drain(modem, SmsReceived) == []  # listed and announced: handed on once


# --------------------------------------------------------------------------------------------
# Health, cells, registration


async def test_health(fake: PtyModem) -> None:
    async with Modem(config(fake.url)) as modem:
        health = await modem.health()
    assert health == ProbeHealth(
        probe="p1",
        connected=True,
        registered=True,
        registration=1,
        signal_dbm=-73,
        operator="Beeline KZ",
        lac="1A2B",
        cell_id="C3D4",
        imei="866782041234567",
        imsi="401771234567890",
        msisdn="+77071234567",
        last_event_at=health.last_event_at,
        error="",
        extra=health.extra,
    )
    assert health.extra["model"] == "SIMCOM_SIM7600E-H"


async def test_registration_urc(fake: PtyModem) -> None:
    async with Modem(config(fake.url)) as modem:
        await next_event(modem, RegistrationChanged)
        fake.responder.urc('+CREG: 5,"1A2B","C3D5"')
        roam = await next_event(modem, RegistrationChanged)
        assert (roam.stat, roam.lac, roam.cell_id) == (5, "1A2B", "C3D5")
        fake.responder.urc('+CREG: 5,"1A2B","C3D5"')  # unchanged: no event
        fake.responder.urc("+CREG: 2")
        searching = await next_event(modem, RegistrationChanged)
        assert searching.stat == 2


async def test_serving_cell_per_vendor(fake: PtyModem) -> None:
    r = fake.responder
    async with Modem(config(fake.url)) as modem:
        assert await modem.serving_cell() == ServingCell(
            "LTE", "1A2B", "1A2D001", "401-01", "+CPSI"
        )
    r.answers["AT+CGMI"] = reply("Quectel")
    r.answers['AT+QENG="SERVINGCELL"'] = reply(
        '+QENG: "servingcell","NOCONN","LTE","FDD",401,02,1A2B3C4,123,1300,3,5,5,5F1,-94,-10,-65,12'
    )
    async with Modem(config(fake.url)) as modem:
        assert modem.vendor == "quectel"
        assert await modem.serving_cell() == ServingCell("LTE", "5F1", "1A2B3C4", "401-02", "+QENG")
        r.answers['AT+QENG="SERVINGCELL"'] = reply(
            '+QENG: "servingcell","NOCONN","GSM",401,01,1A2B,3C4D,40,87,-,-70,255,255,0'
        )
        assert await modem.serving_cell() == ServingCell("GSM", "1A2B", "3C4D", "401-01", "+QENG")
        r.answers['AT+QENG="SERVINGCELL"'] = reply('+QENG: "servingcell","SEARCH"')
        assert await modem.serving_cell() == ServingCell("", "1A2B", "C3D4", source="+CREG")
    r.answers["AT+CGMI"] = reply("Telit")
    async with Modem(config(fake.url)) as modem:
        assert (await modem.serving_cell()).source == "+CREG"


# --------------------------------------------------------------------------------------------
# socket:// and the supervisor


async def test_socket_url() -> None:
    tcp = TcpModem()
    await tcp.start()
    try:
        async with Modem(config(tcp.url)) as modem:
            assert modem.identity.imei == "866782041234567"
            tcp.responder.urc("RING", CLIP)
            assert (await next_event(modem, IncomingCall)).number == CALLER
            assert await modem.signal_dbm() == -73
    finally:
        await tcp.stop()
    with pytest.raises(ModemGone):  # nobody listens now: connection refused
        async with Modem(config(tcp.url)):
            pass


async def test_socket_peer_closing_is_modem_gone() -> None:
    tcp = TcpModem()
    await tcp.start()
    writers: list[asyncio.StreamWriter] = []
    original = tcp._client

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await original(reader, writer)

    tcp._client = client  # type: ignore[method-assign]
    await tcp.stop()
    tcp.server = await asyncio.start_server(client, "127.0.0.1", tcp.port)
    try:
        async with Modem(config(tcp.url)) as modem:
            writers[0].close()
            assert isinstance(await asyncio.wait_for(modem.wait_closed(), 2.0), ModemGone)
    finally:
        await tcp.stop()


async def test_supervisor_reconnects_after_replug(fake: PtyModem) -> None:
    events: list[ProbeEvent] = []
    health: list[ProbeHealth] = []

    async def on_health(h: ProbeHealth) -> None:
        health.append(h)

    sup = ModemSupervisor(config(fake.url), events.append, on_health)
    sup.backoff.initial = sup.backoff.cap = 0.1
    runner = asyncio.create_task(sup.run())
    try:
        await until(lambda: any(h.connected for h in health))
        fake.responder.urc("RING", CLIP)
        await until(lambda: any(isinstance(e, IncomingCall) for e in events))
        fake.unplug()
        await until(lambda: not health[-1].connected)
        await asyncio.sleep(0.3)  # reopen attempts fail: no such port
        assert sup.connects == 1 and sup.modem is None
        fake.replug()
        await until(lambda: sup.connects == 2 and health[-1].connected)
        await asyncio.sleep(0.5)  # the previous call's ring_timeout, then a new call
        fake.responder.urc("RING", '+CLIP: "+77017654321",145,"",,"",0')
        await until(lambda: sum(isinstance(e, IncomingCall) for e in events) == 2)
    finally:
        sup.stop()
        await asyncio.wait_for(runner, 3.0)
    calls = [e for e in events if isinstance(e, IncomingCall)]
    assert [c.number for c in calls] == [CALLER, "+77017654321"]
    assert [h.connected for h in health].count(False) == 1  # down reported once


async def test_supervisor_callback_failure_ends_run(fake: PtyModem) -> None:
    def broken(event: ProbeEvent) -> None:
        raise RuntimeError("a bug in the consumer")

    sup = ModemSupervisor(config(fake.url), broken, lambda h: None)
    runner = asyncio.create_task(sup.run())
    await until(lambda: sup.connects == 1)
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(runner, 3.0)  # the first event (registration) reaches it


async def test_supervisor_stop_while_down(tmp_path: Path) -> None:
    health: list[ProbeHealth] = []
    sup = ModemSupervisor(config(str(tmp_path / "absent")), lambda e: None, health.append)
    runner = asyncio.create_task(sup.run())
    await until(lambda: bool(health))
    sup.stop()
    await asyncio.wait_for(runner, 2.0)
    assert health == [ProbeHealth("p1", connected=False, error=health[0].error)]
    assert "cannot open" in health[0].error


# --------------------------------------------------------------------------------------------
# Against simulators.modem (SIM7600 / EC25 style, written independently of the driver)


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[ModemSimulator]:
    async with ModemSimulator(ModemProfile(), tcp=False, name="p1", link_dir=tmp_path) as s:
        yield s


async def test_sim_init_identity_and_health(sim: ModemSimulator) -> None:
    profile = sim.profile
    async with Modem(config(sim.url)) as modem:
        ident = modem.identity
        assert (ident.manufacturer, ident.model, ident.revision) == (
            profile.manufacturer,
            profile.model,
            profile.revision,
        )
        assert (ident.imei, ident.imsi, ident.msisdn) == (
            profile.imei,
            profile.imsi,
            profile.msisdn,
        )
        health = await modem.health()
    assert health.connected and health.registered and health.registration == 1
    assert (health.signal_dbm, health.operator) == (-73, "KZ KCELL")
    assert (health.lac, health.cell_id, health.error) == ("1A2B", "0000C3D4", "")
    for command in ("ATE0", "AT+CMEE=2", "AT+CLIP=1", "AT+CMGF=0", "AT+CNMI=2,1,0,1,0"):
        assert command in sim.commands


async def test_sim_caller_id_one_call_and_hangup(sim: ModemSimulator) -> None:
    async with Modem(config(sim.url)) as modem:
        sim.incoming_call(CALLER, rings=3, interval=0.1)
        call = await next_event(modem, IncomingCall)
        assert (call.number, call.ton, call.validity) == (CALLER, 145, 0)
        await until(lambda: "ATH" in sim.commands)
        await asyncio.sleep(0.6)
        assert drain(modem, IncomingCall) == []
        # a SIM box: the international call arrives with a local CLI
        sim.incoming_call("87011234567", ton=129, rings=2, interval=0.1)
        local = await next_event(modem, IncomingCall)
        assert (local.number, local.ton) == ("87011234567", 129)


async def test_sim_call_not_hung_up_ends_with_no_carrier(sim: ModemSimulator) -> None:
    async with Modem(config(sim.url, hangup_after_cli=False, ring_timeout=5.0)) as modem:
        sim.incoming_call("", ton=128, validity=2, rings=3, interval=0.1)
        call = await next_event(modem, IncomingCall)
        assert (call.number, call.validity) == ("", 2)
        await asyncio.sleep(0.5)  # the rest of the rings, then NO CARRIER
        sim.incoming_call(CALLER, rings=1, interval=0.1)
        assert (await next_event(modem, IncomingCall)).number == CALLER
        assert "ATH" not in sim.commands


async def test_sim_multipart_kazakh_sms_via_cmti(sim: ModemSimulator) -> None:
    async with Modem(config(sim.url, concat_timeout=5.0)) as modem:
        indices = sim.receive_sms(CALLER, KZ_TEXT)
        assert len(indices) == 3
        sms = await next_event(modem, SmsReceived)
        assert (sms.originator, sms.originator_ton, sms.text, sms.parts) == (
            CALLER,
            1,
            KZ_TEXT,
            3,
        )
        assert sms.smsc == sim.profile.smsc
        await until(lambda: sim.storage.used("SM") == 0)
        sim.receive_sms("KCELL", "Тест хабарлама")
        alpha = await next_event(modem, SmsReceived)
        assert (alpha.originator, alpha.originator_ton, alpha.text) == (
            "KCELL",
            5,
            "Тест хабарлама",
        )


async def test_sim_multipart_kazakh_sms_via_cmt(sim: ModemSimulator) -> None:
    async with Modem(config(sim.url, cnmi="2,2,0,1,0", concat_timeout=5.0)) as modem:
        assert sim.receive_sms(CALLER, KZ_TEXT) == []  # routed, not stored
        sms = await next_event(modem, SmsReceived)
        assert (sms.text, sms.parts) == (KZ_TEXT, 3)


async def test_sim_sms_stored_while_down_is_read_at_start(sim: ModemSimulator) -> None:
    sim.core.cnmi = [2, 1, 0, 1, 0]
    sim.receive_sms(CALLER, KZ_TEXT)  # nobody listening: stored on the SIM
    async with Modem(config(sim.url, concat_timeout=5.0)) as modem:
        sms = await next_event(modem, SmsReceived)
        assert sms.text == KZ_TEXT
        await until(lambda: sim.storage.used("SM") == 0)


async def test_sim_send_sms_multipart(sim: ModemSimulator) -> None:
    async with Modem(config(sim.url)) as modem:
        refs = await modem.send_sms("+77021234567", RU_TEXT)
        single = await modem.send_sms("+77021234567", "Сәлем!")
    assert len(refs) == 3 and len(single) == 1
    assert [s.reference for s in sim.sent] == [*refs, *single]
    assert "".join(s.text for s in sim.sent[:3]) == RU_TEXT
    assert {str(s.destination) for s in sim.sent} == {"+77021234567"}


async def test_sim_typed_errors(sim: ModemSimulator) -> None:
    async with Modem(config(sim.url)) as modem:
        with pytest.raises(CmeError) as cme:
            await modem.command("AT+CPBR=1")  # not in the simulator: +CME ERROR 4
        assert (cme.value.code, cme.value.text) == (4, "operation not supported")
        with pytest.raises(CmsError) as cms:
            await modem.command("AT+CMGR=99")
        assert cms.value.code == 321
        assert await modem.signal_dbm() == -73


async def test_sim_pin(tmp_path: Path) -> None:
    async with ModemSimulator(ModemProfile(pin="1234"), name="p2", link_dir=tmp_path) as sim:
        with pytest.raises(SimLocked):
            async with Modem(config(sim.url)):
                pass
        async with Modem(config(sim.url, pin="1234")) as modem:
            assert modem.identity.imsi == sim.profile.imsi
        assert 'AT+CPIN="1234"' in sim.commands


async def test_sim_garbage_mid_response(sim: ModemSimulator) -> None:
    original = sim.core.data_to_send

    def noisy() -> bytes:
        data = original()
        if b"+CSQ:" in data:
            return data.replace(b"\r\nOK\r\n", b"\r\n\x00\xff\xfe\x07\x1b\r\n\r\nOK\r\n")
        return data

    async with Modem(config(sim.url)) as modem:
        sim.core.data_to_send = noisy  # type: ignore[method-assign]
        before = modem.garbage
        sim.garbage(b"\x00\x13\xffline noise")  # no line end: joins the next response's CR LF
        assert await modem.signal_dbm() == -73
        assert modem.garbage >= before + 2
        assert await modem.operator() == "KZ KCELL"


async def test_sim_registration_and_signal(sim: ModemSimulator) -> None:
    async with Modem(config(sim.url)) as modem:
        await next_event(modem, RegistrationChanged)
        sim.set_registration(5, lac="1A2C", cell_id="0000C3D5")
        roam = await next_event(modem, RegistrationChanged)
        assert (roam.stat, roam.lac, roam.cell_id) == (5, "1A2C", "0000C3D5")
        sim.set_signal(99)
        health = await modem.health()
        assert (health.registration, health.signal_dbm) == (5, None)
        assert await modem.serving_cell() == ServingCell("LTE", "1A2C", "C3D5", "401-02", "+CPSI")


async def test_sim_quectel_serving_cell(tmp_path: Path) -> None:
    profile = ModemProfile(manufacturer="Quectel", model="EC25", revision="EC25EFAR06A06M4G")
    async with (
        ModemSimulator(profile, name="q1", link_dir=tmp_path) as sim,
        Modem(config(sim.url)) as modem,
    ):
        assert modem.vendor == "quectel"
        assert await modem.serving_cell() == ServingCell(
            "LTE", "1A2B", "0000C3D4", "401-02", "+QENG"
        )


async def test_sim_hang_reopens_and_reinitialises(sim: ModemSimulator) -> None:
    async with Modem(config(sim.url, command_timeout=0.3)) as modem:
        sim.hang(1.0)
        for _ in range(2):
            with pytest.raises(ModemTimeout):
                await modem.signal_dbm()
        assert modem.reopens == 1 and not modem.closed
        assert await modem.signal_dbm() == -73
        sim.incoming_call(CALLER, rings=1, interval=0.1)
        assert (await next_event(modem, IncomingCall)).number == CALLER


async def test_sim_supervisor_survives_unplug_and_hang(sim: ModemSimulator) -> None:
    events: list[ProbeEvent] = []
    health: list[ProbeHealth] = []
    cfg = config(sim.url, command_timeout=0.2, init_attempts=2)
    sup = ModemSupervisor(cfg, events.append, health.append)
    sup.backoff.initial = sup.backoff.cap = 0.1
    runner = asyncio.create_task(sup.run())
    try:
        await until(lambda: bool(health) and health[-1].connected)
        sim.incoming_call(CALLER, rings=1, interval=0.1)
        await until(lambda: any(isinstance(e, IncomingCall) for e in events))
        await sim.unplug()
        await until(lambda: not health[-1].connected)
        await asyncio.sleep(0.3)
        await sim.replug()
        await until(lambda: sup.connects == 2 and health[-1].connected)
        await asyncio.sleep(0.5)  # ring_timeout of the first call
        sim.receive_sms("+77017654321", "Қайта қосылды")
        await until(lambda: any(isinstance(e, SmsReceived) for e in events))
        sim.hang(None)  # hung for good: health polls time out, reopen fails, backoff
        await until(lambda: not health[-1].connected, timeout=5.0)
        sim.unhang()
        await until(lambda: sup.connects == 3 and health[-1].connected, timeout=5.0)
    finally:
        sup.stop()
        await asyncio.wait_for(runner, 3.0)
    sms = [e for e in events if isinstance(e, SmsReceived)]
    assert [(s.originator, s.text) for s in sms] == [("+77017654321", "Қайта қосылды")]
    assert [h.connected for h in health].count(False) == 2  # one per outage


async def test_sim_socket_mode(tmp_path: Path) -> None:
    async with ModemSimulator(ModemProfile(), tcp=True, name="t1") as sim:
        assert sim.url.startswith("socket://")
        async with Modem(config(sim.url, concat_timeout=5.0)) as modem:
            assert modem.identity.imei == sim.profile.imei
            sim.incoming_call(CALLER, rings=2, interval=0.1)
            assert (await next_event(modem, IncomingCall)).number == CALLER
            sim.receive_sms(CALLER, KZ_TEXT)
            assert (await next_event(modem, SmsReceived)).text == KZ_TEXT
            await sim.unplug()
            assert isinstance(await asyncio.wait_for(modem.wait_closed(), 2.0), ModemGone)
        with pytest.raises(ModemGone):  # the listener is gone: connection refused
            async with Modem(config(sim.url)):
                pass
        await sim.replug()
        async with Modem(config(sim.url)) as modem:
            assert await modem.signal_dbm() == -73
