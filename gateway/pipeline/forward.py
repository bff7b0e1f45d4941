"""Forward mode: the SMSC gives the gateway every MO SMS first and does not deliver it itself
(osmo-msc's `smpp-first`, docs/inline.md). An accepted message is submitted onward on the same
transceiver bind before its deliver_sm is answered: ROK when every part was accepted onward,
else the first refusal's status, `policy.forward_error_status` when the SMSC did not answer
within `forward_timeout`, nothing when the link closed. Complaints to the complaint numbers end
at the gateway (answered ROK, not forwarded). Receipts are matched by `correlator` and their
outcome written through `deliveries` (when given).

A long message is decided part by part as each arrives; accepted leading parts are
acknowledged and held until the last part decides for the whole (gateway/pipeline/parts.py);
a redelivery of a message gone onward is answered, not sent again (OnwardLedger, the
`deliveries` rows)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.domain import Inspected
from gateway.pipeline.delivery import (
    DeliveryWriter,
    OnwardLedger,
    OnwardStatus,
    Outcome,
    ReceiptCorrelator,
    Submitted,
    onward_submit,
    receipt_wanted,
    reference_of,
)
from gateway.pipeline.handler import GatewayHandler, _seq_of, _seq_of_pdu
from gateway.pipeline.parts import (
    FLUSH_ATTEMPTS,
    HeldMessage,
    PartInput,
    PartKey,
    PartState,
)
from smsc.constants import Status, status_name
from smsc.link import Link, LinkClosedError, RequestFailedError
from smsc.pdu import DataSm, DeliverSm, Pdu
from smsc.receipt import DeliveryReceipt
from smsc.sms import Sms, part_as_sms, split_part

log = logging.getLogger("fraudgate.pipeline")


@dataclass
class _Onward:
    """How the onward submission of one message went (forward mode)."""

    status: int | None = Status.ESME_ROK  # what the deliver_sm gets; None: the link closed
    error: int | None = None  # the refusing submit_sm_resp status
    detail: str = ""
    ids: list[str] = field(default_factory=list)  # submit_sm_resp message_ids, by part
    unsent: int = 0  # parts from here on never reached the SMSC (or were refused)


@dataclass
class _Submission:
    """A message being submitted onward."""

    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    outcome: Outcome | None = None  # a receipt's, come before the row was written


class ForwardingHandler(GatewayHandler):
    """GatewayHandler for a transceiver bind in forward mode (see the module docstring)."""

    forwarding = True

    def __init__(
        self,
        *args: Any,
        forward_timeout: float = 3.0,
        correlator: ReceiptCorrelator | None = None,
        deliveries: DeliveryWriter | None = None,
        onward_memory: float = 120.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.forward_timeout = forward_timeout
        self.correlator = correlator or ReceiptCorrelator()
        self.deliveries = deliveries
        # messages being submitted onward (by message id): a redelivery meanwhile waits for
        # the outcome, and a receipt's outcome that comes before the row waits to be written
        self._submitting: dict[str, _Submission] = {}
        # what went onward lately, so that a redelivery whose first answer was lost is not
        # sent twice
        self.ledger = OnwardLedger(ttl=onward_memory)
        # concatenated messages being received, by (source, dest, ref, ref bits)
        self._partial: dict[PartKey, HeldMessage] = {}
        self._link: Link | None = None  # the latest link a part came on
        # the bind's current link (set by the daemon from its supervisor): held parts go
        # onward on it after a rebind, before any new part has come
        self.current_link: Callable[[], Link | None] | None = None
        self._unmatched_logged = -60.0

    # the hooks of GatewayHandler ----------------------------------------------------------
    def _take(self, link: Link, pdu: DeliverSm | DataSm, started: float) -> None:
        """Every part is answered on its own (see _part)."""
        self._link = link
        part, key, final = self._part(pdu)
        self._process(link, part, started, key, final)

    def _receipt_is_ours(self, pdu: Pdu, receipt: DeliveryReceipt) -> bool:
        return self._on_receipt(pdu, receipt)

    def _blocked_before(self, key: PartKey | None, final: bool) -> bool:
        partial = self._partial.get(key) if key is not None else None
        return partial is not None and partial.blocked and final

    def _not_acknowledged(self, key: PartKey | None, sms: Sms) -> None:
        partial = self._partial.get(key) if key is not None else None
        if partial is not None:  # the SMSC sends this part again: it is not in the text yet
            partial.texts.pop(_seq_of(sms), None)

    def _refused(self, key: PartKey | None, final: bool, inspected: Inspected) -> None:
        """Held parts never go onward (a message already being released cannot be stopped)."""
        partial = self._partial.get(key) if key is not None else None
        if partial is None or key is None or partial.state is PartState.RELEASING:
            return
        partial.go(PartInput.BLOCK)
        if final:
            self._drop(key, partial, inspected)

    async def _flush(self, timeout: float) -> None:
        if self.deliveries is not None:
            await self.deliveries.flush(timeout)

    # sending onward -----------------------------------------------------------------------
    def _onward(
        self,
        link: Link,
        sms: Sms,
        inspected: Inspected,
        started: float,
        key: PartKey | None,
        final: bool,
    ) -> int | None:
        """Forward mode, a message to send on: a leading part is held (answered ROK now);
        a whole message (a last part with the held ones before it) is submitted onward and
        answered when that is done (None)."""
        partial = self._partial.get(key) if key is not None else None
        if partial is not None and key is not None and not final:
            self._hold(key, partial, sms, inspected)
            return Status.ESME_ROK
        onward, release = sms, None
        if partial is not None and key is not None:  # the last part: held ones first
            partial.go(PartInput.RELEASE)
            held = [partial.held[k] for k in sorted(partial.held)]
            onward = dataclasses.replace(sms, pdus=[*held, *sms.pdus])
            release = (key, partial, _seq_of(sms))
        self._spawn(
            self._forward(link, onward, inspected, started, answer=sms.pdus, release=release)
        )
        return None

    async def _redelivered(
        self,
        link: Link,
        sms: Sms,
        inspected: Inspected,
        started: float,
        key: PartKey | None,
        final: bool,
    ) -> None:
        """A message recorded already (gateway.pipeline.message_ids): the SMSC did not get our
        answer. When it was accepted onward then (by this process, or by one before it: the
        `deliveries` rows), it is answered ROK and not submitted again; otherwise it goes on
        as a new message would."""
        ids = (inspected.sms.id, inspected.sms.prior_id)
        try:
            sent = await self._went_onward(ids)
        except Exception as exc:  # StoreError: unknown, so neither sent again nor confirmed
            self.stats.store_errors += 1
            log.warning("%s: redelivered %s: whether it went onward is unknown (%s); "
                        "answered for retry", self.name, inspected.sms.id, exc)  # fmt: skip
            status: int | None = self.policy.store_error_status
        else:
            if sent:
                self.stats.forward_repeated += 1
                log.info("%s: %s went onward already; the SMSC's redelivery is answered, "
                         "not sent again", self.name, inspected.sms.id)  # fmt: skip
                status = Status.ESME_ROK
            else:
                status = self._onward(link, sms, inspected, started, key, final)
        try:
            if status is not None:
                self._respond(link, sms.pdus, status, inspected, started)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _went_onward(self, ids: Sequence[str]) -> bool:
        sending = [self._submitting[i].done for i in ids if i in self._submitting]
        if sending:  # the first delivery's submit is under way: its outcome decides
            await asyncio.wait(sending, timeout=self.forward_timeout * 4)
        if self.ledger.knows(ids, self._loop_time()):
            return True
        return self.deliveries is not None and await self.deliveries.went_onward(ids)

    def _part(self, pdu: DeliverSm | DataSm) -> tuple[Sms, PartKey | None, bool]:
        """One part as the SMS to inspect and answer. A phone sends the parts of a long SMS one
        RP-DATA at a time and waits for each RP-ACK, and osmo-msc gives the ESME 5 s per
        deliver_sm: the deliver_sm of part 1 cannot wait for the last part. So each part is
        decided when it arrives, on the text received so far (part 1's text, then parts 1-2,
        ...), and answered at once; an accepted part that is not the last is HELD (not sent
        onward) until the last one decides for the whole message: allowed, every part goes
        onward in order; blocked, none does. A bait in part 1 stops part 1 already. Returns
        the key of a concatenated message (None for a single-part one) and whether this part
        completed it."""
        part = split_part(pdu)
        sms = part_as_sms(pdu, part, self.assembler.ia5_is_gsm)
        key: PartKey | None = None
        final = True
        concat = part.concat
        if concat is not None and concat.total > 1:
            total = concat.total
            now = self._loop_time()
            key = (pdu.source_addr, pdu.destination_addr, concat.ref, concat.ref_bits)
            partial = self._partial.pop(key, None)
            if partial is not None and now - partial.started > self.assembler_timeout:
                # an old message with the same reference (phones reuse them): finish it
                self._partial[key] = partial
                self._stale(key, partial)
                partial = None
            if partial is None:
                partial = HeldMessage(now, total)
            partial.texts[concat.seq] = sms.text
            final = all(k in partial.texts for k in range(1, total + 1))
            sms.text = "".join(partial.texts[k] for k in sorted(partial.texts))
            sms.total = total
            self._partial[key] = partial  # re-inserted: the dict stays oldest first
            self._prune(now)
        return sms, key, final

    def _prune(self, now: float) -> None:
        """Messages whose parts stopped coming: held parts go onward (they were allowed and the
        phone was told so), after `reassembly_timeout` or beyond 10,000 open messages."""
        while self._partial:
            key, oldest = next(iter(self._partial.items()))
            if now - oldest.started <= self.assembler_timeout and len(self._partial) <= 10_000:
                break
            if oldest.state is PartState.RELEASING:  # its release decides (retried if need be)
                del self._partial[key]
                continue
            self._stale(key, oldest)

    def _hold(self, key: PartKey, partial: HeldMessage, sms: Sms, inspected: Inspected) -> None:
        partial.go(PartInput.HOLD)
        for pdu in sms.pdus:
            partial.held[_seq_of_pdu(pdu)] = pdu
        partial.last, partial.last_sms = inspected, sms
        self.stats.held += len(sms.pdus)
        if partial.timer is None:
            self._arm(key, partial, partial.started + self.assembler_timeout)

    def _arm(self, key: PartKey, partial: HeldMessage, when: float) -> None:
        partial.timer = asyncio.get_running_loop().call_at(when, self._on_timer, key, partial)

    def _on_timer(self, key: PartKey, partial: HeldMessage) -> None:
        partial.timer = None
        self._stale(key, partial)

    def _drop(self, key: PartKey, partial: HeldMessage, inspected: Inspected) -> None:
        partial.go(PartInput.DROP)
        self._forget(key, partial)
        if partial.held:
            self.stats.held_dropped += len(partial.held)
            log.info(
                "%s: %d held part(s) of blocked %s not sent onward",
                self.name,
                len(partial.held),
                inspected.sms.id,
            )
            partial.held.clear()

    def _forget(self, key: PartKey, partial: HeldMessage) -> None:
        if self._partial.get(key) is partial:
            del self._partial[key]
        if partial.timer is not None:
            partial.timer.cancel()
            partial.timer = None

    def _stale(self, key: PartKey, partial: HeldMessage) -> None:
        """The last part never came (or a release failed): send onward what was held, unless
        the message was blocked (the destination gets an incomplete message, as it would
        without the gateway). Retried on the next link while none is bound. A message being
        released is left to its release: its held parts must not go onward twice."""
        if partial.state is PartState.RELEASING:
            return
        self._forget(key, partial)
        last, last_sms = partial.last, partial.last_sms
        if partial.blocked or not partial.held or last is None or last_sms is None:
            partial.go(PartInput.DROP)
            partial.held.clear()
            return
        link = self.current_link() if self.current_link is not None else self._link
        if link is None or link.session.closed:
            self._retry_later(key, partial, "no bound link")
            return
        partial.attempts += 1
        partial.go(PartInput.RELEASE)
        held = [partial.held[k] for k in sorted(partial.held)]
        log.info("%s: %s incomplete after %.0f s: %d held part(s) sent onward", self.name,
                 last.sms.id, self.assembler_timeout, len(held))  # fmt: skip
        onward = dataclasses.replace(last_sms, pdus=held)
        self._spawn(
            self._forward(link, onward, last, time.perf_counter(), answer=(),
                          release=(key, partial, None))
        )  # fmt: skip

    def _retry_later(self, key: PartKey, partial: HeldMessage, why: str) -> None:
        if partial.attempts >= FLUSH_ATTEMPTS:
            partial.go(PartInput.GIVE_UP)
            self._forget(key, partial)
            self.stats.held_lost += len(partial.held)
            log.error(
                "%s: %d acknowledged part(s) of %s could not be sent onward (%s) and are lost; "
                "their text is in the database",
                self.name,
                len(partial.held),
                partial.last.sms.id if partial.last else "?",
                why,
            )
            partial.held.clear()
            return
        partial.go(PartInput.WAIT)
        if why == "no bound link":
            partial.attempts += 1
        partial.started = self._loop_time()  # not stale again before another timeout
        self._partial.setdefault(key, partial)
        if partial.timer is None:
            self._arm(key, partial, partial.started + self.assembler_timeout)

    def _released(
        self, key: PartKey, partial: HeldMessage, last_seq: int | None, sent: int, ok: bool
    ) -> None:
        """After a release: done, or the parts not accepted onward stay held (a retried last
        part, or the timer, sends them again; the ones accepted are not sent twice)."""
        if ok:
            partial.go(PartInput.SENT)
            self._forget(key, partial)
            partial.held.clear()
            return
        for seq in sorted(partial.held)[:sent]:
            del partial.held[seq]
        if last_seq is not None:
            partial.texts.pop(last_seq, None)  # its retry is the last part again
        if partial.held:
            self._retry_later(key, partial, "refused or unanswered onward")
        else:
            partial.go(PartInput.DROP)
            self._forget(key, partial)

    def drain_held(self) -> None:
        """At shutdown, while the link is still bound: held parts go onward now (their phones
        were told they were accepted)."""
        for key, partial in list(self._partial.items()):
            if partial.held and not partial.blocked:
                if partial.timer is not None:
                    partial.timer.cancel()
                partial.attempts = FLUSH_ATTEMPTS  # one try, then reported lost
                self._stale(key, partial)

    async def _forward(
        self,
        link: Link,
        sms: Sms,
        inspected: Inspected,
        started: float,
        *,
        answer: Sequence[Pdu],
        release: tuple[PartKey, HeldMessage, int | None] | None = None,
    ) -> None:
        """Submit `sms` onward, then answer the deliver_sm(s) in `answer` with the outcome.
        `release`: the held message this completes (its state is updated after the submit)."""
        try:
            status, sent = await self._submit_onward(link, sms, inspected)
            if release is not None:
                self._released(*release, sent, status == Status.ESME_ROK)
            if status is None:
                log.info(
                    "%s: link closed while forwarding %s; left unanswered (the SMSC retries)",
                    self.name,
                    inspected.sms.id,
                )
                return
            self._respond(link, answer, status, inspected, started)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _submit_onward(
        self, link: Link, sms: Sms, inspected: Inspected
    ) -> tuple[int | None, int]:
        """Submit every part onward, in order, stopping at the first that is not accepted.
        Returns the status to answer the deliver_sm(s) with (None when the link closed) and
        how many parts were accepted onward."""
        message_id = inspected.sms.id
        submission = self._submitting[message_id] = _Submission()
        try:
            return await self._submit_recorded(link, sms, message_id)
        finally:
            if self._submitting.get(message_id) is submission:
                del self._submitting[message_id]
            if submission.outcome is not None:
                self._settled([submission.outcome])  # after its row
            submission.done.set_result(None)

    async def _submit_recorded(
        self, link: Link, sms: Sms, message_id: str
    ) -> tuple[int | None, int]:
        """The submission with its bookkeeping: the correlator, the counters, the row."""
        started_at = self.clock()
        self._settled(
            self.correlator.register(
                message_id,
                sms.source,
                sms.dest,
                len(sms.pdus),
                started_at,
                refs=[reference_of(p) for p in sms.pdus],
            )
        )
        result = await self._submit_parts(link, sms, message_id)
        submitted = result.status == Status.ESME_ROK
        if submitted:
            self.stats.forwarded += 1
            self.ledger.accepted(message_id, self._loop_time())
        else:
            self.correlator.cancel(message_id, from_part=result.unsent)
            self.stats.forward_failed += 1
            log.info("%s: %s not accepted onward: %s", self.name, message_id, result.detail)
        if self.deliveries is not None:
            self.deliveries.submitted(
                Submitted(
                    message_id=message_id,
                    smsc=self.name,
                    parts=len(sms.pdus),
                    onward=OnwardStatus.SUBMITTED if submitted else OnwardStatus.FAILED,
                    onward_error=result.error,
                    detail=result.detail,
                    submit_ids=tuple(result.ids),
                    receipt_requested=receipt_wanted(sms.pdus),
                    submitted_at=started_at,
                )
            )
        return result.status, len(result.ids)

    async def _submit_parts(self, link: Link, sms: Sms, message_id: str) -> _Onward:
        """The submit_sm of each part in turn, until one is not accepted."""
        out = _Onward(unsent=len(sms.pdus))
        for part, pdu in enumerate(sms.pdus):
            try:
                resp = await asyncio.wait_for(
                    link.request(onward_submit(pdu)), self.forward_timeout
                )
            except LinkClosedError:
                out.status, out.detail, out.unsent = None, "link closed", part + 1
                return out
            except (TimeoutError, RequestFailedError) as exc:
                # the SMSC may still have accepted this part: its receipt may come
                out.unsent = part + 1
                if link.session.closed:  # requests pending at a close fail with the session
                    out.status, out.detail = None, "link closed"
                    return out
                out.status = self.policy.forward_error_status
                out.detail = "timeout" if isinstance(exc, TimeoutError) else exc.reason
                return out
            if resp.status != Status.ESME_ROK:
                out.status = out.error = resp.status
                out.detail, out.unsent = status_name(resp.status), part
                return out
            submit_id = str(getattr(resp, "message_id", ""))
            out.ids.append(submit_id)
            self.correlator.submitted(message_id, part, submit_id)
        return out

    def _on_receipt(self, pdu: Pdu, receipt: DeliveryReceipt) -> bool:
        """Forward mode: match a receipt with a message sent onward. False when it matches
        none: it is then inspected and recorded like a message (never sent onward)."""
        now = self.clock()
        source, dest = getattr(pdu, "source_addr", ""), getattr(pdu, "destination_addr", "")
        match = self.correlator.match(source, dest, receipt, now, reference_of(pdu))
        if match is None:
            self.stats.receipts_unmatched += 1
            mono = time.monotonic()
            if mono - self._unmatched_logged >= 60.0:
                self._unmatched_logged = mono
                log.info(
                    "%s: receipt id %r stat %s matches no forwarded message (%d unmatched so far)",
                    self.name,
                    receipt.message_id,
                    receipt.stat,
                    self.stats.receipts_unmatched,
                )
        else:
            self.stats.receipts_matched += 1
            if match.outcome is not None:
                self._settled([match.outcome])
        self._settled(self.correlator.handle_timer(now))
        return match is not None

    def _settled(self, outcomes: list[Outcome]) -> None:
        if self.deliveries is None:
            return
        for outcome in outcomes:
            submission = self._submitting.get(outcome.message_id)
            if submission is not None:
                submission.outcome = outcome  # written after its row
            else:
                self.deliveries.finished(outcome)

