"""Call records: the CDR inbox's ledger and the call analyzer's findings (issue 18,
docs/calls.md).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)
TIME: sa.Double[float] = sa.Double()


def upgrade() -> None:
    op.create_table(
        "cdr_files",
        sa.Column("id", ID, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lines_done", sa.BigInteger(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("bad_rows", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("node", sa.Text(), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("finished_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cdr_files")),
        sa.UniqueConstraint("sha256", name=op.f("uq_cdr_files_sha256")),
    )
    op.create_index(op.f("ix_cdr_files_status"), "cdr_files", ["status"])
    op.create_table(
        "cdr_bad_rows",
        sa.Column("file_id", ID, nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("file_id", "line", name=op.f("pk_cdr_bad_rows")),
    )
    op.create_table(
        "call_findings",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("msisdn", sa.Text(), nullable=False),
        sa.Column("imsi", sa.Text(), nullable=False),
        sa.Column("imei", sa.Text(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("first_at", TIME, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("found_at", TIME, nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_findings")),
        sa.UniqueConstraint("kind", "subject", name=op.f("uq_call_findings_kind_subject")),
    )
    op.create_index(op.f("ix_call_findings_at"), "call_findings", ["at"])


def downgrade() -> None:
    op.drop_table("call_findings")
    op.drop_table("cdr_bad_rows")
    op.drop_table("cdr_files")
