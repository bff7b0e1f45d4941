"""The FastAPI application: cases, help-line complaints, subscriber look-up, the audit log.

    app = build_api(cases, registry, store, {sha256_hex: ("u-aigerim", "analyst")}, clock=time.time)

Every route names the permission it needs (auth.PERMISSIONS maps roles to permissions). A
response with personal data unmasked is audited before it is sent (audit.AuditLog).

The token is checked before anything else, in front of FastAPI (gateway/http/guard.py): an
unknown caller gets 401 before one byte of the body is read, and bodies are bounded, so no
request can make the event loop that answers the SMSC read or parse without limit. The
routes check the token again (and the role); look-ups of numbers and cases are counted per
user (limits.LookupLimiter: 429). There is no /docs page: the contract is docs/openapi.json,
and /openapi.json is served like any route, to a token holder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.alerts.payloads import mask_msisdn
from gateway.cases import Actor, CaseFilter, Cases, CaseView, Source, State
from gateway.cases.service import e164
from gateway.centre.notices import Notices
from gateway.feedback import Feedback, FeedbackLimits, Scope
from gateway.feedback.repository import FeedbackQuery, FeedbackRepository
from gateway.feedback.service import ExemptionSink, FeedbackService
from gateway.http.guard import RequestGuard
from gateway.registry import Registry, normalize_msisdn
from gateway.store import Store

from . import errors, schemas, views
from .audit import AuditLog, AuditQuery
from .auth import Permission, Principal, TokenTable
from .complaints import Complaints
from .limits import ApiLimits, LookupLimiter
from .registry_routes import registry_router

log = logging.getLogger(__name__)

DESCRIPTION = """\
The fraud analysts', help line's and supervisors' API of fraudgate (Rules points 52 4), 119, 120;
requirements R4, R5, R7, R8). Bearer tokens carry a user and a role: **analyst**, **helpline**,
**supervisor**, **auditor**. Personal data (IIN, names, numbers linked to a person) is masked
unless the role may see it, and every response that carries it unmasked is audited.
See docs/api.md.
"""

TAGS = [
    {"name": "cases", "description": "The verification workflow of points 119-120."},
    {"name": "complaints", "description": "Reports taken by the help line (point 52 4))."},
    {"name": "subscribers", "description": "The registry: who holds a number (R3)."},
    {"name": "audit", "description": "Who saw personal data and who decided what (R7, R8)."},
    {"name": "centre", "description": "Reports to the anti-fraud centre, seen through (118, 120)."},
    {
        "name": "feedback",
        "description": "Analysts' word on verdicts: training labels and bounded exemptions.",
    },
]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token issued to one user; the gateway keeps only its SHA-256.",
)

Decide = Callable[[str, Actor, str], Awaitable[CaseView]]

LOOKUP_RESPONSES: dict[int | str, dict[str, Any]] = {
    429: {
        "model": schemas.Error,
        "description": "The user's look-ups are over api.lookup_rate; see Retry-After",
    }
}
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": schemas.Error, "description": "The body is over api.max_body"}
}


class Api:
    """The services the routes use."""

    def __init__(
        self,
        cases: Cases,
        registry: Registry,
        store: Store,
        clock: Callable[[], float],
        exemptions: ExemptionSink | None = None,
        feedback_limits: FeedbackLimits | None = None,
    ) -> None:
        self.cases = cases
        self.registry = registry
        self.clock = clock
        self.audit = AuditLog(store, clock=clock)
        self.complaints = Complaints(cases, store, clock=clock)
        self.feedback = FeedbackService(
            FeedbackRepository(store), exemptions, feedback_limits, clock=clock
        )
        self.store = store
        self._notices: Notices | None = None

    @property
    def notices(self) -> Notices:
        """The centre notices, on the cases' calendar and operator (built on first use)."""
        if self._notices is None:
            operator = getattr(self.cases.reports, "operator", "operator")
            self._notices = Notices(
                self.store, operator, rebuild=self.cases.detection_notice,
                calendar=self.cases.calendar, work_start=self.cases.deadlines.work_start,
                clock=self.clock,
            )  # fmt: skip
        return self._notices


