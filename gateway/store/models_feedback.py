"""Analysts' feedback on verdicts on the shared metadata (see gateway/store/models.py and
docs/api.md "Feedback").

feedback  one row per "this verdict was wrong / right" an analyst gave on a recorded message:
          the label it gives the message's text (training, docs/classifier.md "Feedback"), and
          for a wrong flag or block with scope sender or template, an exemption in force until
          `expires_at` unless revoked. Who gave and who revoked it, when and why, stay here: the
          API audit row names the feedback by id (free text is kept out of the audit log, which
          auditors read without the personal-data permission).
"""

from __future__ import annotations

import sqlalchemy as sa

from .models import ID, TIME, metadata

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "message_id",
        ID,
        sa.ForeignKey("messages.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("verdict", sa.String(8), nullable=False),  # wrong | right
    sa.Column("label", sa.String(12), nullable=False),  # fraud | legitimate
    sa.Column("scope", sa.String(8), nullable=False),  # message | sender | template
    # sender: "<bind>/<source address>"; template: hex SHA-256 of the normalised text; NULL for
    # scope message (gateway.feedback.model: sender_key, template_key)
    sa.Column("key", sa.String(128), nullable=True),
    sa.Column("decision", sa.String(8), nullable=False),  # the message's, when judged
    # the findings judged (rule ids): an exemption waives these and no others
    sa.Column("rules", sa.JSON(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("created_at", TIME, nullable=False, index=True),
    sa.Column("expires_at", TIME, nullable=True),  # exemptions only
    sa.Column("revoked_at", TIME, nullable=True),
    sa.Column("revoked_by", sa.String(128), nullable=True),
    sa.Column("revoke_reason", sa.Text(), nullable=True),
    sa.CheckConstraint("verdict IN ('wrong', 'right')", name="verdict"),
    sa.CheckConstraint("label IN ('fraud', 'legitimate')", name="label"),
    sa.CheckConstraint("scope IN ('message', 'sender', 'template')", name="scope"),
    sa.Index("ix_feedback_active", "revoked_at", "expires_at"),
)

__all__ = ["feedback"]
