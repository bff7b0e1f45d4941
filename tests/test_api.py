"""The analyst / help-line / supervisor / auditor API (R4, R5, R7, R8) over real Cases on a real
SQLite store, the real registry and the simulated switch on a loopback port."""

from __future__ import annotations

import datetime as dt
import json
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from gateway.api import (
    ApiConfig,
    ApiConfigError,
    ApiServer,
    Role,
    TokenConfigError,
    TokenTable,
    build_api,
    hash_token,
)
from gateway.api.audit import AuditEntry, AuditLog
from gateway.api.openapi import render
from gateway.cases import Actor, Cases, Evidence, State
from gateway.centre import CentreOutbox
from gateway.registry import Registry
from gateway.store import Store, StoreUnavailable, sqlite_url
from gateway.store.models import alerts
from gateway.store.models_api import api_audit, helpline_complaints
from gateway.store.models_cases import case_transitions
from gateway.store.models_centre import centre_reports
from gateway.switch.port import HttpSwitch
from gateway.workdays import KzCalendar
from simulators.switch import SwitchSimulator

OPENAPI = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"
ALMATY = ZoneInfo("Asia/Almaty")
FRIDAY = dt.datetime(2025, 11, 14, 10, 0, tzinfo=ALMATY).timestamp()
TUESDAY_END = dt.datetime(2025, 11, 18, 23, 59, 59, 999_000, tzinfo=ALMATY).timestamp()
IIN = "900101300017"  # synthetic (docs: KAZAKHSTAN.md)
CONTRACT = dt.date(2020, 1, 1)  # the numbers are held since: the facts of the cases are later
SURNAME, NAME, PATRONYMIC = "Testova", "Aigerim", "Serikovna"
MINE = ["+77011234567", "+77051234567", "+77071234567"]  # all registered to IIN
OTHER = "+77781234567"  # not in the registry
TOKENS = {role: f"secret-{role.value}-token" for role in Role}
USERS = {role: f"u-{role.value}" for role in Role}


class Clock:
    """Stands still, or moves `step` seconds after each reading (audit rows in order)."""

    def __init__(self, t: float, step: float = 0.0) -> None:
        self.t = t
        self.step = step

    def __call__(self) -> float:
        self.t += self.step
        return self.t - self.step


