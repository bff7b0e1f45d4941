"""The A2P proxy (docs/proxy.md): `Proxy.run()` listens for the aggregators as an SMSC and
keeps the upstream binds to the operator's SMSC; `Gateway` runs it in its TaskGroup.

A submit from an aggregator (submit_sm, data_sm, submit_multi):
  throttled? (the account's rate, the session's window, the journal's queue) -> ESME_RTHROTTLED
  inspected by the gateway's detectors as an A2P message of the account (the account is the
  route: senders.toml's `allowed_smsc` names accounts) plus the account's contracted sender ids;
  recorded (messages, verdicts, alerts);
  enforcing and blocked -> spoof_status (a sender id the account may not use) or block_status;
  else journalled and answered ROK with fraudgate's id, then forwarded (gateway/proxy/upstream.py).
A long message is decided as in forward mode: each part on the text so far, the last for the
whole; accepted leading parts are journalled as held and go only when the last part allows.
query_sm / cancel_sm / replace_sm name fraudgate's id: mapped to the SMSC's, or answered here
while the submit has not left; a replace_sm's new text is inspected like a submit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.detect.sender import TON_ALPHANUMERIC, plain_id
from gateway.domain import Decision, Inspected, Reason, Route, SmsEvent
from gateway.pipeline.inspector import Inspector, event_from_sms
from gateway.pipeline.message_ids import message_key, stable_ids
from gateway.pipeline.recorder import Recorder
from gateway.proxy.ids import DecimalIds
from gateway.proxy.inbound import Inbound
from gateway.proxy.journal import Accept, Journal, SetState, SubmitRow, SubmitState
from gateway.proxy.settings import ProxyAccount, ProxySettings
from gateway.proxy.upstream import MEMORY, Forwarder
from smsc.bindguard import BindGuard
from smsc.constants import EsmClass, MessageState, Status, Tag, status_name
from smsc.link import Link, LinkClosedError
from smsc.pdu import (
    CancelSm,
    DataSm,
    Pdu,
    PduError,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    SmeAddress,
    SmppError,
    SubmitMulti,
    SubmitSm,
    decode_pdu,
)
from smsc.rate import TokenBucket
from smsc.server import SmppServer
from smsc.session import BindType, SessionConfig
from smsc.sms import part_as_sms, split_part

log = logging.getLogger("fraudgate.proxy")

# findings that make a block a spoofing refusal (ESME_RINVSRCADR by default)
SPOOF_RULES = ("sender.impersonation.", "sender.lookalike.", "proxy.sender_not_contracted")
NOT_CONTRACTED_SCORE = 0.9
Submit = SubmitSm | DataSm | SubmitMulti


class ContractedSenders:
    """Detector: an alphanumeric sender id the aggregator's account is not contracted for
    (`[[proxy.account]] senders`; an empty list allows any)."""

    name = "proxy"

    def __init__(self, accounts: Sequence[ProxyAccount]) -> None:
        self.accounts = {a.system_id: a for a in accounts if a.senders}

    def inspect(self, sms: SmsEvent, now: float) -> Sequence[Reason]:
        account = self.accounts.get(sms.smsc)
        if account is None or sms.route is not Route.A2P:
            return ()
        alphanumeric = sms.source_ton == TON_ALPHANUMERIC or not sms.source.lstrip("+").isdigit()
        if not alphanumeric or plain_id(sms.source) in account.senders:
            return ()
        why = f"sender id {sms.source!r} is not among the account's contracted ids"
        return (Reason("proxy", "proxy.sender_not_contracted", NOT_CONTRACTED_SCORE, why),)


@dataclass
class _Partial:
    """A long message being received from an aggregator."""

    started: float
    texts: dict[int, str] = field(default_factory=dict)
    held: dict[int, SubmitRow] = field(default_factory=dict)
    blocked: bool = False


PartKey = tuple[str, str, str, int, int]  # account, source, dest, reference, reference bits


@dataclass
class ProxyStats:
    binds: int = 0
    binds_refused: int = 0
    submits: int = 0
    accepted: int = 0  # answered ROK
    repeated: int = 0  # resubmissions answered with the first id
    refused_spoof: int = 0
    refused_block: int = 0
    throttled: int = 0
    store_errors: int = 0
    held: int = 0
    held_dropped: int = 0
    malformed: int = 0  # refused: text or concatenation given two ways
    queries: int = 0
    cancels: int = 0
    replaces: int = 0


class Proxy:
    def __init__(
        self,
        settings: ProxySettings,
        *,
        inspector: Inspector,
        recorder: Recorder,
        journal: Journal,
        enforcing: bool,
        block_status: int,
        reassembly_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        on_inspected: Callable[[Inspected], None] | None = None,
        system_id: str = "fraudgate",
        retention_days: float = 30.0,
    ) -> None:
        self.retention_days = retention_days  # the journal's rows (they hold texts)
        self.settings = settings
        self.enforcing = enforcing if not settings.mode else settings.mode == "enforce"
        self.block_status = settings.block_status or block_status
        self.recorder = recorder
        self.journal = journal
        self.clock = clock
        self.on_inspected = on_inspected
        self.resubmit_window = settings.resubmit_window  # a resubmission within: the first id
        self.reassembly_timeout = reassembly_timeout
        self.system_id = system_id
        # the gateway's detectors (shared state: velocity, campaigns) and the contracts
        self.inspector = Inspector(
            [*inspector.detectors, ContractedSenders(settings.accounts)],
            inspector.thresholds,
            text_detectors=inspector.text_detectors,
            exemptions=inspector.exemptions,
        )
        self.accounts = {a.system_id: a for a in settings.accounts}
        self.buckets = {a.system_id: TokenBucket(a.max_rate) for a in settings.accounts}
        self.guard = BindGuard()
        self.ids = DecimalIds(settings.id_node)
        self.inbound = Inbound(settings, journal, clock)
        self.forwarder = Forwarder(settings, journal, self.inbound.deliver, clock=clock)
        self.stats = ProxyStats()
        self.ready = asyncio.Event()
        self.port = settings.port
        self._partial: dict[PartKey, _Partial] = {}
        # blocked long messages, by key: when (their late parts are refused)
        self._blocked: collections.OrderedDict[PartKey, float] = collections.OrderedDict()
        self._accepting = 0  # submits between inspection and their journal row
        self._server: SmppServer | None = None

    # ------------------------------------------------------------------ running
    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: then the aggregators are unbound (their submits answered), what is
        queued goes to the SMSC (bounded), the upstream binds unbind."""
        ctx = None
        if self.settings.tls_cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.settings.tls_cert, self.settings.tls_key or None)
        server = SmppServer(
            lambda: _AggregatorHandler(self),
            self.settings.host,
            self.settings.port,
            session_config=SessionConfig(window=50, response_timeout=OFFER_RESPONSE),
            ssl_context=ctx,
            name="proxy",
        )
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self.journal.run(), name="proxy journal")]
            await self._resume()  # it writes through the journal: after it runs
            tasks += [
                tg.create_task(self.inbound.run(), name="proxy inbound"),
                tg.create_task(self._expire_parts(), name="proxy parts"),
                tg.create_task(self._purge(), name="proxy retention"),
            ]
            forwarder = tg.create_task(self.forwarder.run(), name="proxy upstream")
            async with server:
                self._server = server
                self.port = server.port
                self.ready.set()
                log.info("proxy listening on %s:%d for %d account(s), %d upstream bind(s) (%s)",
                         self.settings.host, server.port, len(self.accounts),
                         len(self.settings.upstream),
                         "enforcing" if self.enforcing else "monitor-only")  # fmt: skip
                await stop.wait()
                log.info("proxy: unbinding the aggregators, then forwarding what is queued")
            await self._settle(5.0)
            await self.forwarder.drain(10.0)
            await forwarder
            await self._settle(5.0)
            for t in tasks:
                t.cancel()

    async def _settle(self, timeout: float) -> None:
        """Wait (bounded) until the journal has written what it was given."""
        deadline = time.monotonic() + timeout
        while (self.journal.backlog or self._accepting) and time.monotonic() < deadline:  # noqa: ASYNC110 - two counters, bounded
            await asyncio.sleep(0.02)

    async def _resume(self) -> None:
        """What the journal holds unfinished from before: held parts go (their message's last
        part will not come to this process), pending ones are sent, sending ones are
        reconciled (the SMSC may have them: their receipts decide)."""
        rows = await self.journal.unfinished()
        held = [r for r in rows if r.state is SubmitState.HELD]
        if held:
            await self.journal.submit(SetState([r.id for r in held], SubmitState.PENDING,
                                               only_from=(SubmitState.HELD,)))  # fmt: skip
        self.forwarder.enqueue([r for r in rows if r.state is not SubmitState.SENDING])
        for r in rows:
            if r.state is SubmitState.SENDING:
                self.forwarder.waiting(r)
        since = self.clock() - self.forwarder.correlator.ttl
        self.forwarder.awaiting(await self.journal.awaiting_receipts(since, MEMORY))
        if rows:
            log.info("proxy: resuming %d submit(s) from before (%d held, %d unconfirmed)",
                     len(rows), len(held),
                     sum(r.state is SubmitState.SENDING for r in rows))  # fmt: skip

    # ------------------------------------------------------------------ binds
    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:
        system_id = getattr(pdu, "system_id", "")
        account = self.accounts.get(system_id)
        decision = self.guard.authenticate(
            link.loop.time(),
            link.peer[0] if link.peer else None,
            system_id,
            getattr(pdu, "password", ""),
            bind_type,
            account,
        )
        if decision.status or account is None:
            self.stats.binds_refused += 1
            if decision.log:
                extra = f"; {decision.unlogged} more since" if decision.unlogged else ""
                log.warning("proxy: bind as %r from %s refused: %s (%s)%s", system_id,
                            link.peer[0] if link.peer else "?", decision.reason,
                            status_name(decision.status), extra)  # fmt: skip
            link.reject_bind(pdu, decision.status or Status.ESME_RBINDFAIL, close=True)
            return
        link.name = f"proxy/{system_id}"
        link.session.config.window = account.window
        link.session.config.incoming_window = account.window
        link.session.config.overflow_status = self.settings.throttle_status
        if not link.accept_bind(pdu, self.system_id):
            return
        self.stats.binds += 1
        if bind_type in (BindType.RECEIVER, BindType.TRANSCEIVER):
            self.inbound.bound(system_id, link)
        log.info("proxy: %s bound as %s from %s", system_id, bind_type.value,
                 link.peer[0] if link.peer else "?")  # fmt: skip

    def on_closed(self, link: Link) -> None:
        self.inbound.gone(link)

    # ------------------------------------------------------------------ requests
    def on_request(self, link: Link, pdu: Pdu) -> None:
        account = self.accounts.get(link.session.peer_system_id)
        if account is None:  # pragma: no cover - the session refuses requests before a bind
            link.respond(pdu.response(status=Status.ESME_RINVBNDSTS))
            return
        if isinstance(pdu, SubmitSm | DataSm | SubmitMulti):
            self._submit(link, account, pdu)
        elif isinstance(pdu, QuerySm | CancelSm | ReplaceSm):
            self.forwarder._spawn(self._by_id(link, account, pdu))
        else:
            link.respond(pdu.response(status=Status.ESME_RINVCMDID))

    def _respond(self, link: Link, pdu: Pdu, status: int, message_id: str = "") -> None:
        try:
            if status:
                link.respond(pdu.response(status=status))
            else:
                link.respond(pdu.response(message_id=message_id))
        except LinkClosedError:
            log.debug("proxy: %s left before its answer (it resubmits)", link.name)

    def _submit(self, link: Link, account: ProxyAccount, pdu: Submit) -> None:
        self.stats.submits += 1
        unread = self._refused_unread(account, pdu)
        if unread is not None:
            self._respond(link, pdu, unread)
            return
        single = _as_single(pdu)
        part = split_part(single)
        sms = part_as_sms(single, part)
        now = self.clock()
        key: PartKey | None = None
        partial: _Partial | None = None
        final = True
        seq = 1
        concat = part.concat
        if concat is not None and concat.total > 1:
            key = (account.system_id, single.source_addr, _dest_key(pdu),
                   concat.ref, concat.ref_bits)  # fmt: skip
            partial = self._part_of(key, now)
            seq = concat.seq
            partial.texts[seq] = sms.text
            final = all(k in partial.texts for k in range(1, concat.total + 1))
            sms.text = "".join(partial.texts[k] for k in sorted(partial.texts))
            sms.total = concat.total
        event = event_from_sms(sms, account.system_id, Route.A2P, now)
        if not final:
            event.complete = False
        event.id, event.prior_id = stable_ids(
            message_key([pdu], f"proxy:{account.system_id}"), now, self.resubmit_window
        )
        inspected = self.inspector.inspect(event, now)
        if self.on_inspected is not None:
            self.on_inspected(inspected)
        recorded = self.recorder.submit(inspected)
        blocked = inspected.verdict.decision is Decision.BLOCK or (
            partial is not None and partial.blocked
        )
        if self.enforcing and blocked:
            spoof = any(r.rule_id.startswith(SPOOF_RULES) for r in inspected.verdict.reasons)
            status = self.settings.spoof_status if spoof else self.block_status
            if spoof:
                self.stats.refused_spoof += 1
            else:
                self.stats.refused_block += 1
            if partial is not None and key is not None:
                partial.blocked = True
                if final:
                    self._drop(key, partial)

            def refused(f: asyncio.Future[bool]) -> None:
                ok = not f.cancelled() and f.exception() is None
                if not ok:
                    self.stats.store_errors += 1
                self._respond(link, pdu, status if ok else self.settings.store_error_status)

            recorded.add_done_callback(refused)
            return
        row = SubmitRow(
            id=event.id,
            account=account.system_id,
            state=SubmitState.PENDING if final else SubmitState.HELD,
            pdu=_upstream(pdu),
            part=seq,
            group_key=_group_key(key, partial),
            receipt=pdu.registered_delivery,
            created_at=now,
            public_id=self.ids.next() if account.id_format == "decimal" else "",
        )
        # the last part: its held parts become pending in the same transaction (whether or not
        # their own rows are written yet: an aggregator with a window sends parts back to back)
        release = row.group_key if (final and partial is not None) else None
        accepted = self.journal.submit(Accept(row, event.prior_id, release))
        self._accepting += 1
        accepted.add_done_callback(lambda f: self._accepted(link, pdu, row, key, partial, final, f))

    def _refused_unread(self, account: ProxyAccount, pdu: Submit) -> int | None:
        """The status of a submit refused before its text is read: over the account's rate, the
        queue at its limit (the SMSC slow or down: backpressure, not a queue), or a text or a
        concatenation given two ways (the SMSC could deliver what was not inspected)."""
        if not self.buckets[account.system_id].take() or (
            self.forwarder.outstanding + self._accepting >= self.settings.queue_limit
        ):
            self.stats.throttled += 1
            return self.settings.throttle_status
        ambiguous = _ambiguous(pdu)
        if ambiguous:
            self.stats.malformed += 1
            log.info("proxy: a submit from %s refused: %s", account.system_id, ambiguous)
            return Status.ESME_RINVOPTPARAMVAL
        return None

    def _part_of(self, key: PartKey, now: float) -> _Partial:
        """The long message a part belongs to: the one being received, or a new one (an old one
        past the reassembly timeout goes as it is; a blocked one's late parts stay blocked)."""
        partial = self._partial.get(key)
        if partial is None or now - partial.started > self.reassembly_timeout:
            if partial is not None:
                self._release(key, partial)
            partial = self._partial[key] = _Partial(now)
            partial.blocked = self._was_blocked(key, now)
        return partial

    def _accepted(
        self,
        link: Link,
        pdu: Submit,
        row: SubmitRow,
        key: PartKey | None,
        partial: _Partial | None,
        final: bool,
        f: asyncio.Future[SubmitRow | None],
    ) -> None:
        self._accepting -= 1
        if f.cancelled() or f.exception() is not None:
            self.stats.store_errors += 1
            if partial is not None:  # the aggregator sends it again: not in the text yet
                partial.texts.pop(row.part, None)
            self._respond(link, pdu, self.settings.store_error_status)
            return
        there = f.result()
        if there is not None:  # a resubmission (its answer was lost): the first id, once
            self.stats.repeated += 1
            self._respond(link, pdu, Status.ESME_ROK, there.known_as)
            return
        self.stats.accepted += 1
        self._respond(link, pdu, Status.ESME_ROK, row.known_as)
        if not final and partial is not None and key is not None:
            self.stats.held += 1
            if partial.blocked:  # its last part was refused while this one was being written
                self._drop_rows([row])
            elif self._partial.get(key) is not partial:  # released meanwhile (timed out)
                self._pending([row])
            else:
                partial.held[row.part] = row
            return
        rows = [row]
        if partial is not None and key is not None:
            rows = [partial.held[k] for k in sorted(partial.held)] + rows
            if self._partial.get(key) is partial:
                del self._partial[key]
        self.forwarder.enqueue(rows)

    def _drop(self, key: PartKey, partial: _Partial) -> None:
        """A blocked message's held parts never go; the aggregator hears it by receipt. Its
        key is remembered: a part that comes after the reassembly timeout is refused too."""
        if self._partial.get(key) is partial:
            del self._partial[key]
        self._blocked[key] = self.clock()
        self._blocked.move_to_end(key)
        while len(self._blocked) > BLOCKED_MEMORY:
            self._blocked.popitem(last=False)
        held = [partial.held[k] for k in sorted(partial.held)]
        partial.held.clear()
        self._drop_rows(held)

    def _was_blocked(self, key: PartKey, now: float) -> bool:
        when = self._blocked.get(key)
        return when is not None and now - when <= BLOCKED_FOR * self.reassembly_timeout

    def _drop_rows(self, rows: list[SubmitRow], attempt: int = 1) -> None:
        """Held rows of a blocked message: dropped in the journal (retried: a row left held
        would be sent after a restart), REJECTD receipts for their aggregator."""
        if not rows:
            return
        if attempt == 1:
            self.stats.held_dropped += len(rows)
            for r in rows:
                self.forwarder.fail_receipt(r, MessageState.REJECTED, self.block_status)

        def done(f: asyncio.Future[object]) -> None:
            if f.cancelled() or f.exception() is None:
                return
            log.warning("proxy: %d dropped part(s) not written (try %d): %s", len(rows),
                        attempt, f.exception())  # fmt: skip
            asyncio.get_running_loop().call_later(1.0, self._drop_rows, rows, attempt + 1)

        self.journal.submit(
            SetState([r.id for r in rows], SubmitState.DROPPED, only_from=(SubmitState.HELD,))
        ).add_done_callback(done)

    def _release(self, key: PartKey, partial: _Partial) -> None:
        """The last part never came: held parts go as they are (as they would without us),
        unless the message was blocked (then they are dropped)."""
        if partial.blocked:
            self._drop(key, partial)
            return
        if self._partial.get(key) is partial:
            del self._partial[key]
        held = [partial.held[k] for k in sorted(partial.held)]
        partial.held.clear()
        self._pending(held)

    def _pending(self, held: list[SubmitRow]) -> None:
        """Held rows made pending in the journal, then sent."""
        if not held:
            return

        def go(f: asyncio.Future[object]) -> None:
            if f.cancelled() or f.exception() is not None:  # at the next start, from the journal
                return
            self.forwarder.enqueue(held)

        self.journal.submit(
            SetState([r.id for r in held], SubmitState.PENDING, only_from=(SubmitState.HELD,))
        ).add_done_callback(go)

    def _unhold(self, row_id: str) -> bool:
        """Take a held part out of its message (cancel_sm): it will not go with the rest."""
        for partial in self._partial.values():
            for seq, row in list(partial.held.items()):
                if row.id == row_id:
                    del partial.held[seq]
                    return True
        return False

    async def _purge(self) -> None:
        """Every hour: the journal's rows past the texts' retention."""
        while True:
            await asyncio.sleep(60.0)
            try:
                n = await self.journal.purge(self.clock() - self.retention_days * 86400)
            except Exception as exc:  # StoreError: the next hour
                log.warning("proxy: journal retention not applied: %s", exc)
            else:
                if n:
                    log.info("proxy: %d journal row(s) past the retention deleted", n)
            await asyncio.sleep(3540.0)

    async def _expire_parts(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.reassembly_timeout / 4))
            now = self.clock()
            for key, partial in list(self._partial.items()):
                if now - partial.started > self.reassembly_timeout:
                    self._release(key, partial)

    # ------------------------------------------------------------------ query / cancel / replace
    async def _by_id(
        self, link: Link, account: ProxyAccount, pdu: QuerySm | CancelSm | ReplaceSm
    ) -> None:
        try:
            status, resp = await self._by_id_answer(account, pdu)
        except Exception as exc:  # the journal, mostly
            log.warning("proxy: %s not answered: %s", pdu.name, exc)
            status, resp = self.settings.store_error_status, None
        with contextlib.suppress(LinkClosedError):
            link.respond(resp if resp is not None else pdu.response(status=status))

    async def _by_id_answer(
        self, account: ProxyAccount, pdu: QuerySm | CancelSm | ReplaceSm
    ) -> tuple[int, Pdu | None]:
        found = await self.journal.find([pdu.message_id], public=True)
        row = next((r for r in found if r.account == account.system_id), None)
        fail = {QuerySm: Status.ESME_RQUERYFAIL, CancelSm: Status.ESME_RCANCELFAIL,
                ReplaceSm: Status.ESME_RREPLACEFAIL}[type(pdu)]  # fmt: skip
        if row is None:
            return Status.ESME_RINVMSGID, None
        if isinstance(pdu, QuerySm):
            self.stats.queries += 1
        elif isinstance(pdu, CancelSm):
            self.stats.cancels += 1
        else:
            self.stats.replaces += 1
            verdict = self._inspect_replacement(account, row, pdu)
            if verdict is not None:
                return verdict, None
        if row.state in (SubmitState.FORWARDED, SubmitState.RECEIPTED) and row.smsc_id:
            return await self._upstream_by_id(row, pdu, fail)
        if row.state in (SubmitState.PENDING, SubmitState.HELD) and isinstance(pdu, CancelSm):
            if self.forwarder.take_back(row.id) is not None or self._unhold(row.id):
                await self.journal.submit(SetState([row.id], SubmitState.CANCELLED,
                                                   only_from=(row.state,)))  # fmt: skip
                return Status.ESME_ROK, None
            return fail, None
        if isinstance(pdu, QuerySm):
            state = {
                SubmitState.FAILED: MessageState.REJECTED,
                SubmitState.DROPPED: MessageState.REJECTED,
                SubmitState.CANCELLED: MessageState.DELETED,
            }.get(row.state, MessageState.ENROUTE)
            return Status.ESME_ROK, pdu.response(
                message_id=row.known_as, message_state=int(state), error_code=0
            )
        return fail, None  # not at the SMSC (yet, or ever): nothing to cancel or replace there

    def _inspect_replacement(
        self, account: ProxyAccount, row: SubmitRow, pdu: ReplaceSm
    ) -> int | None:
        """A replace_sm carries a new text: inspected (and recorded) like a submit. The
        refusal status when it is blocked while enforcing, else None."""
        try:
            original = decode_pdu(row.pdu)
        except PduError:  # pragma: no cover - written by us
            return Status.ESME_RREPLACEFAIL
        if not isinstance(original, SubmitSm):
            return Status.ESME_RREPLACEFAIL  # data_sm / submit_multi cannot be replaced (§4.10)
        replaced = dataclasses.replace(original, short_message=pdu.short_message, tlvs=[])
        sms = part_as_sms(replaced, split_part(replaced))
        now = self.clock()
        event = event_from_sms(sms, account.system_id, Route.A2P, now)
        event.id, event.prior_id = stable_ids(
            message_key([replaced], f"proxy:{account.system_id}/replace"),
            now,
            self.resubmit_window,
        )
        inspected = self.inspector.inspect(event, now)
        self.recorder.submit(inspected)
        if self.enforcing and inspected.verdict.decision is Decision.BLOCK:
            self.stats.refused_block += 1
            return self.block_status
        return None

    async def _upstream_by_id(
        self, row: SubmitRow, pdu: QuerySm | CancelSm | ReplaceSm, fail: int
    ) -> tuple[int, Pdu | None]:
        known = self.forwarder.smsc_id(row.id)
        smsc_id, upstream = known if known else (row.smsc_id or "", row.upstream or "")
        link = self.forwarder.bound_link(upstream)
        if link is None:
            return Status.ESME_RSYSERR, None  # the SMSC is not reachable now: try later
        onward = decode_pdu(pdu.encode())
        assert isinstance(onward, QuerySm | CancelSm | ReplaceSm)
        onward.message_id, onward.sequence = smsc_id, 0
        if isinstance(onward, ReplaceSm):  # the final receipt stays asked for (see _upstream)
            onward.registered_delivery = (onward.registered_delivery & ~0x03) | 0x01
        try:
            resp = await link.request(onward, timeout=10.0)
        except (SmppError, TimeoutError):
            return Status.ESME_RSYSERR, None
        if resp.status:
            return resp.status, None
        if isinstance(pdu, QuerySm):
            got = decode_pdu(resp.encode())
            assert isinstance(got, QuerySmResp)
            got.message_id, got.sequence = row.known_as, pdu.sequence
            return Status.ESME_ROK, got
        if isinstance(pdu, CancelSm):
            self.journal.submit(SetState([row.id], SubmitState.CANCELLED)).add_done_callback(
                lambda f: f.cancelled() or f.exception()
            )
        return Status.ESME_ROK, None


