"""SMPP 3.4 session state machine, sans-I/O (bytes in, events out, bytes to send, time passed in).

One `Session` is one TCP connection, on either side (`Role.ESME` or `Role.SMSC`). The asyncio
layer (`smsc.link`) only moves bytes and calls `handle_timer(now)` when `next_deadline()` comes.

What the session does by itself, so every user gets it right:
- framing, with command_length checked against [16, max_pdu_size] (§3.2); a length outside it
  means the stream cannot be resynchronised: generic_nack ESME_RINVCMDLEN and close;
- generic_nack ESME_RINVCMDID for an unknown command_id (§5.1.2), the request's own response
  with the status the decoder gives for a malformed body;
- bind state checks from one transition table (§2.3, §2.4): a request not allowed in the state
  gets ESME_RINVBNDSTS (ESME_RALYBND for a second bind); a peer that sends more than a few
  PDUs before a bind succeeds is dropped (`max_pdus_before_bind`);
- a peer request reusing the sequence number of one still unanswered is answered at once with
  ESME_RSYSERR and not handed on (§5.1.4: two answers under one number could not be told apart);
- sequence numbers, a window of in-flight requests with per-request response timeouts, and
  enquire_link both ways: answered at once; sent after `enquire_link_interval` of silence;
  its missing answer declares the link dead;
- unbind with drain: an unbind received is answered only once every request the peer sent has
  had its response, which the application may send at any time later (the verdict comes later).

command_status values pass through unchanged in both directions, vendor codes included.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import Enum

from smsc.constants import RESPONSE_BIT, CommandId, Status, status_name
from smsc.pdu import (
    HEADER_SIZE,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    EnquireLink,
    GenericNack,
    InvalidLengthError,
    Pdu,
    PduError,
    SmppError,
    Unbind,
    UnbindResp,
    _Bind,
    decode_pdu,
)


class Role(Enum):
    ESME = "esme"
    SMSC = "smsc"


class State(Enum):
    OPEN = "open"
    BINDING = "binding"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBINDING = "unbinding"  # we sent unbind, waiting for unbind_resp
    PEER_UNBINDING = "peer_unbinding"  # peer sent unbind, draining our responses
    CLOSED = "closed"


class BindType(Enum):
    TRANSMITTER = "transmitter"
    RECEIVER = "receiver"
    TRANSCEIVER = "transceiver"


class SessionError(SmppError):
    """An operation the session state does not allow (the message says which and why)."""


class WindowFullError(SessionError):
    """Every window slot holds an unanswered request; wait for a response."""


_BIND_PDU: dict[BindType, type[_Bind]] = {
    BindType.TRANSMITTER: BindTransmitter,
    BindType.RECEIVER: BindReceiver,
    BindType.TRANSCEIVER: BindTransceiver,
}
_BIND_TYPE_OF: dict[int, BindType] = {cls.command_id: bt for bt, cls in _BIND_PDU.items()}
_BOUND_STATE = {
    BindType.TRANSMITTER: State.BOUND_TX,
    BindType.RECEIVER: State.BOUND_RX,
    BindType.TRANSCEIVER: State.BOUND_TRX,
}
_BEFORE_BIND = frozenset({State.OPEN, State.BINDING})

C = CommandId
# Requests that have no response PDU (SMPP 3.4 §4.1.7 outbind, §4.12 alert_notification).
NO_RESPONSE = frozenset({C.OUTBIND, C.ALERT_NOTIFICATION})
_LINK = {C.ENQUIRE_LINK, C.UNBIND}
_ESME_TX = {C.SUBMIT_SM, C.SUBMIT_MULTI, C.DATA_SM, C.QUERY_SM, C.CANCEL_SM, C.REPLACE_SM}
_SMSC_TO_RX = {C.DELIVER_SM, C.DATA_SM, C.ALERT_NOTIFICATION}

# Which requests each side may send in each state (SMPP 3.4 §2.3, table 2-1). The same table
# checks our own sends and the peer's: a request received is looked up under the peer's role.
REQUESTS_ALLOWED: dict[tuple[Role, State], frozenset[int]] = {
    (Role.ESME, State.OPEN): frozenset({*_BIND_TYPE_OF, C.ENQUIRE_LINK}),
    (Role.ESME, State.BOUND_TX): frozenset(_ESME_TX | _LINK),
    (Role.ESME, State.BOUND_RX): frozenset(_LINK),
    (Role.ESME, State.BOUND_TRX): frozenset(_ESME_TX | _LINK),
    (Role.SMSC, State.OPEN): frozenset({C.OUTBIND, C.ENQUIRE_LINK}),
    (Role.SMSC, State.BOUND_TX): frozenset(_LINK),
    (Role.SMSC, State.BOUND_RX): frozenset(_SMSC_TO_RX | _LINK),
    (Role.SMSC, State.BOUND_TRX): frozenset(_SMSC_TO_RX | _LINK),
    (Role.ESME, State.PEER_UNBINDING): frozenset(),
    (Role.SMSC, State.PEER_UNBINDING): frozenset(),
}

# A peer request reusing the sequence_number of one of its requests we have not answered yet.
# Both cannot be pending: a response carries its request's sequence_number and nothing else
# (§5.1.4), so the peer could not tell the two answers apart. The repeat is answered at once with
# its own response PDU, not generic_nack, which is for a header that cannot be used (bad
# command_length or command_id, §4.3.1); its status is ESME_RSYSERR, a temporary error peers
# retry, so a distinct message the peer numbered wrongly is resent under a fresh number rather
# than lost. The first request stays pending and gets the application's answer.
DUPLICATE_STATUS = Status.ESME_RSYSERR

class Input(Enum):
    """What moves a session's bind state (the inputs of TRANSITIONS)."""

    BIND_SENT = "bind_sent"
    BIND_RECEIVED = "bind_received"
    BIND_FAILED = "bind_failed"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBIND_SENT = "unbind_sent"
    UNBIND_RECEIVED = "unbind_received"
    UNBIND_RESP_RECEIVED = "unbind_resp_received"
    DRAINED = "drained"


