"""Detector state kept across a restart (see gateway/store/models.py).

detector_state   one row per stateful detector ("campaigns"): its last snapshot, opaque bytes
                 in the detector's own versioned format, and when it was saved
"""

from __future__ import annotations

import sqlalchemy as sa

from .models import TIME, metadata

detector_state = sa.Table(
    "detector_state",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("data", sa.LargeBinary(), nullable=False),
    sa.Column("saved_at", TIME, nullable=False),
)

__all__ = ["detector_state"]