OFFER_RESPONSE = 10.0  # seconds an aggregator has to answer what we send it
BLOCKED_MEMORY = 100_000  # blocked long messages remembered (their late parts are refused)
BLOCKED_FOR = 10  # ... for this many reassembly timeouts


def _ambiguous(pdu: Submit) -> str:
    """Why a submit could be delivered other than it is inspected ("" when it cannot): a
    text in short_message and message_payload both (§5.3.2.32: one or the other; the SMSC may
    deliver either), concatenation in the UDH and in sar_* TLVs both (it may group by either)."""
    text = b"" if isinstance(pdu, DataSm) else pdu.short_message
    if pdu.tlv(Tag.MESSAGE_PAYLOAD) is not None and text:
        return "short_message and message_payload both carry text"
    if pdu.esm_class & EsmClass.UDHI and pdu.tlv(Tag.SAR_MSG_REF_NUM) is not None:
        return "concatenated both by UDH and by sar_* TLVs"
    return ""


def _dest_key(pdu: Submit) -> str:
    """The destination a long message's parts share: the address, or a submit_multi's list."""
    if not isinstance(pdu, SubmitMulti):
        return pdu.destination_addr
    listed = repr(pdu.dest_addresses).encode("utf-8", "replace")
    return "multi:" + hashlib.blake2b(listed, digest_size=8).hexdigest()