_BOUND_INPUT = {
    BindType.TRANSMITTER: Input.BOUND_TX,
    BindType.RECEIVER: Input.BOUND_RX,
    BindType.TRANSCEIVER: Input.BOUND_TRX,
}

# Bind transitions: (state, input) -> new state. Anything missing is refused.
TRANSITIONS: dict[tuple[State, Input], State] = {
    (State.OPEN, Input.BIND_SENT): State.BINDING,
    (State.OPEN, Input.BIND_RECEIVED): State.BINDING,
    (State.BINDING, Input.BIND_FAILED): State.OPEN,
    **{(State.BINDING, _BOUND_INPUT[bt]): st for bt, st in _BOUND_STATE.items()},
    **{(st, Input.UNBIND_SENT): State.UNBINDING for st in _BOUND_STATE.values()},
    **{(st, Input.UNBIND_RECEIVED): State.PEER_UNBINDING for st in _BOUND_STATE.values()},
    (State.UNBINDING, Input.UNBIND_RESP_RECEIVED): State.CLOSED,
    (State.UNBINDING, Input.UNBIND_RECEIVED): State.PEER_UNBINDING,  # both sides unbind at once
    (State.PEER_UNBINDING, Input.DRAINED): State.CLOSED,
}


# --------------------------------------------------------------------------------------------
# Events


@dataclass(slots=True)
class RequestReceived:
    """A request from the peer; answer it with `Session.send_response` (now or later)."""

    pdu: Pdu


@dataclass(slots=True)
class NotificationReceived:
    """A request that has no response (alert_notification, §4.12): nothing to answer."""

    pdu: Pdu


@dataclass(slots=True)
class ResponseReceived:
    request: Pdu
    response: Pdu
    elapsed: float


@dataclass(slots=True)
class RequestFailed:
    """A request of ours that will get no response: timeout, malformed answer, link closed."""

    request: Pdu
    reason: str


@dataclass(slots=True)
class BindRequested:
    """SMSC side: an ESME asks to bind; call `accept_bind` or `reject_bind`."""

    pdu: Pdu
    bind_type: BindType


@dataclass(slots=True)
class Bound:
    bind_type: BindType
    system_id: str  # the peer's system_id


@dataclass(slots=True)
class BindRejected:
    status: int


@dataclass(slots=True)
class OutbindReceived:
    pdu: Pdu


@dataclass(slots=True)
class UnbindRequested:
    """The peer unbinds; unbind_resp goes out once every pending request is answered."""


