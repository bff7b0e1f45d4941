"""The centre API's JSON Schemas (version 1), the one source of docs/centre-*.schema.json.

No public interface of the National Bank anti-fraud centre exists (point 117 only requires an
integration agreement), so fraudgate defines one: docs/centre-api.md. The schemas live here, as
Python, so the installed gateway validates with exactly what the documents show; a test checks
that the files under docs/ are `dump()` of these.

Both directions are strict (`additionalProperties: false`): a change of shape is a new
`schema_version`, and a receiver refuses a version it does not know with 400.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

SCHEMA_VERSION = 2  # outgoing reports (2: rounds, unblocked, detection status, sender)
INBOUND_SCHEMA_VERSION = 1  # the centre's reports (incident_at is optional: still 1)
REPORT_KINDS = ("detection", "suspended", "not_confirmed", "unblocked")
DETECTION_STATUSES = ("confirmed", "under_verification")
SUBSCRIBER_STATUSES = ("registered", "unknown_to_registry")
INBOUND_CATEGORIES = ("fraud_calls", "simbox", "smishing", "spoofing", "other")

E164 = r"^\+[1-9][0-9]{6,14}$"
# RFC 3339 date-time with an explicit offset (no format checker needed to enforce it)
DATE_TIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
REPORT_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


def _s(description: str, **rules: Any) -> dict[str, Any]:
    return {"description": description, **rules}


_TIME = {"type": "string", "pattern": DATE_TIME}
_ID = {"type": "string", "pattern": REPORT_ID}
_NUMBERS = {
    "type": "array",
    "items": {"type": "string", "pattern": E164},
    "minItems": 1,
    "maxItems": 100,
    "uniqueItems": True,
}
# a case about an alphanumeric sender names no number (its `sender` says who)
_CASE_NUMBERS = {**_NUMBERS, "minItems": 0}
_NAME = {"type": "string", "minLength": 1, "maxLength": 200}

_COMMON: dict[str, Any] = {
    "schema_version": _s("Always 2 for this schema.", const=SCHEMA_VERSION),
    "report_id": _s("Idempotency key; also sent as the Idempotency-Key header.", **_ID),
    "kind": _s("What happened.", enum=list(REPORT_KINDS)),
    "operator": _s("The operator's id agreed with the centre.", **_ID),
    "sent_at": _s("When this attempt was sent (retries of one report differ only here).", **_TIME),
    "created_at": _s("When the operator recorded the event (fixed for the report).", **_TIME),
    "case_id": _s("The operator's case id.", **_ID),
    "round": _s(
        "Which decision of the case this reports (a second suspension after an appeal is a "
        "second report of the same kind with a higher round).",
        type="integer",
        minimum=1,
    ),
    "centre_ref": _s(
        "The centre's report id when the case was opened from a centre report (point 119).",
        type=["string", "null"],
        pattern=REPORT_ID,
    ),
}
_REQUIRED = [
    "schema_version", "report_id", "kind", "operator", "sent_at", "created_at", "case_id", "round",
]  # fmt: skip

_SUBSCRIBER = {
    "description": "Point 118: the subscriber and every number registered to them.",
    "type": "object",
    "additionalProperties": False,
    "required": ["surname", "name", "patronymic", "iin", "numbers"],
    "properties": {
        "surname": _NAME,
        "name": _NAME,
        "patronymic": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
        "iin": {"type": "string", "pattern": "^[0-9]{12}$"},
        "numbers": _s("All numbers registered to the subscriber (R3).", **_NUMBERS),
    },
}
_EVIDENCE = {
    "type": "array",
    "maxItems": 50,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "summary"],
        "properties": {
            "type": {"type": "string", "maxLength": 64},
            "summary": {"type": "string", "maxLength": 500},
            "at": {"type": ["string", "null"], "pattern": DATE_TIME},
        },
    },
}


def _kind(name: str, required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "if": {"properties": {"kind": {"const": name}}, "required": ["kind"]},
        "then": {
            "required": required,
            "properties": properties,
            "propertyNames": {"enum": [*_COMMON, *properties]},
        },
    }


REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://fraudgate.example/schemas/centre-report/2",
    "title": "Operator report to the National Bank anti-fraud centre (points 118, 120)",
    "type": "object",
    "required": _REQUIRED,
    "properties": _COMMON,
    "allOf": [
        _kind(
            "detection",
            [
                "source",
                "status",
                "numbers",
                "subscriber",
                "subscriber_status",
                "evidence",
                "detected_at",
                "facts_at",
            ],
            {
                "source": _s("Who raised the case.", type="string", maxLength=32),
                "status": _s(
                    "confirmed, or under_verification when the operator reports its own "
                    "detections at once (a confirmed or not_confirmed report follows).",
                    enum=list(DETECTION_STATUSES),
                ),
                "numbers": _s("The numbers the case is about.", **_CASE_NUMBERS),
                "sender": _s(
                    "The sender as reported when it is not a number (alphanumeric).",
                    type="string",
                    minLength=1,
                    maxLength=64,
                ),
                "subscriber": _s(
                    "The holder at the time of the facts; null when there is none here.",
                    anyOf=[_SUBSCRIBER, {"type": "null"}],
                ),
                "subscriber_status": _s(
                    "registered, or unknown_to_registry (subscriber null: the operator "
                    "completes it and sends a new report of the same round).",
                    enum=list(SUBSCRIBER_STATUSES),
                ),
                "evidence": _EVIDENCE,
                "detected_at": _s("When the operator received or detected it.", **_TIME),
                "facts_at": _s("When the reported facts happened.", **_TIME),
            },
        ),
        _kind(
            "suspended",
            ["numbers", "suspended_at"],
            {
                "numbers": _s("The numbers suspended (point 120).", **_NUMBERS),
                "suspended_at": _s("When the switch carried the suspension out.", **_TIME),
            },
        ),
        _kind(
            "unblocked",
            ["numbers", "unblocked_at", "reason"],
            {
                "numbers": _s("The numbers whose suspension was lifted.", **_NUMBERS),
                "unblocked_at": _s("When the switch carried it out.", **_TIME),
                "reason": {"type": "string", "minLength": 1, "maxLength": 2000},
            },
        ),
        _kind(
            "not_confirmed",
            ["numbers", "decided_at", "reason"],
            {
                "numbers": _CASE_NUMBERS,
                "sender": {"type": "string", "minLength": 1, "maxLength": 64},
                "decided_at": _TIME,
                "reason": {"type": "string", "minLength": 1, "maxLength": 2000},
            },
        ),
    ],
}

INBOUND_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://fraudgate.example/schemas/centre-inbound/1",
    "title": "The centre's information about numbers, to be verified by the operator (point 119)",
    "type": "object",
    "additionalProperties": False,
    "required": ["schema_version", "report_id", "numbers", "category", "reported_at"],
    "properties": {
        "schema_version": {"const": INBOUND_SCHEMA_VERSION},
        "report_id": _s("The centre's report id; a repeat opens no second case.", **_ID),
        "numbers": _NUMBERS,
        "category": {"enum": list(INBOUND_CATEGORIES)},
        "description": {"type": "string", "maxLength": 4000},
        "reported_at": _TIME,
        "incident_at": _s(
            "When the reported fraud happened (the holder at that time is the one verified).",
            **_TIME,
        ),
    },
}

_REPORT = Draft202012Validator(REPORT_SCHEMA)
_INBOUND = Draft202012Validator(INBOUND_SCHEMA)


def report_errors(document: object) -> list[str]:
    """What is wrong with an outgoing report (empty: valid). Paths only, never the values: the
    document carries personal data (R7)."""
    return _errors(_REPORT, document)


def inbound_errors(document: object) -> list[str]:
    """What is wrong with an inbound report (empty: valid)."""
    return _errors(_INBOUND, document)


_KEY_RULES = ("required", "additionalProperties", "propertyNames")


def _errors(validator: Any, document: object) -> list[str]:
    found = sorted(_leaves(validator.iter_errors(document)), key=lambda e: list(e.absolute_path))
    out: list[str] = []
    for e in found:
        where = "/" + "/".join(str(p) for p in e.absolute_path)
        if e.validator in _KEY_RULES:  # the message names keys, never values
            out.append(f"{where}: {e.message}")
        else:
            out.append(f"{where}: {e.validator} {_rule(e.validator_value)}".rstrip())
    return out


def _leaves(errors: Any) -> list[Any]:
    """The innermost errors: an anyOf (subscriber or null) says why each branch failed."""
    out: list[Any] = []
    for e in errors:
        out.extend(_leaves(e.context) if e.context else [e])
    return out


def _rule(value: object) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        return json.dumps(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return json.dumps(value)
    return ""


def dump(schema: dict[str, Any]) -> str:
    """The schema as the file under docs/ holds it."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


__all__ = [
    "DETECTION_STATUSES",
    "INBOUND_CATEGORIES",
    "INBOUND_SCHEMA",
    "INBOUND_SCHEMA_VERSION",
    "REPORT_KINDS",
    "REPORT_SCHEMA",
    "SCHEMA_VERSION",
    "dump",
    "inbound_errors",
    "report_errors",
]
