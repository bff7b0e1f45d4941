"""The proxy's side toward the operator's SMSC: a pool of transceiver binds that forward the
journal's submits and take the SMSC's receipts and MO messages (docs/proxy.md).

`Forwarder` keeps the submits to send in memory (bounded by the journal's accepted rows: the
aggregators get ESME_RTHROTTLED past `queue_limit`), marks each batch "sending" in the journal
before it leaves, and "forwarded" with the SMSC's id when answered. An answer that never comes
(timeout, link cut, a crash) leaves the submit *unconfirmed*: the SMSC may have it. It waits
`reconcile_wait` seconds for a receipt that names it (by the SMSC's id, else by its address
pair and reference, as `ReceiptCorrelator` matches forward mode's receipts); one that comes
confirms it, none means the SMSC never took it and it goes again. Temporary refusals are retried
`max_attempts` times; a permanent one fails the submit, with a receipt for the aggregator when
it asked for one."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import heapq
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gateway.pipeline.delivery import ReceiptCorrelator, reference_of
from gateway.proxy.journal import Journal, SetState, SubmitRow, SubmitState
from gateway.proxy.receipts import (
    final_receipt_state,
    made_receipt,
    pair_of,
    rewrite_receipt,
    wanted,
)
from gateway.proxy.settings import ProxySettings
from smsc.client import EsmeSupervisor
from smsc.constants import MessageState, Status, status_name
from smsc.link import Link
from smsc.pdu import DataSm, DeliverSm, Pdu, PduError, SmppError, SubmitSm, decode_pdu
from smsc.receipt import DeliveryReceipt, receipt_in
from smsc.session import BindType
from smsc.sms import part_as_sms, split_part

log = logging.getLogger("fraudgate.proxy")

# Refusals the SMSC means as "later" (smpp/NOTES.md): the submit is sent again.
TEMPORARY = frozenset(
    {
        Status.ESME_RTHROTTLED,
        Status.ESME_RMSGQFUL,
        Status.ESME_RSYSERR,
        Status.ESME_RX_T_APPN,
        Status.ESME_RSUBMITFAIL,
    }
)
MEMORY = 200_000  # submits whose account and receipt wish are kept in memory (then: the journal)

# (account, PDU for it, kind, key) -> delivered or kept for later
Deliver = Callable[[str, DeliverSm | DataSm, str, str], Awaitable[bool]]


@dataclass
class ForwarderStats:
    sent: int = 0  # submits sent to the SMSC (attempts)
    forwarded: int = 0  # accepted by the SMSC
    retried: int = 0  # temporary refusals, sent again
    failed: int = 0  # refused for good, or out of attempts
    unconfirmed: int = 0  # no answer: waited for a receipt
    confirmed_by_receipt: int = 0  # of those, a receipt showed the SMSC had them
    resent: int = 0  # of those, sent again (no receipt in reconcile_wait)
    receipts: int = 0  # receipts from the SMSC
    receipts_passed: int = 0  # given to the aggregator
    receipts_unmatched: int = 0
    mo: int = 0  # MO messages for an aggregator
    mo_unrouted: int = 0


@dataclass(order=True)
class _Later:
    when: float
    row: SubmitRow = field(compare=False)


class Forwarder:
    def __init__(
        self,
        settings: ProxySettings,
        journal: Journal,
        deliver: Deliver,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.deliver = deliver
        self.clock = clock
        self.stats = ForwarderStats()
        self.correlator = ReceiptCorrelator(max_pending=MEMORY)
        self.supervisors = [
            EsmeSupervisor(cfg, _UpstreamHandler(self, cfg.label)) for cfg in settings.upstream
        ]
        self._queue: collections.deque[SubmitRow] = collections.deque()
        self._ready = asyncio.Event()
        self._later: list[_Later] = []  # temporary refusals, by when they go again
        self._waiting: dict[str, tuple[float, SubmitRow]] = {}  # unconfirmed: deadline, row
        self._in_flight: dict[str, SubmitRow] = {}
        # what a receipt needs to reach its aggregator, by our id: (account, registered_delivery)
        self._owner: collections.OrderedDict[str, tuple[str, int, str]] = (
            collections.OrderedDict()
        )  # our id -> (account, registered_delivery, the id the aggregator knows)
        # the SMSC's id of forwarded submits, by our id (query_sm, cancel_sm, replace_sm)
        self._smsc_ids: collections.OrderedDict[str, tuple[str, str]] = collections.OrderedDict()
        self._tasks: set[asyncio.Future[object]] = set()
        # the first 20 characters of a submit's text as receipts quote them (matching by pair)
        self._prefix: collections.OrderedDict[str, str] = collections.OrderedDict()
        # receipts given to their aggregator lately: one the SMSC delivers again is not
        self._passed: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._requeued: set[str] = set()  # unconfirmed, queued to go again (a receipt stops it)
        self._wake = asyncio.Event()
        self._stopping = False

    # ------------------------------------------------------------------ the queue
    @property
    def outstanding(self) -> int:
        """Submits accepted and not settled: queued, in flight, waiting to retry or for a
        receipt (what `queue_limit` bounds)."""
        return len(self._queue) + len(self._in_flight) + len(self._later) + len(self._waiting)

    def holding(self) -> dict[str, int]:
        """Outstanding submits by where they are (metrics)."""
        return {
            "queued": len(self._queue),
            "in_flight": len(self._in_flight),
            "retrying": len(self._later),
            "unconfirmed": len(self._waiting),
        }

    def enqueue(self, rows: list[SubmitRow]) -> None:
        for row in rows:
            self._remember(row)
            self._queue.append(row)
        if rows:
            self._ready.set()

    def waiting(self, row: SubmitRow) -> None:
        """A submit that may have reached the SMSC (found "sending" at start): reconciled."""
        self._remember(row)
        self._unconfirmed(row, register=True)

    def awaiting(self, rows: list[SubmitRow]) -> None:
        """Forwarded submits of an earlier process whose final receipt has not come: known
        again by address pair and reference (osmo-msc's receipts name only its own ids)."""
        for row in rows:
            try:
                pdu = decode_pdu(row.pdu)
            except PduError:  # pragma: no cover - the journal holds what we encoded
                continue
            source, dest = pair_of(pdu)
            self._remember(row)
            self._quoted(row.id, pdu)
            self.correlator.register(row.id, source, dest, 1, row.created_at, [reference_of(pdu)])
            if row.smsc_id:
                self.correlator.submitted(row.id, 0, row.smsc_id)
                self.known_smsc_id(row.id, row.smsc_id, row.upstream or "")

    def take_back(self, row_id: str) -> SubmitRow | None:
        """Remove a submit that has not left yet (cancel_sm); None when it is not queued."""
        for i, row in enumerate(self._queue):
            if row.id == row_id:
                del self._queue[i]
                return row
        for i, later in enumerate(self._later):
            if later.row.id == row_id:
                self._later.pop(i)
                heapq.heapify(self._later)
                return later.row
        return None

    def smsc_id(self, row_id: str) -> tuple[str, str] | None:
        """(the SMSC's id, the upstream bind) of a forwarded submit this process knows."""
        return self._smsc_ids.get(row_id)

    def known_smsc_id(self, row_id: str, smsc_id: str, upstream: str) -> None:
        self._smsc_ids[row_id] = (smsc_id, upstream)
        self._smsc_ids.move_to_end(row_id)
        if len(self._smsc_ids) > MEMORY:
            self._smsc_ids.popitem(last=False)

    def _remember(self, row: SubmitRow) -> None:
        self._owner[row.id] = (row.account, row.receipt, row.known_as)
        self._owner.move_to_end(row.id)
        if len(self._owner) > MEMORY:
            self._owner.popitem(last=False)

    def bound_link(self, upstream: str) -> Link | None:
        for sup in self.supervisors:
            if sup.config.label == upstream and sup.link is not None and sup.link.session.bound:
                return sup.link
        return self.any_link()

    def any_link(self) -> Link | None:
        for sup in self.supervisors:
            if sup.link is not None and sup.link.session.bound:
                return sup.link
        return None

    # ------------------------------------------------------------------ running
    async def run(self) -> None:
        """Until `drain` stops the upstream binds."""
        async with asyncio.TaskGroup() as tg:
            binds = [
                tg.create_task(sup.run(), name=f"proxy upstream {sup.config.label}")
                for sup in self.supervisors
            ]
            workers = [
                tg.create_task(self._sender(sup), name=f"proxy sender {sup.config.label}")
                for sup in self.supervisors
            ]
            workers.append(tg.create_task(self._timers(), name="proxy timers"))
            await asyncio.gather(*binds)
            for task in workers:
                task.cancel()

    async def drain(self, timeout: float) -> None:
        """At shutdown: wait (bounded) for what is queued and in flight to be answered, then
        unbind. What is left stays in the journal and goes after the next start."""
        deadline = time.monotonic() + timeout
        while (self._queue or self._in_flight) and time.monotonic() < deadline:
            if self.any_link() is None:
                break
            await asyncio.sleep(0.05)
        self._stopping = True
        for sup in self.supervisors:
            sup.stop()

    async def _sender(self, sup: EsmeSupervisor) -> None:
        window = asyncio.Semaphore(sup.config.session.window)
        label = sup.config.label
        while not self._stopping:
            await self._ready.wait()
            link = await sup.wait_bound()  # a bound link: it yields while none is
            await window.acquire()
            if not self._queue or not link.session.bound:
                window.release()
                if not self._queue:
                    self._ready.clear()
                continue
            batch = [self._queue.popleft()]
            while self._queue and not window.locked() and len(batch) < 200:
                await window.acquire()
                batch.append(self._queue.popleft())
            if not self._queue:
                self._ready.clear()
            for row in batch:
                self._in_flight[row.id] = row
            try:  # written before the first byte leaves: after a crash, these may be at the SMSC
                await self.journal.submit(
                    SetState([r.id for r in batch], SubmitState.SENDING, upstream=label,
                             attempt=True, only_from=(SubmitState.PENDING, SubmitState.SENDING))
                )  # fmt: skip
            except Exception as exc:  # the journal cannot write: not sent, tried again later
                log.warning("proxy: %d submit(s) not sent, the journal failed: %s", len(batch), exc)
                for row in reversed(batch):
                    del self._in_flight[row.id]
                    self._queue.appendleft(row)
                for _ in batch:
                    window.release()
                self._ready.set()
                await asyncio.sleep(0.5)
                continue
            for row in batch:
                self._spawn(self._send(link, label, row, window))

    def _spawn(self, coro: Awaitable[object]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(
        self, link: Link, label: str, row: SubmitRow, window: asyncio.Semaphore
    ) -> None:
        try:
            pdu = decode_pdu(row.pdu)
            source, dest = pair_of(pdu)
            now = self.clock()
            self._quoted(row.id, pdu)
            self.correlator.register(row.id, source, dest, 1, now, [reference_of(pdu)])
            row.attempts += 1
            self._requeued.discard(row.id)
            try:
                fut = link.send(pdu)
            except SmppError:  # the link closed or its window filled before it left: not sent
                self.correlator.cancel(row.id)
                self._queue.appendleft(row)
                self._ready.set()
                return
            self.stats.sent += 1
            try:
                resp = await fut
            except SmppError as exc:  # timeout, link lost: the SMSC may have it
                log.debug("proxy: %s unconfirmed on %s: %s", row.id, label, exc)
                self._unconfirmed(row, register=False)
                return
            self._answered(row, label, resp)
        finally:
            self._in_flight.pop(row.id, None)
            window.release()

    def _answered(self, row: SubmitRow, label: str, resp: Pdu) -> None:
        status = resp.status
        if status == Status.ESME_ROK:
            smsc_id = str(getattr(resp, "message_id", ""))
            self.stats.forwarded += 1
            self.correlator.submitted(row.id, 0, smsc_id)
            self.known_smsc_id(row.id, smsc_id, label)
            # its receipt may have come first (on another bind): receipted it stays, with the
            # SMSC's id all the same
            self._write(SetState(
                [row.id], SubmitState.FORWARDED, smsc_id=smsc_id, upstream=label,
                only_from=(SubmitState.PENDING, SubmitState.SENDING, SubmitState.RECEIPTED),
                keep=(SubmitState.RECEIPTED,),
            ))  # fmt: skip
            return
        self.correlator.cancel(row.id)
        if status in TEMPORARY and row.attempts < self.settings.max_attempts:
            self.stats.retried += 1
            heapq.heappush(self._later, _Later(self.clock() + self.settings.retry_interval, row))
            self._write(SetState([row.id], SubmitState.PENDING, only_from=(SubmitState.SENDING,)))
            self._wake.set()
            return
        self.stats.failed += 1
        log.info("proxy: %s refused by the SMSC with %s after %d attempt(s)", row.id,
                 status_name(status), row.attempts)  # fmt: skip
        self._write(SetState([row.id], SubmitState.FAILED, error=status))
        state = MessageState.REJECTED if status not in TEMPORARY else MessageState.UNDELIVERABLE
        self.fail_receipt(row, state, status)

    def fail_receipt(self, row: SubmitRow, state: MessageState, error: int) -> None:
        """A receipt made here for a submit that will not be delivered, if the aggregator asked
        for receipts on failure."""
        if not row.receipt & 0x03:
            return
        try:
            pdu = decode_pdu(row.pdu)
        except PduError:  # pragma: no cover - the journal holds what we encoded
            return
        made = made_receipt(pdu, row.known_as, state, error, row.created_at or self.clock())
        self._spawn(self.deliver(row.account, made, "receipt", f"{row.id}/made"))

    def _unconfirmed(self, row: SubmitRow, *, register: bool) -> None:
        self.stats.unconfirmed += 1
        if register:
            try:
                pdu = decode_pdu(row.pdu)
            except PduError:  # pragma: no cover - the journal holds what we encoded
                return
            source, dest = pair_of(pdu)
            self._quoted(row.id, pdu)
            self.correlator.register(row.id, source, dest, 1, self.clock(), [reference_of(pdu)])
        self._waiting[row.id] = (self.clock() + self.settings.reconcile_wait, row)
        self._wake.set()

    def _quoted(self, row_id: str, pdu: Pdu) -> None:
        if isinstance(pdu, SubmitSm | DataSm):
            text = part_as_sms(pdu, split_part(pdu)).text
            self._prefix[row_id] = _plain(text[:20])
            self._prefix.move_to_end(row_id)
            if len(self._prefix) > MEMORY:
                self._prefix.popitem(last=False)

    def _write(self, op: SetState) -> None:
        fut = self.journal.submit(op)
        fut.add_done_callback(_logged_failure)

    async def _timers(self) -> None:
        down = False
        while True:
            now = self.clock()
            while self._later and self._later[0].when <= now:
                self._queue.append(heapq.heappop(self._later).row)
                self._ready.set()
            if self.any_link() is None:  # no receipt can come: the wait does not run
                down = True
            elif down:  # bound again: the unconfirmed wait a whole reconcile_wait from now
                down = False
                fresh = now + self.settings.reconcile_wait
                self._waiting = {rid: (max(when, fresh), row)
                                 for rid, (when, row) in self._waiting.items()}  # fmt: skip
            due = [] if down else [rid for rid, (w, _) in self._waiting.items() if w <= now]
            for rid in due:
                _, row = self._waiting.pop(rid)
                self.correlator.cancel(rid)
                self.stats.resent += 1
                self._requeued.add(rid)
                log.info("proxy: %s unconfirmed and no receipt in %.0f s: sent again",
                         rid, self.settings.reconcile_wait)  # fmt: skip
                self._queue.append(row)
                self._ready.set()
            self.correlator.handle_timer(now)
            nexts = [x.when for x in self._later[:1]] + [w for w, _ in self._waiting.values()]
            delay = min([1.0, *(max(0.0, n - now) for n in nexts)])
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    # ------------------------------------------------------------------ from the SMSC
    async def on_deliver(self, link: Link, pdu: DeliverSm | DataSm) -> None:
        """A deliver_sm / data_sm from the SMSC: a receipt goes to the aggregator whose submit it
        reports, an MO message to the account whose numbers it is for. The SMSC is answered
        once it is delivered or kept (store_error_status when neither: it sends it again)."""
        status: int = Status.ESME_ROK
        try:
            receipt = receipt_in(pdu)
            if receipt is not None:
                status = await self._receipt(pdu, receipt)
            else:
                status = await self._mo(pdu)
        except Exception as exc:  # the journal, mostly: the SMSC keeps it and sends it again
            log.warning("proxy: a deliver_sm from the SMSC not handled, answered %s: %s",
                        status_name(self.settings.store_error_status), exc)  # fmt: skip
            status = self.settings.store_error_status
        if not link.session.closed:
            link.respond(pdu.response(status=status))

    async def _receipt(self, pdu: DeliverSm | DataSm, receipt: DeliveryReceipt) -> int:
        """Which submit a receipt reports, its state made durable, then the receipt for the
        aggregator (if it asked). The SMSC's id first: in memory, else the journal's (a receipt
        for a submit forwarded before a restart must not be taken for a waiting one of the
        same numbers); else the address pair, reference and text (osmo-msc's ids match
        nothing). The state is written before the SMSC is answered: it will not send this
        receipt again, and a submit left "sending" by a crash would be sent twice."""
        self.stats.receipts += 1
        rid = receipt.message_id
        row: SubmitRow | None = None
        if rid and not self.correlator.knows(rid) and not self.correlator.ambiguous(rid):
            row = await self.journal.by_smsc_id(rid)
            if row is not None and not _between(row, pdu):  # another SMSC's id, a reused one
                row = None
        row_id = row.id if row is not None else None
        if row_id is None:
            match = self.correlator.match(
                pdu.source_addr, pdu.destination_addr, receipt, self.clock(),
                reference_of(pdu), accept=_same_text(receipt, self._prefix),
            )  # fmt: skip
            row_id = match.message_id if match is not None else None
        if row_id is None:
            self.stats.receipts_unmatched += 1
            log.debug("proxy: receipt %s matches no submit", rid)
            return Status.ESME_ROK
        owner = self._owner.get(row_id)
        if owner is None:
            if row is None:
                found = await self.journal.find([row_id])
                row = found[0] if found else None
            if row is None:  # pragma: no cover - a matched id has its row
                self.stats.receipts_unmatched += 1
                return Status.ESME_ROK
            owner = (row.account, row.receipt, row.known_as)
        await self._settled_by(row_id, receipt)
        account, asked, known_as = owner
        key = f"{row_id}/{pdu.source_addr}/{receipt.stat}/{receipt.done_date}"
        if not wanted(asked, receipt) or key in self._passed:  # a redelivery of one passed
            return Status.ESME_ROK
        self.stats.receipts_passed += 1
        ok = await self.deliver(account, rewrite_receipt(pdu, known_as), "receipt", key)
        if ok:
            self._passed[key] = None
            if len(self._passed) > MEMORY:
                self._passed.popitem(last=False)
        return Status.ESME_ROK if ok else self.settings.store_error_status

    async def _settled_by(self, row_id: str, receipt: DeliveryReceipt) -> None:
        """What a receipt proves, written (awaited): the SMSC has the submit (forwarded; a
        waiting one is confirmed, a queued one taken back), and a final one closes it."""
        smsc_id: str | None = None
        if row_id in self._waiting:  # the SMSC had it after all
            _, waited = self._waiting.pop(row_id)
            self.stats.confirmed_by_receipt += 1
            smsc_id = receipt.message_id
            self.known_smsc_id(row_id, smsc_id, waited.upstream or "")
        if row_id in self._requeued and self.take_back(row_id) is not None:  # due to go again
            self.stats.confirmed_by_receipt += 1
        unsent = (SubmitState.PENDING, SubmitState.SENDING)
        if final_receipt_state(receipt) is not None:
            op = SetState([row_id], SubmitState.RECEIPTED, smsc_id=smsc_id,
                          only_from=(*unsent, SubmitState.FORWARDED))  # fmt: skip
        else:
            op = SetState([row_id], SubmitState.FORWARDED, smsc_id=smsc_id, only_from=unsent)
        await self.journal.submit(op)

    async def _mo(self, pdu: DeliverSm | DataSm) -> int:
        dest = pdu.destination_addr.lstrip("+")
        best: tuple[int, str] | None = None
        for acct in self.settings.accounts:
            for prefix in acct.numbers:
                if dest.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), acct.system_id)
        if best is None:
            self.stats.mo_unrouted += 1
            return Status.ESME_RINVDSTADR
        self.stats.mo += 1
        body = pdu.encode()[16:]  # without the header: a redelivery has a new sequence
        minute = int(self.clock() // 60)  # the same "YES" later is another message
        key = f"mo/{minute}/{hashlib.blake2b(body, digest_size=16).hexdigest()}"
        ok = await self.deliver(best[1], pdu, "mo", key)
        return Status.ESME_ROK if ok else self.settings.store_error_status


def _between(row: SubmitRow, receipt: DeliverSm | DataSm) -> bool:
    """Whether a receipt comes from the submit's destination to its source."""
    try:
        source, dest = pair_of(decode_pdu(row.pdu))
    except PduError:  # pragma: no cover - the journal holds what we encoded
        return False
    return (receipt.source_addr.lstrip("+"), receipt.destination_addr.lstrip("+")) == (
        dest.lstrip("+"),
        source.lstrip("+"),
    )


def _plain(text: str) -> str:
    """ASCII letters and digits only: how a receipt's text: and a message compare (SMSCs write
    the first 20 characters as ASCII, other characters as '?' or not at all)."""
    return "".join(c for c in text if c.isascii() and c.isalnum())


def _same_text(
    receipt: DeliveryReceipt, prefixes: collections.OrderedDict[str, str]
) -> Callable[[str], bool]:
    """Whether a submit may be the one a receipt quotes: unknown on either side, yes."""
    quoted = _plain(receipt.text[:20])

    def accept(row_id: str) -> bool:
        ours = prefixes.get(row_id)
        if not quoted or not ours:
            return True
        n = min(len(quoted), len(ours))
        return quoted[:n] == ours[:n]

    return accept


def _logged_failure(fut: asyncio.Future[object]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.debug("proxy journal: a state change was not written: %s", fut.exception())


class _UpstreamHandler:
    """LinkHandler of one upstream bind: what the SMSC sends us."""

    def __init__(self, forwarder: Forwarder, label: str) -> None:
        self.forwarder = forwarder
        self.label = label

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:  # pragma: no cover
        raise AssertionError("an ESME is never asked to accept a bind")

    def on_request(self, link: Link, pdu: Pdu) -> None:
        if isinstance(pdu, DeliverSm | DataSm):
            self.forwarder._spawn(self.forwarder.on_deliver(link, pdu))
        else:
            link.respond(pdu.response(status=Status.ESME_RINVCMDID))

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        pass  # the supervisor rebinds; what was in flight is unconfirmed (see _send)
