"""The legal workflow as the order reads it (issue 14): the facts' time, report rounds, attention
items.

cases                the time of the facts (the holder then is the one reported), an
                     alphanumeric sender, flags
centre_reports       a report per case, kind, ROUND (a second suspension after an appeal is
                     reported again) and revision (resent with new content); refused reports
                     stay attention items until resent or dismissed; kind `unblocked`
helpline_complaints  the caller's stated time of receipt and of the incident, beside fraudgate's

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME: sa.Double[float] = sa.Double()
ID = sa.String(64)

OLD_KINDS = "kind IN ('detection', 'suspended', 'not_confirmed')"
NEW_KINDS = "kind IN ('detection', 'suspended', 'not_confirmed', 'unblocked')"


def upgrade() -> None:
    with op.batch_alter_table("cases") as b:
        b.add_column(sa.Column("facts_at", TIME, nullable=True))
        b.add_column(sa.Column("sender", sa.String(64), nullable=True))
        b.add_column(sa.Column("flags", sa.JSON(), nullable=True))
    with op.batch_alter_table("helpline_complaints") as b:
        b.add_column(sa.Column("stated_received_at", TIME, nullable=True))
        b.add_column(sa.Column("incident_at", TIME, nullable=True))
    with op.batch_alter_table("centre_reports") as b:
        b.add_column(sa.Column("round", sa.Integer(), nullable=True))
        b.add_column(sa.Column("revision", sa.Integer(), nullable=True))
        b.add_column(sa.Column("resolved_at", TIME, nullable=True))
        b.add_column(sa.Column("resolved_by", sa.String(128), nullable=True))
        b.add_column(sa.Column("resolution", sa.Text(), nullable=True))
        b.add_column(sa.Column("superseded_by", ID, nullable=True))
        b.add_column(
            sa.Column("subscriber_unknown", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # reports queued before: the round of the transition that queued them is not recorded;
    # 1 keeps them unique (one per case and kind, as the old constraint made them)
    op.execute("UPDATE centre_reports SET round = 1, revision = 1")
    with op.batch_alter_table("centre_reports") as b:
        b.alter_column("round", existing_type=sa.Integer(), nullable=False)
        b.alter_column("revision", existing_type=sa.Integer(), nullable=False)
        b.drop_constraint(op.f("uq_centre_reports_case_id_kind"), type_="unique")
        b.create_unique_constraint(
            "uq_centre_reports_case_id_kind_round_revision",
            ["case_id", "kind", "round", "revision"],
        )
        b.drop_constraint(op.f("ck_centre_reports_kind"), type_="check")
        b.create_check_constraint(op.f("ck_centre_reports_kind"), NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM centre_reports WHERE kind = 'unblocked' OR round > 1 OR revision > 1")
    with op.batch_alter_table("centre_reports") as b:
        b.drop_constraint(op.f("ck_centre_reports_kind"), type_="check")
        b.create_check_constraint(op.f("ck_centre_reports_kind"), OLD_KINDS)
        b.drop_constraint(op.f("uq_centre_reports_case_id_kind_round_revision"), type_="unique")
        b.create_unique_constraint(op.f("uq_centre_reports_case_id_kind"), ["case_id", "kind"])
        for column in (
            "subscriber_unknown",
            "superseded_by",
            "resolution",
            "resolved_by",
            "resolved_at",
        ):
            b.drop_column(column)
        b.drop_column("revision")
        b.drop_column("round")
    with op.batch_alter_table("helpline_complaints") as b:
        b.drop_column("incident_at")
        b.drop_column("stated_received_at")
    with op.batch_alter_table("cases") as b:
        b.drop_column("flags")
        b.drop_column("sender")
        b.drop_column("facts_at")
