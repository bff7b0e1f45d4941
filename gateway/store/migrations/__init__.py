"""Alembic migrations of the store, applied by `Store.migrate()` (upgrade to head)."""
