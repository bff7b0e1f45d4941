"""The subscriber registry on the store's database (R6, R3): individuals, their numbers, devices
and applications for more than ten numbers (Rules points 55-1...55-6).

    registry = Registry(store)
    person, numbers = await registry.subscriber_of("+7 701 123 45 67") or ...

Every database failure is raised as StoreError (StoreUnavailable when retrying may help); bad
input and refused requests as RegistryError subclasses whose messages mask IINs and numbers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.alerts.payloads import mask_msisdn
from gateway.ids import new_id
from gateway.iin import mask_iin
from gateway.store import Store, StoreError
from gateway.store.models_registry import devices, individuals, number_applications, numbers
from gateway.workdays import KzCalendar

from . import history, importer
from .errors import (
    ApplicationStateError,
    ImportInterrupted,
    LimitExceeded,
    NumberTaken,
    RegistryError,
    UnknownApplication,
    UnknownNumber,
    UnknownPerson,
)
from .importer import ImportReport, seen_table
from .readers import SourceRow, read_csv, read_json
from .values import (
    DEFAULT_LIMIT,
    MAX_REQUESTED,
    Application,
    ApplicationStatus,
    DeviceSpec,
    LimitCheck,
    NumberRecord,
    NumberStatus,
    OverLimit,
    Person,
    check_device,
    check_imsi,
    check_msisdn,
    check_name,
    check_status,
    check_text,
    normalize_msisdn,
    valid_iin,
)

if TYPE_CHECKING:
    from .settings import RegistrySettings

_REGISTERED = numbers.c.status != NumberStatus.TERMINATED.value
MAX_JUSTIFICATION = 8000  # 55-2: the justification and the evidence of need, as text


class Registry:
    """Repository of the registry tables; one instance per store, safe to share."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        batch_size: int = 500,
        settings: RegistrySettings | None = None,
        calendar: KzCalendar | None = None,
    ) -> None:
        """`settings`: [registry] (the decision time limit, 55-4); `calendar`: the working
        days that limit counts (give the one built from [cases] extra days off)."""
        from .settings import DEFAULT_DECISION_DAYS

        self._store = store
        self._clock = clock
        self._batch_size = batch_size
        self._decision_days = (
            settings.application_decision_days if settings else DEFAULT_DECISION_DAYS
        )
        self._calendar = calendar

    def now(self) -> float:
        """The registry's clock (epoch seconds): what `Application.overdue` is asked against."""
        return self._clock()

    # -- individuals -------------------------------------------------------------------------

    async def register_person(
        self, iin: str, surname: str, name: str, patronymic: str = ""
    ) -> Person:
        """Add the individual, or update their names when the IIN is registered already."""
        iin = valid_iin(iin)
        names = (
            check_name("surname", surname),
            check_name("name", name),
            check_name("patronymic", patronymic, required=False),
        )
        now = self._clock()
        with self._store.guard("registry.register_person"):
            async with self._store.engine.begin() as conn:
                row = await _person_row(conn, iin, lock=True)
                values = dict(zip(("surname", "name"), names[:2], strict=True))
                values["patronymic"] = names[2] or None  # type: ignore[assignment]
                if row is None:
                    pid = new_id()
                    await conn.execute(
                        individuals.insert().values(
                            id=pid, iin=iin, created_at=now, updated_at=now, **values
                        )
                    )
                    return Person(pid, iin, *names)
                if (row.surname, row.name, row.patronymic or "") != names:
                    await conn.execute(
                        individuals.update()
                        .where(individuals.c.id == row.id)
                        .values(updated_at=now, **values)
                    )
                return Person(row.id, iin, *names)

    async def find_by_iin(self, iin: str) -> Person | None:
        iin = valid_iin(iin)
        with self._store.guard("registry.find_by_iin"):
            async with self._store.engine.connect() as conn:
                row = await _person_row(conn, iin)
        return None if row is None else _person(row)

    async def person(self, person_id: str) -> tuple[Person, list[NumberRecord]] | None:
        """The individual and every number on record for them (see `subscriber_of`)."""
        with self._store.guard("registry.person"):
            async with self._store.engine.connect() as conn:
                row = (
                    await conn.execute(sa.select(individuals).where(individuals.c.id == person_id))
                ).first()
                if row is None:
                    return None
                return _person(row), await _numbers_of(conn, row.id)

    async def subscriber_of(
        self, msisdn: str, at: float | None = None
    ) -> tuple[Person, list[NumberRecord]] | None:
        """R3: the individual who held `msisdn` at epoch second `at` (None: now) and ALL numbers
        on record for them, sorted, each with its status: `NumberRecord.registered` tells the
        ones registered now (active, suspended) from terminated ones; a number they held once
        and that was re-issued since is on their record as terminated. `msisdn` may be written
        +77011234567, 87011234567, 77011234567, with spaces, dashes or brackets. None when
        nobody held the number at `at`, or it is not a Kazakh mobile number at all (an
        alphanumeric sender has no subscriber)."""
        number = normalize_msisdn(msisdn)
        if number is None:
            return None
        with self._store.guard("registry.subscriber_of"):
            async with self._store.engine.connect() as conn:
                holder = (await history.holders_at(conn, [number], at)).get(number)
                if holder is None:
                    return None
                row = (
                    await conn.execute(sa.select(individuals).where(individuals.c.id == holder))
                ).one()
                return _person(row), await _numbers_of(conn, row.id)

    async def holders_of(self, msisdns: Iterable[str], at: float | None = None) -> dict[str, str]:
        """The id of the individual who held each number at `at` (None: now), keys as given, in
        one query: what a batch of new cases needs (no names, no IINs: nothing personal read).
        Numbers nobody held then are left out."""
        wanted = {n: normalize_msisdn(n) for n in msisdns}
        found = {v for v in wanted.values() if v is not None}
        if not found:
            return {}
        with self._store.guard("registry.holders_of"):
            async with self._store.engine.connect() as conn:
                holder = await history.holders_at(conn, found, at)
        return {n: holder[v] for n, v in wanted.items() if v is not None and v in holder}

    # -- numbers -----------------------------------------------------------------------------

    async def set_number_status(self, msisdn: str, status: str) -> None:
        """active <-> suspended, or terminated (final: the number is then free to register
        again, to anyone, with `register_number`)."""
        number, new = check_msisdn(msisdn), check_status(status)
        with self._store.guard("registry.set_number_status"):
            async with self._store.engine.begin() as conn:
                current = (
                    await conn.execute(
                        sa.select(numbers.c.status)
                        .where(numbers.c.msisdn == number)
                        .with_for_update()
                    )
                ).scalar()
                if current is None:
                    raise UnknownNumber(f"msisdn {mask_msisdn(number)}: not in the registry")
                if current == NumberStatus.TERMINATED and new != NumberStatus.TERMINATED:
                    raise RegistryError(
                        f"msisdn {mask_msisdn(number)}: terminated; register it again instead"
                    )
                now = self._clock()
                await conn.execute(
                    numbers.update()
                    .where(numbers.c.msisdn == number)
                    .values(status=str(new), updated_at=now)
                )
                if new == NumberStatus.TERMINATED and current != NumberStatus.TERMINATED:
                    await history.close_holdings(conn, [number], now, "terminated")

    async def register_number(
        self,
        iin: str,
        msisdn: str,
        *,
        imsi: str = "",
        contract_date: dt.date | None = None,
        contract_id: str = "",
    ) -> NumberRecord:
        """Register `msisdn` to the individual (55-6: on a contract). 55-1/55-2: refuses with
        LimitExceeded once they hold their limit (10, or an approved application's count).
        Registering a number they already hold returns it unchanged; a number another individual
        holds raises NumberTaken; a terminated number is re-assigned."""
        iin, number, imsi = valid_iin(iin), check_msisdn(msisdn), check_imsi(imsi)
        contract_id = check_text("contract_id", contract_id, required=False, limit=64)
        with self._store.guard("registry.register_number"):
            async with self._store.engine.begin() as conn:
                person = await _existing_person(conn, iin, lock=True)
                # locked (PostgreSQL): two registrations of one terminated number at once
                # must not both succeed, the second overwriting the first
                current = (
                    await conn.execute(
                        sa.select(numbers).where(numbers.c.msisdn == number).with_for_update()
                    )
                ).first()
                if current is not None and current.status != NumberStatus.TERMINATED:
                    if current.person_id != person.id:
                        raise NumberTaken(
                            f"msisdn {mask_msisdn(number)}: already registered to another "
                            "individual"
                        )
                    return _number(current)
                check = await _limit_check(conn, person.id)
                if not check.allowed:
                    raise LimitExceeded(
                        f"IIN {mask_iin(iin)}: {check.reason}", count=check.count, limit=check.limit
                    )
                now = self._clock()
                values = {
                    "imsi": imsi,
                    "status": NumberStatus.ACTIVE.value,
                    "contract_date": contract_date,
                    "contract_id": contract_id,
                    "person_id": person.id,
                    "updated_at": now,
                }
                if current is None:
                    stmt: Any = numbers.insert().values(msisdn=number, created_at=now, **values)
                else:  # only while still free: a registration that came first keeps it
                    stmt = (
                        numbers.update()
                        .where(
                            numbers.c.msisdn == number,
                            numbers.c.status == NumberStatus.TERMINATED.value,
                        )
                        .values(**values)
                    )
                done = await conn.execute(stmt)
                if done.rowcount != 1:
                    raise NumberTaken(
                        f"msisdn {mask_msisdn(number)}: registered to another individual meanwhile"
                    )
                held = history.NewHolding(number, person.id, contract_date, contract_id)
                await history.open_holdings(conn, [held], now)
        return NumberRecord(number, imsi, NumberStatus.ACTIVE.value, contract_date, person.id)

    async def check_new_number(self, iin: str) -> LimitCheck:
        """May the individual get one more number (55-1, 55-2)? An IIN not on record holds 0."""
        iin = valid_iin(iin)
        with self._store.guard("registry.check_new_number"):
            async with self._store.engine.connect() as conn:
                row = await _person_row(conn, iin)
                if row is None:
                    return LimitCheck(True, 0, DEFAULT_LIMIT, "no numbers registered")
                return await _limit_check(conn, row.id)

    async def over_limit(self) -> list[OverLimit]:
        """Individuals holding more registered (active or suspended) numbers than allowed: more
        than 10 without an approved application, or more than the approved count. Imports
        record exports as they are, so this is where legacy excess shows up."""
        held = (
            sa.select(numbers.c.person_id, sa.func.count().label("n"))
            .where(_REGISTERED)
            .group_by(numbers.c.person_id)
            .subquery()
        )
        approved = _approved_limits().subquery()
        limit = sa.func.coalesce(approved.c.n, DEFAULT_LIMIT)
        query = (
            sa.select(individuals, held.c.n.label("held"), limit.label("lim"))
            .join(held, held.c.person_id == individuals.c.id)
            .outerjoin(approved, approved.c.person_id == individuals.c.id)
            .where(held.c.n > limit)
            .order_by(held.c.n.desc(), individuals.c.id)
        )
        with self._store.guard("registry.over_limit"):
            async with self._store.engine.connect() as conn:
                rows = await conn.execute(query)
                return [OverLimit(_person(r), int(r.held), int(r.lim)) for r in rows]

    # -- applications (55-2 ... 55-5) --------------------------------------------------------

    async def submit_application(
        self,
        iin: str,
        *,
        purpose: str,
        requested_count: int,
        devices: Sequence[DeviceSpec],
        justification: str,
        declared_accurate: bool,
    ) -> Application:
        """An application for more than ten numbers: the purpose and the accuracy declaration
        (55-3), the devices with their IMEI or M2M identifiers and the justification and
        evidence of need (55-2), the total count of numbers asked for. One undecided
        application per individual at a time; its decision is due by `decide_by` (55-4)."""
        request = _Request(purpose, requested_count, devices, justification, declared_accurate)
        return await self._submit(iin, request, previous=None)

    async def reapply(
        self,
        previous_id: str,
        *,
        purpose: str,
        requested_count: int,
        devices: Sequence[DeviceSpec],
        justification: str,
        declared_accurate: bool,
    ) -> Application:
        """55-5: a new application once the reasons of a refusal are removed; `previous_id` must
        be refused and not re-applied for already."""
        with self._store.guard("registry.reapply"):
            async with self._store.engine.connect() as conn:
                prev = await _application_row(conn, previous_id)
                iin = (
                    await conn.execute(
                        sa.select(individuals.c.iin).where(individuals.c.id == prev.person_id)
                    )
                ).scalar_one()
        if prev.status != ApplicationStatus.REFUSED:
            raise ApplicationStateError(
                f"application {previous_id}: {prev.status}; only a refused one is re-applied for"
            )
        request = _Request(purpose, requested_count, devices, justification, declared_accurate)
        return await self._submit(iin, request, previous=previous_id)

    async def approve_application(
        self, application_id: str, *, decided_by: str = ""
    ) -> Application:
        """55-4: the operator registers the numbers: the individual's limit becomes the count."""
        return await self._decide(
            application_id, ApplicationStatus.APPROVED, decided_by=decided_by, reason=None
        )

    async def refuse_application(
        self, application_id: str, reason: str, *, decided_by: str = ""
    ) -> Application:
        """55-4: a refusal states its reason (required)."""
        reason = check_text("reason", reason, required=True)
        return await self._decide(
            application_id, ApplicationStatus.REFUSED, decided_by=decided_by, reason=reason
        )

    async def application(self, application_id: str) -> Application:
        with self._store.guard("registry.application"):
            async with self._store.engine.connect() as conn:
                app = _application(await _application_row(conn, application_id))
        return self._with_deadline(app)

    async def applicant(self, application_id: str) -> tuple[Application, Person]:
        """The application and the individual who made it."""
        with self._store.guard("registry.application"):
            async with self._store.engine.connect() as conn:
                app = _application(await _application_row(conn, application_id))
                row = (
                    await conn.execute(
                        sa.select(individuals).where(individuals.c.id == app.person_id)
                    )
                ).one()
        return self._with_deadline(app), _person(row)

    async def applications_of(self, iin: str) -> list[Application]:
        """The individual's applications, oldest first."""
        iin = valid_iin(iin)
        query = (
            sa.select(number_applications)
            .join(individuals, individuals.c.id == number_applications.c.person_id)
            .where(individuals.c.iin == iin)
            .order_by(number_applications.c.submitted_at, number_applications.c.id)
        )
        with self._store.guard("registry.applications_of"):
            async with self._store.engine.connect() as conn:
                found = [_application(r) for r in await conn.execute(query)]
        return [self._with_deadline(a) for a in found]

    async def _submit(self, iin: str, req: _Request, *, previous: str | None) -> Application:
        iin = valid_iin(iin)
        purpose = check_text("purpose", req.purpose, required=True)
        justification = check_text(
            "justification", req.justification, required=True, limit=MAX_JUSTIFICATION
        )
        _check_request(req.requested_count, req.devices, req.declared_accurate)
        checked = [check_device(s) for s in req.devices]
        now = self._clock()
        decide_by = self._decide_by(now)
        with self._store.guard("registry.submit_application"):
            async with self._store.engine.begin() as conn:
                person = await _existing_person(conn, iin, lock=True)
                await _no_pending(conn, person.id, previous)
                device_ids = [await _device_id(conn, person.id, d, now) for d in checked]
                app = Application(
                    id=new_id(),
                    person_id=person.id,
                    purpose=purpose,
                    requested_count=req.requested_count,
                    device_ids=tuple(device_ids),
                    declared_accurate=True,
                    status=ApplicationStatus.SUBMITTED.value,
                    submitted_at=now,
                    decision_at=None,
                    decided_by="",
                    refusal_reason="",
                    previous_application_id=previous,
                    justification=justification,
                    decide_by=decide_by,
                )
                await conn.execute(number_applications.insert().values(_application_values(app)))
        return app

    def _decide_by(self, submitted_at: float) -> float:
        """55-4: the end of the `application_decision_days`-th working day after submission."""
        calendar = self._calendar
        if calendar is None:
            calendar = self._calendar = KzCalendar()
        moment = dt.datetime.fromtimestamp(submitted_at, dt.UTC)
        return calendar.add_working_days(moment, self._decision_days).timestamp()

    async def list_applications(
        self, *, status: str | None = None, overdue: bool = False, limit: int = 100
    ) -> list[tuple[Application, Person]]:
        """Applications with their applicant, newest first; `overdue`: only undecided ones past
        their decide_by (rows from before migration 0010 get one from their submission)."""
        a = number_applications
        i = individuals.c
        query = sa.select(a, i.iin, i.surname, i.name, i.patronymic).join(
            individuals, i.id == a.c.person_id
        )
        if overdue:
            status = ApplicationStatus.SUBMITTED.value
        if status is not None:
            query = query.where(a.c.status == str(ApplicationStatus(status)))
        query = query.order_by(a.c.submitted_at.desc(), a.c.id)
        if not overdue:
            query = query.limit(limit)
        with self._store.guard("registry.list_applications"):
            async with self._store.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        found = [(self._with_deadline(_application(r)), _person_of(r)) for r in rows]
        if overdue:
            now = self._clock()
            found = [f for f in found if f[0].overdue(now)][:limit]
        return found

    def _with_deadline(self, app: Application) -> Application:
        if app.decide_by is not None:
            return app
        return dataclasses.replace(app, decide_by=self._decide_by(app.submitted_at))

    async def _decide(
        self,
        application_id: str,
        status: ApplicationStatus,
        *,
        decided_by: str,
        reason: str | None,
    ) -> Application:
        decided_by = check_text("decided_by", decided_by, required=True, limit=200)
        with self._store.guard("registry.decide_application"):
            async with self._store.engine.begin() as conn:
                done = await conn.execute(
                    number_applications.update()
                    .where(
                        number_applications.c.id == application_id,
                        number_applications.c.status == ApplicationStatus.SUBMITTED.value,
                    )
                    .values(
                        status=status.value,
                        decision_at=self._clock(),
                        decided_by=decided_by or None,
                        refusal_reason=reason,
                    )
                )
                row = await _application_row(conn, application_id)
                if done.rowcount != 1:
                    raise ApplicationStateError(
                        f"application {application_id}: already {row.status}"
                    )
                return _application(row)

    # -- import ------------------------------------------------------------------------------

    async def import_file(self, path: Path, fmt: Literal["csv", "json"] = "csv") -> ImportReport:
        """Import a CRM/billing export (docs/registry.md): streamed, committed in batches."""
        if fmt not in ("csv", "json"):
            raise RegistryError(f"format {fmt!r}: expected csv or json")
        try:
            with path.open(encoding="utf-8-sig", newline="" if fmt == "csv" else None) as f:
                rows = read_csv(f) if fmt == "csv" else read_json(f)
                return await self.import_stream(rows)
        except UnicodeDecodeError as e:
            raise RegistryError(f"{path.name}: not UTF-8 text ({e.reason})") from None

    async def import_stream(
        self, rows: Iterable[SourceRow] | AsyncIterable[SourceRow]
    ) -> ImportReport:
        """Import `(line, record)` pairs (see readers.py), one transaction per batch. Raises
        ImportInterrupted (a StoreError, with the report of the committed batches) when the
        database fails; the failing batch is rolled back whole."""
        report = ImportReport()
        batch: list[SourceRow] = []
        with self._store.guard("registry.import"):
            async with self._store.engine.connect() as conn, _scratch_table(conn):
                async for item in _aiter(rows):
                    batch.append(item)
                    if len(batch) >= self._batch_size:
                        await self._import_batch(conn, batch, report)
                        batch = []
                if batch:
                    await self._import_batch(conn, batch, report)
        report.complete = True
        return report

    async def _import_batch(
        self, conn: AsyncConnection, batch: list[SourceRow], report: ImportReport
    ) -> None:
        part = ImportReport(read=len(batch), lines_done=batch[-1][0])
        try:
            with self._store.guard("registry.import"):
                async with conn.begin():
                    rows = importer.parse_rows(batch, part)
                    await importer.apply_batch(conn, rows, part, self._clock())
        except StoreError as e:
            raise ImportInterrupted(
                f"registry import stopped at line {batch[0][0]} ({report.summary()}): {e}", report
            ) from e
        part.rejected.sort()  # checks run in passes: report in line order
        report.add(part)


