"""The PostgreSQL write path of `Store.record()`: a whole batch in ONE statement, one round trip.

Through SQLAlchemy a batch was BEGIN, four INSERTs, COMMIT: six round trips and, because the
multi-row VALUES lists vary in length with the batch, a new server-side prepared statement for
most batches. Here each table's rows travel as column arrays, expanded by `unnest()` in
data-modifying CTEs of a single statement, so the statement text never changes (prepared once per
connection), the batch is atomic without an explicit transaction, and it costs one round trip
and one commit. Child rows (verdicts, alerts, complaints) are inserted only for the messages the
statement actually inserted (`RETURNING id`), which keeps record() idempotent on the message id.
Foreign keys are checked at the end of the statement, after every CTE ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.domain import Inspected

_MESSAGE_TYPES = {
    "id": "varchar",
    "received_at": "float8",
    "smsc": "text",
    "route": "varchar",
    "source": "text",
    "source_ton": "int2",
    "source_npi": "int2",
    "dest": "text",
    "dest_ton": "int2",
    "dest_npi": "int2",
    "data_coding": "int2",
    "esm_class": "int2",
    "parts": "int4",
    "total": "int4",
    "complete": "bool",
    "text": "text",
    "decode_errors": "json",
}
_VERDICT_TYPES = {
    "message_id": "varchar",
    "score": "float8",
    "decision": "varchar",
    "rule_ids": "json",
    "reasons": "json",
}
_ALERT_TYPES = {"id": "varchar", "kind": "varchar", "payload": "json", "created_at": "float8"}
_COMPLAINT_TYPES = {
    "id": "varchar",
    "complainant": "text",
    "forwarded_text": "text",
    "received_at": "float8",
    "message_id": "varchar",
    "suspected_sender": "text",
    "status": "varchar",
}


class _Params:
    def __init__(self) -> None:
        self.n = 0

    def unnest(self, types: dict[str, str], extra: dict[str, str] | None = None) -> str:
        cols = {**types, **(extra or {})}
        args = []
        for kind in cols.values():
            self.n += 1
            args.append(f"${self.n}::{kind}[]")
        return f"unnest({', '.join(args)}) AS u({', '.join(cols)})"


def _statement() -> str:
    p = _Params()
    m_cols = ", ".join(_MESSAGE_TYPES)
    # a message recorded under its prior id (the previous redelivery window) is a redelivery
    messages = (
        f"INSERT INTO messages ({m_cols}) SELECT {m_cols} "
        f"FROM {p.unnest(_MESSAGE_TYPES, {'prior_id': 'varchar'})} "
        "WHERE NOT EXISTS (SELECT 1 FROM messages x WHERE x.id = u.prior_id) "
        "ON CONFLICT (id) DO NOTHING RETURNING id"
    )
    v_cols = ", ".join(_VERDICT_TYPES)
    verdicts = (
        f"INSERT INTO verdicts ({v_cols}) SELECT {v_cols} FROM {p.unnest(_VERDICT_TYPES)} "
        "WHERE u.message_id IN (SELECT id FROM m) ON CONFLICT DO NOTHING"
    )
    a_cols = ", ".join(_ALERT_TYPES)
    alerts = (
        f"INSERT INTO alerts ({a_cols}, attempts) SELECT {a_cols}, 0 "
        f"FROM {p.unnest(_ALERT_TYPES, {'owner': 'varchar'})} "
        "WHERE u.owner IN (SELECT id FROM m) ON CONFLICT DO NOTHING"
    )
    c_cols = ", ".join(_COMPLAINT_TYPES)
    complaints = (
        f"INSERT INTO complaints ({c_cols}) SELECT {c_cols} "
        f"FROM {p.unnest(_COMPLAINT_TYPES, {'owner': 'varchar'})} "
        "WHERE u.owner IN (SELECT id FROM m) ON CONFLICT DO NOTHING"
    )
    return (
        f"WITH m AS ({messages}), v AS ({verdicts}), a AS ({alerts}), c AS ({complaints}) "
        "SELECT coalesce(array_agg(id), '{}') FROM m"
    )


RECORD_SQL = _statement()


def record_args(items: Sequence[Inspected], rows: Any) -> list[list[Any]]:
    """The column arrays of RECORD_SQL for `items` (unique message ids), in parameter order.
    `rows` holds the row builders (the same as the SQLite writer's: JSON already serialised)."""
    messages = [rows.message(it) for it in items]
    verdicts = [rows.verdict(it) for it in items]
    alerts = [(rows.alert(a), it.sms.id) for it in items for a in it.alerts]
    complaints = [(rows.complaint(it), it.sms.id) for it in items if it.complaint is not None]
    args: list[list[Any]] = [[r[c] for r in messages] for c in _MESSAGE_TYPES]
    args.append([it.sms.prior_id for it in items])
    args += [[r[c] for r in verdicts] for c in _VERDICT_TYPES]
    args += [[r[c] for r, _ in alerts] for c in _ALERT_TYPES]
    args.append([owner for _, owner in alerts])
    args += [[r[c] for r, _ in complaints] for c in _COMPLAINT_TYPES]
    args.append([owner for _, owner in complaints])
    return args
