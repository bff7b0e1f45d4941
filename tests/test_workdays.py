"""Kazakhstan working days and the 2-working-day deadlines of points 119-120 (R4, R5)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from gateway.workdays import KzCalendar

ALMATY = ZoneInfo("Asia/Almaty")
UTC = dt.UTC
CAL = KzCalendar()


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def at(text: str, tz: dt.tzinfo = ALMATY) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


@pytest.mark.parametrize(
    "day",
    [
        # 2025
        "2025-01-01", "2025-01-02", "2025-01-03",  # New Year + decree day off (Fri Jan 3)
        "2025-01-07", "2025-03-08", "2025-03-10",  # Orthodox Christmas; Women's Day Sat -> Mon
        "2025-03-21", "2025-03-24", "2025-03-25",  # Nauryz Fri-Sun, moved to Mon and Tue
        "2025-05-01", "2025-05-07", "2025-05-09",  # May holidays
        "2025-06-06",  # Kurban Ait
        "2025-07-07",  # Capital Day Sun Jul 6 -> Mon
        "2025-09-01",  # Constitution Day Sat Aug 30 -> Mon Sep 1
        "2025-10-27",  # Republic Day Sat Oct 25 -> Mon
        "2025-12-16",  # Independence Day
        # 2026
        "2026-01-01", "2026-01-02", "2026-01-07", "2026-03-09",
        "2026-03-23", "2026-03-24", "2026-03-25",  # Nauryz Sat-Mon, moved to Tue and Wed
        "2026-05-01", "2026-05-07", "2026-05-11",  # Victory Day Sat May 9 -> Mon
        "2026-05-27",  # Kurban Ait (estimated by holidays)
        "2026-07-06", "2026-10-26", "2026-12-16",
        "2025-11-15", "2025-11-16", "2026-11-14",  # plain weekends
    ],
)  # fmt: skip
def test_days_off(day: str) -> None:
    assert not CAL.is_working_day(d(day))


@pytest.mark.parametrize(
    "day",
    [
        "2025-01-05",  # Sunday worked by the 2025 decree (for Fri Jan 3)
        "2025-01-06", "2025-03-26", "2025-05-02", "2025-05-08", "2025-07-08",
        "2026-08-31",  # Constitution Day moved to Mar 15 from 2027: no Aug 30 holiday in 2026
        "2026-01-05", "2026-03-26", "2026-10-27", "2026-12-17",
    ],
)  # fmt: skip
def test_working_days(day: str) -> None:
    assert CAL.is_working_day(d(day))


@pytest.mark.parametrize(
    ("received", "deadline"),
    [
        ("2024-12-31T10:00", "2025-01-06"),  # Jan 1-3 off, Sat off, Sun Jan 5 worked, Mon
        ("2025-01-06T09:00", "2025-01-09"),  # Tue Jan 7 Orthodox Christmas skipped
        ("2025-03-07T12:00", "2025-03-12"),  # Fri; Sat Mar 8 moved to Mon Mar 10
        ("2025-03-20T12:00", "2025-03-27"),  # Nauryz Mar 21-25 (Mon/Tue moved)
        ("2025-04-30T12:00", "2025-05-05"),  # May 1 Thu off, Fri May 2 worked, Mon
        ("2025-05-06T12:00", "2025-05-12"),  # May 7 and May 9 off
        ("2025-06-05T12:00", "2025-06-10"),  # Kurban Ait Fri Jun 6
        ("2025-07-04T12:00", "2025-07-09"),  # Jul 6 Sunday -> Mon Jul 7 off
        ("2025-08-29T12:00", "2025-09-03"),  # Aug 30 Saturday -> Mon Sep 1 off
        ("2025-10-24T12:00", "2025-10-29"),  # Oct 25 Saturday -> Mon Oct 27 off
        ("2025-12-15T12:00", "2025-12-18"),  # Dec 16 Tuesday
        ("2025-11-14T10:00", "2025-11-18"),  # Friday receipt -> Tuesday
        ("2025-11-15T10:00", "2025-11-18"),  # Saturday receipt -> Tuesday too
        ("2025-12-31T12:00", "2026-01-06"),  # 2026 New Year Thu/Fri, weekend, Mon, Tue
        ("2026-01-06T12:00", "2026-01-09"),  # Wed Jan 7 off
        ("2026-03-20T12:00", "2026-03-27"),  # Nauryz 2026 Sat-Mon, moved Tue/Wed
        ("2026-05-08T12:00", "2026-05-13"),  # Victory Day Sat May 9 -> Mon May 11
        ("2026-05-26T12:00", "2026-05-29"),  # Kurban Ait Wed May 27
        ("2026-08-28T12:00", "2026-09-01"),  # no Constitution Day holiday in 2026
        ("2026-10-23T12:00", "2026-10-28"),  # Oct 25 Sunday -> Mon Oct 26 off
        ("2026-12-15T12:00", "2026-12-18"),  # Dec 16 Wednesday
    ],
)
def test_two_working_day_deadline(received: str, deadline: str) -> None:
    due = CAL.add_working_days(at(received), 2)
    assert due == dt.datetime.combine(d(deadline), dt.time(23, 59, 59, 999_000), tzinfo=ALMATY)
    assert due.tzinfo is not None and due.utcoffset() == dt.timedelta(hours=5)
    assert CAL.working_days_between(at(received), due) == 2


def test_receipt_late_at_night_utc_is_next_day_in_almaty() -> None:
    # Thu 2025-11-13 20:30 UTC is Fri 01:30 in Almaty (UTC+5): received on Friday -> Tuesday.
    friday = CAL.add_working_days(at("2025-11-13T20:30", UTC), 2)
    assert friday.date() == d("2025-11-18")
    # 18:59 UTC is still Thursday 23:59 in Almaty -> Monday.
    thursday = CAL.add_working_days(at("2025-11-13T18:59", UTC), 2)
    assert thursday.date() == d("2025-11-17")
    assert friday.astimezone(UTC) == at("2025-11-18T18:59:59.999", UTC)


def test_zero_days_and_bad_input() -> None:
    assert CAL.add_working_days(at("2025-11-14T10:00"), 0).date() == d("2025-11-14")
    with pytest.raises(ValueError, match="aware"):
        CAL.add_working_days(dt.datetime(2025, 11, 14, 10), 2)
    with pytest.raises(ValueError, match=">= 0"):
        CAL.add_working_days(at("2025-11-14T10:00"), -1)
    with pytest.raises(ValueError, match="both"):
        KzCalendar(extra_days_off=[d("2026-01-03")], extra_working_days=[d("2026-01-03")])


def test_decrees_from_configuration() -> None:
    # A decree newer than the package: Fri 2026-11-13 off, Sat 2026-11-21 worked.
    cal = KzCalendar(extra_days_off=[d("2026-11-13")], extra_working_days=[d("2026-11-21")])
    assert not cal.is_working_day(d("2026-11-13"))
    assert cal.is_working_day(d("2026-11-21"))
    assert cal.holiday_name(d("2026-11-13")) == "day off (configured)"
    assert cal.add_working_days(at("2026-11-12T10:00"), 2).date() == d("2026-11-17")
    assert cal.add_working_days(at("2026-11-19T10:00"), 2).date() == d("2026-11-21")


def test_working_days_between() -> None:
    assert CAL.working_days_between(d("2025-03-20"), d("2025-03-27")) == 2
    assert CAL.working_days_between(d("2025-03-27"), d("2025-03-20")) == -2
    assert CAL.working_days_between(d("2025-01-01"), d("2025-01-01")) == 0
    # 2025: 365 days - 104 weekend days - 16 weekday days off + Sun Jan 5 worked = 246.
    assert CAL.working_days_between(d("2024-12-31"), d("2025-12-31")) == 246
