"""The Live page: messages per second by decision and the latest flagged / blocked messages
with their reasons, pushed once a second by Server-Sent Events from the daemon's LiveFeed
(live.py).

    GET /console/              the page (static/live.js draws it)
    GET /console/live/stream   text/event-stream: "history" first, then one "tick" a second

The stream is masked for a role without personal data (live.py says what is hidden). Opening
it is audited like a read of cases: with personal data for a role that sees it, without for an
auditor (every read of theirs is audited). The stream ends when the client goes, when the
session ends (sign-out, lifetime; an open live page counts as activity) or at the daemon's
drain; a process that inspects no traffic (`fraudgate console`) answers 204, which tells the
browser not to reconnect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from gateway.api.auth import Permission

from .app import Page

if TYPE_CHECKING:
    from .app import Console
    from .sessions import Session

STREAM_HEADERS = {
    "cache-control": "no-store",
    "x-accel-buffering": "no",  # nginx in front: pass each event on at once
    "x-content-type-options": "nosniff",
}


def routes(console: Console) -> list[BaseRoute]:
    async def page(request: Request, s: Session) -> Response:
        return console.render(
            request, s, Page("live.html", {"has_source": console.sources.live is not None})
        )

    async def stream(request: Request, s: Session) -> Response:
        live = console.sources.live
        if live is None:
            return Response(status_code=204, headers=STREAM_HEADERS)
        personal = s.principal.may(Permission.PERSONAL_DATA)
        if personal or s.principal.reads_audited:
            await console.audit(request, s, "live.read", "live", "", personal)
        events = _events(console, s, live.subscribe(masked=not personal))
        return StreamingResponse(events, media_type="text/event-stream", headers=STREAM_HEADERS)

    return [
        Route("/", console.page(Permission.CASES_READ, page), methods=["GET"]),
        Route("/live/stream", console.page(Permission.CASES_READ, stream), methods=["GET"]),
    ]


async def _events(console: Console, s: Session, sub: Any) -> AsyncIterator[bytes]:
    """The subscription's events while the session lives; unsubscribed however it ends (the
    client gone cancels this generator inside its wait)."""
    try:
        async for event in sub:
            if console.sessions.get(s.id, console.clock()) is None:
                return  # signed out, or the session is over
            yield event
    finally:
        sub.close()
