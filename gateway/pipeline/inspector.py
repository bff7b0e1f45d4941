"""Inspection (synchronous, no I/O): an SMS event in, its verdict, alerts and complaint out.
Every detector the configuration builds runs on it, their reasons are combined, a protected A2P
sender is never blocked on content alone, campaigns are labelled and announced, and a complaint
to the short number is recorded as one (docs/classifier.md, docs/cases.md)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from gateway.alerts.payloads import (
    campaign_alert_payload,
    complaint_alert_payload,
    fanout_alert_payload,
    sms_alert_payload,
)
from gateway.detect.campaigns import CampaignDetector, CampaignEvent
from gateway.detect.sender import ProtectedSender, SenderDetector
from gateway.detect.velocity import VelocityDetector
from gateway.domain import (
    Alert,
    AlertKind,
    Complaint,
    Decision,
    Detector,
    Inspected,
    Reason,
    Route,
    SmsEvent,
    Thresholds,
    Verdict,
    combine,
)
from gateway.feedback.model import Exemptions, exempt
from gateway.pipeline.message_ids import derived_id
from smsc.receipt import is_receipt_type, parse_receipt
from smsc.sms import Sms

log = logging.getLogger("fraudgate.pipeline")


# --------------------------------------------------------------------------------------------
# Inspection (synchronous, no I/O)


def event_from_sms(sms: Sms, smsc: str, route: Route, now: float) -> SmsEvent:
    return SmsEvent(
        source=sms.source,
        dest=sms.dest,
        text=sms.text,
        source_ton=sms.source_ton,
        source_npi=sms.source_npi,
        dest_ton=sms.dest_ton,
        dest_npi=sms.dest_npi,
        data_coding=sms.data_coding,
        esm_class=sms.esm_class,
        smsc=smsc,
        route=route,
        parts=len(sms.pdus),
        total=sms.total,
        complete=sms.complete,
        decode_errors=tuple(sms.errors),
        received_at=now,
    )


class Inspector:
    """Runs the detectors on one SMS and decides; builds the alerts and complaint it causes."""

    def __init__(
        self,
        detectors: Sequence[Detector],
        thresholds: Thresholds,
        *,
        complaint_numbers: Iterable[str] = (),
        text_detectors: Sequence[Detector] = (),
        exemptions: Exemptions | None = None,
    ) -> None:
        self.detectors = list(detectors)
        self.exemptions = exemptions  # analysts' feedback: senders / templates judged wrongly
        self.thresholds = thresholds
        self.complaint_numbers = frozenset(n.lstrip("+") for n in complaint_numbers)
        # detectors that judge a text alone (content, URLs, classifier): used on the text a
        # subscriber forwards to the complaint number, whose sender is the complainant.
        self.text_detectors = list(text_detectors)
        self.velocity = next((d for d in detectors if isinstance(d, VelocityDetector)), None)
        self.sender = next((d for d in detectors if isinstance(d, SenderDetector)), None)
        self.campaigns = next((d for d in detectors if isinstance(d, CampaignDetector)), None)
        self._failed: set[str] = set()

    def _run(self, detectors: Sequence[Detector], sms: SmsEvent, now: float) -> list[Reason]:
        reasons: list[Reason] = []
        for det in detectors:
            try:
                reasons.extend(det.inspect(sms, now))
            except Exception as exc:  # a detector bug must not stop the traffic
                if det.name not in self._failed:
                    self._failed.add(det.name)
                    log.exception("detector %s failed; message scored without it", det.name)
                reasons.append(
                    Reason(
                        det.name, f"{det.name}.error", 0.0, f"detector error: {type(exc).__name__}"
                    )
                )
        return reasons

    def inspect(self, sms: SmsEvent, now: float) -> Inspected:
        if sms.dest.lstrip("+") in self.complaint_numbers:
            return self._complaint(sms, now)
        reasons = self._run(self.detectors, sms, now)
        if sms.decode_errors:
            reasons.append(
                Reason("encoding", "encoding.invalid", 0.1, "; ".join(sms.decode_errors)[:300])
            )
        if not sms.text.strip() and not sms.decode_errors:
            reasons.append(Reason("encoding", "encoding.empty", 0.05, "empty message text"))
        if is_receipt_type(sms.esm_class):  # it reached inspection: not a receipt we expected
            reasons.append(_false_receipt(sms.text))
        verdict = protect(combine(reasons, self.thresholds), self._protected(sms))
        if verdict.decision is not Decision.ALLOW and self.exemptions is not None:
            found = self.exemptions.match(sms, verdict, now)
            if found is not None:  # allowed, recorded with feedback.exempt.<id>, not alerted
                verdict = exempt(verdict, found)
        alerts: list[Alert] = []
        if verdict.decision is not Decision.ALLOW:
            payload = sms_alert_payload(sms, verdict)
            alerts.append(Alert(AlertKind.SMS_VERDICT, payload, now, derived_id(sms.id, "sms")))
            if verdict.decision is Decision.BLOCK:
                for det in self.detectors:
                    learn = getattr(det, "learn_blocked", None)
                    if learn is not None:
                        learn(sms, verdict, now)
        if self.campaigns is not None:
            alerts.extend(self._campaign_alerts(sms, verdict, now))
        if self.velocity is not None:
            limits = self.velocity.limits
            for sender, when, distinct in self.velocity.take_fanout_crossings():
                payload = fanout_alert_payload(
                    sender,
                    limits.window,
                    self.velocity.sent(sender, when),
                    distinct,
                    threshold=limits.sender_recipients,
                    smsc=sms.smsc,
                    route=sms.route.value,
                )
                alert_id = derived_id(sms.id, f"fanout/{sender}")
                alerts.append(Alert(AlertKind.FANOUT, payload, when, alert_id))
        return Inspected(sms, verdict, alerts)

    def _campaign_alerts(self, sms: SmsEvent, verdict: Verdict, now: float) -> list[Alert]:
        """A look-alike of a protected brand's link labels the message's campaign (every later
        member blocks); campaigns just recognised or labelled become `campaign` alerts."""
        campaigns = self.campaigns
        assert campaigns is not None
        if any(r.rule_id.startswith(LOOKALIKE_LINKS) for r in verdict.reasons):
            campaigns.label(sms.text, "lookalike_link", now)
        return [campaign_alert(event, now) for event in campaigns.take_events()]

    def label_campaign(self, text: str, kind: str, now: float) -> str | None:
        """Label the campaign `text` belongs to (a complaint, a confirmed case): its later
        messages block. The campaign's id, or None without a campaign detector."""
        if self.campaigns is None:
            return None
        campaign = self.campaigns.label(text, kind, now)
        return campaign

    def _protected(self, sms: SmsEvent) -> ProtectedSender | None:
        if self.sender is None or sms.route is not Route.A2P:
            return None
        try:
            return self.sender.protected(sms)
        except Exception:  # the sender rules' bug must not stop the traffic (logged there)
            return None

    def _complaint(self, sms: SmsEvent, now: float) -> Inspected:
        forwarded = combine(self._run(self.text_detectors, sms, now), self.thresholds)
        complaint = Complaint(
            complainant=sms.source,
            forwarded_text=sms.text,
            received_at=now,
            message_id=sms.id,
            suspected_sender=_suspected_sender(sms.text),
            id=derived_id(sms.id, "complaint"),
        )
        verdict = Verdict(
            0.0,
            Decision.ALLOW,
            [Reason("complaint", "complaint.forwarded", 0.0, "forwarded to the complaint number")],
        )
        payload = complaint_alert_payload(complaint, forwarded)
        alert = Alert(AlertKind.COMPLAINT, payload, now, derived_id(sms.id, "complaint-alert"))
        alerts = [alert]
        if self.campaigns is not None:
            # one complaint labels the whole campaign the forwarded text belongs to, at once
            self.campaigns.label(sms.text, "complaint", now)
            alerts += [campaign_alert(event, now) for event in self.campaigns.take_events()]
        return Inspected(sms, verdict, alerts, complaint)


