"""Cases: the legal workflow of points 119-120 (R4, R5, R8). See gateway/store/models_cases.py.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES = (
    "state IN ('new', 'verifying', 'confirmed', 'not_confirmed', 'suspended', 'unblocked',"
    " 'closed', 'reopened')"
)
_SOURCES = "source IN ('detection_sms', 'detection_simbox', 'complaint', 'centre')"


def _case_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["case_id"], ["cases.id"], name=op.f(f"fk_{table}_case_id_cases"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=24), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("subjects", sa.JSON(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=True),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.Column("verify_by", sa.Double(), nullable=False),
        sa.Column("decided_at", sa.Double(), nullable=True),
        sa.Column("act_by", sa.Double(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(_SOURCES, name=op.f("ck_cases_source")),
        sa.CheckConstraint(_STATES, name=op.f("ck_cases_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("source", "external_id", name=op.f("uq_cases_source_external_id")),
    )
    op.create_index(op.f("ix_cases_state"), "cases", ["state"])
    op.create_index(op.f("ix_cases_person_id"), "cases", ["person_id"])
    op.create_index(op.f("ix_cases_received_at"), "cases", ["received_at"])

    op.create_table(
        "case_transitions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        _case_fk("case_transitions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_transitions")),
        sa.UniqueConstraint("case_id", "seq", name=op.f("uq_case_transitions_case_id_seq")),
    )

    op.create_table(
        "case_evidence",
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=False),
        sa.Column("attrs", sa.JSON(), nullable=False),
        sa.Column("added_at", sa.Double(), nullable=False),
        sa.Column("added_by", sa.String(length=128), nullable=False),
        _case_fk("case_evidence"),
        sa.PrimaryKeyConstraint("case_id", "kind", "ref", name=op.f("pk_case_evidence")),
    )

    op.create_table(
        "case_switch_actions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("msisdn", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.Double(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.Double(), nullable=True),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_kind", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "action IN ('block', 'unblock')", name=op.f("ck_case_switch_actions_action")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'done', 'rejected')", name=op.f("ck_case_switch_actions_status")
        ),
        _case_fk("case_switch_actions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_switch_actions")),
        sa.UniqueConstraint(
            "case_id",
            "round",
            "action",
            "msisdn",
            name=op.f("uq_case_switch_actions_case_id_round_action_msisdn"),
        ),
    )
    op.create_index("ix_case_switch_actions_status", "case_switch_actions", ["status", "case_id"])

    op.create_table(
        "case_deadline_alerts",
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("alert_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        _case_fk("case_deadline_alerts"),
        sa.PrimaryKeyConstraint("case_id", "key", name=op.f("pk_case_deadline_alerts")),
    )


def downgrade() -> None:
    op.drop_table("case_deadline_alerts")
    op.drop_index("ix_case_switch_actions_status", table_name="case_switch_actions")
    op.drop_table("case_switch_actions")
    op.drop_table("case_evidence")
    op.drop_table("case_transitions")
    op.drop_index(op.f("ix_cases_received_at"), table_name="cases")
    op.drop_index(op.f("ix_cases_person_id"), table_name="cases")
    op.drop_index(op.f("ix_cases_state"), table_name="cases")
    op.drop_table("cases")
