"""Who held each number when (`number_holdings`): a report about facts of last year names the
holder of last year, not whoever holds the re-issued number now (issue 14, item 1).

A holding is the period [since, until) of one individual holding one number; `until` is NULL
while held. Every path that gives a number to someone or terminates it (register_number,
set_number_status, the importer) goes through `open_holdings` / `close_holdings`, in the same
transaction as its change to `numbers`, so at most one holding per number is open and periods
of one number never overlap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.ids import new_id
from gateway.store.models_registry import number_holdings, numbers
from gateway.workdays import ALMATY

_TZ = ZoneInfo(ALMATY)


@dataclass(frozen=True, slots=True)
class NewHolding:
    msisdn: str
    person_id: str
    contract_date: dt.date | None
    contract_id: str
    terminated: bool = False  # recorded as held and ended at once (an export's terminated row)


def contract_start(contract_date: dt.date | None, now: float) -> float:
    """When a holding on a contract of `contract_date` began: that day's midnight in Almaty
    time; now when there is no date or the date is in the future."""
    if contract_date is None:
        return now
    start = dt.datetime.combine(contract_date, dt.time(), tzinfo=_TZ).timestamp()
    return min(start, now)


def held_at(at: float | None) -> sa.ColumnElement[bool]:
    """The holdings in force at epoch second `at` (None: now, the open ones)."""
    h = number_holdings.c
    if at is None:
        return h.until.is_(None)
    return sa.and_(h.since <= at, sa.or_(h.until.is_(None), h.until > at))


async def close_holdings(
    conn: AsyncConnection, msisdns: Collection[str], now: float, reason: str
) -> None:
    """End the open holdings of `msisdns` at `now` (a holding never ends before it began)."""
    if not msisdns:
        return
    h = number_holdings.c
    await conn.execute(
        number_holdings.update()
        .where(h.msisdn.in_(sorted(msisdns)), h.until.is_(None))
        .values(until=sa.case((h.since > now, h.since), else_=now), closed_reason=reason)
    )


async def open_holdings(conn: AsyncConnection, new: Sequence[NewHolding], now: float) -> None:
    """Start a holding per item (after closing any still open: "re-registered"). It begins at
    the contract date (contract_start), never before the number's previous holding ended."""
    if not new:
        return
    wanted = {n.msisdn for n in new}
    await close_holdings(conn, wanted, now, "re-registered")
    h = number_holdings.c
    ended = dict(
        (
            await conn.execute(
                sa.select(h.msisdn, sa.func.max(h.until))
                .where(h.msisdn.in_(sorted(wanted)))
                .group_by(h.msisdn)
            )
        ).all()
    )
    rows: list[dict[str, Any]] = []
    for n in new:
        since = contract_start(n.contract_date, now)
        previous = ended.get(n.msisdn)
        if previous is not None:
            since = max(since, float(previous))
        rows.append(
            {
                "id": new_id(),
                "msisdn": n.msisdn,
                "person_id": n.person_id,
                "since": since,
                "until": max(since, now) if n.terminated else None,
                "contract_id": n.contract_id,
                "closed_reason": "terminated" if n.terminated else None,
            }
        )
    await conn.execute(number_holdings.insert(), rows)


async def holders_at(
    conn: AsyncConnection, msisdns: Collection[str], at: float | None
) -> dict[str, str]:
    """{msisdn: person id} of the numbers held at `at` (None: now)."""
    if not msisdns:
        return {}
    h = number_holdings.c
    rows = await conn.execute(
        sa.select(h.msisdn, h.person_id).where(h.msisdn.in_(sorted(msisdns)), held_at(at))
    )
    return {str(r.msisdn): str(r.person_id) for r in rows}


async def past_numbers(conn: AsyncConnection, person_id: str) -> list[tuple[str, str]]:
    """(msisdn, contract_id) of numbers the individual held once and someone else holds now or
    held since: on their record as terminated (the numbers table has the present only)."""
    h = number_holdings.c
    rows = await conn.execute(
        sa.select(h.msisdn, sa.func.max(h.contract_id))
        .join(numbers, numbers.c.msisdn == h.msisdn)
        .where(h.person_id == person_id, numbers.c.person_id != person_id)
        .group_by(h.msisdn)
    )
    return [(str(r[0]), str(r[1])) for r in rows]


__all__ = [
    "NewHolding",
    "close_holdings",
    "contract_start",
    "held_at",
    "holders_at",
    "open_holdings",
    "past_numbers",
]
