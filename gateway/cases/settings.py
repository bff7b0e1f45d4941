"""`[cases]`: the legal workflow's settings, parsed by the cases package (docs/cases.md)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config_check import ConfigError, Table
from gateway.probes.simbox import NAMES_A_NUMBER


@dataclass
class CasesSettings:
    """[cases]: the legal workflow (docs/cases.md)."""

    enabled: bool = True
    interval: float = 5.0  # seconds between rounds: new complaints/findings, retries, deadlines
    warn_before_hours: float = 4.0
    extra_days_off: tuple[str, ...] = ()  # YYYY-MM-DD, decree days off the holidays package lacks
    extra_working_days: tuple[str, ...] = ()
    block_all_subscriber_numbers: bool = True
    confirming_probe_outcomes: tuple[str, ...] = ("simbox", "simfarm")


def parse_cases(c: Table) -> CasesSettings:
    """[cases] (docs/cases.md)."""
    cases = CasesSettings(
        enabled=c.get("enabled", bool, True),
        interval=c.number("interval", 5.0, minimum=0.1),
        warn_before_hours=c.number("warn_before_hours", 4.0),
        extra_days_off=c.dates("extra_days_off"),
        extra_working_days=c.dates("extra_working_days"),
        block_all_subscriber_numbers=c.get("block_all_subscriber_numbers", bool, True),
        confirming_probe_outcomes=tuple(
            c.get("confirming_probe_outcomes", list, ["simbox", "simfarm"])
        ),
    )
    known = {o.value for o in NAMES_A_NUMBER}
    if not set(cases.confirming_probe_outcomes) <= known:
        raise ConfigError(
            f"{c.key('confirming_probe_outcomes')}: outcomes among {', '.join(sorted(known))}"
        )
    c.done()
    return cases
