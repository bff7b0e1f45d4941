"""`[feedback]`: analysts' exemptions (docs/api.md "Feedback"), parsed here."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config_check import ConfigError, Table


@dataclass
class FeedbackSettings:
    """Analysts' feedback (docs/api.md "Feedback"; gateway.feedback.FeedbackLimits)."""

    default_hours: float = 24.0  # an exemption's life when the analyst gives none
    max_hours: float = 168.0  # the longest an analyst may ask for
    max_active: int = 10_000  # exemptions in force at once, all held in memory
    refresh: float = 5.0  # seconds between reloads of the exemptions from the database


def parse_feedback(f: Table) -> FeedbackSettings:
    """[feedback] (docs/api.md "Feedback")."""
    settings = FeedbackSettings(
        default_hours=f.number("default_hours", 24.0, minimum=0.01, maximum=8760.0),
        max_hours=f.number("max_hours", 168.0, minimum=0.01, maximum=8760.0),
        max_active=f.integer("max_active", 10_000, minimum=1, maximum=1_000_000),
        refresh=f.number("refresh", 5.0, minimum=0.1, maximum=3600.0),
    )
    if settings.default_hours > settings.max_hours:
        raise ConfigError(
            f"{f.key('default_hours')}: {settings.default_hours:g} is over "
            f"{f.key('max_hours')} ({settings.max_hours:g})"
        )
    f.done()
    return settings
