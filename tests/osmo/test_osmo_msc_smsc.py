"""The project's ESME (EsmeClient) against osmo-msc 1.9's built-in SMSC (libsmpp34 inside).

The lab (simulators/osmo/lab.py) runs osmo-hlr 1.5 + osmo-msc 1.9 on 127.0.0.1 as in
shared/osmocom/LAB-NOTES.md. No virtual phone is attached here (tests/osmo/test_phones.py has
them), so MT messages stay stored in osmo-msc's database.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import time

import pytest
from _esme import Recorder
from conftest import OsmoLab

from simulators.osmo.lab import Lab
from smsc.client import EsmeClient, EsmeConfig
from smsc.constants import CommandId, EsmClass, Status
from smsc.link import BindError
from smsc.pdu import EnquireLink, SubmitSm
from smsc.session import BindType, SessionConfig

pytestmark = pytest.mark.interop

# VTY answers start with '%' for success too ("% Created subscriber"); these are the errors.
VTY_ERROR = re.compile(
    r"^% (Unknown command|Command incomplete|There is no matched command|Ambiguous command"
    r"|Error|.*[Ff]ail|No such|Cannot|Invalid)",
    re.MULTILINE,
)
IMSI = "001010000000001"
MSISDN = "4900001"
KAZAKH = "Сіздің картаңыз бұғатталды"


async def vty(port: int, commands: list[str], prompt: bytes = b"OsmoHLR") -> str:
    """Run VTY commands (after `enable`) over telnet; fail on a '%' error line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out: list[str] = []
    try:

        async def until_prompt() -> str:
            data = b""
            deadline = time.monotonic() + 5
            while not (data.endswith(prompt + b"> ") or data.endswith(prompt + b"# ")):
                left = deadline - time.monotonic()
                chunk = await asyncio.wait_for(reader.read(4096), max(left, 0.01))
                if not chunk:
                    pytest.fail(f"VTY closed the connection; got {data!r}", pytrace=False)
                data += chunk
            return data.decode("utf-8", "replace")

        await until_prompt()
        for cmd in ["enable", *commands]:
            writer.write(cmd.encode() + b"\r\n")
            await writer.drain()
            text = await until_prompt()
            out.append(text)
            if VTY_ERROR.search(text):
                pytest.fail(f"VTY command {cmd!r} failed: {text}", pytrace=False)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return "".join(out)


async def test_project_esme_against_osmo_msc(osmo_lab: OsmoLab) -> None:
    started = time.monotonic()
    lab = await osmo_lab(log_level="debug")
    shown = await vty(
        lab.hlr_vty,
        [
            f"subscriber imsi {IMSI} create",
            f"subscriber imsi {IMSI} update msisdn {MSISDN}",
            f"show subscriber msisdn {MSISDN}",
        ],
    )
    assert IMSI in shown and MSISDN in shown, shown
    await _esme_session(lab)
    lab.check_alive()
    assert time.monotonic() - started < 20


async def _esme_session(lab: Lab) -> None:
    smpp_port, tmp_path = lab.cfg.smpp_port, lab.cfg.workdir
    recorder = Recorder()
    cfg = EsmeConfig(
        "127.0.0.1",
        smpp_port,
        "gw",
        "secret",
        bind_type=BindType.TRANSCEIVER,
        bind_timeout=5,
        # Short keepalive: the session's own enquire_link must be answered by libsmpp34.
        session=SessionConfig(enquire_link_interval=0.3, response_timeout=3),
    )
    async with EsmeClient(cfg, recorder) as link:
        # osmo-msc 1.9 answers bind_transceiver_resp with an empty system_id (body 0x00).
        assert link.session.peer_system_id == ""
        pong = await link.request(EnquireLink(), timeout=5)
        assert pong.command_id == CommandId.ENQUIRE_LINK_RESP and pong.status == 0

        # Store and forward to a provisioned subscriber who is not attached: accepted, stored.
        stored = await link.request(
            SubmitSm(
                source_addr_ton=1,
                source_addr_npi=1,
                source_addr="77015550001",
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=MSISDN,
                data_coding=8,
                short_message=KAZAKH.encode("utf-16-be"),
            ),
            timeout=5,
        )
        assert stored.command_id == CommandId.SUBMIT_SM_RESP
        assert stored.status == Status.ESME_ROK
        assert getattr(stored, "message_id", "") == "msg_id_not_implemented"

        # Transaction mode needs the subscriber now: not attached -> ESME_RINVDSTADR.
        transaction = await link.request(
            SubmitSm(
                source_addr_ton=1,
                source_addr_npi=1,
                source_addr="77015550001",
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=MSISDN,
                esm_class=EsmClass.TRANSACTION,
                short_message=b"now or never",
            ),
            timeout=5,
        )
        assert transaction.status == Status.ESME_RINVDSTADR
        assert getattr(transaction, "message_id", "") == ""

        # Idle for a while: automatic enquire_links go out and are answered; still bound.
        await asyncio.sleep(1.2)
        assert link.session.bound and not link.closed.done()
        assert lab.output("osmo-msc", 200_000).count("Rx Enquire Link") >= 3, lab.output("osmo-msc")
    assert recorder.closed and recorder.closed[-1][1], recorder.closed  # clean unbind

    # osmo-msc stored the submit_sm in its SMS database, bytes and coding unchanged.
    with contextlib.closing(sqlite3.connect(f"file:{tmp_path}/sms.db?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT dest_addr, data_coding_scheme, user_data, src_addr FROM SMS"
        ).fetchall()
    assert rows == [(MSISDN, 8, KAZAKH.encode("utf-16-be"), "77015550001")], rows

    for system_id, password, status in (
        ("gw", "wrong", Status.ESME_RINVPASWD),
        ("nobody", "secret", Status.ESME_RINVSYSID),
    ):
        bad = EsmeConfig("127.0.0.1", smpp_port, system_id, password, bind_timeout=5)
        with pytest.raises(BindError) as err:
            async with EsmeClient(bad, Recorder()):
                pass
        assert err.value.status == status
