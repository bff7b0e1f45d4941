"""The tables, as SQLAlchemy Core metadata. The migrations under `migrations/` create exactly this
schema (a test compares them with alembic's autogenerate on SQLite and PostgreSQL).

Times are epoch seconds (UTC) in double precision, as in the domain model: exact round trips,
cheap comparisons for retention, and the same type on every dialect.
"""

from __future__ import annotations

import sqlalchemy as sa

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

ID = sa.String(64)  # message, alert and complaint ids (uuid hex by default; SMSC ids fit too)
TIME: sa.Double[float] = sa.Double()  # epoch seconds, UTC

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("received_at", TIME, nullable=False, index=True),
    sa.Column("smsc", sa.Text(), nullable=False),
    sa.Column("route", sa.String(16), nullable=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("source_ton", sa.SmallInteger(), nullable=False),
    sa.Column("source_npi", sa.SmallInteger(), nullable=False),
    sa.Column("dest", sa.Text(), nullable=False),
    sa.Column("dest_ton", sa.SmallInteger(), nullable=False),
    sa.Column("dest_npi", sa.SmallInteger(), nullable=False),
    sa.Column("data_coding", sa.SmallInteger(), nullable=False),
    sa.Column("esm_class", sa.SmallInteger(), nullable=False),
    sa.Column("parts", sa.Integer(), nullable=False),
    sa.Column("total", sa.Integer(), nullable=False),
    sa.Column("complete", sa.Boolean(), nullable=False),
    # NULL once the retention period is over (Store.purge_text).
    sa.Column("text", sa.Text(), nullable=True),
    sa.Column("decode_errors", sa.JSON(), nullable=False),  # list of strings
)

verdicts = sa.Table(
    "verdicts",
    metadata,
    sa.Column(
        "message_id",
        ID,
        sa.ForeignKey("messages.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("score", sa.Double(), nullable=False),
    sa.Column("decision", sa.String(8), nullable=False),
    sa.Column("rule_ids", sa.JSON(), nullable=False),  # list of strings, strongest first
    # [{detector, rule_id, score, description, block, spans: [{start, end}]}]; a span's text is
    # not copied here: it is messages.text[start:end] while the text is kept, gone with it.
    sa.Column("reasons", sa.JSON(), nullable=False),
    sa.CheckConstraint("decision IN ('allow', 'flag', 'block')", name="decision"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("sent_at", TIME, nullable=True),  # NULL until the broker acknowledged it
    sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("last_error", sa.Text(), nullable=True),
    # Set when the alert can never be published as it is (e.g. it carries personal data): it is
    # kept for analysts but no longer pending.
    sa.Column("failed_at", TIME, nullable=True),
    sa.Index("ix_alerts_pending", "sent_at", "failed_at", "created_at"),
    sa.Index("ix_alerts_kind_created", "kind", "created_at"),  # the console's campaigns page
)

complaints = sa.Table(
    "complaints",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("complainant", sa.Text(), nullable=False),
    sa.Column("forwarded_text", sa.Text(), nullable=True),  # NULL after retention
    sa.Column("received_at", TIME, nullable=False, index=True),
    sa.Column(
        "message_id",
        ID,
        sa.ForeignKey("messages.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("suspected_sender", sa.Text(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default=sa.text("'new'")),
)

# -- probes: test-call results and the SIM-box numbers they name ------------------------------

probe_findings = sa.Table(
    "probe_findings",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("at", TIME, nullable=False, index=True),
    sa.Column("probe", sa.Text(), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("confidence", sa.Double(), nullable=False),
    sa.Column("observed", sa.Text(), nullable=False),  # CLI / originator as received
    sa.Column("observed_ton", sa.SmallInteger(), nullable=False),
    sa.Column("number", sa.Text(), nullable=False, index=True),  # E.164 named, "" for none
    sa.Column("test_id", ID, nullable=True),  # NULL for an unannounced event
    sa.Column("test_kind", sa.String(8), nullable=True),
    sa.Column("a_number", sa.Text(), nullable=True),
    sa.Column("route", sa.Text(), nullable=True),
    sa.Column("description", sa.Text(), nullable=False),
    sa.UniqueConstraint("test_id"),  # one result per announced test
)

simbox_numbers = sa.Table(
    "simbox_numbers",
    metadata,
    sa.Column("number", sa.String(32), primary_key=True),  # E.164 digits
    sa.Column("first_seen", TIME, nullable=False),
    sa.Column("last_seen", TIME, nullable=False),
    sa.Column("sightings", sa.Integer(), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # of the latest sighting
    sa.Column("last_route", sa.Text(), nullable=False),
)

# Tables of the legal workflow live in their own modules, on the same metadata.
from . import (  # noqa: E402, F401
    models_api,
    models_calls,
    models_cases,
    models_centre,
    models_delivery,
    models_feedback,
    models_proxy,
    models_registry,
    models_state,
)