# -- helpers -----------------------------------------------------------------------------------


async def _aiter(rows: Iterable[SourceRow] | AsyncIterable[SourceRow]) -> AsyncIterator[SourceRow]:
    if isinstance(rows, AsyncIterable):
        async for item in rows:
            yield item
    else:
        for item in rows:
            yield item


@contextlib.asynccontextmanager
async def _scratch_table(conn: AsyncConnection) -> AsyncIterator[None]:
    async with conn.begin():
        await conn.run_sync(lambda c: seen_table.drop(c, checkfirst=True))
        await conn.run_sync(lambda c: seen_table.create(c))
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # a broken connection takes the table with it
            async with conn.begin():
                await conn.run_sync(lambda c: seen_table.drop(c, checkfirst=True))


@dataclass(frozen=True, slots=True)
class _Request:
    purpose: str
    requested_count: int
    devices: Sequence[DeviceSpec]
    justification: str
    declared_accurate: bool


def _check_request(count: int, specs: Sequence[DeviceSpec], declared_accurate: bool) -> None:
    if isinstance(count, bool) or not DEFAULT_LIMIT < count <= MAX_REQUESTED:
        raise RegistryError(
            f"requested_count: more than {DEFAULT_LIMIT} (55-1) and at most {MAX_REQUESTED}"
        )
    if not specs:
        raise RegistryError("devices: name at least one device with its IMEI or M2M id (55-2)")
    if declared_accurate is not True:
        raise RegistryError("declared_accurate: the applicant must confirm the data (55-3)")


