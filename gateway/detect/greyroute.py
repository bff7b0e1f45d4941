"""Grey-route A2P: application traffic (one-time codes, bank and service notifications) sent
from an ordinary local mobile SIM instead of the aggregator's A2P bind. Operators lose the A2P
termination fee and the SIM is usually one of a SIM farm's; the same evidence as a test SMS that
arrives from a local P2P number (issue: SIM-box probes).

Two findings:
* `greyroute.p2p_otp`: a one-time-code notice from a local mobile number;
* `greyroute.p2p_bank_notice`: a bank's transaction notice ("Ваш счёт пополнен на 48 939
  рублей", "Вам перевели 850 рублей") from a local mobile number — the fake transfer of the
  "mistaken transfer" scheme the National Bank warns about: banks never send these from a
  subscriber's SIM.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from gateway.detect.content import looks_like_otp
from gateway.detect.rules import compile_pattern, normalise
from gateway.detect.sender import is_kz_mobile
from gateway.domain import Reason, Route, SmsEvent

_DIGIT: Final = re.compile(r"\d")
_MONEY: Final = r"\d[\d\s.,]{0,12}\s*(?:руб\w{0,4}|р\b|₽|тг|тенге|₸|kzt|rub|т\b)"
_BANK_NOTICE: Final = compile_pattern(
    r"(?:сч[её]т|карт\w{0,4}|баланс|кошел[её]к)\w{0,3}\s+(?:\S{1,20}\s+){0,2}?(?:пополнен|зачислен)"
    rf"|(?:зачислен\w{{0,4}}|поступил\w{{0,4}}|поступлени\w{{0,2}}|пополнени\w{{0,2}})\s*:?\s+(?:\S{{1,30}}\s+){{0,3}}?{_MONEY}"
    rf"|(?:вам|вас)\s+(?:\S{{1,20}}\s+)?(?:перевели|отправили|зачислили)\s+(?:\S{{1,20}}\s+){{0,2}}?{_MONEY}"
    rf"|(?:доступно|остаток|баланс)\s*:?\s*{_MONEY}",
    "greyroute.bank_notice",
)


def looks_like_bank_notice(text: str) -> bool:
    """A transaction notice as banks word them: an account topped up, money credited or
    received with its amount, or an available balance."""
    return _BANK_NOTICE.search(normalise(text).text) is not None


class GreyRouteDetector:
    name = "greyroute"

    def __init__(self, score: float = 0.6, notice_score: float = 0.5) -> None:
        self.score = score
        self.notice_score = notice_score

    def inspect(self, sms: SmsEvent, now: float) -> Sequence[Reason]:
        if sms.route is Route.A2P or not sms.text:
            return ()
        if _DIGIT.search(sms.text) is None:  # codes and notices carry digits; most chat not
            return ()
        if not is_kz_mobile(sms.source, sms.source_ton, sms.source_npi):
            return ()
        if looks_like_otp(sms.text):
            return (
                Reason(
                    "greyroute",
                    "greyroute.p2p_otp",
                    self.score,
                    "one-time-code / A2P notification sent from a local mobile number, "
                    "not an A2P bind",
                ),
            )
        if looks_like_bank_notice(sms.text):
            return (
                Reason(
                    "greyroute",
                    "greyroute.p2p_bank_notice",
                    self.notice_score,
                    "a bank's transaction notice sent from a local mobile number (fake transfer)",
                ),
            )
        return ()
