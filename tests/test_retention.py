"""Retention of personal data (issue 14 item 11, docs/retention.md), on SQLite and PostgreSQL:
rows past their period lose their personal data, younger rows and reports the centre has not
acknowledged are untouched, and what remains still says who decided what, when (R7, R8)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.api.audit import AuditLog
from gateway.api.auth import Principal, Role
from gateway.api.complaints import Complaints
from gateway.api.schemas import ComplaintIn
from gateway.cases import Actor, Cases, Evidence
from gateway.centre import CentreOutbox, CentreReports
from gateway.centre.endpoint import InboundReport, StoreJournal
from gateway.cli import main as cli_main
from gateway.config import from_toml, load
from gateway.config_check import ConfigError
from gateway.daemon import Gateway
from gateway.registry import Registry
from gateway.retention.purge import Retention
from gateway.retention.settings import RetentionConfigError, RetentionSettings
from gateway.store import Store
from gateway.store.models_api import api_audit, helpline_complaints
from gateway.store.models_centre import centre_inbound
from gateway.switch.port import NoSwitch
from gateway.workdays import KzCalendar

DAY = 86400.0
T0 = 1_763_100_000.0  # 2025-11-14, a Friday
IIN = "900101300017"  # synthetic (shared/domain/KAZAKHSTAN.md)
CONTRACT = dt.date(2020, 1, 1)  # the numbers are held since: the facts of the cases are later
SURNAME = "Testova"
MINE = ["+77011234567", "+77051234567"]
CALLER = "+77021112233"
ANALYST = Actor("u-analyst", "analyst")
HELPLINE = Principal("u-helpline", Role.HELPLINE)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def world(store: Store) -> tuple[Cases, Clock]:
    clock = Clock(T0 - 30 * DAY)  # the numbers were registered before the facts
    registry = Registry(store, clock=clock)
    await registry.register_person(IIN, SURNAME, "Aigerim", "Serikovna")
    for n in MINE:
        await registry.register_number(IIN, n, contract_date=CONTRACT)
    cases = Cases(
        store, KzCalendar(), switch=NoSwitch(), registry=registry,
        reports=CentreOutbox("test-operator", clock=clock), clock=clock,
    )  # fmt: skip
    return cases, clock


async def confirmed_case(cases: Cases, clock: Clock, at: float) -> str:
    clock.t = at
    view = await cases.open(
        source="complaint", numbers=[MINE[0]], received_at=at, evidence=[Evidence("sms", "m-1")]
    )
    await cases.start_verification(view.id, ANALYST, "checking")
    await cases.confirm(view.id, ANALYST, "smishing confirmed")
    return view.id


async def reports_of(store: Store, case_id: str) -> list[dict[str, Any]]:
    return [r for r in await CentreReports(store).all() if r["case_id"] == case_id]


# -- centre reports -------------------------------------------------------------------------------


async def test_report_payloads_erased_after_acknowledgement_only(
    store: Store, world: tuple[Cases, Clock]
) -> None:
    cases, clock = world
    old = await confirmed_case(cases, clock, T0)
    young = await confirmed_case(cases, clock, T0 + 1)
    waiting = await confirmed_case(cases, clock, T0 + 2)  # never acknowledged
    refused = await confirmed_case(cases, clock, T0 + 3)  # refused, nobody acted on it yet
    outbox = CentreReports(store)
    for r in await reports_of(store, old):
        await outbox.mark_acked(r["id"], f"ack-{r['id']}", T0 + DAY)
    for r in await reports_of(store, young):
        await outbox.mark_acked(r["id"], "ack-young", T0 + 300 * DAY)
    for r in await reports_of(store, refused):
        await outbox.mark_failed(r["id"], "422 invalid", permanent=True, now=T0 + DAY)
    before = {c: await reports_of(store, c) for c in (old, young, waiting, refused)}
    assert all(IIN in json.dumps(r["payload"]) for r in before[old])

    now = T0 + DAY + 366 * DAY  # the default 365 days after the old acknowledgement
    retention = Retention(store, RetentionSettings(), chunk=1)  # chunking exercised
    dry = await retention.run(now, dry_run=True)
    assert await reports_of(store, old) == before[old]  # a dry run changes nothing
    done = await retention.run(now)
    assert done.centre_reports == dry.centre_reports == len(before[old]) >= 1

    for r in await reports_of(store, old):
        text = json.dumps(r["payload"], ensure_ascii=False)
        assert IIN not in text and SURNAME not in text and "Aigerim" not in text
        assert not any(n in text or n[1:] in text for n in MINE)
        was = next(b for b in before[old] if b["id"] == r["id"])
        assert {k: v for k, v in r.items() if k != "payload"} == {
            k: v for k, v in was.items() if k != "payload"
        }  # ack, times, attempts: untouched
        p = r["payload"]
        assert (p["report_id"], p["case_id"], p["kind"]) == (r["id"], old, r["kind"])
        assert p["number_count"] == len(was["payload"]["numbers"])
        assert p["created_at"] == was["payload"]["created_at"] and p["erased_at"]
        if was["payload"].get("subscriber"):
            assert p["subscriber_number_count"] == len(MINE)
    for case_id in (young, waiting, refused):
        assert await reports_of(store, case_id) == before[case_id], case_id
    assert (await retention.run(now + DAY)).total == 0  # erased once


async def test_who_decided_what_when_survives(store: Store, world: tuple[Cases, Clock]) -> None:
    cases, clock = world
    case_id = await confirmed_case(cases, clock, T0)
    for r in await reports_of(store, case_id):
        await CentreReports(store).mark_acked(r["id"], "ack", T0 + DAY)
    await Retention(store, RetentionSettings()).run(T0 + 2000 * DAY)
    view = await cases.get(case_id)
    trail = [(t.action, t.actor, t.role, t.at, t.reason) for t in view.transitions]
    assert (
        trail[1:]
        == [
            ("start_verification", "u-analyst", "analyst", T0, "checking"),
            ("confirm", "u-analyst", "analyst", T0, "smishing confirmed"),
        ][: len(trail) - 1]
    )
    assert view.decided_at == T0 and view.numbers == (MINE[0],)
    reports = await reports_of(store, case_id)
    assert reports and all(r["acked_at"] == T0 + DAY for r in reports)
    assert all(r["payload"]["kind"] == r["kind"] for r in reports)


# -- help-line complaints and the centre's reports ------------------------------------------------


async def complaint(cases: Cases, store: Store, clock: Clock, at: float, words: str) -> str:
    clock.t = at
    body = ComplaintIn(caller_number=CALLER, suspicious_number=MINE[0], description=words)
    _, case = await Complaints(cases, store, clock=clock).take(body, HELPLINE)
    return case.id


async def complaint_rows(store: Store) -> dict[str, dict[str, Any]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(sa.select(helpline_complaints))
        return {r.case_id: dict(r._mapping) for r in rows}


async def test_complaints_erased_once_their_case_is_settled(
    store: Store, world: tuple[Cases, Clock]
) -> None:
    cases, clock = world
    still_new = await complaint(cases, store, clock, T0, "an SMS asked for my code")
    rejected = await complaint(cases, store, clock, T0, "Асқар called me about a prize")
    late = await complaint(cases, store, clock, T0, "a call from a bank")  # decided late
    young = await complaint(cases, store, clock, T0 + 300 * DAY, "a call about a parcel")
    for case_id, decided in ((rejected, T0 + DAY), (late, T0 + 300 * DAY), (young, T0 + 301 * DAY)):
        clock.t = decided
        await cases.start_verification(case_id, ANALYST, "checking")
        await cases.reject(case_id, ANALYST, "no signs of fraud")
    before = await complaint_rows(store)

    report = await Retention(store, RetentionSettings()).run(T0 + 400 * DAY)
    after = await complaint_rows(store)
    assert report.complaints == 1
    erased = after[rejected]
    assert (erased["caller"], erased["description"]) == ("", "")
    kept = ("id", "received_at", "recorded_at", "suspect", "taken_by", "case_id")
    assert {k: erased[k] for k in kept} == {k: before[rejected][k] for k in kept}
    assert after[still_new] == before[still_new]  # its case is still being worked on
    assert after[late] == before[late]  # the period runs from the case's last change
    assert after[young] == before[young]


async def test_centre_inbound_payload_erased_after_the_case(
    store: Store, world: tuple[Cases, Clock]
) -> None:
    cases, _ = world
    journal = StoreJournal(store)
    ids = {}
    for ref in ("nb-1", "nb-2"):
        doc = {
            "schema_version": 1, "report_id": ref, "numbers": MINE, "category": "smishing",
            "description": f"{SURNAME} reported", "reported_at": "2025-11-14T05:00:00Z",
        }  # fmt: skip
        report = InboundReport.from_document(doc, T0)
        ids[ref] = await cases.open_from_centre(report)
        await journal.record(report, ids[ref], doc)
    await cases.start_verification(ids["nb-1"], ANALYST, "checking")
    await cases.reject(ids["nb-1"], ANALYST, "not confirmed")

    assert (await Retention(store, RetentionSettings()).run(T0 + 366 * DAY)).centre_inbound == 1
    async with store.engine.connect() as conn:
        rows = {r.report_id: r for r in await conn.execute(sa.select(centre_inbound))}
    p = rows["nb-1"].payload
    assert SURNAME not in json.dumps(p) and MINE[0] not in json.dumps(p)
    assert (p["report_id"], p["category"], p["number_count"]) == ("nb-1", "smishing", 2)
    assert rows["nb-1"].case_id == ids["nb-1"] and rows["nb-1"].received_at == T0
    assert rows["nb-2"].payload["numbers"] == MINE  # its case is still new


# -- the audit log --------------------------------------------------------------------------------


async def test_audit_rows_older_than_the_period_are_deleted(store: Store) -> None:
    clock = Clock(T0)
    audit = AuditLog(store, clock=clock)
    who = Principal("u-auditor", Role.AUDITOR)
    for at in (T0, T0 + DAY, T0 + 2 * DAY, T0 + 800 * DAY):
        clock.t = at
        await audit.record(who, "case.read", "case", "c-1", personal_data=False, client="")
    now = T0 + 3 * DAY + 1095 * DAY  # the default 3 years after the third row
    report = await Retention(store, RetentionSettings(), chunk=2).run(now)
    assert report.audit_deleted == 3
    async with store.engine.connect() as conn:
        left = (await conn.execute(sa.select(api_audit.c.at))).scalars().all()
    assert left == [T0 + 800 * DAY]


# -- configuration and the command ----------------------------------------------------------------


def test_config_defaults_and_minimums() -> None:
    cfg = from_toml({})
    assert cfg.retention == RetentionSettings(365.0, 365.0, 365.0, 1095.0)
    cfg = from_toml({"retention": {"complaints_days": 90, "audit_days": 3650}})
    assert (cfg.retention.complaints_days, cfg.retention.audit_days) == (90.0, 3650.0)
    for key, days in [
        ("centre_reports_days", 89),
        ("centre_inbound_days", 30),
        ("complaints_days", 0),
        ("audit_days", 364),
    ]:
        with pytest.raises(RetentionConfigError, match=rf"^retention\.{key}: .* below the minimum"):
            from_toml({"retention": {key: days}})
    with pytest.raises(ConfigError, match=r"below the minimum .* FRAUDGATE_RETENTION__AUDIT_DAYS"):
        load(None, {"FRAUDGATE_RETENTION__AUDIT_DAYS": "30"})
    with pytest.raises(RetentionConfigError):
        RetentionSettings(audit_days=10)
    with pytest.raises(ConfigError, match=r"retention\.messages_days: unknown key"):
        from_toml({"retention": {"messages_days": 400}})


def test_the_command_counts_then_erases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    config = tmp_path / "fraudgate.toml"
    config.write_text(f'[gateway]\ndata_dir = "{data}"\n[retention]\naudit_days = 365\n')

    url = load(config).database_url  # the file the command opens

    async def seed() -> None:
        async with await Store.open(url) as st:
            await st.migrate()
            audit = AuditLog(st, clock=lambda: 1_000_000.0)  # 1970: long past
            who = Principal("u-a", Role.ANALYST)
            await audit.record(who, "case.read", "case", "c", personal_data=True, client="")

    async def count() -> int:
        async with await Store.open(url) as st, st.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(api_audit)
            return int((await conn.execute(query)).scalar_one())

    asyncio.run(seed())
    assert cli_main(["retention", "-c", str(config), "run", "--dry-run"]) == 0
    assert "audit rows would be deleted: 1" in capsys.readouterr().out
    assert asyncio.run(count()) == 1
    assert cli_main(["retention", "-c", str(config), "run"]) == 0
    assert "audit rows deleted: 1" in capsys.readouterr().out
    assert asyncio.run(count()) == 0
    config.write_text(f'[gateway]\ndata_dir = "{data}"\n[retention]\naudit_days = 30\n')
    assert cli_main(["retention", "-c", str(config), "run"]) == 2
    assert "below the minimum" in capsys.readouterr().err


async def test_the_daemon_housekeeping_runs_it(store: Store, tmp_path: Path) -> None:
    audit = AuditLog(store, clock=lambda: 1_000_000.0)  # 1970: long past any period
    await audit.record(Principal("u-a", Role.ANALYST), "case.read", "case", "c",
                       personal_data=True, client="")  # fmt: skip
    gateway = Gateway(from_toml({"gateway": {"data_dir": str(tmp_path)}}))
    gateway.retention = Retention(store, gateway.cfg.retention)  # as run() sets it
    task = asyncio.create_task(gateway._housekeeping(store))
    try:
        for _ in range(100):
            async with store.engine.connect() as conn:
                left = (await conn.execute(sa.select(sa.func.count(api_audit.c.id)))).scalar()
            if left == 0:
                break
            await asyncio.sleep(0.05)
        assert left == 0
    finally:
        task.cancel()
