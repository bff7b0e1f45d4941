"""HTTP API tables on the shared metadata (see gateway/store/models.py and docs/api.md).

api_audit            one row per API response that carried personal data unmasked (R7) and per
                     decision or complaint taken through the API (R8): who (user, role, client
                     address), when, what (action) and about whom (target)
helpline_complaints  reports taken by the help line (point 52 4), R4): the caller's and the
                     suspicious number, the caller's words, who took the call, the case opened
"""

from __future__ import annotations

import sqlalchemy as sa

from .models import ID, TIME, metadata

api_audit = sa.Table(
    "api_audit",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("at", TIME, nullable=False, index=True),
    sa.Column("user_id", sa.String(128), nullable=False, index=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("action", sa.String(48), nullable=False),
    sa.Column("target_kind", sa.String(16), nullable=False),  # msisdn | case | cases | audit...
    sa.Column("target", sa.String(128), nullable=False, index=True),
    sa.Column("personal_data", sa.Boolean(), nullable=False),
    sa.Column("client", sa.String(64), nullable=False),  # the peer's address, "" if unknown
)

helpline_complaints = sa.Table(
    "helpline_complaints",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("received_at", TIME, nullable=False, index=True),  # fraudgate's: the legal clock
    sa.Column("recorded_at", TIME, nullable=False),
    sa.Column("stated_received_at", TIME, nullable=True),  # the caller's, kept beside it
    sa.Column("incident_at", TIME, nullable=True),  # when the SMS / call came, as told
    sa.Column("caller", sa.String(32), nullable=False),  # E.164 with '+'
    sa.Column("suspect", sa.String(32), nullable=False),  # E.164 with '+'
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("taken_by", sa.String(128), nullable=False),
    sa.Column("case_id", ID, nullable=True, index=True),  # NULL until the case is open
)

__all__ = ["api_audit", "helpline_complaints"]
