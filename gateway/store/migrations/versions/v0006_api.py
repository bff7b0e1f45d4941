"""HTTP API tables: the personal-data access audit and the help line's complaints.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)
TIME: sa.Double[float] = sa.Double()


def upgrade() -> None:
    op.create_table(
        "api_audit",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("personal_data", sa.Boolean(), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_audit")),
    )
    op.create_index(op.f("ix_api_audit_at"), "api_audit", ["at"])
    op.create_index(op.f("ix_api_audit_user_id"), "api_audit", ["user_id"])
    op.create_index(op.f("ix_api_audit_target"), "api_audit", ["target"])
    op.create_table(
        "helpline_complaints",
        sa.Column("id", ID, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("recorded_at", TIME, nullable=False),
        sa.Column("caller", sa.String(32), nullable=False),
        sa.Column("suspect", sa.String(32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("taken_by", sa.String(128), nullable=False),
        sa.Column("case_id", ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_helpline_complaints")),
    )
    op.create_index(
        op.f("ix_helpline_complaints_received_at"), "helpline_complaints", ["received_at"]
    )
    op.create_index(op.f("ix_helpline_complaints_case_id"), "helpline_complaints", ["case_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_helpline_complaints_case_id"), table_name="helpline_complaints")
    op.drop_index(op.f("ix_helpline_complaints_received_at"), table_name="helpline_complaints")
    op.drop_table("helpline_complaints")
    op.drop_index(op.f("ix_api_audit_target"), table_name="api_audit")
    op.drop_index(op.f("ix_api_audit_user_id"), table_name="api_audit")
    op.drop_index(op.f("ix_api_audit_at"), table_name="api_audit")
    op.drop_table("api_audit")