def auth(role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(sqlite_url(tmp_path / "data")) as st:
        await st.migrate()
        yield st


@pytest.fixture
async def sim() -> AsyncIterator[SwitchSimulator]:
    async with SwitchSimulator(token="tok", known={*MINE, OTHER}) as s:
        yield s


@pytest.fixture
async def registry(store: Store) -> Registry:
    reg = Registry(store)
    await reg.register_person(IIN, SURNAME, NAME, PATRONYMIC)
    for n in MINE:
        await reg.register_number(IIN, n, contract_date=CONTRACT)
    return reg


@pytest.fixture
async def cases(store: Store, sim: SwitchSimulator, registry: Registry) -> AsyncIterator[Cases]:
    async with HttpSwitch(sim.url, "tok", timeout=2.0) as switch:
        yield Cases(
            store,
            KzCalendar(),
            switch=switch,
            registry=registry,
            reports=CentreOutbox("test-operator"),
            clock=Clock(FRIDAY),
        )


@pytest.fixture
def app(cases: Cases, registry: Registry, store: Store) -> FastAPI:
    tokens = {hash_token(TOKENS[r]): (USERS[r], r.value) for r in Role}
    return build_api(cases, registry, store, tokens, clock=Clock(FRIDAY + 60, step=1.0))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app, client=("10.1.2.3", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


async def open_case(cases: Cases, number: str = MINE[0]) -> str:
    view = await cases.open(
        source="complaint",
        numbers=[number],
        received_at=FRIDAY,
        evidence=[Evidence("complaint", "cmp-1")],
    )
    return view.id


async def count(store: Store, table: sa.Table) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def audit_rows(store: Store) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        found = await conn.execute(sa.select(api_audit).order_by(api_audit.c.at, api_audit.c.id))
        return [dict(r._mapping) for r in found]


async def counts(store: Store) -> tuple[int, ...]:
    tables = (case_transitions, api_audit, alerts, centre_reports, helpline_complaints)
    return tuple([await count(store, t) for t in tables])


def complaint_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "caller_number": "+77021112233",
        "suspicious_number": "8 701 123 45 67",
        "description": "an SMS asked for my card's code",
        "received_at": "2025-11-14T09:30:00+05:00",
    }
    return body | over


# -- access control -------------------------------------------------------------------------

REASON = {"reason": "checked"}
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, set[Role]]] = [
    ("GET", "/v1/cases", None, {Role.ANALYST, Role.HELPLINE, Role.SUPERVISOR, Role.AUDITOR}),
    ("GET", "/v1/cases/nope", None, {Role.ANALYST, Role.HELPLINE, Role.SUPERVISOR, Role.AUDITOR}),
    *[
        ("POST", f"/v1/cases/nope/{a}", REASON, {Role.ANALYST, Role.SUPERVISOR})
        for a in ("start_verification", "confirm", "reject", "close", "reopen")
    ],
    ("POST", "/v1/cases/nope/unblock", REASON, {Role.SUPERVISOR}),
    ("POST", "/v1/complaints", complaint_body(), {Role.HELPLINE, Role.SUPERVISOR}),
    ("GET", f"/v1/subscribers/{OTHER}", None, {Role.ANALYST, Role.HELPLINE, Role.SUPERVISOR}),
    ("GET", "/v1/audit", None, {Role.AUDITOR, Role.SUPERVISOR}),
    ("POST", "/v1/messages/nope/feedback", {"verdict": "wrong", **REASON},
     {Role.ANALYST, Role.SUPERVISOR}),
    ("GET", "/v1/feedback", None, {Role.ANALYST, Role.SUPERVISOR}),
    ("DELETE", "/v1/feedback/nope", REASON, {Role.ANALYST, Role.SUPERVISOR}),
]  # fmt: skip


