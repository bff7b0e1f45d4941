"""The A2P proxy's journal: submits accepted from aggregators, receipts and MO kept for them
(issue 17, docs/proxy.md).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)
TIME: sa.Double[float] = sa.Double()


def upgrade() -> None:
    op.create_table(
        "proxy_submits",
        sa.Column("id", ID, nullable=False),
        sa.Column("public_id", sa.String(64), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("node", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("pdu", sa.LargeBinary(), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=True),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("receipt", sa.SmallInteger(), nullable=False),
        sa.Column("smsc_id", sa.Text(), nullable=True),
        sa.Column("upstream", sa.Text(), nullable=True),
        sa.Column("error", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proxy_submits")),
    )
    op.create_index(op.f("ix_proxy_submits_state"), "proxy_submits", ["state"])
    op.create_index(op.f("ix_proxy_submits_public_id"), "proxy_submits", ["public_id"])
    op.create_index(op.f("ix_proxy_submits_smsc_id"), "proxy_submits", ["smsc_id"])
    op.create_index(op.f("ix_proxy_submits_created_at"), "proxy_submits", ["created_at"])
    op.create_table(
        "proxy_inbound",
        sa.Column("id", ID, nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("pdu", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("delivered_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proxy_inbound")),
    )
    op.create_index(
        "ix_proxy_inbound_account_delivered_at", "proxy_inbound", ["account", "delivered_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_proxy_inbound_account_delivered_at", table_name="proxy_inbound")
    op.drop_table("proxy_inbound")
    op.drop_index(op.f("ix_proxy_submits_created_at"), table_name="proxy_submits")
    op.drop_index(op.f("ix_proxy_submits_smsc_id"), table_name="proxy_submits")
    op.drop_index(op.f("ix_proxy_submits_public_id"), table_name="proxy_submits")
    op.drop_index(op.f("ix_proxy_submits_state"), table_name="proxy_submits")
    op.drop_table("proxy_submits")
