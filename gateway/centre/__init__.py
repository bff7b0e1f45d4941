"""The link with the National Bank anti-fraud centre (points 117-120; R2, R3, R5).

Out: `CentreOutbox.enqueue()` queues a report in the caller's transaction (the cases module's
sink); `CentreDispatcher` delivers the queue over HTTPS with mutual TLS and idempotency keys.
In: `CentreEndpoint` takes the centre's reports and opens cases through a `CaseOpener`.
The API and its schemas: docs/centre-api.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.lazy import exports

if TYPE_CHECKING:
    from .client import Ack, CentreClient
    from .config import CentreConfig, EndpointConfig
    from .dispatcher import CentreDispatcher
    from .endpoint import (
        CaseOpener,
        CentreEndpoint,
        InboundJournal,
        InboundReport,
        MemoryJournal,
        StoreJournal,
        build_app,
    )
    from .errors import (
        CentreConfigError,
        CentreError,
        CentreTlsError,
        CentreUnavailable,
        ReportRejected,
    )
    from .outbox import CentreOutbox, CentreReports, PendingReport
    from .reports import build_report
    from .schema import INBOUND_SCHEMA, REPORT_SCHEMA, inbound_errors, report_errors

__getattr__ = exports(
    __name__,
    {
        "Ack": ".client",
        "CentreClient": ".client",
        "CentreConfig": ".config",
        "EndpointConfig": ".config",
        "CentreDispatcher": ".dispatcher",
        "CaseOpener": ".endpoint",
        "CentreEndpoint": ".endpoint",
        "InboundJournal": ".endpoint",
        "InboundReport": ".endpoint",
        "MemoryJournal": ".endpoint",
        "StoreJournal": ".endpoint",
        "build_app": ".endpoint",
        "CentreConfigError": ".errors",
        "CentreError": ".errors",
        "CentreTlsError": ".errors",
        "CentreUnavailable": ".errors",
        "ReportRejected": ".errors",
        "CentreOutbox": ".outbox",
        "CentreReports": ".outbox",
        "PendingReport": ".outbox",
        "build_report": ".reports",
        "INBOUND_SCHEMA": ".schema",
        "REPORT_SCHEMA": ".schema",
        "inbound_errors": ".schema",
        "report_errors": ".schema",
    },
)

__all__ = [
    "INBOUND_SCHEMA",
    "REPORT_SCHEMA",
    "Ack",
    "CaseOpener",
    "CentreClient",
    "CentreConfig",
    "CentreConfigError",
    "CentreDispatcher",
    "CentreEndpoint",
    "CentreError",
    "CentreOutbox",
    "CentreReports",
    "CentreTlsError",
    "CentreUnavailable",
    "EndpointConfig",
    "InboundJournal",
    "InboundReport",
    "MemoryJournal",
    "PendingReport",
    "ReportRejected",
    "StoreJournal",
    "build_app",
    "build_report",
    "inbound_errors",
    "report_errors",
]