@pytest.mark.parametrize("role", list(Role))
async def test_role_matrix(client: httpx.AsyncClient, role: Role) -> None:
    wrong = []
    for method, path, body, allowed in ENDPOINTS:
        r = await client.request(method, path, json=body, headers=auth(role))
        ok = r.status_code not in (401, 403)
        if ok != (role in allowed) or (not ok and r.json() != {"error": "forbidden"}):
            wrong.append((method, path, r.status_code))
    assert wrong == []


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer ",
        "Bearer forged-token",
        f"Bearer {hash_token(TOKENS[Role.SUPERVISOR])}",  # the stored hash is not a token
        f"Basic {TOKENS[Role.SUPERVISOR]}",
        f"Bearer {TOKENS[Role.SUPERVISOR]}x",
    ],
)
async def test_missing_or_forged_token_is_401(
    client: httpx.AsyncClient, store: Store, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    for method, path, body, _allowed in ENDPOINTS:
        r = await client.request(method, path, json=body, headers=headers)
        assert (r.status_code, r.json()) == (401, {"error": "unauthorized"}), path
        assert r.headers["www-authenticate"] == "Bearer"
    assert await counts(store) == (0, 0, 0, 0, 0)


def test_token_table_takes_hashes_only() -> None:
    with pytest.raises(TokenConfigError, match=r"u-x.*SHA-256") as info:
        TokenTable({"plain-secret": ("u-x", "analyst")})
    assert "plain-secret" not in str(info.value)
    with pytest.raises(TokenConfigError, match="role 'root'"):
        TokenTable({hash_token("t"): ("u-x", "root")})
    table = TokenTable({hash_token("t").upper(): ("u-x", "auditor")})
    found = table.lookup("t")
    assert found is not None and (found.user_id, found.role) == ("u-x", Role.AUDITOR)
    assert table.lookup("T") is None


# -- subscribers: masking and audit (R7) -------------------------------------------------------


async def test_subscriber_unmasked_for_analyst_and_audited(
    client: httpx.AsyncClient, store: Store
) -> None:
    r = await client.get("/v1/subscribers/8 (701) 123-45-67", headers=auth(Role.ANALYST))
    assert r.status_code == 200
    doc = r.json()
    assert doc["masked"] is False
    person = doc["person"]
    assert (person["iin"], person["surname"], person["name"]) == (IIN, SURNAME, NAME)
    assert person["patronymic"] == PATRONYMIC and person["id"]
    assert [n["msisdn"] for n in doc["numbers"]] == MINE
    [row] = await audit_rows(store)
    assert row | {"id": ""} == {
        "id": "",
        "at": FRIDAY + 60,
        "user_id": USERS[Role.ANALYST],
        "role": "analyst",
        "action": "subscriber.read",
        "target_kind": "msisdn",
        "target": MINE[0],
        "personal_data": True,
        "client": "10.1.2.3",
    }


async def test_subscriber_masked_for_helpline(client: httpx.AsyncClient, store: Store) -> None:
    r = await client.get(f"/v1/subscribers/{MINE[1]}", headers=auth(Role.HELPLINE))
    assert r.status_code == 200
    doc = r.json()
    assert doc["masked"] is True
    assert doc["person"] == {
        "id": None,
        "surname": "T.",
        "name": NAME,
        "patronymic": None,
        "iin": "9001******17",
    }
    assert [n["msisdn"] for n in doc["numbers"]] == ["+7701***4567", "+7705***4567", "+7707***4567"]
    assert all(n["contract_date"] is None for n in doc["numbers"])
    for secret in (IIN, SURNAME, PATRONYMIC, *MINE, *(n.lstrip("+") for n in MINE)):
        assert secret not in r.text
    [row] = await audit_rows(store)
    assert (row["action"], row["personal_data"], row["role"]) == (
        "subscriber.read",
        False,
        "helpline",
    )


async def test_unknown_or_malformed_subscriber_is_404_and_audited(
    client: httpx.AsyncClient, store: Store
) -> None:
    for number in (OTHER, "12345", "not-a-number"):
        r = await client.get(f"/v1/subscribers/{number}", headers=auth(Role.SUPERVISOR))
        assert (r.status_code, r.json()) == (404, {"error": "not_found"})
    rows = [(r["action"], r["target"], r["personal_data"]) for r in await audit_rows(store)]
    # a miss is a look-up too; what is not a number at all is not kept (it may be an IIN)
    assert rows == [
        ("subscriber.read", OTHER, False),
        ("subscriber.read", "", False),
        ("subscriber.read", "", False),
    ]


async def test_audit_failure_withholds_personal_data(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*_a: Any, **_k: Any) -> None:
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(AuditLog, "record", down)
    r = await client.get(f"/v1/subscribers/{MINE[0]}", headers=auth(Role.ANALYST))
    assert (r.status_code, r.json()) == (503, {"error": "unavailable"})
    assert r.headers["retry-after"] == "5"
    assert IIN not in r.text and SURNAME not in r.text


# -- cases: masking per role --------------------------------------------------------------------


async def test_case_reads_masked_per_role(
    client: httpx.AsyncClient, cases: Cases, store: Store
) -> None:
    case_id = await open_case(cases)
    await cases.start_verification(case_id, Actor("u-a", "analyst"), f"caller of {MINE[0]}")
    r = await client.get(f"/v1/cases/{case_id}", headers=auth(Role.HELPLINE))
    assert r.status_code == 200
    doc = r.json()
    assert doc["numbers"] == ["+7701***4567"] and doc["person_id"] is None
    assert doc["state"] == "verifying" and doc["deadline"]["name"] == "verify_by"
    assert [t["reason"] for t in doc["transitions"]] == [None, None]
    assert doc["evidence"] == [{"kind": "complaint", "ref": "cmp-1", "at": doc["received_at"]}]
    assert MINE[0] not in r.text
    listed = await client.get("/v1/cases", headers=auth(Role.HELPLINE))
    assert [c["numbers"] for c in listed.json()] == [["+7701***4567"]]
    assert await audit_rows(store) == []  # nothing unmasked was sent

    full = await client.get(f"/v1/cases/{case_id}", headers=auth(Role.ANALYST))
    doc = full.json()
    assert doc["numbers"] == [MINE[0]] and doc["person_id"]
    assert doc["transitions"][1]["reason"] == f"caller of {MINE[0]}"
    listed = await client.get(
        "/v1/cases",
        params={"number": "87011234567", "state": "verifying"},
        headers=auth(Role.ANALYST),
    )
    assert [c["id"] for c in listed.json()] == [case_id]
    none = await client.get("/v1/cases", params={"state": "closed"}, headers=auth(Role.ANALYST))
    assert none.json() == []
    rows = [
        (r["action"], r["target_kind"], r["target"], r["personal_data"])
        for r in await audit_rows(store)
    ]
    assert rows == [
        ("case.read", "case", case_id, True),
        ("cases.read", "cases", MINE[0], True),
        ("cases.read", "cases", "", True),
    ]


async def test_unknown_case_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/cases/no-such-case", headers=auth(Role.ANALYST))
    assert (r.status_code, r.json()) == (404, {"error": "not_found"})


# -- decisions through the API move the real case (R5, R8) ---------------------------------------


async def test_confirm_through_the_api_suspends(
    client: httpx.AsyncClient, cases: Cases, store: Store, sim: SwitchSimulator
) -> None:
    case_id = await open_case(cases)
    r = await client.post(
        f"/v1/cases/{case_id}/start_verification",
        json={"reason": "reading the forwarded SMS"},
        headers=auth(Role.ANALYST),
    )
    assert (r.status_code, r.json()["state"]) == (200, "verifying")
    r = await client.post(
        f"/v1/cases/{case_id}/confirm", json={"reason": "  smishing  "}, headers=auth(Role.ANALYST)
    )
    assert r.status_code == 200
    doc = r.json()
    assert doc["state"] == "suspended" and doc["decision_reason"] == "smishing"
    # point 120: this subscriber number, not the holder's other numbers
    assert [a["msisdn"] for a in doc["switch_actions"]] == [MINE[0]]
    assert sim.state[MINE[0]] == "blocked" and MINE[1] not in sim.state
    view = await cases.get(case_id)
    trail = [(t.action, t.actor, t.role, t.reason) for t in view.transitions]
    assert trail[1:3] == [
        ("start_verification", USERS[Role.ANALYST], "analyst", "reading the forwarded SMS"),
        ("confirm", USERS[Role.ANALYST], "analyst", "smishing"),
    ]
    assert trail[3][0:3] == ("suspend", "system", "system")
    rows = [(r["action"], r["user_id"], r["target"]) for r in await audit_rows(store)]
    assert rows == [
        ("case.start_verification", USERS[Role.ANALYST], case_id),
        ("case.confirm", USERS[Role.ANALYST], case_id),
    ]


async def test_reject_close_reopen_and_unblock(
    client: httpx.AsyncClient, cases: Cases, store: Store, sim: SwitchSimulator
) -> None:
    a, s = auth(Role.ANALYST), auth(Role.SUPERVISOR)
    first = await open_case(cases, MINE[1])
    for action, state in [
        ("start_verification", "verifying"),
        ("reject", "not_confirmed"),
        ("close", "closed"),
        ("reopen", "reopened"),
    ]:
        r = await client.post(f"/v1/cases/{first}/{action}", json=REASON, headers=a)
        assert (r.status_code, r.json()["state"]) == (200, state), action
    second = await open_case(cases, MINE[2])
    for action in ("start_verification", "confirm"):
        await client.post(f"/v1/cases/{second}/{action}", json=REASON, headers=a)
    assert sim.state[MINE[2]] == "blocked"
    r = await client.post(f"/v1/cases/{second}/unblock", json=REASON, headers=a)
    assert r.status_code == 403
    r = await client.post(
        f"/v1/cases/{second}/unblock", json={"reason": "appeal upheld"}, headers=s
    )
    assert (r.status_code, r.json()["state"]) == (200, "unblocked")
    assert sim.state[MINE[2]] == "active"
    view = await cases.get(second)
    assert (view.transitions[-1].actor, view.transitions[-1].role) == (
        USERS[Role.SUPERVISOR],
        "supervisor",
    )
    actions = [r["action"] for r in await audit_rows(store)]
    assert actions.count("case.unblock") == 1 and actions.count("case.reopen") == 1
    assert len(actions) == 7


async def test_illegal_step_is_409_and_writes_nothing(
    client: httpx.AsyncClient, cases: Cases, store: Store, sim: SwitchSimulator
) -> None:
    case_id = await open_case(cases)
    before = await counts(store)
    r = await client.post(f"/v1/cases/{case_id}/confirm", json=REASON, headers=auth(Role.ANALYST))
    assert r.status_code == 409
    assert r.json() | {"detail": ""} == {
        "error": "illegal_transition",
        "state": "new",
        "action": "confirm",
        "detail": "",
    }
    r = await client.post(
        f"/v1/cases/{case_id}/unblock", json=REASON, headers=auth(Role.SUPERVISOR)
    )
    assert (r.status_code, r.json()["action"]) == (409, "unblock")
    assert await counts(store) == before
    assert (await cases.get(case_id)).state is State.NEW
    assert sim.requests == []


@pytest.mark.parametrize(
    "body",
    [{"reason": ""}, {"reason": "   "}, {}, {"reason": "x", "extra": 1}, {"reason": 5}, None],
)
async def test_a_decision_needs_a_reason(
    client: httpx.AsyncClient, cases: Cases, store: Store, body: dict[str, Any] | None
) -> None:
    case_id = await open_case(cases)
    before = await counts(store)
    r = await client.post(
        f"/v1/cases/{case_id}/start_verification", json=body, headers=auth(Role.ANALYST)
    )
    assert r.status_code == 422
    assert await counts(store) == before
    assert (await cases.get(case_id)).state is State.NEW


async def test_store_unavailable_is_503(
    client: httpx.AsyncClient, cases: Cases, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*_a: Any, **_k: Any) -> None:
        raise StoreUnavailable("connection refused")

    monkeypatch.setattr(cases, "list", down)
    r = await client.get("/v1/cases", headers=auth(Role.ANALYST))
    assert (r.status_code, r.json()) == (503, {"error": "unavailable"})


# -- help-line complaints (point 52 4), 119) ------------------------------------------------------


async def test_helpline_complaint_opens_a_case(
    client: httpx.AsyncClient, cases: Cases, store: Store
) -> None:
    r = await client.post("/v1/complaints", json=complaint_body(), headers=auth(Role.HELPLINE))
    assert r.status_code == 201
    doc = r.json()
    complaint_id, case_doc = doc["complaint_id"], doc["case"]
    assert (case_doc["source"], case_doc["state"]) == ("complaint", "new")
    assert case_doc["numbers"] == ["+7701***4567"] and case_doc["person_id"] is None
    assert "+77021112233" not in r.text and "card" not in r.text
    view = await cases.get(case_doc["id"])
    assert view.numbers == (MINE[0],) and view.person_id is not None
    # the legal clock is fraudgate's receipt; the caller's stated time (09:30, 1 h before the
    # API's clock) is kept beside it and flags the case
    stated = dt.datetime(2025, 11, 14, 9, 30, tzinfo=ALMATY).timestamp()
    assert FRIDAY + 60 <= view.received_at < FRIDAY + 70 and view.external_id == complaint_id
    assert view.flags == ("stated_time_differs",)
    assert [(e["kind"], e["ref"]) for e in view.evidence] == [("helpline", complaint_id)]
    opening = view.transitions[0]
    assert (opening.actor, opening.role) == (USERS[Role.HELPLINE], "helpline")
    async with store.engine.connect() as conn:
        row = (await conn.execute(sa.select(helpline_complaints))).one()
    assert (row.id, row.case_id, row.caller, row.suspect) == (
        complaint_id,
        view.id,
        "+77021112233",
        MINE[0],
    )
    assert row.taken_by == USERS[Role.HELPLINE]
    assert (row.received_at, row.stated_received_at) == (view.received_at, stated)
    [audit] = await audit_rows(store)
    assert (audit["action"], audit["target"], audit["personal_data"]) == (
        "complaint.create",
        view.id,
        False,
    )


async def test_a_callers_time_is_bounded_not_the_legal_clock(
    client: httpx.AsyncClient, cases: Cases
) -> None:
    """Item 3: a 2030 received_at gave a 2030 deadline and no alerts. Now the caller's time is
    bounded (422 naming the field) and never moves verify_by."""
    for field, value in [
        ("received_at", "2030-01-01T10:00:00+05:00"),
        ("received_at", "2025-09-01T10:00:00+05:00"),  # more than 30 days before the call
        ("incident_at", "2030-01-01T10:00:00+05:00"),
    ]:
        r = await client.post(
            "/v1/complaints", json=complaint_body(**{field: value}), headers=auth(Role.HELPLINE)
        )
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", field]
    assert await cases.list() == []  # nothing opened
    body = complaint_body(received_at="2025-11-14T10:00:30+05:00")  # the caller's clock: fine
    r = await client.post("/v1/complaints", json=body, headers=auth(Role.HELPLINE))
    view = await cases.get(r.json()["case"]["id"])
    assert view.flags == () and view.verify_by == TUESDAY_END


async def test_complaint_validation_does_not_echo_personal_data(
    client: httpx.AsyncClient, store: Store
) -> None:
    secret = f"{IIN} {SURNAME}"
    for body in (
        complaint_body(caller_number=secret),
        complaint_body(suspicious_number=secret),
        complaint_body(received_at="2025-11-14T09:30:00"),  # no time zone
        complaint_body(description=""),
        complaint_body(note=secret),
    ):
        r = await client.post("/v1/complaints", json=body, headers=auth(Role.HELPLINE))
        assert r.status_code == 422, body
        assert IIN not in r.text and SURNAME not in r.text
        assert all(set(d) == {"loc", "msg", "type"} for d in r.json()["detail"])
    assert await counts(store) == (0, 0, 0, 0, 0)


# -- the audit log -------------------------------------------------------------------------------


async def test_auditor_reads_the_audit_log_masked(client: httpx.AsyncClient) -> None:
    await client.get(f"/v1/subscribers/{MINE[0]}", headers=auth(Role.ANALYST))
    await client.get(f"/v1/subscribers/{MINE[1]}", headers=auth(Role.SUPERVISOR))
    r = await client.get("/v1/audit", params={"target": MINE[0]}, headers=auth(Role.AUDITOR))
    assert r.status_code == 200
    [entry] = r.json()
    assert entry["user_id"] == USERS[Role.ANALYST] and entry["target"] == "+7701***4567"
    assert entry["at"] == "2025-11-14T05:01:00.000Z" and entry["personal_data"] is True
    r = await client.get("/v1/audit", headers=auth(Role.AUDITOR))
    assert [e["action"] for e in r.json()] == ["audit.read", "subscriber.read", "subscriber.read"]
    assert MINE[0] not in r.text and MINE[1] not in r.text
    r = await client.get(
        "/v1/audit", params={"user_id": USERS[Role.SUPERVISOR]}, headers=auth(Role.AUDITOR)
    )
    assert [e["target"] for e in r.json()] == ["+7705***4567"]


async def test_audit_log_masks_numbers_in_every_target_kind(
    client: httpx.AsyncClient, cases: Cases
) -> None:
    """A case list filtered by a number (target kind `cases`), a feedback list filtered by an
    IIN typed as a message id, centre reports filtered by a number: the auditor sees none of
    them whole, and still finds the rows by the whole number; case ids stay whole."""
    case_id = await open_case(cases)
    a = auth(Role.ANALYST)
    assert (await client.get("/v1/cases", params={"number": MINE[0]}, headers=a)).json()
    await client.get(
        "/v1/cases", params={"number": "8 (705) 123-45-67"}, headers=auth(Role.HELPLINE)
    )
    await client.get(f"/v1/cases/{case_id}", headers=a)
    await client.get("/v1/feedback", params={"message_id": IIN}, headers=a)
    reports = {"case_id": "+7.778.123.45.67"}
    await client.get("/v1/centre/reports", params=reports, headers=auth(Role.AUDITOR))

    r = await client.get("/v1/audit", headers=auth(Role.AUDITOR))
    assert r.status_code == 200
    targets = {(e["action"], e["target_kind"], e["target"]) for e in r.json()}
    assert ("cases.read", "cases", "+7701***4567") in targets
    assert ("cases.read", "cases", "+7705***4567") in targets
    assert ("case.read", "case", case_id) in targets
    assert ("feedback.read", "feedback", "9001******17") in targets
    assert ("centre.read", "centre_report", "+7778***4567") in targets
    for whole in (MINE[0], MINE[1], "7011234567", "7051234567", IIN, "77781234567"):
        assert whole not in r.text
    by_number = await client.get(
        "/v1/audit", params={"target": MINE[0]}, headers=auth(Role.AUDITOR)
    )
    assert [(e["action"], e["user_id"]) for e in by_number.json()] == [
        ("cases.read", USERS[Role.ANALYST])
    ]


@pytest.mark.parametrize(
    ("kind", "target", "shown"),
    [
        ("cases", "+77011234567", "+7701***4567"),
        ("cases", "", ""),
        ("msisdn", "+77011234567", "+7701***4567"),
        ("iin", IIN, "9001******17"),
        ("feedback", f"iin {IIN}", "iin 9001******17"),  # 12 digits, no '+': an IIN
        ("centre_report", "8 (701) 123-45-67", "8701***4567"),
        ("feedback", "+7.701.123.45.67", "+7701***4567"),
        ("feedback", "msg77011234567", "msg7701***4567"),  # glued to letters
        ("case", "01932a6bc1d27f3e8a44b0c5d6e7f809", "01932a6bc1d27f3e8a44b0c5d6e7f809"),
        (
            "feedback",
            "0193b2c4-a123-7456-8901-234567890123",
            "0193b2c4-a123-7456-8901-234567890123",
        ),
        ("case", "1" * 32, "*" * 32),  # 32 digits are no id: more than one number's digits
        ("feedback", "+7–701–123–45–67", "+7701***4567"),  # en dash
        ("feedback", "+7\u2011701\u2011123\u201145\u201167", "+7701***4567"),  # nb hyphen
        ("feedback", "+7:701:123:45:67", "+7701***4567"),
        ("feedback", "7701_123_4567", "7701***4567"),
        ("feedback", "+77011111111/+77052222222", "+7701***1111/+7705***2222"),
        ("feedback", "+77011111111 +77052222222", "+7701***1111 +7705***2222"),
        ("feedback", f"77011111111 {IIN}", "*********** ************"),  # run together
        ("file", "registry_20251201_123456.csv", "registry_20251201_123456.csv"),
        ("application", "12345", "12345"),  # too short to be anyone's
        ("probes", "", ""),
        ("live", "", ""),
    ],
)
def test_audit_entry_masked_whatever_the_kind(kind: str, target: str, shown: str) -> None:
    entry = AuditEntry("id", FRIDAY, "u-x", "analyst", "x.read", kind, target, True, "10.0.0.1")
    assert entry.masked().target == shown
    assert entry.masked().client == "10.0.0.1" and entry.target == target


async def test_personal_data_never_logged(
    client: httpx.AsyncClient, cases: Cases, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway")
    case_id = await open_case(cases)
    a = auth(Role.ANALYST)
    await client.get(f"/v1/subscribers/{MINE[0]}", headers=a)
    await client.post("/v1/complaints", json=complaint_body(), headers=auth(Role.HELPLINE))
    for action in ("start_verification", "confirm"):
        await client.post(f"/v1/cases/{case_id}/{action}", json=REASON, headers=a)
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("gateway"))
    assert "subscriber of +7701***4567" in text
    for secret in (IIN, SURNAME, NAME, *MINE, "77021112233", "card's code"):
        assert secret not in text


# -- OpenAPI and the real server -----------------------------------------------------------------


def test_openapi_document_is_current(app: FastAPI) -> None:
    committed = OPENAPI.read_text(encoding="utf-8")
    hint = "regenerate: python -m gateway.api.openapi > docs/openapi.json"
    assert committed == render(), hint
    assert json.loads(committed) == app.openapi(), hint  # the served app, not only the generator


def test_openapi_names_the_security_scheme(app: FastAPI) -> None:
    doc = app.openapi()
    assert doc["info"]["title"] == "fraudgate analyst API"
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    confirm = doc["paths"]["/v1/cases/{case_id}/confirm"]["post"]
    assert confirm["security"] == [{"bearer": []}] and "409" in confirm["responses"]


def test_api_config_checks() -> None:
    with pytest.raises(ApiConfigError, match=r"api\.cert and api\.key"):
        ApiConfig(cert=Path("/etc/hostname"))
    with pytest.raises(ApiConfigError, match=r"api\.key: no such file"):
        ApiConfig(cert=Path("/etc/hostname"), key=Path("/nonexistent/key.pem"))
    with pytest.raises(ApiConfigError, match=r"api\.port"):
        ApiConfig(port=70000)


async def test_real_server_over_tls(app: FastAPI, tls_material: Any) -> None:
    config = ApiConfig(port=0, cert=tls_material.server_cert, key=tls_material.server_key)
    async with ApiServer(config, app) as server:
        assert server.port != 0 and server.url.startswith("https://127.0.0.1:")
        verify = ssl.create_default_context(cafile=str(tls_material.ca))
        async with httpx.AsyncClient(base_url=server.url, verify=verify) as http:
            r = await http.get(f"/v1/subscribers/{MINE[0]}", headers=auth(Role.HELPLINE))
            assert (r.status_code, r.json()["person"]["iin"]) == (200, "9001******17")
            r = await http.get("/v1/cases")
            assert r.status_code == 401
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=server.url, verify=verify) as http:
            await http.get("/v1/cases")


