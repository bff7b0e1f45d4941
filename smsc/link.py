"""The asyncio pump around a sans-I/O `Session`: one TCP (or TLS) connection, either side.

`Link` is an `asyncio.Protocol`: bytes from the socket go to the session, events come back and are
dispatched, bytes the session wants sent are written once per loop tick (so a burst of requests
or responses becomes one write). Reading from the peer pauses while it leaves our writes unread
(write backpressure), so a peer that never reads costs a bounded buffer; one that does so before
binding is dropped. Timers are one `call_at` handle re-armed to the session's next deadline.
Nothing here knows SMPP rules: they all live in `smsc.session`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from smsc.constants import status_name
from smsc.counters import PduCounters
from smsc.pdu import Pdu, SmppError
from smsc.session import (
    BindRejected,
    BindRequested,
    BindType,
    Bound,
    Closed,
    Event,
    NotificationReceived,
    OutbindReceived,
    ProtocolViolation,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    Role,
    Session,
    SessionConfig,
    UnbindRequested,
)

log = logging.getLogger("fraudgate.smpp")

RECEIVE_SLICE = 8  # PDUs handled per write when a read brings many (see data_received)
# Write backpressure. Every request read makes an answer, so a peer that sends and never reads
# would have us buffer answers without end (45 MiB from one unbound client). Past the high-water
# mark the transport calls pause_writing and we stop reading that peer; below the low-water mark
# resume_writing lets it in again. A peer that reads is slowed, not stalled (a full window of
# 50 typical PDUs is about 15 KiB), and one that does not read stops costing us more than this.
WRITE_HIGH_WATER = 256 * 1024
WRITE_LOW_WATER = 64 * 1024
# A closing link keeps its socket until the queued bytes are sent; a peer that stopped reading
# would hold it for ever, so it is aborted after this many seconds.
CLOSE_GRACE = 5.0
VIOLATION_LOG_EVERY = 10.0  # seconds between a link's protocol-violation log lines


class LinkClosedError(SmppError):
    """The link closed before the operation could complete."""


class RequestFailedError(SmppError):
    """A request got no usable response (timeout, malformed response, link lost)."""

    def __init__(self, request: Pdu, reason: str) -> None:
        super().__init__(f"{request.name} seq {request.sequence}: {reason}")
        self.request = request
        self.reason = reason


class BindError(SmppError):
    def __init__(self, status: int) -> None:
        super().__init__(f"bind rejected: {status_name(status)}")
        self.status = status


class LinkHandler(Protocol):
    """What the application supplies to a link. All callbacks are synchronous and quick; slow
    work (a verdict) is started as a task and answered later with `Link.respond`."""

    def on_request(self, link: Link, pdu: Pdu) -> None: ...

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:
        """SMSC side only: call link.accept_bind / link.reject_bind, now or later (the peer may
        have left by then: accept_bind returns False, neither raises)."""

    def on_closed(self, link: Link, reason: str, clean: bool) -> None: ...


class Link(asyncio.Protocol):
    def __init__(
        self,
        role: Role,
        handler: LinkHandler,
        config: SessionConfig | None = None,
        *,
        name: str = "",
        counters: PduCounters | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.session = Session(role, config or SessionConfig(), now=self.loop.time())
        self.handler = handler
        self.name = name
        self.counters = counters  # the application's PDUs in and out (monitoring)
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] | None = None
        self._waiters: dict[int, asyncio.Future[Pdu]] = {}
        self._window_open = asyncio.Event()
        self._window_open.set()
        self._writable = asyncio.Event()
        self._writable.set()
        self._flush_scheduled = False
        self._continue_scheduled = False
        self._reading_paused = False
        self._disconnected = False
        self._quiet_close = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._violation_logged = float("-inf")
        self._violations_unlogged = 0
        self._bound: asyncio.Future[Bound] = self.loop.create_future()
        self.closed = self.loop.create_future()  # result: (reason, clean)
        self.outbind: asyncio.Future[Pdu] = self.loop.create_future()

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if isinstance(peer, tuple) else None
        self.session.now = self.loop.time()
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        # A read may hold a whole window of PDUs. They are handled a slice at a time with a
        # write after each, and the rest waits for the next loop tick: the peer works on the
        # first answers while we handle the rest, and other tasks (the recorder committing the
        # first slice's verdicts, other links) run in between instead of after the whole read.
        # Reading pauses while complete PDUs wait, and while the peer leaves our answers unread
        # (pause_writing), so a peer cannot fill our memory.
        self._receive(data)

    def _receive(self, data: bytes = b"") -> None:
        self._continue_scheduled = False
        try:
            events = self.session.receive_data(data, self.loop.time(), max_pdus=RECEIVE_SLICE)
            self._dispatch(events)
        except Exception:  # a handler bug: the link must not stay paused with PDUs buffered
            log.exception("%s: error handling received PDUs; closing the link", self.name)
            self.abort("internal error while handling received PDUs")
            return
        self._flush()
        backlog = self.session.pdu_ready and not self.session.closed
        writable = self._writable.is_set()
        if backlog and writable and not self._continue_scheduled:
            self._continue_scheduled = True
            self.loop.call_soon(self._receive)
        self._set_reading(writable and not backlog)

    def _set_reading(self, on: bool) -> None:
        transport = self.transport
        reading = not self._reading_paused
        if transport is None or reading == on:
            return
        self._reading_paused = not on
        if on:
            transport.resume_reading()
        else:
            transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disconnected = True
        reason = f"connection lost: {exc}" if exc else "connection closed by peer"
        self._dispatch(self.session.connection_lost(reason))
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()
        if self.session.before_bind and not self.session.closed:
            # Nobody yet, and already leaving our answers unread: not worth a buffer.
            self.abort(f"write buffer over {WRITE_HIGH_WATER} bytes before a bind: not reading")
            return
        self._set_reading(False)

    def resume_writing(self) -> None:
        self._writable.set()
        if self.session.closed:
            return
        if self.session.pdu_ready:  # what was read before the pause goes first
            if not self._continue_scheduled:
                self._continue_scheduled = True
                self.loop.call_soon(self._receive)
        else:
            self._set_reading(True)

    # ------------------------------------------------------------------ sending
    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self.session.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
        if self.session.closed:
            self._close_transport()
        self._arm_timer()

    def _close_transport(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not self._writable.is_set():  # the peer does not read: the queue would never go
            transport.abort()
            return
        transport.close()  # after what is queued (a bind_resp, a generic_nack) is sent
        self.loop.call_later(CLOSE_GRACE, self._abort_if_connected, transport)

    def _abort_if_connected(self, transport: asyncio.Transport) -> None:
        if not self._disconnected:
            transport.abort()

    async def request(self, pdu: Pdu, *, timeout: float | None = None) -> Pdu:
        """Send a request, wait for its response (any command_status) and return it."""
        while True:  # each wait may end with the link closed or the window taken
            if self.session.closed:
                raise LinkClosedError(self.session.close_reason or "closed")
            if not self._writable.is_set():  # the peer is behind reading what we sent
                await self._writable.wait()
            elif self.session.window_free > 0:
                break
            else:
                self._window_open.clear()
                await self._window_open.wait()
        fut = self.send(pdu)
        if timeout is None:
            return await fut
        return await asyncio.wait_for(fut, timeout)

    def send(self, pdu: Pdu) -> asyncio.Future[Pdu]:
        """Send a request now (raises WindowFullError when the window is full)."""
        seq = self.session.send_request(pdu, self.loop.time())
        fut: asyncio.Future[Pdu] = self.loop.create_future()
        self._waiters[seq] = fut
        if self.counters is not None:
            self.counters.count_out(pdu)
        self._schedule_flush()
        return fut

    def respond(self, response: Pdu) -> None:
        """Answer a peer request, at any time after it arrived (the verdict comes later)."""
        if self.session.closed:
            raise LinkClosedError(f"cannot answer seq {response.sequence}: link closed")
        self._dispatch(self.session.send_response(response))
        if self.counters is not None:
            self.counters.count_out(response)
        self._schedule_flush()

    def accept_bind(self, pdu: Pdu, system_id: str) -> bool:
        """Answer a bind with success. False, and nothing sent, when the link closed before the
        answer (any peer can send a bind and leave): the handler must not set the bind up."""
        if self.session.closed:
            self._bind_unanswered(pdu)
            return False
        self._dispatch(self.session.accept_bind(pdu, system_id))
        self._schedule_flush()
        return True

    def reject_bind(self, pdu: Pdu, status: int, *, close: bool = False) -> None:
        """Answer a bind with an error status; with `close`, close the connection once the
        answer is sent, so a client gets one guess per connection (what it sent after the bind
        is not read). That close is logged at debug: the handler logs refusals its own way."""
        if self.session.closed:
            self._bind_unanswered(pdu)
            return
        self.session.reject_bind(pdu, status)
        if close:
            self._quiet_close = True
            self._dispatch(self.session.close(f"bind refused ({status_name(status)})"))
        self._schedule_flush()

    def _bind_unanswered(self, pdu: Pdu) -> None:
        # Debug only: a client that sends a bind and closes (or sends garbage after it) is
        # ordinary on an open port, and a line per occurrence would let anyone flood the log.
        peer = f"{self.peer[0]}:{self.peer[1]}" if self.peer else "?"
        log.debug(
            "%s: bind seq %d from %s: the session closed before it was answered (%s)",
            self.name,
            pdu.sequence,
            peer,
            self.session.close_reason,
        )

    async def bind(
        self,
        bind_type: BindType,
        system_id: str,
        password: str,
        *,
        system_type: str = "",
        address_range: str = "",
    ) -> Bound:
        self.session.bind(
            bind_type,
            system_id,
            password,
            system_type=system_type,
            address_range=address_range,
            now=self.loop.time(),
        )
        self._schedule_flush()
        return await asyncio.shield(self._bound)

    async def unbind(self, timeout: float = 10.0) -> None:
        """Graceful end: wait for our in-flight requests, then unbind and wait for the close."""
        await self.drain(timeout)
        if self.session.bound:
            self.session.unbind(self.loop.time())
            self._schedule_flush()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except TimeoutError:
            self.abort("unbind_resp not received in time")

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until no request of ours awaits a response (bounded by timeout)."""
        waiters = [f for f in self._waiters.values() if not f.done()]
        if waiters:
            await asyncio.wait(waiters, timeout=timeout)

    def abort(self, reason: str) -> None:
        self._dispatch(self.session.connection_lost(reason))
        if self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------------ events
    def _dispatch(self, events: list[Event]) -> None:
        counters = self.counters
        for ev in events:
            if counters is not None and isinstance(ev, RequestReceived | NotificationReceived):
                counters.count_in(ev.pdu)
            elif counters is not None and isinstance(ev, ResponseReceived):
                counters.count_in(ev.response)
            if isinstance(ev, RequestReceived):
                self.handler.on_request(self, ev.pdu)
            elif isinstance(ev, NotificationReceived):
                notify = getattr(self.handler, "on_notification", None)
                if notify is not None:
                    notify(self, ev.pdu)
                else:  # osmo-msc sends one on every attach/detach: debug, number masked
                    source = str(getattr(ev.pdu, "source_addr", ""))
                    masked = source[:4] + "***" + source[-4:] if len(source) > 8 else "***"
                    log.debug("%s: %s from %s", self.name, ev.pdu.name, masked)
            elif isinstance(ev, ResponseReceived):
                fut = self._waiters.pop(ev.request.sequence, None)
                if fut is not None and not fut.done():
                    fut.set_result(ev.response)
                self._window_open.set()
            elif isinstance(ev, RequestFailed):
                fut = self._waiters.pop(ev.request.sequence, None)
                if fut is not None and not fut.done():
                    fut.set_exception(RequestFailedError(ev.request, ev.reason))
                self._window_open.set()
            elif isinstance(ev, BindRequested):
                if self.session.closed:  # the same read closed it (garbage after the bind)
                    self._bind_unanswered(ev.pdu)
                else:
                    self.handler.on_bind(self, ev.pdu, ev.bind_type)
            elif isinstance(ev, Bound):
                if not self._bound.done():
                    self._bound.set_result(ev)
            elif isinstance(ev, BindRejected):
                if not self._bound.done():
                    self._bound.set_exception(BindError(ev.status))
            elif isinstance(ev, OutbindReceived):
                if not self.outbind.done():
                    self.outbind.set_result(ev.pdu)
            elif isinstance(ev, UnbindRequested):
                log.info(
                    "%s: peer unbinds; draining %d pending",
                    self.name,
                    self.session.pending_incoming,
                )
            elif isinstance(ev, ProtocolViolation):
                self._violation(ev.reason)
            elif isinstance(ev, Closed):
                self._on_closed(ev)

    def _violation(self, reason: str) -> None:
        """A peer's protocol violation, logged at most once per VIOLATION_LOG_EVERY seconds
        per link with the count left out since: a peer overrunning its window on purpose
        must not write a line per PDU."""
        now = self.loop.time()
        if now - self._violation_logged < VIOLATION_LOG_EVERY:
            self._violations_unlogged += 1
            return
        more = self._violations_unlogged
        extra = f" ({more} more since the last line)" if more else ""
        self._violation_logged, self._violations_unlogged = now, 0
        log.warning("%s: %s%s", self.name, reason, extra)

    def _on_closed(self, ev: Closed) -> None:
        peer = f"{self.peer[0]}:{self.peer[1]}" if self.peer else "?"
        level = logging.INFO if ev.clean else logging.WARNING
        if self._quiet_close:
            level = logging.DEBUG
        log.log(level, "%s: session with %s closed: %s", self.name, peer, ev.reason)
        if not self._bound.done():
            self._bound.set_exception(LinkClosedError(ev.reason))
            self._bound.exception()  # mark retrieved: nobody may be waiting
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(LinkClosedError(ev.reason))
        self._waiters.clear()
        self._window_open.set()
        if self._timer is not None:
            self._timer.cancel()
        self._schedule_flush()  # send what is queued (a generic_nack), then close
        if not self.closed.done():
            self.closed.set_result((ev.reason, ev.clean))
            self.handler.on_closed(self, ev.reason, ev.clean)

    # ------------------------------------------------------------------ timers
    def _arm_timer(self) -> None:
        deadline = self.session.next_deadline()
        if deadline is None or deadline >= self._timer_at:
            return  # the armed timer fires earlier and re-arms
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        self._dispatch(self.session.handle_timer(self.loop.time()))
        self._flush()
