"""Inline forwarding table on the shared metadata (see gateway/store/models.py, docs/inline.md).

deliveries   one row per message the gateway submitted onward (forward mode): how the onward
             submit_sm went (every part accepted, or the first refusal / timeout), and the final
             delivery state the SMSC's receipts reported (NULL while pending)
"""

from __future__ import annotations

import sqlalchemy as sa

from .models import ID, TIME, metadata

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("message_id", ID, sa.ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("smsc", sa.Text(), nullable=False),  # the bind it came in and went out on
    sa.Column("parts", sa.Integer(), nullable=False),
    sa.Column("onward_status", sa.String(16), nullable=False),  # submitted | failed
    sa.Column("onward_error", sa.Integer(), nullable=True),  # the refusing submit_sm_resp status
    sa.Column("onward_detail", sa.Text(), nullable=False),  # "", "timeout", "link closed", ...
    sa.Column("submit_ids", sa.Text(), nullable=False),  # submit_sm_resp message_ids, by part
    sa.Column("receipt_requested", sa.Boolean(), nullable=False),  # the phone asked for one
    # delivered | undeliverable | expired | rejected | unknown; NULL while receipts are awaited
    sa.Column("final_state", sa.String(16), nullable=True),
    sa.Column("receipt_id", sa.Text(), nullable=True),  # the SMSC's receipt ids, by part
    sa.Column("submitted_at", TIME, nullable=False, index=True),
    sa.Column("done_at", TIME, nullable=True),
)

__all__ = ["deliveries"]
