"""Kannel 1.4.5 (bearerbox + smsbox) as an ESME against the project's SimulatedSmsc.

Kannel binds to the simulator as transceiver (account `kannel`). Messages sent through Kannel's
HTTP sendsms interface route to a second account bound by the project's own EsmeClient as a
receiver, which decodes them with smsc.text.decode_text. Kannel must see the submit_sm_resp
(access log: Sent SMS with the simulator's message id) and the delivery receipt (DLR callbacks
to a small HTTP listener of the test). A long UCS2 text arrives as UDH parts; a submit refused
0x66 (a fraud verdict) becomes Kannel's DLR 16 and is not retried. MO: `SimulatedSmsc.inject()`
routes to Kannel's account. Kannel is stopped (and unbinds) before the simulator closes.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from _esme import Recorder
from _procs import Peers, await_port, free_ports, require_binary, wait_for

from smsc.client import EsmeClient, EsmeConfig
from smsc.concat import concat_from_udh, parse_udh
from smsc.constants import EsmClass, MessageState, Status
from smsc.session import BindType
from smsc.simulator import Account, Faults, Route, SimulatedSmsc, SmscConfig
from smsc.text import decode_text

pytestmark = pytest.mark.interop

LATIN = "Your card ending 4400 is blocked. Call 1414 (free)."
KAZAKH = "Сіздің картаңыз бұғатталды. Ваша карта заблокирована"
LONG_KAZAKH = (
    "Құрметті клиент! Сіздің картаңыз бұғатталды. Кодты ешкімге айтпаңыз, "
    "банк қызметкерлері оны ешқашан сұрамайды. Сұрақтар болса 1414 нөміріне хабарласыңыз."
)
DEST = "77029990001"
MO_SHORT_CODE = "5555"
BLOCKED_PREFIX = "7709"


def kannel_conf(
    tmp: Path,
    *,
    smsc_port: int,
    admin_port: int,
    smsbox_port: int,
    sendsms_port: int,
) -> str:
    return f"""\
group = core
admin-port = {admin_port}
admin-interface = 127.0.0.1
admin-password = adm
admin-allow-ip = 127.0.0.1
smsbox-port = {smsbox_port}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{tmp}/bearerbox.log"
log-level = 0
access-log = "{tmp}/bearerbox-access.log"
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = sim
host = 127.0.0.1
port = {smsc_port}
transceiver-mode = true
smsc-username = kannel
smsc-password = kpass
system-type = ""
max-pending-submits = 50
enquire-link-interval = 1
reconnect-delay = 1
log-file = "{tmp}/smsc-sim.log"
log-level = 0

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox_port}
sendsms-port = {sendsms_port}
sendsms-interface = 127.0.0.1
log-file = "{tmp}/smsbox.log"
log-level = 0
access-log = "{tmp}/smsbox-access.log"

group = sendsms-user
username = tester
password = foobar
user-allow-ip = 127.0.0.1
max-messages = 5
concatenation = true

group = sms-service
keyword = default
text = ""
max-messages = 0
"""


class DlrListener:
    """A minimal HTTP server collecting the query strings of Kannel's dlr-url callbacks."""

    def __init__(self) -> None:
        self.hits: list[dict[str, str]] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            target = head.split(b" ", 2)[1].decode("latin-1")
            query = urllib.parse.urlsplit(target).query
            self.hits.append(dict(urllib.parse.parse_qsl(query)))
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def _http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


