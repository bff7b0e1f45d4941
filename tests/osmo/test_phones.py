"""Virtual phones over SGs against the real osmo-hlr 1.5 + osmo-msc 1.9 (the `osmo_lab` lab).

Everything asserted here was first observed on this lab; the facts the gateway's design rests on
(deliver_sm of smpp-first, what the phone gets for each deliver_sm_resp status, the delivery
receipt, what blocking does to an attached phone) are pinned down byte for byte.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import ClassVar

import pytest
from _esme import Recorder
from conftest import OsmoLab
from waiting import eventually

from gateway.osmocom.ctrl import CtrlClient
from gateway.osmocom.vty import VtyClient
from simulators.osmo.lab import Lab
from simulators.osmo.mme import MmeError, Phone, VirtualMme, shim_framing
from simulators.osmo.nas import CpType, RpError, decode_cp, decode_rp
from simulators.osmo.provision import LabSubscriber, provision
from simulators.osmo.sgsap import Iei, Lai, MsgType
from smsc.client import EsmeClient, EsmeConfig
from smsc.link import Link
from smsc.pdu import DeliverSm, DeliverSmResp, Pdu, SubmitSm, Tlv
from smsc.session import BindType, SessionConfig

pytestmark = pytest.mark.interop

ALICE = ("001010000000001", "4900001")
BOB = ("001010000000002", "4900002")
RUSSIAN = "Ваша карта заблокирована, позвоните в банк"
KAZAKH_LONG = "Құрметті клиент! Сіздің картаңыз уақытша бұғатталды. " * 3  # 159 chars: 3 parts
USER_MESSAGE_REFERENCE = 0x0204  # SMPP 3.4 §5.3.2.17


async def _provision(lab: Lab, *subs: tuple[str, str]) -> None:
    async with CtrlClient(lab.cfg.host, lab.hlr_ctrl) as ctrl:
        await provision(ctrl, [LabSubscriber(imsi, msisdn) for imsi, msisdn in subs])


async def _hlr_set(lab: Lab, imsi: str, field: str, value: str) -> None:
    async with CtrlClient(lab.cfg.host, lab.hlr_ctrl) as ctrl:
        await ctrl.set(f"subscriber.by-imsi-{imsi}.{field}", value)


def _mme(lab: Lab) -> VirtualMme:
    """Length-framed uplink (the lab's shim); paced framing: tests/osmo/test_shim_framing.py."""
    return VirtualMme(lab.cfg.host, lab.cfg.sgs_port, framing=shim_framing(lab.shim))


def _kinds(phone: Phone) -> list[str]:
    return [e.kind for e in phone.events]


class _DeliverSmRespWithBody(DeliverSmResp):
    """deliver_sm_resp that always carries its body (message_id NUL). SMPP 3.4 lets an error
    response go without one, and smsc.pdu does so, but osmo-msc's libsmpp34 then fails
    ("len(message_id):1(Value length exceed buffer length)") and drops the response."""

    _OPTIONAL_BODY: ClassVar[bool] = False


class _Esme(Recorder):
    def on_request(self, link: Link, pdu: Pdu) -> None:
        self.requests.append(pdu)
        status = self.status if self.status_for is None else self.status_for(pdu)
        link.respond(_DeliverSmRespWithBody(sequence=pdu.sequence, status=status))


def _esme_config(lab: Lab) -> EsmeConfig:
    cfg = lab.cfg
    return EsmeConfig(
        cfg.host,
        cfg.smpp_port,
        cfg.esme_system_id,
        cfg.esme_password,
        bind_type=BindType.TRANSCEIVER,
        bind_timeout=5,
        session=SessionConfig(response_timeout=5),
    )


# --------------------------------------------------------------------------------------------


async def test_attach_reject_detach(osmo_lab: OsmoLab) -> None:
    lab = await osmo_lab()
    await _provision(lab, ALICE)
    async with _mme(lab) as mme:
        alice = mme.phone(*ALICE)
        first = await alice.attach()
        assert first.accepted and first.tmsi is not None and first.lai == Lai("001", "01", 1)
        sent = [m.type for _, d, m in mme.trace if d == "tx"]
        assert sent == [MsgType.LOCATION_UPDATE_REQ, MsgType.TMSI_REALLOC_COMPLETE]

        # Not in the HLR: LOCATION-UPDATE-REJECT, reject cause 3 (osmo-msc puts its SGs cause
        # "IMSI unknown" there for every rejection), with the LAI.
        stranger = mme.phone("001010000000099")
        rejected = await stranger.attach()
        assert (rejected.accepted, rejected.cause) == (False, 3)
        assert _kinds(stranger) == ["attach-rejected"]

        await alice.detach()
        assert not alice.attached and _kinds(alice)[-1] == "detached"
        # Detached: the VLR forgot the subscriber, so an uplink gets RELEASE-REQUEST with SGs
        # cause 3 (IMSI unknown) at once, no CP-ACK.
        [result] = await alice.send_sms(BOB[1], RUSSIAN, timeout=3)
        assert (result.outcome, result.sgs_cause) == ("released", 3)
        again = await alice.attach()
        assert again.accepted and again.tmsi != first.tmsi


async def test_sms_between_phones_reassembled_with_status_report(osmo_lab: OsmoLab) -> None:
    """No smpp-first: osmo-msc stores the MO SMS, pages the receiver and delivers it itself."""
    lab = await osmo_lab()
    await _provision(lab, ALICE, BOB)
    async with _mme(lab) as mme:
        alice, bob = mme.phone(*ALICE), mme.phone(*BOB)
        assert (await alice.attach()).accepted and (await bob.attach()).accepted

        [single] = await alice.send_sms(BOB[1], RUSSIAN, status_report=True)
        assert single.ok and single.parts == 1
        got = await bob.next_sms(10)
        assert (got.originator, got.text, got.dcs, len(got.parts)) == (ALICE[1], RUSSIAN, 8, 1)
        assert got.status_report_indication  # TP-SRI: the sender asked for a report
        assert "paged" in _kinds(bob)
        report = await alice.next_report(10)  # osmo-msc sends SMS-STATUS-REPORT itself
        assert (report.reference, report.status) == (single.tp_mr, 0)
        assert report.recipient.number == BOB[1]

        parts = await alice.send_sms(BOB[1], KAZAKH_LONG)
        assert [r.outcome for r in parts] == ["ack"] * 3
        assert [r.tp_mr for r in parts] == [single.tp_mr + 1 + i for i in range(3)]
        long = await bob.next_sms(10)
        assert long.text == KAZAKH_LONG and len(long.parts) == 3 and long.concat_ref is not None
        assert [p.concat.seq for p in long.parts if p.concat] == [1, 2, 3]

        [gsm7] = await alice.send_sms(BOB[1], "Code {42} costs 5€ @ bank")
        assert gsm7.ok
        plain = await bob.next_sms(10)
        assert (plain.text, plain.dcs) == ("Code {42} costs 5€ @ bank", 0)
        assert bob.inbox.empty() and alice.reports.empty()


async def test_phone_refusing_mt_with_memory_full(osmo_lab: OsmoLab) -> None:
    lab = await osmo_lab()
    await _provision(lab, ALICE, BOB)
    async with _mme(lab) as mme:
        alice, bob = mme.phone(*ALICE), mme.phone(*BOB)
        await alice.attach()
        await bob.attach()
        bob.mt_rp_error = 22  # memory capacity exceeded
        [sent] = await alice.send_sms(BOB[1], RUSSIAN)
        assert sent.ok  # store and forward: the sender's RP-ACK does not wait for delivery
        await eventually(lambda: "sms-refused" in _kinds(bob))
        assert bob.inbox.empty()
        answers = [
            decode_cp(m.require(Iei.NAS_CONTAINER))
            for _, d, m in mme.trace
            if d == "tx" and m.type == MsgType.UPLINK_UNITDATA and m.imsi == BOB[0]
        ]
        rps = [decode_rp(cp.user_data) for cp in answers if cp.type == CpType.DATA]
        assert [rp.cause for rp in rps if isinstance(rp, RpError)] == [22]


async def test_msc_closing_fails_waiting_phone_quickly(osmo_lab: OsmoLab) -> None:
    lab = await osmo_lab()
    await _provision(lab, ALICE)
    async with _mme(lab) as mme:
        alice = mme.phone(*ALICE)
        await alice.attach()
        waiting = asyncio.create_task(alice.next_sms(timeout=60))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await lab.stop()
        with pytest.raises(MmeError, match="closed the SGs connection"):
            await asyncio.wait_for(waiting, 2)
        assert time.monotonic() - started < 7  # lab.stop() itself included
        assert mme.closed
        with pytest.raises(MmeError):
            await alice.attach()
        with pytest.raises(MmeError):
            await alice.send_sms(BOB[1], "нет связи")


async def test_esme_submit_sm_pages_phone_and_gets_receipt(osmo_lab: OsmoLab) -> None:
    lab = await osmo_lab()
    await _provision(lab, BOB)
    esme = _Esme()
    async with EsmeClient(_esme_config(lab), esme) as link, _mme(lab) as mme:
        bob = mme.phone(*BOB)
        await bob.attach()
        text = "Сіздің картаңыз бұғатталды"
        resp = await link.request(
            SubmitSm(
                source_addr_ton=1,
                source_addr_npi=1,
                source_addr="77015550001",
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=BOB[1],
                data_coding=8,
                registered_delivery=1,
                short_message=text.encode("utf-16-be"),
                tlvs=[Tlv(USER_MESSAGE_REFERENCE, b"\x12\x34")],
            ),
            timeout=5,
        )
        assert resp.status == 0 and getattr(resp, "message_id", "") == "msg_id_not_implemented"
        got = await bob.next_sms(10)
        assert (got.originator, got.text) == ("+77015550001", text)
        assert got.status_report_indication  # registered_delivery 1 -> TP-SRI set
        assert _kinds(bob)[1:3] == ["paged", "sms-received"]

        await eventually(lambda: any(d.esm_class == 0x04 for d in esme.delivers))
        [receipt] = [d for d in esme.delivers if d.esm_class == 0x04]
    assert (receipt.source_addr_ton, receipt.source_addr_npi, receipt.source_addr) == (3, 1, BOB[1])
    assert (receipt.dest_addr_ton, receipt.dest_addr_npi, receipt.destination_addr) == (
        1,
        1,
        "77015550001",
    )
    assert (receipt.service_type, receipt.data_coding, receipt.registered_delivery) == ("CMT", 2, 0)
    # The id is osmo-msc's SMS database id, the dates are literal placeholders, and the only
    # correlation handle is user_message_reference cut to the 8-bit TP-MR: 0x1234 -> 0x0034.
    assert re.fullmatch(
        rb"id:\d{8} sub:000 dlvrd:000 submit date:YYMMDDhhmm done date:YYMMDDhhmm "
        rb"stat:DELIVRD err:000 text:",
        receipt.short_message,
    ), receipt.short_message
    assert receipt.tlvs == [Tlv(USER_MESSAGE_REFERENCE, b"\x00\x34")]


async def test_smpp_first_deliver_sm_and_response_statuses(osmo_lab: OsmoLab) -> None:
    lab = await osmo_lab(smpp_first=True)
    await _provision(lab, ALICE, BOB)
    statuses = {0: 0, 1: 0x66, 2: 0x14, 3: 0x64, 4: 0x08, 5: 0x0A, 6: 0x0B, 7: 0x45}
    esme = _Esme(status_for=lambda pdu: statuses.get(len(esme.delivers) - 1, 0))
    async with EsmeClient(_esme_config(lab), esme), _mme(lab) as mme:
        alice, bob = mme.phone(*ALICE), mme.phone(*BOB)
        await alice.attach()
        await bob.attach()
        results = [(await alice.send_sms(BOB[1], "Hello"))[0] for _ in statuses]
        # deliver_sm_resp command_status -> what the phone gets.
        assert [(r.outcome, r.rp_cause) for r in results] == [
            ("ack", None),
            ("error", 38),  # 0x66 (ESME_RX_R_APPN)
            ("error", 42),  # 0x14 (ESME_RMSGQFUL)
            ("error", 38),  # 0x64
            ("error", 27),  # 0x08 (ESME_RSYSERR)
            ("error", 21),  # 0x0a (ESME_RINVSRCADR)
            ("error", 1),  # 0x0b (ESME_RINVDSTADR)
            ("error", 38),  # 0x45 (ESME_RSUBMITFAIL)
        ]
        await alice.send_sms("+" + BOB[1], "Сәлем, достым!", status_report=True)
        await alice.send_sms(BOB[1], KAZAKH_LONG)
        await alice.send_sms(BOB[1], "@£$¥è_{€}")
        with pytest.raises(TimeoutError):  # smpp-first: osmo-msc delivers nothing itself
            await bob.next_sms(1.5)

    delivers: list[DeliverSm] = esme.delivers
    assert len(delivers) == len(statuses) + 5
    for d in delivers:
        assert (d.service_type, d.source_addr_ton, d.source_addr_npi, d.source_addr) == (
            "CMT",
            3,
            1,
            ALICE[1],
        )
        assert (d.dest_addr_npi, d.destination_addr, d.protocol_id) == (1, BOB[1], 0)
        assert d.tlv(USER_MESSAGE_REFERENCE) is not None  # a counter of osmo-msc, not TP-MR
    hello, ucs2, *parts, gsm = delivers[0], *delivers[len(statuses) :]
    # GSM 7-bit: unpacked septets of the GSM default alphabet, but labelled data_coding 1.
    assert (hello.esm_class, hello.data_coding, hello.short_message) == (1, 1, b"Hello")
    assert (hello.dest_addr_ton, hello.registered_delivery) == (0, 0)
    assert gsm.short_message == bytes.fromhex("0001020304111b281b651b29")  # @£$¥è_{€}
    # "+" in TP-DA -> TON 1; TP-SRR -> registered_delivery 1; UCS2 -> data_coding 8.
    assert (ucs2.dest_addr_ton, ucs2.registered_delivery, ucs2.data_coding) == (1, 1, 8)
    assert ucs2.short_message == "Сәлем, достым!".encode("utf-16-be")
    # Concatenated: esm_class 0x41 (UDHI), the UDH (IEI 0x00, 8-bit ref) kept in short_message.
    assert [(p.esm_class, p.data_coding) for p in parts] == [(0x41, 8)] * 3
    udhs = [p.short_message[:6] for p in parts]
    assert [u[:4] for u in udhs] == [bytes((5, 0, 3, udhs[0][3]))] * 3
    assert [u[4:] for u in udhs] == [bytes((3, seq)) for seq in (1, 2, 3)]
    text = b"".join(p.short_message[6:] for p in parts).decode("utf-16-be")
    assert text == KAZAKH_LONG


async def test_blocking_an_attached_phone(osmo_lab: OsmoLab) -> None:
    """HLR `cs-enabled 0` alone changes nothing for an attached phone; with osmo-msc's
    `subscriber imsi X expire` its next uplink is released and its attach rejected."""
    lab = await osmo_lab()
    await _provision(lab, ALICE, BOB)
    imsi = ALICE[0]
    async with _mme(lab) as mme:
        alice, bob = mme.phone(*ALICE), mme.phone(*BOB)
        await alice.attach()
        await bob.attach()
        await _hlr_set(lab, imsi, "cs-enabled", "0")
        [still] = await alice.send_sms(BOB[1], "до блокировки")
        assert still.ok
        assert (await bob.next_sms(10)).text == "до блокировки"

        before = len(mme.trace)
        async with VtyClient(lab.cfg.host, lab.msc_vty) as vty:
            out = await vty.command(f"subscriber imsi {imsi} expire", check=False)
        assert out.startswith(f"% VLR released subscriber IMSI-{imsi}:MSISDN-{ALICE[1]}:TMSI-0x")
        await asyncio.sleep(0.3)
        after = [m for _, _, m in list(mme.trace)[before:] if m.imsi == imsi]
        assert after == []  # nothing reaches the MME for the expired phone

        [blocked] = await alice.send_sms(BOB[1], "после блокировки", timeout=3)
        assert (blocked.outcome, blocked.sgs_cause) == ("released", 3)  # RELEASE-REQ, unknown
        assert blocked.seconds < 1
        rejected = await alice.attach()
        assert (rejected.accepted, rejected.cause) == (False, 3)

        await _hlr_set(lab, imsi, "cs-enabled", "1")
        assert (await alice.attach()).accepted
        [again] = await alice.send_sms(BOB[1], "снова работает")
        assert again.ok
        assert (await bob.next_sms(10)).text == "снова работает"


async def test_many_phones_at_once(osmo_lab: OsmoLab) -> None:
    """Twenty phones attach and send concurrently over one SGs link: the write pacing keeps
    every message a separate read for osmo-msc, and the framer splits coalesced reads."""
    lab = await osmo_lab()
    subs = [(f"00101000000{i:04d}", f"4901{i:03d}") for i in range(20)]
    await _provision(lab, *subs)
    async with _mme(lab) as mme:
        phones = [mme.phone(*sub) for sub in subs]
        assert all(r.accepted for r in await asyncio.gather(*(p.attach() for p in phones)))
        sends = await asyncio.gather(
            *(p.send_sms(phones[(i + 1) % 20].msisdn, f"Сәлем, №{i}") for i, p in enumerate(phones))
        )
        assert all(r.ok for results in sends for r in results)
        got = await asyncio.gather(*(p.next_sms(15) for p in phones))
        assert [g.text for g in got] == [f"Сәлем, №{(i - 1) % 20}" for i in range(20)]
        assert mme.slow_sends == 0
        assert mme.framer.messages > mme.framer.reads  # osmo-msc's messages did coalesce
