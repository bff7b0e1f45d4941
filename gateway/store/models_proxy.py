"""The A2P proxy's journal on the shared metadata (gateway/proxy/journal.py, docs/proxy.md).

proxy_submits  one row per submit an aggregator was answered ROK for: the PDU as it goes to
               the SMSC, its state (held: a leading part waiting for its message's last part;
               pending: to send; sending: sent, the SMSC's answer not written yet; forwarded;
               failed; dropped: its message was blocked; cancelled), the SMSC's id once known.
               Written before the aggregator's submit_sm_resp: what was accepted is forwarded
               after any restart, and a resubmission is answered with the first id.
proxy_inbound  receipts and MO messages for an aggregator that was not bound (or did not
               answer) when the SMSC delivered them: kept until it binds and takes them.
"""

from __future__ import annotations

import sqlalchemy as sa

from .models import ID, TIME, metadata

proxy_submits = sa.Table(
    "proxy_submits",
    metadata,
    sa.Column("id", ID, primary_key=True),  # the message record's id (resubmissions find it)
    # the id the aggregator got: the same, or a decimal one for accounts with id_format decimal
    sa.Column("public_id", sa.String(64), nullable=False, index=True),
    sa.Column("account", sa.Text(), nullable=False),
    sa.Column("node", sa.Text(), nullable=False),  # the gateway node that accepted it
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("pdu", sa.LargeBinary(), nullable=False),  # the request as sent upstream
    sa.Column("group_key", sa.Text(), nullable=True),  # a long message's parts share it
    sa.Column("part", sa.Integer(), nullable=False),  # its sequence number in the message
    sa.Column("receipt", sa.SmallInteger(), nullable=False),  # the aggregator's registered_delivery
    sa.Column("smsc_id", sa.Text(), nullable=True, index=True),  # the SMSC's message id
    sa.Column("upstream", sa.Text(), nullable=True),  # the bind it went out on
    sa.Column("error", sa.Integer(), nullable=True),  # the SMSC's refusal status
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("created_at", TIME, nullable=False, index=True),
    sa.Column("updated_at", TIME, nullable=False),
)

proxy_inbound = sa.Table(
    "proxy_inbound",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("account", sa.Text(), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # receipt | mo
    sa.Column("pdu", sa.LargeBinary(), nullable=False),  # the deliver_sm as the aggregator gets it
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("delivered_at", TIME, nullable=True),
    sa.Index("ix_proxy_inbound_account_delivered_at", "account", "delivered_at"),
)

__all__ = ["proxy_inbound", "proxy_submits"]
