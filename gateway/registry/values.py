"""Registry value types and input checks (no I/O). Messages name the field; personal data in
them is masked (R7): IIN as 9001******17, numbers as 7701***4567, names never quoted."""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass

from gateway.alerts.payloads import mask_msisdn
from gateway.iin import InvalidIIN, check_iin, screen_field

from .errors import RegistryError

# 55-1: at most ten numbers per individual without an approved application (55-2).
DEFAULT_LIMIT = 10
MAX_REQUESTED = 100_000  # a sanity cap on an application's requested count
MAX_NAME = 200
MAX_TEXT = 2000


class NumberStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # still registered to the holder: counts towards the limit
    TERMINATED = "terminated"  # contract ended: no longer registered, free to re-register


class ApplicationStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REFUSED = "refused"


class DeviceKind(enum.StrEnum):
    IMEI = "imei"
    M2M = "m2m"  # any other device identifier (55-2: "including machine-to-machine devices")


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    iin: str
    surname: str
    name: str
    patronymic: str  # "" when none


@dataclass(frozen=True, slots=True)
class NumberRecord:
    msisdn: str
    imsi: str
    status: str
    contract_date: dt.date | None
    person_id: str

    @property
    def registered(self) -> bool:
        """Registered to the holder (R3 reports these): active or suspended, not terminated."""
        return self.status != NumberStatus.TERMINATED


@dataclass(frozen=True, slots=True)
class LimitCheck:
    allowed: bool
    count: int  # numbers registered now (active and suspended)
    limit: int  # 10, or the largest approved application's requested count
    reason: str


@dataclass(frozen=True, slots=True)
class OverLimit:
    person: Person
    count: int
    limit: int


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A device an application names (55-2): an IMEI (15 digits, Luhn) or an M2M identifier."""

    kind: str
    identifier: str
    description: str


@dataclass(frozen=True, slots=True)
class Application:
    id: str
    person_id: str
    purpose: str
    requested_count: int
    device_ids: tuple[str, ...]
    declared_accurate: bool
    status: str
    submitted_at: float
    decision_at: float | None
    decided_by: str
    refusal_reason: str
    previous_application_id: str | None
    justification: str = ""  # 55-2: justification and evidence of need
    decide_by: float | None = None  # 55-4: the decision is due by then (epoch seconds)

    def overdue(self, now: float) -> bool:
        """Still undecided after its decide_by."""
        return (
            self.status == ApplicationStatus.SUBMITTED
            and self.decide_by is not None
            and now > self.decide_by
        )


# -- checks ------------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s\-().]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_msisdn(value: str) -> str | None:
    """E.164 digits of a Kazakh mobile number written as +7 701 123 45 67, 8 (701) 123-45-67,
    77011234567 or 7011234567; None when `value` is not one."""
    s = _SEPARATORS.sub("", value)
    if s.startswith("+"):
        s = s[1:]
    elif len(s) == 11 and s.startswith("8"):
        s = "7" + s[1:]  # national trunk prefix
    elif len(s) == 10:
        s = "7" + s
    if len(s) == 11 and s.isascii() and s.isdigit() and s.startswith("77"):
        return s
    return None


def check_msisdn(value: str) -> str:
    number = normalize_msisdn(value)
    if number is None:
        raise RegistryError(f"msisdn {mask_msisdn(value.strip())}: not a Kazakh mobile number")
    return number


def valid_iin(value: str) -> str:
    try:
        return check_iin(value)
    except InvalidIIN as e:
        raise RegistryError(str(e)) from None


def check_name(field: str, value: str, *, required: bool = True) -> str:
    """A name part, surrounding spaces removed (its value is never quoted in the error)."""
    value = value.strip()
    if not value:
        if required:
            raise RegistryError(f"missing {field}")
        return ""
    if len(value) > MAX_NAME:
        raise RegistryError(f"{field}: longer than {MAX_NAME} characters")
    if _CONTROL.search(value) or any(c.isdigit() for c in value):
        raise RegistryError(f"{field}: holds digits or control characters")
    return value


def check_text(field: str, value: str, *, required: bool, limit: int = MAX_TEXT) -> str:
    """A free-text field as stored: stripped, bounded, and with any valid IIN typed into it
    masked (R7), whichever way it came (the API, the CLI, an import)."""
    value = value.strip()
    if required and not value:
        raise RegistryError(f"missing {field}")
    if len(value) > limit or _CONTROL.search(value.replace("\n", " ")):
        raise RegistryError(f"{field}: longer than {limit} characters or control characters")
    return screen_field(value, f"registry {field}")


def check_status(value: str) -> NumberStatus:
    try:
        return NumberStatus(value.strip().lower() or NumberStatus.ACTIVE)
    except ValueError:
        raise RegistryError(
            f"bad status {value[:20]!r}: expected active, suspended or terminated"
        ) from None


def check_imsi(value: str) -> str:
    value = value.strip()
    if value and not (len(value) in (14, 15) and value.isascii() and value.isdigit()):
        raise RegistryError("bad imsi: expected 14 or 15 digits (or nothing)")
    return value


def parse_date(field: str, value: str) -> dt.date | None:
    """YYYY-MM-DD or DD.MM.YYYY (as CRM exports write it); "" is None."""
    value = value.strip()
    if not value:
        return None
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise RegistryError(f"bad {field} {value[:20]!r}: expected YYYY-MM-DD or DD.MM.YYYY")


def join_need(justification: str, evidence: str) -> str:
    """55-2 "justification and evidence of need" as the one text an application keeps."""
    justification, evidence = justification.strip(), evidence.strip()
    if not evidence:
        return justification
    return f"{justification}\n\nEvidence: {evidence}" if justification else ""


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def check_device(spec: DeviceSpec) -> DeviceSpec:
    """55-2: a device is described and identified; an IMEI is 15 digits with a Luhn check."""
    try:
        kind = DeviceKind(spec.kind.strip().lower())
    except ValueError:
        raise RegistryError(f"device kind {spec.kind[:10]!r}: expected imei or m2m") from None
    ident = spec.identifier.strip()
    if kind is DeviceKind.IMEI:
        if not (len(ident) == 15 and ident.isascii() and ident.isdigit() and luhn_ok(ident)):
            raise RegistryError("device identifier: an IMEI is 15 digits with a Luhn check digit")
    elif not 1 <= len(ident) <= 64 or not ident.isprintable() or " " in ident:
        raise RegistryError("device identifier: 1 to 64 printable characters without spaces")
    description = check_text("device description", spec.description, required=True)
    return DeviceSpec(str(kind), ident, description)


__all__ = [
    "DEFAULT_LIMIT",
    "Application",
    "ApplicationStatus",
    "DeviceKind",
    "DeviceSpec",
    "LimitCheck",
    "NumberRecord",
    "NumberStatus",
    "OverLimit",
    "Person",
    "check_device",
    "check_msisdn",
    "join_need",
    "normalize_msisdn",
    "parse_date",
]
