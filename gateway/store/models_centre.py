"""Centre tables on the shared metadata (see gateway/store/models.py).

`centre_reports` is the transactional outbox of reports to the National Bank anti-fraud centre
(points 118, 120): a row is written in the same transaction as the case change that causes it,
and the dispatcher (gateway.centre) delivers it. Its `payload` holds the subscriber's personal
data (names, IIN, numbers: point 118) and is the one place it is stored for the centre (R7).

`centre_inbound` journals the centre's reports (point 119) and the case each one opened, so a
repeat is answered with the same case (R2, R8).
"""

from __future__ import annotations

import sqlalchemy as sa

from .models import ID, TIME, metadata

centre_reports = sa.Table(
    "centre_reports",
    metadata,
    sa.Column("id", ID, primary_key=True),  # the report_id: the Idempotency-Key
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("case_id", ID, nullable=False),
    sa.Column("round", sa.Integer(), nullable=False),  # the case transition it reports
    sa.Column("revision", sa.Integer(), nullable=False),  # 2, 3...: resent with new content
    sa.Column("payload", sa.JSON(), nullable=False),  # the report without sent_at
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("sent_at", TIME, nullable=True),  # first attempt (NULL: never sent)
    sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("acked_at", TIME, nullable=True),  # NULL until the centre acknowledged it
    sa.Column("ack_id", sa.String(128), nullable=True),  # the centre's id for it
    sa.Column("failed_at", TIME, nullable=True),  # refused for good: kept, not retried
    # a refused report stays an attention item (alerted again) until someone acts on it:
    # resent (superseded_by the new revision) or dismissed with a reason
    sa.Column("resolved_at", TIME, nullable=True),
    sa.Column("resolved_by", sa.String(128), nullable=True),
    sa.Column("resolution", sa.Text(), nullable=True),
    sa.Column("superseded_by", ID, nullable=True),
    # a detection sent without a subscriber (unknown to the registry): an analyst completes it
    sa.Column("subscriber_unknown", sa.Boolean(), nullable=False, server_default=sa.false()),
    # one report per event and revision, whatever happens
    sa.UniqueConstraint("case_id", "kind", "round", "revision"),
    sa.CheckConstraint(
        "kind IN ('detection', 'suspended', 'not_confirmed', 'unblocked')", name="kind"
    ),
    sa.Index("ix_centre_reports_pending", "acked_at", "failed_at", "created_at"),
)

centre_inbound = sa.Table(
    "centre_inbound",
    metadata,
    sa.Column("report_id", sa.String(64), primary_key=True),  # the centre's id
    sa.Column("case_id", ID, nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("reported_at", TIME, nullable=False),
    sa.Column("received_at", TIME, nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),  # as received (audit)
)

__all__ = ["centre_inbound", "centre_reports"]
