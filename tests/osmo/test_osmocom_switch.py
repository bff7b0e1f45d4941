"""OsmocomSwitch, CtrlClient, VtyClient and lab provisioning against the real osmo-hlr 1.5 and
osmo-msc 1.9 (the lab in simulators/osmo). An attached phone is one SGs location update sent by
hand (3GPP TS 29.118 §8.11), enough to give osmo-msc a VLR record to expire."""

from __future__ import annotations

import asyncio
import contextlib
import time
import tomllib
from collections.abc import AsyncIterator

import pytest
from conftest import OsmoLab

from gateway.config_check import ConfigError, Table
from gateway.osmocom import ipa
from gateway.osmocom.ctrl import CtrlClient, CtrlCommandError, CtrlConnectionError
from gateway.osmocom.vty import VtyClient, VtyCommandError
from gateway.switch.config import parse_switch
from gateway.switch.osmocom import OsmocomSettings, OsmocomSwitch, parse_info
from gateway.switch.port import SwitchRejected, SwitchUnavailable
from simulators.osmo.lab import HLR_CTRL, HLR_VTY, MSC_VTY
from simulators.osmo.provision import LabSubscriber, ProvisionError, provision

AIGERIM = LabSubscriber("001010000000001", "77011110001", "000102030405060708090a0b0c0d0e0f",
                        name="Айгерим")  # fmt: skip
DANIYAR = LabSubscriber("001010000000002", "77011110002", name="Данияр")


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def hlr() -> AsyncIterator[CtrlClient]:
    async with CtrlClient(port=HLR_CTRL, timeout=2.0) as ctrl:
        yield ctrl


async def test_provision_block_status_unblock(osmo_lab: OsmoLab, hlr: CtrlClient) -> None:
    await osmo_lab()
    report = await provision(hlr, [AIGERIM, DANIYAR])
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert "COMP128v1,000102030405060708090a0b0c0d0e0f" in await hlr.get(
        f"subscriber.by-imsi-{AIGERIM.imsi}.aud2g"
    )
    async with OsmocomSwitch(OsmocomSettings(timeout=2.0)) as sw:
        assert await sw.status(AIGERIM.msisdn) == "active"
        first = await sw.block(AIGERIM.msisdn, reason="case confirmed", case_id="c1")
        assert (first.msisdn, first.status, first.changed) == (AIGERIM.msisdn, "blocked", True)
        info = await hlr.get(f"subscriber.by-msisdn-{AIGERIM.msisdn}.info")
        assert "\nnam_cs\t0\n" in info and "\nnam_ps\t0\n" in info
        assert await sw.status(AIGERIM.msisdn) == "blocked"
        assert await sw.status("+" + DANIYAR.msisdn) == "active"  # '+' is accepted
        again = await sw.block(AIGERIM.msisdn, reason="case confirmed", case_id="c1")
        assert (again.status, again.changed) == ("blocked", False)
        back = await sw.unblock(AIGERIM.msisdn, reason="appeal upheld", case_id="c1")
        assert (back.status, back.changed) == ("active", True)
        assert not (await sw.unblock(AIGERIM.msisdn, reason="r", case_id="c1")).changed
        assert await sw.status(AIGERIM.msisdn) == "active"
    # provisioning again is idempotent; a changed MSISDN is an update
    report = await provision(hlr, [AIGERIM, DANIYAR])
    assert (report.created, report.updated, report.unchanged) == (0, 0, 2)
    moved = LabSubscriber(DANIYAR.imsi, "77011110003")
    assert (await provision(hlr, [moved])).updated == 1
    assert await hlr.get(f"subscriber.by-imsi-{DANIYAR.imsi}.msisdn") == "77011110003"


async def test_unknown_number_is_rejected(osmo_lab: OsmoLab) -> None:
    await osmo_lab()
    async with OsmocomSwitch() as sw:
        with pytest.raises(SwitchRejected) as info:
            await sw.block("77019999999", reason="r", case_id="c1")
        assert info.value.code == "unknown_subscriber"
        assert "77019999999" not in str(info.value)
        assert await sw.status("77019999999") == "unknown"
        with pytest.raises(SwitchRejected) as bad:
            await sw.block("7701-999", reason="r", case_id="c1")
        assert bad.value.code == "invalid_msisdn"


