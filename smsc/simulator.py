"""The simulated SMSC: an SMPP 3.4 server for tests, demos and lab work.

What it does, as an operator's SMSC would (the parts an anti-fraud gateway meets):
- accounts with password, allowed bind types, source-IP allow-list, window and throughput limit;
  binds decided by `smsc.bindguard` (source address before password, lockouts per address and
  per system_id, one guess per connection, refusals logged once per address per interval);
- routing by longest destination prefix to an account; each message goes as deliver_sm to one
  of that account's bound receivers/transceivers (round robin over their links);
- message ids, delivery receipts when registered_delivery asks (§5.2.17, Appendix B format),
  query_sm / cancel_sm / replace_sm on stored messages;
- store-and-retry: a message with no bound receiver, or answered with a temporary error
  (throttled, queue full, system error, timeout, link lost) is kept and retried; a permanent
  error ends it with an UNDELIV receipt. Nothing accepted is dropped silently;
- fault injection per account for tests: throttling (0x58), delayed or missing responses,
  chosen error codes by destination prefix, dropped connection, garbage bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from smsc.bindguard import BindDecision, BindGuard, BindGuardConfig, admits_address
from smsc.constants import CommandId, EsmClass, MessageState, Status, Tag, status_name
from smsc.link import Link, LinkClosedError, RequestFailedError
from smsc.pdu import (
    CancelSm,
    DataSm,
    DeliverSm,
    Pdu,
    QuerySm,
    ReplaceSm,
    SmeAddress,
    SubmitMulti,
    SubmitSm,
    Tlv,
    UnsuccessSme,
)
from smsc.rate import TokenBucket
from smsc.receipt import format_receipt
from smsc.server import SmppServer
from smsc.session import BindType, SessionConfig
from smsc.sms import split_part
from smsc.text import decode_text

log = logging.getLogger("fraudgate.smsc")

TEMPORARY_ERRORS = frozenset(
    {Status.ESME_RTHROTTLED, Status.ESME_RMSGQFUL, Status.ESME_RSYSERR, Status.ESME_RX_T_APPN}
)


@dataclass
class Faults:
    """Misbehaviour injected on one account's links (all off by default)."""

    throttle_every: int = 0  # every Nth submit is answered ESME_RTHROTTLED
    throttle_ratio: float = 0.0  # ... or this fraction of them, at random
    response_delay: float = 0.0  # seconds before a submit is answered
    drop_response_ratio: float = 0.0  # fraction of submits never answered
    error_status: int = 0  # answer submits to error_prefix with this status
    error_prefix: str = ""
    disconnect_after: int = 0  # close the TCP connection after N PDUs received on a link
    garbage_after: int = 0  # write garbage bytes after N deliver_sm sent on a link
    # the first N deliver_sm_resp on this account are lost: the link is cut as one arrives, so
    # the answer is never taken and the message is redelivered on the next bind
    lose_answers: int = 0
    seed: int | None = None


@dataclass
class Account:
    system_id: str
    password: str
    bind_types: frozenset[BindType] = frozenset(BindType)
    allow_ips: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    window: int = 50
    throughput: float = 0.0  # submits per second, 0 = unlimited
    faults: Faults = field(default_factory=Faults)

    def admits(self, address: str | None) -> bool:
        """Whether a bind may come from this source address (any, without an allow-list)."""
        return admits_address(address, self.allow_ips)


@dataclass
class Route:
    """Destination prefix -> receiving account. A route with `origin` applies only to messages
    submitted by that account (an operator keeps A2P aggregators and subscriber traffic on
    separate flows); such routes win over routes without one."""

    prefix: str
    account: str
    origin: str = ""


@dataclass
class SmscConfig:
    host: str = "127.0.0.1"
    port: int = 2775
    accounts: list[Account] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)  # none: all go to the first account
    retry_interval: float = 5.0
    max_attempts: int = 0  # 0: retry until the validity expires
    validity: float = 24 * 3600.0
    store_limit: int = 1_000_000
    response_timeout: float = 10.0
    enquire_link_interval: float = 30.0
    system_id: str = "fraudgate-sim"
    # osmo-msc's ways, for inline-forwarding tests: every submit_sm_resp carries this constant
    # instead of the message id (osmo-msc 1.9: 'msg_id_not_implemented'), and receipts carry
    # only the Appendix B text, no receipted_message_id / message_state TLVs.
    fixed_submit_id: str = ""
    receipt_tlvs: bool = True
    bind_guard: BindGuardConfig = field(default_factory=BindGuardConfig)


