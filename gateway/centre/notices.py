"""Every notice to the centre seen through (points 118, 120; R2, R8).

A report ends acknowledged by the centre, or it is an ATTENTION item: refused for good (a 4xx,
or a payload the schema refuses), or a detection whose subscriber the registry did not know.
An attention item raises a `centre` alert when it appears and again each working day, until a
person acts on it:

    resend   a new revision of the report is queued (a detection is rebuilt from the registry
             as it is now: the analyst completed the subscriber), the old one is superseded
    dismiss  handled outside fraudgate (the centre was phoned, the report was wrong): the reason
             and the person are recorded

`fraudgate centre list|resend|dismiss` and `/v1/centre/reports` call this class.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from gateway.alerts.payloads import iso_utc
from gateway.cases import rows
from gateway.domain import AlertKind
from gateway.ids import new_id
from gateway.store.models_centre import centre_reports
from gateway.workdays import KzCalendar

from .outbox import StoreLike, insert_report
from .reports import CaseLike, NoticeLike, build_report

log = logging.getLogger(__name__)

STATUSES = ("pending", "acked", "refused", "incomplete", "resolved")
ATTENTION = ("refused", "incomplete")


class NoticeError(Exception):
    """A notice operation was refused (unknown report, nothing to act on)."""


@dataclass(frozen=True, slots=True)
class NoticeRow:
    """A report as analysts see it: no personal data (the payload is not shown)."""

    id: str
    kind: str
    case_id: str
    round: int
    revision: int
    status: str  # STATUSES
    created_at: float
    attempts: int
    acked_at: float | None
    last_error: str | None
    resolved_by: str | None
    resolution: str | None
    superseded_by: str | None

    @property
    def needs_attention(self) -> bool:
        return self.status in ATTENTION


class DetectionRebuilder(Protocol):
    """gateway.cases.Cases.detection_notice: a detection notice as the registry gives it now."""

    def __call__(
        self, case_id: str, round_: int, status: str
    ) -> Awaitable[tuple[CaseLike, NoticeLike]]: ...


class Notices:
    def __init__(
        self,
        store: StoreLike,
        operator: str,
        *,
        rebuild: DetectionRebuilder | None = None,
        calendar: KzCalendar | None = None,
        work_start: dt.time = dt.time(9, 0),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.operator = operator
        self.rebuild = rebuild
        self.calendar = calendar or KzCalendar()
        self.work_start = work_start
        self.clock = clock

    async def list(
        self, status: str | None = None, case_id: str | None = None, limit: int = 100
    ) -> list[NoticeRow]:
        """Reports, newest first; `status` one of STATUSES or "attention"."""
        t = centre_reports.c
        query = sa.select(centre_reports).order_by(t.created_at.desc(), t.id).limit(limit)
        if case_id is not None:
            query = query.where(t.case_id == case_id)
        if status is not None:
            query = query.where(_status_where(status))
        with self.store.guard("centre.notices"):
            async with self.store.engine.connect() as conn:
                return [_row(r) for r in await conn.execute(query)]

    async def get(self, report_id: str) -> NoticeRow:
        return _row(await self._raw(report_id))

    async def counts(self) -> dict[str, int]:
        """How many reports are pending and how many need attention."""
        out: dict[str, int] = {}
        with self.store.guard("centre.notices"):
            async with self.store.engine.connect() as conn:
                for name in ("pending", "attention"):
                    query = sa.select(sa.func.count()).where(_status_where(name))
                    out[name] = int((await conn.execute(query)).scalar_one())
        return out

    async def resend(self, report_id: str, actor: str) -> NoticeRow:
        """Queue a new revision of a refused, incomplete or pending report; the old one is
        superseded (never sent again). A detection is rebuilt from the registry as it is now."""
        old = await self._raw(report_id)
        if not _open(old):
            raise NoticeError(f"report {report_id}: {_status(old)}; nothing to resend")
        payload = dict(old.payload)
        new = new_id()
        now = self.clock()
        if old.kind == "detection" and self.rebuild is not None:
            case, notice = await self.rebuild(
                old.case_id, old.round, payload.get("status", "confirmed")
            )
            payload = build_report(case, notice, report_id=new, operator=self.operator, now=now)
        else:
            payload |= {"report_id": new, "created_at": iso_utc(now)}
        row = {
            "id": new, "kind": old.kind, "case_id": old.case_id, "round": old.round,
            "revision": old.revision + 1, "payload": payload, "created_at": now, "attempts": 0,
        }  # fmt: skip
        with self.store.guard("centre.resend"):
            async with self.store.engine.begin() as conn:
                if await insert_report(conn, row) is None:
                    raise NoticeError(f"report {report_id}: resent already")
                await self._resolve(conn, report_id, actor, f"resent as {new}", now, new)
        log.info("centre report %s (%s, case %s) resent as %s by %s",
                 report_id, old.kind, old.case_id, new, actor)  # fmt: skip
        return await self.get(new)

    async def dismiss(self, report_id: str, actor: str, reason: str) -> NoticeRow:
        """Handled outside fraudgate: recorded with the person and the reason, never sent."""
        if not reason.strip():
            raise NoticeError("a dismissal needs a reason")
        old = await self._raw(report_id)
        if not _open(old):
            raise NoticeError(f"report {report_id}: {_status(old)}; nothing to dismiss")
        with self.store.guard("centre.dismiss"):
            async with self.store.engine.begin() as conn:
                await self._resolve(conn, report_id, actor, reason.strip()[:2000], self.clock())
        log.info("centre report %s (%s, case %s) dismissed by %s", report_id, old.kind,
                 old.case_id, actor)  # fmt: skip
        return await self.get(report_id)

    async def remind(self) -> int:
        """A `centre` alert for each attention item: when it appears, then once each working
        day from the start of working hours, until someone acts. Returns how many were added."""
        now = self.clock()
        today = self.calendar.local_date(dt.datetime.fromtimestamp(now, tz=dt.UTC))
        start = dt.datetime.combine(today, self.work_start, tzinfo=self.calendar.tz).timestamp()
        daily = self.calendar.is_working_day(today) and now >= start
        added = 0
        with self.store.guard("centre.remind"):
            async with self.store.engine.begin() as conn:
                found = await conn.execute(
                    sa.select(centre_reports)
                    .where(_status_where("attention"))
                    .order_by(centre_reports.c.created_at, centre_reports.c.id)
                    .limit(500)
                )
                for r in found.all():
                    first = await _claim(conn, r.case_id, f"centre:{r.id}:first", now)
                    day = daily and await _claim(conn, r.case_id, f"centre:{r.id}:{today}", now)
                    if first or day:
                        await rows.add_alert(conn, AlertKind.CENTRE, _alert(r), now)
                        added += 1
        return added

    async def _raw(self, report_id: str) -> Any:
        t = centre_reports.c
        with self.store.guard("centre.notices"):
            async with self.store.engine.connect() as conn:
                found = (
                    await conn.execute(sa.select(centre_reports).where(t.id == report_id))
                ).first()
        if found is None:
            raise NoticeError(f"no centre report {report_id[:64]}")
        return found

    @staticmethod
    async def _resolve(
        conn: Any, report_id: str, actor: str, resolution: str, now: float, new: str | None = None
    ) -> None:
        t = centre_reports.c
        done = await conn.execute(
            centre_reports.update()
            .where(t.id == report_id, t.resolved_at.is_(None))
            .values(
                resolved_at=now, resolved_by=actor[:128], resolution=resolution, superseded_by=new
            )
        )
        if done.rowcount != 1:
            raise NoticeError(f"report {report_id}: acted on meanwhile")


def _status_where(status: str) -> Any:
    t = centre_reports.c
    unresolved = t.resolved_at.is_(None)
    refused = sa.and_(unresolved, t.acked_at.is_(None), t.failed_at.is_not(None))
    # a detection sent without a subscriber (unknown to the registry): the centre may have it,
    # but an analyst must complete it (its acknowledgement does not settle that)
    incomplete = sa.and_(unresolved, t.kind == "detection", t.subscriber_unknown.is_(True))
    wheres = {
        "pending": sa.and_(unresolved, t.acked_at.is_(None), t.failed_at.is_(None)),
        "acked": t.acked_at.is_not(None),
        "refused": refused,
        "incomplete": incomplete,
        "resolved": t.resolved_at.is_not(None),
        "attention": sa.or_(refused, incomplete),
    }
    if status not in wheres:
        raise NoticeError(f"status {status!r}: one of {', '.join(wheres)}")
    return wheres[status]


def _status(r: Any) -> str:
    if r.resolved_at is not None:
        return "resolved"
    if r.kind == "detection" and r.subscriber_unknown:
        return "incomplete"
    if r.acked_at is not None:
        return "acked"
    return "refused" if r.failed_at is not None else "pending"


def _open(r: Any) -> bool:
    """Needs a person: refused, or incomplete. A pending report is the dispatcher's (it may be
    on its way): resending it would reach the centre twice under two report ids."""
    return _status(r) in ATTENTION


def _row(r: Any) -> NoticeRow:
    return NoticeRow(
        id=r.id, kind=r.kind, case_id=r.case_id, round=r.round, revision=r.revision,
        status=_status(r), created_at=r.created_at, attempts=r.attempts, acked_at=r.acked_at,
        last_error=r.last_error, resolved_by=r.resolved_by, resolution=r.resolution,
        superseded_by=r.superseded_by,
    )  # fmt: skip


async def _claim(conn: Any, case_id: str, key: str, now: float) -> bool:
    """The reminder `key` of this report, once (the deadline reminders' table)."""
    return await rows.claim_deadline_alert(conn, case_id, key[:96], new_id(), now)


def _alert(r: Any) -> dict[str, object]:
    """A `centre` alert: what needs doing, no personal data (the payload is not copied)."""
    status = _status(r)
    return {
        "report_id": r.id,
        "report_kind": r.kind,
        "case_id": r.case_id,
        "round": r.round,
        "status": status,
        "error": (r.last_error or "")[:300] if status == "refused" else "",
        "action": "fraudgate centre resend|dismiss " + r.id,
    }


__all__ = ["ATTENTION", "STATUSES", "NoticeError", "NoticeRow", "Notices"]
