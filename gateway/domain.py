"""The gateway's domain model: what an inspected SMS is, what detectors say about it, what is
decided and announced. No I/O and no foreign library here: adapters (SMPP, SQL, MQTT) translate
to and from these types at the boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

from gateway.ids import new_id


class Decision(StrEnum):
    ALLOW = "allow"
    FLAG = "flag"  # recorded and alerted, delivered
    BLOCK = "block"  # stopped inline when enforcing; recorded and alerted always


class Route(StrEnum):
    """Where a message entered the operator's network, as configured per SMSC bind."""

    LOCAL = "local"  # the operator's own subscribers (MO)
    INTERNATIONAL = "international"  # an international interconnect / hub
    A2P = "a2p"  # an aggregator's A2P bind
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Span:
    """A matched part of the message text: text[start:end]."""

    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Reason:
    """One detector finding. `score` in [0, 1] is how strongly it indicates fraud on its own."""

    detector: str  # "content", "url", "sender", "velocity", "classifier", "encoding", ...
    rule_id: str  # stable id, e.g. "content.ru.safe_account", "url.lookalike.kaspi"
    score: float
    description: str  # English, for analysts; no personal data
    spans: tuple[Span, ...] = ()
    block: bool = False  # this finding alone is enough to block (a policy in the rule file)


@dataclass(slots=True)
class SmsEvent:
    """One whole SMS as the gateway inspects it (parts reassembled, text decoded)."""

    source: str
    dest: str
    text: str
    source_ton: int = 0
    source_npi: int = 0
    dest_ton: int = 0
    dest_npi: int = 0
    data_coding: int = 0
    esm_class: int = 0
    smsc: str = ""  # name of the SMSC bind it came on
    route: Route = Route.UNKNOWN
    parts: int = 1
    total: int = 1
    complete: bool = True
    decode_errors: tuple[str, ...] = ()
    received_at: float = 0.0  # epoch seconds
    id: str = field(default_factory=new_id)
    # the id this message had in the previous redelivery window (gateway.pipeline.message_ids): a
    # message recorded under either id is a redelivery, recorded once
    prior_id: str = ""


@dataclass(slots=True)
class Verdict:
    score: float
    decision: Decision
    reasons: list[Reason]

    @property
    def rule_ids(self) -> list[str]:
        return [r.rule_id for r in self.reasons]


class Detector(Protocol):
    """A small synchronous unit: inspect one SMS, return findings (empty when clean).

    `now` is passed in (epoch seconds) so detectors with memory (velocity) are testable."""

    name: str

    def inspect(self, sms: SmsEvent, now: float) -> Sequence[Reason]: ...


@dataclass(frozen=True, slots=True)
class Thresholds:
    flag: float = 0.5
    block: float = 0.8


def combine(reasons: list[Reason], thresholds: Thresholds) -> Verdict:
    """Noisy-OR of the findings' scores: independent evidence adds up, never past 1.

    A reason marked `block` forces the decision whatever the score."""
    clean = 1.0
    for r in reasons:
        clean *= 1.0 - min(max(r.score, 0.0), 1.0)
    score = round(1.0 - clean, 4)
    if any(r.block for r in reasons) or score >= thresholds.block:
        decision = Decision.BLOCK
    elif score >= thresholds.flag:
        decision = Decision.FLAG
    else:
        decision = Decision.ALLOW
    return Verdict(score, decision, sorted(reasons, key=lambda r: -r.score))


class AlertKind(StrEnum):
    SMS_VERDICT = "sms"  # a flagged or blocked SMS
    FANOUT = "fanout"  # a sender crossed a velocity / fan-out threshold
    COMPLAINT = "complaint"  # a subscriber forwarded a suspicious SMS to the short number
    SIMBOX = "simbox"  # a probe test named a local number as a SIM box / SIM farm SIM
    ROUTE = "route"  # a probe test showed a suspicious route (CLI stripped or replaced) or failed
    PROBE = "probe"  # a probe modem is unreachable, unregistered or silent
    CASE = "case"  # a case was opened, changed state, or the switch failed it (docs/cases.md)
    DEADLINE = "deadline"  # a case is about to miss / missed verify_by or act_by (119, 120)
    CAMPAIGN = "campaign"  # one template from many senders was recognised, or labelled
    CENTRE = "centre"  # a report to the centre was refused or lacks its subscriber: act on it
    CALL = "call"  # call records showed a SIM-box SIM, a Wangiri range or a spoofed caller id


@dataclass(slots=True)
class Alert:
    """Something subscribers of the MQTT alerts must learn. `payload` is the JSON object
    published (documented in docs/mqtt.md); it never holds an IIN or a subscriber's name."""

    kind: AlertKind
    payload: dict[str, object]
    created_at: float
    id: str = field(default_factory=new_id)  # idempotency key for consumers


@dataclass(slots=True)
class Complaint:
    """A subscriber forwarded a suspicious SMS to the complaint short number."""

    complainant: str  # the subscriber's MSISDN
    forwarded_text: str
    received_at: float
    message_id: str  # the SmsEvent.id of the forwarding SMS
    suspected_sender: str = ""  # a sender address found in the forwarded text, if any
    id: str = field(default_factory=new_id)


@dataclass(slots=True)
class Inspected:
    """One SMS with its verdict and the alerts and complaint it causes: written in one
    transaction (the alerts through the outbox) before the SMSC gets its response."""

    sms: SmsEvent
    verdict: Verdict
    alerts: list[Alert] = field(default_factory=list)
    complaint: Complaint | None = None


@dataclass(frozen=True, slots=True)
class CampaignEvent:
    """A campaign just recognised or just labelled: the content of a `campaign` alert (kind
    "tracked" only in `CampaignDetector.campaign`, for a cluster that is neither). Counts of
    senders and recipients are estimates past `distinct_cap` (`approximate`)."""

    campaign_id: str
    kind: Literal["recognised", "labelled", "tracked"]
    label: str | None
    messages: int
    senders: int
    recipients: int
    first_seen: float
    last_seen: float
    routes: tuple[str, ...]
    sample: str
    approximate: bool = False

    def payload(self) -> dict[str, object]:
        """The JSON object of the MQTT alert (no personal data)."""
        return {
            "campaign_id": self.campaign_id,
            "kind": self.kind,
            "label": self.label,
            "messages": self.messages,
            "senders": self.senders,
            "recipients": self.recipients,
            "approximate": self.approximate,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "routes": list(self.routes),
            "sample": self.sample,
        }
