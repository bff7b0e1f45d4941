"""Real SMPP peers nobody here wrote as AGGREGATORS of the A2P proxy (docs/proxy.md), the
simulated SMSC as the operator's SMSC (tests/helpers/proxy_lab.py).

- Kannel 1.4.5 (bearerbox + smsbox, sendsms HTTP, dlr-mask 31) binds as `aggr`: a long Latin and
  a long UCS2 Kazakh text reach the handsets whole, and Kannel matches every receipt to the id
  it got in submit_sm_resp (fraudgate's 32 hex chars, compared as strings: msg-id-type unset).
  Kannel asks a receipt for the first part of a long message only: the proxy passes exactly
  those receipts (the SMSC sends one per part).
- Kannel bound as `aggr` and `kaspi-a2p`: the spoofed sender Kaspi.kz is refused to `aggr`
  (ESME_RINVSRCADR, Kannel's DLR 16) and never reaches the SMSC; `kaspi-a2p` may send it.
- smpplib binds as `aggr`: a three-part UCS2 message with its own UDH; the receipts come back
  on the same transceiver bind with the submit_sm_resp ids.
- node `smpp` binds as `kaspi-a2p` while smpplib is bound as `aggr`: each gets its own receipts.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import smpplib.client
import smpplib.consts
import smpplib.gsm
from _kannel_aggr import KannelAggregator, start_kannel
from _procs import NODE_DIR, Peers, require_binary, require_node_module, wait_for
from test_kannel_esme import DlrListener
from test_node_smpp import _events

from gateway.proxy.journal import SubmitState
from smsc.concat import concat_from_udh, parse_udh
from smsc.constants import EsmClass, MessageState
from smsc.text import decode_text
from tests.helpers.proxy_lab import AGGR, KASPI_AGGR, PASSWORD, ProxyLab, proxy_lab

pytestmark = pytest.mark.interop

DEST = "77021234567"
LONG_LATIN = (
    "Dear customer, your order 5512 has been packed and handed to the courier today. "
    "It will be delivered tomorrow between 10:00 and 14:00 to the address you gave us. "
    "If nobody is at home the courier will call you and leave it at the nearest pickup point "
    "on your street, where it is kept for seven days. Thank you for shopping with us, SHOP."
)
LONG_KAZAKH = (
    "Құрметті клиент! Сіздің №5512 тапсырысыңыз қабылданды және ертең сағат 14:00-ге дейін "
    "жеткізіледі. Жеткізу туралы сұрақтар болса, дүкеннің қолдау қызметіне хабарласыңыз. Рахмет!"
)
KASPI_TEXT = "Kaspi.kz: your payment of 5000 KZT to SHOP was received. Thank you!"
TAXI_TEXT = "Your taxi is arriving in 3 minutes: white Toyota 123ABC02."
HEX32 = re.compile(r"[0-9a-f]{32}")


# ---------------------------------------------------------------------- the handsets' side
def texts_at_phones(lab: ProxyLab) -> list[tuple[str, str, str]]:
    """(source, destination, text) of every message the handsets got, long ones reassembled."""
    whole: list[tuple[str, str, str]] = []
    parts: dict[tuple[str, str, int], dict[int, bytes]] = {}
    totals: dict[tuple[str, str, int], tuple[int, int]] = {}
    for p in lab.phones.received:
        if p.esm_class & EsmClass.DELIVERY_RECEIPT:
            continue
        if not p.esm_class & EsmClass.UDHI:
            whole.append((p.source_addr, p.destination_addr,
                          decode_text(p.short_message, p.data_coding).text))  # fmt: skip
            continue
        elements, payload = parse_udh(p.short_message)
        info = concat_from_udh(elements)
        assert info is not None, elements
        key = (p.source_addr, p.destination_addr, info.ref)
        parts.setdefault(key, {})[info.seq] = payload
        totals[key] = (info.total, p.data_coding)
    for key, got in parts.items():
        total, coding = totals[key]
        if sorted(got) == list(range(1, total + 1)):
            joined = b"".join(got[i] for i in range(1, total + 1))
            whole.append((key[0], key[1], decode_text(joined, coding).text))
    return whole


def parts_at_phones(lab: ProxyLab) -> int:
    return sum(1 for p in lab.phones.received if p.esm_class & EsmClass.UDHI)


SETTLED = (SubmitState.FORWARDED, SubmitState.RECEIPTED)  # at the SMSC (and receipted)


async def journal_rows(lab: ProxyLab, ids: list[str]) -> dict[str, Any]:
    return {r.id: r for r in await lab.proxy.journal.find(ids)}


async def forwarded_rows(lab: ProxyLab, ids: list[str], timeout: float = 5.0) -> dict[str, Any]:
    """The journal rows of `ids` once all are "forwarded" (the journal writes a state change
    after the SMSC's answer, in its next group commit); as they are after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await journal_rows(lab, ids)
        done = all(r.state in SETTLED for r in rows.values())
        if (done and len(rows) == len(ids)) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------------- Kannel
def _bound(lab: ProxyLab, *accounts: str) -> Any:
    return lambda: all(
        any(x.session.bound for x in lab.proxy.inbound.links.get(a, [])) for a in accounts
    )


async def _stop_kannel(peers: Peers) -> None:
    await asyncio.to_thread(peers.stop_all)  # the loop must run: the proxy answers the unbinds


async def test_kannel_long_latin_and_kazakh_through_the_proxy_with_receipts(
    tmp_path: Path, peers: Peers
) -> None:
    started = time.monotonic()
    dlr = DlrListener()
    await dlr.start()
    try:
        async with proxy_lab(tmp_path) as lab:
            kannel = await start_kannel(tmp_path, peers, lab.proxy.port, {AGGR: PASSWORD}, dlr,
                                        _bound(lab, AGGR))  # fmt: skip
            await kannel.send(AGGR, "latin", "SHOP", DEST, LONG_LATIN)
            await kannel.send(AGGR, "kazakh", "SHOP", DEST, LONG_KAZAKH,
                              charset="UTF-8", coding="2")  # fmt: skip
            await wait_for(
                lambda: len(texts_at_phones(lab)) == 2, timeout=10, peers=peers,
                what=f"both long messages at the handsets (got {texts_at_phones(lab)})",
            )  # fmt: skip
            await wait_for(
                lambda: all(kannel.hits(ref, "1") for ref in ("latin", "kazakh")),
                timeout=10, peers=peers,
                what=f"Kannel's DLR type 1 for both messages (got {dlr.hits})",
            )  # fmt: skip
            await _check_kannel_ids(lab, kannel)
            assert lab.proxy.stats.refused_spoof == lab.proxy.stats.refused_block == 0
            await _stop_kannel(peers)
    finally:
        await dlr.stop()
    assert time.monotonic() - started < 20


async def _check_kannel_ids(lab: ProxyLab, kannel: KannelAggregator) -> None:
    got = sorted(texts_at_phones(lab))
    assert got == sorted([("SHOP", DEST, LONG_LATIN), ("SHOP", DEST, LONG_KAZAKH)]), got
    ucs2 = [p for p in lab.phones.received if p.data_coding == 8]
    assert ucs2 and all(p.esm_class & EsmClass.UDHI for p in ucs2)
    n_parts = parts_at_phones(lab)
    assert n_parts == 6, n_parts  # 3 + 3 parts, each its own submit_sm

    # The ids Kannel got in submit_sm_resp: one per part, fraudgate's 32 hex (not the SMSC's).
    ids = kannel.resp_ids(AGGR)
    assert len(ids) == n_parts and len(set(ids)) == n_parts, ids
    assert all(HEX32.fullmatch(i) for i in ids), ids
    assert not set(ids) & set(lab.smsc.messages)
    rows = await forwarded_rows(lab, ids)
    assert sorted(rows) == sorted(ids)
    for row in rows.values():  # forwarded, mapped to a message the SMSC delivered
        assert row.account == AGGR and row.state in SETTLED, row
        assert row.smsc_id in lab.smsc.messages and row.smsc_id != row.id
        assert lab.smsc.messages[row.smsc_id].state == MessageState.DELIVERED
    assert lab.at_smsc == n_parts

    # Kannel 1.4.5 asks a receipt for the first part of a long message only (registered_delivery
    # 0x11 on part 1, 0 on the others) and keys the message's DLR by that part's id.
    firsts = sorted(i for i in ids if rows[i].part == 1)
    assert len(firsts) == 2
    assert all(rows[i].receipt & 0x01 for i in firsts)
    assert all(rows[i].receipt == 0 for i in ids if i not in firsts)
    sent = kannel.sent()
    assert sorted(fid for _, fid, _ in sent) == firsts, sent

    # The receipts the proxy passed to Kannel: exactly those asked for, each naming the id
    # Kannel got for that part (looked up in its DLR store, found, DLR type 1 = delivered).
    assert sorted(kannel.dlr_lookups(AGGR)) == [(i, 1) for i in firsts]
    assert lab.proxy.forwarder.stats.receipts == n_parts
    assert lab.proxy.forwarder.stats.receipts_passed == 2
    finals = [r for r in kannel.receipts() if r[2] == 1]
    assert sorted(fid for _, fid, _, _ in finals) == firsts, kannel.receipts()
    for smsc, fid, _, text in finals:
        assert smsc == AGGR
        assert text.startswith(f"id:{fid} ") and "stat:DELIVRD" in text, text
    # Kannel's DLR callbacks: 8 (the SMSC took it) then 1 (delivered), by the first part's id.
    for ref in ("latin", "kazakh"):
        assert sorted(h["type"] for h in kannel.hits(ref)) == ["1", "8"], kannel.hits(ref)
        (fid,) = {h["fid"] for h in kannel.hits(ref)}
        assert fid in firsts and all(h["smsc"] == AGGR for h in kannel.hits(ref))
        assert kannel.hits(ref, "1")[0]["reply"].startswith(f"id:{fid} sub:001 dlvrd:001 ")
    assert {h["fid"] for h in kannel.dlr.hits} == set(firsts)


async def test_kannel_spoofed_sender_refused_for_aggr_allowed_for_kaspi(
    tmp_path: Path, peers: Peers
) -> None:
    started = time.monotonic()
    dlr = DlrListener()
    await dlr.start()
    accounts = {AGGR: PASSWORD, KASPI_AGGR: PASSWORD}
    try:
        async with proxy_lab(tmp_path) as lab:
            kannel = await start_kannel(tmp_path, peers, lab.proxy.port, accounts, dlr,
                                        _bound(lab, *accounts))  # fmt: skip
            await kannel.send(AGGR, "spoof", "Kaspi.kz", DEST, KASPI_TEXT)
            await wait_for(
                lambda: kannel.hits("spoof"), timeout=10, peers=peers,
                what="Kannel's DLR for the spoofed submit",
            )  # fmt: skip
            await asyncio.sleep(1.0)  # a retry or a late forward would show now
            (refused,) = kannel.hits("spoof")
            assert refused["type"] == "16" and refused["smsc"] == AGGR, refused
            assert "0x0000000a" in refused["reply"].lower(), refused  # ESME_RINVSRCADR
            assert re.search(rf"REJECTED Send SMS \[SMSC:{AGGR}\] .*\[from:Kaspi\.kz\]",
                             kannel.access_log()), kannel.access_log()  # fmt: skip
            assert lab.at_smsc == 0 and lab.phones.received == []
            assert lab.proxy.stats.refused_spoof == 1

            await kannel.send(KASPI_AGGR, "kaspi", "Kaspi.kz", DEST, KASPI_TEXT)
            await wait_for(
                lambda: kannel.hits("kaspi", "1"), timeout=10, peers=peers,
                what=f"Kannel's DLR 1 for the Kaspi message (got {dlr.hits})",
            )  # fmt: skip
            assert texts_at_phones(lab) == [("Kaspi.kz", DEST, KASPI_TEXT)]
            assert lab.at_smsc == 1
            ((smsc, fid, _),) = kannel.sent()
            assert smsc == KASPI_AGGR and HEX32.fullmatch(fid)
            assert [h["fid"] for h in kannel.hits("kaspi", "1")] == [fid]
            assert (await journal_rows(lab, [fid]))[fid].account == KASPI_AGGR
            assert lab.proxy.stats.refused_spoof == 1
            await _stop_kannel(peers)
    finally:
        await dlr.stop()
    assert time.monotonic() - started < 20


# ---------------------------------------------------------------------- smpplib
@dataclass
class SmpplibRun:
    bind_status: int = -1
    sequences: list[int] = field(default_factory=list)
    resps: dict[int, Any] = field(default_factory=dict)  # submit_sm_resp by sequence
    delivers: list[Any] = field(default_factory=list)
    error: str = ""
    bound: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)


