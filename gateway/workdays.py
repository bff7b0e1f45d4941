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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from holidays.countries.kazakhstan import Kazakhstan

ALMATY = "Asia/Almaty"  # UTC+5 all year since 1 March 2024 (one time zone for the country)
END_OF_DAY = dt.time(23, 59, 59, 999_000)


class KzCalendar:
    """Working days in Kazakhstan, `holidays.KZ` plus configured decree changes."""

    def __init__(
        self,
        extra_days_off: Iterable[dt.date] = (),
        extra_working_days: Iterable[dt.date] = (),
        tz: str = ALMATY,
    ) -> None:
        self.extra_days_off = frozenset(extra_days_off)
        self.extra_working_days = frozenset(extra_working_days)
        both = self.extra_days_off & self.extra_working_days
        if both:
            days = ", ".join(sorted(d.isoformat() for d in both))
            raise ValueError(f"a day cannot be both an extra day off and a working day: {days}")
        self.tz = ZoneInfo(tz)
        self._kz = Kazakhstan()  # holidays.KZ; years are filled in lazily, on first use

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


def _aware(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a time-zone aware datetime is needed, not {moment!r}")
    return moment


__all__ = ["ALMATY", "END_OF_DAY", "KzCalendar"]
