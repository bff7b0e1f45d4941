"""Import of CRM/billing exports into the registry: one row = one number and its holder.

Rows are checked one by one, then written in batches, one transaction per batch. A rejected row
writes nothing (not even its holder); a batch the database fails on is rolled back whole.
Re-importing a file changes nothing and counts its rows as unchanged. The ten-number limit
(55-1, or the count of an approved application, 55-2) holds here as in `register_number`: a row
that would register one number too many to its holder is rejected, the rest of the batch goes in
(`Registry.over_limit()` reports holders above it from before). Every row that gives a number
to someone or terminates it keeps `number_holdings` exact (history.py). Duplicate numbers within
one file are found through a temporary table on the import's connection, so memory stays
bounded however long the file is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.alerts.payloads import mask_msisdn
from gateway.ids import new_id
from gateway.iin import mask_iin
from gateway.store.models_registry import individuals, number_applications, numbers

from . import history
from .errors import RegistryError
from .readers import Unreadable
from .values import (
    DEFAULT_LIMIT,
    ApplicationStatus,
    NumberStatus,
    check_imsi,
    check_msisdn,
    check_name,
    check_status,
    check_text,
    parse_date,
    valid_iin,
)

MAX_LISTED_REJECTIONS = 10_000  # more are counted, not listed (bounded memory)

_scratch = sa.MetaData()
# Numbers already seen in this file, with their line (a TEMPORARY table: per connection).
seen_table = sa.Table(
    "registry_import_seen",
    _scratch,
    sa.Column("msisdn", sa.String(15), primary_key=True),
    sa.Column("line", sa.Integer(), nullable=False),
    prefixes=["TEMPORARY"],
)


class Rejection(NamedTuple):
    line: int
    reason: str


@dataclass
class ImportReport:
    read: int = 0  # rows of committed batches (rejected ones included)
    inserted: int = 0  # rows whose number was new
    updated: int = 0  # rows that changed their number or its holder's names
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)  # the first MAX_LISTED_REJECTIONS
    rejected_count: int = 0
    lines_done: int = 0  # the last source line of the last committed batch
    complete: bool = False  # the whole source was read and committed

    def add(self, other: ImportReport) -> None:
        self.read += other.read
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected_count += other.rejected_count
        room = MAX_LISTED_REJECTIONS - len(self.rejected)
        self.rejected.extend(other.rejected[: max(room, 0)])
        self.lines_done = max(self.lines_done, other.lines_done)

    def summary(self) -> str:
        state = "complete" if self.complete else f"stopped after line {self.lines_done}"
        return (
            f"read {self.read}, inserted {self.inserted}, updated {self.updated}, "
            f"unchanged {self.unchanged}, rejected {self.rejected_count} ({state})"
        )


@dataclass(slots=True)
class Row:
    line: int
    iin: str
    surname: str
    name: str
    patronymic: str
    msisdn: str
    imsi: str
    status: str
    contract_date: dt.date | None
    contract_id: str


def _text(raw: Mapping[str, object], key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise RegistryError(f"{key}: expected text")


def parse_row(line: int, raw: Mapping[str, object]) -> Row:
    """The checked row; RegistryError names the first problem (IINs and numbers masked)."""
    return Row(
        line=line,
        iin=valid_iin(_text(raw, "iin")),
        msisdn=check_msisdn(_text(raw, "msisdn")),
        surname=check_name("surname", _text(raw, "surname")),
        name=check_name("name", _text(raw, "name")),
        patronymic=check_name("patronymic", _text(raw, "patronymic"), required=False),
        status=str(check_status(_text(raw, "status"))),
        imsi=check_imsi(_text(raw, "imsi")),
        contract_date=parse_date("contract_date", _text(raw, "contract_date")),
        contract_id=check_text("contract_id", _text(raw, "contract_id"), required=False, limit=64),
    )


def parse_rows(
    batch: Sequence[tuple[int, Mapping[str, object] | Unreadable]], report: ImportReport
) -> list[Row]:
    rows: list[Row] = []
    for line, raw in batch:
        if isinstance(raw, Unreadable):
            reject(report, line, raw.reason)
            continue
        try:
            rows.append(parse_row(line, raw))
        except RegistryError as e:
            reject(report, line, str(e))
    return rows


def reject(report: ImportReport, line: int, reason: str) -> None:
    report.rejected_count += 1
    if len(report.rejected) < MAX_LISTED_REJECTIONS:
        report.rejected.append(Rejection(line, reason))


# -- one batch -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Holder:
    id: str
    iin: str
    names: tuple[str, str, str]
    new: bool
    changed: bool = False


@dataclass
class _Writes:
    new_numbers: list[dict[str, Any]] = field(default_factory=list)
    changed_numbers: list[dict[str, Any]] = field(default_factory=list)
    opened: list[history.NewHolding] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)  # numbers terminated by this batch


@dataclass(slots=True)
class _Quota:
    """Numbers registered (active, suspended) to one holder and how many they may hold."""

    count: int = 0
    limit: int = DEFAULT_LIMIT


@dataclass
class _Batch:
    people: dict[str, _Holder]
    owned: dict[str, Any]  # msisdn -> its numbers row
    quotas: dict[str, _Quota]  # person id -> quota
    writes: _Writes = field(default_factory=_Writes)


async def apply_batch(
    conn: AsyncConnection, rows: list[Row], report: ImportReport, now: float
) -> None:
    """Check `rows` against the file so far and the database, then write them (the caller holds
    the transaction)."""
    rows = await _drop_duplicates(conn, rows, report)
    if not rows:
        return
    people = await _holders(conn, {r.iin for r in rows})
    owned = {
        r.msisdn: r
        for r in await conn.execute(
            sa.select(numbers).where(numbers.c.msisdn.in_([r.msisdn for r in rows]))
        )
    }
    batch = _Batch(people, owned, await _quotas(conn, [h.id for h in people.values()]))
    for row in rows:
        _plan_row(row, batch, report, now)
    await _write(conn, people, batch.writes, now)


async def _drop_duplicates(
    conn: AsyncConnection, rows: list[Row], report: ImportReport
) -> list[Row]:
    first: dict[str, int] = {}
    unique: list[Row] = []
    for row in rows:
        if row.msisdn in first:
            reject(
                report, row.line, f"duplicate msisdn in file (first on line {first[row.msisdn]})"
            )
        else:
            first[row.msisdn] = row.line
            unique.append(row)
    if not unique:
        return []
    earlier = dict(
        (
            await conn.execute(
                sa.select(seen_table.c.msisdn, seen_table.c.line).where(
                    seen_table.c.msisdn.in_(list(first))
                )
            )
        ).all()
    )
    kept = []
    for row in unique:
        if row.msisdn in earlier:
            reject(
                report, row.line, f"duplicate msisdn in file (first on line {earlier[row.msisdn]})"
            )
        else:
            kept.append(row)
    if kept:
        await conn.execute(
            seen_table.insert(), [{"msisdn": r.msisdn, "line": r.line} for r in kept]
        )
    return kept


async def _holders(conn: AsyncConnection, iins: set[str]) -> dict[str, _Holder]:
    result = await conn.execute(sa.select(individuals).where(individuals.c.iin.in_(iins)))
    return {
        r.iin: _Holder(r.id, r.iin, (r.surname, r.name, r.patronymic or ""), new=False)
        for r in result
    }


async def _quotas(conn: AsyncConnection, person_ids: list[str]) -> dict[str, _Quota]:
    """The quota of each individual already on record (55-1, 55-2)."""
    quotas = {p: _Quota() for p in person_ids}
    if not person_ids:
        return quotas
    # the people's rows locked to the end of the batch (PostgreSQL), as register_number locks
    # its person: a registration through the API cannot slip in between count and insert
    await conn.execute(
        sa.select(individuals.c.id)
        .where(individuals.c.id.in_(sorted(person_ids)))
        .order_by(individuals.c.id)
        .with_for_update()
    )
    held = await conn.execute(
        sa.select(numbers.c.person_id, sa.func.count())
        .where(
            numbers.c.person_id.in_(person_ids),
            numbers.c.status != NumberStatus.TERMINATED.value,
        )
        .group_by(numbers.c.person_id)
    )
    for person_id, n in held:
        quotas[person_id].count = int(n)
    a = number_applications.c
    approved = await conn.execute(
        sa.select(a.person_id, sa.func.max(a.requested_count))
        .where(a.person_id.in_(person_ids), a.status == ApplicationStatus.APPROVED.value)
        .group_by(a.person_id)
    )
    for person_id, n in approved:
        quotas[person_id].limit = max(DEFAULT_LIMIT, int(n))
    return quotas


def _plan_row(row: Row, batch: _Batch, report: ImportReport, now: float) -> None:
    holder = batch.people.get(row.iin)
    current: Any = batch.owned.get(row.msisdn)
    current_registered = current is not None and current.status != NumberStatus.TERMINATED
    if current_registered and (holder is None or current.person_id != holder.id):
        reject(
            report,
            row.line,
            f"msisdn {mask_msisdn(row.msisdn)}: already registered to another individual",
        )
        return
    registers = row.status != NumberStatus.TERMINATED
    adds = registers and not current_registered  # one more number registered to the holder
    quota = batch.quotas.get(holder.id, _Quota()) if holder is not None else _Quota()
    if adds and quota.count >= quota.limit:
        reject(report, row.line, _over_limit(row.iin, quota))
        return
    names = (row.surname, row.name, row.patronymic)
    renamed = False
    if holder is None:
        holder = batch.people[row.iin] = _Holder(new_id(), row.iin, names, new=True)
    elif holder.names != names:
        holder.names, holder.changed, renamed = names, True, True
    batch.quotas[holder.id] = quota
    _plan_history(row, holder.id, current, batch.writes)
    quota.count += 1 if adds else -1 if current_registered and not registers else 0
    _plan_number(row, holder.id, current, renamed, batch.writes, report, now)


def _over_limit(iin: str, quota: _Quota) -> str:
    why = (
        "the approved application allows no more (a new application is needed)"
        if quota.limit > DEFAULT_LIMIT
        else "more need an approved application (55-2, 55-3)"
    )
    return f"IIN {mask_iin(iin)}: {quota.count} of {quota.limit} numbers registered: {why}"


def _plan_history(row: Row, person_id: str, current: Any, writes: _Writes) -> None:
    """The holdings this row starts or ends (history.py)."""
    registered = current is not None and current.status != NumberStatus.TERMINATED
    if row.status != NumberStatus.TERMINATED:
        if not registered:  # a new number, or a terminated one registered again
            writes.opened.append(
                history.NewHolding(row.msisdn, person_id, row.contract_date, row.contract_id)
            )
    elif registered:  # the export says the holder's number was terminated
        writes.closed.append(row.msisdn)
    elif current is None or current.person_id != person_id:  # terminated when first seen
        writes.opened.append(
            history.NewHolding(
                row.msisdn, person_id, row.contract_date, row.contract_id, terminated=True
            )
        )


def _plan_number(
    row: Row,
    person_id: str,
    current: Any,
    renamed: bool,
    writes: _Writes,
    report: ImportReport,
    now: float,
) -> None:
    values = _number_values(row, person_id)
    if current is None:
        writes.new_numbers.append({**values, "created_at": now, "updated_at": now})
        report.inserted += 1
    elif any(getattr(current, k) != v for k, v in values.items()):
        writes.changed_numbers.append({**values, "key": row.msisdn, "updated_at": now})
        report.updated += 1
    elif renamed:
        report.updated += 1
    else:
        report.unchanged += 1


def _person_values(holder: _Holder, now: float) -> dict[str, Any]:
    surname, name, patronymic = holder.names
    return {
        "id": holder.id,
        "iin": holder.iin,
        "surname": surname,
        "name": name,
        "patronymic": patronymic or None,
        "created_at": now,
        "updated_at": now,
    }


def _number_values(row: Row, person_id: str) -> dict[str, Any]:
    return {
        "msisdn": row.msisdn,
        "imsi": row.imsi,
        "status": row.status,
        "contract_date": row.contract_date,
        "contract_id": row.contract_id,
        "person_id": person_id,
    }


async def _write(
    conn: AsyncConnection, people: dict[str, _Holder], writes: _Writes, now: float
) -> None:
    new_people = [_person_values(h, now) for h in people.values() if h.new]
    if new_people:
        await conn.execute(individuals.insert(), new_people)
    renamed = [
        {"key": h.id, "surname": h.names[0], "name": h.names[1], "patronymic": h.names[2] or None}
        for h in people.values()
        if h.changed and not h.new
    ]
    if renamed:
        await conn.execute(
            individuals.update()
            .where(individuals.c.id == sa.bindparam("key"))
            .values(updated_at=now),
            renamed,
        )
    if writes.new_numbers:
        await conn.execute(numbers.insert(), writes.new_numbers)
    if writes.changed_numbers:
        await conn.execute(
            numbers.update().where(numbers.c.msisdn == sa.bindparam("key")),
            [{k: v for k, v in d.items() if k != "msisdn"} for d in writes.changed_numbers],
        )
    await history.close_holdings(conn, writes.closed, now, "terminated")
    await history.open_holdings(conn, writes.opened, now)