# -- an attached phone (SGs) --------------------------------------------------------------------


def _ie(tag: int, value: bytes) -> bytes:
    return bytes([tag, len(value)]) + value


def _imsi_ie(imsi: str) -> bytes:
    """IMSI as a TS 24.008 §10.5.1.4 mobile identity: odd digit count, type 1."""
    digits = [int(c) for c in imsi] + [0xF]
    octets = bytes([(digits[0] << 4) | 0x09])
    octets += bytes((digits[i + 1] << 4) | digits[i] for i in range(1, len(digits) - 1, 2))
    return _ie(0x01, octets)


MME = "mmec01.mmegi0001.mme.epc.mnc001.mcc001.3gppnetwork.org"
LAI = bytes.fromhex("00f1100001")  # MCC 001, MNC 01, LAC 1


async def attach(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, imsi: str) -> int:
    """SGsAP-LOCATION-UPDATE-REQUEST; answers TMSI-REALLOCATION-COMPLETE to an accept. Returns
    the message type of the answer: 0x0a accept, 0x0b reject."""
    name = b"".join(bytes([len(label)]) + label.encode() for label in MME.split("."))
    writer.write(b"\x09" + _imsi_ie(imsi) + _ie(0x09, name) + _ie(0x0A, b"\x01") + _ie(0x04, LAI))
    answer = await asyncio.wait_for(reader.read(512), 3.0)
    if answer[:1] == b"\x0a":
        writer.write(b"\x0c" + _imsi_ie(imsi))
    return answer[0]


async def msc_knows(imsi: str) -> bool:
    async with VtyClient(port=MSC_VTY, timeout=2.0) as vty:
        out = await vty.command(f"show subscriber imsi {imsi}", check=False)
    return f"IMSI: {imsi}" in out


async def test_block_expires_an_attached_phone(osmo_lab: OsmoLab, hlr: CtrlClient) -> None:
    lab = await osmo_lab()
    await provision(hlr, [AIGERIM])
    reader, writer = await asyncio.open_connection("127.0.0.1", lab.cfg.sgs_port)
    try:
        assert await attach(writer, reader, AIGERIM.imsi) == 0x0A
        await asyncio.sleep(0.1)
        assert await msc_knows(AIGERIM.imsi)
        async with OsmocomSwitch() as sw:
            assert (await sw.block(AIGERIM.msisdn, reason="r", case_id="c1")).changed
            assert not await msc_knows(AIGERIM.imsi)  # the VLR record is gone now
            assert await attach(writer, reader, AIGERIM.imsi) == 0x0B  # LU reject
            await sw.unblock(AIGERIM.msisdn, reason="r", case_id="c1")
            assert await attach(writer, reader, AIGERIM.imsi) == 0x0A
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


# -- failures -----------------------------------------------------------------------------------


async def test_hlr_down_is_unavailable_quickly_and_the_link_comes_back(
    osmo_lab: OsmoLab, hlr: CtrlClient
) -> None:
    lab = await osmo_lab()
    await provision(hlr, [AIGERIM])
    async with OsmocomSwitch(OsmocomSettings(timeout=2.0)) as sw:
        assert await sw.status(AIGERIM.msisdn) == "active"  # the CTRL link is open now
        await lab.stop()
        started = time.monotonic()
        with pytest.raises(SwitchUnavailable, match="osmo-hlr"):
            await sw.block(AIGERIM.msisdn, reason="r", case_id="c1")
        with pytest.raises(SwitchUnavailable):
            await sw.status(AIGERIM.msisdn)
        assert time.monotonic() - started < 1.0
        await osmo_lab()  # a fresh HLR, empty
        await provision(hlr, [AIGERIM])
        assert (await sw.block(AIGERIM.msisdn, reason="r", case_id="c1")).changed
    nowhere = OsmocomSettings(hlr_ctrl_port=closed_port(), timeout=1.0)
    async with OsmocomSwitch(nowhere) as sw:
        with pytest.raises(SwitchUnavailable, match="ConnectionRefused"):
            await sw.block(AIGERIM.msisdn, reason="r", case_id="c1")


