"""smpplib 2.2.4 (a synchronous Python ESME written by others) against the project's SimulatedSmsc.

smpplib binds as transceiver and submits GSM text, UCS2 Kazakh text, a three-part UCS2 message
with a concatenation UDH (smpplib builds the UDH itself) and a two-part one carried by SAR TLVs;
the destination routes back to the same
account, so smpplib receives each message as deliver_sm, then its delivery receipt. smpplib is
blocking: it runs in a worker thread while the SMSC runs on the test's event loop.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import smpplib.client
import smpplib.consts
import smpplib.gsm

from smsc.concat import concat_from_sar, concat_from_udh, parse_udh
from smsc.constants import EsmClass, MessageState, Tag
from smsc.pdu import Tlv
from smsc.simulator import Account, Faults, Route, SimulatedSmsc, SmscConfig
from smsc.text import decode_text

pytestmark = pytest.mark.interop

GSM_TEXT = "Your card 4400 is blocked @ bank {call 1414}"
KAZAKH = "Сіздің картаңыз бұғатталды"
LONG_KAZAKH = (
    "Құрметті клиент! Сіздің картаңыз бұғатталды. Кодты ешкімге айтпаңыз, "
    "банк қызметкерлері оны ешқашан сұрамайды. Сұрақтар болса 1414 нөміріне хабарласыңыз."
)
SAR_TEXT = "Ваша карта заблокирована. Не сообщайте код никому!"
SOURCE = "77015550001"
DEST = "77019990002"


@dataclass
class SmpplibRun:
    bind_status: int = -1
    bind_system_id: bytes = b""
    submits: list[dict[str, Any]] = field(default_factory=list)  # what was sent, with sequence
    resps: list[Any] = field(default_factory=list)  # submit_sm_resp PDUs
    delivers: list[Any] = field(default_factory=list)  # deliver_sm PDUs (messages and receipts)
    unbind_status: int = -1
    error: str = ""


def _drive_smpplib(port: int, messages: list[dict[str, Any]], expect_delivers: int) -> SmpplibRun:
    """Blocking smpplib session: bind, submit, read until every response and deliver_sm came."""
    run = SmpplibRun()
    client = smpplib.client.Client("127.0.0.1", port, timeout=1, allow_unknown_opt_params=True)
    client.set_message_sent_handler(lambda pdu: run.resps.append(pdu))
    client.set_message_received_handler(lambda pdu: run.delivers.append(pdu))  # answers 0
    client.connect()
    try:
        bind = client.bind_transceiver(system_id="smpplib", password="sl-pass")
        run.bind_status = int(bind.status)
        run.bind_system_id = bind.system_id
        for fields in messages:
            pdu = client.send_message(**fields)
            run.submits.append({**fields, "sequence": pdu.sequence})
        deadline = time.monotonic() + 10
        while (len(run.resps) < len(messages) or len(run.delivers) < expect_delivers) and (
            time.monotonic() < deadline
        ):
            client.read_once()
        unbind = client.unbind()
        run.unbind_status = int(unbind.status)
    except Exception as exc:  # reported by the test with what arrived so far
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        client.disconnect()
    return run


def _tlv(tlvs: list[Tlv], tag: int) -> int | None:
    for t in tlvs:
        if t.tag == tag:
            return int.from_bytes(t.value, "big")
    return None


def _submit(short_message: bytes, data_coding: int, esm_class: int = 0) -> dict[str, Any]:
    return {
        "source_addr_ton": smpplib.consts.SMPP_TON_INTL,
        "source_addr_npi": smpplib.consts.SMPP_NPI_ISDN,
        "source_addr": SOURCE,
        "dest_addr_ton": smpplib.consts.SMPP_TON_INTL,
        "dest_addr_npi": smpplib.consts.SMPP_NPI_ISDN,
        "destination_addr": DEST,
        "short_message": short_message,
        "data_coding": data_coding,
        "esm_class": esm_class,
        "registered_delivery": 1,
    }


async def test_smpplib_transceiver_submit_deliver_and_receipts() -> None:
    parts, coding, esm_class = smpplib.gsm.make_parts(LONG_KAZAKH)
    assert coding == smpplib.consts.SMPP_ENCODING_ISO10646 and len(parts) == 3
    assert esm_class == EsmClass.UDHI
    gsm_parts, gsm_coding, _ = smpplib.gsm.make_parts(GSM_TEXT)
    assert gsm_coding == 0 and len(gsm_parts) == 1
    # Concatenation by SAR TLVs instead of a UDH (smpplib encodes the TLVs).
    sar_bodies = [SAR_TEXT[:20].encode("utf-16-be"), SAR_TEXT[20:].encode("utf-16-be")]
    sar = [
        {
            **_submit(body, 8),
            "sar_msg_ref_num": 0x1234,
            "sar_total_segments": 2,
            "sar_segment_seqnum": seq,
        }
        for seq, body in enumerate(sar_bodies, 1)
    ]
    messages = [
        _submit(gsm_parts[0], 0),
        _submit(KAZAKH.encode("utf-16-be"), 8),
        *(_submit(p, 8, esm_class) for p in parts),
        *sar,
    ]

    cfg = SmscConfig(
        port=0,
        accounts=[Account(system_id="smpplib", password="sl-pass")],
        routes=[Route(prefix="7701999", account="smpplib")],
        retry_interval=0.2,
    )
    started = time.monotonic()
    async with SimulatedSmsc(cfg) as smsc:
        run = await asyncio.wait_for(
            asyncio.to_thread(_drive_smpplib, smsc.port, messages, 2 * len(messages)), 20
        )
        stored = dict(smsc.messages)
    assert not run.error, f"smpplib failed: {run.error}; got {len(run.resps)} resps, " + (
        f"{len(run.delivers)} deliver_sm"
    )
    assert time.monotonic() - started < 15
    assert run.bind_status == 0
    assert run.bind_system_id == b"fraudgate-sim"
    assert run.unbind_status == 0

    # submit_sm_resp: status 0, one distinct message id per submit, matched by sequence.
    assert len(run.resps) == len(messages)
    ids_by_seq = {int(r.sequence): r.message_id.decode("ascii") for r in run.resps}
    assert all(int(r.status) == 0 for r in run.resps)
    submit_ids = [ids_by_seq[s["sequence"]] for s in run.submits]
    assert len(set(submit_ids)) == len(submit_ids)
    for sent, msg_id in zip(run.submits, submit_ids, strict=True):
        msg = stored[msg_id]
        assert msg.short_message == sent["short_message"]
        assert msg.data_coding == sent["data_coding"]
        assert msg.state == MessageState.DELIVERED

    routed = [d for d in run.delivers if not int(d.esm_class) & EsmClass.DELIVERY_RECEIPT]
    receipts = [d for d in run.delivers if int(d.esm_class) & EsmClass.DELIVERY_RECEIPT]
    assert len(routed) == len(messages) and len(receipts) == len(messages)

    # The routed deliver_sm carry the submitted bytes unchanged (order may vary).
    got = sorted((bytes(d.short_message), int(d.data_coding), int(d.esm_class)) for d in routed)
    want = sorted((m["short_message"], m["data_coding"], m["esm_class"]) for m in messages)
    assert got == want
    for d in routed:
        assert d.source_addr == SOURCE.encode() and d.destination_addr == DEST.encode()
        assert int(d.source_addr_ton) == 1 and int(d.dest_addr_ton) == 1

    # Text decodes with the project's own decoder, the multipart one after UDH reassembly.
    by_body = {bytes(d.short_message): d for d in routed}
    gsm = decode_text(gsm_parts[0], 0)
    assert gsm.text == GSM_TEXT and not gsm.errors
    assert decode_text(bytes(by_body[KAZAKH.encode("utf-16-be")].short_message), 8).text == KAZAKH
    segments = {}
    for d in routed:
        if int(d.esm_class) & EsmClass.UDHI:
            elements, payload = parse_udh(bytes(d.short_message))
            info = concat_from_udh(elements)
            assert info is not None and info.total == len(parts)
            segments[info.seq] = payload
    joined = b"".join(segments[i] for i in range(1, len(parts) + 1))
    assert decode_text(joined, 8).text == LONG_KAZAKH

    # SAR TLVs: stored by the simulator as sent, and decoded by smpplib from the deliver_sm.
    sar_ids = [ids_by_seq[s["sequence"]] for s in run.submits if "sar_msg_ref_num" in s]
    infos = [
        concat_from_sar(
            _tlv(stored[i].tlvs, Tag.SAR_MSG_REF_NUM),
            _tlv(stored[i].tlvs, Tag.SAR_TOTAL_SEGMENTS),
            _tlv(stored[i].tlvs, Tag.SAR_SEGMENT_SEQNUM),
        )
        for i in sar_ids
    ]
    assert [(i.ref, i.total, i.seq) for i in infos if i] == [(0x1234, 2, 1), (0x1234, 2, 2)]
    sar_delivers = sorted(
        (d for d in routed if d.sar_msg_ref_num is not None), key=lambda d: d.sar_segment_seqnum
    )
    assert [
        (d.sar_msg_ref_num, d.sar_total_segments, d.sar_segment_seqnum) for d in sar_delivers
    ] == [
        (0x1234, 2, 1),
        (0x1234, 2, 2),
    ]
    sar_joined = b"".join(bytes(d.short_message) for d in sar_delivers)
    assert decode_text(sar_joined, 8).text == SAR_TEXT

    # Receipts: back to the submitter, id / receipted_message_id = the submit_sm_resp id.
    for r in receipts:
        text = bytes(r.short_message).decode("latin-1")
        match = re.match(r"id:(\S+) sub:001 dlvrd:001 .* stat:DELIVRD err:000 text:", text)
        assert match, text
        assert match.group(1) in submit_ids
        assert r.receipted_message_id.decode() == match.group(1)
        assert int(r.message_state) == MessageState.DELIVERED
        assert r.source_addr == DEST.encode() and r.destination_addr == SOURCE.encode()
    assert sorted(r.receipted_message_id.decode() for r in receipts) == sorted(submit_ids)


async def test_smpplib_bind_refused_statuses() -> None:
    """smpplib sees the SMSC's bind refusals as exactly 0x0E (password) and 0x0F (system_id)."""
    cfg = SmscConfig(port=0, accounts=[Account(system_id="smpplib", password="sl-pass")])

    def bind(port: int, system_id: str, password: str) -> int:
        client = smpplib.client.Client("127.0.0.1", port, timeout=2, allow_unknown_opt_params=True)
        client.connect()
        try:
            client.bind_transceiver(system_id=system_id, password=password)
        except smpplib.exceptions.PDUError as exc:
            return int(exc.args[1])
        finally:
            client.disconnect()
        return 0

    async with SimulatedSmsc(cfg) as smsc:
        wrong_pw = await asyncio.to_thread(bind, smsc.port, "smpplib", "nope")
        unknown = await asyncio.to_thread(bind, smsc.port, "nobody", "sl-pass")
    assert wrong_pw == 0x0E
    assert unknown == 0x0F


