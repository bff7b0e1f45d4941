"""Analysts' feedback on verdicts: the values, the keys, and the Exemptions port the Inspector
consults. No I/O here (the repository, the cache and the service are beside it).

Order No. 554/НҚ gives analysts the decisions; this is how a decision on one message makes
detection better:

* every feedback labels the message's text for training (`label_for`): a wrong flag or block is
  legitimate text, a wrong allow is missed fraud, a right verdict confirms what was decided;
* a wrong flag or block with scope `sender` or `template` also becomes an `Exemption` for a
  bounded time: later messages from that sender on that bind, or with the same template, are
  allowed (recorded, not alerted) with the reason `feedback.exempt.<id>`.

An exemption waives the findings the analyst judged (`rules`, the rule ids on the message marked
wrong) and no others: a later message with a finding of another rule (a look-alike link in the
same template, a spoofing signal from the same sender id) brings evidence nobody has judged, so
it is decided as usual. Without that, one "this bank notice was fine" would let anything that
copies the notice through for a day.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from gateway.alerts.payloads import iso_utc
from gateway.detect.classifier import normalise
from gateway.domain import Decision, Reason, SmsEvent, Verdict

RULE_PREFIX = "feedback.exempt."
_GROUPS = re.compile(r"0(?:[\s.,:'’]+0)+")  # after normalise(): every digit run is one 0


class Judgement(StrEnum):
    """What the analyst says of the verdict."""

    WRONG = "wrong"
    RIGHT = "right"


class Scope(StrEnum):
    MESSAGE = "message"  # a label only
    SENDER = "sender"  # the message's sender on the message's bind
    TEMPLATE = "template"  # any message whose normalised text is the same


class Label(StrEnum):
    FRAUD = "fraud"
    LEGITIMATE = "legitimate"


class FeedbackError(Exception):
    """A feedback operation was refused; `code` is the API's stable error code."""

    code = "feedback_error"

    def __init__(self, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class FeedbackNotFound(FeedbackError):
    """No such message, or no such feedback."""

    code = "not_found"


class FeedbackRefused(FeedbackError):
    """Not possible for this message or this feedback as it is now (API 409)."""


class FeedbackInvalid(FeedbackError):
    """A value out of the configured range (API 422)."""


def label_for(judgement: Judgement, decision: Decision) -> Label:
    """The text's label: a caught message judged right, or an allowed one judged wrong, is
    fraud; the other two are legitimate."""
    caught = decision is not Decision.ALLOW
    return Label.FRAUD if caught == (judgement is Judgement.RIGHT) else Label.LEGITIMATE


def sender_key(smsc: str, source: str) -> str:
    """`<bind>/<address>`: the sender as the analyst saw it, on the bind it came on (an
    alphanumeric id such as a bank's can be spoofed from another bind, which the exemption must
    not cover). The address without '+', letters folded to lower case."""
    return f"{smsc}/{source.strip().lstrip('+').casefold()}"[:128]


def template_key(text: str) -> str:
    """The hex SHA-256 of the text as the classifier normalises it (`normalise`, "v1": lower
    case, ё → е, a link → `zzurl <host>` (the path dropped, the host kept), a phone number →
    `zztel`, any other run of digits → 0; the first 2,000 characters), then digit groups
    (`0 0`, `0.0`, `0:0`: "12 500", "1,250.00", "10:30") made one 0 and runs of white space one
    space. Two messages differing only in codes, amounts, times, numbers or link paths have the
    same key; another host in a link is another template."""
    canonical = " ".join(_GROUPS.sub("0", normalise(text)).split())
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def judged_rules(reasons: Iterable[Reason]) -> frozenset[str]:
    """The rule ids that count as evidence: findings with a score or a block policy (notes
    such as `sender.protected.*` or a detector's error score 0)."""
    return frozenset(r.rule_id for r in reasons if r.score > 0.0 or r.block)


@dataclass(frozen=True, slots=True)
class Exemption:
    """A wrong flag or block, turned into an allowance for its sender or its template."""

    id: str  # the feedback's id
    scope: Scope  # SENDER or TEMPLATE
    key: str
    rules: frozenset[str]  # the findings the analyst judged wrong
    expires_at: float  # epoch seconds

    def active(self, now: float) -> bool:
        return now < self.expires_at

    def covers(self, verdict: Verdict) -> bool:
        """Whether every finding of `verdict` is one the analyst judged."""
        return judged_rules(verdict.reasons) <= self.rules


class Exemptions(Protocol):
    """The port the Inspector consults before it lets a flag or block stand."""

    def match(self, sms: SmsEvent, verdict: Verdict, now: float) -> Exemption | None:
        """An exemption in force at `now` for this message's sender or template that covers
        every finding of `verdict`, or None."""
        ...


def exempt(verdict: Verdict, exemption: Exemption) -> Verdict:
    """`verdict` allowed by `exemption`: the score and findings kept for analysts, the reason
    `feedback.exempt.<id>` first. No personal data in the description (the key is a number)."""
    note = Reason(
        "feedback",
        RULE_PREFIX + exemption.id,
        0.0,
        f"analyst feedback: {exemption.scope.value} exempt until {iso_utc(exemption.expires_at)};"
        f" would have been {verdict.decision.value}",
    )
    return Verdict(verdict.score, Decision.ALLOW, [note, *verdict.reasons])


@dataclass(frozen=True, slots=True)
class Feedback:
    """One feedback row."""

    id: str
    message_id: str
    verdict: Judgement
    label: Label
    scope: Scope
    key: str | None  # None for scope message
    decision: Decision  # the message's, when it was judged
    rules: tuple[str, ...]
    reason: str
    actor: str
    role: str
    created_at: float
    expires_at: float | None  # exemptions only
    revoked_at: float | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

    def exemption(self) -> Exemption | None:
        """The exemption this feedback grants (None for a label, or once revoked)."""
        if self.scope is Scope.MESSAGE or self.key is None or self.expires_at is None:
            return None
        if self.revoked_at is not None:
            return None
        return Exemption(self.id, self.scope, self.key, frozenset(self.rules), self.expires_at)

    def in_force(self, now: float) -> bool:
        found = self.exemption()
        return found is not None and found.active(now)


@dataclass(frozen=True, slots=True)
class FeedbackLimits:
    """[feedback] in the configuration."""

    default_hours: float = 24.0  # an exemption's life when the analyst gives none
    max_hours: float = 168.0  # the longest an analyst may ask for (a week)
    max_active: int = 10_000  # exemptions in force at once (all held in memory)
    refresh: float = 5.0  # seconds between reloads of the exemptions from the database

    def __post_init__(self) -> None:
        if not 0 < self.default_hours <= self.max_hours:
            raise ValueError("feedback: need 0 < default_hours <= max_hours")
        if not 1 <= self.max_active <= 1_000_000:
            raise ValueError("feedback.max_active: must be 1..1000000")
        if not 0.1 <= self.refresh <= 3600:
            raise ValueError("feedback.refresh: must be 0.1..3600 seconds")