# url findings that label a message's campaign: a protected brand's look-alike has no innocent use
LOOKALIKE_LINKS = ("url.homoglyph.", "url.lookalike.")


def campaign_alert(event: CampaignEvent, now: float) -> Alert:
    """The `campaign` alert of an event; its id follows from the campaign and the event, so a
    campaign recognised again after a restart gives the same id (consumers de-duplicate)."""
    key = f"campaign/{event.campaign_id}/{event.kind}/{event.label or ''}"
    alert_id = derived_id(event.campaign_id.rjust(12, "0")[:12], key)
    return Alert(AlertKind.CAMPAIGN, campaign_alert_payload(event), now, alert_id)


def protect(verdict: Verdict, sender: ProtectedSender | None) -> Verdict:
    """Protected A2P: a registered sender on its contracted bind is never blocked; whatever its
    findings, the most they do is flag the message for an analyst (a bank's notice that reads
    like fraud to a classifier must still reach the customer)."""
    if sender is None or verdict.decision is not Decision.BLOCK:
        return verdict
    note = Reason(
        "sender",
        f"sender.protected.{sender.id}",
        0.0,
        "registered A2P sender on its contracted bind: flagged, never blocked",
    )
    return Verdict(verdict.score, Decision.FLAG, [*verdict.reasons, note])


def _false_receipt(text: str) -> Reason:
    """A message whose esm_class claims a delivery receipt. Well-formed but matching nothing
    we sent onward (forward mode: a receipt for a message from before a restart, or a forgery):
    weak evidence. Not a receipt at all: a text dressed as one to slip past inspection."""
    receipt = parse_receipt(text)
    if receipt.message_id and receipt.stat:
        return Reason("smpp", "smpp.receipt_unmatched", 0.2,
                      "delivery receipt matching no message sent onward")  # fmt: skip
    return Reason("smpp", "smpp.receipt_malformed", 0.6,
                  "esm_class says delivery receipt but the text is not one")  # fmt: skip


def _suspected_sender(text: str) -> str:
    """The phone number or sender id a forwarded text names; never a person's name or an
    IIN-like digit run, since it is published in the complaint alert (gateway.pipeline.suspect)."""
    from gateway.pipeline.suspect import suspected_sender

    return suspected_sender(text)
