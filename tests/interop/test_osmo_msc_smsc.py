"""The project's ESME (EsmeClient) against osmo-msc 1.9's built-in SMSC (libsmpp34 inside).

Lab: osmo-hlr 1.5 + osmo-msc 1.9 on 127.0.0.1, as in shared/osmocom/LAB-NOTES.md. The kernel
here has no SCTP, so osmo-msc (whose SGs listener needs SCTP) runs with the LD_PRELOAD shim
built from tests/interop/sctp_shim.c. SMPP and SGs use free ports; the VTY ports (osmo-hlr
4258, osmo-msc 4254), the CTRL ports (4259, 4255) and osmo-hlr's GSUP port 4222 cannot be
configured in these versions: they are bound on 127.0.0.1, checked free first, and a file lock
keeps two such labs from running at once. No virtual phone is attached (SGs phones are a later
issue), so MT messages stay stored in osmo-msc's database.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import re
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _esme import Recorder
from _procs import INTEROP_DIR, Peer, Peers, await_port, free_ports, port_in_use, require_binary

from smsc.client import EsmeClient, EsmeConfig
from smsc.constants import CommandId, EsmClass, Status
from smsc.link import BindError
from smsc.pdu import EnquireLink, SubmitSm
from smsc.session import BindType, SessionConfig

pytestmark = pytest.mark.interop

# osmo-hlr 1.5 / osmo-msc 1.9 open these on fixed ports (telnet_init_dynif ignores a port given
# in `line vty` / `bind`, CTRL and GSUP take no port at all).
HLR_VTY, HLR_CTRL, HLR_GSUP, MSC_VTY, MSC_CTRL = 4258, 4259, 4222, 4254, 4255
FIXED_PORTS = {
    HLR_VTY: "osmo-hlr VTY",
    HLR_CTRL: "osmo-hlr CTRL",
    HLR_GSUP: "osmo-hlr GSUP",
    MSC_VTY: "osmo-msc VTY",
    MSC_CTRL: "osmo-msc CTRL",
}
# VTY answers start with '%' for success too ("% Created subscriber"); these are the errors.
VTY_ERROR = re.compile(
    r"^% (Unknown command|Command incomplete|There is no matched command|Ambiguous command"
    r"|Error|.*[Ff]ail|No such|Cannot|Invalid)",
    re.MULTILINE,
)
IMSI = "001010000000001"
MSISDN = "4900001"
KAZAKH = "Сіздің картаңыз бұғатталды"


@pytest.fixture(scope="session")
def sctp_shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the SCTP->TCP LD_PRELOAD shim once per test session."""
    gcc = require_binary("gcc", package="gcc")
    source = INTEROP_DIR / "sctp_shim.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    out = tmp_path_factory.mktemp("sctp-shim") / f"sctp_shim-{digest}.so"
    result = subprocess.run(
        [gcc, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(out), str(source), "-ldl"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"building the SCTP shim failed:\n{result.stderr}", pytrace=False)
    return out


@contextlib.asynccontextmanager
async def _lab_lock() -> AsyncIterator[None]:
    """One osmo lab at a time on this machine (its VTY, CTRL and GSUP ports are fixed)."""
    path = Path(tempfile.gettempdir()) / "fraudgate-interop-osmo.lock"
    with path.open("w") as fh:
        await asyncio.to_thread(fcntl.flock, fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _check_fixed_ports() -> None:
    busy = {port: what for port, what in FIXED_PORTS.items() if port_in_use(port)}
    if busy:
        owners = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, check=False)
        pytest.fail(
            f"fixed osmocom ports in use on 127.0.0.1: {busy}; stop what holds them:\n"
            f"{owners.stdout}",
            pytrace=False,
        )


def hlr_cfg() -> str:
    return """\
log stderr
 logging filter all 1
 logging color 0
 logging print category 1
 logging level main notice
line vty
 bind 127.0.0.1
ctrl
 bind 127.0.0.1
hlr
 gsup
  bind ip 127.0.0.1
"""


def msc_cfg(tmp: Path, *, smpp_port: int, sgs_port: int) -> str:
    return f"""\
log stderr
 logging filter all 1
 logging color 0
 logging print category 1
 logging level smpp debug
 logging level lsms info
line vty
 no login
 bind 127.0.0.1
ctrl
 bind 127.0.0.1
network
 network country code 1
 mobile network code 1
 authentication optional
 encryption a5 0
msc
 assign-tmsi
 sms-database {tmp}/sms.db
hlr
 remote-ip 127.0.0.1
 remote-port 4222
sgs
 local-ip 127.0.0.1
 local-port {sgs_port}
 vlr-name vlr.example.net
smpp
 local-tcp-ip 127.0.0.1 {smpp_port}
 policy closed
 esme gw
  password secret
  default-route
"""


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


async def test_project_esme_against_osmo_msc(tmp_path: Path, peers: Peers, sctp_shim: Path) -> None:
    osmo_hlr = require_binary("osmo-hlr", package="osmo-hlr")
    osmo_msc = require_binary("osmo-msc", package="osmo-msc")
    started = time.monotonic()
    async with _lab_lock():
        _check_fixed_ports()
        try:
            smpp_port, sgs_port = free_ports(2)
            (tmp_path / "hlr.cfg").write_text(hlr_cfg())
            (tmp_path / "msc.cfg").write_text(
                msc_cfg(tmp_path, smpp_port=smpp_port, sgs_port=sgs_port)
            )
            hlr = peers.start(
                "osmo-hlr",
                [osmo_hlr, "-c", str(tmp_path / "hlr.cfg"), "-l", str(tmp_path / "hlr.db")],
            )
            await await_port(HLR_VTY, peer=hlr)
            await await_port(HLR_GSUP, peer=hlr)
            shown = await vty(
                HLR_VTY,
                [
                    f"subscriber imsi {IMSI} create",
                    f"subscriber imsi {IMSI} update msisdn {MSISDN}",
                    f"show subscriber msisdn {MSISDN}",
                ],
            )
            assert IMSI in shown and MSISDN in shown, shown

            msc = peers.start(
                "osmo-msc",
                [osmo_msc, "-c", str(tmp_path / "msc.cfg")],
                env={"LD_PRELOAD": str(sctp_shim)},
            )
            await await_port(smpp_port, peer=msc)
            await await_port(sgs_port, peer=msc)  # SGs listener up: the shim did its work
            await _esme_session(smpp_port, tmp_path, msc)
            peers.check_alive()
        except BaseException:
            for peer in peers.started:  # shown with the failure (captured stdout)
                print(peer.describe())
            raise
        finally:
            peers.stop_all()  # before the lock is released: the fixed ports are free again
    assert time.monotonic() - started < 20


async def _esme_session(smpp_port: int, tmp_path: Path, msc: Peer) -> None:
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
        assert msc.output(200_000).count("Rx Enquire Link") >= 3, msc.output()
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
