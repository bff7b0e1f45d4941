"""`POST /v1/messages/{id}/feedback`, `GET /v1/feedback`, `DELETE /v1/feedback/{id}` on real
SQLite and PostgreSQL: roles, audit rows, and the exemption reaching the Inspector at once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from test_feedback import BANK_NOTICE, CODE, HOUR, T0, VARIANT, Words

from gateway.api import Role, build_api, hash_token
from gateway.cases import Cases
from gateway.domain import Decision, Inspected, SmsEvent, Thresholds, Verdict
from gateway.feedback import FeedbackLimits
from gateway.feedback.cache import ExemptionCache
from gateway.pipeline.inspector import Inspector
from gateway.registry import Registry
from gateway.store import Store
from gateway.store.models_api import api_audit
from gateway.store.models_feedback import feedback
from gateway.switch.port import NoSwitch
from gateway.workdays import KzCalendar

TOKENS = {role: f"secret-{role.value}-token" for role in Role}
SENDER = "77011112233"
WHY = "the bank's own purchase notice, checked with the bank"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def auth(role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + 60)


@pytest.fixture
def cache() -> ExemptionCache:
    return ExemptionCache()


@pytest.fixture
def app(store: Store, cache: ExemptionCache, clock: Clock) -> FastAPI:
    tokens = {hash_token(TOKENS[r]): (f"u-{r.value}", r.value) for r in Role}
    registry = Registry(store)
    cases = Cases(store, KzCalendar(), switch=NoSwitch(), registry=registry, reports=None)
    limits = FeedbackLimits(max_hours=48)
    return build_api(
        cases, registry, store, tokens, clock=clock, exemptions=cache, feedback_limits=limits
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app, client=("10.1.2.3", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


def message(text: str = BANK_NOTICE, source: str = SENDER) -> SmsEvent:
    return SmsEvent(source=source, dest="77019998877", text=text, smsc="smsc-p2p", received_at=T0)


async def flagged(store: Store, text: str = BANK_NOTICE) -> str:
    item = message(text)
    await store.record([Inspected(item, Verdict(0.6, Decision.FLAG, [CODE]))])
    return item.id


async def audit_rows(store: Store) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(sa.select(api_audit).order_by(api_audit.c.at, api_audit.c.id))
        return [dict(r._mapping) for r in rows]


async def feedback_count(store: Store) -> int:
    async with store.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(feedback)
        return int((await conn.execute(query)).scalar_one())


def body(**over: Any) -> dict[str, Any]:
    return {"verdict": "wrong", "scope": "sender", "reason": WHY, "hours": 2} | over


async def test_round_trip_with_roles_and_audit(
    client: httpx.AsyncClient, store: Store, cache: ExemptionCache, clock: Clock
) -> None:
    inspector = Inspector([Words()], Thresholds(), exemptions=cache)
    message_id = await flagged(store)
    url = f"/v1/messages/{message_id}/feedback"
    for role in (Role.HELPLINE, Role.AUDITOR):  # refused before the body is even looked at
        for sent in (body(), {"verdict": "maybe"}):
            r = await client.post(url, json=sent, headers=auth(role))
            assert (r.status_code, r.json()) == (403, {"error": "forbidden"})
    assert await feedback_count(store) == 0 and await audit_rows(store) == []

    r = await client.post(url, json=body(), headers=auth(Role.ANALYST))
    assert r.status_code == 201, r.text
    given = r.json()
    assert given | {"id": "", "created_at": ""} == {
        "id": "", "message_id": message_id, "verdict": "wrong", "label": "legitimate",
        "scope": "sender", "key": f"smsc-p2p/{SENDER}", "decision": "flag",
        "rules": ["content.ru.code_request"], "reason": WHY, "actor": "u-analyst",
        "role": "analyst", "created_at": "", "expires_at": "2025-11-24T18:01:00.000Z",
        "in_force": True, "revoked_at": None, "revoked_by": None, "revoke_reason": None,
    }  # fmt: skip
    # the next message from that sender is allowed at once, in this process
    later = inspector.inspect(message(VARIANT), clock.t + 60)
    assert later.verdict.decision is Decision.ALLOW and later.alerts == []
    assert later.verdict.rule_ids[0] == f"feedback.exempt.{given['id']}"

    r = await client.get("/v1/feedback?in_force=true", headers=auth(Role.SUPERVISOR))
    assert [f["id"] for f in r.json()] == [given["id"]]
    clock.t += 60
    r = await client.request(
        "DELETE", f"/v1/feedback/{given['id']}", json={"reason": "too broad"},
        headers=auth(Role.SUPERVISOR),
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["revoked_by"] == "u-supervisor" and r.json()["in_force"] is False
    assert r.json()["revoke_reason"] == "too broad"
    assert inspector.inspect(message(VARIANT), clock.t).verdict.decision is Decision.FLAG
    r = await client.request(
        "DELETE", f"/v1/feedback/{given['id']}", json={"reason": "again"},
        headers=auth(Role.ANALYST),
    )  # fmt: skip
    assert r.status_code == 409 and r.json()["error"] == "already_revoked"

    rows = [
        (a["user_id"], a["role"], a["action"], a["target_kind"], a["target"], a["personal_data"])
        for a in await audit_rows(store)
    ]
    assert rows == [
        ("u-analyst", "analyst", "feedback.create", "feedback", given["id"], True),
        ("u-supervisor", "supervisor", "feedback.read", "feedback", "", True),
        ("u-supervisor", "supervisor", "feedback.revoke", "feedback", given["id"], True),
    ]
    assert {a["client"] for a in await audit_rows(store)} == {"10.1.2.3"}


async def test_exemption_ends_after_its_hours(
    client: httpx.AsyncClient, store: Store, cache: ExemptionCache, clock: Clock
) -> None:
    inspector = Inspector([Words()], Thresholds(), exemptions=cache)
    message_id = await flagged(store)
    r = await client.post(
        f"/v1/messages/{message_id}/feedback",
        json=body(scope="template", hours=3),
        headers=auth(Role.SUPERVISOR),
    )
    assert r.status_code == 201 and len(r.json()["key"]) == 64
    other = message(VARIANT, source="KASPI")
    assert inspector.inspect(other, clock.t + 3 * HOUR - 1).verdict.decision is Decision.ALLOW
    assert inspector.inspect(other, clock.t + 3 * HOUR).verdict.decision is Decision.FLAG
    clock.t += 3 * HOUR
    r = await client.get("/v1/feedback", params={"in_force": "true"}, headers=auth(Role.ANALYST))
    assert r.json() == []
    r = await client.get(f"/v1/feedback?message_id={message_id}", headers=auth(Role.ANALYST))
    assert [f["in_force"] for f in r.json()] == [False]


@pytest.mark.parametrize(
    ("sent", "status", "error"),
    [
        (body(verdict="right"), 409, "not_applicable"),
        (body(hours=49), 422, "hours_out_of_range"),  # over feedback.max_hours (48 here)
        (body(hours=0), 422, None),
        (body(reason=" "), 422, None),
        (body(scope="everyone"), 422, None),
        (body(extra=1), 422, None),
    ],
)
async def test_refusals_write_nothing(
    client: httpx.AsyncClient,
    store: Store,
    sent: dict[str, Any],
    status: int,
    error: str | None,
) -> None:
    message_id = await flagged(store)
    r = await client.post(
        f"/v1/messages/{message_id}/feedback", json=sent, headers=auth(Role.ANALYST)
    )
    assert r.status_code == status
    if error is not None:
        assert r.json()["error"] == error
    assert await feedback_count(store) == 0 and await audit_rows(store) == []


async def test_unknown_message_or_feedback_is_404(client: httpx.AsyncClient, store: Store) -> None:
    r = await client.post("/v1/messages/nope/feedback", json=body(), headers=auth(Role.ANALYST))
    assert (r.status_code, r.json()) == (404, {"error": "not_found"})
    r = await client.request(
        "DELETE", "/v1/feedback/nope", json={"reason": "x"}, headers=auth(Role.ANALYST)
    )
    assert (r.status_code, r.json()) == (404, {"error": "not_found"})
    assert await audit_rows(store) == []


async def test_missed_fraud_is_labelled_and_logs_carry_no_personal_data(
    client: httpx.AsyncClient, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    item = message("Мама, это я, новый номер. Скинь 20 000 на +77051234567")
    await store.record([Inspected(item, Verdict(0.0, Decision.ALLOW, []))])
    caplog.set_level(logging.DEBUG, logger="gateway")
    secret = "the 'son' is 77051234567, reported by Aigerim Testova"
    r = await client.post(
        f"/v1/messages/{item.id}/feedback",
        json={"verdict": "wrong", "reason": secret},
        headers=auth(Role.ANALYST),
    )
    assert r.status_code == 201 and r.json()["label"] == "fraud"
    assert r.json()["scope"] == "message" and r.json()["expires_at"] is None
    text = "\n".join(rec.getMessage() for rec in caplog.records if rec.name.startswith("gateway"))
    assert "feedback" in text
    for personal in ("77051234567", "Testova", SENDER, "Мама"):
        assert personal not in text
