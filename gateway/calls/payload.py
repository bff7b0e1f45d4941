"""The `call` alert (docs/mqtt.md, $defs/call of docs/mqtt-alert.schema.json)."""

from __future__ import annotations

from gateway.alerts.payloads import iso_utc, mask_msisdn
from gateway.calls.analyzer import CallFinding, FindingKind
from gateway.domain import Alert, AlertKind


def mask_imsi(imsi: str) -> str:
    """MCC+MNC, stars, the last 4 digits (as the probes' status documents show a probe's)."""
    if len(imsi) < 10:  # too short to show both ends without showing it all
        return "*" * len(imsi)
    return imsi[:5] + "*" * (len(imsi) - 9) + imsi[-4:]


def call_alert_payload(f: CallFinding) -> dict[str, object]:
    """A SIM-box SIM's number is the suspect and goes whole (as a probe finding's); a spoofed
    number belongs to a victim and is masked; the IMSI is masked, the IMEI shown by its TAC."""
    spoofed = f.kind is FindingKind.SPOOFED_CLI
    payload: dict[str, object] = {
        "finding_id": f.id,
        "finding": f.kind.value,
        "subject": mask_msisdn(f.subject) if spoofed else f.subject,
        "score": f.score,
        "reasons": [
            {"id": r.id, "score": r.score, "description": r.description} for r in f.reasons
        ],
        "first_at": iso_utc(f.first_at),
        "at": iso_utc(f.at),
        "details": {
            k: (mask_msisdn(v) if k == "presented" and isinstance(v, str) else v)
            for k, v in f.details.items()
        },
    }
    if f.names_subscriber and f.msisdn:
        payload["number"] = f.msisdn
    if f.imsi:
        payload["imsi"] = mask_imsi(f.imsi)
    numbers = f.details.get("numbers")
    if f.kind is FindingKind.WANGIRI and isinstance(numbers, list):
        payload["numbers"] = [str(n) for n in numbers]
    return payload


def call_alert(f: CallFinding, created_at: float) -> Alert:
    return Alert(AlertKind.CALL, call_alert_payload(f), created_at)
