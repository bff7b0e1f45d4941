"""Inline forwarding: the onward submission and final delivery state of forwarded messages.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)
TIME: sa.Double[float] = sa.Double()


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("message_id", ID, nullable=False),
        sa.Column("smsc", sa.Text(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("onward_status", sa.String(16), nullable=False),
        sa.Column("onward_error", sa.Integer(), nullable=True),
        sa.Column("onward_detail", sa.Text(), nullable=False),
        sa.Column("submit_ids", sa.Text(), nullable=False),
        sa.Column("receipt_requested", sa.Boolean(), nullable=False),
        sa.Column("final_state", sa.String(16), nullable=True),
        sa.Column("receipt_id", sa.Text(), nullable=True),
        sa.Column("submitted_at", TIME, nullable=False),
        sa.Column("done_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_deliveries_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_deliveries")),
    )
    op.create_index(op.f("ix_deliveries_submitted_at"), "deliveries", ["submitted_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_deliveries_submitted_at"), table_name="deliveries")
    op.drop_table("deliveries")
