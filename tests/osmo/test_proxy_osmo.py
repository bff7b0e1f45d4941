"""The A2P proxy (`[proxy]`, docs/proxy.md) in front of the real osmo-msc 1.9 SMSC (issue 17).

The gateway runs in-process with `[proxy]`; its `[[proxy.upstream]]` is a transceiver bind to
osmo-msc's SMPP as the lab's ESME account (`gw`, `policy closed`, `default-route`; osmo-msc has
no source-IP or source-address list per ESME, and the alert_notifications it sends on every
attach reach the upstream link as notifications that need no answer). Aggregators bind to the
proxy: smpplib (written by others, blocking, in a worker thread), Kannel 1.4.5 (bearerbox +
smsbox, tests/interop/_kannel_aggr.py) and the project's own client.
A virtual phone attached over SGs receives what osmo-msc delivers.

osmo-msc answers every submit_sm `msg_id_not_implemented` and reports delivery with
`id:<8-digit database id>` and no receipted_message_id: the proxy has to find its own id by the
address pair (FIFO within it) and rewrite the receipt for the aggregator.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import smpplib.client
import smpplib.consts
import smpplib.gsm
from _kannel_aggr import KannelAggregator, start_kannel
from _procs import Peers, wait_for
from test_kannel_esme import DlrListener
from waiting import eventually

from gateway.config import GatewayConfig
from gateway.daemon import Gateway, RunReport
from gateway.osmocom.ctrl import CtrlClient
from gateway.proxy.journal import SubmitRow
from gateway.proxy.service import Proxy
from simulators.osmo.lab import Lab
from simulators.osmo.mme import ReceivedSms, VirtualMme, shim_framing
from simulators.osmo.provision import LabSubscriber, provision
from smsc.client import EsmeClient, EsmeConfig
from smsc.constants import Status
from smsc.link import Link
from smsc.pdu import SubmitSm
from smsc.receipt import receipt_in
from smsc.session import BindType, SessionConfig
from tests.helpers.proxy_lab import AGGR, KASPI_AGGR, PASSWORD, Receiver, proxy_settings

if TYPE_CHECKING:  # an annotation only: run with tests/interop, `conftest` may be that one's
    from conftest import OsmoLab

pytestmark = pytest.mark.interop

BOB = ("001010000000002", "4900002")
LONG_KAZAKH = (  # 177 characters of UCS2: three parts of at most 67
    "Құрметті клиент! Сіздің №5512 тапсырысыңыз Алматыдағы беру пунктіне жеткізілді. "
    "Оны жеті күн ішінде алып кетуге болады. Жұмыс уақыты: күн сайын 09:00-ден 21:00-ге дейін. "
    "Рахмет!"
)
KASPI_TEXT = "Kaspi.kz: төлеміңіз қабылданды, 5 000 ₸. Рахмет!"
OUR_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class OsmoProxy:
    lab: Lab
    gateway: Gateway
    task: asyncio.Task[RunReport]

    @property
    def proxy(self) -> Proxy:
        assert self.gateway.proxy is not None
        return self.gateway.proxy


@contextlib.asynccontextmanager
async def osmo_proxy(lab: Lab, data_dir: Path) -> AsyncIterator[OsmoProxy]:
    """The gateway with `[proxy]` (accounts `aggr`, `kaspi-a2p` as in tests/helpers/proxy_lab)
    whose one upstream is osmo-msc's SMSC, enforcing, SQLite store in `data_dir`."""
    upstream = EsmeConfig(
        lab.cfg.host, lab.cfg.smpp_port, lab.cfg.esme_system_id, lab.cfg.esme_password,
        BindType.TRANSCEIVER, bind_timeout=5,
        session=SessionConfig(window=50, response_timeout=5.0), name="osmo-msc",
    )  # fmt: skip
    cfg = GatewayConfig(data_dir=data_dir, mode="enforce")
    cfg.cases.enabled = False
    cfg.mqtt.enabled = False
    # reconcile_wait well above osmo-msc's paging + delivery time: no resend while waiting
    cfg.proxy = proxy_settings(lab.cfg.smpp_port, upstream=[upstream], reconcile_wait=20.0)
    gateway = Gateway(cfg)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    try:
        await asyncio.wait_for(gateway.ready.wait(), 20)
        assert gateway.proxy is not None
        await asyncio.wait_for(gateway.proxy.ready.wait(), 10)
        await gateway.proxy.forwarder.supervisors[0].wait_bound(10)
        yield OsmoProxy(lab, gateway, task)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)


