"""The read-only database queries of the console's Campaigns and Probes pages. They read what
every node writes (the alert outbox, probe findings, SIM-box numbers), so every node and a
console-only process show the same. Every query is bounded; errors are the store's typed ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gateway.domain import AlertKind
from gateway.store import Store
from gateway.store.models import alerts, probe_findings, simbox_numbers

CAMPAIGN = str(AlertKind.CAMPAIGN.value)


@dataclass(frozen=True, slots=True)
class CampaignStep:
    """One `campaign` alert: what the detector knew of the campaign when it was raised."""

    at: float  # the alert's time
    event: str  # recognised | labelled
    label: str | None
    messages: int
    senders: int
    recipients: int
    approximate: bool
    first_seen: float | None
    last_seen: float | None
    routes: tuple[str, ...]
    sample: str  # masked by the detector (no digits, no addressee)


@dataclass(frozen=True, slots=True)
class Campaign:
    """A campaign as its alerts tell it: `steps` oldest first (never empty)."""

    id: str
    steps: tuple[CampaignStep, ...]

    @property
    def latest(self) -> CampaignStep:
        return self.steps[-1]

    @property
    def label(self) -> str | None:
        """The latest label (a weaker label never replaces a stronger one in the detector)."""
        return next((s.label for s in reversed(self.steps) if s.label), None)

    @property
    def first_seen(self) -> float | None:
        return min((s.first_seen for s in self.steps if s.first_seen is not None), default=None)

    @property
    def last_seen(self) -> float | None:
        return max((s.last_seen for s in self.steps if s.last_seen is not None), default=None)

    @property
    def routes(self) -> tuple[str, ...]:
        return tuple(sorted({r for s in self.steps for r in s.routes}))

    @property
    def active_at(self) -> float:
        return max(self.latest.at, self.last_seen or 0.0)


@dataclass(frozen=True, slots=True)
class FindingRow:
    at: float
    probe: str
    test_kind: str | None  # call | sms; None for an unannounced call or SMS
    a_number: str | None  # as announced: an E.164 number, or an SMS sender id
    route: str | None
    outcome: str
    observed: str  # the CLI or originator the probe saw ("" for none)
    number: str  # the local number named (E.164 digits), "" for none
    confidence: float
    description: str


@dataclass(frozen=True, slots=True)
class SimboxNumber:
    number: str
    first_seen: float
    last_seen: float
    sightings: int
    outcome: str
    last_route: str


def finding_rows() -> sa.Select[Any]:
    """The columns of a probe finding that the console shows (FindingRow)."""
    f = probe_findings
    return sa.select(
        f.c.at, f.c.probe, f.c.test_kind, f.c.a_number, f.c.route, f.c.outcome, f.c.observed,
        f.c.number, f.c.confidence, f.c.description,
    )  # fmt: skip


async def _campaign_alerts(store: Store, where: Any, limit: int) -> list[Campaign]:
    """The newest `limit` campaign alerts matching `where`, grouped by campaign (_group)."""
    a = alerts
    query = (
        sa.select(a.c.payload, a.c.created_at)
        .where(a.c.kind == CAMPAIGN, where)
        .order_by(a.c.created_at.desc(), a.c.id)
        .limit(limit)
    )
    with store.guard("console.campaigns"):
        async with store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    return _group((r.payload, r.created_at) for r in reversed(rows))


async def recent_campaigns(
    store: Store, since: float, *, limit: int = 100, scan: int = 2000
) -> list[Campaign]:
    """The campaigns with an alert since `since`, the newest activity first, at most `limit`;
    built from the newest `scan` campaign alerts of the window."""
    found = await _campaign_alerts(store, alerts.c.created_at >= since, scan)
    found.sort(key=lambda c: c.active_at, reverse=True)
    return found[:limit]


async def campaign(store: Store, campaign_id: str, *, limit: int = 500) -> Campaign | None:
    """One campaign's alerts, whatever their age (the newest `limit`), None when it has none."""
    where = alerts.c.payload["campaign_id"].as_string() == campaign_id
    found = await _campaign_alerts(store, where, limit)
    return found[0] if found else None


async def findings(store: Store, *, limit: int = 50) -> list[FindingRow]:
    """The latest probe findings (test calls and SMS, unannounced events), newest first."""
    f = probe_findings
    query = finding_rows().order_by(f.c.at.desc(), f.c.id).limit(limit)
    with store.guard("console.findings"):
        async with store.engine.connect() as conn:
            return [FindingRow(**r._mapping) for r in await conn.execute(query)]


async def simbox(store: Store, *, limit: int = 200) -> list[SimboxNumber]:
    """The local numbers probe tests named as SIM-box / SIM-farm SIMs, latest sighting first."""
    s = simbox_numbers
    query = sa.select(s).order_by(s.c.last_seen.desc(), s.c.number).limit(limit)
    with store.guard("console.simbox"):
        async with store.engine.connect() as conn:
            return [SimboxNumber(**r._mapping) for r in await conn.execute(query)]


def _group(rows: Iterable[tuple[Any, float]]) -> list[Campaign]:
    """Campaign alerts (oldest first) grouped by campaign id, in order of first appearance."""
    steps: dict[str, list[CampaignStep]] = {}
    for payload, at in rows:
        if not isinstance(payload, Mapping):
            continue
        cid = payload.get("campaign_id")
        if isinstance(cid, str) and cid:
            steps.setdefault(cid, []).append(_step(payload, at))
    return [Campaign(cid, tuple(s)) for cid, s in steps.items()]


def _step(p: Mapping[str, Any], at: float) -> CampaignStep:
    routes = p.get("routes")
    label = p.get("label")
    return CampaignStep(
        at=at,
        event=str(p.get("event") or ""),
        label=label if isinstance(label, str) and label else None,
        messages=_int(p.get("messages")),
        senders=_int(p.get("senders")),
        recipients=_int(p.get("recipients")),
        approximate=bool(p.get("approximate")),
        first_seen=_time(p.get("first_seen")),
        last_seen=_time(p.get("last_seen")),
        routes=tuple(str(r) for r in routes) if isinstance(routes, list) else (),
        sample=str(p.get("sample") or ""),
    )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _time(value: object) -> float | None:
    """An ISO 8601 time of a payload (iso_utc) as epoch seconds; epoch seconds as they are."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()
