"""The legal workflow in the daemon: cases fed from what the gateway records, and kept moving.

    complaints (the short number, pipeline)   --\\
    probe findings naming a SIM-box SIM        ---> Cases.open (once each: external id) -->
    call findings naming a SIM-box SIM        -/
    local numbers whose SMS were blocked       --/     verify in 2 working days (R4) ...
    reports from the centre (CentreEndpoint)  -/

Every `interval` seconds: open a case for each new complaint that names a number and for each
probe finding that names a SIM-box / SIM-farm SIM (a finding the policy trusts confirms and
suspends at once), retry the switch actions still pending, queue deadline alerts, and wake the
centre dispatcher. A complaint's id, or a SIM-box SIM's number, is the case's external id, so a
crash between opening and marking opens no second case, and a SIM seen by ten test calls is one
case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gateway.cases import CaseError, Cases, CaseView, Evidence, OpenRequest, Source
from gateway.cases.feed import NUMBER_KEY, FeedRepository, WorkflowFeed
from gateway.cases.model import DetectionReport
from gateway.detect.sender import KZ_MOBILE_RE, normalise_msisdn
from gateway.store import Store, StoreError

log = logging.getLogger("fraudgate.workflow")

# Senders whose blocked SMS open cases, at most, in one round; the rest come next round.
BLOCKED_PER_ROUND = 500
# Cases opened in one transaction (Cases.open_many): the loop is let go between transactions.
OPEN_PER_TRANSACTION = 16
# Seconds before a round's start that the next round reads blocked SMS from again: a batch
# received before the round began may commit after its query (the external id keeps a second
# look from opening a second case).
LATE_COMMIT_MARGIN = 60.0


class Waker(Protocol):
    def notify(self) -> None: ...


class NoticeWatch(Protocol):
    """gateway.centre.Notices: reminds of the reports that need a person."""

    async def remind(self) -> int: ...

    async def counts(self) -> dict[str, int]: ...


class Singleton(Protocol):
    """A loop that runs on one node at a time beside the workflow (the centre dispatcher)."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


