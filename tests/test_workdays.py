"""Kazakhstan working days and the 2-working-day deadlines of points 119-120 (R4, R5)."""

from __future__ import annotations

import datetime as dt
import os
import re
import struct
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.config_check import ConfigError
from gateway.workdays import KNOWN_ANSWERS, CalendarError, KzCalendar, almaty_zone, check_zone

PROJECT_DIR = Path(__file__).resolve().parents[1]

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
        # holidays 0.58 gave Wed Jan 8 (no decree: Fri Jan 3 a working day, Sun Jan 5 not)
        ("2025-01-03T10:00", "2025-01-06"),  # Fri Jan 3 off, Sun Jan 5 worked, Mon Jan 6
        # holidays 0.58 gave Sep 2 (Constitution Day Sun Aug 30 -> Mon Aug 31 off)
        ("2026-08-28T10:00", "2026-09-01"),  # no Constitution Day in 2026: Mon, Tue
        ("2027-03-12T10:00", "2027-03-17"),  # Constitution Day Mon Mar 15 from 2027
        ("2027-08-27T10:00", "2027-08-31"),  # Mon Aug 30 2027 is a working day
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


# -- the calendar's data is checked when it is built ---------------------------------------------


def test_constitution_day_moves_to_march_15_from_2027() -> None:
    assert CAL.holiday_name(d("2027-03-15")) is not None
    assert CAL.is_working_day(d("2027-08-30"))
    assert not CAL.is_working_day(d("2025-09-01"))  # still August 30 (observed) in 2025


def test_the_installed_holidays_is_the_pinned_one() -> None:
    pyproject = (PROJECT_DIR / "pyproject.toml").read_text(encoding="utf-8")
    [pinned] = re.findall(r'"holidays==([0-9.]+)"', pyproject)
    assert metadata.version("holidays") == pinned


def test_every_known_answer_holds() -> None:
    assert {day: CAL.is_working_day(day) for day in KNOWN_ANSWERS} == KNOWN_ANSWERS


@pytest.mark.parametrize(
    ("days_off", "working_days", "named"),
    [
        ([], [d("2025-01-03")], "2025-01-03 (officially a day off)"),  # as holidays 0.58 had it
        ([d("2026-08-31")], [], "2026-08-31 (officially a working day)"),
    ],
)
def test_a_calendar_that_contradicts_the_official_answers_is_refused(
    days_off: list[dt.date], working_days: list[dt.date], named: str
) -> None:
    with pytest.raises(CalendarError) as caught:
        KzCalendar(extra_days_off=days_off, extra_working_days=working_days)
    message = str(caught.value)
    assert named in message and "holidays==0.109" in message
    assert "holidays 0.109" in message  # the version in use
    assert isinstance(caught.value, ConfigError)  # one line, exit 2, like a bad configuration


def stale_almaty(directory: Path) -> Path:
    """A time-zone database directory whose Asia/Almaty is UTC+06:00 for ever, as a database
    older than 2024a has it today: what `zic` makes of "Zone Asia/Almaty 6:00 - +06" (TZif
    version 2, one local time type, no transitions, footer rule "<+06>-6")."""
    counts = struct.pack(">6l", 0, 0, 0, 0, 1, 4)  # isut, isstd, leap, time, type, char
    header = b"TZif2" + bytes(15) + counts
    block = struct.pack(">lBB", 6 * 3600, 0, 0) + b"+06\x00"
    path = directory / "Asia" / "Almaty"
    path.parent.mkdir(parents=True)
    path.write_bytes(header + block + header + block + b"\n<+06>-6\n")
    return path


def test_a_stale_zone_is_refused_when_given(tmp_path: Path) -> None:
    with stale_almaty(tmp_path).open("rb") as f:
        stale = ZoneInfo.from_file(f, key="Asia/Almaty")
    assert dt.datetime(2025, 1, 1, tzinfo=stale).utcoffset() == dt.timedelta(hours=6)
    with pytest.raises(CalendarError, match=r"Asia/Almaty gives UTC\+06:00 on 2024-03-02"):
        check_zone(stale)
    with pytest.raises(CalendarError, match=r"tzdata>=2024\.1"):
        KzCalendar(tz=stale)
    check_zone(almaty_zone())  # the packaged zone passes
    check_zone(CAL.tz)


LATE_RECEIPT = """
import datetime as dt, zoneinfo
from gateway.workdays import KzCalendar
system = dt.datetime(2025, 1, 1, tzinfo=zoneinfo.ZoneInfo("Asia/Almaty")).utcoffset()
# Thursday 2025-11-13 23:30 in Almaty (18:30 UTC): received on Thursday, due Monday.
due = KzCalendar().add_working_days(dt.datetime(2025, 11, 13, 18, 30, tzinfo=dt.UTC), 2)
print(system, due.isoformat())
"""


def test_a_stale_system_zone_does_not_date_late_receipts_on_the_next_day(
    tmp_path: Path,
) -> None:
    stale_almaty(tmp_path)
    env = {**os.environ, "PYTHONTZPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", LATE_RECEIPT],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    # The system zone in that process is the stale one; the calendar's is not.
    assert result.stdout.split() == ["6:00:00", "2025-11-17T23:59:59.999000+05:00"]