async def _provision(lab: Lab, *subs: tuple[str, str]) -> None:
    async with CtrlClient(lab.cfg.host, lab.hlr_ctrl) as ctrl:
        await provision(ctrl, [LabSubscriber(imsi, msisdn) for imsi, msisdn in subs])


def _mme(lab: Lab) -> VirtualMme:
    return VirtualMme(lab.cfg.host, lab.cfg.sgs_port, framing=shim_framing(lab.shim))


def _submits_at_msc(lab: Lab) -> int:
    """submit_sm osmo-msc received and stored (its log; it deletes an SMS once delivered)."""
    log = lab.output("osmo-msc", 1_000_000)
    assert log.count("[gw] Rx SUBMIT-SM") == log.count("SMPP SUBMIT-SM: Stored in DB")
    return log.count("SMPP SUBMIT-SM: Stored in DB")


# ------------------------------------------------------------------------------ smpplib


@dataclass
class SmpplibRun:
    bind_status: int = -1
    resps: list[Any] = field(default_factory=list)  # submit_sm_resp PDUs
    delivers: list[Any] = field(default_factory=list)  # deliver_sm PDUs (receipts)
    sequences: list[int] = field(default_factory=list)  # of the submits, in order
    unbind_status: int = -1
    error: str = ""


def _smpplib_aggregator(port: int, submits: list[dict[str, Any]], receipts: int) -> SmpplibRun:
    """A blocking smpplib transceiver session as account `aggr`: submit, then read until every
    submit_sm_resp and `receipts` deliver_sm arrived (30 s at most), unbind."""
    run = SmpplibRun()
    client = smpplib.client.Client("127.0.0.1", port, timeout=1, allow_unknown_opt_params=True)
    client.set_message_sent_handler(lambda pdu: run.resps.append(pdu))
    client.set_message_received_handler(lambda pdu: run.delivers.append(pdu))  # answered 0
    client.connect()
    try:
        run.bind_status = int(client.bind_transceiver(system_id=AGGR, password=PASSWORD).status)
        for fields in submits:
            run.sequences.append(int(client.send_message(**fields).sequence))
        deadline = time.monotonic() + 30
        while (len(run.resps) < len(submits) or len(run.delivers) < receipts) and (
            time.monotonic() < deadline
        ):
            client.read_once()
        run.unbind_status = int(client.unbind().status)
    except Exception as exc:  # reported by the test with what arrived so far
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        client.disconnect()
    return run


async def test_smpplib_kazakh_multipart_through_the_proxy_to_osmo_msc(
    osmo_lab: OsmoLab, tmp_path: Path
) -> None:
    lab = await osmo_lab()
    await _provision(lab, BOB)
    parts, coding, esm_class = smpplib.gsm.make_parts(LONG_KAZAKH)
    assert (len(parts), coding, esm_class) == (3, smpplib.consts.SMPP_ENCODING_ISO10646, 0x40)
    submits = [
        {
            "source_addr_ton": smpplib.consts.SMPP_TON_ALNUM,
            "source_addr_npi": smpplib.consts.SMPP_NPI_UNK,
            "source_addr": "SHOP",  # contracted for `aggr`
            "dest_addr_ton": smpplib.consts.SMPP_TON_INTL,
            "dest_addr_npi": smpplib.consts.SMPP_NPI_ISDN,
            "destination_addr": BOB[1],
            "short_message": part,
            "data_coding": coding,
            "esm_class": esm_class,
            "registered_delivery": 1,
        }
        for part in parts
    ]
    async with osmo_proxy(lab, tmp_path / "data") as op, _mme(lab) as mme:
        bob = mme.phone(*BOB)
        assert (await bob.attach()).accepted  # osmo-msc sends the proxy an alert_notification
        upstream = op.proxy.forwarder.supervisors[0]
        first_link = upstream.link
        run = await asyncio.wait_for(
            asyncio.to_thread(_smpplib_aggregator, op.proxy.port, submits, len(parts)), 40
        )
        assert not run.error, f"smpplib: {run.error}; {len(run.resps)} resps, " + (
            f"{len(run.delivers)} deliver_sm"
        )
        got = await bob.next_sms(10)
        with pytest.raises(TimeoutError):  # exactly once
            await bob.next_sms(1.5)
        fwd = op.proxy.forwarder
        assert upstream.link is first_link  # one bind throughout: notifications did not hurt it
        stats = fwd.stats
        correlator = fwd.correlator.stats
    assert (run.bind_status, run.unbind_status) == (0, 0)

    # The phone got the three parts, joined to the text smpplib split, from the sender id.
    assert (got.text, len(got.parts), got.dcs) == (LONG_KAZAKH, 3, 8)
    assert got.originator == "SHOP"
    assert [p.concat.seq for p in got.parts if p.concat] == [1, 2, 3]

    # submit_sm_resp: fraudgate's own ids (osmo-msc answered its constant to the proxy).
    assert [int(r.status) for r in run.resps] == [0, 0, 0]
    ids = {int(r.sequence): r.message_id.decode("ascii") for r in run.resps}
    assert sorted(ids) == sorted(run.sequences)
    ours = [ids[s] for s in run.sequences]
    assert all(OUR_ID.fullmatch(i) for i in ours) and len(set(ours)) == 3

    # One receipt per part, each naming an id smpplib was answered; osmo-msc's 8-digit ids gone.
    texts = [bytes(d.short_message) for d in run.delivers]
    assert [int(d.esm_class) for d in run.delivers] == [0x04] * 3, texts
    receipt_ids = [re.match(rb"id:(\S+) ", t) for t in texts]
    assert all(m is not None for m in receipt_ids), texts
    # osmo-msc delivers a subscriber's queue in order: the FIFO by address pair gives each part
    # its own id (its receipt has no text and no reference to tell them apart otherwise)
    assert [m.group(1).decode() for m in receipt_ids if m] == ours
    assert all(b"stat:DELIVRD" in t for t in texts), texts
    assert [d.source_addr.decode() for d in run.delivers] == [BOB[1]] * 3
    assert [d.destination_addr.decode() for d in run.delivers] == ["SHOP"] * 3

    assert (stats.sent, stats.forwarded, stats.failed, stats.resent) == (3, 3, 0, 0)
    assert (stats.receipts, stats.receipts_passed, stats.receipts_unmatched) == (3, 3, 0)
    assert correlator.matched_by_id == 0  # 'msg_id_not_implemented' x3 is never an id to match
    assert correlator.matched_by_ref + correlator.matched_by_pair == 3
    assert _submits_at_msc(lab) == 3  # each part once at the SMSC


