"""Subscriber lookup (every look-up audited, hit or miss, as the API's) and the audit log (to
auditors and supervisors), and the page for a role with no console pages."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.alerts.payloads import mask_msisdn
from gateway.api import views
from gateway.api.audit import AuditQuery
from gateway.api.auth import Permission
from gateway.registry import normalize_msisdn

from . import i18n
from .app import Page, form_value
from .sessions import Session

if TYPE_CHECKING:
    from .app import Console

AUDIT_ROWS = 200


def routes(console: Console) -> list[BaseRoute]:
    pages = AdminPages(console)
    return [
        Route(
            "/subscribers",
            console.page(Permission.SUBSCRIBERS_READ, pages.lookup),
            methods=["GET", "POST"],
        ),
        Route("/audit", console.page(Permission.AUDIT_READ, pages.audit), methods=["GET", "POST"]),
        Route("/none", console.page(None, pages.nothing)),
    ]


class AdminPages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.api = console.api

    async def lookup(self, request: Request, s: Session) -> Response:
        """GET: the form; POST (with the CSRF token): a look-up. The number travels in the
        body, never in a URL (proxy logs, the browser's history on a shared desk)."""
        typed = form_value(request, "msisdn").strip()[:64] if request.method == "POST" else ""
        values: dict[str, object] = {"typed": typed, "found": None, "error": ""}
        if typed:
            values.update(await self._look_up(request, s, typed))
        return self.console.render(request, s, Page("subscribers.html", values))

    async def _look_up(self, request: Request, s: Session, typed: str) -> dict[str, object]:
        who = s.principal
        wait = self.console.lookups.take(who.user_id)
        if wait > 0:
            return {"error": i18n.translate(s.lang, "sub.slow_down", s=int(wait) + 1)}
        number = normalize_msisdn(typed)
        found = await self.api.registry.subscriber_of(number) if number else None
        masked = not who.may(Permission.PERSONAL_DATA)
        # as the API: a miss is recorded too; what was typed when it is no number is not kept
        target = "+" + number if number else ""
        personal = found is not None and not masked
        await self.console.audit(request, s, "subscriber.read", "msisdn", target, personal)
        if number is None:
            return {"error": i18n.translate(s.lang, "sub.bad"), "typed": ""}
        if found is None:
            return {"error": i18n.translate(s.lang, "sub.not_found"), "typed": mask_msisdn(target)}
        return {"found": views.subscriber(found[0], found[1], masked=masked)}

    async def audit(self, request: Request, s: Session) -> Response:
        """GET: the newest rows; POST (with the CSRF token): filtered, the filter (maybe a
        number) in the body rather than the URL."""
        q = request.state.form if request.method == "POST" else {}
        user = q.get("user_id", "").strip()[:128] or None
        action = q.get("action", "").strip()[:64] or None
        target = q.get("target", "").strip()[:64] or None
        if target:
            number = normalize_msisdn(target)
            target = "+" + number if number else target
        since = _day(q.get("since", ""))
        rows = await self.api.audit.find(AuditQuery(user, action, target, since, None, AUDIT_ROWS))
        await self.console.audit(request, s, "audit.read", "audit", "", False)
        return self.console.render(request, s, Page("audit.html", {
            "rows": [views.audit_row(e.masked()) for e in rows],
            "user_id": user or "", "action": action or "", "target": q.get("target", "")[:64],
            "since": q.get("since", "")[:10],
        }))  # fmt: skip

    async def nothing(self, request: Request, s: Session) -> Response:
        return self.console.render(request, s, Page("error.html", {"message": "nothing.for.role"}))


def _day(value: str) -> float | None:
    """A day typed as YYYY-MM-DD: its start in Almaty, as epoch seconds (None: not a day)."""
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        return None
    return dt.datetime.combine(day, dt.time(), tzinfo=i18n.ZONE).timestamp()
