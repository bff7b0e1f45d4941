"""Alembic environment for the store, for both async drivers (aiosqlite and asyncpg).

`Store.migrate()` hands alembic an already open *synchronous* connection (the sync facade of an
AsyncConnection, inside `AsyncConnection.run_sync`) in `config.attributes["connection"]`; the
migrations then run in that connection's transaction. Run from the alembic command line instead
(`alembic -c ... -x url=sqlite+aiosqlite:///data/fraudgate.sqlite3 upgrade head`, or with
`sqlalchemy.url` set), it opens an async engine itself and does the same through `run_sync`.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.store.models import metadata
from gateway.store.urls import normalize_url

config = context.config


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def url_from_config() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database URL: pass -x url=... or set sqlalchemy.url")
    return normalize_url(url)


async def run_async() -> None:
    engine = create_async_engine(url_from_config(), poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run_with)
    finally:
        await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=url_from_config(),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    given = config.attributes.get("connection")
    if given is not None:
        run_with(given)
    else:
        asyncio.run(run_async())