async def _person_row(conn: AsyncConnection, iin: str, *, lock: bool = False) -> Any:
    query = sa.select(individuals).where(individuals.c.iin == iin)
    if lock:
        query = query.with_for_update()  # PostgreSQL: one registration per person at a time
    return (await conn.execute(query)).first()


async def _existing_person(conn: AsyncConnection, iin: str, *, lock: bool = False) -> Person:
    row = await _person_row(conn, iin, lock=lock)
    if row is None:
        raise UnknownPerson(f"IIN {mask_iin(iin)}: no such individual (register_person first)")
    return _person(row)


async def _numbers_of(conn: AsyncConnection, person_id: str) -> list[NumberRecord]:
    """The numbers registered to the individual, and those they held once that were re-issued
    since (terminated for them), by number."""
    rows = await conn.execute(sa.select(numbers).where(numbers.c.person_id == person_id))
    found = [_number(r) for r in rows]
    for msisdn, contract_id in await history.past_numbers(conn, person_id):
        del contract_id  # the contract of the past holding; NumberRecord has no field for it
        found.append(NumberRecord(msisdn, "", NumberStatus.TERMINATED.value, None, person_id))
    return sorted(found, key=lambda n: n.msisdn)


def _approved_limits() -> sa.Select[Any]:
    a = number_applications
    return (
        sa.select(a.c.person_id, sa.func.max(a.c.requested_count).label("n"))
        .where(a.c.status == ApplicationStatus.APPROVED.value)
        .group_by(a.c.person_id)
    )


