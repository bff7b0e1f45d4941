"""The inspection pipeline: SMPP PDUs in, recorded verdicts and SMPP responses out.

    deliver_sm / data_sm --SmsAssembler--> Sms --> SmsEvent --Inspector--> Inspected
        --Recorder (group commit: messages, verdicts, outbox alerts in one transaction)-->
        deliver_sm_resp for every part (0, or the block status when enforcing)

A response goes out only after its message and verdict are committed; when the database cannot
record, the SMSC gets `store_error_status` (0x14 by default), which SMSCs retry: nothing is lost.
No task per message: the Inspector is synchronous and the response is a callback on the
Recorder's future, so the per-message cost is the detectors' plus one commit share.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.alerts import complaint_alert_payload, fanout_alert_payload, sms_alert_payload
from gateway.detect.velocity import VelocityDetector
from gateway.domain import (
    Alert,
    AlertKind,
    Complaint,
    Decision,
    Detector,
    Inspected,
    Reason,
    Route,
    SmsEvent,
    Thresholds,
    Verdict,
    combine,
)
from smsc.constants import Status
from smsc.link import Link, LinkClosedError
from smsc.pdu import DataSm, DeliverSm, Pdu
from smsc.session import BindType
from smsc.sms import Sms, SmsAssembler

log = logging.getLogger("fraudgate.pipeline")


# --------------------------------------------------------------------------------------------
# Inspection (synchronous, no I/O)


def event_from_sms(sms: Sms, smsc: str, route: Route, now: float) -> SmsEvent:
    return SmsEvent(
        source=sms.source,
        dest=sms.dest,
        text=sms.text,
        source_ton=sms.source_ton,
        source_npi=sms.source_npi,
        dest_ton=sms.dest_ton,
        dest_npi=sms.dest_npi,
        data_coding=sms.data_coding,
        esm_class=sms.esm_class,
        smsc=smsc,
        route=route,
        parts=len(sms.pdus),
        total=sms.total,
        complete=sms.complete,
        decode_errors=tuple(sms.errors),
        received_at=now,
    )


class Learner(Protocol):
    def learn_blocked(self, sms: SmsEvent, verdict: Verdict, now: float) -> None: ...


class Inspector:
    """Runs the detectors on one SMS and decides; builds the alerts and complaint it causes."""

    def __init__(
        self,
        detectors: Sequence[Detector],
        thresholds: Thresholds,
        *,
        complaint_numbers: Iterable[str] = (),
        text_detectors: Sequence[Detector] = (),
    ) -> None:
        self.detectors = list(detectors)
        self.thresholds = thresholds
        self.complaint_numbers = frozenset(n.lstrip("+") for n in complaint_numbers)
        # detectors that judge a text alone (content, URLs, classifier): used on the text a
        # subscriber forwards to the complaint number, whose sender is the complainant.
        self.text_detectors = list(text_detectors)
        self.velocity = next((d for d in detectors if isinstance(d, VelocityDetector)), None)
        self._failed: set[str] = set()

    def _run(self, detectors: Sequence[Detector], sms: SmsEvent, now: float) -> list[Reason]:
        reasons: list[Reason] = []
        for det in detectors:
            try:
                reasons.extend(det.inspect(sms, now))
            except Exception as exc:  # a detector bug must not stop the traffic
                if det.name not in self._failed:
                    self._failed.add(det.name)
                    log.exception("detector %s failed; message scored without it", det.name)
                reasons.append(
                    Reason(
                        det.name, f"{det.name}.error", 0.0, f"detector error: {type(exc).__name__}"
                    )
                )
        return reasons

    def inspect(self, sms: SmsEvent, now: float) -> Inspected:
        if sms.dest.lstrip("+") in self.complaint_numbers:
            return self._complaint(sms, now)
        reasons = self._run(self.detectors, sms, now)
        if sms.decode_errors:
            reasons.append(
                Reason("encoding", "encoding.invalid", 0.1, "; ".join(sms.decode_errors)[:300])
            )
        if not sms.text.strip() and not sms.decode_errors:
            reasons.append(Reason("encoding", "encoding.empty", 0.05, "empty message text"))
        verdict = combine(reasons, self.thresholds)
        alerts: list[Alert] = []
        if verdict.decision is not Decision.ALLOW:
            alerts.append(Alert(AlertKind.SMS_VERDICT, sms_alert_payload(sms, verdict), now))
            if verdict.decision is Decision.BLOCK:
                for det in self.detectors:
                    learn = getattr(det, "learn_blocked", None)
                    if learn is not None:
                        learn(sms, verdict, now)
        if self.velocity is not None:
            limits = self.velocity.limits
            for sender, when, distinct in self.velocity.take_fanout_crossings():
                payload = fanout_alert_payload(
                    sender,
                    limits.window,
                    self.velocity.sent(sender, when),
                    distinct,
                    threshold=limits.sender_recipients,
                    smsc=sms.smsc,
                    route=sms.route.value,
                )
                alerts.append(Alert(AlertKind.FANOUT, payload, when))
        return Inspected(sms, verdict, alerts)

    def _complaint(self, sms: SmsEvent, now: float) -> Inspected:
        forwarded = combine(self._run(self.text_detectors, sms, now), self.thresholds)
        complaint = Complaint(
            complainant=sms.source,
            forwarded_text=sms.text,
            received_at=now,
            message_id=sms.id,
            suspected_sender=_suspected_sender(sms.text),
        )
        verdict = Verdict(
            0.0,
            Decision.ALLOW,
            [Reason("complaint", "complaint.forwarded", 0.0, "forwarded to the complaint number")],
        )
        payload = complaint_alert_payload(complaint, forwarded)
        return Inspected(sms, verdict, [Alert(AlertKind.COMPLAINT, payload, now)], complaint)


def _suspected_sender(text: str) -> str:
    """A phone number or an 'from X' sender found in a forwarded text, best effort."""
    m = re.search(r"(?:\+?7|8)[\s(-]*7\d{2}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}", text)
    if m:
        digits = re.sub(r"\D", "", m.group(0))
        return "7" + digits[1:] if len(digits) == 11 else digits
    m = re.search(r"(?i)(?:от|from|кімнен)\s*[:\-]?\s*([A-Za-z0-9.\- ]{2,11})", text)
    return m.group(1).strip() if m else ""


# --------------------------------------------------------------------------------------------
# Recording (group commit)


class RecordStore(Protocol):
    async def record(self, items: Sequence[Inspected]) -> None: ...


class Recorder:
    """Collects inspected SMS and commits them in batches; each SMS's future resolves once its
    batch is committed (or fails with the store's error)."""

    def __init__(
        self,
        store: RecordStore,
        *,
        batch_max: int = 200,
        batch_delay: float = 0.0,
        on_committed: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.batch_max = batch_max
        self.batch_delay = batch_delay
        self.on_committed = on_committed
        self._queue: asyncio.Queue[tuple[Inspected, asyncio.Future[None]]] = asyncio.Queue()
        self.committed = 0
        self.failed = 0

    def submit(self, item: Inspected) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, fut))
        return fut

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await self._fill(batch)
            await self._commit(batch)

    async def _fill(self, batch: list[tuple[Inspected, asyncio.Future[None]]]) -> None:
        q = self._queue
        deadline = time.monotonic() + self.batch_delay
        while len(batch) < self.batch_max:
            if not q.empty():
                batch.append(q.get_nowait())
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                batch.append(await asyncio.wait_for(q.get(), left))
            except TimeoutError:
                return

    async def _commit(self, batch: list[tuple[Inspected, asyncio.Future[None]]]) -> None:
        try:
            await self.store.record([item for item, _ in batch])
        except Exception as exc:  # StoreError and anything else: answer, never hang
            self.failed += len(batch)
            log.warning("could not record %d SMS: %s", len(batch), exc)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            await asyncio.sleep(0.2)  # a database that is down should not be hammered
            return
        self.committed += len(batch)
        for _, fut in batch:
            if not fut.done():
                fut.set_result(None)
        if self.on_committed is not None and any(item.alerts for item, _ in batch):
            self.on_committed(len(batch))


