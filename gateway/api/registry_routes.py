"""The registry routes (Rules 55-1...55-6, R6): individuals, numbers, applications for more than
ten numbers. Registrars register and submit (registry:write); supervisors decide
(registry:decide). Every call is audited (api_audit) before it is answered, refusals included;
answers carry personal data masked unless the role has personal_data (docs/api.md "Registry").
"""

# No `from __future__ import annotations`: the routes are defined inside registry_router() and
# FastAPI reads their annotations (the dependencies made there) as objects, not names.

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from gateway.alerts.payloads import iso_utc, mask_msisdn
from gateway.iin import mask_iin
from gateway.registry import (
    Application,
    ApplicationStateError,
    ApplicationStatus,
    DeviceSpec,
    LimitExceeded,
    NumberTaken,
    Person,
    RegistryError,
    UnknownApplication,
    UnknownNumber,
    UnknownPerson,
    join_need,
    normalize_msisdn,
)

from . import schemas, views
from .auth import Permission, Principal

if TYPE_CHECKING:
    from .app import Api

log = logging.getLogger(__name__)
T = TypeVar("T")

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.Error, "description": "unknown_person, unknown_number, not_found"},
    409: {
        "model": schemas.Error,
        "description": "over_limit (55-1, 55-2: the detail gives the count and the limit), "
        "number_taken, illegal_state",
    },
    422: {"model": schemas.Error, "description": "invalid: the detail names the field"},
}


def _refusal(e: RegistryError) -> JSONResponse:
    """The answer to a refused request; messages carry IINs and numbers masked (registry)."""
    status, code = 422, "invalid"
    if isinstance(e, LimitExceeded):
        status, code = 409, "over_limit"
    elif isinstance(e, NumberTaken):
        status, code = 409, "number_taken"
    elif isinstance(e, ApplicationStateError):
        status, code = 409, "illegal_state"
    elif isinstance(e, UnknownPerson):
        status, code = 404, "unknown_person"
    elif isinstance(e, UnknownNumber):
        status, code = 404, "unknown_number"
    elif isinstance(e, UnknownApplication):
        status, code = 404, "not_found"
    return JSONResponse({"error": code, "detail": str(e)}, status_code=status)


def registry_router(api: "Api") -> APIRouter:
    """POST /registry/persons, /registry/numbers, /registry/numbers/{msisdn}/terminate,
    /registry/applications (and /{id}/approve, /refuse, /reapply); GET /registry/applications."""
    from .app import require  # the app module is loaded by now (it includes this router)

    writer = Annotated[Principal, Depends(require(Permission.REGISTRY_WRITE))]
    decider = Annotated[Principal, Depends(require(Permission.APPLICATIONS_DECIDE))]
    r = APIRouter(tags=["registry"], responses=ERRORS)
    calls = _Calls(api)

    @r.post(
        "/registry/persons",
        response_model=schemas.RegisteredPerson,
        status_code=201,
        summary="Register an individual",
    )
    async def add_person(request: Request, body: schemas.PersonIn, who: writer) -> Any:
        def do() -> Awaitable[Person]:
            return api.registry.register_person(body.iin, body.surname, body.name, body.patronymic)

        return await calls.run(request, who, ("registry.person.add", "person"), do, calls.person)

    @r.post(
        "/registry/numbers",
        response_model=schemas.RegisteredNumber,
        status_code=201,
        summary="Register a number to an individual (55-1: refused over the limit, 409)",
    )
    async def add_number(request: Request, body: schemas.NumberIn, who: writer) -> Any:
        n, d = body, body.contract_date
        number = body.msisdn.lstrip("+")
        act = api.registry.register_number
        return await calls.run(
            request, who, ("registry.number.add", "msisdn", "+" + number),
            lambda: act(n.iin, number, imsi=n.imsi, contract_date=d, contract_id=n.contract_id),
            calls.number,
        )  # fmt: skip

    @r.post(
        "/registry/numbers/{msisdn}/terminate",
        response_model=schemas.RegisteredNumber,
        summary="Terminate a number",
    )
    async def terminate(request: Request, msisdn: str, who: writer) -> Any:
        number = normalize_msisdn(msisdn) or ""

        async def do() -> Any:
            await api.registry.set_number_status(msisdn, "terminated")
            return number

        return await calls.run(
            request, who, ("registry.number.terminate", "msisdn", "+" + number), do,
            lambda n, masked: calls.terminated(n, masked),
        )  # fmt: skip

    _application_routes(r, api, calls, writer, decider)
    return r