async def test_kannel_esme_mt_dlr_and_mo(tmp_path: Path, peers: Peers) -> None:
    bearerbox = require_binary("bearerbox", package="kannel", candidates=["/usr/sbin/bearerbox"])
    smsbox = require_binary("smsbox", package="kannel", candidates=["/usr/sbin/smsbox"])
    admin_port, smsbox_port, sendsms_port = free_ports(3)
    started = time.monotonic()

    cfg = SmscConfig(
        port=0,
        accounts=[
            # A fraud verdict: submits to 7709... are refused 0x66 (ESME_RX_R_APPN, permanent).
            Account(
                system_id="kannel",
                password="kpass",
                faults=Faults(error_status=Status.ESME_RX_R_APPN, error_prefix=BLOCKED_PREFIX),
            ),
            Account(system_id="recv", password="rpass", bind_types=frozenset({BindType.RECEIVER})),
        ],
        routes=[Route(prefix="7702", account="recv"), Route(MO_SHORT_CODE, account="kannel")],
        retry_interval=0.2,
    )
    dlr = DlrListener()
    await dlr.start()
    recorder = Recorder()
    try:
        async with SimulatedSmsc(cfg) as smsc:
            conf = tmp_path / "kannel.conf"
            conf.write_text(
                kannel_conf(
                    tmp_path,
                    smsc_port=smsc.port,
                    admin_port=admin_port,
                    smsbox_port=smsbox_port,
                    sendsms_port=sendsms_port,
                )
            )
            bb = peers.start("bearerbox", [bearerbox, "-v", "1", str(conf)])
            await await_port(smsbox_port, peer=bb)
            sb = peers.start("smsbox", [smsbox, "-v", "1", str(conf)])
            await await_port(sendsms_port, peer=sb)
            await wait_for(
                lambda: bool(smsc.accounts["kannel"].links),
                timeout=10,
                what="Kannel's transceiver bind to the simulator",
                peers=peers,
            )
            esme_cfg = EsmeConfig(
                "127.0.0.1", smsc.port, "recv", "rpass", bind_type=BindType.RECEIVER
            )
            async with EsmeClient(esme_cfg, recorder):
                await _mt_through_kannel(smsc, recorder, dlr, sendsms_port, tmp_path, peers)
                await _mo_to_kannel(smsc, tmp_path, peers)
            # Kannel ends first, while the simulator still runs: it unbinds its SMPP link.
            kannel_link = smsc.accounts["kannel"].links[0]
            await asyncio.to_thread(peers.stop_all)  # the loop must run: it answers the unbind
            reason, clean = await asyncio.wait_for(asyncio.shield(kannel_link.closed), 5)
            assert (reason, clean) == ("unbound by peer", True)
            # Both boxes ended on SIGTERM by themselves (a missing unbind_resp would hang
            # bearerbox's shutdown until the SIGKILL).
            assert [(p.name, p.proc.returncode) for p in peers.started] == [
                ("bearerbox", 0),
                ("smsbox", 0),
            ]
    finally:
        await dlr.stop()
    assert time.monotonic() - started < 30


