"""`fraudgate registry person|number|application ...` through the real CLI entry (gateway.cli.main)
on a SQLite file and the session's PostgreSQL: callers resolved from API tokens, permissions as
in the API, every write and every unmasked print audited first (R7, R8)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers.cli import caller

from gateway.cli import main
from gateway.config import load
from gateway.config_check import ConfigError
from gateway.store import Store
from gateway.store.models_api import api_audit

A = "900101300017"
IMEI = "490154203237518"


def audit_rows(db_url: str) -> list[tuple[str, str, str, bool, str]]:
    async def read() -> list[tuple[str, str, str, bool, str]]:
        t = api_audit.c
        async with await Store.open(db_url) as st, st.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(t.user_id, t.role, t.action, t.personal_data, t.client).order_by(
                    t.at, t.id
                )
            )
            return [tuple(r) for r in rows]

    return asyncio.run(read())


class Cli:
    def __init__(self, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.db = db_url
        self.tmp = tmp_path
        self.capsys = capsys

    def __call__(self, role: str, *words: str) -> tuple[int, str, str]:
        code = main(["registry", *words, "--db", self.db, *caller(self.tmp, role)])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, tmp_path, capsys)


def submit(*extra: str) -> list[str]:
    return [
        "--purpose", "fleet of trackers", "--count", "12",
        "--device", f"imei:{IMEI}:router in van 1", "--device", "m2m:TRK-0002:tracker",
        "--justification", "logistics contract", "--evidence", "contract No. 7 attached",
        *extra,
    ]  # fmt: skip


def test_person_and_numbers_up_to_the_limit(cli: Cli, db_url: str) -> None:
    code, out, _ = cli("registrar", "person", "add", A, "--surname", "Абенов", "--name", "Ерлан")
    assert code == 0 and "9001******17" in out and A not in out
    for i in range(10):
        words = ["--iin", A, "--contract-id", f"C-{i}", "--contract-date", "2025-01-10"]
        code, out, err = cli("registrar", "number", "add", f"7701000000{i}", *words)
        assert code == 0, err
    assert "7701***0009 registered to IIN 9001******17 (active)" in out
    code, out, _ = cli("registrar", "number", "add", "77010000010", "--iin", A,
                       "--contract-id", "C-10", "--json")  # fmt: skip
    assert code == 1
    answer = json.loads(out)
    assert answer["registered"] is False
    assert answer["reason"].startswith("IIN 9001******17: 10 of 10 numbers registered")
    code, out, _ = cli("registrar", "number", "terminate", "+7 701 000 00 03")
    assert (code, out.strip()) == (0, "7701***0003 terminated")
    code, _, _ = cli("registrar", "number", "add", "77010000010", "--iin", A, "--contract-id", "x")
    assert code == 0
    # an analyst may not register (the API's table): refused before anything is written
    code, _, err = cli("analyst", "person", "add", A, "--surname", "X", "--name", "Y")
    assert code == 1 and "registry:write" in err

    rows = audit_rows(db_url)
    assert [r[2] for r in rows[:2]] == ["registry.person.add", "registry.number.add"]
    assert "registry.number.refused" in [r[2] for r in rows]
    assert all(r[:2] == ("u-registrar", "registrar") and r[4].startswith("cli:") for r in rows)
    assert len(rows) == 1 + 10 + 1 + 1 + 1


def test_applications_from_submission_to_decision(cli: Cli, db_url: str) -> None:
    assert cli("registrar", "person", "add", A, "--surname", "Абенов", "--name", "Ерлан")[0] == 0
    code, _, err = cli("registrar", "application", "submit", "--iin", A, *submit())
    assert code == 2 and "declared_accurate" in err  # 55-3: the declaration is required
    code, out, err = cli("registrar", "application", "submit", "--iin", A,
                         *submit("--declare-accurate", "--json"))  # fmt: skip
    assert code == 0, err
    first = json.loads(out)
    assert (first["status"], first["iin"], first["devices"]) == ("submitted", "9001******17", 2)
    assert first["decide_by"] and "purpose" not in first

    code, _, err = cli("registrar", "application", "approve", first["id"])
    assert code == 1 and "registry:decide" in err
    code, _, err = cli("supervisor", "application", "refuse", first["id"], "--reason", " ")
    assert code == 2 and "missing reason" in err
    code, out, _ = cli("supervisor", "application", "refuse", first["id"],
                       "--reason", "one router for 12 numbers", "--json")  # fmt: skip
    refused = json.loads(out)
    assert (refused["status"], refused["decided_by"]) == ("refused", "u-supervisor")
    assert refused["refusal_reason"] == "one router for 12 numbers"

    code, out, err = cli("registrar", "application", "reapply", first["id"],
                         *submit("--declare-accurate", "--json"))  # fmt: skip
    assert code == 0, err
    second = json.loads(out)
    assert second["previous_application_id"] == first["id"]
    code, out, _ = cli("supervisor", "application", "approve", second["id"])
    assert code == 0 and "status: approved" in out and "decided_by: u-supervisor" in out

    code, out, _ = cli("registrar", "application", "list", "--json")
    assert [a["id"] for a in json.loads(out)] == [second["id"], first["id"]]
    code, out, _ = cli("registrar", "application", "list", "--overdue")
    assert out.strip() == "0 application(s)"
    code, out, _ = cli("supervisor", "application", "show", second["id"],
                       "--show-personal-data", "--json")  # fmt: skip
    shown = json.loads(out)
    assert shown["iin"] == A and shown["justification"].startswith("logistics contract")
    assert "Evidence: contract No. 7 attached" in shown["justification"]
    actions = [(r[0], r[2], r[3]) for r in audit_rows(db_url)]
    assert ("u-supervisor", "registry.application.refuse", False) in actions
    assert ("u-supervisor", "registry.application.approve", False) in actions
    assert actions[-1] == ("u-supervisor", "registry.application.read", True)


def test_personal_data_is_printed_only_after_its_audit_row(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """over-limit --show-personal-data: audited first; no audit row, nothing printed whole."""
    assert cli("registrar", "person", "add", A, "--surname", "Абенов", "--name", "Ерлан")[0] == 0
    for i in range(10):
        assert cli("registrar", "number", "add", f"7701000000{i}", "--iin", A,
                   "--contract-id", "c")[0] == 0  # fmt: skip

    async def legacy_excess() -> None:  # an 11th number from before the rule
        async with await Store.open(db_url) as st, st.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO numbers (msisdn, imsi, status, contract_id, person_id, "
                    "created_at, updated_at) SELECT '77010000099', '', 'active', '', id, 1, 1 "
                    "FROM individuals"
                )
            )

    asyncio.run(legacy_excess())
    code, _, err = cli("registrar", "over-limit", "--show-personal-data")
    assert code == 1 and "personal_data" in err  # a registrar may not see it whole
    code, out, _ = cli("analyst", "over-limit", "--show-personal-data")
    assert code == 1 and f"{A} Абенов Ерлан" in out
    assert audit_rows(db_url)[-1][:4] == ("u-analyst", "analyst", "registry.over_limit", True)
    code, out, _ = cli("analyst", "check", A, "--show-personal-data")
    assert code == 1 and out.startswith(f"IIN {A}: a new number is refused")
    assert audit_rows(db_url)[-1][2:4] == ("registry.check", True)

    async def break_audit() -> None:
        async with await Store.open(db_url) as st, st.engine.begin() as conn:
            await conn.execute(sa.text("DROP TABLE api_audit"))

    asyncio.run(break_audit())
    code, out, err = cli("analyst", "over-limit", "--show-personal-data")
    assert (code == 2 and out == "" and "api_audit" in err) or "audit" in err
    assert A not in out + err and "Абенов" not in out + err
    code, out, _ = cli("analyst", "check", A, "--show-personal-data")
    assert code == 2 and A not in out
    code, out, _ = cli("analyst", "over-limit")  # masked: no audit needed, printed as before
    assert code == 1 and "9001******17 А. Е.: 11 numbers, limit 10" in out


def test_registry_section_of_the_configuration(tmp_path: Path) -> None:
    """[registry] application_decision_days: the 55-4 time limit, in working days."""
    config = tmp_path / "gw.toml"
    config.write_text("[registry]\napplication_decision_days = 20\n")
    assert load(config).registry.application_decision_days == 20
    assert load(None, {}).registry.application_decision_days == 15
    for bad in ("0", '"15"'):
        config.write_text(f"[registry]\napplication_decision_days = {bad}\n")
        with pytest.raises(ConfigError, match=r"registry\.application_decision_days"):
            load(config)
    config.write_text("[registry]\ndecision_days = 3\n")
    with pytest.raises(ConfigError, match=r"registry\.decision_days: unknown key"):
        load(config)
