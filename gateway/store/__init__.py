"""The gateway's database (port): messages, verdicts, the alert outbox and complaints.

    store = await Store.open(sqlite_url(data_dir))   # or "postgresql+asyncpg://user@host/db"
    async with store:
        await store.migrate()
        await store.record(batch)                      # one transaction per batch
        for alert in await store.pending_alerts(100): ...

Every database failure is raised as StoreError (StoreUnavailable when retrying may help).
"""

from __future__ import annotations

from .claims import AlertClaim
from .errors import StoreError, StoreUnavailable
from .models import metadata
from .store import MIGRATIONS_DIR, Store, reason_json
from .urls import display_url, normalize_url, sqlite_url

__all__ = [
    "MIGRATIONS_DIR",
    "AlertClaim",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "display_url",
    "metadata",
    "normalize_url",
    "reason_json",
    "sqlite_url",
]