@dataclass(slots=True)
class Closed:
    """The session is over (unbind completed, link dead or protocol broken). Close the socket."""

    reason: str
    clean: bool


@dataclass(slots=True)
class ProtocolViolation:
    """The peer sent something wrong that was answered or ignored; the session goes on."""

    reason: str


Event = (
    RequestReceived
    | NotificationReceived
    | ResponseReceived
    | RequestFailed
    | BindRequested
    | Bound
    | BindRejected
    | OutbindReceived
    | UnbindRequested
    | Closed
    | ProtocolViolation
)


@dataclass(slots=True)
class _Outstanding:
    pdu: Pdu
    sent_at: float
    deadline: float


@dataclass(slots=True)
class SessionConfig:
    window: int = 50
    response_timeout: float = 30.0
    enquire_link_interval: float = 30.0
    max_pdu_size: int = 70_000  # room for a 64 KiB message_payload
    # Peer requests allowed unanswered at once; above it they are answered at once with
    # `overflow_status` (a throttling SMSC). None: no limit.
    incoming_window: int | None = None
    overflow_status: int = Status.ESME_RTHROTTLED
    # PDUs a peer may send before a bind succeeds (the bind, its answer, an enquire_link or
    # two); past it the session closes. An unbound peer is nobody yet, and each of its requests
    # costs an answer: one that floods them is not binding. None: no limit.
    max_pdus_before_bind: int | None = 10