async def test_msc_unreachable_after_the_hlr_change_is_retried(
    osmo_lab: OsmoLab, hlr: CtrlClient
) -> None:
    await osmo_lab()
    await provision(hlr, [DANIYAR])
    no_msc = OsmocomSettings(msc_vty_port=closed_port(), timeout=1.0)
    async with OsmocomSwitch(no_msc) as sw:
        with pytest.raises(SwitchUnavailable, match="blocked at the HLR, but osmo-msc") as info:
            await sw.block(DANIYAR.msisdn, reason="r", case_id="c1")
        assert await sw.status(DANIYAR.msisdn) == "blocked"  # in force at the HLR already
        assert "001010000000002" not in str(info.value)  # the IMSI is masked
    async with OsmocomSwitch() as sw:  # the workflow's retry, MSC back
        retry = await sw.block(DANIYAR.msisdn, reason="r", case_id="c1")
        assert (retry.status, retry.changed) == ("blocked", False)
    hlr_only = OsmocomSettings(msc_vty_host="")
    async with OsmocomSwitch(hlr_only) as sw:
        assert (await sw.unblock(DANIYAR.msisdn, reason="r", case_id="c1")).changed
        assert (await sw.block(DANIYAR.msisdn, reason="r", case_id="c1")).changed


async def test_ctrl_client_answers_a_ping_and_ignores_traps(osmo_lab: OsmoLab) -> None:
    """A proxy in front of osmo-hlr puts a PING and a TRAP before every answer; the client must
    PONG and still match its reply."""
    await osmo_lab()
    from_client = bytearray()

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        hlr_r, hlr_w = await asyncio.open_connection("127.0.0.1", HLR_CTRL)

        async def up() -> None:
            while data := await client_r.read(4096):
                from_client.extend(data)
                hlr_w.write(data.replace(ipa.pong(), b""))  # the PONGs answer our PINGs

        async def down() -> None:
            while data := await hlr_r.read(4096):
                trap = ipa.encode_ctrl(b"TRAP 0 subscriber.test 1")
                client_w.write(ipa.ping() + trap + data[:5])
                await client_w.drain()
                await asyncio.sleep(0.05)  # the reply arrives split, after the PING
                client_w.write(data[5:])

        try:
            await asyncio.gather(up(), down())
        finally:
            hlr_w.close()
            client_w.close()

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with CtrlClient(port=port, timeout=2.0) as ctrl:
            assert await ctrl.set("subscriber.create", DANIYAR.imsi) == "1"
            with pytest.raises(CtrlCommandError, match="No such subscriber"):
                await ctrl.get("subscriber.by-msisdn-1.info")
            assert ctrl.pings_answered == 2 and len(ctrl.traps) == 2
            assert ctrl.traps[0].var == "subscriber.test"
        assert from_client.count(ipa.pong()) == 2
    finally:
        server.close()
        await server.wait_closed()


async def test_ctrl_errors_of_the_real_hlr(osmo_lab: OsmoLab, hlr: CtrlClient) -> None:
    await osmo_lab()
    with pytest.raises(CtrlCommandError, match="Command not found"):
        await hlr.get("no.such.variable")
    with pytest.raises(CtrlCommandError, match="Invalid IMSI value"):
        await hlr.set("subscriber.create", "12345")
    await hlr.set("subscriber.create", AIGERIM.imsi)
    with pytest.raises(CtrlCommandError, match="Value failed verification"):
        await hlr.set(f"subscriber.by-imsi-{AIGERIM.imsi}.cs-enabled", "2")
    assert await hlr.get(f"subscriber.by-imsi-{AIGERIM.imsi}.cs-enabled") == "1"
    async with CtrlClient(port=closed_port(), timeout=1.0) as nowhere:
        with pytest.raises(CtrlConnectionError):
            await nowhere.get("subscriber.by-imsi-1.info")


