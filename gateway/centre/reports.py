"""Building the reports the operator sends to the centre (docs/centre-api.md).

The cases and registry modules are written in parallel: until they exist, the sink is typed
against these small Protocols with the attributes it reads.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from gateway.alerts.payloads import iso_utc
from gateway.cases.model import NumberLike, PersonLike

from .schema import SCHEMA_VERSION

ReportKind = Literal["detection", "suspended", "not_confirmed", "unblocked"]

NOT_CONFIRMED_DEFAULT = "signs of fraud not confirmed by the operator's verification (point 120)"
UNBLOCKED_DEFAULT = "suspension lifted by the operator's decision"
_MAX_EVIDENCE = 50


class CaseLike(Protocol):
    """gateway.cases.CaseView: the attributes a report is built from."""

    @property
    def id(self) -> str: ...
    @property
    def source(self) -> Any: ...
    @property
    def numbers(self) -> Sequence[str]: ...
    @property
    def state(self) -> Any: ...
    @property
    def received_at(self) -> float: ...
    @property
    def facts_time(self) -> float: ...
    @property
    def sender(self) -> str | None: ...
    @property
    def decided_at(self) -> float | None: ...
    @property
    def evidence(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def external_id(self) -> str | None: ...


class NoticeLike(Protocol):
    """gateway.cases.Notice: what the report says and when it happened."""

    @property
    def kind(self) -> str: ...
    @property
    def round(self) -> int: ...
    @property
    def at(self) -> float: ...
    @property
    def person(self) -> PersonLike | None: ...
    @property
    def numbers(self) -> Sequence[NumberLike]: ...
    @property
    def status(self) -> str: ...


def e164(number: str) -> str:
    """'+' and the digits: '77011234567', '+7 701 123 45 67' -> '+77011234567'."""
    return "+" + re.sub(r"\D", "", number)


def build_report(
    case: CaseLike, notice: NoticeLike, *, report_id: str, operator: str, now: float
) -> dict[str, Any]:
    """The report as stored in the outbox: everything but `sent_at`, set at each attempt.

    `notice.numbers`: for a detection, every number on record for the holder at the time of the
    facts (only those registered now are listed, point 118, R3); for a suspension or an
    unblocking, the numbers the switch acted on (the case's numbers when empty)."""
    kind = notice.kind
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "report_id": report_id,
        "kind": kind,
        "operator": operator,
        "created_at": iso_utc(now),
        "case_id": case.id,
        "round": notice.round,
        # the centre's own id, only for a case the centre opened: never an internal key
        "centre_ref": case.external_id if _value(case.source) == "centre" else None,
    }
    case_numbers = _unique(e164(n) for n in case.numbers)
    sender = {"sender": case.sender[:64]} if case.sender else {}
    if kind == "detection":
        subscriber = _subscriber(notice.person, notice.numbers, case_numbers)
        doc |= {
            "source": _text(case.source, 32) or "operator",
            "status": notice.status,
            "numbers": case_numbers,
            **sender,
            "subscriber": subscriber,
            "subscriber_status": "registered" if subscriber else "unknown_to_registry",
            "evidence": evidence_summary(case.evidence),
            "detected_at": iso_utc(case.received_at),
            "facts_at": iso_utc(case.facts_time),
        }
    elif kind in ("suspended", "unblocked"):
        acted = _unique(e164(n.msisdn) for n in notice.numbers) or case_numbers
        doc |= {"numbers": acted, f"{kind}_at": iso_utc(notice.at)}
        if kind == "unblocked":
            doc["reason"] = _reason(case, UNBLOCKED_DEFAULT)
    else:
        doc |= {
            "numbers": case_numbers,
            **sender,
            "decided_at": iso_utc(notice.at),
            "reason": _reason(case, NOT_CONFIRMED_DEFAULT),
        }
    return doc


def _subscriber(
    person: PersonLike | None, numbers: Sequence[NumberLike], case_numbers: list[str]
) -> dict[str, Any] | None:
    if person is None:
        return None
    # R3: every number registered to the subscriber now (a terminated contract is not theirs
    # any more); the case's numbers only if the registry gave none
    registered = [n for n in numbers if str(_value(n.status)) != "terminated"]
    listed = _unique(e164(n.msisdn) for n in registered) or case_numbers
    return {
        "surname": person.surname,
        "name": person.name,
        "patronymic": person.patronymic or None,
        "iin": person.iin,
        "numbers": listed,
    }


def evidence_summary(evidence: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A short, typed summary of the case's evidence: its kind, a one-line description and when.
    Message texts are not copied (they may quote victims); the centre asks for them if needed."""
    out: list[dict[str, Any]] = []
    for item in list(evidence)[:_MAX_EVIDENCE]:
        kind = _first(item, "type", "kind", "detector", "source") or "evidence"
        summary = _first(item, "summary", "description", "rule_id", "outcome") or kind
        at = item.get("at", item.get("received_at"))
        out.append(
            {
                "type": kind[:64],
                "summary": summary[:500],
                "at": iso_utc(float(at)) if isinstance(at, int | float) else None,
            }
        )
    return out


def _first(item: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _reason(case: CaseLike, default: str) -> str:
    """The reason of the latest decision (confirm / reject / unblock), else `default`."""
    value = getattr(case, "decision_reason", None)
    if isinstance(value, str) and value.strip():
        return value.strip()[:2000]
    return default


def _value(x: Any) -> Any:
    return getattr(x, "value", x)


def _text(value: Any, limit: int) -> str:
    raw = getattr(value, "value", value)
    return str(raw)[:limit] if raw is not None else ""


def _unique(items: Any) -> list[str]:
    return list(dict.fromkeys(items))


def parse_time(text: str) -> float:
    """An RFC 3339 date-time ('...Z' or with an offset) as epoch seconds."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.timestamp()


__all__ = [
    "CaseLike",
    "NoticeLike",
    "NumberLike",
    "PersonLike",
    "ReportKind",
    "build_report",
    "e164",
    "evidence_summary",
    "parse_time",
]