# --------------------------------------------------------------------------------------------
# The SMPP side


@dataclass
class Policy:
    enforcing: bool
    block_status: int = Status.ESME_RX_R_APPN
    store_error_status: int = Status.ESME_RMSGQFUL


@dataclass
class PipelineStats:
    received: int = 0  # whole SMS
    allowed: int = 0
    flagged: int = 0
    blocked: int = 0
    rejected: int = 0  # answered with block_status (enforcing)
    store_errors: int = 0
    receipts: int = 0
    incomplete: int = 0


class GatewayHandler:
    """LinkHandler for one SMSC bind (one per supervisor, shared by its successive links)."""

    def __init__(
        self,
        name: str,
        route: Route,
        inspector: Inspector,
        recorder: Recorder,
        policy: Policy,
        *,
        reassembly_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        on_inspected: Callable[[Inspected], None] | None = None,
    ) -> None:
        self.name = name
        self.route = route
        self.inspector = inspector
        self.recorder = recorder
        self.policy = policy
        self.clock = clock
        self.on_inspected = on_inspected
        self.assembler = SmsAssembler(timeout=reassembly_timeout)
        self.stats = PipelineStats()
        self.latencies: list[float] = []  # seconds from last part to response, when measuring
        self.measure = False
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # LinkHandler ------------------------------------------------------------------------
    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:  # pragma: no cover
        raise AssertionError("an ESME is never asked to accept a bind")

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        pass  # the supervisor logs link state; unanswered parts are redelivered by the SMSC

    def on_request(self, link: Link, pdu: Pdu) -> None:
        if not isinstance(pdu, DeliverSm | DataSm):
            link.respond(pdu.response(status=Status.ESME_RINVCMDID))
            return
        if pdu.esm_class & 0x04:  # a delivery receipt is not a message to inspect
            self.stats.receipts += 1
            link.respond(pdu.response())
            return
        started = time.perf_counter()
        sms = self.assembler.feed(pdu, self._loop_time(), scope=id(link))
        if sms is not None:
            self._process(link, sms, started)
        self._arm_expiry(link)

    # processing -------------------------------------------------------------------------
    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    def _process(self, link: Link, sms: Sms, started: float) -> None:
        now = self.clock()
        event = event_from_sms(sms, self.name, self.route, now)
        inspected = self.inspector.inspect(event, now)
        self._count(inspected)
        if self.on_inspected is not None:
            self.on_inspected(inspected)
        self._in_flight += 1
        self._idle.clear()
        fut = self.recorder.submit(inspected)
        fut.add_done_callback(lambda f: self._answer(link, sms, inspected, f, started))

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
        fut: asyncio.Future[None],
        started: float,
    ) -> None:
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()
        if fut.exception() is not None:
            status = self.policy.store_error_status
            self.stats.store_errors += 1
        elif self.policy.enforcing and inspected.verdict.decision is Decision.BLOCK:
            status = self.policy.block_status
            self.stats.rejected += 1
        else:
            status = Status.ESME_ROK
        try:
            for pdu in sms.pdus:
                link.respond(pdu.response(status=status))
        except LinkClosedError:
            log.debug(
                "%s: link closed before the verdict on %s; the SMSC redelivers",
                self.name,
                inspected.sms.id,
            )
        if self.measure:
            self.latencies.append(time.perf_counter() - started)

    def _arm_expiry(self, link: Link) -> None:
        deadline = self.assembler.next_deadline()
        if deadline is None or self._timer is not None:
            return
        self._timer = asyncio.get_running_loop().call_at(deadline, self._expire, link)

    def _expire(self, link: Link) -> None:
        self._timer = None
        for sms in self.assembler.expire(self._loop_time()):
            if link.session.closed:
                break  # the SMSC redelivers unanswered parts on the next bind
            self._process(link, sms, time.perf_counter())
        self._arm_expiry(link)

    async def drain(self, timeout: float) -> None:
        """Wait until every inspected SMS has been answered (bounded)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("%s: %d SMS still unanswered at shutdown", self.name, self._in_flight)
