"""Who may read what through the API, over a real socket: the API started as the daemon starts it
(gateway.wiring.api_server, from a parsed [api] section) on a free loopback port. The OpenAPI
pages need a token."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.cases import Cases
from gateway.centre import CentreOutbox
from gateway.config import WorkflowSettings, from_toml
from gateway.registry import Registry
from gateway.store import Store, sqlite_url
from gateway.switch import NoSwitch
from gateway.wiring import api_server
from gateway.workdays import KzCalendar

OPENAPI = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"
IIN = "900101300017"  # synthetic (docs: KAZAKHSTAN.md)
MINE = ["+77011234567", "+77051234567"]
ROLES = ("helpline", "analyst", "supervisor", "auditor")


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer token-of-the-{role}"}


def settings(**limits: Any) -> WorkflowSettings:
    tokens = [
        {
            "sha256": hashlib.sha256(f"token-of-the-{role}".encode()).hexdigest(),
            "user": f"u-{role}",
            "role": role,
        }
        for role in ROLES
    ]
    return from_toml({"api": {"listen": "127.0.0.1:0", "token": tokens, **limits}}).workflow


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(sqlite_url(tmp_path / "data")) as st:
        await st.migrate()
        registry = Registry(st)
        await registry.register_person(IIN, "Testova", "Aigerim", "Serikovna")
        for n in MINE:
            await registry.register_number(IIN, n)
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