async def test_centre_notices_are_resent_by_analysts_and_dismissed_by_supervisors(
    client: httpx.AsyncClient, cases: Cases, store: Store
) -> None:
    """Issue 14 item 4 through the API: a refused report is listed as needing attention; an
    analyst resends it (a new revision), only a supervisor dismisses; both audited."""
    from gateway.centre import CentreReports

    case_id = await open_case(cases)
    await cases.start_verification(case_id, Actor("u-a", "analyst"), "checking")
    await cases.confirm(case_id, Actor("u-a", "analyst"), "smishing")
    outbox = CentreReports(store)
    first = (await outbox.all())[0]["id"]
    await outbox.mark_failed(first, "HTTP 400: schema", permanent=True, now=FRIDAY)
    listed = await client.get("/v1/centre/reports?status=attention", headers=auth(Role.ANALYST))
    assert [r["id"] for r in listed.json()] == [first] and IIN not in listed.text
    r = await client.post(f"/v1/centre/reports/{first}/resend", headers=auth(Role.ANALYST))
    assert r.status_code == 200 and r.json()["revision"] == 2
    second = r.json()["id"]
    await outbox.mark_failed(second, "HTTP 400: schema", permanent=True, now=FRIDAY)
    body = {"reason": "phoned the centre"}
    url = f"/v1/centre/reports/{second}/dismiss"
    assert (await client.post(url, json=body, headers=auth(Role.ANALYST))).status_code == 403
    r = await client.post(url, json=body, headers=auth(Role.SUPERVISOR))
    assert (r.status_code, r.json()["status"]) == (200, "resolved")
    again = await client.post(url, json=body, headers=auth(Role.SUPERVISOR))
    assert again.status_code == 409
    gone = await client.post("/v1/centre/reports/nope/resend", headers=auth(Role.ANALYST))
    assert gone.status_code == 404
    actions = [r["action"] for r in await audit_rows(store)]
    assert actions.count("centre.resend") == 1 and actions.count("centre.dismiss") == 1
