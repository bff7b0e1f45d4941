"""Registry tables on the shared metadata (see gateway/store/models.py): who holds which subscriber
number, who held it when (`number_holdings`), and the applications for more than ten numbers
(Rules points 55-1...55-6, R6).

IINs and names are personal data (R7): they live in `individuals` only; the other tables refer to
a person by the opaque `individuals.id`.
"""

from __future__ import annotations

import sqlalchemy as sa

from .models import ID, TIME, metadata

individuals = sa.Table(
    "individuals",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("iin", sa.String(12), nullable=False),
    sa.Column("surname", sa.Text(), nullable=False),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("patronymic", sa.Text(), nullable=True),  # NULL: none (point 118 "if any")
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
    sa.UniqueConstraint("iin"),
)

numbers = sa.Table(
    "numbers",
    metadata,
    sa.Column("msisdn", sa.String(15), primary_key=True),  # E.164 digits: 77011234567
    sa.Column("imsi", sa.String(15), nullable=False),  # "" when unknown
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("contract_date", sa.Date(), nullable=True),
    sa.Column("contract_id", sa.Text(), nullable=False),  # 55-6: the contract behind it
    sa.Column(
        "person_id",
        ID,
        sa.ForeignKey("individuals.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
    sa.CheckConstraint("status IN ('active', 'suspended', 'terminated')", name="status"),
)

# Who held each number when (issue 14 item 1): a report about past facts names the holder of
# that time, not the number's current holder. [since, until); until NULL while held. At most one
# open holding per number (kept by gateway/registry/history.py).
number_holdings = sa.Table(
    "number_holdings",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "msisdn",
        sa.String(15),
        sa.ForeignKey("numbers.msisdn", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column(
        "person_id",
        ID,
        sa.ForeignKey("individuals.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column("since", TIME, nullable=False),
    sa.Column("until", TIME, nullable=True),
    sa.Column("contract_id", sa.Text(), nullable=False),  # 55-6
    sa.Column("closed_reason", sa.Text(), nullable=True),  # terminated, re-registered...
    sa.CheckConstraint("until IS NULL OR until >= since", name="period"),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "person_id",
        ID,
        sa.ForeignKey("individuals.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column("kind", sa.String(8), nullable=False),  # imei | m2m (55-2)
    sa.Column("identifier", sa.Text(), nullable=False),  # the IMEI or the M2M device identifier
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.UniqueConstraint("person_id", "kind", "identifier"),
    sa.CheckConstraint("kind IN ('imei', 'm2m')", name="kind"),
)

number_applications = sa.Table(
    "number_applications",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "person_id",
        ID,
        sa.ForeignKey("individuals.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column("purpose", sa.Text(), nullable=False),  # 55-3
    # 55-2 "justification and evidence of need"; NULL only on rows older than migration 0010
    sa.Column("justification", sa.Text(), nullable=True),
    sa.Column("requested_count", sa.Integer(), nullable=False),  # numbers to hold in total
    sa.Column("device_ids", sa.JSON(), nullable=False),  # list of devices.id (55-2)
    sa.Column("declared_accurate", sa.Boolean(), nullable=False),  # 55-3
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("submitted_at", TIME, nullable=False),
    # 55-4: the decision is due by then ([registry] application_decision_days working days)
    sa.Column("decide_by", TIME, nullable=True),
    sa.Column("decision_at", TIME, nullable=True),
    sa.Column("decided_by", sa.Text(), nullable=True),  # R8: who decided
    sa.Column("refusal_reason", sa.Text(), nullable=True),  # 55-4
    sa.Column(
        "previous_application_id",  # 55-5: a re-application after this refusal
        ID,
        sa.ForeignKey("number_applications.id", ondelete="RESTRICT"),
        nullable=True,
        unique=True,  # one re-application per refusal
    ),
    sa.CheckConstraint("status IN ('submitted', 'approved', 'refused')", name="status"),
    sa.CheckConstraint(
        "status <> 'refused' OR (refusal_reason IS NOT NULL AND refusal_reason <> '')",
        name="refusal_reason",
    ),
    sa.CheckConstraint("requested_count > 10", name="requested_count"),
)
