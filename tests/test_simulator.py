"""The simulated SMSC over real loopback TCP, driven by the project's own ESME client."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import raw_smpp

from smsc.backoff import Backoff
from smsc.bindguard import BindGuardConfig
from smsc.client import EsmeClient, EsmeConfig, EsmeSupervisor
from smsc.constants import EsmClass, MessageState, Status, Tag
from smsc.link import (
    RECEIVE_SLICE,
    WRITE_HIGH_WATER,
    BindError,
    Link,
    LinkClosedError,
    RequestFailedError,
)
from smsc.pdu import (
    BindTransceiver,
    CancelSm,
    DeliverSm,
    EnquireLink,
    Pdu,
    QuerySm,
    ReplaceSm,
    SmeAddress,
    SubmitMulti,
    SubmitSm,
    Tlv,
)
from smsc.session import BindType, SessionConfig
from smsc.simulator import Account, Faults, Route, SimulatedSmsc, SmscConfig

TRX, RX, TX = BindType.TRANSCEIVER, BindType.RECEIVER, BindType.TRANSMITTER


# ---- helpers --------------------------------------------------------------------------------


class Rx:
    """ESME-side LinkHandler: records every deliver_sm and answers it with `status(n, pdu)`
    (n counts from 1; None leaves it unanswered), after `delay` seconds when given."""

    def __init__(
        self, status: Callable[[int, Pdu], int | None] = lambda n, p: 0, delay: float = 0.0
    ) -> None:
        self.status, self.delay = status, delay
        self.got: list[DeliverSm] = []  # every deliver_sm received
        self.ok: list[DeliverSm] = []  # those answered ESME_ROK
        self.closed: list[str] = []
        self.outstanding = self.max_outstanding = 0

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:  # pragma: no cover
        raise AssertionError("an ESME never accepts binds")

    def on_request(self, link: Link, pdu: Pdu) -> None:
        if not isinstance(pdu, DeliverSm):
            link.respond(pdu.response(status=Status.ESME_RINVCMDID))
            return
        self.got.append(pdu)
        self.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, self.outstanding)
        status = self.status(len(self.got), pdu)
        if status is None:
            return
        if self.delay:
            link.loop.call_later(self.delay, self._answer, link, pdu, status)
        else:
            self._answer(link, pdu, status)

    def _answer(self, link: Link, pdu: DeliverSm, status: int) -> None:
        with contextlib.suppress(LinkClosedError):
            link.respond(pdu.response(status=status))
            self.outstanding -= 1
            if status == 0:
                self.ok.append(pdu)

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        self.closed.append(reason)

    def texts(self, pdus: list[DeliverSm] | None = None) -> Counter[bytes]:
        """short_message of each (non-receipt) message answered OK, counted."""
        return Counter(
            p.short_message
            for p in (self.ok if pdus is None else pdus)
            if not p.esm_class & EsmClass.DELIVERY_RECEIPT
        )

    def receipts(self) -> list[DeliverSm]:
        return [p for p in self.ok if p.esm_class & EsmClass.DELIVERY_RECEIPT]


def acc(system_id: str, **kw: Any) -> Account:
    return Account(system_id, "pw", **kw)


def sm(dest: str, text: bytes = b"hello", **kw: Any) -> SubmitSm:
    return SubmitSm(
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="77010000001",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=dest,
        short_message=text,
        **kw,
    )


async def eventually(cond: Callable[[], bool], timeout: float = 3.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {timeout}s: {what}")
        await asyncio.sleep(0.01)


class Lab:
    """One simulated SMSC on a free port, and ESMEs bound to it; all closed at the test's end."""

    def __init__(self, stack: contextlib.AsyncExitStack) -> None:
        self.stack = stack
        self.sim: SimulatedSmsc | None = None

    async def smsc(
        self, *accounts: Account, routes: tuple[tuple[str, str], ...] = (), **kw: Any
    ) -> SimulatedSmsc:
        kw.setdefault("retry_interval", 0.05)
        cfg = SmscConfig(
            host="127.0.0.1",
            port=0,
            accounts=list(accounts),
            routes=[Route(p, a) for p, a in routes],
            **kw,
        )
        self.sim = await self.stack.enter_async_context(SimulatedSmsc(cfg))
        return self.sim

    def config(self, system_id: str, bind_type: BindType, password: str, **session: Any) -> Any:
        assert self.sim is not None
        return EsmeConfig(
            "127.0.0.1",
            self.sim.port,
            system_id,
            password,
            bind_type=bind_type,
            session=SessionConfig(**session),
            connect_timeout=2.0,
            bind_timeout=2.0,
        )

    async def bind(
        self,
        system_id: str,
        handler: Rx | None = None,
        bind_type: BindType = TRX,
        password: str = "pw",
        **session: Any,
    ) -> Link:
        cfg = self.config(system_id, bind_type, password, **session)
        return await self.stack.enter_async_context(EsmeClient(cfg, handler or Rx()))

    async def supervise(
        self, system_id: str, handler: Rx, bind_type: BindType = TRX
    ) -> EsmeSupervisor:
        cfg = self.config(system_id, bind_type, "pw")
        sup = EsmeSupervisor(cfg, handler, Backoff(initial=0.05, cap=0.1))
        task = asyncio.create_task(sup.run())

        async def stop() -> None:
            sup.stop()
            await asyncio.wait_for(task, 5)

        self.stack.push_async_callback(stop)
        await sup.wait_bound(3)
        return sup


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with contextlib.AsyncExitStack() as stack:
        yield Lab(stack)


