"""Cases tables on the shared metadata (see gateway/store/models.py and docs/cases.md).

cases                 one row per case; state and both legal deadlines (R4 verify_by, R5 act_by)
                      are computed when they start and stored, so a restart changes nothing
case_transitions      every state change: who (actor, role), when, why, on which evidence (R8)
case_evidence         links to messages, probe findings, complaints, centre reports
case_switch_actions   each block/unblock asked of the switch, one row per number and round; its
                      id is the idempotency key sent to the switch, so a retry is safe
case_deadline_alerts  which deadline warnings were put in the alert outbox (sent once each)
"""

from __future__ import annotations

import sqlalchemy as sa

from .models import ID, TIME, metadata

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("source", sa.String(24), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("subjects", sa.JSON(), nullable=False),  # E.164 numbers the case names
    sa.Column("person_id", sa.String(64), nullable=True, index=True),  # registry, when known
    sa.Column("external_id", sa.String(128), nullable=True),  # the centre's report id
    sa.Column("received_at", TIME, nullable=False, index=True),  # the legal clock
    sa.Column("facts_at", TIME, nullable=True),  # when the facts happened (NULL: received_at)
    sa.Column("sender", sa.String(64), nullable=True),  # an alphanumeric sender, as reported
    sa.Column("flags", sa.JSON(), nullable=True),  # model.FLAGS (NULL: none)
    sa.Column("verify_by", TIME, nullable=False),  # R4, point 119
    sa.Column("decided_at", TIME, nullable=True),
    sa.Column("act_by", TIME, nullable=True),  # R5, point 120
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),  # optimistic concurrency
    sa.UniqueConstraint("source", "external_id"),  # a re-delivered centre report: one case
    sa.CheckConstraint(
        "source IN ('detection_sms', 'detection_simbox', 'complaint', 'centre')", name="source"
    ),
    sa.CheckConstraint(
        "state IN ('new', 'verifying', 'confirmed', 'not_confirmed', 'suspended', 'unblocked',"
        " 'closed', 'reopened')",
        name="state",
    ),
)

case_transitions = sa.Table(
    "case_transitions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("from_state", sa.String(16), nullable=True),  # NULL for the opening
    sa.Column("action", sa.String(24), nullable=False),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("at", TIME, nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("evidence", sa.JSON(), nullable=False),  # [{kind, ref, attrs}]
    sa.UniqueConstraint("case_id", "seq"),
)

case_evidence = sa.Table(
    "case_evidence",
    metadata,
    sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("kind", sa.String(24), primary_key=True),
    sa.Column("ref", sa.String(128), primary_key=True),
    sa.Column("attrs", sa.JSON(), nullable=False),
    sa.Column("added_at", TIME, nullable=False),
    sa.Column("added_by", sa.String(128), nullable=False),
)

case_switch_actions = sa.Table(
    "case_switch_actions",
    metadata,
    sa.Column("id", ID, primary_key=True),  # the Idempotency-Key sent to the switch
    sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    sa.Column("round", sa.Integer(), nullable=False),  # the case's transition seq it serves
    sa.Column("action", sa.String(8), nullable=False),
    sa.Column("msisdn", sa.String(32), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("requested_by", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("requested_at", TIME, nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("done_at", TIME, nullable=True),
    sa.Column("answer", sa.JSON(), nullable=True),  # the switch's answer (SwitchResult)
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("error_kind", sa.String(16), nullable=True),  # unavailable | rejected
    sa.UniqueConstraint("case_id", "round", "action", "msisdn"),
    sa.CheckConstraint("action IN ('block', 'unblock')", name="action"),
    sa.CheckConstraint("status IN ('pending', 'done', 'rejected')", name="status"),
    sa.Index("ix_case_switch_actions_status", "status", "case_id"),
)

case_deadline_alerts = sa.Table(
    "case_deadline_alerts",
    metadata,
    sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(96), primary_key=True),  # deadline:stage:due (epoch ms)
    sa.Column("alert_id", ID, nullable=False),
    sa.Column("created_at", TIME, nullable=False),
)

__all__ = [
    "case_deadline_alerts",
    "case_evidence",
    "case_switch_actions",
    "case_transitions",
    "cases",
]