@dataclass
class Session:
    role: Role
    config: SessionConfig = field(default_factory=SessionConfig)
    now: float = 0.0

    def __post_init__(self) -> None:
        self.state = State.OPEN
        self.bind_type: BindType | None = None
        self.peer_system_id = ""
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._seq = itertools.count(1)
        self._outstanding: dict[int, _Outstanding] = {}
        self._pending_in: dict[int, int] = {}  # sequence -> command_id of peer requests
        self._last_rx = self.now
        self._pdus_before_bind = 0
        self._enquire_seq: int | None = None
        self.close_reason: str | None = None

    # ------------------------------------------------------------------ state helpers
    def _go(self, what: Input) -> None:
        new = TRANSITIONS.get((self.state, what))
        if new is None:
            raise SessionError(f"{what.value} is not allowed in state {self.state.value}")
        self.state = new

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def bound(self) -> bool:
        return self.state in (State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX)

    @property
    def before_bind(self) -> bool:
        """No bind has succeeded on this connection yet (the peer is not authenticated)."""
        return self.state in _BEFORE_BIND

    @property
    def in_flight(self) -> int:
        """Our requests awaiting a response (enquire_link included)."""
        return len(self._outstanding)

    @property
    def pending_incoming(self) -> int:
        """Peer requests the application has not answered yet."""
        return len(self._pending_in)

    @property
    def window_free(self) -> int:
        return max(0, self.config.window - self._window_used())

    def _window_used(self) -> int:
        n = len(self._outstanding)
        return n - 1 if self._enquire_seq is not None else n

    def next_sequence(self) -> int:
        seq = next(self._seq)
        if seq > 0x7FFFFFFF:  # §5.1.4: 0x00000001-0x7FFFFFFF, then wrap
            self._seq = itertools.count(2)
            seq = 1
        return seq

    # ------------------------------------------------------------------ output
    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def send_request(self, pdu: Pdu, now: float | None = None) -> int:
        """Queue a request; returns its sequence number. The PDU's sequence is assigned here."""
        if now is not None:
            self.now = now
        if pdu.is_response:
            raise SessionError(f"{pdu.name} is a response: use send_response")
        cid = pdu.command_id
        allowed = REQUESTS_ALLOWED.get((self.role, self.state), frozenset())
        if cid not in allowed and not (cid == C.UNBIND and self.state == State.UNBINDING):
            raise SessionError(f"{pdu.name} may not be sent in state {self.state.value}")
        if cid not in _LINK and self._window_used() >= self.config.window:
            raise WindowFullError(f"window of {self.config.window} requests is full")
        pdu.sequence = self.next_sequence()
        self._out.append(pdu.encode())
        if cid not in NO_RESPONSE:
            timeout = self.config.response_timeout
            self._outstanding[pdu.sequence] = _Outstanding(pdu, self.now, self.now + timeout)
        return pdu.sequence

    def send_response(self, response: Pdu) -> list[Event]:
        """Answer a peer request (any status passes through). May close a draining session."""
        if not response.is_response:
            raise SessionError(f"{response.name} is not a response")
        expected = self._pending_in.pop(response.sequence, None)
        if expected is None and response.command_id != C.GENERIC_NACK:
            raise SessionError(f"no request with sequence {response.sequence} awaits a response")
        if expected is not None and response.command_id not in (
            expected | RESPONSE_BIT,
            C.GENERIC_NACK,
        ):
            self._pending_in[response.sequence] = expected
            raise SessionError(
                f"{response.name} does not answer {CommandId(expected).name.lower()}"
            )
        self._out.append(response.encode())
        return self._maybe_finish_drain()

    def bind(
        self,
        bind_type: BindType,
        system_id: str,
        password: str,
        *,
        system_type: str = "",
        addr_ton: int = 0,
        addr_npi: int = 0,
        address_range: str = "",
        now: float | None = None,
    ) -> int:
        pdu = _BIND_PDU[bind_type](
            system_id=system_id,
            password=password,
            system_type=system_type,
            addr_ton=addr_ton,
            addr_npi=addr_npi,
            address_range=address_range,
        )
        seq = self.send_request(pdu, now)
        self._go(Input.BIND_SENT)
        self.bind_type = bind_type
        return seq

    def accept_bind(self, request: Pdu, system_id: str) -> list[Event]:
        bind_type = _BIND_TYPE_OF[request.command_id]
        self._go(_BOUND_INPUT[bind_type])
        self.bind_type = bind_type
        self.peer_system_id = getattr(request, "system_id", "")
        self.send_response(request.response(system_id=system_id))
        return [Bound(bind_type, self.peer_system_id)]

    def reject_bind(self, request: Pdu, status: int) -> None:
        if status == 0:
            raise SessionError("a bind rejection needs a non-zero command_status")
        self._go(Input.BIND_FAILED)
        self.send_response(request.response(status=status))

    def unbind(self, now: float | None = None) -> int:
        seq = self.send_request(Unbind(), now)
        self._go(Input.UNBIND_SENT)
        return seq

    def enquire_link(self, now: float | None = None) -> int:
        seq = self.send_request(EnquireLink(), now)
        self._enquire_seq = seq
        return seq

    # ------------------------------------------------------------------ input
    def receive_data(
        self, data: bytes, now: float | None = None, *, max_pdus: int | None = None
    ) -> list[Event]:
        """Frame and handle the PDUs in `data` (added to what is buffered). With `max_pdus`,
        stop after that many and keep the rest buffered: `pdu_ready` tells whether another
        complete PDU waits (call again with b"")."""
        if now is not None:
            self.now = now
        if self.state == State.CLOSED:
            return []
        self._last_rx = self.now
        buf = self._buf
        buf += data
        events: list[Event] = []
        offset, size = 0, len(buf)
        handled = 0
        max_size = self.config.max_pdu_size
        while size - offset >= 4:
            length = int.from_bytes(buf[offset : offset + 4], "big")
            if length > max_size and size - offset < HEADER_SIZE:
                break  # wait for the whole header, so the generic_nack carries its sequence
            if length < HEADER_SIZE or length > max_size:
                seq = (
                    int.from_bytes(buf[offset + 12 : offset + 16], "big")
                    if size - offset >= 16
                    else 0
                )
                why = (
                    "shorter than the 16-octet header"
                    if length < HEADER_SIZE
                    else (f"over the {max_size}-octet limit")
                )
                self._out.append(GenericNack(sequence=seq, status=Status.ESME_RINVCMDLEN).encode())
                del buf[:]
                events.extend(self._close(f"command_length {length} {why}", clean=False))
                return events
            if size - offset < length:
                break
            raw = bytes(buf[offset : offset + length])
            offset += length
            events.extend(self._handle_pdu(raw))
            handled += 1
            if self.closed or handled == max_pdus:
                break
        del buf[:offset]
        return events

    @property
    def pdu_ready(self) -> bool:
        """A complete PDU (or a bad command_length) waits in the receive buffer."""
        buf = self._buf
        if self.state == State.CLOSED or len(buf) < 4:
            return False
        length = int.from_bytes(buf[0:4], "big")
        if length > self.config.max_pdu_size:
            # receive_data waits for the whole header so the nack can carry the sequence
            return len(buf) >= HEADER_SIZE
        return len(buf) >= length or length < HEADER_SIZE

    def _handle_pdu(self, raw: bytes) -> list[Event]:
        if self.state in _BEFORE_BIND:
            self._pdus_before_bind += 1
            limit = self.config.max_pdus_before_bind
            if limit is not None and self._pdus_before_bind > limit:
                return self._close(f"more than {limit} PDUs before a bind: dropped", clean=False)
        try:
            pdu = decode_pdu(raw)
        except InvalidLengthError as exc:  # pragma: no cover - framing checked the length
            return self._close(str(exc), clean=False)
        except PduError as exc:
            return self._on_bad_pdu(exc)
        if pdu.is_response:
            return self._on_response(pdu)
        return self._on_request(pdu)

    def _on_bad_pdu(self, exc: PduError) -> list[Event]:
        cid, seq = exc.command_id, exc.sequence
        if cid & RESPONSE_BIT:
            waiting = self._outstanding.pop(seq, None)
            if waiting is not None:
                return [RequestFailed(waiting.pdu, f"malformed response: {exc}")]
            return [ProtocolViolation(f"malformed response 0x{cid:08X} seq {seq}: {exc}")]
        nack: Pdu
        try:
            nack = _response_for(cid, seq, exc.status)
        except KeyError:  # outbind, alert_notification, unknown ids: generic_nack (§4.3)
            nack = GenericNack(sequence=seq, status=exc.status)
        self._out.append(nack.encode())
        return [ProtocolViolation(f"answered {status_name(exc.status)}: {exc}")]

    def _on_response(self, pdu: Pdu) -> list[Event]:
        waiting = self._outstanding.pop(pdu.sequence, None)
        if waiting is None:
            return [ProtocolViolation(f"{pdu.name} seq {pdu.sequence} answers no request of ours")]
        req = waiting.pdu
        if pdu.command_id not in (req.command_id | RESPONSE_BIT, C.GENERIC_NACK):
            return [
                RequestFailed(req, f"answered by {pdu.name} instead of {req.name}_resp"),
            ]
        cid = req.command_id
        if cid == C.ENQUIRE_LINK:
            if pdu.sequence == self._enquire_seq:
                self._enquire_seq = None
                return []
        elif cid in _BIND_TYPE_OF:
            if pdu.status == 0:
                assert self.bind_type is not None
                self._go(_BOUND_INPUT[self.bind_type])
                self.peer_system_id = getattr(pdu, "system_id", "")
                return [Bound(self.bind_type, self.peer_system_id)]
            self._go(Input.BIND_FAILED)
            self.bind_type = None
            return [BindRejected(pdu.status)]
        elif cid == C.UNBIND and self.state == State.UNBINDING:
            self._go(Input.UNBIND_RESP_RECEIVED)
            return self._close("unbound", clean=True)
        return [ResponseReceived(req, pdu, self.now - waiting.sent_at)]

    def _on_request(self, pdu: Pdu) -> list[Event]:
        cid = pdu.command_id
        if cid == C.ENQUIRE_LINK:  # link level: answered here, in any state
            self._out.append(pdu.response().encode())
            return []
        if pdu.sequence in self._pending_in and cid not in NO_RESPONSE:
            return self._refuse(pdu, DUPLICATE_STATUS, f"sequence {pdu.sequence} is still pending")
        peer = Role.SMSC if self.role == Role.ESME else Role.ESME
        if cid in _BIND_TYPE_OF and self.role == Role.SMSC:
            if self.state != State.OPEN:
                return self._refuse(pdu, Status.ESME_RALYBND, "bind on a bound session")
            self._go(Input.BIND_RECEIVED)
            self._pending_in[pdu.sequence] = cid
            return [BindRequested(pdu, _BIND_TYPE_OF[cid])]
        if cid == C.OUTBIND and self.role == Role.ESME and self.state == State.OPEN:
            return [OutbindReceived(pdu)]
        if cid == C.UNBIND and self.state in (*_BOUND_STATE.values(), State.UNBINDING):
            self._go(Input.UNBIND_RECEIVED)
            self._pending_in[pdu.sequence] = cid
            return [UnbindRequested(), *self._maybe_finish_drain()]
        if cid not in REQUESTS_ALLOWED.get((peer, self.state), frozenset()):
            return self._refuse(pdu, Status.ESME_RINVBNDSTS, f"not allowed in {self.state.value}")
        if cid in NO_RESPONSE:
            return [NotificationReceived(pdu)]
        limit = self.config.incoming_window
        if limit is not None and len(self._pending_in) >= limit:
            self._out.append(pdu.response(status=self.config.overflow_status).encode())
            return [ProtocolViolation(f"peer exceeded the window of {limit}; {pdu.name} refused")]
        self._pending_in[pdu.sequence] = cid
        return [RequestReceived(pdu)]

    def _refuse(self, pdu: Pdu, status: int, why: str) -> list[Event]:
        try:
            resp = pdu.response(status=status)
        except SmppError:  # outbind / alert_notification have no response
            return [ProtocolViolation(f"{pdu.name} ignored: {why}")]
        self._out.append(resp.encode())
        return [ProtocolViolation(f"{pdu.name} refused with {status_name(status)}: {why}")]

    def _maybe_finish_drain(self) -> list[Event]:
        if self.state != State.PEER_UNBINDING:
            return []
        unbind_seqs = [s for s, c in self._pending_in.items() if c == C.UNBIND]
        if len(self._pending_in) > len(unbind_seqs):
            return []
        for s in unbind_seqs:
            del self._pending_in[s]
            self._out.append(UnbindResp(sequence=s).encode())
        self._go(Input.DRAINED)
        return self._close("unbound by peer", clean=True)

    # ------------------------------------------------------------------ time
    def next_deadline(self) -> float | None:
        if self.state == State.CLOSED:
            return None
        deadlines = [self._last_rx + self.config.enquire_link_interval]
        if self._outstanding:
            deadlines.append(next(iter(self._outstanding.values())).deadline)
        return min(deadlines)

    def handle_timer(self, now: float) -> list[Event]:
        self.now = now
        events: list[Event] = []
        expired = [s for s, o in self._outstanding.items() if o.deadline <= now]
        for seq in expired:
            out = self._outstanding.pop(seq)
            if seq == self._enquire_seq:
                return [*events, *self._close("enquire_link unanswered: link dead", clean=False)]
            if out.pdu.command_id in _BIND_TYPE_OF and self.state == State.BINDING:
                self._go(Input.BIND_FAILED)
                events.append(BindRejected(Status.ESME_RSYSERR))
                continue
            if out.pdu.command_id == C.UNBIND:
                return [*events, *self._close("unbind unanswered", clean=False)]
            events.append(RequestFailed(out.pdu, f"no response in {self.config.response_timeout}s"))
        idle_limit = self._last_rx + self.config.enquire_link_interval
        if now >= idle_limit and self._enquire_seq is None:
            allowed = REQUESTS_ALLOWED.get((self.role, self.state), frozenset())
            if C.ENQUIRE_LINK in allowed:
                self.enquire_link()
            self._last_rx = now  # the next probe comes one interval later
        return events

    def close(self, reason: str) -> list[Event]:
        """End the session from our side now: what is queued still goes out (a bind_resp),
        nothing more is read. The caller closes the socket on the Closed event."""
        if self.state == State.CLOSED:
            return []
        return self._close(reason, clean=False)

    def connection_lost(self, reason: str = "connection lost") -> list[Event]:
        if self.state == State.CLOSED:
            return []
        return self._close(reason, clean=False)

    def _close(self, reason: str, clean: bool) -> list[Event]:
        self.state = State.CLOSED
        self.close_reason = reason
        failed: list[Event] = [
            RequestFailed(o.pdu, f"session closed: {reason}")
            for s, o in self._outstanding.items()
            if s != self._enquire_seq and o.pdu.command_id not in _LINK
        ]
        self._outstanding.clear()
        self._enquire_seq = None
        return [*failed, Closed(reason, clean)]


def _response_for(command_id: int, sequence: int, status: int) -> Pdu:
    """The response to a request we could not decode (only its header is known)."""
    from smsc.pdu import PDU_CLASSES

    cls = PDU_CLASSES.get(command_id | RESPONSE_BIT)
    if cls is None:
        raise KeyError(command_id)
    return cls(sequence=sequence, status=status)
