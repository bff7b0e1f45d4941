"""smsc/session.py: an ESME session and an SMSC session wired back to back in memory.

Bytes are pumped between `data_to_send()` and `receive_data()`; time is a number passed in
(`now`), so timeouts and enquire_link are tested with a simulated clock.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from smsc.constants import CommandId, Status
from smsc.pdu import (
    AlertNotification,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    decode_pdu,
)
from smsc.session import (
    TRANSITIONS,
    BindRejected,
    BindRequested,
    BindType,
    Bound,
    Closed,
    Event,
    Input,
    NotificationReceived,
    ProtocolViolation,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    Role,
    Session,
    SessionConfig,
    SessionError,
    State,
    UnbindRequested,
    WindowFullError,
)

BIND_CLASSES = {
    BindType.TRANSMITTER: BindTransmitter,
    BindType.RECEIVER: BindReceiver,
    BindType.TRANSCEIVER: BindTransceiver,
}
BOUND_STATES = {
    BindType.TRANSMITTER: State.BOUND_TX,
    BindType.RECEIVER: State.BOUND_RX,
    BindType.TRANSCEIVER: State.BOUND_TRX,
}


def split_pdus(data: bytes) -> list[Pdu]:
    """Decode a byte stream of complete PDUs (what one side put on the wire)."""
    out, pos = [], 0
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        out.append(decode_pdu(data[pos : pos + length]))
        pos += length
    return out


class Wire:
    """An ESME session and an SMSC session, with a log of every PDU each one sent."""

    def __init__(self, config: SessionConfig | None = None) -> None:
        config = config or SessionConfig()
        self.esme = Session(Role.ESME, replace(config))  # a copy each: tests tune one side
        self.smsc = Session(Role.SMSC, replace(config))
        self.from_esme: list[Pdu] = []
        self.from_smsc: list[Pdu] = []

    def pump(self, now: float = 0.0) -> tuple[list[Event], list[Event]]:
        """Move bytes both ways until both are quiet; (events at the ESME, events at the SMSC)."""
        at_esme: list[Event] = []
        at_smsc: list[Event] = []
        while True:
            a = self.esme.data_to_send()
            b = self.smsc.data_to_send()
            if not a and not b:
                return at_esme, at_smsc
            if a:
                self.from_esme += split_pdus(a)
                at_smsc += self.smsc.receive_data(a, now)
            if b:
                self.from_smsc += split_pdus(b)
                at_esme += self.esme.receive_data(b, now)

    def bind(self, bind_type: BindType, now: float = 0.0) -> None:
        self.esme.bind(bind_type, "esme1", "secret", now=now)
        _, at_smsc = self.pump(now)
        assert len(at_smsc) == 1 and isinstance(at_smsc[0], BindRequested)
        assert self.smsc.accept_bind(at_smsc[0].pdu, "SMSC") == [Bound(bind_type, "esme1")]
        at_esme, _ = self.pump(now)
        assert at_esme == [Bound(bind_type, "SMSC")]

    def submit(self, text: bytes = b"hi", now: float = 0.0) -> int:
        return self.esme.send_request(
            SubmitSm(source_addr="1234", destination_addr="5678", short_message=text), now
        )


def bound(bind_type: BindType = BindType.TRANSCEIVER, **config: float) -> Wire:
    wire = Wire(SessionConfig(**config))  # type: ignore[arg-type]
    wire.bind(bind_type)
    return wire


def only(events: list[Event], kind: type) -> list[Event]:
    return [e for e in events if isinstance(e, kind)]


# --------------------------------------------------------------------------------------------
# Binding


@pytest.mark.parametrize("bind_type", list(BindType))
def test_bind_accepted(bind_type: BindType) -> None:
    wire = Wire()
    seq = wire.esme.bind(bind_type, "esme1", "secret", system_type="FG", now=0.0)
    assert wire.esme.state is State.BINDING
    _, at_smsc = wire.pump()
    assert len(at_smsc) == 1
    req = at_smsc[0]
    assert isinstance(req, BindRequested) and req.bind_type is bind_type
    assert type(req.pdu) is BIND_CLASSES[bind_type]
    assert (req.pdu.system_id, req.pdu.password, req.pdu.system_type) == ("esme1", "secret", "FG")  # type: ignore[attr-defined]
    assert req.pdu.sequence == seq
    assert wire.smsc.accept_bind(req.pdu, "SMSC") == [Bound(bind_type, "esme1")]
    at_esme, _ = wire.pump()
    assert at_esme == [Bound(bind_type, "SMSC")]
    assert wire.esme.state is wire.smsc.state is BOUND_STATES[bind_type]
    assert wire.esme.bound and wire.smsc.bound
    assert wire.esme.peer_system_id == "SMSC" and wire.smsc.peer_system_id == "esme1"
    resp = wire.from_smsc[-1]
    assert resp.command_id == BIND_CLASSES[bind_type].command_id | 0x80000000
    assert (resp.sequence, resp.status, resp.system_id) == (seq, 0, "SMSC")  # type: ignore[attr-defined]


@pytest.mark.parametrize("bind_type", list(BindType))
@pytest.mark.parametrize(
    "status", [Status.ESME_RINVPASWD, Status.ESME_RINVSYSID, Status.ESME_RBINDFAIL, 0x401]
)
def test_bind_rejected_status_passes_through(bind_type: BindType, status: int) -> None:
    wire = Wire()
    wire.esme.bind(bind_type, "esme1", "wrong", now=0.0)
    _, at_smsc = wire.pump()
    wire.smsc.reject_bind(at_smsc[0].pdu, status)  # type: ignore[union-attr]
    at_esme, _ = wire.pump()
    assert at_esme == [BindRejected(status)]
    assert wire.esme.state is State.OPEN and wire.smsc.state is State.OPEN
    assert not wire.esme.closed
    # on the wire: an error bind_resp without body (16 octets)
    assert wire.from_smsc[-1].encode()[8:12] == status.to_bytes(4, "big")
    assert len(wire.from_smsc[-1].encode()) == 16
    # the same connection may bind again
    wire.bind(bind_type)
    assert wire.esme.state is BOUND_STATES[bind_type]


def test_reject_bind_needs_an_error_status() -> None:
    wire = Wire()
    wire.esme.bind(BindType.TRANSMITTER, "esme1", "x")
    _, at_smsc = wire.pump()
    with pytest.raises(SessionError):
        wire.smsc.reject_bind(at_smsc[0].pdu, 0)  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------------
# State table refusals


def test_submit_sm_before_bind_raises_locally() -> None:
    esme = Session(Role.ESME)
    with pytest.raises(SessionError):
        esme.send_request(SubmitSm(source_addr="1", destination_addr="2"))
    assert esme.data_to_send() == b""
    assert esme.in_flight == 0


def test_submit_sm_from_a_receiver_is_refused_by_the_smsc() -> None:
    wire = bound(BindType.RECEIVER)
    with pytest.raises(SessionError):  # our own ESME does not even send it
        wire.submit()
    # a peer that does: the SMSC answers submit_sm_resp ESME_RINVBNDSTS with its sequence
    raw = SubmitSm(sequence=42, source_addr="1", destination_addr="2").encode()
    events = wire.smsc.receive_data(raw, 1.0)
    assert len(events) == 1 and isinstance(events[0], ProtocolViolation)
    (resp,) = split_pdus(wire.smsc.data_to_send())
    assert isinstance(resp, SubmitSmResp)
    assert (resp.sequence, resp.status) == (42, Status.ESME_RINVBNDSTS)
    assert not wire.smsc.closed and wire.smsc.pending_incoming == 0


def test_deliver_sm_to_a_transmitter_is_refused_by_the_esme() -> None:
    wire = bound(BindType.TRANSMITTER)
    with pytest.raises(SessionError):
        wire.smsc.send_request(DeliverSm(source_addr="1", destination_addr="2"))
    raw = DeliverSm(sequence=7, source_addr="1", destination_addr="2").encode()
    events = wire.esme.receive_data(raw, 1.0)
    assert len(events) == 1 and isinstance(events[0], ProtocolViolation)
    (resp,) = split_pdus(wire.esme.data_to_send())
    assert isinstance(resp, DeliverSmResp)
    assert (resp.sequence, resp.status) == (7, Status.ESME_RINVBNDSTS)
    assert not wire.esme.closed


@pytest.mark.parametrize("second", list(BindType))
def test_second_bind_is_already_bound(second: BindType) -> None:
    wire = bound(BindType.TRANSCEIVER)
    with pytest.raises(SessionError):
        wire.esme.bind(second, "esme1", "secret")
    raw = BIND_CLASSES[second](sequence=9, system_id="esme1", password="secret").encode()
    events = wire.smsc.receive_data(raw, 1.0)
    assert not only(events, BindRequested)
    (resp,) = split_pdus(wire.smsc.data_to_send())
    assert resp.command_id == BIND_CLASSES[second].command_id | 0x80000000
    assert (resp.sequence, resp.status) == (9, Status.ESME_RALYBND)
    assert wire.smsc.state is State.BOUND_TRX


def test_deliver_sm_to_a_receiver_reaches_the_app() -> None:
    wire = bound(BindType.RECEIVER)
    seq = wire.smsc.send_request(DeliverSm(source_addr="1", destination_addr="2", esm_class=4))
    at_esme, _ = wire.pump()
    assert len(at_esme) == 1 and isinstance(at_esme[0], RequestReceived)
    assert at_esme[0].pdu.sequence == seq


# --------------------------------------------------------------------------------------------
# Window, matching, timeouts


def test_window_of_50_then_full_and_a_response_frees_a_slot() -> None:
    wire = bound()
    seqs = [wire.submit(str(i).encode()) for i in range(50)]
    assert wire.esme.in_flight == 50 and wire.esme.window_free == 0
    with pytest.raises(WindowFullError):
        wire.submit(b"one too many")
    _, at_smsc = wire.pump()
    assert len(at_smsc) == 50
    # link-level requests still go when the window is full
    wire.esme.enquire_link()
    wire.pump()
    assert wire.esme.in_flight == 50
    # answer one: one slot
    first = at_smsc[0].pdu  # type: ignore[union-attr]
    wire.smsc.send_response(first.response(message_id="m0"))
    at_esme, _ = wire.pump()
    assert [type(e) for e in at_esme] == [ResponseReceived]
    assert wire.esme.window_free == 1
    new_seq = wire.submit(b"fits now")
    assert new_seq not in seqs
    with pytest.raises(WindowFullError):
        wire.submit(b"full again")


def test_responses_out_of_order_and_late_match_their_requests() -> None:
    wire = bound(response_timeout=60.0, enquire_link_interval=1000.0)
    texts = [f"msg{i}".encode() for i in range(5)]
    for t in texts:
        wire.submit(t, now=0.0)
    _, at_smsc = wire.pump(0.0)
    requests = {e.pdu.short_message: e.pdu for e in at_smsc}  # type: ignore[union-attr]
    # the verdicts come later and in another order
    for when, i in zip((10.0, 20.0, 30.0, 45.0, 59.0), (3, 0, 4, 1, 2), strict=True):
        req = requests[texts[i]]
        assert wire.esme.handle_timer(when) == []
        wire.smsc.send_response(req.response(message_id=f"id-{i}"))
        at_esme, _ = wire.pump(when)
        assert len(at_esme) == 1
        ev = at_esme[0]
        assert isinstance(ev, ResponseReceived)
        assert ev.request.short_message == texts[i]  # type: ignore[attr-defined]
        assert ev.response.message_id == f"id-{i}"  # type: ignore[attr-defined]
        assert ev.response.sequence == ev.request.sequence
        assert ev.elapsed == when
    assert wire.esme.in_flight == 0


def test_response_timeout_fails_the_request_on_the_simulated_clock() -> None:
    wire = bound(response_timeout=5.0, enquire_link_interval=1000.0)
    seq = wire.submit(b"x", now=100.0)
    assert wire.esme.next_deadline() == 105.0
    assert wire.esme.handle_timer(104.999) == []
    events = wire.esme.handle_timer(105.0)
    assert len(events) == 1 and isinstance(events[0], RequestFailed)
    assert events[0].request.sequence == seq
    assert wire.esme.in_flight == 0 and not wire.esme.closed
    # the answer that comes after the timeout is not matched to anything
    _, at_smsc = wire.pump(105.5)
    wire.smsc.send_response(at_smsc[0].pdu.response(message_id="late"))  # type: ignore[union-attr]
    at_esme, _ = wire.pump(106.0)
    assert [type(e) for e in at_esme] == [ProtocolViolation]


@pytest.mark.parametrize("status", [0x58, 0x66, 0x401, 0x0A, 0x45, 0x14, 0xFF])
def test_any_command_status_reaches_the_app_unchanged(status: int) -> None:
    wire = bound()
    wire.submit()
    _, at_smsc = wire.pump()
    wire.smsc.send_response(at_smsc[0].pdu.response(status))  # type: ignore[union-attr]
    at_esme, _ = wire.pump()
    (ev,) = at_esme
    assert isinstance(ev, ResponseReceived) and isinstance(ev.response, SubmitSmResp)
    assert ev.response.status == status
    assert wire.from_smsc[-1].encode()[8:12] == status.to_bytes(4, "big")
    # and the other way: deliver_sm_resp status from the ESME to the SMSC
    wire.smsc.send_request(DeliverSm(source_addr="1", destination_addr="2"))
    at_esme, _ = wire.pump()
    wire.esme.send_response(at_esme[0].pdu.response(status))  # type: ignore[union-attr]
    _, at_smsc = wire.pump()
    (ev,) = at_smsc
    assert isinstance(ev, ResponseReceived) and ev.response.status == status


def test_sequence_numbers_increase() -> None:
    wire = bound()  # the bind took 1
    seqs = [wire.submit() for _ in range(5)]
    assert seqs == [2, 3, 4, 5, 6]
    assert [p.sequence for p in wire.from_esme] == [1]  # nothing pumped yet
    wire.pump()
    assert [p.sequence for p in wire.from_esme[1:]] == seqs


def test_sequence_numbers_wrap_after_0x7fffffff_to_1() -> None:
    wire = bound()
    wire.esme._seq = itertools.count(0x7FFFFFFE)  # as if 2**31 - 3 requests had gone
    seqs = [wire.submit(str(i).encode()) for i in range(4)]
    assert seqs == [0x7FFFFFFE, 0x7FFFFFFF, 1, 2]
    _, at_smsc = wire.pump()
    for ev in reversed(at_smsc):
        wire.smsc.send_response(ev.pdu.response(message_id=str(ev.pdu.sequence)))  # type: ignore[union-attr]
    at_esme, _ = wire.pump()
    assert len(at_esme) == 4
    for ev in at_esme:
        assert isinstance(ev, ResponseReceived)
        assert ev.response.message_id == str(ev.request.sequence)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# enquire_link


def test_enquire_link_after_silence_is_answered_by_the_peer() -> None:
    wire = bound(enquire_link_interval=10.0, response_timeout=5.0)
    assert wire.esme.next_deadline() == 10.0
    assert wire.esme.handle_timer(9.99) == []
    assert wire.esme.data_to_send() == b""
    assert wire.esme.handle_timer(10.0) == []
    at_esme, at_smsc = wire.pump(10.0)
    assert at_esme == [] and at_smsc == []  # answered by the SMSC session itself
    assert isinstance(wire.from_esme[-1], EnquireLink)
    assert isinstance(wire.from_smsc[-1], EnquireLinkResp)
    assert wire.from_smsc[-1].sequence == wire.from_esme[-1].sequence
    assert wire.esme.in_flight == 0
    # the link is alive: nothing fails when the response timeout would have passed
    assert wire.esme.handle_timer(15.0) == []
    assert not wire.esme.closed
    assert wire.esme.next_deadline() == 20.0


def test_enquire_link_is_not_sent_while_traffic_flows() -> None:
    wire = bound(enquire_link_interval=10.0)
    for t in (5.0, 12.0, 19.0):
        wire.smsc.send_request(DeliverSm(source_addr="1", destination_addr="2"), t)
        at_esme, _ = wire.pump(t)
        wire.esme.send_response(at_esme[0].pdu.response())  # type: ignore[union-attr]
        wire.pump(t)
        assert wire.esme.handle_timer(t + 1) == []
    assert not any(isinstance(p, EnquireLink) for p in wire.from_esme)


def test_unanswered_enquire_link_closes_and_fails_everything_in_flight() -> None:
    wire = bound(enquire_link_interval=10.0, response_timeout=5.0)
    wire.esme.handle_timer(10.0)  # enquire_link goes out, the peer is dead: never pumped
    assert isinstance(split_pdus(wire.esme.data_to_send())[0], EnquireLink)
    seqs = {wire.submit(str(i).encode(), now=11.0) for i in range(3)}
    assert wire.esme.handle_timer(14.9) == []
    events = wire.esme.handle_timer(15.0)
    failed = only(events, RequestFailed)
    assert {e.request.sequence for e in failed} == seqs  # type: ignore[attr-defined]
    assert len(failed) == 3
    assert isinstance(events[-1], Closed) and events[-1].clean is False
    assert "enquire_link" in events[-1].reason
    assert wire.esme.closed and wire.esme.in_flight == 0
    assert wire.esme.next_deadline() is None


# --------------------------------------------------------------------------------------------
# Unbind and connection loss


def test_unbind_from_the_peer_drains_pending_requests_first() -> None:
    wire = bound()
    for i in range(3):
        wire.submit(str(i).encode())
    _, at_smsc = wire.pump()
    pending = [e.pdu for e in at_smsc]  # type: ignore[union-attr]
    assert len(pending) == 3 and wire.smsc.pending_incoming == 3
    unbind_seq = wire.esme.unbind()
    assert wire.esme.state is State.UNBINDING
    _, at_smsc = wire.pump()
    assert at_smsc == [UnbindRequested()]
    assert wire.smsc.state is State.PEER_UNBINDING
    assert not any(isinstance(p, UnbindResp) for p in wire.from_smsc)
    # the app answers, in its own time and order; unbind_resp only after the last one
    assert wire.smsc.send_response(pending[1].response(message_id="b")) == []
    assert wire.smsc.send_response(pending[0].response(status=0x66)) == []
    wire.pump()
    assert not any(isinstance(p, UnbindResp) for p in wire.from_smsc)
    assert not wire.smsc.closed
    events = wire.smsc.send_response(pending[2].response(message_id="c"))
    assert events == [Closed("unbound by peer", clean=True)]
    at_esme, _ = wire.pump()
    tail = wire.from_smsc[-2:]
    assert isinstance(tail[0], SubmitSmResp) and tail[0].sequence == pending[2].sequence
    assert isinstance(tail[1], UnbindResp) and tail[1].sequence == unbind_seq
    assert len(only(at_esme, ResponseReceived)) == 1  # the third; the other two came before
    assert at_esme[-1] == Closed("unbound", clean=True)
    assert wire.esme.closed and wire.smsc.closed


def test_unbind_from_the_peer_with_nothing_pending_is_answered_at_once() -> None:
    wire = bound()
    wire.esme.unbind()
    at_esme, at_smsc = wire.pump()
    assert at_smsc == [UnbindRequested(), Closed("unbound by peer", clean=True)]
    assert at_esme == [Closed("unbound", clean=True)]


def test_connection_lost_fails_in_flight_requests() -> None:
    wire = bound()
    seqs = {wire.submit(str(i).encode()) for i in range(3)}
    wire.pump()
    events = wire.esme.connection_lost("peer reset")
    failed = only(events, RequestFailed)
    assert {e.request.sequence for e in failed} == seqs  # type: ignore[attr-defined]
    assert events[-1] == Closed("peer reset", clean=False)
    assert len(events) == 4
    assert wire.esme.connection_lost() == []
    assert wire.esme.receive_data(EnquireLink(sequence=1).encode(), 1.0) == []


def test_send_response_for_an_unknown_sequence_is_refused() -> None:
    wire = bound()
    with pytest.raises(SessionError):
        wire.smsc.send_response(SubmitSmResp(sequence=999))
    wire.submit()
    _, at_smsc = wire.pump()
    with pytest.raises(SessionError):  # wrong response type for the request
        wire.smsc.send_response(DeliverSmResp(sequence=at_smsc[0].pdu.sequence))  # type: ignore[union-attr]
    assert wire.smsc.pending_incoming == 1


# --------------------------------------------------------------------------------------------
# alert_notification has no response (§4.12)


def test_alert_notification_does_not_block_the_unbind_drain() -> None:
    wire = bound(BindType.RECEIVER)
    wire.smsc.send_request(AlertNotification(source_addr="1", esme_addr="esme1"))
    at_esme, _ = wire.pump()
    assert [type(e) for e in at_esme] == [NotificationReceived]
    wire.smsc.unbind()
    at_esme, _ = wire.pump()
    assert Closed("unbound by peer", clean=True) in at_esme
    assert any(isinstance(p, UnbindResp) for p in wire.from_esme)


def test_alert_notification_is_not_awaiting_a_response() -> None:
    wire = bound(BindType.RECEIVER, response_timeout=5.0, enquire_link_interval=1000.0)
    wire.smsc.send_request(AlertNotification(source_addr="1", esme_addr="esme1"), 0.0)
    wire.pump()
    assert wire.smsc.in_flight == 0
    assert wire.smsc.handle_timer(5.0) == []


def test_incoming_window_overflow_with_alert_notification_does_not_raise() -> None:
    wire = bound(BindType.RECEIVER)
    wire.esme.config.incoming_window = 1
    for _ in range(2):
        wire.smsc.send_request(AlertNotification(source_addr="1", esme_addr="esme1"))
    wire.pump()  # raises today
    assert not wire.esme.closed


def test_incoming_window_overflow_answers_with_the_overflow_status() -> None:
    wire = bound(BindType.TRANSCEIVER)
    wire.smsc.config.incoming_window = 2
    for i in range(3):
        wire.submit(str(i).encode())
    at_esme, at_smsc = wire.pump()
    assert [type(e) for e in at_smsc] == [RequestReceived, RequestReceived, ProtocolViolation]
    (ev,) = at_esme
    assert isinstance(ev, ResponseReceived)
    assert ev.response.status == Status.ESME_RTHROTTLED
    assert ev.request.short_message == b"2"  # type: ignore[attr-defined]
    assert ev.response.command_id == CommandId.SUBMIT_SM_RESP


# --------------------------------------------------------------------------------------------
# A peer reusing the sequence number of a request still pending (§5.1.4)


@pytest.mark.parametrize("side", ["smsc", "esme"])
def test_a_request_reusing_a_pending_sequence_is_answered_at_once(side: str) -> None:
    """A response carries its request's sequence_number (§5.1.4), so two requests pending under
    one number could not both be answered: the repeat gets its own response with ESME_RSYSERR
    at once (not generic_nack: its header is valid, §4.3.1), never reaches the application, and
    the first stays answerable."""
    wire = bound()
    receiver = wire.smsc if side == "smsc" else wire.esme
    kind = SubmitSm if side == "smsc" else DeliverSm
    first = kind(sequence=42, source_addr="1", destination_addr="2", short_message=b"first")
    again = kind(sequence=42, source_addr="1", destination_addr="2", short_message=b"again")
    events = receiver.receive_data(first.encode() + again.encode(), 1.0)
    assert [type(e) for e in events] == [RequestReceived, ProtocolViolation]
    assert "sequence 42" in events[1].reason  # type: ignore[union-attr]
    (resp,) = split_pdus(receiver.data_to_send())
    assert resp.command_id == kind.command_id | 0x80000000
    assert (resp.sequence, resp.status) == (42, Status.ESME_RSYSERR)
    assert receiver.pending_incoming == 1
    receiver.send_response(events[0].pdu.response())  # type: ignore[union-attr]
    (resp,) = split_pdus(receiver.data_to_send())
    assert (resp.sequence, resp.status) == (42, 0)
    # answered: the number is free again
    assert [type(e) for e in receiver.receive_data(again.encode(), 2.0)] == [RequestReceived]


def test_an_unbind_reusing_a_pending_sequence_does_not_break_the_drain() -> None:
    wire = bound()
    submit = SubmitSm(sequence=9, source_addr="1", destination_addr="2")
    events = wire.smsc.receive_data(submit.encode() + Unbind(sequence=9).encode(), 1.0)
    assert [type(e) for e in events] == [RequestReceived, ProtocolViolation]
    assert wire.smsc.bound  # the unbind was refused, not taken
    (resp,) = split_pdus(wire.smsc.data_to_send())
    assert isinstance(resp, UnbindResp) and resp.status == Status.ESME_RSYSERR
    assert wire.smsc.send_response(events[0].pdu.response(message_id="m")) == []  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------------
# A peer that floods before binding


@pytest.mark.parametrize("chunked", [False, True])
def test_more_pdus_than_allowed_before_a_bind_close_the_session(chunked: bool) -> None:
    smsc = Session(Role.SMSC, SessionConfig(max_pdus_before_bind=3))
    pdus = [EnquireLink(sequence=i).encode() for i in range(1, 6)]
    events: list[Event] = []
    for data in pdus if chunked else [b"".join(pdus)]:
        events += smsc.receive_data(data, 1.0)
    assert events == [Closed("more than 3 PDUs before a bind: dropped", clean=False)]
    assert [p.sequence for p in split_pdus(smsc.data_to_send())] == [1, 2, 3]  # 4th not answered


def test_pdus_after_the_bind_do_not_count_toward_the_limit() -> None:
    wire = Wire(SessionConfig(max_pdus_before_bind=2))
    wire.bind(BindType.TRANSCEIVER)  # bind and bind_resp: one PDU on each side
    for _ in range(5):
        wire.esme.enquire_link()
    wire.pump()
    assert wire.smsc.bound and wire.esme.bound


def test_the_bind_table_is_the_only_way_states_move_and_anything_missing_is_an_error() -> None:
    """Every (state, input) pair: the table's move, or SessionError with the state unchanged."""
    moves = 0
    for state, what in itertools.product(State, Input):
        s = Session(Role.ESME, SessionConfig())
        s.state = state
        if (state, what) in TRANSITIONS:
            s._go(what)
            assert s.state is TRANSITIONS[(state, what)]
            moves += 1
        else:
            with pytest.raises(SessionError, match=f"{what.value} is not allowed in state"):
                s._go(what)
            assert s.state is state
    assert moves == len(TRANSITIONS) == 15
