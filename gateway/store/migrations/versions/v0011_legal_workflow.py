"""The legal workflow as the order reads it (issue 14): the facts' time, report rounds, attention items.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME: sa.Double[float] = sa.Double()


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
