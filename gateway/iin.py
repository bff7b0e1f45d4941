"""The Kazakh individual identification number (IIN, ИИН / ЖСН): check digit, birth date, sex,
masking. See shared/domain/KAZAKHSTAN.md.

12 digits: 1-6 the birth date YYMMDD, 7 the century and sex (1/2 = 1800s, 3/4 = 1900s,
5/6 = 2000s; odd male, even female), 8-11 a serial, 12 the check digit (weights 1..11, mod 11;
a remainder of 10 retries with weights 3..11,1,2; 10 again means no valid IIN has those 11 digits).

An IIN is protected personal data (R7): log and report it as `mask_iin(iin)` ("9001******17"),
never whole. Errors raised here carry only masked values.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import re

log = logging.getLogger("fraudgate.iin")
_W1 = tuple(range(1, 12))
_W2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
_CENTURY = {"1": 1800, "2": 1800, "3": 1900, "4": 1900, "5": 2000, "6": 2000}


class Sex(enum.StrEnum):
    MALE = "M"
    FEMALE = "F"


class InvalidIIN(ValueError):
    """Not a valid IIN; the message holds the masked value and the reason."""


def iin_check_digit(first11: str) -> int | None:
    """The 12th digit of an IIN/BIN whose first 11 digits are `first11` (None: no valid one)."""
    d = [int(c) for c in first11]
    r = sum(x * w for x, w in zip(d, _W1, strict=True)) % 11
    if r == 10:
        r = sum(x * w for x, w in zip(d, _W2, strict=True)) % 11
        if r == 10:
            return None
    return r


def mask_iin(value: str) -> str:
    """`value` with its middle hidden: 900101300017 -> 9001******17. The birth year and month stay
    readable, the day, sex, serial and most of the check are hidden. Anything shorter than 8
    characters is hidden whole (it could be most of an IIN)."""
    if len(value) < 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 6) + value[-2:]


def iin_problem(value: str) -> str | None:
    """Why `value` is not a valid IIN (None when it is one): "not 12 digits", "bad birth date",
    "bad century/sex digit", "no valid check digit exists", "bad check digit"."""
    if len(value) != 12 or not value.isascii() or not value.isdigit():
        return "not 12 digits"
    if value[6] not in _CENTURY:
        return "bad century/sex digit"
    try:
        _birth_date(value)
    except ValueError:
        return "bad birth date"
    expected = iin_check_digit(value[:11])
    if expected is None:
        return "no valid check digit exists"
    if expected != int(value[11]):
        return "bad check digit"
    return None


def is_valid_iin(value: str) -> bool:
    """True when `value` is 12 digits forming a plausible IIN: a real birth date YYMMDD, the
    century/sex digit 1-6 and the check digit (see shared/domain/KAZAKHSTAN.md). A company BIN
    (5th digit 4-6, so no valid day) is not an IIN."""
    return iin_problem(value) is None


def check_iin(value: str) -> str:
    """`value` (surrounding spaces removed) when it is a valid IIN, else InvalidIIN with the
    masked value and the reason ("IIN 9001******18: bad check digit")."""
    value = value.strip()
    problem = iin_problem(value)
    if problem is not None:
        raise InvalidIIN(f"IIN {mask_iin(value)}: {problem}")
    return value


def _birth_date(value: str) -> dt.date:
    century = _CENTURY[value[6]]
    return dt.date(century + int(value[0:2]), int(value[2:4]), int(value[4:6]))


def birth_date(iin: str) -> dt.date:
    """The birth date an IIN encodes (InvalidIIN when it is not a valid IIN)."""
    return _birth_date(check_iin(iin))


def sex(iin: str) -> Sex:
    """The sex an IIN encodes: odd 7th digit male, even female (InvalidIIN when not valid)."""
    return Sex.MALE if int(check_iin(iin)[6]) % 2 else Sex.FEMALE


# A run of ASCII digit groups joined by single separators (space, no-break space, hyphen, dot),
# not touching another digit: "900101300017", "900101 300017", "9001-0130-0017".
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]+(?:[ \u00a0.\-][0-9]+)*(?![0-9])")
_GROUP = re.compile(r"[0-9]+")


def screen_text(text: str) -> tuple[str, int]:
    """`text` with every valid IIN in it masked (mask_iin), and how many were masked.

    An IIN is found as 12 digits in a row, or as consecutive digit groups joined by one space,
    no-break space, hyphen or dot whose digits make 12 ("900101 300017"), wherever the text
    around is letters or punctuation ("ИИН900101300017,"). A spaced IIN is written back
    compact ("9001******17"). Digits that are no valid IIN stay as they are, and so does a
    longer unbroken run of digits (a card or account number is not cut into an IIN)."""
    count = 0

    def mask_run(m: re.Match[str]) -> str:
        nonlocal count
        run = m.group()
        groups = list(_GROUP.finditer(run))
        out: list[str] = []
        pos = i = 0
        while i < len(groups):
            j, digits = i, ""
            while j < len(groups) and len(digits) < 12:
                digits += groups[j].group()
                j += 1
            if len(digits) == 12 and is_valid_iin(digits):
                out += [run[pos : groups[i].start()], mask_iin(digits)]
                pos, i = groups[j - 1].end(), j
                count += 1
            else:
                i += 1
        out.append(run[pos:])
        return "".join(out)

    return _DIGIT_RUN.sub(mask_run, text), count


def screen_field(text: str, field: str) -> str:
    """`screen_text` for a free-text field about to be stored: the masked text, and one log
    line with the field's name and the count when an IIN was found (never the value)."""
    screened, count = screen_text(text)
    if count:
        log.info("%s: %d IIN(s) masked before storing", field, count)
    return screened


__all__ = [
    "InvalidIIN",
    "Sex",
    "birth_date",
    "check_iin",
    "iin_check_digit",
    "iin_problem",
    "is_valid_iin",
    "mask_iin",
    "screen_field",
    "screen_text",
    "sex",
]
