"""The inspection pipeline: SMPP PDUs in, recorded verdicts and SMPP responses out.

    deliver_sm / data_sm --SmsAssembler--> Sms --> SmsEvent --Inspector--> Inspected
        --Recorder (group commit: messages, verdicts, outbox alerts in one transaction)-->
        deliver_sm_resp for every part (0, or the block status when enforcing)

A response goes out only after its message and verdict are committed; when the database cannot
record, the SMSC gets `store_error_status` (0x14 by default), which SMSCs retry: nothing is lost.
In forward mode (an SMSC that hands every MO SMS to the gateway first, docs/inline.md) an accepted
message is first submitted onward on the same bind, and the deliver_sm is answered with the
outcome of that submit_sm; delivery receipts of the onward messages go to a ReceiptCorrelator.
No task per message: the Inspector is synchronous and the response is a callback on the
Recorder's future, so the per-message cost is the detectors' plus one commit share.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from gateway.domain import (
    Decision,
    Inspected,
    Route,
)
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
from gateway.pipeline.inspector import Inspector, event_from_sms
from gateway.pipeline.message_ids import DEFAULT_WINDOW, message_key, stable_ids
from gateway.pipeline.parts import (
    FLUSH_ATTEMPTS,
    HeldMessage,
    PartInput,
    PartKey,
    PartState,
)
from gateway.pipeline.policy import Answer, AnswerPolicy, answer_for
from gateway.pipeline.recorder import Recorder
from smsc.constants import Status, status_name
from smsc.link import Link, LinkClosedError, RequestFailedError
from smsc.pdu import DataSm, DeliverSm, DeliverSmResp, Pdu
from smsc.receipt import DeliveryReceipt, is_receipt_type, receipt_in
from smsc.session import BindType
from smsc.sms import Sms, SmsAssembler, part_as_sms, split_part

log = logging.getLogger("fraudgate.pipeline")


# --------------------------------------------------------------------------------------------
# The SMPP side


class _DeliverSmRespWithBody(DeliverSmResp):
    """deliver_sm_resp that keeps its body (message_id NUL) on an error status. SMPP 3.4 lets an
    error response go without one, but osmo-msc's libsmpp34 cannot parse that ("Value length
    exceed buffer length"), drops it, and the phone gets RP-ERROR 27 from its 5 s timer instead
    of the status's own cause (tests/osmo/test_phones.py). Every SMSC accepts the body."""

    _OPTIONAL_BODY: ClassVar[bool] = False


def _seq_of_pdu(pdu: Pdu) -> int:
    concat = split_part(pdu).concat if isinstance(pdu, DeliverSm | DataSm) else None
    return concat.seq if concat is not None else 1


def _seq_of(sms: Sms) -> int:
    return _seq_of_pdu(sms.pdus[0]) if sms.pdus else 1


def _refusal(pdu: Pdu, status: int) -> Pdu:
    if isinstance(pdu, DeliverSm):
        return _DeliverSmRespWithBody(sequence=pdu.sequence, status=status)
    return pdu.response(status=status)


@dataclass
class PipelineStats:
    received: int = 0  # whole SMS
    allowed: int = 0
    flagged: int = 0
    blocked: int = 0
    rejected: int = 0  # answered with block_status (enforcing)
    store_errors: int = 0
    receipts: int = 0
    false_receipts: int = 0  # esm_class said receipt, but it was not one (or matched nothing)
    incomplete: int = 0
    forwarded: int = 0  # forward mode: whole SMS accepted onward (every part's submit_sm_resp 0)
    held: int = 0  # forward mode: parts acknowledged and held until their message is complete
    held_dropped: int = 0  # held parts never sent onward: their message was blocked
    held_lost: int = 0  # acknowledged parts that could not be sent onward in the end
    forward_failed: int = 0  # refused onward, no answer in time, or the link closed meanwhile
    forward_repeated: int = 0  # redeliveries of messages gone onward: answered, not sent again
    receipts_matched: int = 0
    receipts_unmatched: int = 0


@dataclass
class _Onward:
    """How the onward submission of one message went (forward mode)."""

    status: int | None = Status.ESME_ROK  # what the deliver_sm gets; None: the link closed
    error: int | None = None  # the refusing submit_sm_resp status
    detail: str = ""
    ids: list[str] = field(default_factory=list)  # submit_sm_resp message_ids, by part
    unsent: int = 0  # parts from here on never reached the SMSC (or were refused)