async def test_vty_detects_errors_on_msc_and_hlr(osmo_lab: OsmoLab) -> None:
    await osmo_lab()
    async with VtyClient(port=MSC_VTY, timeout=2.0) as vty:
        assert vty.prompt is not None and vty.prompt.text == "OsmoMSC# "
        assert "OsmoMSC 1.9" in await vty.command("show version")
        with pytest.raises(VtyCommandError, match="Unknown command"):
            await vty.command(f"subscriber imsi {AIGERIM.imsi} expire now")
        with pytest.raises(VtyCommandError, match="Command incomplete"):
            await vty.command("subscriber imsi")
        out = await vty.command(f"subscriber imsi {AIGERIM.imsi} expire", check=False)
        assert out == f"% No subscriber found for imsi {AIGERIM.imsi}"
    async with VtyClient(port=HLR_VTY, timeout=2.0) as vty:
        assert "% Created subscriber" in await vty.command(f"subscriber imsi {DANIYAR.imsi} create")
        assert f"IMSI: {DANIYAR.imsi}" in await vty.command(f"show subscriber imsi {DANIYAR.imsi}")


async def test_provision_validates_before_sending(osmo_lab: OsmoLab, hlr: CtrlClient) -> None:
    await osmo_lab()
    cases = [
        ([LabSubscriber("00101000000001", "7701")], "IMSI '00101000000001' is not 15 digits"),
        ([LabSubscriber(AIGERIM.imsi, "+7701")], r"MSISDN '\+7701' is not 1-15 digits"),
        ([LabSubscriber(AIGERIM.imsi, "7701", ki="00" * 15, name="Айгерим")],
         r"001010000000001 \(Айгерим\): Ki is not 32 hex digits"),
        ([AIGERIM, LabSubscriber("001010000000003", AIGERIM.msisdn)], "given to two subscribers"),
        ([AIGERIM, AIGERIM], "IMSI given twice"),
    ]  # fmt: skip
    for subscribers, message in cases:
        with pytest.raises(ProvisionError, match=message):
            await provision(hlr, [DANIYAR, *subscribers])
    # nothing was sent for any of them, not even the valid first one
    with pytest.raises(CtrlCommandError, match="No such subscriber"):
        await hlr.get(f"subscriber.by-imsi-{DANIYAR.imsi}.info")


# -- unblock_restores: unblock cannot know the pre-block flags -----------------------------------


async def flags(hlr: CtrlClient, msisdn: str) -> tuple[str, str]:
    info = await hlr.get(f"subscriber.by-msisdn-{msisdn}.info")
    sub = parse_info(info)
    return str(int(sub.cs_enabled)), str(int(sub.ps_enabled))


async def test_unblock_restores_only_the_configured_flags(
    osmo_lab: OsmoLab, hlr: CtrlClient
) -> None:
    """A subscriber without data (ps-enabled 0) before the block: with unblock_restores=("cs",)
    it stays without data after the unblock; with the default, the unblock grants PS."""
    await osmo_lab()
    await provision(hlr, [AIGERIM, DANIYAR])
    for sub in (AIGERIM, DANIYAR):
        await hlr.set(f"subscriber.by-msisdn-{sub.msisdn}.ps-enabled", "0")
        assert await flags(hlr, sub.msisdn) == ("1", "0")
    cs_only = OsmocomSettings(timeout=2.0, unblock_restores=("cs",))
    async with OsmocomSwitch(cs_only) as sw:
        assert (await sw.block(AIGERIM.msisdn, reason="r", case_id="c1")).changed
        assert await flags(hlr, AIGERIM.msisdn) == ("0", "0")
        back = await sw.unblock(AIGERIM.msisdn, reason="appeal upheld", case_id="c1")
        assert (back.status, back.changed) == ("active", True)
        assert await flags(hlr, AIGERIM.msisdn) == ("1", "0")  # still no data
        assert await sw.status(AIGERIM.msisdn) == "active"
        assert not (await sw.unblock(AIGERIM.msisdn, reason="r", case_id="c1")).changed
    async with OsmocomSwitch(OsmocomSettings(timeout=2.0)) as sw:  # unblock_restores cs, ps
        assert (await sw.block(DANIYAR.msisdn, reason="r", case_id="c2")).changed
        assert await flags(hlr, DANIYAR.msisdn) == ("0", "0")
        assert (await sw.unblock(DANIYAR.msisdn, reason="r", case_id="c2")).changed
        assert await flags(hlr, DANIYAR.msisdn) == ("1", "1")  # PS it never had