# ---- binds ----------------------------------------------------------------------------------


BIND_ACCOUNTS = (
    acc("gw"),
    acc("rxonly", bind_types=frozenset({RX})),
    acc("far", allow_ips=(ipaddress.ip_network("10.0.0.0/8"),)),
    acc("near", allow_ips=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1"))),
)


@pytest.mark.parametrize(
    ("system_id", "password", "bind_type"),
    [("gw", "pw", TRX), ("gw", "pw", TX), ("gw", "pw", RX), ("rxonly", "pw", RX),
     ("near", "pw", TRX)],
)  # fmt: skip
async def test_bind_accepted(lab: Lab, system_id: str, password: str, bind_type: BindType) -> None:
    await lab.smsc(*BIND_ACCOUNTS)
    link = await lab.bind(system_id, bind_type=bind_type, password=password)
    assert link.session.bound and link.session.peer_system_id == "fraudgate-sim"


@pytest.mark.parametrize(
    ("system_id", "password", "bind_type", "status"),
    [
        ("gw", "wrong", TRX, Status.ESME_RINVPASWD),
        ("nobody", "pw", TRX, Status.ESME_RINVSYSID),
        ("rxonly", "pw", TRX, Status.ESME_RBINDFAIL),
        ("rxonly", "pw", TX, Status.ESME_RBINDFAIL),
        ("far", "pw", TRX, Status.ESME_RBINDFAIL),
    ],
)
async def test_bind_refused(
    lab: Lab, system_id: str, password: str, bind_type: BindType, status: int
) -> None:
    await lab.smsc(*BIND_ACCOUNTS)
    with pytest.raises(BindError) as err:
        await lab.bind(system_id, bind_type=bind_type, password=password)
    assert err.value.status == status


# ---- routing and message fields -------------------------------------------------------------


async def test_longest_prefix_wins(lab: Lab) -> None:
    await lab.smsc(acc("tx"), acc("short"), acc("long"), routes=(("7", "short"), ("7701", "long")))
    short, long = Rx(), Rx()
    await lab.bind("short", short, RX)
    await lab.bind("long", long, RX)
    tx = await lab.bind("tx")
    for dest, text in [("77015550000", b"a"), ("+77019990000", b"b"), ("77770000000", b"c"),
                       ("7700", b"d"), ("770", b"e")]:  # fmt: skip
        assert (await tx.request(sm(dest, text))).status == 0
    await eventually(lambda: len(short.ok) + len(long.ok) == 5)
    assert long.texts() == Counter([b"a", b"b"])
    assert short.texts() == Counter([b"c", b"d", b"e"])


async def test_destination_without_route_is_refused_with_invdstadr(lab: Lab) -> None:
    sim = await lab.smsc(acc("tx"), acc("rx"), routes=(("7", "rx"),))
    tx = await lab.bind("tx")
    resp = await tx.request(sm("4420555000"))
    assert resp.status == Status.ESME_RINVDSTADR
    assert sim.stats.submitted == 0 and not sim.messages


async def test_message_ids_are_unique_and_returned(lab: Lab) -> None:
    sim = await lab.smsc(acc("tx"), acc("rx"), routes=(("7", "rx"),))
    tx = await lab.bind("tx")
    resps = await asyncio.gather(*(tx.request(sm("77015550000", b"m%d" % i)) for i in range(30)))
    ids = [r.message_id for r in resps]  # type: ignore[attr-defined]
    assert all(r.status == 0 for r in resps)
    assert all(ids) and len(set(ids)) == 30
    for i, mid in enumerate(ids):
        assert sim.messages[mid].short_message == b"m%d" % i


FIELDS = ("source_addr_ton", "source_addr_npi", "source_addr", "dest_addr_ton", "dest_addr_npi",
          "protocol_id", "data_coding", "short_message", "tlvs")  # fmt: skip
KAZ = "Сәлем! Қазақстан Республикасы Ұлттық Банкі: кодыңызды ешкімге айтпаңыз."


async def test_deliver_sm_carries_every_field_unchanged(lab: Lab) -> None:
    await lab.smsc(acc("tx"), acc("rx"), routes=(("7", "rx"),))
    rx = Rx()
    await lab.bind("rx", rx, RX)
    tx = await lab.bind("tx")
    ucs2 = KAZ.encode("utf-16-be")
    sar = [
        Tlv.of(Tag.SAR_MSG_REF_NUM, 0x1234),
        Tlv.of(Tag.SAR_TOTAL_SEGMENTS, 2),
        Tlv.of(Tag.SAR_SEGMENT_SEQNUM, 1),
        Tlv(0x1401, b"\x00vendor\xff"),  # unknown tag: kept raw
    ]
    first = SubmitSm(
        source_addr_ton=5, source_addr_npi=0, source_addr="KazBank",
        dest_addr_ton=1, dest_addr_npi=1, destination_addr="77015550000",
        esm_class=0x03, protocol_id=0x00, data_coding=0x08, short_message=ucs2, tlvs=sar,
    )  # fmt: skip
    payload = (KAZ * 3).encode("utf-16-be")
    assert len(payload) > 254
    second = SubmitSm(
        source_addr_ton=1, source_addr_npi=1, source_addr="77770001122",
        dest_addr_ton=2, dest_addr_npi=9, destination_addr="77015550001",
        esm_class=0x40, protocol_id=0x7F, data_coding=0x08, short_message=b"",
        tlvs=[Tlv.of(Tag.MESSAGE_PAYLOAD, payload)],
    )  # fmt: skip
    for pdu in (first, second):
        assert (await tx.request(pdu)).status == 0
    await eventually(lambda: len(rx.ok) == 2)
    by_dest = {p.destination_addr: p for p in rx.ok}
    for sent in (first, second):
        got = by_dest[sent.destination_addr]
        for name in FIELDS:
            assert getattr(got, name) == getattr(sent, name), name
        assert got.esm_class == sent.esm_class & ~0x03  # messaging mode bits do not travel
    assert by_dest["77015550000"].short_message.decode("utf-16-be") == KAZ
    assert by_dest["77015550001"].tlv_bytes(Tag.MESSAGE_PAYLOAD) == payload


# ---- delivery receipts ----------------------------------------------------------------------

RECEIPT = re.compile(
    r"id:(?P<id>\S+) sub:\d{3} dlvrd:\d{3} submit date:\d{10} done date:\d{10} "
    r"stat:(?P<stat>[A-Z]{7}) err:(?P<err>\d{3})"
)


async def _receipt_lab(lab: Lab, rx_status: int) -> tuple[Link, Rx, Rx]:
    await lab.smsc(acc("tx"), acc("rx"), routes=(("7", "rx"),))
    rx, txh = Rx(lambda n, p: rx_status), Rx()
    await lab.bind("rx", rx, RX)
    return await lab.bind("tx", txh), txh, rx


async def test_receipt_on_delivery(lab: Lab) -> None:
    tx, txh, rx = await _receipt_lab(lab, 0)
    resp = await tx.request(sm("77015550000", b"code 1234", registered_delivery=1))
    mid = resp.message_id  # type: ignore[attr-defined]
    await eventually(lambda: len(txh.receipts()) == 1)
    assert rx.texts() == Counter([b"code 1234"])
    receipt = txh.receipts()[0]
    assert receipt.esm_class == EsmClass.DELIVERY_RECEIPT
    assert (receipt.source_addr, receipt.destination_addr) == ("77015550000", "77010000001")
    m = RECEIPT.match(receipt.short_message.decode("latin-1"))
    assert m is not None, receipt.short_message
    assert (m["id"], m["stat"], m["err"]) == (mid, "DELIVRD", "000")
    assert receipt.tlv_str(Tag.RECEIPTED_MESSAGE_ID) == mid
    assert receipt.tlv_int(Tag.MESSAGE_STATE) == 2  # DELIVERED


async def test_receipt_undeliv_on_permanent_error(lab: Lab) -> None:
    tx, txh, rx = await _receipt_lab(lab, Status.ESME_RX_R_APPN)
    resp = await tx.request(sm("77015550000", registered_delivery=1))
    mid = resp.message_id  # type: ignore[attr-defined]
    await eventually(lambda: len(txh.receipts()) == 1)
    assert len(rx.got) == 1  # a permanent error is not retried
    receipt = txh.receipts()[0]
    m = RECEIPT.match(receipt.short_message.decode("latin-1"))
    assert m is not None and (m["id"], m["stat"]) == (mid, "UNDELIV")
    assert receipt.tlv_str(Tag.RECEIPTED_MESSAGE_ID) == mid
    assert receipt.tlv_int(Tag.MESSAGE_STATE) == MessageState.UNDELIVERABLE


async def test_registered_delivery_2_receipt_only_on_failure(lab: Lab) -> None:
    sim = await lab.smsc(acc("tx"), acc("good"), acc("bad"),
                         routes=(("7701", "good"), ("7702", "bad")))  # fmt: skip
    txh = Rx()
    await lab.bind("good", Rx(), RX)
    await lab.bind("bad", Rx(lambda n, p: Status.ESME_RX_R_APPN), RX)
    tx = await lab.bind("tx", txh)
    ok = await tx.request(sm("77015550000", b"ok", registered_delivery=2))
    bad = await tx.request(sm("77025550000", b"bad", registered_delivery=2))
    ids = [r.message_id for r in (ok, bad)]  # type: ignore[attr-defined]
    await eventually(lambda: all(sim.messages[i].state != MessageState.ENROUTE for i in ids))
    await eventually(lambda: len(txh.receipts()) >= 1)
    await asyncio.sleep(0.2)  # a receipt for the delivered one would have come by now
    assert [r.tlv_str(Tag.RECEIPTED_MESSAGE_ID) for r in txh.receipts()] == [ids[1]]


# ---- store and retry ------------------------------------------------------------------------


async def test_messages_stored_until_a_receiver_binds(lab: Lab) -> None:
    sim = await lab.smsc(acc("tx"), acc("rx"), routes=(("7", "rx"),))
    tx = await lab.bind("tx")
    texts = [b"m%d" % i for i in range(25)]
    resps = await asyncio.gather(*(tx.request(sm("77015550000", t)) for t in texts))
    assert [r.status for r in resps] == [0] * 25
    assert sim.pending() == 25
    rx = Rx()
    await lab.bind("rx", rx, RX)
    await eventually(lambda: sum(rx.texts().values()) >= 25)
    await asyncio.sleep(0.2)  # room for a duplicate to show up
    assert rx.texts() == Counter(texts)
    assert sim.pending() == 0


async def test_throttled_receiver_gets_everything_exactly_once(lab: Lab) -> None:
    sim = await lab.smsc(acc("tx"), acc("rx"), routes=(("7", "rx"),))
    rx = Rx(lambda n, p: Status.ESME_RTHROTTLED if n <= 8 else 0)
    await lab.bind("rx", rx, RX)
    tx = await lab.bind("tx")
    texts = [b"m%d" % i for i in range(12)]
    for t in texts:
        assert (await tx.request(sm("77015550000", t))).status == 0
    await eventually(lambda: sum(rx.texts().values()) >= 12)
    await asyncio.sleep(0.2)
    assert rx.texts() == Counter(texts)
    assert len(rx.got) == 12 + 8
    assert sim.stats.retries >= 8 and sim.stats.delivered == 12


async def test_receiver_dropping_mid_stream_loses_nothing(lab: Lab) -> None:
    sim = await lab.smsc(acc("tx"), acc("rx"), routes=(("7", "rx"),))
    tx = await lab.bind("tx")
    texts = [b"m%d" % i for i in range(20)]
    for t in texts:
        assert (await tx.request(sm("77015550000", t))).status == 0
    first = Rx(lambda n, p: None)  # receives, never answers
    link = await lab.bind("rx", first, RX)
    await eventually(lambda: len(first.got) >= 5)
    link.abort("receiver crashes")
    second = Rx()
    await lab.bind("rx", second, RX)
    await eventually(lambda: set(second.texts()) == set(texts), timeout=2.0)
    await eventually(lambda: sim.pending() == 0)


# ---- limits ---------------------------------------------------------------------------------


async def test_throughput_limit_throttles_a_burst(lab: Lab) -> None:
    sim = await lab.smsc(acc("tx", throughput=20), acc("rx"), routes=(("7", "rx"),))
    tx = await lab.bind("tx")
    resps = await asyncio.gather(*(tx.request(sm("77015550000", b"m%d" % i)) for i in range(60)))
    statuses = Counter(r.status for r in resps)
    assert set(statuses) == {0, Status.ESME_RTHROTTLED}
    assert 15 <= statuses[0] <= 30, statuses
    assert sim.stats.throttled == statuses[Status.ESME_RTHROTTLED]


async def test_window_bounds_deliver_sm_in_flight(lab: Lab) -> None:
    await lab.smsc(acc("tx"), acc("rx", window=3), routes=(("7", "rx"),))
    rx = Rx(delay=0.03)
    await lab.bind("rx", rx, RX)
    tx = await lab.bind("tx")
    texts = [b"m%d" % i for i in range(15)]
    resps = await asyncio.gather(*(tx.request(sm("77015550000", t)) for t in texts))
    assert all(r.status == 0 for r in resps)
    await eventually(lambda: sum(rx.texts().values()) == 15)
    assert rx.max_outstanding == 3
    assert rx.texts() == Counter(texts)


# ---- query_sm, cancel_sm, replace_sm, submit_multi ------------------------------------------


async def test_query_sm_enroute_then_delivered(lab: Lab) -> None:
    await lab.smsc(acc("tx"), acc("rx"), routes=(("7", "rx"),))
    tx = await lab.bind("tx")
    mid = (await tx.request(sm("77015550000"))).message_id  # type: ignore[attr-defined]
    q = await tx.request(QuerySm(message_id=mid, source_addr="77010000001"))
    assert (q.status, q.message_id, q.message_state, q.final_date) == (  # type: ignore[attr-defined]
        0, mid, MessageState.ENROUTE, "")  # fmt: skip
    rx = Rx()
    await lab.bind("rx", rx, RX)
    await eventually(lambda: len(rx.ok) == 1)
    q = await tx.request(QuerySm(message_id=mid, source_addr="77010000001"))
    assert q.status == 0 and q.message_state == MessageState.DELIVERED  # type: ignore[attr-defined]
    assert re.fullmatch(r"\d{12}000\+", q.final_date)  # type: ignore[attr-defined]
    unknown = await tx.request(QuerySm(message_id="nope"))
    assert unknown.status == Status.ESME_RQUERYFAIL


async def test_cancel_sm_stored_message_is_never_delivered(lab: Lab) -> None:
    await lab.smsc(acc("tx"), acc("rx"), routes=(("7", "rx"),))
    tx = await lab.bind("tx")
    doomed = (await tx.request(sm("77015550000", b"doomed"))).message_id  # type: ignore[attr-defined]
    assert (await tx.request(sm("77015550000", b"kept"))).status == 0
    assert (await tx.request(CancelSm(message_id=doomed))).status == 0
    again = await tx.request(CancelSm(message_id=doomed))
    assert again.status == Status.ESME_RCANCELFAIL
    rx = Rx()
    await lab.bind("rx", rx, RX)
    await eventually(lambda: len(rx.ok) == 1)
    await asyncio.sleep(0.2)
    assert [p.short_message for p in rx.got] == [b"kept"]
    q = await tx.request(QuerySm(message_id=doomed))
    assert q.message_state == MessageState.DELETED  # type: ignore[attr-defined]


async def test_replace_sm_changes_the_stored_text(lab: Lab) -> None:
    await lab.smsc(acc("tx"), acc("rx"), routes=(("7", "rx"),))
    tx = await lab.bind("tx")
    mid = (await tx.request(sm("77015550000", b"old text"))).message_id  # type: ignore[attr-defined]
    resp = await tx.request(
        ReplaceSm(message_id=mid, source_addr="77010000001", short_message=b"new text")
    )
    assert resp.status == 0
    rx = Rx()
    await lab.bind("rx", rx, RX)
    await eventually(lambda: len(rx.ok) == 1)
    assert rx.ok[0].short_message == b"new text"
    late = await tx.request(ReplaceSm(message_id=mid, short_message=b"too late"))
    assert late.status == Status.ESME_RREPLACEFAIL


async def test_submit_multi_reports_the_unroutable_destination(lab: Lab) -> None:
    await lab.smsc(acc("tx"), acc("rx"), routes=(("7", "rx"),))
    rx = Rx()
    await lab.bind("rx", rx, RX)
    tx = await lab.bind("tx")
    dests = [SmeAddress(1, 1, "77015550000"), SmeAddress(1, 1, "4420555000"),
             SmeAddress(1, 1, "77025550000")]  # fmt: skip
    resp = await tx.request(
        SubmitMulti(source_addr="77010000001", dest_addresses=list(dests), short_message=b"hi")
    )
    assert resp.status == 0 and resp.message_id  # type: ignore[attr-defined]
    assert [(u.address, u.error_status_code) for u in resp.unsuccess_smes] == [  # type: ignore[attr-defined]
        ("4420555000", Status.ESME_RINVDSTADR)]  # fmt: skip
    await eventually(lambda: len(rx.ok) == 2)
    assert sorted(p.destination_addr for p in rx.ok) == ["77015550000", "77025550000"]


# ---- fault injection ------------------------------------------------------------------------


async def test_fault_throttle_every_third_submit(lab: Lab) -> None:
    await lab.smsc(acc("tx", faults=Faults(throttle_every=3)), acc("rx"), routes=(("7", "rx"),))
    tx = await lab.bind("tx")
    statuses = [(await tx.request(sm("77015550000"))).status for _ in range(9)]
    assert statuses == [0, 0, Status.ESME_RTHROTTLED] * 3


async def test_fault_response_delay(lab: Lab) -> None:
    await lab.smsc(acc("tx", faults=Faults(response_delay=0.3)), acc("rx"), routes=(("7", "rx"),))
    tx = await lab.bind("tx")
    loop = asyncio.get_running_loop()
    start = loop.time()
    resp = await tx.request(sm("77015550000"))
    assert resp.status == 0
    assert loop.time() - start >= 0.3


async def test_fault_dropped_response_fails_the_request_after_timeout(lab: Lab) -> None:
    await lab.smsc(acc("tx", faults=Faults(drop_response_ratio=1.0)), acc("rx"),
                   routes=(("7", "rx"),))  # fmt: skip
    tx = await lab.bind("tx", response_timeout=0.2)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(RequestFailedError, match="no response"):
        await tx.request(sm("77015550000"))
    assert 0.2 <= loop.time() - start < 2.0
    tx.abort("test done")  # the SMSC would hold the unbind until it answers: it never will


async def test_fault_error_status_by_prefix(lab: Lab) -> None:
    faults = Faults(error_status=Status.ESME_RSUBMITFAIL, error_prefix="7702")
    await lab.smsc(acc("tx", faults=faults), acc("rx"), routes=(("7", "rx"),))
    tx = await lab.bind("tx")
    for dest, status in [("77025550000", 0x45), ("77015550000", 0), ("+77025550001", 0x45),
                         ("77770000000", 0)]:  # fmt: skip
        assert (await tx.request(sm(dest))).status == status, dest


async def test_fault_disconnect_after_and_supervisor_reconnects(lab: Lab) -> None:
    await lab.smsc(acc("tx", faults=Faults(disconnect_after=5)), acc("rx"), routes=(("7", "rx"),))
    sup = await lab.supervise("tx", Rx())
    for _ in range(4):
        assert (await sup.request(sm("77015550000"), timeout=2)).status == 0
    with pytest.raises((RequestFailedError, LinkClosedError)):
        await sup.request(sm("77015550000"), timeout=2)
    await eventually(lambda: sup.binds == 2)
    assert (await sup.request(sm("77015550000"), timeout=2)).status == 0


async def test_fault_disconnect_accepts_nothing_after_the_drop(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    sim = await lab.smsc(acc("tx", faults=Faults(disconnect_after=5)), acc("rx"),
                         routes=(("7", "rx"),))  # fmt: skip
    tx = await lab.bind("tx")
    # one write: the SMSC reads all 8 submits at once and drops the link at the 5th
    results = await asyncio.gather(
        *(tx.request(sm("77015550000", b"m%d" % i)) for i in range(8)), return_exceptions=True
    )
    assert all(isinstance(r, Pdu | RequestFailedError | LinkClosedError) for r in results)
    assert "data_received() call failed" not in caplog.text
    assert sim.stats.submitted <= 4  # nothing is accepted on a link already dropped


async def test_fault_garbage_closes_the_receiving_session(lab: Lab) -> None:
    await lab.smsc(acc("tx"), acc("rx", faults=Faults(garbage_after=2)), routes=(("7", "rx"),))
    rx = Rx()
    sup = await lab.supervise("rx", rx, RX)
    first = sup.link
    assert first is not None
    tx = await lab.bind("tx")
    assert (await tx.request(sm("77015550000", b"one"))).status == 0
    await eventually(lambda: len(rx.ok) == 1)
    assert (await tx.request(sm("77015550000", b"two"))).status == 0
    reason, clean = await asyncio.wait_for(first.closed, 3)
    assert "command_length" in reason and not clean
    await eventually(lambda: sup.binds == 2)


async def test_fault_garbage_messages_still_arrive_after_reconnect(lab: Lab) -> None:
    await lab.smsc(acc("tx"), acc("rx", faults=Faults(garbage_after=2)), routes=(("7", "rx"),))
    rx = Rx()
    sup = await lab.supervise("rx", rx, RX)
    tx = await lab.bind("tx")
    assert (await tx.request(sm("77015550000", b"one"))).status == 0
    await eventually(lambda: len(rx.ok) == 1)
    assert (await tx.request(sm("77015550000", b"two"))).status == 0
    await eventually(lambda: sup.binds == 2)
    await eventually(lambda: rx.texts() == Counter([b"one", b"two"]), timeout=1.5)


# ---- store limits and validity ---------------------------------------------------------------


async def test_store_limit_counts_only_messages_still_held(lab: Lab) -> None:
    sim = await lab.smsc(acc("tx"), acc("rx"), routes=(("7", "rx"),), store_limit=3)
    rx = Rx()
    await lab.bind("rx", rx, RX)
    tx = await lab.bind("tx")
    for i in range(3):
        assert (await tx.request(sm("77015550000", b"m%d" % i))).status == 0
    await eventually(lambda: sim.pending() == 0 and len(rx.ok) == 3)
    assert (await tx.request(sm("77015550000", b"m3"))).status == 0


async def test_stored_message_expires_after_validity(lab: Lab) -> None:
    await lab.smsc(acc("tx"), acc("rx"), routes=(("7", "rx"),), validity=0.2)
    tx = await lab.bind("tx")
    mid = (await tx.request(sm("77015550000"))).message_id  # type: ignore[attr-defined]
    await asyncio.sleep(0.4)
    rx = Rx()
    await lab.bind("rx", rx, RX)
    await asyncio.sleep(0.2)
    q = await tx.request(QuerySm(message_id=mid))
    assert (q.message_state, rx.got) == (MessageState.EXPIRED, [])  # type: ignore[attr-defined]


async def test_origin_routes_keep_a2p_and_subscriber_traffic_apart(lab: Lab) -> None:
    sim = await lab.smsc(
        acc("agg"), acc("subs"), acc("rx_a2p"), acc("rx_p2p"),
        routes=(("7", "rx_p2p"),),
    )  # fmt: skip
    from smsc.simulator import Route as SimRoute

    sim.routes.insert(0, SimRoute("7", "rx_a2p", origin="agg"))
    a2p, p2p = Rx(), Rx()
    await lab.bind("rx_a2p", a2p, RX)
    await lab.bind("rx_p2p", p2p, RX)
    agg, subs = await lab.bind("agg"), await lab.bind("subs")
    assert (await agg.request(sm("77015550000", b"from the aggregator"))).status == 0
    assert (await subs.request(sm("77015550000", b"from a subscriber"))).status == 0
    await eventually(lambda: len(a2p.got) == 1 and len(p2p.got) == 1)
    assert a2p.texts() == Counter([b"from the aggregator"])
    assert p2p.texts() == Counter([b"from a subscriber"])


# ---- a peer that repeats a pending sequence number ------------------------------------------


@pytest.mark.parametrize("delay", [0.0, 0.2])
async def test_a_repeated_sequence_number_is_answered_and_nothing_raises(
    lab: Lab, caplog: pytest.LogCaptureFixture, delay: float
) -> None:
    """Two submit_sm under one sequence_number while the first is pending (in one read, or
    while its answer is delayed): the repeat is answered ESME_RSYSERR at once, the first gets
    its own answer, only the first is stored, and no callback raises."""
    sim = await lab.smsc(acc("tx", faults=Faults(response_delay=delay)), acc("rx"),
                         routes=(("7", "rx"),))  # fmt: skip
    reader, writer = await raw_smpp.connect(sim.port)
    writer.write(BindTransceiver(sequence=1, system_id="tx", password="pw").encode())
    assert (bound := await raw_smpp.read_pdu(reader)) is not None and bound.status == 0
    writer.write(sm("77015550000", b"first", sequence=5).encode())
    if delay:
        await asyncio.sleep(0.05)
    writer.write(sm("77015550000", b"again", sequence=5).encode())
    resps = await raw_smpp.read_pdus(reader, 2)
    writer.close()
    assert sorted((r.sequence, r.status) for r in resps) == [(5, 0), (5, Status.ESME_RSYSERR)]
    assert [m.short_message for m in sim.messages.values()] == [b"first"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ---- a bind whose session closes before it is answered --------------------------------------


async def test_a_bind_followed_by_garbage_in_one_read_logs_no_traceback(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    """The session closes on the unframeable bytes before the bind reaches the SMSC: the bind is
    dropped quietly (a debug line), not answered on a closed session with a traceback."""
    caplog.set_level(logging.DEBUG, logger="fraudgate")
    sim = await lab.smsc(acc("gw"))
    for _ in range(3):
        reader, writer = await raw_smpp.connect(sim.port)
        bind = BindTransceiver(sequence=1, system_id="gw", password="pw").encode()
        writer.write(bind + b"\x00\x00\x00\x05garbage!!")  # command_length 5: unframeable
        assert await raw_smpp.closed_by_peer(reader)
        writer.close()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not sim.server.links and not sim.accounts["gw"].links
    quiet = [r for r in caplog.records if "closed before it was answered" in r.getMessage()]
    assert len(quiet) == 3 and all(r.levelno == logging.DEBUG for r in quiet)


# ---- clients that send and never read --------------------------------------------------------

FLOOD = EnquireLink(sequence=7).encode() * 1000


class _Peak:
    """The largest write buffer seen on the server's link for a connection."""

    def __init__(self, sim: SimulatedSmsc) -> None:
        self.sim, self.bytes = sim, 0
        self.link: Link | None = None

    def __call__(self) -> None:
        links = [link for link in self.sim.server.links if link.transport is not None]
        if self.link is None and links:
            (self.link,) = links
            raw_smpp.shrink_send_buffer(self.link.transport)
        if self.link is not None and self.link.transport is not None:
            self.bytes = max(self.bytes, self.link.transport.get_write_buffer_size())


async def test_an_unbound_client_flooding_requests_is_dropped(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    """100k enquire_link before any bind, never reading the answers: the SMSC drops the
    connection after a few (it used to answer them all, 45 MiB buffered for a bigger flood)."""
    sim = await lab.smsc(acc("gw"))
    sock = raw_smpp.non_reading_socket()
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", sim.port))
    peak = _Peak(sim)
    await eventually(lambda: peak() or peak.link is not None)
    link = peak.link
    assert link is not None
    _, closed = await raw_smpp.flood(sock, FLOOD * 100, 5.0, peak)  # 100k enquire_link
    sock.close()
    assert closed and link.session.closed
    assert peak.bytes < 4096, peak.bytes
    reason, _ = await link.closed
    assert "before a bind" in reason
    drops = [r for r in caplog.records if "before a bind" in r.getMessage()]
    assert len(drops) == 1  # one line for the drop, none per PDU


async def test_a_bound_client_that_never_reads_is_paused_then_dropped(lab: Lab) -> None:
    """A bound client floods enquire_link and never reads: the SMSC stops reading it once its
    write buffer passes the high-water mark (it used to buffer every answer), then its own
    enquire_link goes unanswered and the link is dropped, the unsent answers discarded."""
    sim = await lab.smsc(acc("gw"), enquire_link_interval=0.5, response_timeout=0.5)
    sock = raw_smpp.non_reading_socket()
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", sim.port))
    await loop.sock_sendall(
        sock, BindTransceiver(sequence=1, system_id="gw", password="pw").encode()
    )
    await eventually(lambda: any(link.session.bound for link in sim.server.links))
    peak = _Peak(sim)
    sent, closed = await raw_smpp.flood(sock, FLOOD, 10.0, peak)
    sock.close()
    assert sent >= 100_000 * 16, sent
    assert closed
    assert peak.bytes <= WRITE_HIGH_WATER + 64 * 1024, peak.bytes


# ---- bind guard ------------------------------------------------------------------------------


async def test_outside_the_allow_list_the_answer_does_not_depend_on_the_password(lab: Lab) -> None:
    """The source address is checked before the password: from outside an account's allow-list
    the right and a wrong password get the same ESME_RBINDFAIL (it used to be 0x0D for the right
    one and 0x0E for a wrong one: a password oracle)."""
    sim = await lab.smsc(acc("far", allow_ips=(ipaddress.ip_network("10.0.0.0/8"),)))
    right = await raw_smpp.bind_status(sim.port, "far", "pw")
    wrong = await raw_smpp.bind_status(sim.port, "far", "guess")
    assert right == wrong == Status.ESME_RBINDFAIL


async def test_a_refused_bind_is_answered_then_the_connection_closed(lab: Lab) -> None:
    """One guess per connection: 2,001 binds written at once get one password check, the
    refusal, and the close (all 2,001 used to be answered, a password checked for each)."""
    sim = await lab.smsc(acc("gw"))
    reader, writer = await raw_smpp.connect(sim.port)
    guesses = [BindTransceiver(sequence=i, system_id="gw", password=f"g{i}") for i in range(2001)]
    writer.write(b"".join(p.encode() for p in guesses[:-1]) + guesses[-1].encode())
    answers = await raw_smpp.read_pdus(reader, 2001)
    writer.close()
    checked = [p for p in answers if p.status == Status.ESME_RINVPASWD]
    assert len(checked) == 1 and checked[0].sequence == 0
    assert len(answers) <= RECEIVE_SLICE  # the rest of the first read: ESME_RALYBND, unchecked
    assert {p.status for p in answers if p not in checked} <= {Status.ESME_RALYBND}


async def test_brute_force_from_one_address_gets_a_handful_of_guesses(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    """An attacker at 127.0.0.2 reconnects and guesses as fast as it can for 1.5 s: five
    passwords are checked, then the address is locked out (the right password included, same
    answer as a guess), one log line, no password in the log; the real client at 127.0.0.1
    binds all along. Before: every guess checked, about 1,100 a second."""
    caplog.set_level(logging.DEBUG)
    sim = await lab.smsc(acc("gw"))
    loop = asyncio.get_running_loop()
    answers: Counter[int] = Counter()
    end = loop.time() + 1.5
    while loop.time() < end:
        guess = f"g{answers.total()}"  # at most 8 octets (§5.2.2)
        answers[await raw_smpp.bind_status(sim.port, "gw", guess, source="127.0.0.2")] += 1
    assert answers[Status.ESME_RINVPASWD] == 5  # BindGuardConfig.address_failures
    assert set(answers) == {Status.ESME_RINVPASWD, Status.ESME_RBINDFAIL}
    assert answers.total() > 50  # it kept trying
    right = await raw_smpp.bind_status(sim.port, "gw", "pw", source="127.0.0.2")
    assert right == Status.ESME_RBINDFAIL
    assert (await lab.bind("gw")).session.bound  # the legitimate client, elsewhere
    assert sim.stats.binds_refused == answers.total() + 1
    assert sim.stats.binds_locked_out == answers.total() + 1 - 5
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    refusals = [m for m in lines if "refused" in m]
    assert len(refusals) == 1 and "127.0.0.2" in refusals[0], refusals
    assert not [r for r in caplog.records if re.search(r"\bg\d+\b", r.getMessage())]


async def test_guessing_from_many_addresses_locks_the_system_id_but_not_its_client(
    lab: Lab,
) -> None:
    sim = await lab.smsc(acc("gw"), bind_guard=BindGuardConfig(system_id_failures=3))
    assert (await lab.bind("gw")).session.bound  # the real client, from 127.0.0.1
    for i in range(3):  # one guess from each address: none reaches its own limit
        guess = await raw_smpp.bind_status(sim.port, "gw", "guess", source=f"127.0.0.{10 + i}")
        assert guess == Status.ESME_RINVPASWD
    stranger = await raw_smpp.bind_status(sim.port, "gw", "pw", source="127.0.0.20")
    assert stranger == Status.ESME_RBINDFAIL  # locked, even with the password
    assert (await lab.bind("gw")).session.bound  # the client that has bound before
