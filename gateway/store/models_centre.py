"""Centre tables on the shared metadata (see gateway/store/models.py)."""

from __future__ import annotations
