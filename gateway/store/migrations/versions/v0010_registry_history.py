"""Registry history: who held each number when (issue 14, item 1); what registration needs (10).

`number_holdings` gets one holding per existing `numbers` row: since the contract date at
midnight Almaty time when there is one, else the row's created_at; a terminated row's holding
ends at its updated_at. `number_applications` gets `justification` (55-2) and `decide_by` (55-4).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME: sa.Double[float] = sa.Double()
ID = sa.String(length=64)
ALMATY = ZoneInfo("Asia/Almaty")
CHUNK = 1000


def upgrade() -> None:
    op.create_table(
        "number_holdings",
        sa.Column("id", ID, nullable=False),
        sa.Column("msisdn", sa.String(length=15), nullable=False),
        sa.Column("person_id", ID, nullable=False),
        sa.Column("since", TIME, nullable=False),
        sa.Column("until", TIME, nullable=True),
        sa.Column("contract_id", sa.Text(), nullable=False),
        sa.Column("closed_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "until IS NULL OR until >= since", name=op.f("ck_number_holdings_period")
        ),
        sa.ForeignKeyConstraint(
            ["msisdn"],
            ["numbers.msisdn"],
            name=op.f("fk_number_holdings_msisdn_numbers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["individuals.id"],
            name=op.f("fk_number_holdings_person_id_individuals"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_holdings")),
    )
    op.create_index(op.f("ix_number_holdings_msisdn"), "number_holdings", ["msisdn"])
    op.create_index(op.f("ix_number_holdings_person_id"), "number_holdings", ["person_id"])
    op.add_column("number_applications", sa.Column("justification", sa.Text(), nullable=True))
    op.add_column("number_applications", sa.Column("decide_by", TIME, nullable=True))
    _backfill()


def _backfill() -> None:
    """One holding per numbers row, read and written in chunks (bounded memory)."""
    conn = op.get_bind()
    numbers = sa.table(
        "numbers",
        sa.column("msisdn", sa.String()),
        sa.column("person_id", sa.String()),
        sa.column("status", sa.String()),
        sa.column("contract_date", sa.Date()),
        sa.column("contract_id", sa.Text()),
        sa.column("created_at", TIME),
        sa.column("updated_at", TIME),
    )
    holdings = sa.table(
        "number_holdings",
        *(sa.column(c) for c in ("id", "msisdn", "person_id", "since", "until")),
        sa.column("contract_id"),
        sa.column("closed_reason"),
    )
    last = ""
    while True:
        rows = conn.execute(
            sa.select(numbers)
            .where(numbers.c.msisdn > last)
            .order_by(numbers.c.msisdn)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        conn.execute(holdings.insert(), [_holding(r) for r in rows])
        last = rows[-1].msisdn


def _holding(r: Any) -> dict[str, Any]:
    since = float(r.created_at)
    if r.contract_date is not None:
        day = r.contract_date
        if isinstance(day, str):  # SQLite without the column's type: ISO text
            day = dt.date.fromisoformat(day)
        since = dt.datetime.combine(day, dt.time(), tzinfo=ALMATY).timestamp()
    until = float(r.updated_at) if r.status == "terminated" else None
    if until is not None:
        since = min(since, until)
    return {
        "id": uuid.uuid4().hex,
        "msisdn": r.msisdn,
        "person_id": r.person_id,
        "since": since,
        "until": until,
        "contract_id": r.contract_id,
        "closed_reason": "terminated" if until is not None else None,
    }


def downgrade() -> None:
    op.drop_column("number_applications", "decide_by")
    op.drop_column("number_applications", "justification")
    op.drop_index(op.f("ix_number_holdings_person_id"), table_name="number_holdings")
    op.drop_index(op.f("ix_number_holdings_msisdn"), table_name="number_holdings")
    op.drop_table("number_holdings")
