"""Help-line complaints (point 52 4), point 119, R4): record the call, open the case.

The call is written first (`helpline_complaints`, case_id NULL), then the case is opened with
the complaint's id as its external id, so a retry after a failure in between finds the same
case instead of opening a second one; last the complaint row gets its case id. The caller's
number and words stay in that table: the case's evidence names the complaint by id only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.cases import Actor, Cases, CaseView, Evidence, Source
from gateway.ids import new_id
from gateway.store import Store
from gateway.store.models_api import helpline_complaints

from .auth import Principal
from .schemas import ComplaintIn

AHEAD = 300.0  # a caller's clock may run this far ahead of ours (seconds)
BEHIND = 30 * 86400.0  # a complaint typed in this long after the call, at most
STATED_DIFFERS = 900.0  # a stated receipt further from ours than this flags the case


class StatedTimeError(ValueError):
    """A caller's time out of bounds: answered 422 naming the field."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Stated:
    received: float | None
    incident: float | None


def check_stated(body: ComplaintIn, now: float) -> Stated:
    received = body.received_at.timestamp() if body.received_at is not None else None
    incident = body.incident_at.timestamp() if body.incident_at is not None else None
    if received is not None and not now - BEHIND <= received <= now + AHEAD:
        raise StatedTimeError("received_at", "more than 5 minutes ahead or 30 days behind now")
    if incident is not None and incident > now + AHEAD:
        raise StatedTimeError("incident_at", "in the future")
    return Stated(received, incident)


class Complaints:
    def __init__(self, cases: Cases, store: Store, *, clock: Callable[[], float] = time.time):
        self.cases = cases
        self.store = store
        self.clock = clock

    async def take(self, body: ComplaintIn, who: Principal) -> tuple[str, CaseView]:
        """The complaint's id and the case it opened (state new, verify_by per point 119).
        The legal clock starts when fraudgate receives the complaint; the caller's stated
        time is kept beside it, bounded (StatedTimeError) and flagged when it differs."""
        complaint_id = new_id()
        now = self.clock()
        stated = check_stated(body, now)
        await self._record(complaint_id, body, who, now, stated)
        flags = []
        if stated.received is not None and abs(now - stated.received) > STATED_DIFFERS:
            flags.append("stated_time_differs")
        case = await self.cases.open(
            source=Source.COMPLAINT,
            numbers=[body.suspicious_number],
            received_at=now,
            facts_at=stated.incident,
            evidence=[Evidence("helpline", complaint_id, {"channel": "helpline"})],
            external_id=complaint_id,
            actor=Actor(who.user_id, who.role.value),
            reason="help-line complaint",
            flags=flags,
        )
        await self._link(complaint_id, case.id)
        return complaint_id, case

    async def _record(
        self, complaint_id: str, body: ComplaintIn, who: Principal, now: float, stated: Stated
    ) -> None:
        with self.store.guard("api.complaint"):
            async with self.store.engine.begin() as conn:
                await conn.execute(
                    helpline_complaints.insert().values(
                        id=complaint_id,
                        received_at=now,
                        recorded_at=now,
                        stated_received_at=stated.received,
                        incident_at=stated.incident,
                        caller=body.caller_number,
                        suspect=body.suspicious_number,
                        description=body.description,
                        taken_by=who.user_id,
                    )
                )

    async def _link(self, complaint_id: str, case_id: str) -> None:
        t = helpline_complaints
        with self.store.guard("api.complaint"):
            async with self.store.engine.begin() as conn:
                await conn.execute(t.update().where(t.c.id == complaint_id).values(case_id=case_id))