def test_unblock_restores_is_validated_in_settings_and_config() -> None:
    assert OsmocomSettings().unblock_restores == ("cs", "ps")
    for wrong in (("ps",), (), ("cs", "cs"), ("cs", "data")):
        with pytest.raises(ValueError, match="unblock_restores"):
            OsmocomSettings(unblock_restores=wrong)

    def parse(value: str) -> OsmocomSettings | None:
        text = f'[switch]\nkind = "osmocom"\n[switch.osmocom]\nunblock_restores = {value}\n'
        return parse_switch(Table(tomllib.loads(text)["switch"], "switch")).osmocom

    settings = parse('["cs"]')
    assert settings is not None and settings.unblock_restores == ("cs",)
    for value in ('["ps"]', '["cs", "cs"]', '"cs"', '["cs", 1]', "[]"):
        with pytest.raises(ConfigError, match=r"switch\.osmocom\.unblock_restores"):
            parse(value)


# -- personal data in error texts ----------------------------------------------------------------

IMSI, MSISDN = "250990001234567", "77011234567"


@pytest.mark.parametrize(
    ("info", "names"),
    [
        (f"\nid\t1\nimsi\t{IMSI}\nmsisdn\t{MSISDN}\nnam_cs\t1\n", "without nam_ps"),
        (f"\nid\t1\nmsisdn\t{MSISDN}\nnam_cs\t1\nnam_ps\t1\n", "without imsi"),
        (f"\nimsi\t{IMSI}\nmsisdn\t{MSISDN}\nnam_cs\tyes\nnam_ps\t1\n", "nam_cs not readable"),
        (f"\nimsi\t{IMSI} {MSISDN}\nmsisdn\t{MSISDN}\nnam_cs\t1\nnam_ps\t1\n", "imsi not readable"),
        (f"subscriber {IMSI} ({MSISDN}): database locked", "without imsi, nam_cs, nam_ps"),
    ],
)
def test_parse_info_errors_name_keys_never_values(info: str, names: str) -> None:
    with pytest.raises(SwitchUnavailable) as error:
        parse_info(info)
    text = str(error.value)
    assert names in text
    assert IMSI not in text and MSISDN not in text and "1234567" not in text


async def test_hlr_garbage_with_an_imsi_is_scrubbed_from_error_and_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A CTRL peer answering bytes that are not UTF-8 and quote an IMSI and an MSISDN: the
    CtrlProtocolError quotes the raw bytes; what the switch raises and logs masks them."""
    garbage = f"GET_REPLY 1 info \nimsi\t{IMSI}\nmsisdn\t{MSISDN}\xff".encode("latin-1")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(ipa.encode_ctrl(garbage))
        await writer.drain()
        await reader.read(4096)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = OsmocomSettings(hlr_ctrl_port=port, msc_vty_host="", timeout=2.0)
        async with OsmocomSwitch(settings) as sw:
            with pytest.raises(SwitchUnavailable, match="not UTF-8") as error:
                await sw.block(MSISDN, reason="r", case_id="c1")
    finally:
        server.close()
        await server.wait_closed()
    assert "7701***4567" in str(error.value) and "2509***4567" in str(error.value)
    for text in (str(error.value), caplog.text):
        assert IMSI not in text and MSISDN not in text
    assert "switch osmocom: block 7701***4567 (case c1) failed" in caplog.text
