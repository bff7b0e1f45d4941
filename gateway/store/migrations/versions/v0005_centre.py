"""Centre tables: the report outbox and the journal of the centre's reports.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)
TIME: sa.Double[float] = sa.Double()


def upgrade() -> None:
    op.create_table(
        "centre_reports",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("sent_at", TIME, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("acked_at", TIME, nullable=True),
        sa.Column("ack_id", sa.String(128), nullable=True),
        sa.Column("failed_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_centre_reports")),
        sa.UniqueConstraint("case_id", "kind", name=op.f("uq_centre_reports_case_id_kind")),
        sa.CheckConstraint(
            "kind IN ('detection', 'suspended', 'not_confirmed')",
            name=op.f("ck_centre_reports_kind"),
        ),
    )
    op.create_index(
        "ix_centre_reports_pending", "centre_reports", ["acked_at", "failed_at", "created_at"]
    )
    op.create_table(
        "centre_inbound",
        sa.Column("report_id", sa.String(64), nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("reported_at", TIME, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_centre_inbound")),
    )


def downgrade() -> None:
    op.drop_table("centre_inbound")
    op.drop_index("ix_centre_reports_pending", table_name="centre_reports")
    op.drop_table("centre_reports")
