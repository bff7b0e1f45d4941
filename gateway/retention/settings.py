"""`[retention]`: how long each kind of personal data is kept, in days (docs/retention.md).

Each kind has a documented minimum: a decision must stay explainable while it can be questioned
(R8), so a period below it is refused when the configuration is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config_check import ConfigError, Table


class RetentionConfigError(ConfigError):
    """A retention period is below its documented minimum (docs/retention.md)."""


@dataclass(frozen=True, slots=True)
class Period:
    """One kind's rule: the configuration key, its default and its minimum, in days."""

    key: str
    default: float
    minimum: float
    ground: str  # the short reason for the minimum, quoted in the error


# docs/retention.md "Periods" explains each figure; keep the two in step.
CENTRE_REPORTS = Period("centre_reports_days", 365.0, 90.0, "a report stays explainable to "
                        "the centre and to a subscriber contesting it")  # fmt: skip
CENTRE_INBOUND = Period("centre_inbound_days", 365.0, 90.0, "what the centre reported stays "
                        "explainable after its case is decided")  # fmt: skip
COMPLAINTS = Period("complaints_days", 365.0, 90.0, "a complaint stays explainable after its "
                    "case is decided")  # fmt: skip
AUDIT = Period("audit_days", 1095.0, 365.0, "an annual audit sees a whole year of accesses "
               "and decisions")  # fmt: skip
PERIODS = (CENTRE_REPORTS, CENTRE_INBOUND, COMPLAINTS, AUDIT)


@dataclass(frozen=True)
class RetentionSettings:
    """[retention]: days each kind of personal data is kept (docs/retention.md)."""

    centre_reports_days: float = CENTRE_REPORTS.default  # from acknowledgement (or set aside)
    centre_inbound_days: float = CENTRE_INBOUND.default  # from the case's last change
    complaints_days: float = COMPLAINTS.default  # from the case's last change
    audit_days: float = AUDIT.default  # rows older than this are deleted

    def __post_init__(self) -> None:
        for period in PERIODS:
            check_period(period, getattr(self, period.key), f"retention.{period.key}")


def check_period(period: Period, days: float, where: str) -> None:
    """RetentionConfigError when `days` is below the documented minimum of `period`."""
    if days < period.minimum:
        raise RetentionConfigError(
            f"{where}: {days:g} days is below the minimum of {period.minimum:g} days "
            f"({period.ground}; docs/retention.md)"
        )


def parse_retention(t: Table) -> RetentionSettings:
    """[retention] (docs/retention.md): each key in days, refused below its minimum."""
    days: dict[str, float] = {}
    for period in PERIODS:
        value = t.number(period.key, period.default, maximum=36500.0)
        check_period(period, value, t.key(period.key))
        days[period.key] = value
    t.done()
    return RetentionSettings(**days)


__all__ = ["PERIODS", "Period", "RetentionConfigError", "RetentionSettings", "parse_retention"]
