"""The operator's inbound endpoint: the centre's reports about numbers (point 119).

    async with CentreEndpoint(config, opener, journal=StoreJournal(store)) as ep:
        ...   # https://{host}:{ep.port}/v1/reports, client certificates of the centre's CA only

`POST /v1/reports` takes one report (docs/centre-inbound.schema.json). A new report opens a case
through the `CaseOpener` port and is answered `202 {"case_id": ...}`; a report whose id was seen
before is answered `200` with the same case id, without calling the opener again. Bad JSON or a
schema violation is answered `400 {"error": ..., "paths": [...]}` and nothing is written.

The client proved who it is in the TLS handshake, so the body's limits come first: the request
guard (gateway/http/guard.py) answers 413 to a Content-Length over `max_body` without reading
it and cuts a chunked body at `max_body`, 408 to a body not sent in time, 400 to JSON nested
too deep; only then is the body parsed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.dialects import postgresql, sqlite

from gateway.http.guard import RequestGuard
from gateway.store import StoreError
from gateway.store.models_centre import centre_inbound

from .config import EndpointConfig
from .outbox import StoreLike
from .reports import parse_time
from .schema import inbound_errors
from .server import TlsHttpServer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InboundReport:
    """The centre's information about numbers, validated."""

    report_id: str  # the centre's id: duplicates open one case
    numbers: tuple[str, ...]  # E.164 with '+'
    category: str  # fraud_calls, simbox, smishing, spoofing, other
    description: str
    reported_at: float  # epoch seconds
    received_at: float
    incident_at: float | None = None  # when the fraud happened, if the centre says

    @classmethod
    def from_document(cls, doc: dict[str, Any], received_at: float) -> InboundReport:
        return cls(
            report_id=doc["report_id"],
            numbers=tuple(doc["numbers"]),
            category=doc["category"],
            description=doc.get("description", ""),
            reported_at=parse_time(doc["reported_at"]),
            received_at=received_at,
            incident_at=parse_time(doc["incident_at"]) if "incident_at" in doc else None,
        )


class CaseOpener(Protocol):
    """The cases module: open (or find) the case of a centre report. Idempotent on
    `report.report_id`: a repeat returns the case the first call opened."""

    async def open_from_centre(self, report: InboundReport) -> str: ...


class InboundJournal(Protocol):
    """Which centre reports were seen and the case each one opened."""

    async def case_for(self, report_id: str) -> str | None: ...

    async def record(self, report: InboundReport, case_id: str, payload: dict[str, Any]) -> bool:
        """True when this call recorded it (False: it was there already)."""
        ...


class MemoryJournal:
    """A journal in memory (tests, the simulator): forgets on restart; the opener's own
    idempotency still gives the same case, answered 202 instead of 200."""

    def __init__(self) -> None:
        self.cases: dict[str, str] = {}

    async def case_for(self, report_id: str) -> str | None:
        return self.cases.get(report_id)

    async def record(self, report: InboundReport, case_id: str, payload: dict[str, Any]) -> bool:
        if report.report_id in self.cases:
            return False
        self.cases[report.report_id] = case_id
        return True


class StoreJournal:
    """The journal in the `centre_inbound` table (audit, R8)."""

    def __init__(self, store: StoreLike) -> None:
        self.store = store

    async def case_for(self, report_id: str) -> str | None:
        query = sa.select(centre_inbound.c.case_id).where(centre_inbound.c.report_id == report_id)
        with self.store.guard("centre inbound lookup"):
            async with self.store.engine.connect() as conn:
                value = (await conn.execute(query)).scalar()
                return str(value) if value is not None else None

    async def record(self, report: InboundReport, case_id: str, payload: dict[str, Any]) -> bool:
        with self.store.guard("centre inbound record"):
            async with self.store.engine.begin() as conn:
                insert: Any = (
                    postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
                )
                row = {
                    "report_id": report.report_id,
                    "case_id": case_id,
                    "category": report.category,
                    "reported_at": report.reported_at,
                    "received_at": report.received_at,
                    "payload": payload,
                }
                result = await conn.execute(insert(centre_inbound).on_conflict_do_nothing(), row)
                return bool(result.rowcount)


def build_app(
    opener: CaseOpener,
    journal: InboundJournal,
    *,
    max_body: int = 64 * 1024,
    client_timeout: float = 10.0,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The ASGI application of the inbound endpoint, its body bounded before it is parsed."""
    app = FastAPI(title="fraudgate: reports from the anti-fraud centre", openapi_url=None)
    app.add_middleware(
        RequestGuard, max_body=max_body, client_timeout=client_timeout, error_body=_error_body
    )
    lock = asyncio.Lock()  # one report at a time: look-up, open and record never interleave

    @app.post("/v1/reports")
    async def post_report(request: Request) -> JSONResponse:
        body = await request.body()  # whole and within max_body: the guard read it
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError) as e:  # nesting is bounded by the guard already
            return _bad("bad_json", [f"not JSON: {type(e).__name__}"])
        problems = inbound_errors(doc)
        if problems:
            return _bad("schema", problems)
        report = InboundReport.from_document(doc, clock())
        async with lock:
            return await _accept(report, doc, opener, journal)

    return app


async def _accept(
    report: InboundReport, doc: dict[str, Any], opener: CaseOpener, journal: InboundJournal
) -> JSONResponse:
    try:
        known = await journal.case_for(report.report_id)
        if known is not None:
            log.info("centre report %s again: case %s", report.report_id, known)
            return JSONResponse({"case_id": known}, status_code=200)
        case_id = await opener.open_from_centre(report)
        new = await journal.record(report, case_id, doc)
    except StoreError as e:
        log.warning("centre report %s not taken now: %s", report.report_id, e)
        return JSONResponse({"error": "unavailable"}, status_code=503, headers={"Retry-After": "5"})
    log.info("centre report %s (%s) -> case %s", report.report_id, report.category, case_id)
    return JSONResponse({"case_id": case_id}, status_code=202 if new else 200)


def _bad(error: str, paths: list[str], *, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "paths": paths[:20]}, status_code=status)


def _error_body(error: str, detail: str) -> dict[str, Any]:
    """The guard's refusals in this endpoint's error shape."""
    return {"error": error, "paths": [detail]}


class CentreEndpoint:
    """The inbound HTTPS endpoint as one async context manager (uvicorn in this event loop)."""

    def __init__(
        self,
        config: EndpointConfig,
        opener: CaseOpener,
        *,
        journal: InboundJournal | None = None,
    ) -> None:
        self.config = config
        self.journal = journal or MemoryJournal()
        self.app = build_app(
            opener, self.journal, max_body=config.max_body, client_timeout=config.client_timeout
        )
        self._server = TlsHttpServer(
            self.app,
            cert=config.cert,
            key=config.key,
            client_ca=config.client_ca,
            host=config.host,
            port=config.port,
            name="centre-endpoint",
            max_connections=config.max_connections,
            client_timeout=config.client_timeout,
        )

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.url

    async def __aenter__(self) -> Self:
        await self._server.start()
        log.info("centre endpoint listening on %s", self.url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._server.stop()


__all__ = [
    "CaseOpener",
    "CentreEndpoint",
    "InboundJournal",
    "InboundReport",
    "MemoryJournal",
    "StoreJournal",
    "build_app",
]
