"""The database fixtures shared by the repository tests: every test using `store` runs twice,
on a SQLite file and on a real PostgreSQL database (fixtures_services.postgres_url)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store import Store, sqlite_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "data")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """A migrated store on `db_url`, closed after the test."""
    st = await Store.open(db_url)
    try:
        await st.migrate()
        yield st
    finally:
        await st.close()


@pytest.fixture
async def pg_nodes(postgres_url: str) -> AsyncIterator[list[Store]]:
    """Three stores on one migrated PostgreSQL database: two gateway nodes and an observer."""
    opened = [await Store.open(postgres_url) for _ in range(3)]
    try:
        await opened[0].migrate()
        yield opened
    finally:
        for st in opened:
            await st.close()
