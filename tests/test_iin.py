"""IIN checks on the synthetic values of shared/domain/KAZAKHSTAN.md (never real people's IINs)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.alerts import mqtt
from gateway.iin import (
    InvalidIIN,
    Sex,
    birth_date,
    check_iin,
    iin_check_digit,
    iin_problem,
    is_valid_iin,
    mask_iin,
    sex,
)

FIRST_PASS = ["900101300017", "850515400012", "000701500013", "051231600017"]
SECOND_PASS = ["900101300811", "850515400306", "000701500400"]
_W1 = range(1, 12)


@pytest.mark.parametrize("iin", FIRST_PASS)
def test_valid_on_the_first_pass(iin: str) -> None:
    assert sum(int(d) * w for d, w in zip(iin, _W1, strict=False)) % 11 != 10
    assert is_valid_iin(iin) and iin_problem(iin) is None and check_iin(f" {iin} ") == iin


@pytest.mark.parametrize("iin", SECOND_PASS)
def test_valid_via_the_second_pass(iin: str) -> None:
    assert sum(int(d) * w for d, w in zip(iin, _W1, strict=False)) % 11 == 10
    assert is_valid_iin(iin)


def test_no_valid_check_digit_and_invalid() -> None:
    assert iin_check_digit("90010130080") is None
    for last in "0123456789":
        assert iin_problem("90010130080" + last) == "no valid check digit exists"
    assert iin_problem("821214240092") == "no valid check digit exists"  # the "invalid" one
    assert iin_problem("900101300018") == "bad check digit"
    assert iin_problem("901301300017") == "bad birth date"
    assert iin_problem("900101700017") == "bad century/sex digit"
    assert iin_problem("77011234567") == "not 12 digits"
    assert iin_problem("９００１０１３０００１７") == "not 12 digits"


def test_errors_mask_the_iin() -> None:
    with pytest.raises(InvalidIIN) as info:
        check_iin("900101300018")
    assert str(info.value) == "IIN 9001******18: bad check digit"
    assert "900101300018" not in str(info.value)


def test_mask() -> None:
    assert mask_iin("900101300017") == "9001******17"
    assert mask_iin("1234567") == "*******"  # short: hidden whole
    assert mask_iin("") == ""


def test_birth_date_and_sex() -> None:
    assert birth_date("900101300017") == dt.date(1990, 1, 1)
    assert sex("900101300017") is Sex.MALE  # digit 3: 1900s, odd
    assert birth_date("850515400012") == dt.date(1985, 5, 15)
    assert sex("850515400012") is Sex.FEMALE  # 4: 1900s, even
    assert birth_date("000701500013") == dt.date(2000, 7, 1)
    assert sex("051231600017") is Sex.FEMALE and birth_date("051231600017").year == 2005
    with pytest.raises(InvalidIIN, match=r"8212\*\*\*\*\*\*92"):
        sex("821214240092")


def test_mqtt_keeps_its_names() -> None:
    assert mqtt.is_valid_iin is is_valid_iin and mqtt.iin_check_digit is iin_check_digit


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_eleven_digits_have_one_valid_twelfth_or_none(first11: str) -> None:
    valid = [d for d in "0123456789" if iin_check_digit(first11) == int(d)]
    expected = iin_check_digit(first11)
    assert len(valid) == (0 if expected is None else 1)
    # the same seen through iin_problem: only the check digit decides among the ten
    if iin_problem(first11 + "0") not in ("bad birth date", "bad century/sex digit"):
        ok = [d for d in "0123456789" if iin_problem(first11 + d) is None]
        assert ok == ([] if expected is None else [str(expected)])
