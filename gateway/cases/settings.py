"""`[cases]`: the legal workflow's settings, parsed by the cases package (docs/cases.md)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.config_check import ConfigError, Table
from gateway.probes.simbox import NAMES_A_NUMBER

from .deadlines import DeadlineRules
from .model import DetectionReport, Policy, SuspendScope

# keys of earlier versions whose meaning changed: refused with what replaces them
_RENAMED = {
    "block_all_subscriber_numbers": 'suspend_scope = "subscriber" with suspend_scope_reason '
    "(the default suspends only the numbers the facts concern, point 120)",
    "confirming_probe_outcomes": "auto_confirm_probe_outcomes (default: none; a person confirms)",
    "warn_before_hours": "work_start / work_end / repeat_hours (deadline reminders)",
}


@dataclass
class CasesSettings:
    """[cases]: the legal workflow (docs/cases.md)."""

    enabled: bool = True
    interval: float = 5.0  # seconds between rounds: new complaints/findings, retries, deadlines
    extra_days_off: tuple[str, ...] = ()  # YYYY-MM-DD, decree days off the holidays package lacks
    extra_working_days: tuple[str, ...] = ()
    suspend_scope: str = SuspendScope.NUMBERS.value
    suspend_scope_reason: str = ""
    auto_confirm_probe_outcomes: tuple[str, ...] = ()
    report_detection: str = DetectionReport.AT_CONFIRMATION.value
    work_start: str = "09:00"
    work_end: str = "18:00"
    repeat_hours: float = 3.0

    def policy(self) -> Policy:
        return Policy(
            auto_confirm_probe_outcomes=frozenset(self.auto_confirm_probe_outcomes),
            suspend_scope=SuspendScope(self.suspend_scope),
            suspend_scope_reason=self.suspend_scope_reason,
            report_detection=DetectionReport(self.report_detection),
        )

    def deadline_rules(self) -> DeadlineRules:
        return DeadlineRules(
            dt.time.fromisoformat(self.work_start),
            dt.time.fromisoformat(self.work_end),
            self.repeat_hours,
        )

    def days(self) -> tuple[list[dt.date], list[dt.date]]:
        """The configured extra days off and working days, as dates."""
        return (
            [dt.date.fromisoformat(d) for d in self.extra_days_off],
            [dt.date.fromisoformat(d) for d in self.extra_working_days],
        )


def parse_cases(c: Table) -> CasesSettings:
    """[cases] (docs/cases.md)."""
    for old, new in _RENAMED.items():
        if old in c.data:
            raise ConfigError(f"{c.key(old)}: no longer read; use {new}")
    cases = CasesSettings(
        enabled=c.get("enabled", bool, True),
        interval=c.number("interval", 5.0, minimum=0.1),
        extra_days_off=c.dates("extra_days_off"),
        extra_working_days=c.dates("extra_working_days"),
        suspend_scope=_choice(c, "suspend_scope", [s.value for s in SuspendScope]),
        suspend_scope_reason=c.get("suspend_scope_reason", str, "").strip(),
        auto_confirm_probe_outcomes=tuple(c.get("auto_confirm_probe_outcomes", list, [])),
        report_detection=_choice(c, "report_detection", [d.value for d in DetectionReport]),
        work_start=_clock(c, "work_start", "09:00"),
        work_end=_clock(c, "work_end", "18:00"),
        repeat_hours=c.number("repeat_hours", 3.0, minimum=0.25, maximum=24),
    )
    known = {o.value for o in NAMES_A_NUMBER}
    if not set(cases.auto_confirm_probe_outcomes) <= known:
        raise ConfigError(
            f"{c.key('auto_confirm_probe_outcomes')}: outcomes among {', '.join(sorted(known))}"
        )
    if cases.suspend_scope == SuspendScope.SUBSCRIBER and not cases.suspend_scope_reason:
        raise ConfigError(
            f'{c.key("suspend_scope_reason")}: required with suspend_scope = "subscriber" '
            "(point 120 suspends the number itself; say why this operator suspends more)"
        )
    if not cases.work_start < cases.work_end:
        raise ConfigError(f"{c.key('work_start')}: must be before work_end")
    c.done()
    return cases


def _choice(c: Table, name: str, allowed: list[str]) -> str:
    value = c.get(name, str, allowed[0])
    if value not in allowed:
        raise ConfigError(f"{c.key(name)}: one of {', '.join(allowed)}, got {value!r}")
    return value


def _clock(c: Table, name: str, default: str) -> str:
    value = c.get(name, str, default)
    try:
        dt.time.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{c.key(name)}: a time of day HH:MM, got {value!r}") from None
    return value
