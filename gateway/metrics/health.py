"""The readiness checks of /readyz (docs/operations.md "Health endpoints").

Ready means the gateway does its job now: it has started, every configured SMSC bind is bound,
the database answers (the Recorder's last commit succeeded), and the alert outbox moves (its
oldest pending alert is younger than `stuck_after` while the broker is connected; with the
broker down the alerts wait by design and the broker's own state says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""

    def as_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"name": self.name, "ok": self.ok}
        if self.detail:
            doc["detail"] = self.detail
        return doc


def readiness(
    *,
    started: bool,
    binds: Mapping[str, bool],
    database_ok: bool,
    broker_connected: bool | None,
    oldest_alert_age: float | None,
    stuck_after: float,
) -> list[Check]:
    """The checks, each with what failed. `binds`: bind label -> bound; `broker_connected`
    None when MQTT is off; `oldest_alert_age` None when the outbox is empty or unknown."""
    down = sorted(name for name, bound in binds.items() if not bound)
    checks = [
        Check("started", started, "" if started else "the daemon is still starting"),
        Check("binds", not down, f"not bound: {', '.join(down)}" if down else ""),
        Check("database", database_ok, "" if database_ok else "the last commit failed"),
    ]
    stuck = (
        broker_connected is True and oldest_alert_age is not None and oldest_alert_age > stuck_after
    )
    detail = (
        f"oldest pending alert {oldest_alert_age:.0f} s old with the broker connected "
        f"(limit {stuck_after:g} s)"
        if stuck
        else ""
    )
    checks.append(Check("outbox", not stuck, detail))
    return checks
