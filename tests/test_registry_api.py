"""The registry routes (Rules 55-1...55-6) through the ASGI app with httpx: registrars register
and apply, supervisors decide, every call audited, personal data masked without the permission.
On a SQLite file and the session's PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from gateway.api import Role, build_api, hash_token
from gateway.cases import Cases
from gateway.centre import CentreOutbox
from gateway.registry import Registry
from gateway.store import Store
from gateway.store.models_api import api_audit
from gateway.switch.port import NoSwitch
from gateway.workdays import KzCalendar

A = "900101300017"
IMEI = "490154203237518"
TOKENS = {role: f"secret-{role.value}-reg" for role in Role}
T0 = 1_760_000_000.0


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def auth(role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def client(store: Store, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    tokens = {hash_token(TOKENS[r]): (f"u-{r.value}", r.value) for r in Role}
    registry = Registry(store, clock=clock)
    cases = Cases(
        store, KzCalendar(), switch=NoSwitch(), registry=registry, reports=CentreOutbox("op")
    )
    app: FastAPI = build_api(cases, registry, store, tokens, clock=clock)
    transport = httpx.ASGITransport(app, client=("10.1.2.3", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


async def audit(store: Store) -> list[tuple[str, str, str, bool]]:
    t = api_audit.c
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(t.user_id, t.action, t.target_kind, t.personal_data).order_by(t.at, t.id)
        )
        return [tuple(r) for r in rows]


def application(**change: Any) -> dict[str, Any]:
    body = {
        "iin": A,
        "purpose": "telemetry of 5 meters",
        "requested_count": 12,
        "devices": [{"kind": "imei", "identifier": IMEI, "description": "router"}],
        "justification": "utility contract No. 7",
        "evidence": "contract scan, invoice 12",
        "declared_accurate": True,
    }
    return body | change


async def test_registrar_registers_until_the_limit(client: httpx.AsyncClient, store: Store) -> None:
    reg = auth(Role.REGISTRAR)
    person = {"iin": A, "surname": "Абенов", "name": "Ерлан", "patronymic": "Серікұлы"}
    r = await client.post("/v1/registry/persons", json=person, headers=reg)
    assert r.status_code == 201, r.text
    assert r.json()["masked"] and r.json()["person"]["iin"] == "9001******17"
    assert A not in r.text and "Абенов" not in r.text
    for i in range(10):
        body = {"iin": A, "msisdn": f"+7701000000{i}", "contract_id": f"C-{i}"}
        r = await client.post("/v1/registry/numbers", json=body, headers=reg)
        assert r.status_code == 201, r.text
    assert r.json()["msisdn"] == "+7701***0009" and r.json()["person_id"] is None
    body = {"iin": A, "msisdn": "87010000010", "contract_id": "C-10"}
    r = await client.post("/v1/registry/numbers", json=body, headers=reg)
    assert r.status_code == 409
    assert r.json()["error"] == "over_limit"
    assert r.json()["detail"].startswith("IIN 9001******17: 10 of 10 numbers registered")
    assert A not in r.text

    r = await client.post("/v1/registry/numbers/+77010000003/terminate", headers=reg)
    assert r.status_code == 200 and r.json()["status"] == "terminated"
    r = await client.post("/v1/registry/numbers", json=body, headers=reg)
    assert r.status_code == 201  # the terminated number freed a place
    r = await client.post("/v1/registry/numbers/77019999999/terminate", headers=reg)
    assert (r.status_code, r.json()["error"]) == (404, "unknown_number")

    rows = await audit(store)
    assert len(rows) == 1 + 10 + 1 + 1 + 1 + 1
    assert rows[11] == ("u-registrar", "registry.number.add.refused", "msisdn", False)
    assert all(r[0] == "u-registrar" and not r[3] for r in rows)

    # a supervisor sees the same whole, and the audit says so
    sup = auth(Role.SUPERVISOR)
    body = {"iin": A, "msisdn": "87010000020", "contract_id": "C-20"}
    r = await client.post("/v1/registry/numbers", json=body, headers=sup)
    assert r.status_code == 409  # still 10 of 10 for the supervisor too
    r = await client.post("/v1/registry/persons", json=person, headers=sup)
    assert r.json()["person"]["iin"] == A and not r.json()["masked"]
    assert (await audit(store))[-1] == ("u-supervisor", "registry.person.add", "person", True)


async def test_applications_submitted_decided_and_listed(
    client: httpx.AsyncClient, store: Store, clock: Clock
) -> None:
    reg, sup = auth(Role.REGISTRAR), auth(Role.SUPERVISOR)
    person = {"iin": A, "surname": "Абенов", "name": "Ерлан"}
    assert (await client.post("/v1/registry/persons", json=person, headers=reg)).status_code == 201
    bad = application(declared_accurate=False)
    r = await client.post("/v1/registry/applications", json=bad, headers=reg)
    assert (r.status_code, r.json()["error"]) == (422, "invalid")
    assert "declared_accurate" in r.json()["detail"]
    r = await client.post("/v1/registry/applications", json=application(evidence=""), headers=reg)
    assert r.status_code == 422  # 55-2: evidence of need is required

    r = await client.post("/v1/registry/applications", json=application(), headers=reg)
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["status"], first["iin"], first["purpose"]) == ("submitted", "9001******17", None)
    assert first["decide_by"] is not None and not first["overdue"]

    # only supervisors decide
    r = await client.post(f"/v1/registry/applications/{first['id']}/approve", headers=reg)
    assert r.status_code == 403
    r = await client.post(
        f"/v1/registry/applications/{first['id']}/refuse", json={"reason": " "}, headers=sup
    )
    assert r.status_code == 422  # a refusal states its reason (55-4)

    clock.t = T0 + 40 * 86400  # past 15 working days
    r = await client.get("/v1/registry/applications?overdue=true", headers=reg)
    assert [a["id"] for a in r.json()] == [first["id"]] and r.json()[0]["overdue"]
    reason = {"reason": "the device list names one router for 12 numbers"}
    r = await client.post(
        f"/v1/registry/applications/{first['id']}/refuse", json=reason, headers=sup
    )
    assert r.status_code == 200, r.text
    refused = r.json()
    assert (refused["status"], refused["decided_by"]) == ("refused", "u-supervisor")
    assert refused["refusal_reason"] == reason["reason"] and refused["purpose"] is not None
    r = await client.get("/v1/registry/applications?overdue=true", headers=reg)
    assert r.json() == []
    r = await client.post(f"/v1/registry/applications/{first['id']}/approve", headers=sup)
    assert (r.status_code, r.json()["error"]) == (409, "illegal_state")

    again = application(requested_count=11)
    del again["iin"]
    r = await client.post(
        f"/v1/registry/applications/{first['id']}/reapply", json=again, headers=reg
    )
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["previous_application_id"] == first["id"]
    r = await client.post(f"/v1/registry/applications/{second['id']}/approve", headers=sup)
    assert (r.status_code, r.json()["status"]) == (200, "approved")
    r = await client.get("/v1/registry/applications?status=approved", headers=reg)
    assert [a["id"] for a in r.json()] == [second["id"]]
    r = await client.get("/v1/registry/applications", headers=auth(Role.ANALYST))
    assert r.status_code == 403

    actions = [(a[0], a[1]) for a in await audit(store)]
    assert ("u-supervisor", "registry.application.refuse") in actions
    assert ("u-supervisor", "registry.application.approve") in actions
    assert ("u-registrar", "registry.application.submit.refused") in actions
    assert ("u-registrar", "registry.applications.read") in actions


@pytest.mark.parametrize("role", [Role.ANALYST, Role.HELPLINE, Role.AUDITOR])
async def test_other_roles_may_not_register(client: httpx.AsyncClient, role: Role) -> None:
    body = {"iin": A, "surname": "S", "name": "N"}
    r = await client.post("/v1/registry/persons", json=body, headers=auth(role))
    assert r.status_code == 403