# ------------------------------------------------------------------------------ spoofing


def _kaspi_submit() -> SubmitSm:
    return SubmitSm(
        source_addr_ton=5, source_addr_npi=0, source_addr="Kaspi.kz",
        dest_addr_ton=1, dest_addr_npi=1, destination_addr=BOB[1],
        registered_delivery=1, data_coding=8, short_message=KASPI_TEXT.encode("utf-16-be"),
    )  # fmt: skip


@contextlib.asynccontextmanager
async def _aggregator(port: int, system_id: str) -> AsyncIterator[tuple[Link, Receiver]]:
    handler = Receiver()
    cfg = EsmeConfig("127.0.0.1", port, system_id, PASSWORD, BindType.TRANSCEIVER,
                     session=SessionConfig(response_timeout=10))  # fmt: skip
    async with EsmeClient(cfg, handler) as link:
        yield link, handler


async def test_spoofed_kaspi_refused_and_the_contracted_account_reaches_the_phone(
    osmo_lab: OsmoLab, tmp_path: Path
) -> None:
    lab = await osmo_lab()
    await _provision(lab, BOB)
    async with osmo_proxy(lab, tmp_path / "data") as op, _mme(lab) as mme:
        bob = mme.phone(*BOB)
        assert (await bob.attach()).accepted
        fwd = op.proxy.forwarder
        async with _aggregator(op.proxy.port, AGGR) as (link, _):
            refused = await link.request(_kaspi_submit())
            assert refused.status == Status.ESME_RINVSRCADR
            with pytest.raises(TimeoutError):
                await bob.next_sms(2.0)
        assert fwd.stats.sent == 0 and _submits_at_msc(lab) == 0  # never reached osmo-msc
        assert op.proxy.stats.refused_spoof == 1

        async with _aggregator(op.proxy.port, KASPI_AGGR) as (link, mine):
            ok = await link.request(_kaspi_submit())
            assert ok.status == Status.ESME_ROK
            our_id = str(getattr(ok, "message_id", ""))
            got = await bob.next_sms(10)
            assert (got.originator, got.text) == ("Kaspi.kz", KASPI_TEXT)
            await eventually(lambda: mine.receipts(), 10)
            [pdu] = mine.receipts()
        receipt = receipt_in(pdu)
        assert receipt is not None and (receipt.message_id, receipt.stat) == (our_id, "DELIVRD")
        assert OUR_ID.fullmatch(our_id)
        with pytest.raises(TimeoutError):
            await bob.next_sms(1.0)
        assert (fwd.stats.sent, fwd.stats.forwarded) == (1, 1)
        assert _submits_at_msc(lab) == 1


