"""The legal workflow in the daemon: cases fed from what the gateway records, and kept moving.

    complaints (the short number, pipeline)   --\\
    probe findings naming a SIM-box SIM        ---> Cases.open (once each: external id) -->
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
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import sqlalchemy as sa

from gateway.cases import CaseError, Cases, CaseView, Evidence, OpenRequest, Source
from gateway.detect.sender import KZ_MOBILE_RE, TON_ALPHANUMERIC, normalise_msisdn
from gateway.probes.simbox import NAMES_A_NUMBER
from gateway.store import Store, StoreError
from gateway.store.models import complaints, messages, probe_findings, verdicts
from gateway.store.models_cases import case_evidence, case_transitions
from gateway.store.models_cases import cases as cases_table

log = logging.getLogger("fraudgate.workflow")

# A SIM-box SIM gets one case however many test calls name it (its sightings are counted in
# simbox_numbers): the case's external id is the number.
NUMBER_KEY = "number:"
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


class Workflow:
    def __init__(
        self,
        store: Store,
        cases: Cases,
        *,
        interval: float = 5.0,
        warn_before: dt.timedelta = dt.timedelta(hours=4),
        wake: list[Waker] | None = None,
        clock: Callable[[], float] = time.time,
        label_campaign: Callable[[str, str, float], object] | None = None,
    ) -> None:
        self.store = store
        self.cases = cases
        self.interval = interval
        self.warn_before = warn_before
        self.wake = wake or []
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

    async def run(self) -> None:
        """Rounds until stop(). A failing round is logged and the next one comes: the case
        workflow must never take the SMS path down with it (they share the daemon's TaskGroup)."""
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
        """One round; a database that fails is logged once and tried again next round."""
        try:
            opened = (
                await self.feed_complaints()
                + await self.feed_findings()
                + await self.feed_blocked_senders()
            )
            await self.cases.retry_pending()
            alerts = await self.cases.deadline_alerts(self.clock(), self.warn_before)
            await self.label_confirmed_campaigns()
        except StoreError as e:
            if not self._failing:
                log.warning("case workflow paused, store failing: %s", e)
            self._failing = True
            return
        if self._failing:
            log.warning("store is back: case workflow resumed")
        self._failing = False
        self.opened += opened
        if opened or alerts:
            for w in self.wake:
                w.notify()

    async def feed_complaints(self) -> int:
        """A case per new complaint naming a number; complaints naming none are marked
        `no_number` (the help line completes them through the API)."""
        c, k = complaints, cases_table
        query = (
            sa.select(c.c.id, c.c.suspected_sender, c.c.received_at, c.c.message_id)
            .select_from(
                c.outerjoin(
                    k, sa.and_(k.c.source == Source.COMPLAINT.value, k.c.external_id == c.c.id)
                )
            )
            .where(c.c.status == "new", k.c.id.is_(None))
            .order_by(c.c.received_at)
            .limit(500)
        )
        rows = await self._read(query, "workflow.complaints")
        opened = 0
        for row in rows:
            cid, sender, message_id = str(row[0]), str(row[1] or ""), str(row[3])
            received_at = float(row[2])
            number = normalise_msisdn(sender)
            if number is None:
                await self._mark(cid, "no_number")
                continue
            if not KZ_MOBILE_RE.fullmatch(number):
                await self._mark(cid, "not_ours")  # a foreign or fixed number: not ours to suspend
                continue
            view = await self._open(
                source=Source.COMPLAINT,
                numbers=[number],
                received_at=received_at,
                evidence=[Evidence("complaint", cid, {"message_id": message_id})],
                external_id=cid,
                reason="subscriber complaint to the short number (point 52, 4)",
            )
            if view is not None:
                await self._mark(cid, "case")
                opened += 1
        return opened

    async def feed_findings(self) -> int:
        """A case per probe finding that names a local SIM (SIM box, SIM farm, local CLI)."""
        f, k = probe_findings, cases_table
        query = (
            sa.select(f.c.id, f.c.number, f.c.at, f.c.outcome, f.c.route, f.c.probe)
            .select_from(
                f.outerjoin(
                    k,
                    sa.and_(
                        k.c.source == Source.DETECTION_SIMBOX.value,
                        k.c.external_id == sa.literal(NUMBER_KEY) + f.c.number,
                    ),
                )
            )
            .where(f.c.number != "", f.c.outcome.in_([o.value for o in NAMES_A_NUMBER]))
            .where(k.c.id.is_(None))
            .order_by(f.c.at)
            .limit(500)
        )
        opened = 0
        seen: set[str] = set()
        for row in await self._read(query, "workflow.findings"):
            fid, number, outcome, route, probe = (str(x or "") for x in (row[0], row[1], *row[3:]))
            at = float(row[2])
            if number in seen:
                continue  # a second sighting in the same round: the first opens the case
            seen.add(number)
            view = await self._open(
                source=Source.DETECTION_SIMBOX,
                numbers=[number],
                received_at=at,
                evidence=[
                    Evidence(
                        "probe_finding",
                        fid,
                        {"outcome": outcome, "route": route or "", "probe": probe},
                    )
                ],
                external_id=NUMBER_KEY + number,  # one case per SIM, however often it is seen
                reason=f"probe test: {outcome}",
            )
            if view is not None:
                log.info("case %s opened from probe finding %s (%s)", view.id, fid, outcome)
                opened += 1
        return opened

    async def feed_blocked_senders(self) -> int:
        """A case per local mobile number whose SMS the gateway blocked (smishing, spoofing,
        SIM-farm fan-out from a subscriber's SIM: R1 detections). Analysts decide them: a
        verdict alone does not confirm (Policy)."""
        m, v, k = messages, verdicts, cases_table
        key = sa.literal(NUMBER_KEY) + m.c.source
        started = self.clock()
        query = (
            sa.select(
                m.c.source, sa.func.min(m.c.received_at), sa.func.count(), sa.func.min(m.c.id)
            )
            .select_from(
                m.join(v, v.c.message_id == m.c.id).outerjoin(
                    k, sa.and_(k.c.source == Source.DETECTION_SMS.value, k.c.external_id == key)
                )
            )
            .where(v.c.decision == "block", m.c.source_ton != TON_ALPHANUMERIC, k.c.id.is_(None))
            .where(sa.or_(*(m.c.source.like(p) for p in ("7%", "+7%", "87%"))))  # KZ forms
            .group_by(m.c.source)
            .order_by(sa.func.min(m.c.received_at))
            .limit(BLOCKED_PER_ROUND)
        )
        if self._blocked_since is not None:
            query = query.where(m.c.received_at >= self._blocked_since)
        rows = await self._read(query, "workflow.blocked")
        if len(rows) < BLOCKED_PER_ROUND:  # all caught up: next time only what is newer
            self._blocked_since = started - LATE_COMMIT_MARGIN
        requests: list[OpenRequest] = []
        for row in rows:
            source, first_at, count, message_id = (
                str(row[0]),
                float(row[1]),
                int(row[2]),
                str(row[3]),
            )
            number = normalise_msisdn(source)
            if number is None or not KZ_MOBILE_RE.fullmatch(number):
                continue  # not a subscriber of ours to suspend (short code, foreign number)
            requests.append(
                OpenRequest(
                    source=Source.DETECTION_SMS,
                    numbers=[number],
                    received_at=first_at,
                    evidence=[Evidence("message", message_id, {"blocked_messages": count})],
                    external_id=NUMBER_KEY + source,
                    reason=f"{count} SMS from this number blocked by the gateway",
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
        t, e, m, c = case_transitions, case_evidence, messages, complaints
        started = self.clock()
        query = (
            sa.select(sa.func.coalesce(m.c.text, c.c.forwarded_text))
            .select_from(
                t.join(e, e.c.case_id == t.c.case_id)
                .outerjoin(m, sa.and_(e.c.kind == "message", m.c.id == e.c.ref))
                .outerjoin(c, sa.and_(e.c.kind == "complaint", c.c.id == e.c.ref))
            )
            .where(t.c.to_state == "confirmed", t.c.at >= self._confirmed_since)
            .limit(1000)
        )
        rows = await self._read(query, "workflow.confirmed")
        self._confirmed_since = started - LATE_COMMIT_MARGIN
        texts = {str(row[0]) for row in rows if row[0]}
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

    async def _read(self, query: sa.Select[Any], op: str) -> list[Any]:
        with self.store.guard(op):
            async with self.store.engine.connect() as conn:
                return list(await conn.execute(query))

    async def _mark(self, complaint_id: object, status: str) -> None:
        with self.store.guard("workflow.mark_complaint"):
            async with self.store.engine.begin() as conn:
                await conn.execute(
                    complaints.update().where(complaints.c.id == complaint_id).values(status=status)
                )