def _submit_statuses(
    port: int, destinations: list[str]
) -> tuple[list[tuple[int, int, bytes]], list[Any]]:
    """Submit one message per destination: (status, command_length, message_id) per response;
    then query_sm the last accepted one: the query_sm_resp PDUs."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=2, allow_unknown_opt_params=True)
    seen: list[tuple[int, int, bytes]] = []
    queries: list[Any] = []

    def record(pdu: Any) -> None:
        seen.append((int(pdu.status), int(pdu.length), bytes(pdu.message_id or b"")))

    client.set_message_sent_handler(record)  # every submit_sm_resp, error statuses included
    client.set_error_pdu_handler(lambda pdu: None)  # by default smpplib raises on an error status
    client.set_query_resp_handler(queries.append)
    client.connect()
    try:
        # transceiver: smpplib 2.2.4 allows query_sm only when bound RX or TRX (SMPP 3.4: TX, TRX)
        client.bind_transceiver(system_id="smpplib", password="sl-pass")
        for dest in destinations:
            client.send_message(source_addr="FraudGate", destination_addr=dest, short_message=b"x")
            client.read_once()
        client.query_message(
            message_id=seen[-1][2].decode(),
            source_addr_ton=0,
            source_addr_npi=0,
            source_addr="FraudGate",
        )
        client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    return seen, queries


async def test_smpplib_sees_exact_submit_statuses() -> None:
    """A vendor status (0x401) and ESME_RINVDSTADR reach smpplib unchanged and bodiless;
    query_sm_resp of a message waiting for its (unbound) receiver decodes in smpplib."""
    cfg = SmscConfig(
        port=0,
        accounts=[
            Account(
                system_id="smpplib",
                password="sl-pass",
                faults=Faults(error_status=0x401, error_prefix="401"),
            ),
            Account(system_id="parked", password="pw"),  # never bound: messages stay stored
        ],
        routes=[Route(prefix="7701", account="parked")],
    )
    async with SimulatedSmsc(cfg) as smsc:
        seen, queries = await asyncio.wait_for(
            asyncio.to_thread(_submit_statuses, smsc.port, ["4011234567", "99999", "77011234567"]),
            10,
        )
    vendor, no_route, ok = seen
    assert vendor == (0x401, 16, b"")  # header only: no message_id body on error (§4.4.2)
    assert no_route == (0x0B, 16, b"")  # ESME_RINVDSTADR: no route for 99999
    assert ok[0] == 0 and ok[2] == b"00000001"
    (query,) = queries
    assert int(query.status) == 0
    assert query.message_id == b"00000001"
    assert int(query.message_state) == MessageState.ENROUTE  # no receiver bound: stored
    assert query.final_date in (b"", None)
    assert int(query.error_code) == 0
