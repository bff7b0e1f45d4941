"""Grey-route A2P: application traffic (one-time codes, bank and service notifications) sent
from an ordinary local mobile SIM instead of the aggregator's A2P bind. Operators lose the A2P
termination fee and the SIM is usually one of a SIM farm's; the same evidence as a test SMS that
arrives from a local P2P number (issue: SIM-box probes)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.detect.content import looks_like_otp
from gateway.detect.sender import is_kz_mobile
from gateway.domain import Reason, Route, SmsEvent


class GreyRouteDetector:
    name = "greyroute"

    def __init__(self, score: float = 0.6) -> None:
        self.score = score

    def inspect(self, sms: SmsEvent, now: float) -> Sequence[Reason]:
        if sms.route is Route.A2P or not sms.text:
            return ()
        if not is_kz_mobile(sms.source, sms.source_ton, sms.source_npi):
            return ()
        if not looks_like_otp(sms.text):
            return ()
        return (
            Reason(
                "greyroute",
                "greyroute.p2p_otp",
                self.score,
                "one-time-code / A2P notification sent from a local mobile number, not an A2P bind",
            ),
        )
