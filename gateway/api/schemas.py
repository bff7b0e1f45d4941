"""Request and response bodies of the API (pydantic; they are the OpenAPI schemas).

Times are ISO 8601 UTC strings (`2025-11-14T05:00:00.000Z`). Fields that carry personal data
are null (or masked) unless the caller's role may see personal data: see docs/api.md.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from gateway.feedback import Judgement, Scope
from gateway.iin import screen_field

_PHONE = re.compile(r"\+?[0-9][0-9 ()\-]{3,24}")


def _phone(value: str) -> str:
    """A telephone number in E.164 ('+' and 5-15 digits); national 8 7xx... becomes +7 7xx...
    The error never repeats the value (it may be personal data)."""
    text = value.strip()
    digits = "".join(c for c in text if c.isdigit())
    if not _PHONE.fullmatch(text) or not 5 <= len(digits) <= 15:
        raise ValueError("not a telephone number (E.164, 5 to 15 digits)")
    if len(digits) == 11 and digits.startswith("8") and not text.startswith("+"):
        digits = "7" + digits[1:]
    return "+" + digits


def _screened(field: str) -> AfterValidator:
    """Free text with every valid IIN in it masked before it is stored (gateway.iin.screen_text;
    the count is logged, never the value): decision, feedback and revocation reasons, complaint
    descriptions."""
    return AfterValidator(lambda text: screen_field(text, field))


Phone = Annotated[str, AfterValidator(_phone)]
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    _screened("api reason"),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DecisionIn(_In):
    """Why: recorded with the decision, the user and the role (R8)."""

    reason: Reason = Field(description="Why this decision was taken; not empty.")


class ComplaintIn(_In):
    """A caller's report of a suspicious SMS or call (point 52 4), point 119)."""

    caller_number: Phone = Field(description="The number the caller rang from.")
    suspicious_number: Phone = Field(description="The number the suspicious SMS or call came from.")
    description: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
        _screened("complaint description"),
    ] = Field(description="What the caller reports, in their words.")
    received_at: AwareDatetime | None = Field(
        default=None,
        description="When the caller says the call was taken (with a time zone). Kept beside "
        "fraudgate's own time of receipt, which starts the 2-working-day clock (point 119); "
        "at most 5 minutes ahead of it and 30 days behind (else 422); a difference over 15 "
        "minutes flags the case `stated_time_differs`.",
    )
    incident_at: AwareDatetime | None = Field(
        default=None,
        description="When the suspicious SMS or call came (with a time zone): the number's "
        "holder at that time is the one verified and reported. Not in the future (else 422).",
    )


class FeedbackIn(_In):
    """An analyst's word on a verdict (order No. 554/НҚ): it labels the message's text for
    training; a flag or block judged wrong with scope sender or template also exempts them."""

    verdict: Judgement = Field(description="wrong: the decision was a mistake; right: it was not")
    scope: Scope = Field(
        default=Scope.MESSAGE,
        description="message: a label only; sender: also allow the sender's later messages on "
        "this bind; template: also allow later messages with the same normalised text (digits, "
        "numbers and link paths aside). sender and template only for a flag or block judged "
        "wrong.",
    )
    reason: Reason = Field(description="Why; not empty.")
    hours: float | None = Field(
        default=None,
        gt=0,
        le=8760,
        description="How long the exemption lasts (sender and template); default "
        "feedback.default_hours (24), at most feedback.max_hours (168).",
    )


class RevokeIn(_In):
    """Why the feedback is withdrawn (its exemption ends, its label no longer trains)."""

    reason: Reason = Field(description="Why; not empty.")


class FeedbackOut(BaseModel):
    id: str
    message_id: str
    verdict: str = Field(description="wrong | right")
    label: str = Field(description="fraud | legitimate: what the message's text trains as")
    scope: str = Field(description="message | sender | template")
    key: str | None = Field(
        description="sender: <bind>/<address> (the address masked without personal data); "
        "template: hex SHA-256 of the normalised text; null for scope message"
    )
    decision: str = Field(description="The message's decision when it was judged")
    rules: list[str] = Field(description="The findings judged: an exemption waives these only")
    reason: str | None = Field(description="null when masked (free text)")
    actor: str
    role: str
    created_at: str
    expires_at: str | None = Field(description="When the exemption ends; null for a label")
    in_force: bool = Field(description="An exemption neither expired nor revoked")
    revoked_at: str | None
    revoked_by: str | None
    revoke_reason: str | None = Field(description="null when masked (free text)")


class Error(BaseModel):
    error: str = Field(description="unauthorized, forbidden, not_found, illegal_transition...")
    detail: str | None = None
    state: str | None = Field(default=None, description="illegal_transition: the case's state")
    action: str | None = Field(default=None, description="illegal_transition: the action")


class Deadline(BaseModel):
    name: str = Field(description="verify_by (point 119) or act_by (point 120)")
    due: str