class Workflow:
    def __init__(
        self,
        store: Store,
        cases: Cases,
        *,
        interval: float = 5.0,
        wake: list[Waker] | None = None,
        clock: Callable[[], float] = time.time,
        label_campaign: Callable[[str, str, float], object] | None = None,
        notices: NoticeWatch | None = None,
        status: Callable[[dict[str, object]], None] | None = None,
    ) -> None:
        self.feed: WorkflowFeed = FeedRepository(store)
        self.cases = cases
        self.interval = interval
        self.wake = wake or []
        self.notices = notices
        self.status = status  # the retained MQTT status of deadlines and notices
        self._last_status: dict[str, object] | None = None
        self.clock = clock
        self.opened = 0
        self._failing = False
        # blocked messages already looked at: each round reads only those received since the
        # previous round began (less a margin for batches committed late), not all of them
        self._blocked_since: float | None = None
        # a confirmed case labels the campaign of its messages' texts (their later copies
        # block): confirmations since this moment (a restart looks a week back, which labels
        # again what its snapshot may have lost)
        self.label_campaign = label_campaign
        self._confirmed_since = clock() - 7 * 86400.0
        self._stop = asyncio.Event()
        # loops that run with the workflow on the node holding its lease (gateway.daemon)
        self.singletons: list[Singleton] = []

    async def run(self) -> None:
        """Rounds until stop(). A failing round is logged and the next one comes: the case
        workflow must never take the SMS path down with it (they share the daemon's TaskGroup).
        A run after stop() starts afresh (a node that holds the workflow's lease again)."""
        self._stop.clear()
        while not self._stop.is_set():
            try:
                await self.step()
            except Exception:
                log.exception("case workflow round failed; trying again next round")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def stop(self) -> None:
        self._stop.set()

    async def step(self) -> None:
        """One round. Its phases are independent: one that fails (the database refusing one
        transaction, a race on one case, a bug) is logged and the others still run, so a
        switch retry that meets an analyst's decision never costs the round its deadline
        alerts. A database that is down fails every phase: logged once until it is back."""
        opened = alerts = 0
        failed = False
        for name, tally, phase in self._phases():
            try:
                done = await phase()
            except StoreError as e:
                failed = True
                if not self._failing:
                    log.warning("case workflow: %s failed, store failing: %s", name, e)
                    self._failing = True
                continue
            except Exception:  # one phase's failure must not starve the others
                log.exception("case workflow: %s failed this round", name)
                continue
            if tally == "opened":
                opened += done
            elif tally == "queued":
                alerts += done
        if self._failing and not failed:
            log.warning("store is back: case workflow resumed")
            self._failing = False
        self.opened += opened
        if opened or alerts:
            for w in self.wake:
                w.notify()

    def _phases(self) -> list[tuple[str, str, Callable[[], Awaitable[int]]]]:
        """(name, what its count is: "opened" cases, "queued" alerts or reports, or "", the
        phase): something opened or queued wakes the dispatchers."""
        phases: list[tuple[str, str, Callable[[], Awaitable[int]]]] = [
            ("open from complaints", "opened", self.feed_complaints),
            ("open from findings", "opened", self.feed_findings),
            ("open from call records", "opened", self.feed_call_findings),
            ("open from blocked senders", "opened", self.feed_blocked_senders),
            ("switch retries", "", self._retry),
            ("deadline alerts", "queued", lambda: self.cases.deadline_alerts(self.clock())),
            ("campaign labels", "", self.label_confirmed_campaigns),
        ]
        if self.cases.policy.report_detection is DetectionReport.AT_DETECTION:
            phases.append(("detection reports", "queued", self.cases.report_detections))
        if self.notices is not None:
            phases.append(("centre reminders", "queued", self.notices.remind))
        if self.status is not None:
            phases.append(("status", "", self.publish_status))
        return phases

    async def _retry(self) -> int:
        return len(await self.cases.retry_pending())

    async def publish_status(self) -> int:
        """Deadlines due / overdue and notices needing a person, as a retained MQTT document
        (published when the counts change)."""
        if self.status is None:
            return 0
        doc: dict[str, object] = dict(await self.cases.deadline_counts(self.clock()))
        if self.notices is not None:
            doc |= {f"centre_{k}": v for k, v in (await self.notices.counts()).items()}
        if doc != self._last_status:
            self._last_status = doc
            self.status(doc | {"at": self.clock()})
        return 0

    async def feed_complaints(self) -> int:
        """A case per new complaint (point 119: every report is verified in 2 working days).
        The forwarded text and the original's sender are the facts to check: a sender that is
        a number is the case's number (suspended on confirmation when it is ours); one that
        is not (an alphanumeric name, nothing) is the case's `sender`."""
        opened = 0
        for complaint in await self.feed.new_complaints():
            cid = complaint.id
            number = normalise_msisdn(complaint.suspected_sender)
            ours = number is not None and KZ_MOBILE_RE.fullmatch(number) is not None
            view = await self._open(
                source=Source.COMPLAINT,
                numbers=[number] if number is not None else [],
                # the forwarded text names no number: "unnamed" (the text is the fact to check)
                sender=None if number is not None else (complaint.suspected_sender or "unnamed"),
                received_at=complaint.received_at,
                evidence=[Evidence("complaint", cid, {"message_id": complaint.message_id})],
                external_id=cid,
                reason="subscriber complaint to the short number (point 52, 4)"
                + ("" if ours else "; the reported sender is not a number of this network"),
            )
            if view is not None:
                await self.feed.mark_complaint(cid, "case")
                opened += 1
        return opened

    async def feed_findings(self) -> int:
        """A case per probe finding that names a local SIM (SIM box, SIM farm, local CLI)."""
        opened = 0
        seen: set[str] = set()
        for sim in await self.feed.named_sims():
            if sim.number in seen:
                continue  # a second sighting in the same round: the first opens the case
            seen.add(sim.number)
            view = await self._open(
                source=Source.DETECTION_SIMBOX,
                numbers=[sim.number],
                received_at=sim.at,
                evidence=[
                    Evidence(
                        "probe_finding",
                        sim.id,
                        {"outcome": sim.outcome, "route": sim.route, "probe": sim.probe},
                    )
                ],
                external_id=NUMBER_KEY + sim.number,  # one case per SIM, however often seen
                reason=f"probe test: {sim.outcome}",
            )
            if view is not None:
                log.info("case %s opened from probe finding %s (%s)", view.id, sim.id, sim.outcome)
                opened += 1
        for sim, case_id in await self.feed.late_findings():
            evidence = Evidence(
                "probe_finding",
                sim.id,
                {"outcome": sim.outcome, "route": sim.route, "probe": sim.probe},
            )
            try:
                view = await self.cases.attach(case_id, evidence)
            except CaseError as e:  # an analyst's decision meanwhile: next round
                log.warning("probe finding %s not attached to case %s: %s", sim.id, case_id, e)
                continue
            log.info("probe finding %s added to case %s (now %s)", sim.id, case_id, view.state)
        return opened

    async def feed_call_findings(self) -> int:
        """A case per SIM the call records show behaving as a SIM-box SIM (or on the IMEI / in
        the cell of a confirmed one): the same case a probe test opens for that number."""
        opened = 0
        seen: set[str] = set()
        for sim in await self.feed.call_sims():
            if sim.number in seen:
                continue
            seen.add(sim.number)
            what = "SIM-box behaviour" if sim.kind == "simbox" else "a confirmed SIM-box's sibling"
            view = await self._open(
                source=Source.DETECTION_SIMBOX,
                numbers=[sim.number],
                received_at=sim.found_at,
                facts_at=sim.first_at,
                evidence=[
                    Evidence("call_finding", sim.id, {"finding": sim.kind, "score": sim.score})
                ],
                external_id=NUMBER_KEY + sim.number,
                reason=f"call records: {what} (score {sim.score:.2f})",
            )
            if view is not None:
                log.info("case %s opened from call finding %s (%s)", view.id, sim.id, sim.kind)
                opened += 1
        return opened

    async def feed_blocked_senders(self) -> int:
        """A case per local mobile number whose SMS the gateway blocked (smishing, spoofing,
        SIM-farm fan-out from a subscriber's SIM: R1 detections). Analysts decide them: a
        verdict alone does not confirm (Policy)."""
        started = self.clock()
        senders = await self.feed.blocked_senders(self._blocked_since, BLOCKED_PER_ROUND)
        if len(senders) < BLOCKED_PER_ROUND:  # all caught up: next time only what is newer
            self._blocked_since = started - LATE_COMMIT_MARGIN
        requests: list[OpenRequest] = []
        for sender in senders:
            number = normalise_msisdn(sender.source)
            if number is None or not KZ_MOBILE_RE.fullmatch(number):
                continue  # not a subscriber of ours to suspend (short code, foreign number)
            requests.append(
                OpenRequest(
                    source=Source.DETECTION_SMS,
                    numbers=[number],
                    received_at=sender.first_at,
                    evidence=[
                        Evidence("message", sender.message_id, {"blocked_messages": sender.count})
                    ],
                    external_id=NUMBER_KEY + sender.source,
                    facts_at=sender.first_at,
                    reason=f"{sender.count} SMS from this number blocked by the gateway",
                )
            )
        opened = 0
        # a transaction per few cases, not one per sender: and not one for the whole round
        # either, which held the event loop (and SQLite's write lock) for ~50 ms a round
        for start in range(0, len(requests), OPEN_PER_TRANSACTION):
            chunk = requests[start : start + OPEN_PER_TRANSACTION]
            try:
                opened += len(await self.cases.open_many(chunk))
            except (CaseError, ValueError) as e:
                log.warning("%d cases for blocked senders not opened: %s", len(chunk), e)
            await asyncio.sleep(0)  # the SMPP links' reads and the recorder's commit first
        return opened

    async def label_confirmed_campaigns(self) -> int:
        """Texts of the messages and complaints behind cases confirmed since the last round
        label their campaigns ("confirmed_case"). Returns how many texts were labelled."""
        if self.label_campaign is None:
            return 0
        started = self.clock()
        texts = await self.feed.confirmed_texts(self._confirmed_since)
        self._confirmed_since = started - LATE_COMMIT_MARGIN
        for text in texts:
            self.label_campaign(text, "confirmed_case", started)
        return len(texts)

    async def _open(self, **kwargs: Any) -> CaseView | None:
        """Cases.open; a case error (a concurrent analyst decision, bad data) is logged and the
        record stays unconsumed, tried again next round."""
        try:
            return await self.cases.open(**kwargs)
        except (CaseError, ValueError) as e:
            log.warning("case not opened for %s: %s", kwargs.get("external_id"), e)
            return None
