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


__all__ = [
    "InvalidIIN",
    "Sex",
    "birth_date",
    "check_iin",
    "iin_check_digit",
    "iin_problem",
    "is_valid_iin",
    "mask_iin",
    "sex",
]