def _group_key(key: PartKey | None, partial: _Partial | None) -> str | None:
    """What a long message's rows share in the journal: its addresses, reference and start."""
    if key is None or partial is None:
        return None
    return "/".join(map(str, key[1:])) + f"@{partial.started:.3f}"


def _as_single(pdu: Submit) -> SubmitSm | DataSm:
    """What is inspected: the submit itself, or a submit_multi as a submit_sm to its first
    address (one text to all: the same verdict)."""
    if not isinstance(pdu, SubmitMulti):
        return pdu
    first = next((d for d in pdu.dest_addresses if isinstance(d, SmeAddress)), SmeAddress())
    return SubmitSm(
        service_type=pdu.service_type,
        source_addr_ton=pdu.source_addr_ton, source_addr_npi=pdu.source_addr_npi,
        source_addr=pdu.source_addr, dest_addr_ton=first.ton, dest_addr_npi=first.npi,
        destination_addr=first.address, esm_class=pdu.esm_class, protocol_id=pdu.protocol_id,
        registered_delivery=pdu.registered_delivery, data_coding=pdu.data_coding,
        short_message=pdu.short_message, tlvs=list(pdu.tlvs),
    )  # fmt: skip


def _upstream(pdu: Submit) -> bytes:
    """The submit as it goes to the SMSC: as the aggregator sent it, a final receipt always
    asked for (fraudgate confirms and maps with it; the aggregator gets it only if it asked)."""
    sequence, asked = pdu.sequence, pdu.registered_delivery
    pdu.sequence, pdu.registered_delivery = 0, (asked & ~0x03) | 0x01
    try:  # encoded with the two fields changed, then put back (no copy: this is per submit)
        return pdu.encode()
    finally:
        pdu.sequence, pdu.registered_delivery = sequence, asked


class _AggregatorHandler:
    """LinkHandler of one aggregator's connection."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:
        self.proxy.on_bind(link, pdu, bind_type)

    def on_request(self, link: Link, pdu: Pdu) -> None:
        self.proxy.on_request(link, pdu)

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        self.proxy.on_closed(link)


__all__ = ["ContractedSenders", "Proxy", "ProxyStats"]
