"""A read holding many PDUs is handled in slices, with a write after each slice.

`Session.receive_data(max_pdus=...)` stops after that many PDUs and keeps the rest buffered
(`pdu_ready` tells whether another complete one waits); `Link.data_received` uses it so the
peer gets the first answers while the rest of a window is still being handled.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from smsc.link import RECEIVE_SLICE, Link, LinkClosedError
from smsc.pdu import BindTransceiver, DeliverSm, Pdu, SubmitSm, decode_pdu
from smsc.session import BindRequested, BindType, RequestReceived, Role, Session

BIND = BindTransceiver(sequence=1, system_id="esme", password="pw").encode()


def submits(n: int, first_seq: int = 2) -> bytes:
    return b"".join(
        SubmitSm(sequence=first_seq + i, destination_addr="4915112345678").encode()
        for i in range(n)
    )


def bound_smsc() -> Session:
    session = Session(Role.SMSC)
    [event] = session.receive_data(BIND)
    assert isinstance(event, BindRequested)
    session.accept_bind(event.pdu, "smsc")
    session.data_to_send()
    return session


def test_receive_data_stops_after_max_pdus_and_keeps_the_rest() -> None:
    session = bound_smsc()
    first = session.receive_data(submits(20), max_pdus=8)
    assert [e.pdu.sequence for e in first if isinstance(e, RequestReceived)] == list(range(2, 10))
    assert session.pdu_ready
    assert len(session.receive_data(b"", max_pdus=8)) == 8
    assert session.pdu_ready
    assert len(session.receive_data(b"", max_pdus=8)) == 4
    assert not session.pdu_ready


def test_without_max_pdus_everything_is_handled() -> None:
    session = bound_smsc()
    assert len(session.receive_data(submits(20))) == 20
    assert not session.pdu_ready


def test_pdu_ready_is_false_for_a_partial_pdu() -> None:
    session = bound_smsc()
    raw = submits(1)
    assert session.receive_data(raw[:10], max_pdus=8) == []
    assert not session.pdu_ready
    assert len(session.receive_data(raw[10:], max_pdus=8)) == 1


class _Answering:
    def on_request(self, link: Link, pdu: Pdu) -> None:
        link.respond(pdu.response(message_id=f"id{pdu.sequence}"))

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:
        link.accept_bind(pdu, "smsc")

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        pass


class _RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.reading = True
        self.pauses = 0

    def pause_reading(self) -> None:
        self.reading = False
        self.pauses += 1

    def resume_reading(self) -> None:
        self.reading = True

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass  # nothing is buffered here: pause_writing is never called

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def split_pdus(data: bytes) -> list[Pdu]:
    pdus, offset = [], 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        pdus.append(decode_pdu(data[offset : offset + length]))
        offset += length
    return pdus


async def _bound_link() -> tuple[Link, _RecordingTransport]:
    link = Link(Role.SMSC, _Answering())
    transport = _RecordingTransport()
    link.connection_made(transport)
    link.data_received(BIND)
    assert link.session.bound
    transport.writes.clear()
    return link, transport


async def test_link_writes_the_answers_after_each_slice() -> None:
    link, transport = await _bound_link()

    link.data_received(submits(20))
    assert len(transport.writes) == 1  # the first slice is answered at once
    for _ in range(5):
        await asyncio.sleep(0)  # the rest, a slice per loop tick

    assert len(transport.writes) == -(-20 // RECEIVE_SLICE)  # one write per slice
    answers = [pdu for chunk in transport.writes for pdu in split_pdus(chunk)]
    assert [a.sequence for a in answers] == list(range(2, 22))
    link.abort("test over")


async def test_other_tasks_run_between_slices() -> None:
    """A window's worth of PDUs does not monopolise the loop: a task that became ready while
    the first slice was handled runs before the second slice (the recorder commits the first
    verdicts while the rest are inspected)."""
    link, transport = await _bound_link()
    order: list[str] = []

    async def other() -> None:
        order.append(f"other after {len(transport.writes)} writes")

    link.data_received(submits(3 * RECEIVE_SLICE))
    task = asyncio.create_task(other())
    for _ in range(5):
        await asyncio.sleep(0)
    await task
    assert order == ["other after 2 writes"]  # slice 1 in data_received, slice 2 next tick
    assert len(transport.writes) == 3
    link.abort("test over")


async def test_reading_pauses_while_complete_pdus_wait() -> None:
    """Backpressure: while PDUs already read wait for their slice, the socket is not read, so
    a peer ignoring the window fills its own send buffer, not our memory."""
    link, transport = await _bound_link()
    link.data_received(submits(3 * RECEIVE_SLICE))
    assert not transport.reading and transport.pauses == 1
    link.data_received(submits(RECEIVE_SLICE, first_seq=100))  # already in flight: still taken
    assert transport.pauses == 1  # paused once, not again
    for _ in range(6):
        await asyncio.sleep(0)
    assert transport.reading
    answers = [pdu for chunk in transport.writes for pdu in split_pdus(chunk)]
    assert len(answers) == 4 * RECEIVE_SLICE
    assert [a.sequence for a in answers] == sorted(a.sequence for a in answers)  # in order
    link.abort("test over")


async def test_a_link_closed_between_slices_handles_nothing_more() -> None:
    link, transport = await _bound_link()
    link.data_received(submits(3 * RECEIVE_SLICE))
    link.abort("peer gone")
    for _ in range(5):
        await asyncio.sleep(0)
    answers = [pdu for chunk in transport.writes for pdu in split_pdus(chunk)]
    assert len(answers) == RECEIVE_SLICE  # only the slice handled before the close


def test_an_oversized_header_not_yet_complete_is_not_ready() -> None:
    session = bound_smsc()
    head = (1_000_000).to_bytes(4, "big") + b"\x00\x00\x00\x04"  # 8 of the 16 header octets
    assert session.receive_data(head, max_pdus=8) == []
    assert not session.pdu_ready  # Link.data_received would otherwise spin
    events = session.receive_data(b"\x00" * 4 + (77).to_bytes(4, "big"), max_pdus=8)
    assert session.closed and events


class _Exploding(_Answering):
    def __init__(self) -> None:
        self.seen = 0

    def on_request(self, link: Link, pdu: Pdu) -> None:
        self.seen += 1
        if self.seen > RECEIVE_SLICE:  # a bug in the handler, in the second slice
            raise RuntimeError("handler bug")
        super().on_request(link, pdu)


async def test_a_handler_error_in_a_later_slice_closes_the_link_instead_of_stalling() -> None:
    handler = _Exploding()
    link = Link(Role.SMSC, handler)
    transport = _RecordingTransport()
    link.connection_made(transport)
    link.data_received(BIND)
    link.data_received(submits(3 * RECEIVE_SLICE))
    for _ in range(5):
        await asyncio.sleep(0)  # the second slice raises inside a loop callback
    assert link.session.closed  # closed (the SMSC redelivers), not paused forever
    assert link.closed.done()


async def test_reading_pauses_while_the_peer_leaves_our_writes_unread() -> None:
    link, transport = await _bound_link()

    def answered() -> int:
        return len(split_pdus(b"".join(transport.writes)))

    link.pause_writing()  # the transport's buffer passed the high-water mark
    assert not transport.reading
    link.data_received(submits(20))  # already read: one slice is handled, the rest waits
    for _ in range(5):
        await asyncio.sleep(0)
    assert answered() == RECEIVE_SLICE and not transport.reading
    link.resume_writing()  # below the low-water mark: the rest, then reading again
    for _ in range(5):
        await asyncio.sleep(0)
    assert answered() == 20 and transport.reading


async def test_a_request_waiting_for_the_peer_to_read_fails_cleanly_when_the_link_drops() -> None:
    link, _ = await _bound_link()
    link.pause_writing()
    waiting = asyncio.ensure_future(link.request(DeliverSm(destination_addr="77010000001")))
    await asyncio.sleep(0)
    link.connection_lost(None)
    with pytest.raises(LinkClosedError):
        await waiting
