"""Database URLs: SQLite (aiosqlite, the default, a file under the data directory) or PostgreSQL
(asyncpg). Plain `sqlite:///` and `postgresql://` URLs are given their async driver."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SQLITE_FILE = "fraudgate.sqlite3"

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def sqlite_url(data_dir: str | Path, filename: str = SQLITE_FILE) -> str:
    """The URL of the SQLite database file under `data_dir`."""
    return f"sqlite+aiosqlite:///{Path(data_dir).resolve() / filename}"


def normalize_url(url: str) -> str:
    """`url` with the async driver this package uses for its dialect."""
    parsed = make_url(url)
    driver = _DRIVERS.get(parsed.drivername)
    if driver is not None:
        parsed = parsed.set(drivername=driver)
    if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}: "
            "use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DB"
        )
    return parsed.render_as_string(hide_password=False)


def display_url(url: str) -> str:
    """`url` fit for a log line or an error message: the password replaced by ***, also when
    the URL does not parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(//[^:/@]*:).*@", r"\1***@", url)  # up to the last @
