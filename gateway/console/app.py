"""The analysts' console: server-rendered pages over the API's services, served under /console
by the daemon's HTTP server (gateway/http/dispatch.py puts it beside the API).

    console = Console(api, tokens, lookups, sources=Sources(live=feed, probes=manager))
    app = console.app()          # an ASGI application for /console

Who may see what is the API's table (gateway/api/auth.py PERMISSIONS): pages name a
permission, never a role. Personal data is masked by the API's own views (gateway/api/views.py)
and every unmasked view is audited by the API's AuditLog with the same actions, before the page
is sent. A login turns a token into a session (sessions.py): an HttpOnly, SameSite=Strict cookie
(Secure under TLS) and a CSRF token that every POST must carry. Every script and style is
served from static/ (no CDN); the Content-Security-Policy allows nothing else.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.auth import Permission, Principal, TokenTable
from gateway.api.limits import LookupLimiter
from gateway.store.errors import StoreError

from . import i18n
from .sessions import FailedLogins, Session, SessionLimits, SessionStore

if TYPE_CHECKING:
    from gateway.api.app import Api

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "fg_session"
LOGIN_COOKIE = "fg_login"  # the login form's own CSRF token (double submit, before a session)
LANG_COOKIE = "fg_lang"
PATH = "/console"
MAX_FORM = 16 * 1024  # bytes of a form (a reason is at most a few hundred characters)
SWEEP_EVERY = 60.0  # seconds between sweeps of the sessions that are over

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


class LivePort(Protocol):
    """What the live page reads (live.LiveFeed): its bounded subscriptions."""

    def room(self, session: str, user: str) -> bool: ...

    def subscribe(self, masked: bool, *, session: str = "", user: str = "") -> Any: ...


class ProbesPort(Protocol):
    """The probes' health as the daemon knows it now (gateway.probes.manager.ProbeManager)."""

    def statuses(self, now: float) -> Sequence[Any]: ...


@dataclass
class Sources:
    """What only the running daemon knows (None in `fraudgate console`: database only)."""

    live: LivePort | None = None
    probes: ProbesPort | None = None
    campaigns: Any = None  # the campaign detector of this node (gateway.detect.campaigns)


@dataclass(frozen=True, slots=True)
class NavItem:
    key: str
    href: str
    permission: Permission


NAV = (
    NavItem("nav.live", "/console/", Permission.CASES_READ),
    NavItem("nav.cases", "/console/cases", Permission.CASES_READ),
    NavItem("nav.campaigns", "/console/campaigns", Permission.CASES_READ),
    NavItem("nav.probes", "/console/probes", Permission.CASES_READ),
    NavItem("nav.subscribers", "/console/subscribers", Permission.SUBSCRIBERS_READ),
    NavItem("nav.audit", "/console/audit", Permission.AUDIT_READ),
)

Handler = Callable[[Request, Session], Awaitable[Response]]


@dataclass
class Page:
    """What a handler hands to render(): a template and its values."""

    template: str
    values: dict[str, Any] = field(default_factory=dict)
    status: int = 200


