"""`--log-format json`: one JSON object per log record, on one line, with stable field names.

    ts         ISO 8601 UTC with milliseconds: "2026-03-01T09:15:02.137Z"
    level      DEBUG, INFO, WARNING, ERROR, CRITICAL
    logger     the logger's name: "gateway.daemon", "smsc.client", "alembic.runtime.migration"
    message    the message with its arguments substituted, exactly as the text format shows it
    exc_info   the traceback, when the record has one (one string, newlines escaped)
    stack_info the stack, when the record asked for one
    ...        the fields a logging call passes in `extra=` (the project passes none today)

The fields are those of the text format (LOG_FORMAT in gateway.cli) and nothing else of the
record: never `args` (an SQL statement's parameters are args), the path, the process or the
thread. Which loggers may write at all is decided by gateway.cli.setup_logging, the same for
both formats. The formatter is python-json-logger's, not a hand-rolled one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

FIELDS = {"asctime": "ts", "levelname": "level", "name": "logger", "message": "message"}
# Record attributes never written beside the fields above. uvicorn's `color_message` repeats
# the message with terminal colours; `taskName` is a record attribute from Python 3.12.
SKIPPED = frozenset(RESERVED_ATTRS) | {"color_message", "taskName"}


class GatewayJsonFormatter(JsonFormatter):
    """python-json-logger's formatter with the field names above and UTC timestamps."""

    def __init__(self) -> None:
        super().__init__(
            " ".join(f"%({name})s" for name in FIELDS),
            rename_fields={k: v for k, v in FIELDS.items() if k != v},
            reserved_attrs=sorted(SKIPPED),
            json_ensure_ascii=False,  # Russian and Kazakh stay readable in the journal
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
