"""When a legal deadline is reminded, and to whom (points 119, 120): a pure function of the
deadline, the time and the working-day calendar (no I/O; the service queues the alerts).

    warning   on the deadline's own day (always a working day), from the start of working
              hours, to the analysts: once
    overdue   at once when the deadline passes (its end, 23:59:59.999 Almaty time), escalated
              to the supervisors, then again at the start of working hours and every
              `repeat_hours` within them, on working days, for as long as the case is overdue

Each reminder has a number (`repeat`): the service claims (deadline, stage, due, repeat) once,
so a restart sends nothing twice and a daemon that was down for a day sends the latest
reminder only, not every one it missed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.workdays import KzCalendar

# A case overdue for longer than this many days is still reminded, but the count of repeats
# stops growing (bounds the walk over days; the key stays stable).
_MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class DeadlineRules:
    """[cases] work_start, work_end, repeat_hours."""

    work_start: dt.time = dt.time(9, 0)
    work_end: dt.time = dt.time(18, 0)
    repeat_hours: float = 3.0

    def __post_init__(self) -> None:
        if not self.work_start < self.work_end:
            raise ValueError("work_start must be before work_end")
        if self.repeat_hours <= 0:
            raise ValueError("repeat_hours must be positive")


@dataclass(frozen=True, slots=True)
class Reminder:
    stage: str  # warning | overdue
    repeat: int  # 0 for the first of the stage
    audience: str  # analysts | supervisors

    def key(self, deadline: str, due: float) -> str:
        return f"{deadline}:{self.stage}:{round(due * 1000)}:{self.repeat}"


def reminder(due: float, now: float, calendar: KzCalendar, rules: DeadlineRules) -> Reminder | None:
    """The reminder owed at `now` for a deadline `due` (epoch seconds), None for none yet."""
    if now > due:
        return Reminder("overdue", _repeats(due, now, calendar, rules), "supervisors")
    day = calendar.local_date(_utc(due))
    start = dt.datetime.combine(day, rules.work_start, tzinfo=calendar.tz).timestamp()
    if now >= start:
        return Reminder("warning", 0, "analysts")
    return None


def _repeats(due: float, now: float, calendar: KzCalendar, rules: DeadlineRules) -> int:
    """How many reminder instants lie in (due, now]: the start of working hours and every
    repeat_hours until their end, on each working day."""
    count = 0
    step = dt.timedelta(hours=rules.repeat_hours)
    day = calendar.local_date(_utc(due))
    last = calendar.local_date(_utc(now))
    for _ in range(_MAX_DAYS):
        if day > last:
            break
        if calendar.is_working_day(day):
            t = dt.datetime.combine(day, rules.work_start, tzinfo=calendar.tz)
            end = dt.datetime.combine(day, rules.work_end, tzinfo=calendar.tz)
            while t < end:
                if due < t.timestamp() <= now:
                    count += 1
                t += step
        day += dt.timedelta(days=1)
    return count


def end_of_next_working_day(now: float, calendar: KzCalendar) -> float:
    """The end of the next working day after today (Almaty): what "at risk" looks ahead to."""
    return calendar.add_working_days(_utc(now), 1).timestamp()


def end_of_today(now: float, calendar: KzCalendar) -> float:
    return calendar.add_working_days(_utc(now), 0).timestamp()


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


__all__ = [
    "DeadlineRules",
    "Reminder",
    "end_of_next_working_day",
    "end_of_today",
    "reminder",
]
