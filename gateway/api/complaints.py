"""Help-line complaints (point 52 4), point 119, R4): record the call, open the case.

The call is written first (`helpline_complaints`, case_id NULL), then the case is opened with
the complaint's id as its external id, so a retry after a failure in between finds the same
case instead of opening a second one; last the complaint row gets its case id. The caller's
number and words stay in that table: the case's evidence names the complaint by id only.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.cases import Actor, Cases, CaseView, Evidence, Source
from gateway.ids import new_id
from gateway.store import Store
from gateway.store.models_api import helpline_complaints

from .auth import Principal
from .schemas import ComplaintIn


class Complaints:
    def __init__(self, cases: Cases, store: Store, *, clock: Callable[[], float] = time.time):
        self.cases = cases
        self.store = store
        self.clock = clock

    async def take(self, body: ComplaintIn, who: Principal) -> tuple[str, CaseView]:
        """The complaint's id and the case it opened (state new, verify_by per point 119)."""
        complaint_id = new_id()
        now = self.clock()
        received = body.received_at.timestamp() if body.received_at is not None else now
        await self._record(complaint_id, body, who, received, now)
        case = await self.cases.open(
            source=Source.COMPLAINT,
            numbers=[body.suspicious_number],
            received_at=received,
            evidence=[Evidence("helpline", complaint_id, {"channel": "helpline"})],
            external_id=complaint_id,
            actor=Actor(who.user_id, who.role.value),
            reason="help-line complaint",
        )
        await self._link(complaint_id, case.id)
        return complaint_id, case

    async def _record(
        self, complaint_id: str, body: ComplaintIn, who: Principal, received: float, now: float
    ) -> None:
        with self.store.guard("api.complaint"):
            async with self.store.engine.begin() as conn:
                await conn.execute(
                    helpline_complaints.insert().values(
                        id=complaint_id,
                        received_at=received,
                        recorded_at=now,
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
