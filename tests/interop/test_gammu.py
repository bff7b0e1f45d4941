"""gammu 1.42 (Debian package `gammu`), a real AT client nobody here wrote, against the modem
simulator over a pty.

gammu opens the simulator's symlink as a serial device (`connection = at`), runs its own probing
(ESC, AT, ATE1, AT+MODE=2, AT+CMEE=1, AT+CSCS?, AT+CSCS=?, AT+CPROT=?, AT+CHUP=?...) and then:
- `identify` reads manufacturer, model, firmware, IMEI and IMSI;
- `getallsms` / `geteachsms` list the SIM's messages with AT+CPMS and AT+CMGL=4 in PDU mode and
  decode the SMS-DELIVER PDUs built by gsm_probe.ts23040 (UCS2, alphanumeric originator, UDH
  concatenation, TP-SCTS with its +05:00 zone);
- `sendsms` reads AT+CSCA?, switches to PDU mode and sends SMS-SUBMIT PDUs with AT+CMGS, which
  the simulator decodes into `sim.sent`.
gammu runs as an asyncio subprocess (UTF-8 locale, for the Cyrillic on its command line and in
its output) while the simulator runs in the test's event loop; its debug log is kept in tmp_path.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from _procs import require_binary

from gsm_probe.ts23040 import Address, decode_deliver, deliver_parts
from simulators.modem import ModemProfile, ModemSimulator

pytestmark = pytest.mark.interop

KZ = timezone(timedelta(hours=5))
WHEN = datetime(2024, 11, 23, 10, 15, 30, tzinfo=KZ)
KAZAKH = "Сәлеметсіз бе! Тест қоңырауы"
RUSSIAN = "Ваш код: 4821. Никому не сообщайте"
LONG_KAZAKH = (
    "Құрметті абонент! Сіздің нөміріңізге тест қоңырауы жасалды. Кодты ешкімге айтпаңыз, "
    "банк қызметкерлері оны ешқашан сұрамайды. Сұрақтар болса 1414 нөміріне хабарласыңыз."
)
LONG_RUSSIAN = (
    "Уважаемый абонент! Ваш код подтверждения: 4821. Никому не сообщайте этот код, даже "
    "сотрудникам банка. Если вы не запрашивали код, позвоните по номеру 1414."
)
PROFILE = ModemProfile(imei="867584030999991", imsi="401027770001234", msisdn="+77017770001")


async def gammu(sim: ModemSimulator, tmp_path: Path, *args: str, timeout: float = 60.0) -> str:
    """Run `gammu -c <config> ARGS` against the simulator; its stdout + stderr, exit code 0."""
    binary = require_binary("gammu", package="gammu", candidates=["/usr/bin/gammu"])
    config = tmp_path / "gammurc"
    log = tmp_path / f"gammu-{args[0]}.log"
    config.write_text(
        f"[gammu]\ndevice = {sim.url}\nconnection = at\nlogformat = textall\nlogfile = {log}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "HOME": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        binary,
        "-c",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"gammu {' '.join(args)} timed out; commands seen: {sim.commands[-10:]}")
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, f"gammu {args} exited {proc.returncode}:\n{text}\nlog: {log}"
    return text


async def test_identify(tmp_path: Path) -> None:
    async with ModemSimulator(PROFILE, link_dir=tmp_path) as sim:
        out = await gammu(sim, tmp_path, "identify")
    lines = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}
    assert lines["Manufacturer"] == "SIMCOM INCORPORATED"
    assert lines["Model"] == "unknown (SIMCOM_SIM7600E-H)"  # not in gammu's model table
    assert lines["Firmware"] == "LE20B04SIM7600M22"
    assert lines["IMEI"] == "867584030999991"
    assert lines["SIM IMSI"] == "401027770001234"
    # gammu's own probing happened, and echo after ATE1 carried it through
    assert {"ATE1", "AT+CMEE=1", "AT+CSCS?", "AT+CSCS=?", "AT+CGSN", "AT+CIMI"} <= set(sim.commands)


def _expected_parts(text: str) -> list[str]:
    pdus = deliver_parts(Address("77011234567"), text, timestamp=WHEN, concat_ref=1)
    return [decode_deliver(p).text for p in pdus]


async def test_getallsms_shows_stored_texts(tmp_path: Path) -> None:
    async with ModemSimulator(PROFILE, link_dir=tmp_path) as sim:
        sim.receive_sms("+77011234567", KAZAKH, when=WHEN)
        sim.receive_sms("KCELL", RUSSIAN, when=WHEN)
        sim.receive_sms("+77011234567", LONG_KAZAKH, when=WHEN)
        out = await gammu(sim, tmp_path, "getallsms")
    assert "AT+CMGL=4" in sim.commands
    assert KAZAKH in out
    assert RUSSIAN in out
    assert 'Remote number        : "KCELL"' in out
    assert 'Remote number        : "+77011234567"' in out
    assert 'SMSC number          : "+77010000000"' in out
    assert "Sent                 : Sat Nov 23 10:15:30 2024 +0500" in out
    parts = _expected_parts(LONG_KAZAKH)
    assert len(parts) == 3
    for seq, part in enumerate(parts, 1):
        assert f"Concatenated (linked) message, ID (8 bit) 3, part {seq} of 3" in out
        assert part.strip() in out
    assert "5 SMS parts in 5 SMS sequences" in out


async def test_geteachsms_joins_concatenated_parts(tmp_path: Path) -> None:
    async with ModemSimulator(PROFILE, link_dir=tmp_path) as sim:
        sim.receive_sms("+77011234567", LONG_KAZAKH, when=WHEN)
        out = await gammu(sim, tmp_path, "geteachsms")
    assert "Concatenated (linked) message, ID (8 bit) 1, 3 parts" in out
    assert LONG_KAZAKH in out
    assert "3 SMS parts in 1 SMS sequences" in out


async def test_sendsms_unicode_kazakh(tmp_path: Path) -> None:
    async with ModemSimulator(PROFILE, link_dir=tmp_path) as sim:
        out = await gammu(sim, tmp_path, "sendsms", "TEXT", "+77071234567", "-unicode",
                          "-text", "Сәлем")  # fmt: skip
    assert "OK, message reference=1" in out
    [sms] = sim.sent
    assert sms.destination == Address("77071234567")
    assert (sms.text, sms.dcs) == ("Сәлем", 0x08)
    assert sms.smsc == Address("77010000000")  # gammu read it with AT+CSCA? and put it first


async def test_sendsms_multipart_russian(tmp_path: Path) -> None:
    async with ModemSimulator(PROFILE, link_dir=tmp_path) as sim:
        out = await gammu(sim, tmp_path, "sendsms", "TEXT", "+77071234567", "-unicode",
                          "-autolen", str(len(LONG_RUSSIAN)), "-text", LONG_RUSSIAN)  # fmt: skip
    assert "Sending SMS 3/3" in out
    assert [m.concat.seq if m.concat else 0 for m in sim.sent] == [1, 2, 3]
    assert {m.destination for m in sim.sent} == {Address("77071234567")}
    assert "".join(m.text for m in sim.sent) == LONG_RUSSIAN