def _application_routes(
    r: APIRouter, api: "Api", calls: "_Calls", writer: Any, decider: Any
) -> None:
    reg = api.registry

    @r.post(
        "/registry/applications",
        response_model=schemas.ApplicationOut,
        status_code=201,
        summary="Apply for more than ten numbers",
    )
    async def submit(request: Request, body: schemas.ApplicationIn, who: writer) -> Any:
        return await calls.run(
            request, who, ("registry.application.submit", "application"),
            lambda: reg.submit_application(body.iin, **_request(body)), calls.application,
        )  # fmt: skip

    @r.post(
        "/registry/applications/{application_id}/reapply",
        response_model=schemas.ApplicationOut,
        status_code=201,
        summary="Apply again after a refusal (55-5)",
    )
    async def reapply(
        request: Request, application_id: str, body: schemas.ReapplyIn, who: writer
    ) -> Any:
        return await calls.run(
            request, who, ("registry.application.reapply", "application", application_id),
            lambda: reg.reapply(application_id, **_request(body)), calls.application,
        )  # fmt: skip

    @r.post(
        "/registry/applications/{application_id}/approve",
        response_model=schemas.ApplicationOut,
        summary="Approve (55-4)",
    )
    async def approve(request: Request, application_id: str, who: decider) -> Any:
        return await calls.run(
            request, who, ("registry.application.approve", "application", application_id),
            lambda: reg.approve_application(application_id, decided_by=who.user_id),
            calls.application,
        )  # fmt: skip

    @r.post(
        "/registry/applications/{application_id}/refuse",
        response_model=schemas.ApplicationOut,
        summary="Refuse, stating the reason (55-4)",
    )
    async def refuse(
        request: Request, application_id: str, body: schemas.DecisionIn, who: decider
    ) -> Any:
        return await calls.run(
            request, who, ("registry.application.refuse", "application", application_id),
            lambda: reg.refuse_application(application_id, body.reason, decided_by=who.user_id),
            calls.application,
        )  # fmt: skip

    @r.get("/registry/applications", summary="Applications, newest first")
    async def list_applications(
        request: Request,
        who: writer,
        status: ApplicationStatus | None = None,
        overdue: Annotated[bool, Query(description="Undecided past decide_by only")] = False,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[schemas.ApplicationOut]:
        found = await reg.list_applications(
            status=status.value if status else None, overdue=overdue, limit=limit
        )
        masked = not who.may(Permission.PERSONAL_DATA)
        await calls.audit(request, who, ("registry.applications.read", "applications", ""),
                          personal=not masked and bool(found))  # fmt: skip
        now = reg.now()
        return [_application(a, p, masked, now) for a, p in found]


def _request(body: schemas.ReapplyIn) -> dict[str, Any]:
    return {
        "purpose": body.purpose,
        "requested_count": body.requested_count,
        "devices": [DeviceSpec(d.kind, d.identifier, d.description) for d in body.devices],
        "justification": join_need(body.justification, body.evidence),
        "declared_accurate": body.declared_accurate,
    }


class _Calls:
    """Runs a registry call, audits it (refused or done), answers masked or not."""

    def __init__(self, api: "Api") -> None:
        self.api = api

    async def run(
        self,
        request: Request,
        who: Principal,
        what: tuple[str, ...],
        do: Callable[[], Awaitable[T]],
        answer: Callable[[T, bool], Awaitable[Any]],
    ) -> Any:
        """`what`: (action, target kind[, target]); without a target, the created record's id."""
        masked = not who.may(Permission.PERSONAL_DATA)
        try:
            result = await do()
        except RegistryError as e:
            action = what[0] + ".refused"
            await self.audit(request, who, (action, *what[1:]), personal=False)
            log.info("%s by %s refused: %s", what[0], who.user_id, type(e).__name__)
            return _refusal(e)
        target = what[2] if len(what) > 2 else str(getattr(result, "id", ""))
        await self.audit(request, who, (what[0], what[1], target), personal=not masked)
        return await answer(result, masked)

    async def audit(
        self, request: Request, who: Principal, what: tuple[str, ...], *, personal: bool
    ) -> None:
        action, kind, target = (*what, "")[:3]
        client = request.client.host if request.client is not None else ""
        await self.api.audit.record(
            who, action, kind, target, personal_data=personal, client=client
        )

    async def person(self, p: Person, masked: bool) -> schemas.RegisteredPerson:
        return schemas.RegisteredPerson(masked=masked, person=views.person(p, masked))

    async def number(self, n: Any, masked: bool) -> schemas.RegisteredNumber:
        return schemas.RegisteredNumber(
            masked=masked,
            msisdn=mask_msisdn("+" + n.msisdn) if masked else "+" + n.msisdn,
            status=n.status,
            contract_date=None if masked else n.contract_date,
            person_id=None if masked else n.person_id,
        )

    async def terminated(self, number: str, masked: bool) -> schemas.RegisteredNumber:
        shown = "+" + number
        return schemas.RegisteredNumber(
            masked=masked,
            msisdn=mask_msisdn(shown) if masked else shown,
            status="terminated",
            contract_date=None,
            person_id=None,
        )

    async def application(self, app: Application, masked: bool) -> schemas.ApplicationOut:
        found, person = await self.api.registry.applicant(app.id)
        return _application(found, person, masked, self.api.registry.now())


def _time(t: float | None) -> str | None:
    return None if t is None else iso_utc(t)


def _application(
    app: Application, person: Person, masked: bool, now: float
) -> schemas.ApplicationOut:
    return schemas.ApplicationOut(
        id=app.id,
        person_id=None if masked else app.person_id,
        iin=mask_iin(person.iin) if masked else person.iin,
        status=app.status,
        requested_count=app.requested_count,
        device_count=len(app.device_ids),
        submitted_at=iso_utc(app.submitted_at),
        decide_by=_time(app.decide_by),
        overdue=app.overdue(now),
        decision_at=_time(app.decision_at),
        decided_by=app.decided_by or None,
        refusal_reason=app.refusal_reason or None,
        previous_application_id=app.previous_application_id,
        purpose=None if masked else app.purpose,
        justification=None if masked else app.justification,
    )
