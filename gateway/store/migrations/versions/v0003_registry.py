"""Subscriber registry: individuals, their numbers and devices, applications for more than ten
numbers (Rules points 55-1...55-6, R6).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)


def _person_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["person_id"],
        ["individuals.id"],
        name=op.f(f"fk_{table}_person_id_individuals"),
        ondelete="RESTRICT",
    )


def upgrade() -> None:
    op.create_table(
        "individuals",
        sa.Column("id", ID, nullable=False),
        sa.Column("iin", sa.String(length=12), nullable=False),
        sa.Column("surname", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("patronymic", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_individuals")),
        sa.UniqueConstraint("iin", name=op.f("uq_individuals_iin")),
    )
    _create_numbers()
    _create_devices()
    _create_applications()


def _create_numbers() -> None:
    op.create_table(
        "numbers",
        sa.Column("msisdn", sa.String(length=15), nullable=False),
        sa.Column("imsi", sa.String(length=15), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("contract_date", sa.Date(), nullable=True),
        sa.Column("contract_id", sa.Text(), nullable=False),
        sa.Column("person_id", ID, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'terminated')", name=op.f("ck_numbers_status")
        ),
        _person_fk("numbers"),
        sa.PrimaryKeyConstraint("msisdn", name=op.f("pk_numbers")),
    )
    op.create_index(op.f("ix_numbers_person_id"), "numbers", ["person_id"])


def _create_devices() -> None:
    op.create_table(
        "devices",
        sa.Column("id", ID, nullable=False),
        sa.Column("person_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.CheckConstraint("kind IN ('imei', 'm2m')", name=op.f("ck_devices_kind")),
        _person_fk("devices"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint(
            "person_id", "kind", "identifier", name=op.f("uq_devices_person_id_kind_identifier")
        ),
    )
    op.create_index(op.f("ix_devices_person_id"), "devices", ["person_id"])


def _create_applications() -> None:
    op.create_table(
        "number_applications",
        sa.Column("id", ID, nullable=False),
        sa.Column("person_id", ID, nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("requested_count", sa.Integer(), nullable=False),
        sa.Column("device_ids", sa.JSON(), nullable=False),
        sa.Column("declared_accurate", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("submitted_at", sa.Double(), nullable=False),
        sa.Column("decision_at", sa.Double(), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("refusal_reason", sa.Text(), nullable=True),
        sa.Column("previous_application_id", ID, nullable=True),
        sa.CheckConstraint(
            "status IN ('submitted', 'approved', 'refused')",
            name=op.f("ck_number_applications_status"),
        ),
        sa.CheckConstraint(
            "status <> 'refused' OR (refusal_reason IS NOT NULL AND refusal_reason <> '')",
            name=op.f("ck_number_applications_refusal_reason"),
        ),
        sa.CheckConstraint(
            "requested_count > 10", name=op.f("ck_number_applications_requested_count")
        ),
        _person_fk("number_applications"),
        sa.ForeignKeyConstraint(
            ["previous_application_id"],
            ["number_applications.id"],
            name=op.f("fk_number_applications_previous_application_id_number_applications"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_applications")),
        sa.UniqueConstraint(
            "previous_application_id",
            name=op.f("uq_number_applications_previous_application_id"),
        ),
    )
    op.create_index(op.f("ix_number_applications_person_id"), "number_applications", ["person_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_number_applications_person_id"), table_name="number_applications")
    op.drop_table("number_applications")
    op.drop_index(op.f("ix_devices_person_id"), table_name="devices")
    op.drop_table("devices")
    op.drop_index(op.f("ix_numbers_person_id"), table_name="numbers")
    op.drop_table("numbers")
    op.drop_table("individuals")