class GatewayHandler:
    """LinkHandler for one SMSC bind (one per supervisor, shared by its successive links).

    With `forward=True` (a transceiver bind to an SMSC that gives the gateway every MO SMS first
    and does not deliver it itself) an answered-ROK message is submitted onward on the same link
    before its deliver_sm is answered: ROK when every part was accepted onward, else the first
    refusal's status, `policy.forward_error_status` when the SMSC did not answer within
    `forward_timeout`, nothing when the link closed. Complaints to the complaint numbers end at
    the gateway (answered ROK, not forwarded). Receipts are matched by `correlator` and their
    outcome written through `deliveries` (when given)."""

    def __init__(
        self,
        name: str,
        route: Route,
        inspector: Inspector,
        recorder: Recorder,
        policy: AnswerPolicy,
        *,
        reassembly_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        on_inspected: Callable[[Inspected], None] | None = None,
        forward: bool = False,
        forward_timeout: float = 3.0,
        ia5_is_gsm: bool = False,
        correlator: ReceiptCorrelator | None = None,
        deliveries: DeliveryWriter | None = None,
        scope: str = "",
        redelivery_window: float = DEFAULT_WINDOW,
        onward_memory: float = 120.0,
    ) -> None:
        self.name = name
        # what makes a message's id: the SMSC account it came through (docs: message_ids)
        self.scope = scope or name
        self.redelivery_window = redelivery_window
        self.route = route
        self.inspector = inspector
        self.recorder = recorder
        self.policy = policy
        self.clock = clock
        self.on_inspected = on_inspected
        self.assembler = SmsAssembler(timeout=reassembly_timeout, ia5_is_gsm=ia5_is_gsm)
        self.assembler_timeout = reassembly_timeout
        self.stats = PipelineStats()
        self.latencies: list[float] = []  # seconds from last part to response, when measuring
        self.measure = False
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.forward = forward
        self.forward_timeout = forward_timeout
        self.correlator = correlator or ReceiptCorrelator()
        self.deliveries = deliveries
        self._tasks: set[asyncio.Task[None]] = set()
        # messages being submitted onward: an outcome that comes before their row is written
        # waits here (the row's insert must precede its update)
        self._submitting: dict[str, Outcome | None] = {}
        # forward mode: what went onward lately, and what is being submitted (by message id),
        # so that a redelivery whose first answer was lost is not sent twice
        self.ledger = OnwardLedger(ttl=onward_memory)
        self._sending: dict[str, asyncio.Future[None]] = {}
        # forward mode: concatenated messages being received, by (link, source, dest, ref)
        self._partial: dict[PartKey, HeldMessage] = {}
        self._link: Link | None = None  # the latest link a part came on
        # the bind's current link (set by the daemon from its supervisor): held parts go
        # onward on it after a rebind, before any new part has come
        self.current_link: Callable[[], Link | None] | None = None
        self._unmatched_logged = -60.0

    # LinkHandler ------------------------------------------------------------------------
    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:  # pragma: no cover
        raise AssertionError("an ESME is never asked to accept a bind")

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        pass  # the supervisor logs link state; unanswered parts are redelivered by the SMSC

    def on_request(self, link: Link, pdu: Pdu) -> None:
        if not isinstance(pdu, DeliverSm | DataSm):
            link.respond(pdu.response(status=Status.ESME_RINVCMDID))
            return
        if is_receipt_type(pdu.esm_class):
            # A receipt is answered without inspection only when it is one: it parses as
            # Appendix B / the receipt TLVs and, in forward mode, matches a message we sent
            # onward. Anything else claiming to be a receipt is inspected like any message
            # (a smishing text with esm_class 0x04 must not pass uninspected).
            receipt = receipt_in(pdu)
            if receipt is not None and (not self.forward or self._on_receipt(pdu, receipt)):
                self.stats.receipts += 1
                link.respond(pdu.response())
                return
            self.stats.false_receipts += 1
        started = time.perf_counter()
        if self.forward:  # every part is answered on its own (see _part)
            self._link = link
            part, key, final = self._part(pdu)
            self._process(link, part, started, key, final)
            return
        sms = self.assembler.feed(pdu, self._loop_time(), scope=id(link))
        if sms is not None:
            self._process(link, sms, started)
        self._arm_expiry(link)

    # processing -------------------------------------------------------------------------
    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    def _process(
        self,
        link: Link,
        sms: Sms,
        started: float,
        key: PartKey | None = None,
        final: bool = True,
    ) -> None:
        now = self.clock()
        event = event_from_sms(sms, self.name, self.route, now)
        if not final:  # forward mode: a leading part, decided on the text so far
            event.complete = False
        identity = message_key(sms.pdus, self.scope)
        event.id, event.prior_id = stable_ids(identity, now, self.redelivery_window)
        inspected = self.inspector.inspect(event, now)
        self._count(inspected)
        if self.on_inspected is not None:
            self.on_inspected(inspected)
        self._in_flight += 1
        self._idle.clear()
        fut = self.recorder.submit(inspected)
        fut.add_done_callback(lambda f: self._answer(link, sms, inspected, f, started, key, final))

    def _count(self, inspected: Inspected) -> None:
        st = self.stats
        st.received += 1
        if not inspected.sms.complete:
            st.incomplete += 1
        decision = inspected.verdict.decision
        if decision is Decision.BLOCK:
            st.blocked += 1
        elif decision is Decision.FLAG:
            st.flagged += 1
        else:
            st.allowed += 1

    def _answer(
        self,
        link: Link,
        sms: Sms,
        inspected: Inspected,
        fut: asyncio.Future[bool],
        started: float,
        key: PartKey | None = None,
        final: bool = True,
    ) -> None:
        partial = self._partial.get(key) if key is not None else None
        answer = answer_for(
            recorded=None if fut.exception() is not None else fut.result(),
            blocked=inspected.verdict.decision is Decision.BLOCK
            or (partial is not None and partial.blocked and final),
            enforcing=self.policy.enforcing,
            forward=self.forward,
            complaint=inspected.complaint is not None,
            receipt=is_receipt_type(sms.esm_class),
        )
        status: int | None = Status.ESME_ROK
        if answer is Answer.RETRY:
            status = self.policy.store_error_status
            self.stats.store_errors += 1
            if partial is not None:  # not acknowledged: the SMSC sends this part again
                partial.texts.pop(_seq_of(sms), None)
        elif answer is Answer.REFUSE:
            status = self.policy.block_status
            self.stats.rejected += 1
            # held parts never go onward (a message already being released cannot be stopped)
            if partial is not None and key is not None and partial.state is not PartState.RELEASING:
                partial.go(PartInput.BLOCK)
                if final:
                    self._drop(key, partial, inspected)
        elif answer is Answer.ONWARD:
            status = self._onward(link, sms, inspected, started, key, final)
        elif answer is Answer.REDELIVERED:  # was our answer lost after it went onward?
            self._spawn(self._redelivered(link, sms, inspected, started, key, final))
            status = None
        if status is None:  # answered once the onward submit is done
            self._in_flight -= 1  # counted again by _spawn until that answer
            return
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()
        self._respond(link, sms.pdus, status, inspected, started)

    def _respond(
        self, link: Link, pdus: Sequence[Pdu], status: int, inspected: Inspected, started: float
    ) -> None:
        try:
            for pdu in pdus:
                link.respond(_refusal(pdu, status) if status else pdu.response())
        except LinkClosedError:
            log.debug(
                "%s: link closed before the verdict on %s; the SMSC redelivers",
                self.name,
                inspected.sms.id,
            )
        if self.measure:
            self.latencies.append(time.perf_counter() - started)

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
        sending = [self._sending[i] for i in ids if i in self._sending]
        if sending:  # the first delivery's submit is under way: its outcome decides
            await asyncio.wait(sending, timeout=self.forward_timeout * 4)
        if self.ledger.knows(ids, self._loop_time()):
            return True
        return self.deliveries is not None and await self.deliveries.went_onward(ids)

    # forward mode -----------------------------------------------------------------------
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

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._in_flight += 1
        self._idle.clear()
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        message_id = inspected.sms.id
        sending = self._sending[message_id] = asyncio.get_running_loop().create_future()
        try:
            try:
                status, sent = await self._submit_onward(link, sms, inspected)
            finally:
                if self._sending.get(message_id) is sending:
                    del self._sending[message_id]
                sending.set_result(None)
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
        started_at = self.clock()
        self._submitting[message_id] = None
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
        early = self._submitting.pop(message_id, None)
        if early is not None:
            self._settled([early])
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
            if outcome.message_id in self._submitting:
                self._submitting[outcome.message_id] = outcome  # written after its row
            else:
                self.deliveries.finished(outcome)

    def _arm_expiry(self, link: Link) -> None:
        deadline = self.assembler.next_deadline()
        if deadline is None or self._timer is not None:
            return
        self._timer = asyncio.get_running_loop().call_at(deadline, self._expire, link)

    def _expire(self, link: Link) -> None:
        self._timer = None
        for sms in self.assembler.handle_timer(self._loop_time()):
            if link.session.closed:
                break  # the SMSC redelivers unanswered parts on the next bind
            self._process(link, sms, time.perf_counter())
        self._arm_expiry(link)

    async def drain(self, timeout: float) -> None:
        """Wait until every inspected SMS has been answered and every held part has gone
        onward (bounded). Answers first: a part being answered may still be held."""
        deadline = asyncio.get_running_loop().time() + timeout
        for round_ in (1, 2):
            try:
                left = deadline - asyncio.get_running_loop().time()
                await asyncio.wait_for(self._idle.wait(), max(left, 0.0))
            except TimeoutError:
                log.warning("%s: %d SMS still unanswered at shutdown", self.name, self._in_flight)
                break
            if round_ == 1:
                self.drain_held()
        if self.deliveries is not None:
            await self.deliveries.flush(timeout)
