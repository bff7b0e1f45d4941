"""Cases and centre notices built from the configuration, alike for the daemon and the CLI
(`fraudgate cases`, `fraudgate centre`): [cases] calendar days, policy and reminders; [centre]
operator. Light on imports: a CLI command does not load the detectors to decide a case."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.cases import Cases
    from gateway.centre.notices import Notices
    from gateway.config import GatewayConfig
    from gateway.store import Store
    from gateway.switch.port import SwitchControl


def build_cases(cfg: GatewayConfig, store: Store, switch: SwitchControl) -> Cases:
    """Cases on the working-day calendar with the configured decree days and policy."""
    from gateway.cases import Cases
    from gateway.centre import CentreOutbox
    from gateway.registry import Registry
    from gateway.workdays import KzCalendar

    c = cfg.cases
    days_off, working_days = c.days()
    calendar = KzCalendar(extra_days_off=days_off, extra_working_days=working_days)
    # one registry, on the same calendar: [registry]'s decision limit counts these days too
    registry = Registry(store, settings=cfg.registry, calendar=calendar)
    return Cases(
        store, calendar, switch=switch, registry=registry,
        reports=CentreOutbox(cfg.centre.operator), policy=c.policy(),
        deadlines=c.deadline_rules(),
    )  # fmt: skip


def build_notices(cfg: GatewayConfig, store: Store, cases: Cases) -> Notices:
    """The centre notices analysts see through (list, resend, dismiss, reminders)."""
    from gateway.centre.notices import Notices

    return Notices(
        store, cfg.centre.operator, rebuild=cases.detection_notice, calendar=cases.calendar,
        work_start=cases.deadlines.work_start,
    )  # fmt: skip
