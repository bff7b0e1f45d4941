"""Kazakhstan working days: the calendar behind the legal deadlines of points 119 and 120 (R4, R5).

A working day is a day that is not a weekend day, not a public holiday, not a day off moved by
law (a holiday falling on a weekend moves to the next working day, except Jan 7 and Kurban Ait)
and not a day off swapped by government decree; a weekend day that a decree makes a working day
(2025: Sunday Jan 5 worked for Friday Jan 3) IS a working day. `holidays.KZ` models all of
this; decrees newer than the installed package are added from configuration
(`extra_days_off`, `extra_working_days`), because a deadline computed on a stale calendar is
wrong.

Deadline convention ("within 2 working days of receipt", points 119-120): the deadline is the
END of the n-th working day AFTER the day of receipt, in Almaty time. The day of receipt never
counts, whatever the hour, and whether or not it is a working day: a complaint received on
Friday 10:00 (or Saturday) has verify_by = Tuesday 23:59:59.999 (Asia/Almaty).

The calendar checks its data when built and refuses (CalendarError) to compute deadlines on
wrong data: known official answers (`KNOWN_ANSWERS`, e.g. the 2025 decree's Sunday Jan 5
worked for Friday Jan 3) must come out right from `holidays` plus the configured decree days,
and the time zone must be UTC+05:00 after 1 March 2024. The zone is read from the `tzdata`
package first: `zoneinfo` prefers the system database, and one older than 2024a still puts
Almaty on UTC+06:00, which dates every receipt between 23:00 and 23:59 on the next day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from importlib import metadata, resources
from zoneinfo import ZoneInfo

from holidays.countries.kazakhstan import Kazakhstan

from gateway.config_check import ConfigError

ALMATY = "Asia/Almaty"  # UTC+5 all year since 1 March 2024 (one time zone for the country)
END_OF_DAY = dt.time(23, 59, 59, 999_000)
KZ_OFFSET = dt.timedelta(hours=5)
KZ_OFFSET_SINCE = dt.datetime(2024, 3, 1, 0, 0, tzinfo=dt.UTC)  # IANA tzdata 2024a
# Official answers the calendar must give (government decrees, the Labour Code as amended):
# day -> is it a working day.
KNOWN_ANSWERS: dict[dt.date, bool] = {
    dt.date(2025, 1, 3): False,  # Friday, day off moved from Sunday Jan 5 (2025 decree)
    dt.date(2025, 1, 5): True,  # that Sunday is worked
    dt.date(2025, 9, 1): False,  # Constitution Day, Saturday Aug 30 -> Monday
    dt.date(2026, 8, 31): True,  # no Constitution Day holiday in 2026
    dt.date(2027, 3, 15): False,  # Constitution Day on March 15 from 2027
    dt.date(2027, 8, 30): True,  # ... and no longer on August 30
}


class CalendarError(ConfigError):
    """The installed calendar data (the `holidays` package, the time-zone database) gives
    wrong answers, so every deadline would be wrong: refuse to start. A ConfigError so that
    each command reports it as one line, as it does a bad configuration."""


class KzCalendar:
    """Working days in Kazakhstan, `holidays.KZ` plus configured decree changes."""

    def __init__(
        self,
        extra_days_off: Iterable[dt.date] = (),
        extra_working_days: Iterable[dt.date] = (),
        tz: str | ZoneInfo = ALMATY,
    ) -> None:
        self.extra_days_off = frozenset(extra_days_off)
        self.extra_working_days = frozenset(extra_working_days)
        both = self.extra_days_off & self.extra_working_days
        if both:
            days = ", ".join(sorted(d.isoformat() for d in both))
            raise ValueError(f"a day cannot be both an extra day off and a working day: {days}")
        self.tz = _zone(tz)
        check_zone(self.tz)
        self._kz = Kazakhstan()  # holidays.KZ; years are filled in lazily, on first use
        self._check_known_answers()

    def _check_known_answers(self) -> None:
        wrong = [
            f"{day.isoformat()} (officially {'a working day' if working else 'a day off'})"
            for day, working in KNOWN_ANSWERS.items()
            if self.is_working_day(day) != working
        ]
        if wrong:
            raise CalendarError(
                f"the working-day calendar is wrong (holidays {_version('holidays')}): it "
                f"disagrees with the official calendar on {', '.join(wrong)}; every deadline "
                f"would be wrong. Install holidays==0.109 (pyproject.toml), or give the "
                f"missing decree days in [cases] extra_days_off / extra_working_days"
            )

    def is_working_day(self, day: dt.date) -> bool:
        if isinstance(day, dt.datetime):
            day = self.local_date(day)
        if day in self.extra_days_off:
            return False
        if day in self.extra_working_days:
            return True
        return bool(self._kz.is_working_day(day))

    def holiday_name(self, day: dt.date) -> str | None:
        """The reason `day` is off (holiday, moved or decree day off), None for none."""
        if day in self.extra_days_off:
            return "day off (configured)"
        name = self._kz.get(day)
        return str(name) if name else None

    def local_date(self, moment: dt.datetime) -> dt.date:
        """The calendar day of `moment` in Almaty time (`moment` must be time-zone aware)."""
        return _aware(moment).astimezone(self.tz).date()

    def add_working_days(self, moment: dt.datetime, n: int) -> dt.datetime:
        """The deadline "within `n` working days of `moment`": the end (23:59:59.999, Almaty
        time, returned aware) of the n-th working day after the local day of `moment`. n = 0
        gives the end of that day itself."""
        if n < 0:
            raise ValueError(f"n must be >= 0, not {n}")
        day = self.local_date(moment)
        left = n
        while left:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return dt.datetime.combine(day, END_OF_DAY, tzinfo=self.tz)

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """How many working days d with start < d <= end (aware datetimes count by their Almaty
        day); negative when end is before start. add_working_days(t, n) ends on a day with
        working_days_between(t, day) == n."""
        first = self.local_date(start) if isinstance(start, dt.datetime) else start
        last = self.local_date(end) if isinstance(end, dt.datetime) else end
        if last < first:
            return -self.working_days_between(last, first)
        count = 0
        day = first
        while day < last:
            day += dt.timedelta(days=1)
            count += self.is_working_day(day)
        return count


def almaty_zone() -> ZoneInfo:
    """Asia/Almaty from the `tzdata` package (a dependency, kept current by pip); the system
    database (what ZoneInfo(key) reads first) only when the package is missing."""
    try:
        data = resources.files("tzdata").joinpath("zoneinfo", *ALMATY.split("/"))
        with data.open("rb") as f:
            return ZoneInfo.from_file(f, key=ALMATY)
    except (ModuleNotFoundError, OSError):
        return ZoneInfo(ALMATY)


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    return almaty_zone() if tz == ALMATY else ZoneInfo(tz)


def check_zone(zone: dt.tzinfo) -> None:
    """Refuse (CalendarError) a zone that is not UTC+05:00 after 1 March 2024: Kazakhstan's
    one time zone since then. A time-zone database older than 2024a still gives +06:00."""
    for moment in (KZ_OFFSET_SINCE + dt.timedelta(days=1), dt.datetime(2026, 1, 1, tzinfo=dt.UTC)):
        offset = moment.astimezone(zone).utcoffset()
        if offset != KZ_OFFSET:
            key = getattr(zone, "key", None) or str(zone)
            raise CalendarError(
                f"time zone {key} gives UTC{_hours(offset)} on {moment.date().isoformat()}; "
                f"Kazakhstan is on UTC+05:00 since 1 March 2024 (tz database 2024a): receipts "
                f"would be dated wrong. Install tzdata>=2024.1 (pyproject.toml) or update the "
                f"system time-zone database"
            )


def _hours(offset: dt.timedelta | None) -> str:
    if offset is None:
        return " (no offset)"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "version unknown"


def _aware(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a time-zone aware datetime is needed, not {moment!r}")
    return moment


__all__ = [
    "ALMATY",
    "END_OF_DAY",
    "KNOWN_ANSWERS",
    "CalendarError",
    "KzCalendar",
    "almaty_zone",
    "check_zone",
]
