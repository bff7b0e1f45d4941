"""The sender a complaint names: the address a subscriber's forwarded text points at.

A subscriber forwards a suspicious SMS to the complaint short number (1490); the forwarded text
is kept in the store, and `Complaint.suspected_sender` is published in the `complaint` alert
(docs/mqtt.md), unmasked like every sender address. The forwarded text is written by people,
about people ("от Aigerim Tes 900101..."): only what is an address may be taken from it.

An address is
- a phone number: a valid Kazakh or Russian +7 number in any usual writing (+7 701 123 45 67,
  8 (701) 123-45-67, 87011234567), or an E.164 number written with its '+' (10 to 15 digits,
  a known country code); the number and its validity come from `phonenumbers`' metadata;
- or an alphanumeric sender id after "от" / "from" / "кімнен": one token of 2 to 11 Latin
  letters and digits (TS 23.040 §9.1.2.5 allows 11 characters), not all digits, with a capital
  or a digit as sender ids have ("KASPI", "eGov", "Tele2"; "from my phone" is no sender), and
  standing alone: not followed by another capitalised word or a number on the same line, which
  is how a name and surname, or a name and an IIN, are written. A first name alone ("от
  Aigerim.") cannot be told from a sender id ("от Beeline.") and is taken.

Anything else (a person's name, an IIN or the 11 digits that begin one) gives "". Numbers are
returned as E.164 digits without '+' ("77011234567"), the form SMSCs give senders in.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

_PLUS7 = 7  # the country calling code Kazakhstan shares with Russia
_E164_LENGTHS = range(10, 16)  # digits of a full international number, country code included
_FROM = re.compile(
    r"(?i)(?<!\w)(?:от|from|кімнен)(?!\w)[ \t]*[:\-]?[ \t]*"
    r"([A-Za-z0-9]{2,11})(?!\w|[.@/\-]\w)"  # the whole token: not part of a word or domain
)
_NEXT_WORD = re.compile(r"[ \t]+(\w)")


def suspected_sender(text: str) -> str:
    """The phone number (E.164 digits) or sender id `text` names, "" when it names none."""
    return phone_number(text) or sender_id(text)


def phone_number(text: str) -> str:
    """The first phone number in `text` that is a valid +7 number, or an E.164 number written
    with its '+'; as E.164 digits without '+'. "" when there is none."""
    for match in PhoneNumberMatcher(text, "KZ", leniency=Leniency.VALID):
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        digits = e164.removeprefix("+")
        if match.number.country_code == _PLUS7:
            return digits  # Leniency.VALID: a number of a real KZ or RU range
        if match.raw_string.startswith("+") and len(digits) in _E164_LENGTHS:
            return digits
    return ""


def sender_id(text: str) -> str:
    """The first alphanumeric sender id after "от" / "from" / "кімнен" that stands alone."""
    for match in _FROM.finditer(text):
        token = match.group(1)
        if _looks_like_sender_id(token) and not _continued(text, match.end()):
            return token
    return ""


def _looks_like_sender_id(token: str) -> bool:
    return not token.isdigit() and any(c.isupper() or c.isdigit() for c in token)


def _continued(text: str, end: int) -> bool:
    """A capitalised word or a number follows on the same line: "Aigerim Tes", "Aigerim 9001"
    are a name and what comes with it, not a sender id."""
    after = _NEXT_WORD.match(text, end)
    return after is not None and (after.group(1).isupper() or after.group(1).isdigit())


__all__ = ["phone_number", "sender_id", "suspected_sender"]
