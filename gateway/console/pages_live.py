"""The Live page: messages per second by decision and the latest flagged / blocked messages
with their reasons, pushed once a second by Server-Sent Events from the daemon's LiveFeed
(live.py).

    GET /console/              the page (static/live.js draws it)
    GET /console/live/stream   text/event-stream: "history" first, then one "tick" a second

The stream is masked for a role without personal data (live.py says what is hidden). Opening
it is audited like a read of cases: with personal data for a role that sees it, without for an
auditor (every read of theirs is audited). Streams are bounded (live.py): one per session, a
few per user, `max_streams` in all; beyond that the stream answers 503 with Retry-After and the
page says so instead of drawing. The stream ends when the client goes, when the session ends
(sign-out, lifetime, idle timeout: neither opening the stream nor an open one counts as
activity, so an unattended page does not keep a session alive) or at the daemon's drain; a
process that inspects no traffic (`fraudgate console`) answers 204, which tells the browser not
to reconnect.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from gateway.api.auth import Permission

from .app import LivePort, Page
from .live import StreamsFull

if TYPE_CHECKING:
    from .app import Console
    from .live import Subscription
    from .sessions import Session

log = logging.getLogger(__name__)

STREAM_HEADERS = {
    "cache-control": "no-store",
    "x-accel-buffering": "no",  # nginx in front: pass each event on at once
    "x-content-type-options": "nosniff",
}


def routes(console: Console) -> list[BaseRoute]:
    def feed() -> LivePort | None:
        return console.sources.live

    async def page(request: Request, s: Session) -> Response:
        live = feed()
        full = live is not None and not live.room(s.id, s.principal.user_id)
        values = {"has_source": live is not None and not full, "full": full}
        return console.render(request, s, Page("live.html", values))

    async def stream(request: Request, s: Session) -> Response:
        live = feed()
        if live is None:
            return Response(status_code=204, headers=STREAM_HEADERS)
        personal = s.principal.may(Permission.PERSONAL_DATA)
        try:
            sub = live.subscribe(masked=not personal, session=s.id, user=s.principal.user_id)
        except StreamsFull as e:
            log.info("live: no room for a stream of %s (%s)", s.principal.user_id, e)
            refused = console.error(request, s, 503, "live.full")
            refused.headers["retry-after"] = str(e.retry_after)
            return refused
        try:
            if personal or s.principal.reads_audited:
                await console.audit(request, s, "live.read", "live", "", personal)
        except BaseException:
            sub.close()
            raise
        events = _events(console, s, sub)
        return _Stream(sub, events, media_type="text/event-stream", headers=STREAM_HEADERS)

    return [
        Route("/", console.page(Permission.CASES_READ, page), methods=["GET"]),
        Route(
            "/live/stream",
            console.page(Permission.CASES_READ, stream, touch=False),
            methods=["GET"],
        ),
    ]


async def _events(console: Console, s: Session, sub: Subscription) -> AsyncIterator[bytes]:
    """The subscription's events while the session lives (looked at without restarting its
    idle clock); unsubscribed however it ends (the client gone cancels this generator inside
    its wait)."""
    try:
        async for event in sub:
            if console.sessions.get(s.id, console.clock(), touch=False) is None:
                return  # signed out, or the session is over
            yield event
    finally:
        sub.close()


class _Stream(StreamingResponse):
    """The SSE response that closes its subscription however it ends: a client already gone
    cancels the response before its generator ever runs (whose `finally` would close it)."""

    def __init__(self, sub: Subscription, events: AsyncIterator[bytes], **kw: Any) -> None:
        super().__init__(events, **kw)
        self.sub = sub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.sub.close()
