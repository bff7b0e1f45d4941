"""The Campaigns and Probes pages: what the detectors and the probes found, from the database
(every node's alerts, findings and SIM-box numbers), with what only this node knows beside it
(the campaigns it tracks now, its probes' health) when it runs them.

Campaigns carry no personal data: counts, routes and the sample text the detector masked. The
Probes page names numbers (the SIM-box SIMs found, the CLIs seen, the test A-numbers): whole to a
role with personal_data, and that view audited (`probes.read`); masked otherwise (an auditor's
masked view is audited too, as their case reads are): the number columns as 7701***4567, every
digit of a finding's free-text description as "•" (a number there may be written any way:
+7.701.123.45.67, 8 (701) 123-45-67).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.api.audit import mask_target
from gateway.api.auth import Permission

from . import queries
from .app import Page
from .live import mask_digits
from .sessions import Session

if TYPE_CHECKING:
    from .app import Console

WINDOW_DAYS = 7  # campaigns with an alert in the last week
CAMPAIGNS = 100  # at most this many campaigns listed
FINDINGS = 50  # the last probe findings shown
NUMBERS = 200  # SIM-box numbers shown, the latest sighting first
CAMPAIGN_ID = re.compile(r"[0-9A-Za-z_.-]{1,64}")


def routes(console: Console) -> list[BaseRoute]:
    async def campaigns_page(request: Request, s: Session) -> Response:
        return await _campaigns(console, request, s)

    async def campaign_page(request: Request, s: Session) -> Response:
        return await _campaign(console, request, s)

    async def probes_page(request: Request, s: Session) -> Response:
        return await _probes(console, request, s)

    read = Permission.CASES_READ
    return [
        Route("/campaigns", console.page(read, campaigns_page), methods=["GET"]),
        Route("/campaigns/{campaign_id}", console.page(read, campaign_page), methods=["GET"]),
        Route("/probes", console.page(read, probes_page), methods=["GET"]),
    ]


# -- campaigns ------------------------------------------------------------------------------


async def _campaigns(console: Console, request: Request, s: Session) -> Response:
    since = console.clock() - WINDOW_DAYS * 86400.0
    found = await queries.recent_campaigns(console.api.store, since, limit=CAMPAIGNS)
    detector = console.sources.campaigns
    tracked: dict[str, int] | None = dict(detector.tracked) if detector is not None else None
    rows = [_campaign_view(c, _now_here(detector, c.id)) for c in found]
    values = {"campaigns": rows, "days": WINDOW_DAYS, "tracked": tracked}
    return console.render(request, s, Page("campaigns.html", values))


async def _campaign(console: Console, request: Request, s: Session) -> Response:
    cid = request.path_params["campaign_id"]
    if not CAMPAIGN_ID.fullmatch(cid):
        return console.error(request, s, 404, "not_found")
    found = await queries.campaign(console.api.store, cid)
    if found is None:
        return console.error(request, s, 404, "not_found")
    detector = console.sources.campaigns
    view = _campaign_view(found, _now_here(detector, cid))
    values = {"c": view, "here": detector is not None}
    return console.render(request, s, Page("campaign.html", values))


def _now_here(detector: Any, cid: str) -> Any:
    """The campaign as this node's detector tracks it now (CampaignEvent), None when it does
    not (expired, seen on another node, or no detector in this process)."""
    return None if detector is None else detector.campaign(cid)


def _campaign_view(c: queries.Campaign, now_here: Any) -> dict[str, Any]:
    last = c.latest
    return {
        "id": c.id,
        "label": c.label,
        "event": last.event,
        "messages": last.messages,
        "senders": last.senders,
        "recipients": last.recipients,
        "approximate": last.approximate,
        "routes": c.routes,
        "sample": last.sample,
        "first_seen": c.first_seen,
        "last_seen": c.last_seen,
        "steps": list(reversed(c.steps)),  # newest first, as the page reads
        "here": now_here,
    }


# -- probes ---------------------------------------------------------------------------------


async def _probes(console: Console, request: Request, s: Session) -> Response:
    now = console.clock()
    port = console.sources.probes
    health: Sequence[Any] | None = None if port is None else list(port.statuses(now))
    store = console.api.store
    found = await queries.findings(store, limit=FINDINGS)
    numbers = await queries.simbox(store, limit=NUMBERS)
    masked = not s.principal.may(Permission.PERSONAL_DATA)
    if not masked or s.principal.reads_audited:
        await console.audit(request, s, "probes.read", "probes", "", not masked)
    values = {
        "health": health,
        "findings": [_finding_view(f, masked) for f in found],
        "numbers": [_number_view(n, masked) for n in numbers],
        "limit": FINDINGS,
    }
    return console.render(request, s, Page("probes.html", values))


def _finding_view(f: queries.FindingRow, masked: bool) -> dict[str, Any]:
    return {
        "at": f.at,
        "probe": f.probe,
        "test": f.test_kind or "none",
        "a_number": _hide(f.a_number or "", masked),
        "route": f.route or "",
        "outcome": f.outcome,
        "tone": _tone(f.outcome, f.confidence),
        "observed": _hide(f.observed, masked),
        "number": _hide(f.number, masked),
        "confidence": f"{f.confidence:.2f}",
        "description": mask_digits(f.description) if masked else f.description,
    }


def _number_view(n: queries.SimboxNumber, masked: bool) -> dict[str, Any]:
    return {
        "number": _hide(n.number, masked),
        "first_seen": n.first_seen,
        "last_seen": n.last_seen,
        "sightings": n.sightings,
        "outcome": n.outcome,
        "route": n.last_route,
    }


def _hide(text: str, masked: bool) -> str:
    """A number column's value with every number in it masked (7701***4567, however it is
    spaced or dotted) when `masked`; an SMS sender id (letters) is no subscriber's and stays."""
    if not masked or not text:
        return text
    return mask_target(text)


def _tone(outcome: str, confidence: float) -> str:
    """The colour class of an outcome: fraud evidence, a failed test, or clean / unexpected."""
    if confidence > 0:
        return "evidence"
    return "failure" if outcome == "no_arrival" else "clean"