async def _limit_check(conn: AsyncConnection, person_id: str) -> LimitCheck:
    count = (
        await conn.execute(
            sa.select(sa.func.count()).where(numbers.c.person_id == person_id, _REGISTERED)
        )
    ).scalar_one()
    approved = (
        await conn.execute(_approved_limits().where(number_applications.c.person_id == person_id))
    ).first()
    limit = max(DEFAULT_LIMIT, approved.n) if approved is not None else DEFAULT_LIMIT
    if count < limit:
        return LimitCheck(True, count, limit, f"{count} of {limit} numbers registered")
    if approved is not None:
        why = f"the approved application allows {limit} (a new application is needed for more)"
    else:
        why = "more need an approved application with devices and purpose (55-2, 55-3)"
        pending = await _pending_id(conn, person_id)
        if pending is not None:
            why += f"; application {pending} awaits a decision"
    return LimitCheck(False, count, limit, f"{count} of {limit} numbers registered: {why}")


async def _pending_id(conn: AsyncConnection, person_id: str) -> str | None:
    a = number_applications
    return (
        await conn.execute(
            sa.select(a.c.id).where(
                a.c.person_id == person_id, a.c.status == ApplicationStatus.SUBMITTED.value
            )
        )
    ).scalar()


async def _no_pending(conn: AsyncConnection, person_id: str, previous: str | None) -> None:
    pending = await _pending_id(conn, person_id)
    if pending is not None:
        raise ApplicationStateError(f"application {pending} awaits a decision already")
    if previous is not None:
        again = (
            await conn.execute(
                sa.select(number_applications.c.id).where(
                    number_applications.c.previous_application_id == previous
                )
            )
        ).scalar()
        if again is not None:
            raise ApplicationStateError(f"application {previous}: re-applied already as {again}")