# ------------------------------------------------------------------------------ store and forward

LATER = "Сәлеметсіз бе! Сіздің тапсырысыңыз дайын, оны ертең алуға болады."


def _shop_submit() -> SubmitSm:
    return SubmitSm(
        source_addr_ton=5, source_addr_npi=0, source_addr="SHOP",
        dest_addr_ton=1, dest_addr_npi=1, destination_addr=BOB[1],
        registered_delivery=1, data_coding=8, short_message=LATER.encode("utf-16-be"),
    )  # fmt: skip


async def _receipts_for(port: int, count: int) -> list[str]:
    """Bind as `aggr` again and take the receipts the proxy kept for it: their ids."""
    async with _aggregator(port, AGGR) as (_, mine):
        await eventually(lambda: len(mine.receipts()) >= count, 10)
        await asyncio.sleep(0.3)  # nothing more comes
        receipts = [receipt_in(p) for p in mine.receipts()]
    assert all(r is not None and r.stat == "DELIVRD" for r in receipts), receipts
    return [r.message_id for r in receipts if r is not None]


async def test_a_phone_attached_later_and_the_aggregator_away_still_gets_its_receipt(
    osmo_lab: OsmoLab, tmp_path: Path
) -> None:
    """osmo-msc stores the message for a phone that is not attached; the aggregator unbinds.
    On attach osmo-msc delivers and reports; the proxy keeps the receipt (proxy_inbound) and
    gives it, with the aggregator's id, when the aggregator binds again."""
    lab = await osmo_lab()
    await _provision(lab, BOB)
    async with osmo_proxy(lab, tmp_path / "data") as op, _mme(lab) as mme:
        async with _aggregator(op.proxy.port, AGGR) as (link, _):
            resp = await link.request(_shop_submit())
        assert resp.status == Status.ESME_ROK
        fwd = op.proxy.forwarder
        await eventually(lambda: fwd.stats.forwarded >= 1, 10)
        bob = mme.phone(*BOB)
        assert (await bob.attach()).accepted
        assert (await bob.next_sms(10)).text == LATER
        await eventually(lambda: op.proxy.inbound.stats.kept >= 1, 10)
        assert (fwd.stats.receipts, fwd.stats.receipts_unmatched) == (1, 0)
        assert await _receipts_for(op.proxy.port, 1) == [str(getattr(resp, "message_id", ""))]
    assert _submits_at_msc(lab) == 1


async def test_a_receipt_after_a_gateway_restart_still_reaches_the_aggregator(
    osmo_lab: OsmoLab, tmp_path: Path
) -> None:
    """The message is forwarded, the gateway restarts, then the phone attaches: osmo-msc's
    receipt names only its database id, so the new process must know the forwarded submit by
    its address pair (as the first did) to give the aggregator its receipt."""
    lab = await osmo_lab()
    await _provision(lab, BOB)
    data = tmp_path / "data"
    async with _mme(lab) as mme:
        await _forward_then_restart_then_attach(lab, data, mme)
    assert _submits_at_msc(lab) == 1


async def _forward_then_restart_then_attach(lab: Lab, data: Path, mme: VirtualMme) -> None:
    async with osmo_proxy(lab, data) as op:
        async with _aggregator(op.proxy.port, AGGR) as (link, _):
            resp = await link.request(_shop_submit())
        assert resp.status == Status.ESME_ROK
        await eventually(lambda: op.proxy.forwarder.stats.forwarded >= 1, 10)
    async with osmo_proxy(lab, data) as op:
        bob = mme.phone(*BOB)
        assert (await bob.attach()).accepted
        assert (await bob.next_sms(10)).text == LATER
        fwd = op.proxy.forwarder
        await eventually(lambda: fwd.stats.receipts >= 1, 10)
        assert fwd.stats.receipts_unmatched == 0
        assert await _receipts_for(op.proxy.port, 1) == [str(getattr(resp, "message_id", ""))]


# ------------------------------------------------------------------------------ Kannel


def _kannel_bound(op: OsmoProxy) -> Callable[[], bool]:
    return lambda: any(x.session.bound for x in op.proxy.inbound.links.get(AGGR, []))