class CaseSummary(BaseModel):
    id: str
    source: str
    state: str
    numbers: list[str] = Field(description="E.164; masked (7701***4567) without personal data")
    person_id: str | None = Field(description="The registry's person; null when masked")
    external_id: str | None
    received_at: str
    verify_by: str
    decided_at: str | None
    act_by: str | None
    deadline: Deadline | None = Field(description="The legal deadline running now, if any")
    updated_at: str
    version: int
    facts_at: str | None = Field(
        default=None, description="When the facts happened (the holder then is reported)"
    )
    sender: str | None = Field(default=None, description="A sender that is no number, as reported")
    flags: list[str] = Field(default_factory=list, description="docs/cases.md, flags")


class Transition(BaseModel):
    seq: int
    from_state: str | None
    action: str
    to_state: str
    actor: str
    role: str
    at: str
    reason: str | None = Field(description="null when masked (free text)")
    evidence: list[dict[str, Any]] | None = Field(description="null when masked")


class SwitchAction(BaseModel):
    round: int
    action: str
    msisdn: str
    status: str
    attempts: int
    error_kind: str | None


class CaseDetail(CaseSummary):
    evidence: list[dict[str, Any]] = Field(description="{kind, ref, at}; attrs only unmasked")
    transitions: list[Transition]
    switch_actions: list[SwitchAction]
    decision_reason: str | None


class Person(BaseModel):
    id: str | None = Field(description="null when masked")
    surname: str = Field(description="Masked: the initial only ('T.')")
    name: str
    patronymic: str | None = Field(description="null when masked")
    iin: str = Field(description="Masked: 9001******17")


class NumberOut(BaseModel):
    msisdn: str = Field(description="Masked: 7701***4567")
    status: str
    contract_date: dt.date | None = Field(description="null when masked")


class Subscriber(BaseModel):
    masked: bool = Field(description="true: the caller's role may not see personal data")
    person: Person
    numbers: list[NumberOut]


class ComplaintOut(BaseModel):
    complaint_id: str
    case: CaseDetail


class AuditRow(BaseModel):
    id: str
    at: str
    user_id: str
    role: str
    action: str
    target_kind: str
    target: str = Field(description="A number target is shown masked")
    personal_data: bool
    client: str


# -- the subscriber registry (Rules 55-1...55-6; docs/api.md "Registry") ------------------------

Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    _screened("registry text"),  # purposes, justifications, evidence: IINs masked (R7)
]


class PersonIn(_In):
    """An individual (registered, or their names updated when the IIN is on record)."""

    iin: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{12}$")]
    surname: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    patronymic: Annotated[str, StringConstraints(max_length=200)] = ""


class NumberIn(_In):
    """A number to register to an individual on a contract (55-1, 55-6)."""

    iin: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{12}$")]
    msisdn: Phone
    contract_id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
    ]
    contract_date: dt.date | None = None
    imsi: Annotated[str, StringConstraints(pattern=r"^([0-9]{14,15})?$")] = ""


class DeviceIn(_In):
    kind: str = Field(description="imei (15 digits, Luhn) or m2m (1-64 printable characters)")
    identifier: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
    ]
    description: Text


class ReapplyIn(_In):
    """55-2, 55-3: purpose, total count, devices, justification and evidence, the declaration."""

    purpose: Text
    requested_count: int = Field(gt=10, le=100_000, description="Numbers to hold in total")
    devices: list[DeviceIn] = Field(min_length=1, max_length=1000)
    justification: Text = Field(description="Why the numbers are needed (55-2)")
    evidence: Text = Field(description="The evidence of need (55-2)")
    declared_accurate: bool = Field(description="The applicant confirms the data (55-3): true")


class ApplicationIn(ReapplyIn):
    iin: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{12}$")]


class RegisteredPerson(BaseModel):
    masked: bool
    person: Person


class RegisteredNumber(BaseModel):
    masked: bool
    msisdn: str = Field(description="Masked: 7701***4567")
    status: str
    contract_date: dt.date | None = Field(description="null when masked")
    person_id: str | None = Field(description="null when masked")


class ApplicationOut(BaseModel):
    id: str
    person_id: str | None = Field(description="null when masked")
    iin: str = Field(description="Masked: 9001******17")
    status: str = Field(description="submitted | approved | refused")
    requested_count: int
    device_count: int
    submitted_at: str
    decide_by: str | None = Field(description="55-4: the decision is due by then")
    overdue: bool = Field(description="Undecided after decide_by")
    decision_at: str | None
    decided_by: str | None
    refusal_reason: str | None
    previous_application_id: str | None
    purpose: str | None = Field(description="null when masked (free text)")
    justification: str | None = Field(description="null when masked (free text)")


class DeadlineCounts(BaseModel):
    """Cases whose legal deadline (verify_by, point 119; act_by, point 120) is past or near."""

    overdue: int
    due_today: int
    due_next: int = Field(description="Due by the end of the next working day")
    cases: list[CaseSummary] = Field(description="Those cases, soonest deadline first")


class CentreNotice(BaseModel):
    """A report to the anti-fraud centre (its payload, with personal data, is not shown)."""

    id: str
    kind: str
    case_id: str
    round: int
    revision: int
    status: str = Field(description="pending, acked, refused, incomplete (no subscriber), resolved")
    created_at: str
    attempts: int
    acked_at: str | None
    last_error: str | None
    resolved_by: str | None
    resolution: str | None
    superseded_by: str | None


class DismissIn(_In):
    reason: Reason = Field(description="How the report was handled instead; not empty.")
