"""Cases: the queue by deadline, a case with its evidence and trail, and the decisions the state
table allows now (gateway/cases/model.py TRANSITIONS), each with a required reason.

Masking and audit are the API's: the same views (gateway/api/views.py) and the same audit
actions (cases.read, case.read, subscriber.read, case.<decision>), written before the page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.alerts.payloads import mask_msisdn
from gateway.api import views
from gateway.api.auth import Permission
from gateway.cases import Actor, CaseFilter, CaseView, Source, State
from gateway.cases.model import Action, CaseError, CaseNotFound, IllegalTransition
from gateway.iin import screen_field

from . import evidence, i18n
from .app import Page, form_value
from .sessions import Session

if TYPE_CHECKING:
    from .app import Console

log = logging.getLogger(__name__)

QUEUE_LIMIT = 500
MAX_REASON = 2000
# the decisions a person takes (SUSPEND is the system's, once the switch has blocked)
DECISIONS: dict[Action, Permission] = {
    Action.START_VERIFICATION: Permission.CASES_DECIDE,
    Action.CONFIRM: Permission.CASES_DECIDE,
    Action.REJECT: Permission.CASES_DECIDE,
    Action.CLOSE: Permission.CASES_DECIDE,
    Action.REOPEN: Permission.CASES_DECIDE,
    Action.UNBLOCK: Permission.CASES_UNBLOCK,
}
E = TypeVar("E")


def routes(console: Console) -> list[BaseRoute]:
    pages = CasePages(console)
    read = Permission.CASES_READ
    return [
        Route("/cases", console.page(read, pages.queue), methods=["GET"]),
        Route("/cases/{case_id}", console.page(read, pages.case), methods=["GET"]),
        Route("/cases/{case_id}/{action}", console.page(None, pages.decide), methods=["POST"]),
    ]


@dataclass(frozen=True, slots=True)
class QueueRow:
    case: Any  # schemas.CaseSummary, masked or not
    due_class: str  # overdue | today | soon | later | none
    due_text: str
    due_at: float | None


class CasePages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.api = console.api

    async def queue(self, request: Request, s: Session) -> Response:
        """The cases, most urgent deadline first; filters by state and source."""
        q = request.query_params
        state = _enum(State, q.get("state"))
        source = _enum(Source, q.get("source"))
        who = s.principal
        if self.console.lookups.take(who.user_id) > 0:  # the API's look-up rate
            return self.console.error(request, s, 429, "lookups.slow_down")
        flt = CaseFilter(states=(state,) if state else (), source=source, limit=QUEUE_LIMIT)
        found = await self.api.cases.queue(flt)  # the most urgent first, in SQL
        masked = not who.may(Permission.PERSONAL_DATA)
        if not masked or who.reads_audited:
            await self.console.audit(request, s, "cases.read", "cases", "", not masked)
        now = self.console.clock()
        rows = [self._row(c, masked, now, s.lang) for c in found]
        return self.console.render(request, s, Page("cases.html", {
            "rows": rows, "states": list(State), "sources": list(Source),
            "state": state.value if state else "", "source": source.value if source else "",
        }))  # fmt: skip

    def _row(self, c: CaseView, masked: bool, now: float, lang: str) -> QueueRow:
        running = c.deadline()
        summary = views.case_summary(c, masked=masked)
        if running is None:
            return QueueRow(summary, "none", i18n.translate(lang, "due.none"), None)
        klass, text = i18n.due_text(lang, running[1], now, self.api.cases.calendar)
        return QueueRow(summary, klass, text, running[1])

    async def case(self, request: Request, s: Session) -> Response:
        case_id = request.path_params["case_id"]
        wait = self.console.lookups.take(s.principal.user_id)  # the API's look-up rate
        if wait > 0:
            return self.console.error(request, s, 429, "lookups.slow_down")
        try:
            case = await self.api.cases.get(case_id)
        except CaseNotFound:
            return self.console.error(request, s, 404, "not_found")
        who = s.principal
        masked = not who.may(Permission.PERSONAL_DATA)
        if not masked or who.reads_audited:
            await self.console.audit(request, s, "case.read", "case", case.id, not masked)
        subscriber = await self._subscriber(request, s, case, masked)
        # the API shows a masked role no evidence beyond kind, id and time: no texts here either
        found = await evidence.read(self.api.store, case.evidence) if not masked else None
        reports = await self.api.notices.list(None, case.id, 50)
        if who.reads_audited:  # as GET /v1/centre/reports for an auditor
            await self.console.audit(request, s, "centre.read", "centre_report", case.id, False)
        actions = [
            a for a in await self.api.cases.open_actions(case)
            if a in DECISIONS and who.may(DECISIONS[a])
        ]  # fmt: skip
        now = self.console.clock()
        row = self._row(case, masked, now, s.lang)
        return self.console.render(request, s, Page("case.html", {
            "case": views.case_detail(case, masked=masked), "due": row,
            "evidence": found, "reports": [views.centre_notice(r) for r in reports],
            "subscriber": subscriber, "actions": actions,
            "number": (lambda n: mask_msisdn(n) if masked else n),
            "highlight": evidence.highlight, "iso_time": i18n.iso_local,
        }))  # fmt: skip

    async def _subscriber(self, request: Request, s: Session, case: CaseView, masked: bool) -> Any:
        """The holder of the case's first number the registry knows, with all their numbers
        (the API's subscriber view); unmasked, audited as a look-up (subscriber.read)."""
        if not s.principal.may(Permission.SUBSCRIBERS_READ):
            return None
        for number in case.numbers:
            found = await self.api.registry.subscriber_of(number, case.facts_time)
            # as every look-up of a number through the API: recorded, hit or miss, masked or not
            personal = found is not None and not masked
            await self.console.audit(request, s, "subscriber.read", "msisdn", number, personal)
            if found is not None:
                return views.subscriber(found[0], found[1], masked=masked)
        return None

    async def decide(self, request: Request, s: Session) -> Response:
        """One decision, with its reason, as the API takes it (same service call, same audit)."""
        case_id = request.path_params["case_id"]
        action = _enum(Action, request.path_params["action"])
        back = f"/console/cases/{case_id}"
        if action is None or action not in DECISIONS:
            return self.console.error(request, s, 404, "not_found")
        who = s.principal
        if not who.may(DECISIONS[action]):
            return self.console.error(request, s, 403, "forbidden")
        reason = screen_field(form_value(request, "reason").strip(), "reason")
        if not reason or len(reason) > MAX_REASON:
            s.say(i18n.translate(s.lang, "case.reason.required", n=MAX_REASON))
            return RedirectResponse(back, status_code=303)
        op = self._operation(action)
        try:
            case = await op(case_id, Actor(who.user_id, who.role.value), reason)
        except CaseNotFound:
            return self.console.error(request, s, 404, "not_found")
        except IllegalTransition as e:
            state_now = i18n.translate(s.lang, f"state.{e.state.value}")
            why = i18n.translate(
                s.lang, "case.not_now", action=_action_text(s.lang, action), state=state_now
            )
            s.say(i18n.translate(s.lang, "case.refused", why=why))
            return RedirectResponse(back, status_code=303)
        except CaseError as e:  # e.g. ConcurrentUpdate: said as the service says it
            s.say(i18n.translate(s.lang, "case.refused", why=str(e)))
            return RedirectResponse(back, status_code=303)
        log.info("case %s: %s by %s (%s) from the console", case.id, action.value, who.user_id,
                 who.role.value)  # fmt: skip
        await self.console.audit(request, s, f"case.{action.value}", "case", case.id, True)
        s.say(i18n.translate(s.lang, "case.done", action=_action_text(s.lang, action)))
        return RedirectResponse(back, status_code=303)

    def _operation(self, action: Action) -> Callable[[str, Actor, str], Awaitable[CaseView]]:
        c = self.api.cases
        ops: dict[Action, Callable[[str, Actor, str], Awaitable[CaseView]]] = {
            Action.START_VERIFICATION: c.start_verification,
            Action.CONFIRM: c.confirm,
            Action.REJECT: c.reject,
            Action.CLOSE: c.close,
            Action.REOPEN: c.reopen,
            Action.UNBLOCK: c.unblock,
        }
        return ops[action]


def _action_text(lang: str, action: Action) -> str:
    return i18n.translate(lang, f"action.{action.value}")


def _enum(kind: type[E], value: str | None) -> E | None:
    if not value:
        return None
    try:
        return kind(value)  # type: ignore[call-arg]
    except ValueError:
        return None