async def test_kannel_long_kazakh_through_the_proxy_to_osmo_msc_with_its_receipt(
    osmo_lab: OsmoLab, tmp_path: Path
) -> None:
    """Kannel 1.4.5 (bearerbox + smsbox, sendsms HTTP, UTF-8 text sent as UCS2, dlr-mask 31)
    binds to the proxy as `aggr`; the three parts reach the phone through osmo-msc's SMSC and
    Kannel gets its DLR for the first part's id (the only part it asks a receipt for)."""
    started = time.monotonic()
    lab = await osmo_lab()
    await _provision(lab, BOB)
    dlr = DlrListener()
    await dlr.start()
    peers = Peers(tmp_path)
    try:
        async with osmo_proxy(lab, tmp_path / "data") as op, _mme(lab) as mme:
            bob = mme.phone(*BOB)
            assert (await bob.attach()).accepted
            kannel = await start_kannel(tmp_path, peers, op.proxy.port, {AGGR: PASSWORD}, dlr,
                                        _kannel_bound(op))  # fmt: skip
            await kannel.send(AGGR, "kazakh", "SHOP", BOB[1], LONG_KAZAKH,
                              charset="UTF-8", coding="2")  # fmt: skip
            got = await bob.next_sms(10)
            await wait_for(lambda: kannel.hits("kazakh", "1"), timeout=10, peers=peers,
                           what=f"Kannel's DLR type 1 (got {dlr.hits})")  # fmt: skip
            with pytest.raises(TimeoutError):  # exactly once
                await bob.next_sms(1.0)
            fwd = op.proxy.forwarder
            rows = {r.id: r for r in await op.proxy.journal.find(kannel.resp_ids(AGGR))}
            stats, correlator = fwd.stats, fwd.correlator.stats
            await asyncio.to_thread(peers.stop_all)  # Kannel unbinds while the proxy runs
    finally:
        await asyncio.to_thread(peers.stop_all)
        await dlr.stop()
    _check_kannel_at_osmo(lab, kannel, got, rows)
    assert (stats.sent, stats.forwarded, stats.failed, stats.resent) == (3, 3, 0, 0)
    # osmo-msc reports every part (the proxy asks it to); Kannel asked for part 1 only
    assert (stats.receipts, stats.receipts_passed, stats.receipts_unmatched) == (3, 1, 0)
    assert correlator.matched_by_id == 0
    assert time.monotonic() - started < 25


def _check_kannel_at_osmo(
    lab: Lab, kannel: KannelAggregator, got: ReceivedSms, rows: dict[str, SubmitRow]
) -> None:
    # The phone: Kannel's three UDH parts joined to the text Kannel was given, from SHOP.
    assert (got.text, len(got.parts), got.dcs, got.originator) == (LONG_KAZAKH, 3, 8, "SHOP")
    assert [p.concat.seq for p in got.parts if p.concat] == [1, 2, 3]
    assert _submits_at_msc(lab) == 3

    # submit_sm_resp: fraudgate's own id per part, each a journal row of `aggr`.
    ids = kannel.resp_ids(AGGR)
    assert len(ids) == 3 and len(set(ids)) == 3 and all(OUR_ID.fullmatch(i) for i in ids), ids
    assert sorted(rows) == sorted(ids) and [rows[i].part for i in ids] == [1, 2, 3]
    assert all(rows[i].account == AGGR for i in ids)
    # Kannel 1.4.5: registered_delivery 0x11 on part 1, 0 on the others; the DLR keyed by part 1
    assert [rows[i].receipt for i in ids] == [0x11, 0, 0]
    first = ids[0]
    assert kannel.sent() == [(AGGR, first, BOB[1])]

    # The one receipt passed: looked up by part 1's id, found, delivered (type 1); its text
    # names our id, osmo-msc's `id:000000NN` rewritten.
    assert kannel.dlr_lookups(AGGR) == [(first, 1)]
    receipts = kannel.receipts()
    assert sorted(kind for _, _, kind, _ in receipts) == [1, 8], receipts
    [(smsc, fid, _, text)] = [r for r in receipts if r[2] == 1]
    assert (smsc, fid) == (AGGR, first), receipts
    assert text.startswith(f"id:{first} ") and "stat:DELIVRD" in text, text
    assert not re.search(r"id:\d{8}\b", text), text
    hits = kannel.hits("kazakh")
    assert sorted(h["type"] for h in hits) == ["1", "8"], hits  # SMSC took it, then delivered
    assert {(h["fid"], h["smsc"]) for h in hits} == {(first, AGGR)}, hits
    (delivered,) = kannel.hits("kazakh", "1")
    assert delivered["reply"].startswith(f"id:{first} ") and "id:000" not in delivered["reply"]
    assert len(kannel.dlr.hits) == 2