def _authenticated(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The token's user and role; 401 alike for a missing, malformed or unknown token."""
    tokens: TokenTable = request.app.state.tokens
    found = tokens.lookup(creds.credentials) if creds is not None else None
    if found is None:
        raise errors.unauthorized()
    return found


def require(permission: Permission, *, lookup: bool = False) -> Callable[..., Principal]:
    """A dependency: the caller, when their role has `permission` (else 403) and, for a
    `lookup`, when they have not used up their look-ups (else 429, nothing read or audited)."""

    def check(request: Request, who: Annotated[Principal, Depends(_authenticated)]) -> Principal:
        if not who.may(permission):
            raise errors.forbidden()
        if lookup:
            _count_lookup(request, who)
        return who

    return check


def _count_lookup(request: Request, who: Principal) -> None:
    """One look-up of `who`'s bucket (limits.LookupLimiter), or 429 when it is empty."""
    lookups: LookupLimiter = request.app.state.lookups
    wait = lookups.take(who.user_id)
    if wait > 0:
        log.info("look-ups of %s over the rate: %.0f s to wait", who.user_id, wait)
        raise errors.rate_limited(wait)


Caller = Annotated[Principal, Depends(_authenticated)]
CaseReader = Annotated[Principal, Depends(require(Permission.CASES_READ, lookup=True))]
HelpLine = Annotated[Principal, Depends(require(Permission.COMPLAINTS_CREATE))]
SubscriberReader = Annotated[Principal, Depends(require(Permission.SUBSCRIBERS_READ, lookup=True))]
Auditor = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]
FeedbackReader = Annotated[Principal, Depends(require(Permission.FEEDBACK, lookup=True))]


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def build_api(
    cases: Cases,
    registry: Registry,
    store: Store,
    tokens: Mapping[str, tuple[str, str]],
    *,
    clock: Callable[[], float] = time.time,
    limits: ApiLimits | None = None,
    exemptions: ExemptionSink | None = None,
    feedback_limits: FeedbackLimits | None = None,
) -> FastAPI:
    """The ASGI application. `tokens`: {sha256 hex of a token: (user_id, role)}; `limits`:
    bodies and look-ups (the server takes the same object for connections); `exemptions`: told
    at once of each exemption created or revoked (the Inspector's ExemptionCache)."""
    limits = limits or ApiLimits()
    api = Api(cases, registry, store, clock, exemptions, feedback_limits)
    app = FastAPI(
        title="fraudgate analyst API",
        version="1",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        responses={
            401: {"model": schemas.Error, "description": "Missing or unknown token"},
            403: {"model": schemas.Error, "description": "The role may not do this"},
            503: {"model": schemas.Error, "description": "The database is unavailable"},
        },
        docs_url=None,  # the Swagger and ReDoc pages fetch scripts from a CDN, and the
        redoc_url=None,  # contract is docs/openapi.json; /openapi.json needs a token
    )
    table = TokenTable(tokens)
    app.state.api = api  # the console serves its pages over the same services (gateway/console)
    app.state.tokens = table
    app.state.lookups = LookupLimiter(limits.lookup_rate, limits.lookup_burst)
    app.add_middleware(
        RequestGuard,
        max_body=limits.max_body,
        client_timeout=limits.client_timeout,
        authenticate=table.admits,
    )
    errors.install(app)
    app.include_router(_cases_router(api), prefix="/v1")
    app.include_router(_decisions_router(api), prefix="/v1")
    app.include_router(_other_router(api), prefix="/v1")
    app.include_router(_feedback_router(api), prefix="/v1")
    app.include_router(_centre_router(api), prefix="/v1")
    app.include_router(registry_router(api), prefix="/v1")
    return app


# -- cases --------------------------------------------------------------------------------------


