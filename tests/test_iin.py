"""IIN checks on the synthetic values of shared/domain/KAZAKHSTAN.md (never real people's IINs)."""

from __future__ import annotations

import datetime as dt
import logging

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
    screen_field,
    screen_text,
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


# -- the free-text screen (issue 14 item 11) ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "screened", "count"),
    [
        ("ИИН 900101300017 проверен", "ИИН 9001******17 проверен", 1),
        ("ИИН900101300017,", "ИИН9001******17,", 1),  # glued to letters and punctuation
        ("(iin:850515400012)", "(iin:8505******12)", 1),
        ("ЖСН 900101 300017.", "ЖСН 9001******17.", 1),  # groups joined by one space
        ("9001-0130-0017", "9001******17", 1),
        ("900101\u00a0300017", "9001******17", 1),  # a no-break space
        ("+7 701 123 45 67, 900101 300017", "+7 701 123 45 67, 9001******17", 1),
        ("две: 900101300017 и 051231600017", "две: 9001******17 и 0512******17", 2),
        ("900101300018", "900101300018", 0),  # bad check digit: not an IIN, kept
        ("заявка 123456789012", "заявка 123456789012", 0),  # 12 digits, no IIN
        ("BIN 990440000016", "BIN 990440000016", 0),  # a company's BIN has no birth date
        ("card 4400900101300017", "card 4400900101300017", 0),  # longer run: not cut
        ("900101  300017", "900101  300017", 0),  # two spaces: two numbers
        ("9001013000170", "9001013000170", 0),  # 13 digits
        ("", "", 0),
    ],
)
def test_screen_text(text: str, screened: str, count: int) -> None:
    assert screen_text(text) == (screened, count)


def test_screen_field_logs_the_count_never_the_value(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="fraudgate.iin"):
        assert screen_field("по 900101300017", "case reason") == "по 9001******17"
        assert screen_field("без ИИН", "case reason") == "без ИИН"
    assert [r.getMessage() for r in caplog.records] == [
        "case reason: 1 IIN(s) masked before storing"
    ]
    assert "900101300017" not in caplog.text


@given(st.text(alphabet="0123456789 -.abcЖ", max_size=60), st.sampled_from(FIRST_PASS))
def test_screen_hides_an_inserted_iin(around: str, iin: str) -> None:
    cut = len(around) // 2
    text = f"{around[:cut]} {iin} {around[cut:]}"
    screened, count = screen_text(text)
    assert count >= 1 and iin not in screened.replace(" ", "")
    assert screen_text(screened) == (screened, 0)  # screening again changes nothing


@given(st.text(max_size=80))
def test_screen_keeps_text_without_an_iin(text: str) -> None:
    screened, count = screen_text(text)
    assert (screened == text) == (count == 0)