@dataclass
class Message:
    id: str
    source_ton: int
    source_npi: int
    source: str
    dest_ton: int
    dest_npi: int
    dest: str
    esm_class: int
    protocol_id: int
    data_coding: int
    short_message: bytes
    tlvs: list[Tlv]
    registered_delivery: int
    origin: str  # system_id that submitted it ("" for injected MO)
    submitted_at: float
    state: MessageState = MessageState.ENROUTE
    attempts: int = 0
    error: int = 0
    done_at: float | None = None


@dataclass
class Stats:
    submitted: int = 0
    rejected: int = 0
    delivered: int = 0
    failed: int = 0
    retries: int = 0
    receipts: int = 0
    throttled: int = 0
    binds_refused: int = 0  # every bind refused, lockouts included
    binds_locked_out: int = 0  # of those, refused by a lockout (no password checked)


class _AccountState:
    def __init__(self, account: Account) -> None:
        self.account = account
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.links: list[Link] = []
        self.bucket = TokenBucket(account.throughput)
        self.submits = 0
        self.answers_lost = 0
        self.rng = random.Random(account.faults.seed)


class SimulatedSmsc:
    """`async with SimulatedSmsc(config) as smsc:` listens on config.host:config.port
    (port 0 picks a free one: read `smsc.port`)."""

    def __init__(self, config: SmscConfig) -> None:
        self.config = config
        self.accounts = {a.system_id: _AccountState(a) for a in config.accounts}
        for route in config.routes:
            if route.account not in self.accounts:
                raise ValueError(f"route {route.prefix!r} names unknown account {route.account!r}")
        routes = (
            config.routes or [Route("", config.accounts[0].system_id)] if config.accounts else []
        )
        self.routes = sorted(routes, key=lambda r: (bool(r.origin), len(r.prefix)), reverse=True)
        self.messages: dict[str, Message] = {}
        self.stats = Stats()
        self.bind_guard = BindGuard(config.bind_guard)
        # Set to a list to collect each deliver_sm's round trip (seconds from the request
        # leaving to its response arriving): the receiving ESME's latency as the SMSC sees it.
        self.round_trips: list[float] | None = None
        self._ids = itertools.count(1)
        self._workers: dict[Link, list[asyncio.Task[None]]] = {}
        self._link_pdus: dict[Link, int] = {}
        self._link_delivers: dict[Link, int] = {}
        self.server = SmppServer(
            lambda: _Handler(self),
            config.host,
            config.port,
            session_config=SessionConfig(
                response_timeout=config.response_timeout,
                enquire_link_interval=config.enquire_link_interval,
            ),
            name="sim-smsc",
        )
        # Finished messages stay queryable (query_sm) until this many newer ones finished.
        self._finished: deque[Message] = deque()
        self.finished_retention = 100_000
        self._enroute = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return self.server.port

    async def __aenter__(self) -> SimulatedSmsc:
        await self.server.__aenter__()
        self._sweeper = asyncio.ensure_future(self._expire_loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for tasks in self._workers.values():
            for t in tasks:
                t.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.server.close()

    # ------------------------------------------------------------------ binds
    def bind_decision(self, link: Link, pdu: Pdu, bind_type: BindType) -> BindDecision:
        system_id = getattr(pdu, "system_id", "")
        state = self.accounts.get(system_id)
        return self.bind_guard.authenticate(
            link.loop.time(),
            link.peer[0] if link.peer else None,
            system_id,
            getattr(pdu, "password", ""),
            bind_type,
            state.account if state else None,
        )

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:
        decision = self.bind_decision(link, pdu, bind_type)
        if decision.status:
            self._refuse_bind(link, pdu, decision)
            return
        system_id = getattr(pdu, "system_id", "")
        state = self.accounts[system_id]
        link.name = f"sim-smsc/{system_id}"
        link.session.config.window = state.account.window
        link.session.config.incoming_window = state.account.window
        if not link.accept_bind(pdu, self.config.system_id):
            return  # the client left before the answer
        self._link_pdus[link] = 0
        self._link_delivers[link] = 0
        if bind_type in (BindType.RECEIVER, BindType.TRANSCEIVER):
            state.links.append(link)
            self._workers[link] = [
                asyncio.ensure_future(self._deliver_worker(state, link))
                for _ in range(state.account.window)
            ]
        log.info("bound %s as %s from %s", system_id, bind_type.value, link.peer)

    def _refuse_bind(self, link: Link, pdu: Pdu, decision: BindDecision) -> None:
        self.stats.binds_refused += 1
        self.stats.binds_locked_out += decision.locked_out
        if decision.log:  # once per address per interval: a guessing client cannot flood it
            extra = ""
            if decision.unlogged:
                extra += f"; {decision.unlogged} more from this address since the last line"
            if decision.locked_for:
                extra += f"; address locked out for {decision.locked_for:.0f} s"
            log.warning(
                "bind as %r from %s refused: %s (%s)%s",
                getattr(pdu, "system_id", ""),
                link.peer[0] if link.peer else "?",
                decision.reason,
                status_name(decision.status),
                extra,
            )
        # Answered, then closed: one guess per connection, nothing after the bind is read.
        link.reject_bind(pdu, decision.status, close=True)

    def on_closed(self, link: Link) -> None:
        for task in self._workers.pop(link, []):
            task.cancel()
        for state in self.accounts.values():
            if link in state.links:
                state.links.remove(link)
        self._link_pdus.pop(link, None)
        self._link_delivers.pop(link, None)

    # ------------------------------------------------------------------ requests
    def on_request(self, link: Link, pdu: Pdu) -> None:
        if link.session.closed:  # aborted earlier in this same read (fault injection)
            return
        state = self.accounts.get(link.session.peer_system_id)
        assert state is not None  # the session refuses requests before bind
        faults = state.account.faults
        count = self._link_pdus.get(link, 0) + 1
        self._link_pdus[link] = count
        if faults.disconnect_after and count >= faults.disconnect_after:
            log.info("fault: dropping %s after %d PDUs", link.name, count)
            link.abort("fault injection: disconnect")
            return
        cid = pdu.command_id
        if cid in (CommandId.SUBMIT_SM, CommandId.SUBMIT_MULTI, CommandId.DATA_SM):
            self._on_submit(link, state, pdu)
        elif isinstance(pdu, QuerySm):
            self._on_query(link, pdu)
        elif isinstance(pdu, CancelSm):
            self._on_cancel(link, pdu)
        elif isinstance(pdu, ReplaceSm):
            self._on_replace(link, pdu)
        else:
            link.respond(pdu.response(status=Status.ESME_RINVCMDID))

    def _fault_status(self, state: _AccountState, pdu: Pdu) -> int | None:
        """A status forced by fault injection, or None (also None for 'no response at all')."""
        f = state.account.faults
        state.submits += 1
        if f.throttle_every and state.submits % f.throttle_every == 0:
            return Status.ESME_RTHROTTLED
        if f.throttle_ratio and state.rng.random() < f.throttle_ratio:
            return Status.ESME_RTHROTTLED
        dest = getattr(pdu, "destination_addr", "").lstrip("+")
        if f.error_status and dest.startswith(f.error_prefix):
            return f.error_status
        return None

    def _respond(self, link: Link, state: _AccountState, resp: Pdu) -> None:
        f = state.account.faults
        if f.drop_response_ratio and state.rng.random() < f.drop_response_ratio:
            log.debug("fault: not answering seq %d", resp.sequence)
            return
        if f.response_delay > 0:
            link.loop.call_later(f.response_delay, self._respond_later, link, resp)
        else:
            link.respond(resp)

    @staticmethod
    def _respond_later(link: Link, resp: Pdu) -> None:
        with contextlib.suppress(LinkClosedError):
            link.respond(resp)

    def _on_submit(self, link: Link, state: _AccountState, pdu: Pdu) -> None:
        status = self._fault_status(state, pdu)
        if status is None and not state.bucket.take():
            status = Status.ESME_RTHROTTLED
        if status is None and self._enroute >= self.config.store_limit:
            status = Status.ESME_RMSGQFUL
        if status is not None:
            if status == Status.ESME_RTHROTTLED:
                self.stats.throttled += 1
            self.stats.rejected += 1
            self._respond(link, state, pdu.response(status=status))
            return
        if isinstance(pdu, SubmitMulti):
            self._on_submit_multi(link, state, pdu)
            return
        assert isinstance(pdu, SubmitSm | DataSm)
        msg, status = self._accept(
            pdu, state.account.system_id, pdu.destination_addr, pdu.dest_addr_ton, pdu.dest_addr_npi
        )
        if msg is None:
            self.stats.rejected += 1
            self._respond(link, state, pdu.response(status=status))
            return
        self._respond(link, state, pdu.response(message_id=self.config.fixed_submit_id or msg.id))

    def _on_submit_multi(self, link: Link, state: _AccountState, pdu: SubmitMulti) -> None:
        failed: list[UnsuccessSme] = []
        first_id = ""
        for dest in pdu.dest_addresses:
            if not isinstance(dest, SmeAddress):
                failed.append(UnsuccessSme(0, 0, "", Status.ESME_RINVDLNAME))
                continue
            msg, status = self._accept(
                pdu, state.account.system_id, dest.address, dest.ton, dest.npi
            )
            if msg is None:
                failed.append(UnsuccessSme(dest.ton, dest.npi, dest.address, status))
            elif not first_id:
                first_id = msg.id
        self._respond(link, state, pdu.response(message_id=first_id, unsuccess_smes=failed))

    def _accept(
        self, pdu: SubmitSm | DataSm | SubmitMulti, origin: str, dest: str, ton: int, npi: int
    ) -> tuple[Message | None, int]:
        route = self.route_for(dest, origin)
        if route is None:
            return None, Status.ESME_RINVDSTADR
        if isinstance(pdu, DataSm):
            body, tlvs, pid = b"", list(pdu.tlvs), 0
        else:
            body, tlvs, pid = pdu.short_message, list(pdu.tlvs), pdu.protocol_id
        msg = Message(
            id=f"{next(self._ids):08X}",
            source_ton=pdu.source_addr_ton,
            source_npi=pdu.source_addr_npi,
            source=pdu.source_addr,
            dest_ton=ton,
            dest_npi=npi,
            dest=dest,
            esm_class=pdu.esm_class & ~EsmClass.MODE_MASK,
            protocol_id=pid,
            data_coding=pdu.data_coding,
            short_message=body,
            tlvs=tlvs,
            registered_delivery=pdu.registered_delivery,
            origin=origin,
            submitted_at=time.time(),
        )
        self.messages[msg.id] = msg
        self._enroute += 1
        self._idle.clear()
        self.stats.submitted += 1
        self.accounts[route.account].queue.put_nowait(msg)
        return msg, Status.ESME_ROK

    def inject(
        self,
        source: str,
        dest: str,
        short_message: bytes,
        *,
        data_coding: int = 0,
        esm_class: int = 0,
        tlvs: list[Tlv] | None = None,
        source_ton: int = 1,
        source_npi: int = 1,
        origin: str = "",
    ) -> Message:
        """Route a message as if it came from the radio network (MO), not from an ESME; with
        `origin`, as if submitted by that account (routes by origin apply)."""
        pdu = SubmitSm(
            source_addr_ton=source_ton,
            source_addr_npi=source_npi,
            source_addr=source,
            destination_addr=dest,
            data_coding=data_coding,
            esm_class=esm_class,
            short_message=short_message,
            tlvs=tlvs or [],
        )
        msg, status = self._accept(pdu, origin, dest, 1, 1)
        if msg is None:
            raise ValueError(f"no route for {dest}: 0x{status:02X}")
        return msg

    def route_for(self, dest: str, origin: str = "") -> Route | None:
        digits = dest.lstrip("+")
        for route in self.routes:
            if route.origin and route.origin != origin:
                continue
            if digits.startswith(route.prefix):
                return route
        return None

    def _on_query(self, link: Link, pdu: QuerySm) -> None:
        msg = self.messages.get(pdu.message_id)
        if msg is None:
            link.respond(pdu.response(status=Status.ESME_RQUERYFAIL))
            return
        final = _smpp_time(msg.done_at) if msg.done_at else ""
        link.respond(
            pdu.response(
                message_id=msg.id,
                final_date=final,
                message_state=msg.state,
                error_code=msg.error & 0xFF,
            )
        )

    def _on_cancel(self, link: Link, pdu: CancelSm) -> None:
        msg = self.messages.get(pdu.message_id)
        if msg is None or msg.state != MessageState.ENROUTE:
            link.respond(pdu.response(status=Status.ESME_RCANCELFAIL))
            return
        self._finish(msg, MessageState.DELETED, 0)
        link.respond(pdu.response())

    def _on_replace(self, link: Link, pdu: ReplaceSm) -> None:
        msg = self.messages.get(pdu.message_id)
        if msg is None or msg.state != MessageState.ENROUTE:
            link.respond(pdu.response(status=Status.ESME_RREPLACEFAIL))
            return
        msg.short_message = pdu.short_message
        link.respond(pdu.response())

    # ------------------------------------------------------------------ delivery
    async def _deliver_worker(self, state: _AccountState, link: Link) -> None:
        while not link.session.closed:
            msg = await state.queue.get()
            if msg.state != MessageState.ENROUTE:
                continue  # cancelled or expired while queued
            if self._expired(msg):
                continue
            try:
                await self._deliver_one(state, link, msg)
            except asyncio.CancelledError:
                # The link closed under us (on_closed cancels workers): the message must not
                # vanish with the worker.
                if msg.state == MessageState.ENROUTE:
                    state.queue.put_nowait(msg)
                raise

    def _expired(self, msg: Message) -> bool:
        if time.time() - msg.submitted_at <= self.config.validity:
            return False
        self._finish(msg, MessageState.EXPIRED, msg.error)
        return True

    async def _expire_loop(self) -> None:
        """Expire stored messages even while no receiver is bound (their receipts go out)."""
        period = min(max(self.config.validity / 10, 0.05), 60.0)
        while True:
            await asyncio.sleep(period)
            for msg in [m for m in self.messages.values() if m.state == MessageState.ENROUTE]:
                self._expired(msg)

    def _deliver_pdu(self, msg: Message) -> DeliverSm:
        return DeliverSm(
            source_addr_ton=msg.source_ton,
            source_addr_npi=msg.source_npi,
            source_addr=msg.source,
            dest_addr_ton=msg.dest_ton,
            dest_addr_npi=msg.dest_npi,
            destination_addr=msg.dest,
            esm_class=msg.esm_class,
            protocol_id=msg.protocol_id,
            data_coding=msg.data_coding,
            short_message=msg.short_message,
            tlvs=list(msg.tlvs),
        )

    async def _deliver_one(self, state: _AccountState, link: Link, msg: Message) -> None:
        msg.attempts += 1
        faults = state.account.faults
        delivered = self._link_delivers.get(link, 0) + 1
        self._link_delivers[link] = delivered
        if faults.garbage_after and delivered == faults.garbage_after and link.transport:
            log.info("fault: garbage bytes to %s", link.name)
            link.transport.write(b"\x00\x00\x00\x05garbage!!")  # command_length 5: unframeable
        started = time.perf_counter()
        try:
            resp = await link.request(self._deliver_pdu(msg))
            if self.round_trips is not None:
                self.round_trips.append(time.perf_counter() - started)
        except (RequestFailedError, LinkClosedError) as exc:
            log.debug("deliver %s via %s failed: %s; will retry", msg.id, link.name, exc)
            self._retry(state, msg, immediate=isinstance(exc, LinkClosedError))
            return
        if state.answers_lost < faults.lose_answers:
            state.answers_lost += 1
            log.info("fault: the answer to %s is lost; cutting %s", msg.id, link.name)
            link.abort("fault injection: answer lost")
            self._retry(state, msg, immediate=True)
            return
        if resp.status == Status.ESME_ROK:
            self._finish(msg, MessageState.DELIVERED, 0)
        elif resp.status in TEMPORARY_ERRORS:
            msg.error = resp.status
            self._retry(state, msg, immediate=False)
        else:
            self._finish(msg, MessageState.UNDELIVERABLE, resp.status)

    def _retry(self, state: _AccountState, msg: Message, *, immediate: bool) -> None:
        cfg = self.config
        if cfg.max_attempts and msg.attempts >= cfg.max_attempts:
            self._finish(msg, MessageState.EXPIRED, msg.error)
            return
        if self._expired(msg):
            return
        self.stats.retries += 1
        if immediate:
            state.queue.put_nowait(msg)
        else:
            asyncio.get_running_loop().call_later(cfg.retry_interval, state.queue.put_nowait, msg)

    def _finish(self, msg: Message, final: MessageState, error: int) -> None:
        msg.state, msg.error, msg.done_at = final, error, time.time()
        self._enroute -= 1
        if not self._enroute:
            self._idle.set()
        if final == MessageState.DELIVERED:
            self.stats.delivered += 1
        else:
            self.stats.failed += 1
        self._finished.append(msg)
        if len(self._finished) > self.finished_retention:
            self.messages.pop(self._finished.popleft().id, None)
        wanted = msg.registered_delivery & 0x03
        if msg.origin and (wanted == 1 or (wanted == 2 and final != MessageState.DELIVERED)):
            self._send_receipt(msg)

    def _send_receipt(self, msg: Message) -> None:
        """Delivery receipt per SMPP 3.4 Appendix B, routed back to the submitting account."""
        state = self.accounts.get(msg.origin)
        if state is None:
            return
        part = split_part(self._deliver_pdu(msg))  # this part's text, UDH removed
        body = format_receipt(
            msg.id,
            msg.state,
            msg.error,
            msg.submitted_at,
            msg.done_at or time.time(),
            decode_text(part.body, msg.data_coding).text,
        )
        receipt = Message(
            id=f"{next(self._ids):08X}",
            source_ton=msg.dest_ton,
            source_npi=msg.dest_npi,
            source=msg.dest,
            dest_ton=msg.source_ton,
            dest_npi=msg.source_npi,
            dest=msg.source,
            esm_class=EsmClass.DELIVERY_RECEIPT,
            protocol_id=0,
            data_coding=0,
            short_message=body,
            tlvs=[
                Tlv.of(Tag.RECEIPTED_MESSAGE_ID, msg.id),
                Tlv.of(Tag.MESSAGE_STATE, int(msg.state)),
            ]
            if self.config.receipt_tlvs
            else [],
            registered_delivery=0,
            origin="",
            submitted_at=time.time(),
        )
        self.messages[receipt.id] = receipt
        self._enroute += 1
        self._idle.clear()
        self.stats.receipts += 1
        state.queue.put_nowait(receipt)

    async def wait_idle(self) -> None:
        """Until every accepted message (receipts included) is in a final state."""
        await self._idle.wait()

    def pending(self) -> int:
        """Messages accepted (receipts included) and not yet in a final state."""
        return self._enroute


class _Handler:
    """One per connection: forwards the link's callbacks to the SMSC."""

    def __init__(self, smsc: SimulatedSmsc) -> None:
        self.smsc = smsc

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:
        self.smsc.on_bind(link, pdu, bind_type)

    def on_request(self, link: Link, pdu: Pdu) -> None:
        self.smsc.on_request(link, pdu)

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        self.smsc.on_closed(link)


def _smpp_time(ts: float) -> str:
    """Absolute time format of SMPP 3.4 §7.1.1: YYMMDDhhmmsstnnp (UTC, so '000+')."""
    return datetime.fromtimestamp(ts, UTC).strftime("%y%m%d%H%M%S") + "000+"