async def _device_id(conn: AsyncConnection, person_id: str, spec: DeviceSpec, now: float) -> str:
    """The id of the individual's device (added, or its description brought up to date)."""
    key = (
        devices.c.person_id == person_id,
        devices.c.kind == spec.kind,
        devices.c.identifier == spec.identifier,
    )
    row = (await conn.execute(sa.select(devices.c.id, devices.c.description).where(*key))).first()
    if row is None:
        device_id = new_id()
        await conn.execute(
            devices.insert().values(
                id=device_id,
                person_id=person_id,
                kind=spec.kind,
                identifier=spec.identifier,
                description=spec.description,
                created_at=now,
            )
        )
        return device_id
    if row.description != spec.description:
        await conn.execute(
            devices.update().where(devices.c.id == row.id).values(description=spec.description)
        )
    return str(row.id)


async def _application_row(conn: AsyncConnection, application_id: str) -> Any:
    row = (
        await conn.execute(
            sa.select(number_applications).where(number_applications.c.id == application_id)
        )
    ).first()
    if row is None:
        raise UnknownApplication(f"application {application_id[:64]}: no such application")
    return row


def _person(row: Any) -> Person:
    return Person(row.id, row.iin, row.surname, row.name, row.patronymic or "")


def _person_of(row: Any) -> Person:
    """The applicant of a number_applications row joined with the individual's names."""
    return Person(row.person_id, row.iin, row.surname, row.name, row.patronymic or "")


def _number(row: Any) -> NumberRecord:
    return NumberRecord(row.msisdn, row.imsi, row.status, row.contract_date, row.person_id)


def _application(row: Any) -> Application:
    return Application(
        id=row.id,
        person_id=row.person_id,
        purpose=row.purpose,
        requested_count=row.requested_count,
        device_ids=tuple(row.device_ids),
        declared_accurate=bool(row.declared_accurate),
        status=row.status,
        submitted_at=row.submitted_at,
        decision_at=row.decision_at,
        decided_by=row.decided_by or "",
        refusal_reason=row.refusal_reason or "",
        previous_application_id=row.previous_application_id,
        justification=row.justification or "",
        decide_by=row.decide_by,
    )


def _application_values(app: Application) -> dict[str, Any]:
    return {
        "id": app.id,
        "person_id": app.person_id,
        "purpose": app.purpose,
        "requested_count": app.requested_count,
        "device_ids": list(app.device_ids),
        "declared_accurate": app.declared_accurate,
        "status": app.status,
        "submitted_at": app.submitted_at,
        "previous_application_id": app.previous_application_id,
        "justification": app.justification,
        "decide_by": app.decide_by,
    }
