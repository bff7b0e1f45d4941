"""Typed store errors: callers catch these, never a driver's or SQLAlchemy's exceptions."""

from __future__ import annotations


class StoreError(Exception):
    """A database operation failed (the original exception is chained as __cause__)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is not accepting work right now (connection refused or
    lost, server shutting down, SQLite file locked or unreadable): retrying later may succeed."""
