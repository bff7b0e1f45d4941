"""Alert payloads: the JSON objects published on MQTT (docs/mqtt.md, docs/mqtt-alert.schema.json).

Pure functions of the domain types, shared by the pipeline that creates alerts and the MQTT
adapter that publishes them, so the schema has one implementation."""

from __future__ import annotations

import datetime as dt

from gateway.domain import CampaignEvent, Complaint, SmsEvent, Verdict
from gateway.probes.simbox import Finding


def iso_utc(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds: 2026-11-23T21:08:46.711Z."""
    moment = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def mask_msisdn(number: str) -> str:
    """A subscriber number with its middle hidden: 77011234567 -> 7701***4567 (a leading '+'
    kept). Shorter numbers keep less: 2 digits each side from 6 digits on, none under 6."""
    plus = "+" if number.startswith("+") else ""
    digits = number[len(plus) :]
    if len(digits) >= 10:
        keep = 4
    elif len(digits) >= 6:
        keep = 2
    else:
        return plus + "***"
    return f"{plus}{digits[:keep]}***{digits[-keep:]}"


def sms_alert_payload(sms: SmsEvent, verdict: Verdict) -> dict[str, object]:
    """The payload of an `sms` alert (a flagged or blocked SMS). The text is not published:
    analysts read it from the store by message_id while it is retained."""
    return {
        "parts": sms.parts,
        "complete": sms.complete,
        "message_id": sms.id,
        "decision": str(verdict.decision.value),
        "score": verdict.score,
        "rule_ids": verdict.rule_ids,
        "reasons": [
            {
                "detector": r.detector,
                "rule_id": r.rule_id,
                "score": r.score,
                "description": r.description,
            }
            for r in verdict.reasons
        ],
        "source": sms.source,
        "dest": mask_msisdn(sms.dest),
        "smsc": sms.smsc,
        "route": str(sms.route.value),
        "received_at": iso_utc(sms.received_at),
    }


def fanout_alert_payload(
    sender: str,
    window: float,
    count: int,
    distinct_recipients: int,
    *,
    threshold: int | None = None,
    smsc: str = "",
    route: str = "",
) -> dict[str, object]:
    """The payload of a `fanout` alert: `sender` sent `count` SMS to `distinct_recipients`
    different numbers within the last `window` seconds (`threshold`: the configured limit)."""
    payload: dict[str, object] = {
        "sender": sender,
        "window": window,
        "count": count,
        "distinct_recipients": distinct_recipients,
    }
    if threshold is not None:
        payload["threshold"] = threshold
    if smsc:
        payload["smsc"] = smsc
    if route:
        payload["route"] = route
    return payload


def complaint_alert_payload(
    complaint: Complaint, forwarded: Verdict | None = None
) -> dict[str, object]:
    """The payload of a `complaint` alert (the forwarded text is not published; `forwarded` is
    the text detectors' verdict on it)."""
    payload: dict[str, object] = {
        "complaint_id": complaint.id,
        "message_id": complaint.message_id,
        "complainant": mask_msisdn(complaint.complainant),
        "suspected_sender": complaint.suspected_sender,
        "received_at": iso_utc(complaint.received_at),
    }
    if forwarded is not None:
        payload["forwarded_score"] = forwarded.score
        payload["forwarded_rule_ids"] = forwarded.rule_ids
    return payload


def finding_alert_payload(f: Finding) -> dict[str, object]:
    """The payload of a `simbox` or `route` alert: one probe test's result. `number` is the local
    number the test named as a SIM-box SIM (the suspect, published whole like an SMS sender);
    the probe is the operator's own SIM."""
    payload: dict[str, object] = {
        "finding_id": f.id,
        "outcome": str(f.outcome.value),
        "confidence": f.confidence,
        "probe": f.probe,
        "observed": f.observed,
        "at": iso_utc(f.at),
        "description": f.description,
    }
    if f.number:
        payload["number"] = f.number
    if f.expected is not None:
        payload["test_id"] = f.expected.id
        payload["test_kind"] = f.expected.kind
        payload["a_number"] = f.expected.a_number
        payload["route"] = f.expected.route
        payload["window"] = [iso_utc(f.expected.start), iso_utc(f.expected.end)]
    return payload


def campaign_alert_payload(event: CampaignEvent) -> dict[str, object]:
    """The payload of a `campaign` alert: a campaign just recognised (one template from many
    P2P senders to many recipients) or just labelled by strong evidence (a complaint, a
    confirmed case, a look-alike link, a block). Counts only and a masked sample: no number,
    no name (the sample's digits and the addressee after a polite form are masked)."""
    return {
        "campaign_id": event.campaign_id,
        "event": event.kind,
        "label": event.label,
        "messages": event.messages,
        "senders": event.senders,
        "recipients": event.recipients,
        "approximate": event.approximate,
        "first_seen": iso_utc(event.first_seen),
        "last_seen": iso_utc(event.last_seen),
        "routes": list(event.routes),
        "sample": event.sample,
    }
