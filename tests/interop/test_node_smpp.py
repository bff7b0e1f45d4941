"""node `smpp` 0.5.1 (npm, written by others) against the project's SMPP stack, both ways.

(a) node as ESME (tests/interop/node/esme.js) against the SimulatedSmsc: bind_transceiver,
    submit_sm of Cyrillic / Kazakh / GSM text, the routed deliver_sm and receipts back.
(b) node as SMSC (tests/interop/node/smsc.js, smpp.createServer) with the project's EsmeClient:
    bind, submit_sm (one answered with the vendor status 0x401, which must arrive unchanged),
    deliver_sm from node answered by the project (statuses must reach node unchanged), and
    an enquire_link from node.
The scripts print JSON lines; the test reads them from the peer's output file.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from _esme import Recorder
from _procs import (
    NODE_DIR,
    Peer,
    Peers,
    await_port,
    free_port,
    require_binary,
    require_node_module,
    wait_for,
)

from smsc.client import EsmeClient, EsmeConfig
from smsc.constants import CommandId, EsmClass, MessageState, Tag
from smsc.link import BindError
from smsc.pdu import AlertNotification, Pdu, SubmitSm, decode_pdu
from smsc.simulator import Account, Route, SimulatedSmsc, SmscConfig
from smsc.text import decode_text, encode_text

pytestmark = pytest.mark.interop

KAZAKH = "Сіздің картаңыз бұғатталды"
RUSSIAN = "Ваша карта заблокирована"
GSM_TEXT = "Card @ 100$ blocked_now"


def _events(peer: Peer) -> list[dict[str, Any]]:
    events = []
    for line in peer.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def _node() -> str:
    node = require_binary("node", package="nodejs")
    require_node_module("smpp")
    return node


async def test_node_esme_against_simulator(peers: Peers) -> None:
    node = _node()
    started = time.monotonic()
    cfg = SmscConfig(
        port=0,
        accounts=[Account(system_id="nodejs", password="njpass")],
        routes=[Route(prefix="7703", account="nodejs")],
        retry_interval=0.2,
    )
    async with SimulatedSmsc(cfg) as smsc:
        peer = peers.start(
            "node-esme",
            [
                node,
                str(NODE_DIR / "esme.js"),
                "127.0.0.1",
                str(smsc.port),
                "nodejs",
                "njpass",
                "77015550001",
                "77039990001",
                "6",
            ],
            cwd=NODE_DIR,
        )
        await wait_for(lambda: peer.proc.poll() is not None, timeout=20, what="node esme.js")
        stored = dict(smsc.messages)
    events = _events(peer)
    assert peer.proc.returncode == 0, peer.describe()
    kinds = [e["event"] for e in events]
    assert kinds[0] == "bind_resp" and events[0]["status"] == 0, events
    assert events[0]["system_id"] == "fraudgate-sim"
    assert kinds[-2:] == ["unbind_resp", "done"] and events[-2]["status"] == 0

    sent = {e["ref"]: e for e in events if e["event"] == "submit_sm"}
    resps = {e["ref"]: e for e in events if e["event"] == "submit_sm_resp"}
    assert set(resps) == {"auto-cyrillic", "ucs2-buffer", "auto-gsm"}
    assert all(r["status"] == 0 for r in resps.values())
    # node picks data_coding itself for JS strings: UCS2 (8) for Cyrillic, 1 for GSM text.
    assert sent["auto-cyrillic"]["data_coding"] == 8
    assert sent["ucs2-buffer"]["data_coding"] == 8
    assert sent["auto-gsm"]["data_coding"] == 1

    # The project's decoder reads what node put on the wire.
    wire: dict[str, SubmitSm] = {}
    for ref, e in sent.items():
        pdu = decode_pdu(bytes.fromhex(e["pdu_hex"]))
        assert isinstance(pdu, SubmitSm), pdu
        wire[ref] = pdu
    assert wire["auto-cyrillic"].short_message == RUSSIAN.encode("utf-16-be")
    assert wire["ucs2-buffer"].short_message == KAZAKH.encode("utf-16-be")
    # node 0.5.1 labels GSM 03.38 bytes as IA5 (data_coding 1): '@' 0x00, '$' 0x02, '_' 0x11.
    assert wire["auto-gsm"].short_message == encode_text(GSM_TEXT, 0)
    assert decode_text(wire["auto-cyrillic"].short_message, 8).text == RUSSIAN
    assert decode_text(wire["ucs2-buffer"].short_message, 8).text == KAZAKH

    # The simulator stored them under the ids node got back, unchanged, and delivered them.
    for ref, resp in resps.items():
        msg = stored[resp["message_id"]]
        assert msg.short_message == wire[ref].short_message
        assert msg.data_coding == sent[ref]["data_coding"]
        assert msg.state == MessageState.DELIVERED

    delivers = [e for e in events if e["event"] == "deliver_sm"]
    routed = [d for d in delivers if not d["esm_class"] & EsmClass.DELIVERY_RECEIPT]
    receipts = [d for d in delivers if d["esm_class"] & EsmClass.DELIVERY_RECEIPT]
    assert len(routed) == 3 and len(receipts) == 3
    # node decodes the project's deliver_sm: UCS2 texts come out exactly.
    assert {d["text"] for d in routed if d["data_coding"] == 8} == {RUSSIAN, KAZAKH}
    assert {d["text"] for d in routed if d["data_coding"] == 1} == {GSM_TEXT}
    assert sorted(r["receipted_message_id"] for r in receipts) == sorted(
        r["message_id"] for r in resps.values()
    )
    for r in receipts:
        assert r["message_state"] == MessageState.DELIVERED
        assert r["text"].startswith(f"id:{r['receipted_message_id']} sub:001 dlvrd:001 ")
        assert " stat:DELIVRD err:000 text:" in r["text"]
    assert time.monotonic() - started < 20


async def test_project_esme_against_node_smsc(peers: Peers) -> None:
    node = _node()
    port = free_port()
    peer = peers.start("node-smsc", [node, str(NODE_DIR / "smsc.js"), str(port)], cwd=NODE_DIR)
    await await_port(port, peer=peer)

    def answer(pdu: Pdu) -> int:
        text = decode_text(getattr(pdu, "short_message", b""), getattr(pdu, "data_coding", 0))
        return 0x402 if "reject" in text.text else 0

    recorder = Recorder(status_for=answer)
    cfg = EsmeConfig("127.0.0.1", port, "fg", "fgpass", bind_timeout=5)
    async with EsmeClient(cfg, recorder) as link:
        ok = await link.request(
            SubmitSm(
                source_addr_ton=1,
                source_addr_npi=1,
                source_addr="77015550001",
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr="77019990001",
                data_coding=8,
                short_message=KAZAKH.encode("utf-16-be"),
            ),
            timeout=5,
        )
        vendor = await link.request(
            SubmitSm(
                source_addr="FraudGate", destination_addr="4011234567", short_message=b"blocked"
            ),
            timeout=5,
        )
        await wait_for(
            lambda: (
                len(recorder.delivers) >= 2
                and sum(e["event"] == "deliver_sm_resp" for e in _events(peer)) >= 2
                and any(e["event"] == "enquire_link_resp" for e in _events(peer))
            ),
            timeout=10,
            what="node's two deliver_sm, their responses and an enquire_link round trip",
            peers=peers,
        )
    await wait_for(
        lambda: any(e["event"] == "unbind" for e in _events(peer)),
        timeout=5,
        what="node to see the unbind",
    )

    assert ok.status == 0 and getattr(ok, "message_id", None) == "node-1"
    assert vendor.command_id == CommandId.SUBMIT_SM_RESP
    assert vendor.status == 0x401  # the vendor status reaches the project's client unchanged
    assert getattr(vendor, "message_id", None) == ""  # node sends no body on error

    events = _events(peer)
    binds = [e for e in events if e["event"] == "bind"]
    assert binds == [{"event": "bind", "system_id": "fg", "status": 0}]
    submits = [e for e in events if e["event"] == "submit_sm"]
    assert submits[0]["text"] == KAZAKH and submits[0]["data_coding"] == 8
    assert submits[1]["destination_addr"] == "4011234567"

    texts = {decode_text(p.short_message, p.data_coding).text for p in recorder.delivers}
    assert texts == {"Сәлем, бұл MO", "please reject me"}
    resp_status = {e["ref"]: e["status"] for e in events if e["event"] == "deliver_sm_resp"}
    assert resp_status == {"mo-ok": 0, "mo-reject": 0x402}  # our statuses reach node unchanged
    assert [e["status"] for e in events if e["event"] == "enquire_link_resp"] == [0]

    # Refused binds come back as BindError with node's exact status.
    for system_id, password, status in (("fg", "wrong", 0x0E), ("who", "fgpass", 0x0F)):
        bad = EsmeConfig("127.0.0.1", port, system_id, password, bind_timeout=5)
        with pytest.raises(BindError) as err:
            async with EsmeClient(bad, Recorder()):
                pass
        assert err.value.status == status


async def test_node_smsc_alert_notification_then_unbind(peers: Peers) -> None:
    """node sends alert_notification (a request with no response) then unbind: the project's
    ESME hands the alert to the application and answers the unbind (nothing left to drain)."""
    node = _node()
    port = free_port()
    peer = peers.start("node-smsc", [node, str(NODE_DIR / "smsc.js"), str(port)], cwd=NODE_DIR)
    await await_port(port, peer=peer)
    recorder = Recorder()
    cfg = EsmeConfig("127.0.0.1", port, "fg", "fgpass", bind_timeout=5)
    async with EsmeClient(cfg, recorder) as link:
        resp = await link.request(
            SubmitSm(destination_addr="9999", short_message=b"bye"), timeout=5
        )
        assert resp.status == 0 and getattr(resp, "message_id", None) == "bye"
        reason, clean = await asyncio.wait_for(asyncio.shield(link.closed), 5)
    assert (reason, clean) == ("unbound by peer", True)
    await wait_for(
        lambda: any(e["event"] == "unbind_resp" for e in _events(peer)),
        timeout=5,
        what="node to receive unbind_resp",
    )
    assert [e["status"] for e in _events(peer) if e["event"] == "unbind_resp"] == [0]
    (alert,) = recorder.notifications
    assert isinstance(alert, AlertNotification)
    assert (alert.source_addr, alert.esme_addr) == ("4900001", "fg")
    assert alert.tlv_int(Tag.MS_AVAILABILITY_STATUS) == 0
    assert recorder.requests == []  # the alert never went to on_request
