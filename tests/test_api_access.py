"""Who may read what through the API, over a real socket: the API started as the daemon starts it
(gateway.wiring.api_server, from a parsed [api] section) on a free loopback port. The OpenAPI
pages need a token, look-ups are rate-limited per user, misses are audited like hits, and an
answer that carries personal data unmasked is audited as personal (R7)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.api import LookupLimiter
from gateway.api.settings import ApiSettings
from gateway.cases import Actor, Cases
from gateway.centre import CentreOutbox
from gateway.config import from_toml
from gateway.registry import Registry
from gateway.store import Store, sqlite_url
from gateway.store.models_api import api_audit
from gateway.switch.port import NoSwitch
from gateway.wiring import api_server
from gateway.workdays import KzCalendar

OPENAPI = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"
IIN = "900101300017"  # synthetic (docs: KAZAKHSTAN.md)
CONTRACT = dt.date(2020, 1, 1)  # the numbers are held since: the facts of the cases are later
MINE = ["+77011234567", "+77051234567"]
UNKNOWN = "+77781234567"  # a Kazakh mobile number nobody holds
ROLES = ("helpline", "analyst", "supervisor", "auditor")


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer token-of-the-{role}"}


def settings(**limits: Any) -> ApiSettings:
    tokens = [
        {
            "sha256": hashlib.sha256(f"token-of-the-{role}".encode()).hexdigest(),
            "user": f"u-{role}",
            "role": role,
        }
        for role in ROLES
    ]
    return from_toml({"api": {"listen": "127.0.0.1:0", "token": tokens, **limits}}).api


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(sqlite_url(tmp_path / "data")) as st:
        await st.migrate()
        registry = Registry(st)
        await registry.register_person(IIN, "Testova", "Aigerim", "Serikovna")
        for n in MINE:
            await registry.register_number(IIN, n, contract_date=CONTRACT)
        yield st


@pytest.fixture
def cases(store: Store) -> Cases:
    return Cases(
        store, KzCalendar(), switch=NoSwitch(), registry=Registry(store), reports=CentreOutbox("t")
    )


@pytest.fixture
async def api(cases: Cases, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        api_server(settings(), cases, store) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        yield http


async def audit_rows(store: Store) -> list[tuple[str, str, str, bool]]:
    t = api_audit
    query = sa.select(t.c.user_id, t.c.action, t.c.target, t.c.personal_data).order_by(t.c.at)
    async with store.engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(query)]  # type: ignore[misc]


COMPLAINT = {
    "caller_number": "+77021112233",
    "suspicious_number": MINE[0],
    "description": "an SMS asked for my card's code",
}


# -- the OpenAPI pages ----------------------------------------------------------------------------


async def test_openapi_pages_need_a_token(api: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        r = await api.get(path)
        assert (r.status_code, r.json()) == (401, {"error": "unauthorized"}), path
    for role in ROLES:  # any role may read the contract; the pages that load a CDN are gone
        r = await api.get("/openapi.json", headers=auth(role))
        assert r.status_code == 200 and r.json() == json.loads(OPENAPI.read_text()), role
        assert (await api.get("/docs", headers=auth(role))).status_code == 404
        assert (await api.get("/redoc", headers=auth(role))).status_code == 404


# -- look-ups: rate and audit ---------------------------------------------------------------------


async def test_lookups_are_limited_per_user(cases: Cases, store: Store) -> None:
    async with (
        api_server(settings(lookup_rate=1, lookup_burst=3), cases, store) as server,
        httpx.AsyncClient(base_url=server.url) as api,
    ):
        help_line = auth("helpline")
        for path in (f"/v1/subscribers/{MINE[0]}", f"/v1/subscribers/{UNKNOWN}", "/v1/cases"):
            assert (await api.get(path, headers=help_line)).status_code in (200, 404), path
        before = await audit_rows(store)
        r = await api.get(f"/v1/subscribers/{MINE[1]}", headers=help_line)
        assert (r.status_code, r.json()) == (429, {"error": "rate_limited"})
        assert 55 <= int(r.headers["retry-after"]) <= 60  # one look-up a minute
        assert (await api.get("/v1/cases", headers=help_line)).status_code == 429
        assert await audit_rows(store) == before  # refused: nothing read, nothing recorded
        # another user is not held back, and taking complaints is not a look-up
        r = await api.get(f"/v1/subscribers/{MINE[1]}", headers=auth("analyst"))
        assert r.status_code == 200
        assert (await api.post("/v1/complaints", json=COMPLAINT, headers=help_line)).is_success


def test_the_lookup_bucket_refills() -> None:
    now = [0.0]
    limiter = LookupLimiter(per_minute=6, burst=2, clock=lambda: now[0])
    assert [limiter.take("u"), limiter.take("u")] == [0.0, 0.0]
    assert limiter.take("u") == pytest.approx(10.0)  # 6 a minute: one every 10 s
    assert limiter.take("v") == 0.0
    now[0] = 9.0
    assert limiter.take("u") == pytest.approx(1.0)
    now[0] = 10.0
    assert limiter.take("u") == 0.0 and limiter.take("u") > 0
    now[0] = 1000.0  # refilled up to the burst, not beyond
    assert [limiter.take("u") for _ in range(3)][2] > 0


async def test_a_lookup_miss_is_audited_like_a_hit(api: httpx.AsyncClient, store: Store) -> None:
    help_line = auth("helpline")
    r = await api.get(f"/v1/subscribers/{UNKNOWN}", headers=help_line)
    assert (r.status_code, r.json()) == (404, {"error": "not_found"})
    assert (await api.get(f"/v1/subscribers/{MINE[0]}", headers=help_line)).status_code == 200
    r = await api.get("/v1/cases", params={"number": UNKNOWN}, headers=help_line)
    assert (r.status_code, r.json()) == (200, [])
    assert (await api.get("/v1/subscribers/not-a-number", headers=help_line)).status_code == 404
    assert await audit_rows(store) == [
        ("u-helpline", "subscriber.read", UNKNOWN, False),
        ("u-helpline", "subscriber.read", MINE[0], False),  # masked for the help line
        ("u-helpline", "cases.read", UNKNOWN, False),
        ("u-helpline", "subscriber.read", "", False),  # what was typed is not kept
    ]


# -- complaints: the answer's audit ---------------------------------------------------------------


@pytest.mark.parametrize(("role", "personal"), [("helpline", False), ("supervisor", True)])
async def test_a_complaint_answer_is_audited_as_what_it_carries(
    api: httpx.AsyncClient, store: Store, role: str, personal: bool
) -> None:
    r = await api.post("/v1/complaints", json=COMPLAINT, headers=auth(role))
    assert r.status_code == 201
    case = r.json()["case"]
    assert (case["numbers"] == [MINE[0]]) is personal  # the supervisor sees the number
    assert (case["person_id"] is not None) is personal
    assert await audit_rows(store) == [(f"u-{role}", "complaint.create", case["id"], personal)]


# -- the auditor reads cases masked, every read audited (issue 14 item 11) ----------------------


async def test_the_auditor_reads_cases_masked_and_every_read_is_audited(
    api: httpx.AsyncClient, cases: Cases, store: Store
) -> None:
    view = await cases.open(source="complaint", numbers=[MINE[0]], received_at=1_763_100_000.0)
    await cases.start_verification(view.id, Actor("u-a", "analyst"), f"called {MINE[0]}")
    auditor = auth("auditor")
    listed = await api.get("/v1/cases", headers=auditor)
    assert listed.status_code == 200
    [summary] = listed.json()
    assert summary["numbers"] == ["+7701***4567"] and summary["person_id"] is None
    one = await api.get(f"/v1/cases/{view.id}", headers=auditor)
    assert one.status_code == 200
    assert [t["reason"] for t in one.json()["transitions"]] == [None, None]  # free text
    assert MINE[0] not in listed.text + one.text and MINE[0][1:] not in listed.text + one.text
    r = await api.get(f"/v1/subscribers/{MINE[0]}", headers=auditor)
    assert (r.status_code, r.json()) == (403, {"error": "forbidden"})
    assert await audit_rows(store) == [
        ("u-auditor", "cases.read", "", False),  # masked, yet audited: the auditor's reads
        ("u-auditor", "case.read", view.id, False),
    ]
    await api.get("/v1/cases", headers=auth("helpline"))  # a masked read by others: not audited
    assert len(await audit_rows(store)) == 2
    # the deadline view and the centre notices are reads of cases too
    due = await api.get("/v1/cases/deadlines", headers=auditor)
    assert due.status_code == 200 and MINE[0] not in due.text
    assert (await api.get("/v1/centre/reports", headers=auditor)).status_code == 200
    bad = await api.get("/v1/centre/reports?status=lost", headers=auditor)
    assert bad.status_code == 422
    assert (await audit_rows(store))[2:4] == [
        ("u-auditor", "cases.read", "", False),
        ("u-auditor", "centre.read", "", False),
    ]


# -- free text is screened for IINs before it is stored (issue 14 item 11) ----------------------


async def test_an_iin_in_a_reason_or_a_description_is_stored_masked(
    api: httpx.AsyncClient, cases: Cases, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fraudgate.iin")
    view = await cases.open(source="complaint", numbers=[MINE[0]], received_at=1_763_100_000.0)
    analyst = auth("analyst")
    reason = f"владелец ИИН{IIN}, заявка 123456789012"  # glued to letters; a non-IIN number
    r = await api.post(f"/v1/cases/{view.id}/start_verification", json={"reason": reason},
                       headers=analyst)  # fmt: skip
    assert r.status_code == 200
    spaced = f"{IIN[:6]} {IIN[6:]}"
    r = await api.post(f"/v1/cases/{view.id}/reject", json={"reason": f"не он: {spaced}."},
                       headers=analyst)  # fmt: skip
    assert r.status_code == 200
    body = dict(COMPLAINT, description=f"звонили, назвали мой ИИН {IIN}")
    assert (
        await api.post("/v1/complaints", json=body, headers=auth("helpline"))
    ).status_code == 201

    async with store.engine.connect() as conn:
        reasons = (await conn.execute(sa.text("SELECT reason FROM case_transitions"))).scalars()
        words = (
            await conn.execute(sa.text("SELECT description FROM helpline_complaints"))
        ).scalar()
        reports = (await conn.execute(sa.text("SELECT payload FROM centre_reports"))).scalars()
        stored = [*reasons, words, *map(str, reports)]
    assert "владелец ИИН9001******17, заявка 123456789012" in stored
    assert "не он: 9001******17." in stored
    assert words == "звонили, назвали мой ИИН 9001******17"
    assert not any(IIN in s or spaced in s for s in stored)
    assert any("9001******17" in s for s in stored[-1:])  # the not-confirmed report's reason
    assert "api reason: 1 IIN(s) masked before storing" in caplog.text
    assert "complaint description: 1 IIN(s) masked before storing" in caplog.text
    assert IIN not in caplog.text
