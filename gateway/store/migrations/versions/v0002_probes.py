"""Probe findings (test-call and test-SMS results) and the SIM-box numbers they name.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "probe_findings",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("probe", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("observed", sa.Text(), nullable=False),
        sa.Column("observed_ton", sa.SmallInteger(), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("test_id", sa.String(length=64), nullable=True),
        sa.Column("test_kind", sa.String(length=8), nullable=True),
        sa.Column("a_number", sa.Text(), nullable=True),
        sa.Column("route", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probe_findings")),
        sa.UniqueConstraint("test_id", name=op.f("uq_probe_findings_test_id")),
    )
    op.create_index(op.f("ix_probe_findings_at"), "probe_findings", ["at"])
    op.create_index(op.f("ix_probe_findings_number"), "probe_findings", ["number"])
    op.create_table(
        "simbox_numbers",
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("first_seen", sa.Double(), nullable=False),
        sa.Column("last_seen", sa.Double(), nullable=False),
        sa.Column("sightings", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("last_route", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_simbox_numbers")),
    )


def downgrade() -> None:
    op.drop_table("simbox_numbers")
    op.drop_index(op.f("ix_probe_findings_number"), table_name="probe_findings")
    op.drop_index(op.f("ix_probe_findings_at"), table_name="probe_findings")
    op.drop_table("probe_findings")