async def _mt_through_kannel(
    smsc: SimulatedSmsc,
    recorder: Recorder,
    dlr: DlrListener,
    sendsms_port: int,
    tmp_path: Path,
    peers: Peers,
) -> None:
    def sendsms(ref: str, text: str, to: str = DEST, **extra: str) -> tuple[int, str]:
        dlr_url = f"http://127.0.0.1:{dlr.port}/dlr?ref={ref}&type=%d&fid=%F&reply=%A"
        query = urllib.parse.urlencode(
            {
                "username": "tester",
                "password": "foobar",
                "from": "77015550001",
                "to": to,
                "text": text,
                "dlr-mask": "31",
                "dlr-url": dlr_url,
                **extra,
            }
        )
        return _http_get(f"http://127.0.0.1:{sendsms_port}/cgi-bin/sendsms?{query}")

    status, body = await asyncio.to_thread(sendsms, "latin", LATIN)
    assert status == 202 and "Accepted" in body, (status, body)
    status, body = await asyncio.to_thread(sendsms, "ucs2", KAZAKH, charset="UTF-8", coding="2")
    assert status == 202 and "Accepted" in body, (status, body)

    # A long UCS2 text: Kannel splits it into parts with a concatenation UDH (no DLR asked).
    status, body = await asyncio.to_thread(
        _http_get,
        f"http://127.0.0.1:{sendsms_port}/cgi-bin/sendsms?"
        + urllib.parse.urlencode(
            {
                "username": "tester",
                "password": "foobar",
                "from": "77015550001",
                "to": DEST,
                "text": LONG_KAZAKH,
                "charset": "UTF-8",
                "coding": "2",
            }
        ),
    )
    assert status == 202 and "Accepted" in body, (status, body)

    await wait_for(
        lambda: len(recorder.delivers) >= 5,
        timeout=10,
        what="5 deliver_sm at the receiver",
        peers=peers,
    )
    single = [p for p in recorder.delivers if not p.esm_class & EsmClass.UDHI]
    parts = [p for p in recorder.delivers if p.esm_class & EsmClass.UDHI]
    by_coding = {p.data_coding: p for p in single}
    assert sorted(by_coding) == [0, 8], [(p.data_coding, p.short_message) for p in single]
    latin, ucs2 = by_coding[0], by_coding[8]
    assert decode_text(latin.short_message, 0).text == LATIN
    decoded = decode_text(ucs2.short_message, 8)
    assert decoded.text == KAZAKH and not decoded.errors
    assert ucs2.short_message == KAZAKH.encode("utf-16-be")
    for p in (latin, ucs2):
        assert p.destination_addr == DEST
        assert p.source_addr == "77015550001"
        assert not p.esm_class & EsmClass.DELIVERY_RECEIPT
    assert len(parts) == 3 and all(p.data_coding == 8 for p in parts)
    segments: dict[int, bytes] = {}
    for p in parts:
        elements, payload = parse_udh(p.short_message)
        info = concat_from_udh(elements)
        assert info is not None and info.total == 3 and info.ref_bits == 8, elements
        segments[info.seq] = payload
    assert decode_text(b"".join(segments[i] for i in (1, 2, 3)), 8).text == LONG_KAZAKH

    # What the simulator stored from Kannel's submit_sm: registered_delivery asked, origin kannel.
    from_kannel = [m for m in smsc.messages.values() if m.origin == "kannel"]
    assert len(from_kannel) == 5
    # the last deliver_sm_resp may still be on its way back to the simulator
    await wait_for(
        lambda: all(m.state == MessageState.DELIVERED for m in from_kannel),
        timeout=10,
        what="every message from Kannel DELIVERED",
    )
    with_dlr = [m for m in from_kannel if not m.esm_class & EsmClass.UDHI]
    assert all(m.registered_delivery & 0x01 for m in with_dlr)
    ids = {m.data_coding: m.id for m in with_dlr}

    # DLRs: 8 (SMSC accepted, from the submit_sm_resp) and 1 (delivered, from the receipt).
    await wait_for(
        lambda: (
            {(h.get("ref"), h.get("type")) for h in dlr.hits}
            >= {("latin", "8"), ("latin", "1"), ("ucs2", "8"), ("ucs2", "1")}
        ),
        timeout=10,
        what=f"DLR callbacks types 8 and 1 for both messages (got {dlr.hits})",
        peers=peers,
    )
    for hit in dlr.hits:
        ref = hit["ref"]
        assert hit["fid"] == ids[0 if ref == "latin" else 8], hit

    # Kannel's access log: both messages Sent on smsc `sim` with the simulator's message ids,
    # and the receipts matched (DLR) to them.
    access = _read(tmp_path / "bearerbox-access.log")
    for msg_id in ids.values():
        assert f"Sent SMS [SMSC:sim] [SVC:tester] [ACT:] [BINF:] [FID:{msg_id}]" in access, access
        for dlr_type in (8, 1):
            pattern = (
                rf"Receive DLR \[SMSC:sim\] .*\[FID:{msg_id}\] .*"
                rf"\[flags:-1:-1:-1:-1:{dlr_type}\]"
            )
            assert re.search(pattern, access), (msg_id, dlr_type, access)
    assert re.search(r"\[FID:\w+\] .*\[msg:120:id:\w+ sub:001 dlvrd:001 .*stat:DELIVRD", access)

    # A blocked destination: the simulator answers 0x66; Kannel reports an SMSC reject (DLR 16)
    # carrying the status, and does not retry a permanent refusal.
    rejected_before = smsc.stats.rejected
    status, body = await asyncio.to_thread(sendsms, "blocked", "Send me the code", to="77099990001")
    assert status == 202 and "Accepted" in body, (status, body)
    await wait_for(
        lambda: any(h.get("ref") == "blocked" and h.get("type") == "16" for h in dlr.hits),
        timeout=10,
        what=f"a DLR type 16 (SMSC reject) for the blocked message (got {dlr.hits})",
        peers=peers,
    )
    blocked = next(h for h in dlr.hits if h.get("ref") == "blocked")
    assert "0x00000066" in blocked["reply"], blocked
    await asyncio.sleep(1.5)
    assert smsc.stats.rejected - rejected_before == 1  # refused once, never re-sent
    assert not any(m.dest == "77099990001" for m in smsc.messages.values())
    access = _read(tmp_path / "bearerbox-access.log")
    assert re.search(r"REJECTED Send SMS \[SMSC:sim\] .*\[to:77099990001\]", access), access


async def _mo_to_kannel(smsc: SimulatedSmsc, tmp_path: Path, peers: Peers) -> None:
    good = smsc.inject("77015550001", MO_SHORT_CODE, b"STOP 1414")
    # Kannel refuses a TON 1 (international) source of 7+ characters that are not all digits
    # with 0x0A (a shorter one only gets a warning in its log).
    alpha = smsc.inject("BANKOFKZ", MO_SHORT_CODE, b"hello", source_ton=1)
    await wait_for(
        lambda: good.state != MessageState.ENROUTE and alpha.state != MessageState.ENROUTE,
        timeout=10,
        what="Kannel's deliver_sm_resp to both MO messages",
        peers=peers,
    )
    assert good.state == MessageState.DELIVERED and good.error == 0
    assert alpha.state == MessageState.UNDELIVERABLE
    assert alpha.error == Status.ESME_RINVSRCADR
    # Kannel probes the link every second (enquire-link-interval 1): the simulator answers.
    await wait_for(
        lambda: "type_name: enquire_link_resp" in _read(tmp_path / "smsc-sim.log"),
        timeout=5,
        what="an enquire_link_resp from the simulator in Kannel's SMPP log",
        peers=peers,
    )
    # smsbox got the accepted MO from bearerbox.
    await wait_for(
        lambda: "STOP 1414" in _read(tmp_path / "smsbox-access.log"),
        timeout=5,
        what="the MO text in smsbox's access log",
        peers=peers,
    )