class Console:
    """The console's services, sessions and templates; `app()` is its ASGI application."""

    def __init__(
        self,
        api: Api,
        tokens: TokenTable,
        lookups: LookupLimiter,
        *,
        sources: Sources | None = None,
        limits: SessionLimits | None = None,
        secure: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = api
        self.tokens = tokens
        self.lookups = lookups
        self.sources = sources or Sources()
        self.sessions = SessionStore(limits)
        self.secure = secure  # served over TLS: the cookie is Secure
        self.clock = clock
        # failed logins per client address: 10 at once, then one every 6 s; a client over it
        # is refused without its token being looked at until its wait is over
        self.failed = FailedLogins(burst=10, every=6.0)
        self._swept = 0.0
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.globals["local_time"] = i18n.local_time
        self.env.filters["when"] = i18n.iso_local

    # -- the ASGI application ---------------------------------------------------------------

    def app(self) -> Starlette:
        from . import pages_admin, pages_cases, pages_live, pages_radio

        routes: list[BaseRoute] = [
            Route("/login", self._login_form, methods=["GET"]),
            Route("/login", self._login, methods=["POST"]),
            Route("/logout", self._logout, methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
        for module in (pages_live, pages_cases, pages_radio, pages_admin):
            routes += module.routes(self)
        app = Starlette(routes=routes)
        app.add_exception_handler(404, self._not_found)
        return app

    def page(
        self, permission: Permission | None, handler: Handler, *, touch: bool = True
    ) -> Callable[..., Any]:
        """An endpoint: a live session (else the login page), the role's `permission` (else
        403), the CSRF token on a POST (else 403), the database up (else 503). `touch=False`:
        the request does not restart the session's idle clock (the live stream, which the
        browser reopens by itself: no sign of a person)."""

        async def endpoint(request: Request) -> Response:
            s = self.session(request, touch=touch)
            if s is None:
                if request.method == "GET":
                    return RedirectResponse(f"{PATH}/login", status_code=303)
                return self.error(request, None, 401, "login.expired")
            if permission is not None and not s.principal.may(permission):
                return self.error(request, s, 403, "forbidden")
            if request.method == "POST":
                form = await read_form(request)
                if not s.csrf_ok(_field(form, "csrf")):
                    log.warning("console: a change without its CSRF token refused (%s)",
                                s.principal.user_id)  # fmt: skip
                    return self.error(request, s, 403, "csrf")
                request.state.form = form
            try:
                return await handler(request, s)
            except StoreError as e:
                log.warning("console: %s: database unavailable (%s)", request.url.path, e)
                return self.error(request, s, 503, "unavailable")

        return endpoint

    def session(self, request: Request, *, touch: bool = True) -> Session | None:
        now = self.clock()
        if now - self._swept > SWEEP_EVERY:  # sessions that are over leave memory
            self._swept = now
            self.sessions.sweep(now)
        s = self.sessions.get(request.cookies.get(COOKIE), now, touch=touch)
        if s is not None:
            lang = request.query_params.get("lang")
            if lang in i18n.LANGS:
                s.lang = lang
        return s

    # -- rendering ---------------------------------------------------------------------------

    def render(self, request: Request, s: Session | None, page: Page) -> Response:
        lang = s.lang if s is not None else self._lang(request)
        who = s.principal if s is not None else None
        values: dict[str, Any] = {
            "t": lambda key, **kw: i18n.translate(lang, key, **kw),
            "lang": lang,
            "who": who,
            "csrf": s.csrf if s is not None else "",
            "nav": [n for n in NAV if who is not None and who.may(n.permission)],
            "path": request.url.path,
            "masked": who is not None and not who.may(Permission.PERSONAL_DATA),
            "flash": s.flash[:] if s is not None else [],
            "now": self.clock(),
            "home": home(who) if who is not None else f"{PATH}/login",
            "idle_minutes": round(self.sessions.limits.idle / 60),
        }
        if s is not None:
            s.flash.clear()
        values.update(page.values)
        html = self.env.get_template(page.template).render(values)
        response = HTMLResponse(html, status_code=page.status)
        if request.query_params.get("lang") in i18n.LANGS:
            self._set_cookie(request, response, LANG_COOKIE, lang, http_only=False)
        return response

    def error(self, request: Request, s: Session | None, status: int, key: str) -> Response:
        return self.render(request, s, Page("error.html", {"message": key}, status))

    async def _not_found(self, request: Request, _exc: Exception) -> Response:
        return self.error(request, self.session(request), 404, "not_found")

    def _lang(self, request: Request) -> str:
        return i18n.pick_lang(request.query_params.get("lang") or request.cookies.get(LANG_COOKIE))

    def _set_cookie(
        self, request: Request, response: Response, name: str, value: str, *, http_only: bool
    ) -> None:
        """A console cookie: SameSite=Strict, Path=/console, Secure when served over TLS here
        or behind a proxy that says it terminated TLS (X-Forwarded-Proto, trusted by uvicorn
        from the addresses of its forwarded_allow_ips)."""
        secure = self.secure or request.url.scheme == "https"
        response.set_cookie(
            name, value, path=PATH, httponly=http_only, samesite="strict", secure=secure
        )

    # -- login and logout --------------------------------------------------------------------

    async def _login_form(self, request: Request) -> Response:
        s = self.session(request)
        if s is not None:
            return RedirectResponse(home(s.principal), status_code=303)
        return self._login_page(request, "", 200)

    def _login_page(self, request: Request, error: str, status: int) -> Response:
        token = secrets.token_urlsafe(24)
        response = self.render(
            request, None, Page("login.html", {"login_csrf": token, "error": error}, status)
        )
        self._set_cookie(request, response, LOGIN_COOKIE, token, http_only=True)
        return response

    async def _login(self, request: Request) -> Response:
        client = _client(request)
        form = await read_form(request)
        expected = request.cookies.get(LOGIN_COOKIE, "")
        given = _field(form, "login_csrf") or ""
        if not expected or not secrets.compare_digest(given.encode(), expected.encode()):
            return self._login_page(request, "login.expired", 403)
        now = self.clock()
        if self.failed.wait(client, now) > 0:
            return self._login_page(request, "login.slow_down", 429)
        principal = self._principal(_field(form, "token") or "")
        if principal is None:
            log.warning("console: a login with an unknown token from %s", client)
            self.failed.failed(client, now)
            return self._login_page(request, "login.wrong", 401)
        s = self.sessions.create(principal, now, self._lang(request))
        log.info("console: %s (%s) signed in from %s", principal.user_id, principal.role, client)
        response = RedirectResponse(home(principal), status_code=303)
        self._set_cookie(request, response, COOKIE, s.id, http_only=True)
        response.delete_cookie(LOGIN_COOKIE, path=PATH)
        return response

    def _principal(self, token: str) -> Principal | None:
        token = token.strip()
        if not token or len(token) > 512:
            return None
        return self.tokens.lookup(token)

    async def _logout(self, request: Request) -> Response:
        s = self.session(request)
        if s is not None:
            form = await read_form(request)
            if not s.csrf_ok(_field(form, "csrf")):
                return self.error(request, s, 403, "csrf")
            self.sessions.drop(s.id)
            log.info("console: %s signed out", s.principal.user_id)
        response = RedirectResponse(f"{PATH}/login", status_code=303)
        response.delete_cookie(COOKIE, path=PATH)
        return response

    async def audit(
        self, request: Request, s: Session, action: str, kind: str, target: str, personal: bool
    ) -> None:
        """One audit row as the API writes it (gateway/api/audit.py), committed before the
        page that shows the data is sent."""
        await self.api.audit.record(
            s.principal, action, kind, target, personal_data=personal, client=_client(request)
        )


Form = dict[str, str]


async def read_form(request: Request) -> Form:
    """A urlencoded form (the only kind the console's pages send; the body is bounded by the
    guard at MAX_FORM): the first value of each field; anything else is an empty form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    body = (await request.body()).decode("utf-8", "replace")
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=64)
    except ValueError:
        return {}
    form: Form = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def _field(form: Form, name: str) -> str | None:
    return form.get(name)


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def home(who: Principal) -> str:
    """Where a role lands: its first page, or the page saying it has none (the registrar)."""
    return next((n.href for n in NAV if who.may(n.permission)), f"{PATH}/none")


def form_value(request: Request, name: str) -> str:
    """A field of the POST form the endpoint checked (Console.page), "" when absent."""
    return _field(request.state.form, name) or ""


class SecurityHeaders:
    """ASGI middleware: SECURITY_HEADERS on every response of the console, whoever made it
    (pages, redirects, static files, the stream, the guard's refusals, Starlette's 404/405/500);
    a header the response set itself is kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in have]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