def _smpplib_submit(source: str, body: bytes, coding: int, esm_class: int) -> dict[str, Any]:
    return {
        "source_addr_ton": smpplib.consts.SMPP_TON_ALNUM,
        "source_addr_npi": smpplib.consts.SMPP_NPI_UNK,
        "source_addr": source,
        "dest_addr_ton": smpplib.consts.SMPP_TON_INTL,
        "dest_addr_npi": smpplib.consts.SMPP_NPI_ISDN,
        "destination_addr": DEST,
        "short_message": body,
        "data_coding": coding,
        "esm_class": esm_class,
        "registered_delivery": 1,
    }


def _drive_smpplib(run: SmpplibRun, port: int, messages: list[dict[str, Any]]) -> None:
    """Bind as `aggr` (transceiver), wait for `go`, submit, read until every response and a
    receipt per submit came (10 s at most), unbind."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=1, allow_unknown_opt_params=True)
    client.set_message_sent_handler(lambda pdu: run.resps.__setitem__(int(pdu.sequence), pdu))
    client.set_message_received_handler(lambda pdu: run.delivers.append(pdu))  # answered 0
    client.connect()
    try:
        run.bind_status = int(client.bind_transceiver(system_id=AGGR, password=PASSWORD).status)
        run.bound.set()
        run.go.wait(10)
        for fields in messages:
            run.sequences.append(int(client.send_message(**fields).sequence))
        deadline = time.monotonic() + 10
        while (len(run.resps) < len(messages) or len(run.delivers) < len(messages)) and (
            time.monotonic() < deadline
        ):
            client.read_once()
        client.unbind()
    except Exception as exc:  # reported by the test with what arrived so far
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        run.bound.set()
        client.disconnect()


def _receipt_ids(delivers: list[Any]) -> list[tuple[str, str, int]]:
    """(receipted_message_id TLV, the `id:` of the text, message_state) of each receipt."""
    out = []
    for d in delivers:
        assert int(d.esm_class) & EsmClass.DELIVERY_RECEIPT, d.short_message
        text = bytes(d.short_message).decode("latin-1")
        match = re.match(r"id:(\S+) sub:001 dlvrd:001 .* stat:DELIVRD err:000", text)
        assert match, text
        out.append((d.receipted_message_id.decode(), match.group(1), int(d.message_state)))
    return out


async def test_smpplib_ucs2_multipart_with_udh_and_its_receipts(tmp_path: Path) -> None:
    started = time.monotonic()
    parts, coding, esm_class = smpplib.gsm.make_parts(LONG_KAZAKH)
    assert coding == smpplib.consts.SMPP_ENCODING_ISO10646 and len(parts) == 3
    assert esm_class & EsmClass.UDHI
    messages = [_smpplib_submit("SHOP", p, coding, esm_class) for p in parts]
    run = SmpplibRun()
    run.go.set()
    async with proxy_lab(tmp_path) as lab:
        await asyncio.wait_for(asyncio.to_thread(_drive_smpplib, run, lab.proxy.port, messages),
                               20)  # fmt: skip
        assert not run.error, f"smpplib: {run.error}; {len(run.resps)} resps, {run.delivers}"
        assert texts_at_phones(lab) == [("SHOP", DEST, LONG_KAZAKH)]
        ids = [run.resps[s].message_id.decode("ascii") for s in run.sequences]
        rows = await forwarded_rows(lab, ids)
    assert run.bind_status == 0
    assert all(int(r.status) == 0 for r in run.resps.values())
    assert len(set(ids)) == 3 and all(HEX32.fullmatch(i) for i in ids), ids
    # One receipt per part, on the same bind, each naming one of the ids smpplib was given.
    receipts = _receipt_ids(run.delivers)
    assert sorted(tlv for tlv, _, _ in receipts) == sorted(ids)
    assert all(tlv == text_id and state == MessageState.DELIVERED
               for tlv, text_id, state in receipts)  # fmt: skip
    for d in run.delivers:
        assert d.source_addr == DEST.encode() and d.destination_addr == b"SHOP"
    assert sorted(rows) == sorted(ids)
    assert [rows[i].part for i in ids] == [1, 2, 3]
    assert all(r.state in SETTLED and r.smsc_id != r.id for r in rows.values())
    assert time.monotonic() - started < 20


# ---------------------------------------------------------------------- node + smpplib at once
async def test_node_and_smpplib_bound_together_each_get_their_own_receipts(
    tmp_path: Path, peers: Peers
) -> None:
    started = time.monotonic()
    node = require_binary("node", package="nodejs")
    require_node_module("smpp")
    run = SmpplibRun()
    gsm, coding, _ = smpplib.gsm.make_parts(TAXI_TEXT)
    async with proxy_lab(tmp_path) as lab:
        worker = asyncio.create_task(asyncio.to_thread(
            _drive_smpplib, run, lab.proxy.port, [_smpplib_submit("Taxi", gsm[0], coding, 0)]
        ))  # fmt: skip
        await asyncio.to_thread(run.bound.wait, 10)
        assert run.bind_status == 0, run.error
        # node binds as kaspi-a2p while smpplib is bound as aggr; both submit at once
        peer = peers.start(
            "node-esme",
            [node, str(NODE_DIR / "esme.js"), "127.0.0.1", str(lab.proxy.port), KASPI_AGGR,
             PASSWORD, "77015550001", "77029990001", "3"],
            cwd=NODE_DIR,
        )  # fmt: skip
        await wait_for(_bound(lab, AGGR, KASPI_AGGR), timeout=10, peers=peers,
                       what="node's and smpplib's binds at the same time")  # fmt: skip
        run.go.set()
        await wait_for(lambda: peer.proc.poll() is not None, timeout=15, what="node esme.js")
        await asyncio.wait_for(worker, 15)
        stored = dict(lab.smsc.messages)
        node_rows_ids = [e["message_id"] for e in _events(peer) if e["event"] == "submit_sm_resp"]
        rows = await forwarded_rows(lab, node_rows_ids)
        at_phones = texts_at_phones(lab)
    assert peer.proc.returncode == 0, peer.describe()
    assert not run.error, f"smpplib: {run.error}; {len(run.resps)} resps, {run.delivers}"

    events = _events(peer)
    assert events[0]["event"] == "bind_resp" and events[0]["status"] == 0, events
    assert events[0]["system_id"] == "fraudgate"
    resps = [e for e in events if e["event"] == "submit_sm_resp"]
    node_ids = [e["message_id"] for e in resps]
    assert len(resps) == 3 and all(e["status"] == 0 for e in resps), resps
    assert all(HEX32.fullmatch(i) for i in node_ids), node_ids
    # node's submits reached the SMSC (journal rows of kaspi-a2p, forwarded, stored there)
    assert sorted(rows) == sorted(node_ids)
    for row in rows.values():
        assert row.account == KASPI_AGGR and row.state in SETTLED
        assert stored[row.smsc_id].state == MessageState.DELIVERED
    assert len(at_phones) == 4 and ("Taxi", DEST, TAXI_TEXT) in at_phones
    assert sum(src == "77015550001" for src, _, _ in at_phones) == 3

    # node's receipts came to node, with its ids; smpplib's to smpplib, with its id only.
    node_receipts = [e for e in events if e["event"] == "deliver_sm"]
    assert all(e["esm_class"] & EsmClass.DELIVERY_RECEIPT for e in node_receipts)
    assert sorted(e["receipted_message_id"] for e in node_receipts) == sorted(node_ids)
    for e in node_receipts:
        assert e["text"].startswith(f"id:{e['receipted_message_id']} ")
        assert e["message_state"] == MessageState.DELIVERED
    (smpplib_id,) = [r.message_id.decode() for r in run.resps.values()]
    assert [(tlv, text) for tlv, text, _ in _receipt_ids(run.delivers)] == [
        (smpplib_id, smpplib_id)
    ]
    assert smpplib_id not in node_ids
    assert time.monotonic() - started < 20
