"""Who held a number when (issue 14 item 1) and the ten-number limit on imports (item 10), on a
SQLite file and the session's PostgreSQL. IINs are synthetic (valid check digits)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command

from gateway.registry import DeviceSpec, Registry
from gateway.store import Store
from gateway.store.models_registry import number_holdings
from gateway.store.store import _alembic_config

A, B = "900101300017", "850515400012"
NUMBER = "77011234567"
DAY = 86400.0
T0 = dt.datetime(2025, 3, 3, 12, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def holdings(store: Store, msisdn: str = NUMBER) -> list[tuple[Any, ...]]:
    h = number_holdings.c
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(h.person_id, h.since, h.until, h.closed_reason)
            .where(h.msisdn == msisdn)
            .order_by(h.since)
        )
        return [tuple(r) for r in rows]


async def holder(registry: Registry, at: float | None) -> str | None:
    found = await registry.subscriber_of("+" + NUMBER, at=at)
    return None if found is None else found[0].iin


async def test_reissued_number_names_the_holder_of_the_time(store: Store) -> None:
    clock = Clock(T0)
    registry = Registry(store, clock=clock)
    a = await registry.register_person(A, "Абенов", "Ерлан")
    b = await registry.register_person(B, "Smith", "Anna")
    await registry.register_number(A, NUMBER, contract_id="C-A")
    await registry.register_number(A, "77019999999", contract_id="C-A2")
    clock.t = T0 + 10 * DAY
    await registry.set_number_status(NUMBER, "terminated")
    await registry.set_number_status(NUMBER, "terminated")  # again: the holding stays as it was
    clock.t = T0 + 20 * DAY
    await registry.register_number(B, NUMBER, contract_id="C-B")
    clock.t = T0 + 30 * DAY

    assert await holder(registry, T0 + 5 * DAY) == A  # last year's fraud: A, not B
    assert await holder(registry, T0 + 15 * DAY) is None  # nobody held it
    assert await holder(registry, T0 + 25 * DAY) == B
    assert await holder(registry, None) == B
    assert await holder(registry, T0 - DAY) is None  # before anyone
    assert await registry.holders_of(["+" + NUMBER, "87019999999"], at=T0 + 5 * DAY) == {
        "+" + NUMBER: a.id,
        "87019999999": a.id,
    }
    assert await registry.holders_of([NUMBER, "77019999999"], at=T0 + 15 * DAY) == {
        "77019999999": a.id
    }
    assert await registry.holders_of([NUMBER]) == {NUMBER: b.id}  # the old signature: now

    # A's record still lists the number A held then, terminated for A
    found = await registry.subscriber_of(NUMBER, at=T0 + 5 * DAY)
    assert found is not None
    assert [(n.msisdn, n.status) for n in found[1]] == [
        (NUMBER, "terminated"),
        ("77019999999", "active"),
    ]
    assert await holdings(store) == [
        (a.id, T0, T0 + 10 * DAY, "terminated"),
        (b.id, T0 + 20 * DAY, None, None),
    ]


async def test_contract_date_starts_the_holding_but_never_overlaps(store: Store) -> None:
    clock = Clock(T0)
    registry = Registry(store, clock=clock)
    a = await registry.register_person(A, "Абенов", "Ерлан")
    b = await registry.register_person(B, "Smith", "Anna")
    await registry.register_number(A, NUMBER, contract_date=dt.date(2025, 1, 10))
    clock.t = T0 + DAY
    await registry.set_number_status(NUMBER, "terminated")
    clock.t = T0 + 2 * DAY  # B's contract is dated before A's number was terminated
    await registry.register_number(B, NUMBER, contract_date=dt.date(2025, 3, 1))
    almaty_midnight = dt.datetime(2025, 1, 9, 19, tzinfo=dt.UTC).timestamp()  # UTC+5
    assert await holdings(store) == [
        (a.id, almaty_midnight, T0 + DAY, "terminated"),
        (b.id, T0 + DAY, None, None),
    ]


def rows(path: Path, data: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.DictWriter(f, ["iin", "surname", "name", "msisdn", "status", "contract_id"])
        out.writeheader()
        out.writerows(data)
    return path


async def test_import_moves_a_number_from_a_to_b(store: Store, tmp_path: Path) -> None:
    clock = Clock(T0)
    registry = Registry(store, clock=clock)
    row_a = {"iin": A, "surname": "Абенов", "name": "Ерлан", "msisdn": NUMBER, "contract_id": "1"}
    await registry.import_file(rows(tmp_path / "1.csv", [row_a]))
    clock.t = T0 + 10 * DAY
    report = await registry.import_file(
        rows(tmp_path / "2.csv", [row_a | {"status": "terminated"}])
    )
    assert report.updated == 1
    clock.t = T0 + 20 * DAY
    row_b = {"iin": B, "surname": "Smith", "name": "Anna", "msisdn": NUMBER, "contract_id": "2"}
    report = await registry.import_file(rows(tmp_path / "3.csv", [row_b]))
    assert (report.updated, report.rejected) == (1, [])
    again = await registry.import_file(rows(tmp_path / "3.csv", [row_b]))
    assert again.unchanged == 1  # re-importing opens no second holding

    assert await holder(registry, T0 + 5 * DAY) == A
    assert await holder(registry, T0 + 15 * DAY) is None
    assert await holder(registry, T0 + 25 * DAY) == B
    assert [(r[1], r[2]) for r in await holdings(store)] == [
        (T0, T0 + 10 * DAY),
        (T0 + 20 * DAY, None),
    ]


def many(path: Path, iin: str, n: int) -> Path:
    return rows(
        path,
        [
            {"iin": iin, "surname": "Тестов", "name": "Тест", "msisdn": f"7705{i:07d}"}
            for i in range(n)
        ],
    )


async def test_import_stops_a_person_at_the_limit(store: Store, tmp_path: Path) -> None:
    """One person given 15 numbers in a file: 10 go in, 5 are refused naming their lines."""
    registry = Registry(store, batch_size=4)  # the count carries across batches
    report = await registry.import_file(many(tmp_path / "15.csv", A, 15))
    assert (report.inserted, report.rejected_count) == (10, 5)
    assert [r.line for r in report.rejected] == [12, 13, 14, 15, 16]
    reason = "IIN 9001******17: 10 of 10 numbers registered: more need an approved application"
    assert all(r.reason.startswith(reason) for r in report.rejected)
    assert all(A not in r.reason for r in report.rejected)
    found = await registry.subscriber_of("77050000000")
    assert found is not None and len(found[1]) == 10
    assert (await registry.check_new_number(A)).count == 10

    # an approved application for 15 lets the same file bring the other five in
    app = await registry.submit_application(
        A,
        purpose="fleet trackers",
        requested_count=15,
        devices=[DeviceSpec("m2m", "TRK-0001", "tracker")],
        justification="logistics contract",
        declared_accurate=True,
    )
    await registry.approve_application(app.id, decided_by="u-sup")
    again = await registry.import_file(many(tmp_path / "15.csv", A, 16))
    assert (again.inserted, again.unchanged, again.rejected_count) == (5, 10, 1)
    assert again.rejected[0].line == 17
    assert "15 of 15" in again.rejected[0].reason


async def test_backfill_gives_each_number_its_holding(db_url: str) -> None:
    """Migration 0010 on a registry written before it: one holding per number."""
    async with await Store.open(db_url) as st:
        async with st.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0009"))
            await conn.execute(
                sa.text(
                    "INSERT INTO individuals (id, iin, surname, name, created_at, updated_at) "
                    "VALUES ('p1', :iin, 'S', 'N', 1, 1)"
                ),
                {"iin": A},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO numbers (msisdn, imsi, status, contract_date, contract_id, "
                    "person_id, created_at, updated_at) VALUES "
                    "('77010000001', '', 'active', :d, 'c1', 'p1', 1000, 1000), "
                    "('77010000002', '', 'terminated', NULL, 'c2', 'p1', 2000, 3000)"
                ),
                {"d": dt.date(2024, 5, 1)},
            )
        await st.migrate()
        first = dt.datetime(2024, 4, 30, 19, tzinfo=dt.UTC).timestamp()  # Almaty, UTC+5
        assert await holdings(st, "77010000001") == [("p1", first, None, None)]
        assert await holdings(st, "77010000002") == [("p1", 2000.0, 3000.0, "terminated")]
        registry = Registry(st)
        assert await registry.holders_of(["77010000001", "77010000002"]) == {"77010000001": "p1"}
        assert await registry.holders_of(["77010000002"], at=2500.0) == {"77010000002": "p1"}


async def test_a_terminated_number_registered_twice_at_once_goes_to_one_person(
    store: Store,
) -> None:
    """Two registrations of one free number at the same moment: one person gets it, the other
    is told it is taken (on PostgreSQL the row is locked; the second no longer overwrites)."""
    import asyncio

    from gateway.registry import NumberTaken

    registry = Registry(store, clock=Clock(T0))
    for iin, name in ((A, "Aigerim"), (B, "Dana")):
        await registry.register_person(iin, "Testova", name)
    await registry.register_number(A, NUMBER)
    await registry.set_number_status(NUMBER, "terminated")
    c = "940215300014"
    await registry.register_person(c, "Seitov", "Arman")
    results = await asyncio.gather(
        registry.register_number(B, NUMBER), registry.register_number(c, NUMBER),
        return_exceptions=True,
    )  # fmt: skip
    assert sorted(type(r).__name__ for r in results) == ["NumberRecord", "NumberTaken"]
    assert all(isinstance(r, NumberTaken) or r.msisdn == NUMBER for r in results)
    open_ = [h for h in await holdings(store) if h[2] is None]
    assert len(open_) == 1  # one holder now, and the history agrees with the numbers table
