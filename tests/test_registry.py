"""The subscriber registry (R6, R3; Rules 55-1...55-6) on real databases: a SQLite file and the
session's PostgreSQL. IINs are the synthetic values of shared/domain/KAZAKHSTAN.md or generated
ones with a valid check digit; never real people's."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from helpers.cli import caller

from gateway.cli import main
from gateway.ids import new_id
from gateway.iin import iin_check_digit
from gateway.registry import (
    ApplicationStateError,
    DeviceSpec,
    ImportInterrupted,
    LimitExceeded,
    NumberTaken,
    Registry,
    RegistryError,
    SourceRow,
    UnknownPerson,
)
from gateway.store import Store, StoreError, StoreUnavailable, sqlite_url
from gateway.store.models_registry import individuals, numbers

if TYPE_CHECKING:
    from fixtures_services import PostgresServer

DATA = Path(__file__).parent / "data" / "registry"
A, B, C, D = "900101300017", "850515400012", "000701500013", "051231600017"
IMEI = "490154203237518"  # the classic example IMEI: valid Luhn check digit
M2M = DeviceSpec("m2m", "89882390000123456789", "smart meter modem, building 4")
NEED = "contract with the utility for 15 meters; invoice No. 12 attached"


@pytest.fixture
def registry(store: Store) -> Registry:
    return Registry(store)


def msisdn(i: int, prefix: str = "7701") -> str:
    return f"{prefix}{i:07d}"


def make_iin(i: int) -> str:
    """A synthetic IIN (born 1980 onwards, male, 1900s) with a valid check digit, one per i."""
    day = dt.date(1980, 1, 1) + dt.timedelta(days=i // 400)
    base = (i % 400) * 20
    for serial in range(base, base + 20):
        first = f"{day:%y%m%d}3{serial:04d}"
        digit = iin_check_digit(first)
        if digit is not None:
            return first + str(digit)
    raise AssertionError("no serial with a check digit")  # pragma: no cover


async def count(store: Store, table: sa.Table) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


# -- the limit: 55-1 ... 55-5 --------------------------------------------------------------------


async def test_ten_numbers_then_refused_then_application(registry: Registry) -> None:
    person = await registry.register_person(A, "Абенов", "Ерлан", "Серікұлы")
    for i in range(10):
        await registry.register_number(A, msisdn(i), contract_id=f"C-{i}")
    check = await registry.check_new_number(A)
    assert (check.allowed, check.count, check.limit) == (False, 10, 10)
    with pytest.raises(LimitExceeded) as info:
        await registry.register_number(A, msisdn(10))
    assert (info.value.count, info.value.limit) == (10, 10)
    assert "9001******17" in str(info.value) and A not in str(info.value)
    # registering a number already held is not an 11th number
    again = await registry.register_number(A, msisdn(3))
    assert again.person_id == person.id

    app = await registry.submit_application(
        A,
        purpose="telemetry of 5 meters",
        requested_count=15,
        devices=[DeviceSpec("imei", IMEI, "router"), M2M],
        justification=NEED,
        declared_accurate=True,
    )
    assert app.status == "submitted" and len(app.device_ids) == 2
    pending = await registry.check_new_number(A)
    assert not pending.allowed and app.id in pending.reason
    with pytest.raises(LimitExceeded):
        await registry.register_number(A, msisdn(10))

    approved = await registry.approve_application(app.id, decided_by="analyst-7")
    assert approved.status == "approved" and approved.decision_at is not None
    assert approved.decided_by == "analyst-7"
    for i in range(10, 15):
        await registry.register_number(A, msisdn(i))
    with pytest.raises(LimitExceeded) as info:
        await registry.register_number(A, msisdn(15))
    assert (info.value.count, info.value.limit) == (15, 15)
    # a terminated number frees its place
    await registry.set_number_status(msisdn(0), "terminated")
    assert (await registry.check_new_number(A)).allowed


async def test_refusal_needs_a_reason_then_reapplication(registry: Registry) -> None:
    await registry.register_person(B, "Smith", "Anna")
    app = await registry.submit_application(
        B,
        purpose="fleet",
        requested_count=12,
        devices=[M2M],
        justification=NEED,
        declared_accurate=True,
    )
    with pytest.raises(ApplicationStateError, match="awaits a decision"):
        await registry.submit_application(
            B,
            purpose="again",
            requested_count=12,
            devices=[M2M],
            justification=NEED,
            declared_accurate=True,
        )
    with pytest.raises(RegistryError, match="missing reason"):
        await registry.refuse_application(app.id, "  ", decided_by="sup-1")
    refused = await registry.refuse_application(
        app.id, "device list incomplete", decided_by="sup-1"
    )
    assert refused.status == "refused" and refused.refusal_reason == "device list incomplete"
    with pytest.raises(ApplicationStateError, match="already refused"):
        await registry.approve_application(app.id, decided_by="sup-1")

    second = await registry.reapply(
        app.id,
        purpose="fleet of 12 trackers",
        requested_count=12,
        devices=[M2M, DeviceSpec("imei", IMEI, "tracker")],
        justification=NEED,
        declared_accurate=True,
    )
    assert second.previous_application_id == app.id and second.status == "submitted"
    assert second.device_ids[0] == app.device_ids[0]  # the same device, not a copy
    with pytest.raises(ApplicationStateError):
        await registry.reapply(
            second.id,
            purpose="x",
            requested_count=12,
            devices=[M2M],
            justification=NEED,
            declared_accurate=True,
        )  # not refused
    await registry.refuse_application(second.id, "purpose not shown", decided_by="sup-1")
    third = await registry.reapply(
        second.id,
        purpose="y",
        requested_count=11,
        devices=[M2M],
        justification=NEED,
        declared_accurate=True,
    )
    await registry.refuse_application(third.id, "no evidence of need", decided_by="sup-1")
    with pytest.raises(ApplicationStateError, match="re-applied already"):
        await registry.reapply(
            second.id,
            purpose="z",
            requested_count=11,
            devices=[M2M],
            justification=NEED,
            declared_accurate=True,
        )
    history = await registry.applications_of(B)
    assert [a.status for a in history] == ["refused", "refused", "refused"]


async def test_application_checks(registry: Registry) -> None:
    await registry.register_person(C, "Нұрланова", "Айгүл")
    good: dict[str, Any] = {
        "purpose": "p",
        "requested_count": 11,
        "devices": [M2M],
        "justification": NEED,
        "declared_accurate": True,
    }
    changes: list[tuple[dict[str, Any], str]] = [
        ({"requested_count": 10}, "requested_count"),
        ({"devices": []}, "devices"),
        ({"declared_accurate": False}, "declared_accurate"),
        ({"purpose": ""}, "missing purpose"),
        ({"justification": " "}, "missing justification"),
        ({"devices": [DeviceSpec("imei", "490154203237519", "bad luhn")]}, "IMEI"),
        ({"devices": [DeviceSpec("sim", "x", "d")]}, "device kind"),
    ]
    for change, message in changes:
        with pytest.raises(RegistryError, match=message):
            await registry.submit_application(C, **{**good, **change})
    with pytest.raises(UnknownPerson, match=r"0512\*\*\*\*\*\*17"):
        await registry.submit_application(D, **good)


# -- lookups (R3) --------------------------------------------------------------------------------


async def test_subscriber_of_any_written_form(registry: Registry) -> None:
    person = await registry.register_person(A, "Абенов", "Ерлан")
    await registry.register_person(B, "Smith", "Anna")
    await registry.register_number(A, "77011234567", imsi="401011234567890")
    await registry.register_number(A, "8 (702) 111-22-33", contract_date=dt.date(2024, 5, 1))
    await registry.register_number(B, "77770000000")
    await registry.set_number_status("77021112233", "suspended")
    for form in ("+77011234567", "87011234567", "77011234567", "+7 701 123 45 67", "7011234567"):
        found = await registry.subscriber_of(form)
        assert found is not None
        who, held = found
        assert who == person and who.patronymic == ""
        assert [n.msisdn for n in held] == ["77011234567", "77021112233"]
        assert [n.status for n in held] == ["active", "suspended"]
        assert held[1].contract_date == dt.date(2024, 5, 1) and held[0].imsi == "401011234567890"
    assert await registry.subscriber_of("77019999999") is None
    assert await registry.subscriber_of("KASPI") is None
    assert await registry.person(person.id) == found
    assert await registry.find_by_iin(A) == person
    assert await registry.find_by_iin(D) is None
    with pytest.raises(NumberTaken, match=r"7777\*\*\*0000"):
        await registry.register_number(A, "+77770000000")


async def test_terminated_number_goes_to_a_new_holder(registry: Registry) -> None:
    await registry.register_person(A, "Абенов", "Ерлан")
    await registry.register_person(B, "Smith", "Anna")
    await registry.register_number(A, "77011234567")
    await registry.set_number_status("77011234567", "terminated")
    with pytest.raises(RegistryError, match="register it again"):
        await registry.set_number_status("77011234567", "active")
    record = await registry.register_number(B, "77011234567")
    found = await registry.subscriber_of("77011234567")
    assert found is not None and found[0].iin == B and record.status == "active"
    with pytest.raises(RegistryError, match="bad status"):
        await registry.set_number_status("77011234567", "blocked")
    with pytest.raises(RegistryError, match="not in the registry"):
        await registry.set_number_status("77010000000", "active")


async def test_bad_input_is_named_and_masked(registry: Registry) -> None:
    with pytest.raises(RegistryError) as info:
        await registry.register_person("900101300018", "X", "Y")
    assert str(info.value) == "IIN 9001******18: bad check digit"
    with pytest.raises(RegistryError, match="missing surname"):
        await registry.register_person(A, " ", "Y")
    with pytest.raises(RegistryError, match="msisdn"):
        await registry.register_number(A, "12345")
    with pytest.raises(UnknownPerson):
        await registry.register_number(A, "77011234567")
    renamed = await registry.register_person(A, "Абенова", "Ерке", "Серікқызы")
    assert (await registry.register_person(A, "Абенова", "Ерке", "Серікқызы")) == renamed
    assert await count(registry._store, individuals) == 1


async def legacy(store: Store, iin: str, names: tuple[str, str], msisdns: list[str]) -> None:
    """Numbers registered before the rule (or by a system that ignored it): written straight to
    the tables, as no path of the registry would write them now."""
    now = time.time()
    pid = new_id()
    async with store.engine.begin() as conn:
        await conn.execute(
            individuals.insert().values(
                id=pid, iin=iin, surname=names[0], name=names[1], created_at=now, updated_at=now
            )
        )
        await conn.execute(
            numbers.insert(),
            [
                {"msisdn": n, "imsi": "", "status": "active", "contract_id": "", "person_id": pid}
                | {"created_at": now, "updated_at": now}
                for n in msisdns
            ],
        )


async def test_over_limit_report(registry: Registry, store: Store) -> None:
    """Holders above the limit from before the rule are reported."""
    await legacy(store, A, ("Абенов", "Ерлан"), [msisdn(i) for i in range(12)])
    await legacy(store, B, ("S", "A"), [msisdn(50 + i) for i in range(10)])
    await legacy(store, C, ("N", "A"), [msisdn(80 + i) for i in range(13)])
    over = await registry.over_limit()
    assert [(o.person.iin, o.count, o.limit) for o in over] == [(C, 13, 10), (A, 12, 10)]
    app = await registry.submit_application(
        C,
        purpose="sensors",
        requested_count=13,
        devices=[M2M],
        justification=NEED,
        declared_accurate=True,
    )
    await registry.approve_application(app.id, decided_by="sup-1")
    await registry.set_number_status(msisdn(0), "suspended")  # suspended still counts
    assert [(o.person.iin, o.count) for o in await registry.over_limit()] == [(A, 12)]


# -- import --------------------------------------------------------------------------------------


async def test_import_csv_report_and_idempotence(registry: Registry, store: Store) -> None:
    await registry.register_person(D, "Petrov", "Ivan")
    await registry.register_number(D, "77019999999")  # line 12 tries to give it to B
    report = await registry.import_file(DATA / "good_and_bad.csv", "csv")
    assert (report.read, report.inserted, report.updated, report.unchanged) == (11, 3, 0, 0)
    assert report.complete and report.lines_done == 12
    assert report.rejected == [
        (5, "IIN 9001******18: bad check digit"),
        (6, "duplicate msisdn in file (first on line 2)"),
        (7, "missing surname"),
        (8, "bad contract_date '2024-02-30': expected YYYY-MM-DD or DD.MM.YYYY"),
        (9, "duplicate msisdn in file (first on line 4)"),
        (10, "msisdn ***: not a Kazakh mobile number"),
        (11, "bad status 'closed': expected active, suspended or terminated"),
        (12, "msisdn 7701***9999: already registered to another individual"),
    ]
    found = await registry.subscriber_of("77010000002")
    assert found is not None
    person, held = found
    assert (person.iin, person.surname, person.patronymic) == (A, "Абенов", "Серікұлы")
    assert [(n.msisdn, n.status, n.contract_date) for n in held] == [
        ("77010000001", "active", dt.date(2024, 3, 1)),
        ("77010000002", "suspended", dt.date(2024, 4, 1)),
    ]
    # C's rows were all rejected: C was not created (nothing half-written for a rejected row)
    assert await registry.find_by_iin(C) is None
    assert await count(store, individuals) == 3 and await count(store, numbers) == 4

    again = await registry.import_file(DATA / "good_and_bad.csv", "csv")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert again.rejected == report.rejected
    assert await count(store, numbers) == 4


async def test_import_json_lines_and_array(registry: Registry, store: Store) -> None:
    lines = await registry.import_file(DATA / "good_and_bad.jsonl", "json")
    assert (lines.inserted, lines.updated, lines.unchanged) == (3, 0, 0)
    assert lines.rejected == [
        (4, "missing name"),
        (5, "not valid JSON: Expecting property name enclosed in double quotes"),
        (7, "not a JSON object"),
        (8, "duplicate msisdn in file (first on line 1)"),
        (9, "IIN 8212******92: no valid check digit exists"),
    ]
    array = await registry.import_file(DATA / "array.json", "json")
    assert (array.inserted, array.read) == (2, 4)
    assert array.rejected == [
        (7, "duplicate msisdn in file (first on line 2)"),
        (8, "bad contract_date '15/01/2025': expected YYYY-MM-DD or DD.MM.YYYY"),
    ]
    found = await registry.subscriber_of("77470000001")
    assert found is not None and found[0].patronymic == "Асқарұлы"
    assert [(n.status, n.imsi, n.registered) for n in found[1]] == [
        ("active", "401770000000001", True),
        ("terminated", "", False),
    ]
    again = await registry.import_file(DATA / "array.json", "json")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)


async def test_import_counts_updates(registry: Registry) -> None:
    base = {"iin": A, "surname": "Абенов", "name": "Ерлан", "msisdn": "77011234567"}
    await registry.import_stream([(2, base), (3, {**base, "msisdn": "77011234568"})])
    report = await registry.import_stream(
        [
            (2, {**base, "surname": "Әбенов"}),  # the holder renamed: this row counts updated
            (3, {**base, "surname": "Әбенов", "msisdn": "77011234568", "status": "suspended"}),
        ]
    )
    assert (report.inserted, report.updated, report.unchanged) == (0, 2, 0)
    found = await registry.subscriber_of("77011234568")
    assert found is not None and found[0].surname == "Әбенов"
    assert found[1][1].status == "suspended"


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["iin", "surname", "name", "patronymic", "msisdn", "contract_date"])
        for i in range(rows):
            out.writerow([make_iin(i // 5), "Тестов", "Тест", "", msisdn(i, "7705"), "2024-01-01"])


async def test_large_import_in_bounded_memory(
    registry: Registry, store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "big.csv"
    write_csv(path, 50_000)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        report = await registry.import_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    print(f"{store.dialect}: 50k rows in {elapsed:.1f} s (traced), peak {peak / 2**20:.1f} MiB")
    assert (report.inserted, report.rejected_count) == (50_000, 0)
    assert await count(store, numbers) == 50_000 and await count(store, individuals) == 10_000
    assert peak < 16 * 2**20  # the file is ~3 MiB; a batch holds 500 rows
    assert elapsed < 120


async def test_database_stopped_mid_import(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    async def rows() -> AsyncIterator[SourceRow]:
        for i in range(3000):
            if i == 1700:
                postgres_server.stop()  # during the 4th batch (rows 1500-1999)
            yield i + 2, {"iin": make_iin(i // 5), "surname": "S", "name": "N", "msisdn": msisdn(i)}

    st = await Store.open(postgres_url)
    try:
        await st.migrate()
        with pytest.raises(ImportInterrupted) as info:
            await Registry(st, batch_size=500).import_stream(rows())
        assert isinstance(info.value, StoreError)
        assert isinstance(info.value.__cause__, StoreUnavailable)
        report = info.value.report
        assert (report.inserted, report.lines_done, report.complete) == (1500, 1501, False)
        postgres_server.start()
        assert await count(st, numbers) == 1500 and await count(st, individuals) == 300
    finally:
        postgres_server.start()
        await st.close()


# -- command line --------------------------------------------------------------------------------


def test_cli_import_over_limit_and_check(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registrar, analyst = caller(tmp_path, "registrar"), caller(tmp_path, "analyst")
    bad = DATA / "good_and_bad.csv"
    assert main(["registry", "import", str(bad), "--db", db_url]) == 2  # who imports?
    assert "unknown caller" in capsys.readouterr().err
    assert main(["registry", "import", str(bad), "--db", db_url, *registrar]) == 1
    out = capsys.readouterr().out
    assert "read 11, inserted 4, updated 0, unchanged 0, rejected 7 (complete)" in out
    assert "line 5: IIN 9001******18: bad check digit" in out and "900101300018" not in out

    big = tmp_path / "eleven.jsonl"
    with big.open("w") as f:
        for i in range(11):
            f.write(
                json.dumps(
                    {"iin": C, "surname": "Нұрланова", "name": "Айгүл", "msisdn": msisdn(100 + i)}
                )
                + "\n"
            )
    assert main(["registry", "import", str(big), "--db", db_url, "--json", *registrar]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["inserted"], report["rejected_count"]) == (10, 1)
    assert report["rejected"] == [
        {"line": 11, "reason": "IIN 0007******13: 10 of 10 numbers registered: more need an "
         "approved application (55-2, 55-3)"}
    ]  # fmt: skip

    async def over() -> None:
        async with await Store.open(db_url) as st:
            await legacy(st, D, ("Нұрланова", "Айгүл"), [msisdn(200 + i) for i in range(11)])

    asyncio.run(over())
    assert main(["registry", "over-limit", "--db", db_url]) == 1
    out = capsys.readouterr().out
    assert "0512******17 Н. А.: 11 numbers, limit 10" in out and D not in out
    assert "Нұрланова" not in out
    assert main(["registry", "over-limit", "--db", db_url, "--show-personal-data"]) == 2
    assert "unknown caller" in capsys.readouterr().err  # no token, OS user not in [cli.users]
    shown = ["--json", "--show-personal-data", *caller(tmp_path, "supervisor")]
    assert main(["registry", "over-limit", "--db", db_url, *shown]) == 1
    [row] = json.loads(capsys.readouterr().out)
    assert (row["iin"], row["surname"], row["count"], row["limit"]) == (D, "Нұрланова", 11, 10)

    assert main(["registry", "check", C, "--db", db_url, *analyst]) == 1
    out = capsys.readouterr().out
    assert out.startswith("IIN 0007******13: a new number is refused: 10 of 10") and C not in out
    assert main(["registry", "check", A, "--db", db_url, "--json", *analyst]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 2
    assert main(["registry", "check", "900101300018", "--db", db_url, *analyst]) == 2
    err = capsys.readouterr().err
    assert "9001******18: bad check digit" in err and "900101300018" not in err


def test_cli_uses_the_config_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "var"}"\n')
    analyst = caller(tmp_path, "analyst")  # its config: data_dir = tmp_path / "var"
    assert main(["registry", "check", A, *analyst]) == 0
    assert "allowed: no numbers registered" in capsys.readouterr().out
    assert any((tmp_path / "var").iterdir())
    config.write_text("[gateway]\nno_such_key = 1\n")
    assert main(["registry", "over-limit", "-c", str(config)]) == 2
    assert "configuration error" in capsys.readouterr().err
    assert (
        main(
            [
                "registry",
                "import",
                str(tmp_path / "missing.csv"),
                "--db",
                sqlite_url(tmp_path),
                *caller(tmp_path, "registrar"),
            ]
        )
        == 2
    )


def test_help_says_output_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["registry", "over-limit", "--help"])
    assert "masked by" in capsys.readouterr().out


async def test_reader_handles_chunk_boundaries(tmp_path: Path, registry: Registry) -> None:
    """A JSON array longer than the reader's 64 KiB chunk, records cut at every boundary."""
    path = tmp_path / "a.json"
    rows = [
        {
            "iin": make_iin(i),
            "surname": "Ш" * (i % 90 + 1),
            "name": "N",
            "msisdn": msisdn(i, "7707"),
        }
        for i in range(3000)
    ]
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    report = await registry.import_file(path, "json")
    assert (report.inserted, report.rejected) == (3000, [])
