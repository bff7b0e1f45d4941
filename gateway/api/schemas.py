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


Phone = Annotated[str, AfterValidator(_phone)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


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
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)
    ] = Field(description="What the caller reports, in their words.")
    received_at: AwareDatetime | None = Field(
        default=None, description="When the call was taken (with a time zone); default: now."
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
