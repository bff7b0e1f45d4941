"""`[registry]`: the subscriber registry's settings, parsed by the registry package
(docs/registry.md)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config_check import Table

# 55-4 refers to the time limit of point 57, 16) of the Rules (order No. 171), whose text the
# project does not have: 15 working days is a placeholder to be set from the Rules in force.
DEFAULT_DECISION_DAYS = 15


@dataclass
class RegistrySettings:
    """[registry] (docs/registry.md)."""

    application_decision_days: int = DEFAULT_DECISION_DAYS  # working days (Kazakhstan)


def parse_registry(r: Table) -> RegistrySettings:
    """[registry] (docs/registry.md)."""
    settings = RegistrySettings(
        application_decision_days=r.integer(
            "application_decision_days", DEFAULT_DECISION_DAYS, minimum=1, maximum=365
        )
    )
    r.done()
    return settings
