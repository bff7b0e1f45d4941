"""The console's campaigns page reads campaign alerts by kind and time (issue 16): an index,
so that it does not scan every alert ever raised (alerts are not purged).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_alerts_kind_created", "alerts", ["kind", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_kind_created", table_name="alerts")
