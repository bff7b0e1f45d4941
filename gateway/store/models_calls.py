"""Call records' intake and the call findings on the shared metadata (gateway/calls, docs/calls.md).

cdr_files      one row per CDR file taken from the inbox, by its content's SHA-256: a file
               dropped twice (or under another name) is read once. `lines_done` is the
               checkpoint a restart resumes from; bad rows are counted, the first few kept in
               cdr_bad_rows with their line and error.
call_findings  what the call analyzer found (SIM-box SIM, its IMEI / cell siblings, Wangiri
               number, spoofed CLI): one row per (kind, subject), however often it is seen;
               the workflow opens cases from them.
"""

from __future__ import annotations

import sqlalchemy as sa

from .models import ID, TIME, metadata

cdr_files = sa.Table(
    "cdr_files",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.Text(), nullable=False),  # as it was dropped
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # reading | done | failed
    sa.Column("lines_done", sa.BigInteger(), nullable=False),  # checkpoint: lines handed over
    sa.Column("records", sa.BigInteger(), nullable=False),
    sa.Column("bad_rows", sa.BigInteger(), nullable=False),
    sa.Column("duplicates", sa.BigInteger(), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),  # why the file stopped early (truncated gzip)
    sa.Column("node", sa.Text(), nullable=False),
    sa.Column("started_at", TIME, nullable=False),
    sa.Column("finished_at", TIME, nullable=True),
)

cdr_bad_rows = sa.Table(
    "cdr_bad_rows",
    metadata,
    sa.Column("file_id", ID, nullable=False),
    sa.Column("line", sa.BigInteger(), nullable=False),
    sa.Column("error", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("file_id", "line"),
)

call_findings = sa.Table(
    "call_findings",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("kind", sa.String(24), nullable=False),  # simbox, simbox_sibling, wangiri, ...

    sa.Column("subject", sa.Text(), nullable=False),  # the SIM's MSISDN, the calling number, ...
    sa.Column("msisdn", sa.Text(), nullable=False),  # E.164 digits of our subscriber, "" if none
    sa.Column("imsi", sa.Text(), nullable=False),
    sa.Column("imei", sa.Text(), nullable=False),
    sa.Column("score", sa.Double(), nullable=False),
    sa.Column("first_at", TIME, nullable=False),  # the first call counted as evidence
    sa.Column("at", TIME, nullable=False, index=True),  # the record that crossed the threshold
    sa.Column("found_at", TIME, nullable=False),  # wall clock
    sa.Column("reasons", sa.Text(), nullable=False),  # JSON list of {id, score, description}
    sa.Column("details", sa.Text(), nullable=False),  # JSON object: counts, cell, TAC, trunk
    sa.UniqueConstraint("kind", "subject"),
)

__all__ = ["call_findings", "cdr_bad_rows", "cdr_files"]
