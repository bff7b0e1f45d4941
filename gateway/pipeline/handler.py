"""The inspection pipeline: SMPP PDUs in, recorded verdicts and SMPP responses out.

    deliver_sm / data_sm --SmsAssembler--> Sms --> SmsEvent --Inspector--> Inspected
        --Recorder (group commit: messages, verdicts, outbox alerts in one transaction)-->
        deliver_sm_resp for every part (0, or the block status when enforcing)

A response goes out only after its message and verdict are committed; when the database cannot
record, the SMSC gets `store_error_status` (0x14 by default), which SMSCs retry: nothing is lost.
This is tap mode (the SMSC delivers what it is answered 0 for). Forward mode, where the gateway
sends an accepted message onward itself, is `ForwardingHandler` (gateway/pipeline/forward.py).
No task per message: the Inspector is synchronous and the response is a callback on the
Recorder's future, so the per-message cost is the detectors' plus one commit share.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from gateway.domain import (
    Decision,
    Inspected,
    Route,
    SmsEvent,
)
from gateway.pipeline.inspector import Inspector, event_from_sms
from gateway.pipeline.message_ids import DEFAULT_WINDOW, message_key, stable_ids
from gateway.pipeline.parts import (
    PartKey,
)
from gateway.pipeline.policy import Answer, AnswerPolicy, answer_for
from gateway.pipeline.recorder import Recorder
from gateway.pipeline.shared import SharedBatcher
from gateway.pipeline.shared_parts import SharedParts
from smsc.constants import EsmClass, Status, Tag
from smsc.link import Link, LinkClosedError
from smsc.pdu import DataSm, DeliverSm, DeliverSmResp, Pdu
from smsc.receipt import DeliveryReceipt, is_receipt_type, receipt_in
from smsc.session import BindType
from smsc.sms import Sms, SmsAssembler, split_part

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


refusal = _refusal  # the answer with an error status, for parts answered elsewhere


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


class GatewayHandler:
    """LinkHandler for one SMSC bind (one per supervisor, shared by its successive links), in
    tap mode: parts are reassembled, the whole message inspected, recorded and every part
    answered (0, or the block status when enforcing). The hooks below are where forward mode
    (gateway/pipeline/forward.py) differs."""

    forwarding: ClassVar[bool] = False

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
        ia5_is_gsm: bool = False,
        scope: str = "",
        redelivery_window: float = DEFAULT_WINDOW,
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
        self.on_latency: Callable[[float], None] | None = None  # the same seconds (metrics)
        # messages by (decision, rule family: the rule_id before its first dot) of a finding
        self.families: dict[tuple[str, str], int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()
        # several nodes: counts shared through Redis before inspection (None: this node's own)
        self.shared: SharedBatcher | None = None
        # several nodes, tap mode: a concatenated message's parts meet in Redis
        self.parts: SharedParts | None = None

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
            if receipt is not None and self._receipt_is_ours(pdu, receipt):
                self.stats.receipts += 1
                link.respond(pdu.response())
                return
            self.stats.false_receipts += 1
        self._take(link, pdu, time.perf_counter())

    def _take(self, link: Link, pdu: DeliverSm | DataSm, started: float) -> None:
        """A part that is not a receipt: reassembled; the whole message is processed. With
        several nodes, the parts of a concatenated message meet in the shared store."""
        if self.parts is not None and (
            pdu.esm_class & EsmClass.UDHI or pdu.tlv_int(Tag.SAR_MSG_REF_NUM) is not None
        ):  # a part by its UDH or by its sar_* TLVs (SMPP 3.4 §5.3.2.22-24)
            concat = split_part(pdu).concat
            if concat is not None and concat.total > 1:
                self.parts.submit(self, link, pdu, concat, started)
                return
        self.take_local(link, pdu, started)

    def take_local(self, link: Link, pdu: DeliverSm | DataSm, started: float) -> None:
        """Reassembled on this node (one node, or the shared store unreachable)."""
        sms = self.assembler.feed(pdu, self._loop_time(), scope=id(link))
        if sms is not None:
            self._process(link, sms, started)
        self._arm_expiry(link)

    def _receipt_is_ours(self, pdu: Pdu, receipt: DeliveryReceipt) -> bool:
        """Whether a parsed receipt is answered without inspection: in tap mode, always."""
        return True

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
        if self.shared is not None:  # every node's counts first (gateway/pipeline/shared.py)
            self._in_flight += 1
            self._idle.clear()

            def then() -> None:
                self._in_flight -= 1
                self._decide(link, sms, event, now, started, key, final)

            self.shared.submit(event, then)
            return
        self._decide(link, sms, event, now, started, key, final)

    def _decide(
        self, link: Link, sms: Sms, event: SmsEvent, now: float, started: float,
        key: PartKey | None, final: bool,
    ) -> None:  # fmt: skip
        """Inspect, record, and answer once recorded (the Recorder's future)."""
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
        reasons = inspected.verdict.reasons
        if reasons:
            for family in {r.rule_id.partition(".")[0] for r in reasons}:
                key = (decision.value, family)
                self.families[key] = self.families.get(key, 0) + 1

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
        answer = answer_for(
            recorded=None if fut.exception() is not None else fut.result(),
            blocked=inspected.verdict.decision is Decision.BLOCK
            or self._blocked_before(key, final),
            enforcing=self.policy.enforcing,
            forward=self.forwarding,
            complaint=inspected.complaint is not None,
            receipt=is_receipt_type(sms.esm_class),
        )
        status: int | None = Status.ESME_ROK
        if answer is Answer.RETRY:
            status = self.policy.store_error_status
            self.stats.store_errors += 1
            self._not_acknowledged(key, sms)
        elif answer is Answer.REFUSE:
            status = self.policy.block_status
            self.stats.rejected += 1
            self._refused(key, final, inspected)
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

    def process(self, link: Link, sms: Sms, started: float) -> None:
        """A whole message assembled elsewhere (gateway/pipeline/shared_parts.py)."""
        self._process(link, sms, started)

    def _respond(
        self, link: Link, pdus: Sequence[Pdu], status: int, inspected: Inspected, started: float
    ) -> None:
        if self.parts is not None and self.parts.foreign:  # parts other nodes hold and answer
            retry = status == self.policy.store_error_status
            pdus = self.parts.answered(pdus, status, retry, self.redelivery_window)
        try:
            for pdu in pdus:
                link.respond(_refusal(pdu, status) if status else pdu.response())
        except LinkClosedError:
            log.debug(
                "%s: link closed before the verdict on %s; the SMSC redelivers",
                self.name,
                inspected.sms.id,
            )
        if self.measure or self.on_latency is not None:
            took = time.perf_counter() - started
            if self.measure:
                self.latencies.append(took)
            if self.on_latency is not None:
                self.on_latency(took)

    # hooks: what forward mode does besides (gateway/pipeline/forward.py) ---------------------
    def _blocked_before(self, key: PartKey | None, final: bool) -> bool:
        """An earlier part of this message was blocked (forward mode decides part by part)."""
        return False

    def _not_acknowledged(self, key: PartKey | None, sms: Sms) -> None:
        """The part was not recorded: the SMSC sends it again."""

    def _refused(self, key: PartKey | None, final: bool, inspected: Inspected) -> None:
        """The part was answered with the block status."""

    def _onward(
        self, link: Link, sms: Sms, inspected: Inspected, started: float,
        key: PartKey | None, final: bool,
    ) -> int | None:  # fmt: skip
        raise AssertionError("only forward mode sends onward")  # answer_for: forward=False

    async def _redelivered(
        self, link: Link, sms: Sms, inspected: Inspected, started: float,
        key: PartKey | None, final: bool,
    ) -> None:  # fmt: skip
        raise AssertionError("only forward mode sends onward")

    def drain_held(self) -> None:
        """At shutdown, while the link is still bound: what was acknowledged and held goes on."""

    async def _flush(self, timeout: float) -> None:
        """At shutdown, after the answers: bookkeeping still queued is written."""

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._in_flight += 1
        self._idle.clear()
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        await self._flush(timeout)