def _cases_router(api: Api) -> APIRouter:
    r = APIRouter(tags=["cases"])

    @r.get("/cases", summary="List cases, newest first", responses=LOOKUP_RESPONSES)
    async def list_cases(
        request: Request,
        who: CaseReader,
        state: Annotated[list[State] | None, Query(description="Repeat for several")] = None,
        source: Source | None = None,
        number: Annotated[str | None, Query(description="A number the case names")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[schemas.CaseSummary]:
        flt = CaseFilter(
            states=state or (), source=source, number=e164(number) if number else None, limit=limit
        )
        found = await api.cases.list(flt)
        masked = not who.may(Permission.PERSONAL_DATA)
        # personal data sent, a number looked up, or an auditor reading (R7)
        if not masked or flt.number or who.reads_audited:
            target = flt.number or ""
            await _audit(api, request, who, "cases.read", "cases", target, personal=not masked)
        return [views.case_summary(c, masked=masked) for c in found]

    @r.get("/cases/deadlines", summary="Cases overdue or due by the next working day")
    async def deadlines(request: Request, who: CaseReader) -> schemas.DeadlineCounts:
        now = api.clock()
        counts = await api.cases.deadline_counts(now)
        found = await api.cases.at_risk(now)
        masked = not who.may(Permission.PERSONAL_DATA)
        if not masked or who.reads_audited:
            await _audit(api, request, who, "cases.read", "cases", "", personal=not masked)
        return schemas.DeadlineCounts(
            **counts, cases=[views.case_summary(c, masked=masked) for c in found]
        )

    @r.get(
        "/cases/{case_id}",
        summary="One case with its evidence and history",
        responses={404: {"model": schemas.Error}, **LOOKUP_RESPONSES},
    )
    async def get_case(request: Request, case_id: str, who: CaseReader) -> schemas.CaseDetail:
        case = await api.cases.get(case_id)
        masked = not who.may(Permission.PERSONAL_DATA)
        if not masked or who.reads_audited:
            await _audit(api, request, who, "case.read", "case", case.id, personal=not masked)
        return views.case_detail(case, masked=masked)

    return r


def _decisions_router(api: Api) -> APIRouter:
    r = APIRouter(tags=["cases"])
    c = api.cases
    decisions: list[tuple[str, Decide, Permission, str]] = [
        ("start_verification", c.start_verification, Permission.CASES_DECIDE, "new, reopened"),
        ("confirm", c.confirm, Permission.CASES_DECIDE, "verifying; then suspends (point 120)"),
        ("reject", c.reject, Permission.CASES_DECIDE, "verifying (not confirmed, point 120)"),
        ("close", c.close, Permission.CASES_DECIDE, "suspended, not_confirmed, unblocked"),
        ("reopen", c.reopen, Permission.CASES_DECIDE, "closed (an appeal)"),
        ("unblock", c.unblock, Permission.CASES_UNBLOCK, "suspended (supervisors only)"),
    ]
    for name, op, permission, allowed_in in decisions:
        _decision_route(r, api, name, op, permission, allowed_in)
    return r


def _decision_route(
    r: APIRouter, api: Api, name: str, op: Decide, permission: Permission, allowed_in: str
) -> None:
    async def decide(
        request: Request,
        case_id: str,
        body: schemas.DecisionIn,
        who: Caller,
    ) -> schemas.CaseDetail:
        case = await op(case_id, Actor(who.user_id, who.role.value), body.reason)
        log.info("case %s: %s by %s (%s)", case.id, name, who.user_id, who.role.value)
        await _audit(api, request, who, f"case.{name}", "case", case.id, personal=True)
        return views.case_detail(case, masked=False)

    r.add_api_route(
        f"/cases/{{case_id}}/{name}",
        decide,
        methods=["POST"],
        name=name,
        dependencies=[Depends(require(permission))],  # 403 before the body is validated
        summary=f"{name.replace('_', ' ').capitalize()} a case",
        description=f"Allowed in state: {allowed_in}. The token's user and role are recorded.",
        responses={404: {"model": schemas.Error}, 409: {"model": schemas.Error}, **BODY_RESPONSES},
    )


# -- complaints, subscribers, audit -------------------------------------------------------------


def _other_router(api: Api) -> APIRouter:
    r = APIRouter()
    # one router, routes in this order: the served OpenAPI document keeps its order
    _complaint_route(r, api)
    _subscriber_route(r, api)
    _audit_route(r, api)
    return r


def _complaint_route(r: APIRouter, api: Api) -> None:
    """POST /complaints: the help line records a caller's report."""

    @r.post(
        "/complaints",
        tags=["complaints"],
        status_code=201,
        summary="Record a caller's report; opens a case (source complaint)",
        responses=BODY_RESPONSES,
    )
    async def post_complaint(
        request: Request,
        body: schemas.ComplaintIn,
        who: HelpLine,
    ) -> schemas.ComplaintOut:
        complaint_id, case = await api.complaints.take(body, who)
        log.info("help-line complaint %s -> case %s", complaint_id, case.id)
        masked = not who.may(Permission.PERSONAL_DATA)
        # the answer is the opened case: unmasked (numbers, person) to a supervisor
        await _audit(api, request, who, "complaint.create", "case", case.id, personal=not masked)
        return schemas.ComplaintOut(
            complaint_id=complaint_id, case=views.case_detail(case, masked=masked)
        )


def _subscriber_route(r: APIRouter, api: Api) -> None:
    """GET /subscribers/{msisdn}: who holds a number (every look-up audited)."""

    @r.get(
        "/subscribers/{msisdn}",
        tags=["subscribers"],
        summary="Who holds a number, and all their numbers",
        responses={404: {"model": schemas.Error}, **LOOKUP_RESPONSES},
    )
    async def get_subscriber(
        request: Request,
        msisdn: str,
        who: SubscriberReader,
    ) -> schemas.Subscriber:
        number = normalize_msisdn(msisdn)
        found = await api.registry.subscriber_of(number) if number else None
        masked = not who.may(Permission.PERSONAL_DATA)
        # a miss is recorded as well: who asked about which number matters, not only what they
        # saw. Not a number at all: what was typed (maybe an IIN in the wrong field) is not kept
        target = "+" + number if number else ""
        personal = found is not None and not masked
        await _audit(api, request, who, "subscriber.read", "msisdn", target, personal=personal)
        if found is None:
            raise errors.ApiError(404, "not_found")
        log.info("subscriber of %s read by %s", mask_msisdn(target), who.user_id)
        return views.subscriber(found[0], found[1], masked=masked)


def _audit_route(r: APIRouter, api: Api) -> None:
    """GET /audit: the access and decision audit, to auditors."""

    @r.get("/audit", tags=["audit"], summary="The access and decision audit, newest first")
    async def get_audit(
        request: Request,
        who: Auditor,
        user_id: str | None = None,
        action: str | None = None,
        target: Annotated[str | None, Query(description="Exact; a number as +7...")] = None,
        since: Annotated[float | None, Query(description="Epoch seconds")] = None,
        until: Annotated[float | None, Query(description="Epoch seconds")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[schemas.AuditRow]:
        q = AuditQuery(user_id, action, target, since, until, limit)
        rows = await api.audit.find(q)
        await _audit(api, request, who, "audit.read", "audit", "", personal=False)
        return [views.audit_row(e.masked()) for e in rows]


# -- centre notices ------------------------------------------------------------------------------

NOTICE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.Error, "description": "No such report"},
    409: {"model": schemas.Error, "description": "Acknowledged or acted on already"},
    **BODY_RESPONSES,
}


def _centre_router(api: Api) -> APIRouter:
    """Every notice to the centre seen through (points 118, 120): list, resend, dismiss."""
    r = APIRouter(tags=["centre"])

    @r.get("/centre/reports", summary="Reports to the centre, newest first")
    async def list_reports(
        request: Request,
        who: CaseReader,
        status: Annotated[
            str | None,
            Query(description="pending, acked, refused, incomplete, resolved or attention"),
        ] = None,
        case_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[schemas.CentreNotice]:
        found = await api.notices.list(status, case_id, limit)
        if who.reads_audited:
            await _audit(api, request, who, "centre.read", "centre_report", case_id or "",
                         personal=False)  # fmt: skip
        return [views.centre_notice(n) for n in found]

    decide = [Depends(require(Permission.CASES_DECIDE))]

    @r.post(
        "/centre/reports/{report_id}/resend", dependencies=decide, responses=NOTICE_ERRORS,
        summary="Queue a new revision (a detection rebuilt from the registry as it is now)",
    )  # fmt: skip
    async def resend(request: Request, report_id: str, who: Caller) -> schemas.CentreNotice:
        row = await api.notices.resend(report_id, who.user_id)
        await _audit(api, request, who, "centre.resend", "centre_report", report_id, personal=False)
        return views.centre_notice(row)

    supervise = [Depends(require(Permission.CASES_UNBLOCK))]  # supervisors

    @r.post(
        "/centre/reports/{report_id}/dismiss", dependencies=supervise, responses=NOTICE_ERRORS,
        summary="Record that a report needing attention was handled another way",
    )  # fmt: skip
    async def dismiss(
        request: Request, report_id: str, body: schemas.DismissIn, who: Caller
    ) -> schemas.CentreNotice:
        row = await api.notices.dismiss(report_id, who.user_id, body.reason)
        await _audit(
            api, request, who, "centre.dismiss", "centre_report", report_id, personal=False
        )
        return views.centre_notice(row)

    return r


# -- feedback ------------------------------------------------------------------------------------

FEEDBACK_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.Error, "description": "No such message / feedback"},
    409: {
        "model": schemas.Error,
        "description": "not_applicable, text_erased, too_many_exemptions, already_revoked",
    },
    **BODY_RESPONSES,
}


def _feedback_router(api: Api) -> APIRouter:
    r = APIRouter(tags=["feedback"])
    may = [Depends(require(Permission.FEEDBACK))]  # 403 before the body is validated

    @r.post(
        "/messages/{message_id}/feedback",
        status_code=201,
        dependencies=may,
        summary="Say a message's verdict was wrong or right (a label; maybe an exemption)",
        responses=FEEDBACK_ERRORS,
    )
    async def give_feedback(
        request: Request, message_id: str, body: schemas.FeedbackIn, who: Caller
    ) -> schemas.FeedbackOut:
        item = await api.feedback.give(
            message_id, body.verdict, body.scope, body.reason, hours=body.hours,
            actor=who.user_id, role=who.role.value,
        )  # fmt: skip
        log.info("feedback %s on message %s: %s, scope %s, by %s", item.id, message_id,
                 item.verdict.value, item.scope.value, who.user_id)  # fmt: skip
        return (await _feedback_answer(api, request, who, "feedback.create", item.id, [item]))[0]

    @r.get(
        "/feedback",
        summary="Feedback given, newest first",
        responses=LOOKUP_RESPONSES,
    )
    async def list_feedback(
        request: Request,
        who: FeedbackReader,
        message_id: str | None = None,
        scope: Scope | None = None,
        in_force: Annotated[bool, Query(description="Only exemptions in force now")] = False,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[schemas.FeedbackOut]:
        at = api.clock() if in_force else None
        found = await api.feedback.find(FeedbackQuery(message_id, scope, at, limit))
        return await _feedback_answer(api, request, who, "feedback.read", message_id or "", found)

    @r.delete(
        "/feedback/{feedback_id}",
        dependencies=may,
        summary="Revoke a feedback: its exemption ends now, its label no longer trains",
        responses=FEEDBACK_ERRORS,
    )
    async def revoke_feedback(
        request: Request, feedback_id: str, body: schemas.RevokeIn, who: Caller
    ) -> schemas.FeedbackOut:
        item = await api.feedback.revoke(feedback_id, by=who.user_id, reason=body.reason)
        log.info("feedback %s revoked by %s", feedback_id, who.user_id)
        return (await _feedback_answer(api, request, who, "feedback.revoke", item.id, [item]))[0]

    return r


async def _feedback_answer(
    api: Api,
    request: Request,
    who: Principal,
    action: str,
    target: str,
    items: list[Feedback],
) -> list[schemas.FeedbackOut]:
    """The answer, audited first: every feedback call is recorded (who, when, what); the reason
    stays in the feedback row the audit row names (free text is not for the auditors' view)."""
    masked = not who.may(Permission.PERSONAL_DATA)
    personal = not masked and bool(items)  # sender keys name numbers; reasons are free text
    await _audit(api, request, who, action, "feedback", target, personal=personal)
    now = api.clock()
    return [views.feedback(f, masked=masked, now=now) for f in items]


async def _audit(
    api: Api,
    request: Request,
    who: Principal,
    action: str,
    kind: str,
    target: str,
    *,
    personal: bool,
) -> None:
    await api.audit.record(
        who, action, kind, target, personal_data=personal, client=_client(request)
    )
