"""Whole-stack evaluation: a labelled corpus scored the way the daemon decides.

Every row becomes the `SmsEvent` the pipeline would build for it and goes through an `Inspector`
built by `gateway.wiring.build_inspector` from the configuration — the same content rules, URL,
sender, grey-route, velocity, campaign and classifier detectors, combined by
`gateway.domain.combine` with the configured thresholds. A row is *flagged* when the decision is
FLAG or BLOCK, *blocked* when it is BLOCK.

Traffic context per row (optional corpus columns):
* `source`: the sender address. Empty: an ordinary local mobile (one per row), or, with route
  a2p, the alphanumeric id `INFO`. Letters make it alphanumeric (TON 5), digits a number.
* `route`: local (default), international or a2p. An a2p row from a sender protected in
  senders.toml arrives on that sender's first contracted bind (`allowed_smsc`), so registered
  A2P is judged as it arrives in production; others on a bind named after the route.
* `lang`, `theme`, `channel`: for the breakdowns; `lang` defaults to `language(text)`.

Rows are scored as lone messages: each one two days after the previous, so no memory (velocity
windows, campaigns, remembered link domains) links one row to another. Campaigns and fan-out
are measured by traffic scenarios (`fraudgate bench`, the tests), not here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.detect.language import language
from gateway.domain import Decision, Inspected, Route, SmsEvent

ROW_SPACING = 2 * 86400.0  # seconds between rows: longer than any detector's memory
EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z: rows are dated from here
A2P_PLACEHOLDER = "INFO"


@dataclass(frozen=True, slots=True)
class Row:
    """One labelled message and its traffic context."""

    text: str
    fraud: bool
    label: str = ""
    source: str = ""
    route: str = ""
    lang: str = ""
    theme: str = ""
    channel: str = ""
    publisher: str = ""


@dataclass(slots=True)
class Cell:
    """Counts for one group of rows."""

    fraud: int = 0
    caught: int = 0  # fraud flagged or blocked
    fraud_blocked: int = 0
    legit: int = 0
    legit_flagged: int = 0  # legit flagged or blocked
    legit_blocked: int = 0

    def add(self, fraud: bool, decision: Decision) -> None:
        flagged = decision is not Decision.ALLOW
        blocked = decision is Decision.BLOCK
        if fraud:
            self.fraud += 1
            self.caught += flagged
            self.fraud_blocked += blocked
        else:
            self.legit += 1
            self.legit_flagged += flagged
            self.legit_blocked += blocked

    @property
    def recall(self) -> float | None:
        return self.caught / self.fraud if self.fraud else None

    @property
    def flag_rate(self) -> float | None:
        return self.legit_flagged / self.legit if self.legit else None

    @property
    def block_rate(self) -> float | None:
        return self.legit_blocked / self.legit if self.legit else None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fraud": self.fraud, "legit": self.legit}
        if self.fraud:
            out |= {"caught": self.caught, "fraud_blocked": self.fraud_blocked,
                    "recall": round(self.caught / self.fraud, 4)}  # fmt: skip
        if self.legit:
            out |= {
                "legit_flagged": self.legit_flagged,
                "legit_blocked": self.legit_blocked,
                "flag_rate": round(self.legit_flagged / self.legit, 4),
                "block_rate": round(self.legit_blocked / self.legit, 4),
            }
        return out


@dataclass(slots=True)
class Breakdown:
    total: Cell = field(default_factory=Cell)
    by: dict[str, dict[str, Cell]] = field(default_factory=dict)

    def add(self, row: Row, decision: Decision) -> None:
        self.total.add(row.fraud, decision)
        for dimension, value in (
            ("lang", row.lang or language(row.text)),
            ("theme", row.theme or "-"),
            ("label", row.label or ("fraud" if row.fraud else "ham")),
            ("channel", row.channel or "-"),
            ("route", row.route or "local"),
        ):
            self.by.setdefault(dimension, {}).setdefault(value, Cell()).add(row.fraud, decision)

    def as_dict(self) -> dict[str, Any]:
        return {
            f"by_{dim}": {k: c.as_dict() for k, c in sorted(cells.items())}
            for dim, cells in self.by.items()
        }


SenderBinds = Callable[[str], str | None]  # a protected sender id -> its contracted bind


def event_for(row: Row, index: int, contracted_bind: SenderBinds | None = None) -> SmsEvent:
    """The SmsEvent the pipeline would build for `row` (see the module's docstring)."""
    try:
        route = Route(row.route or "local")
    except ValueError:
        raise ValueError(f"route {row.route!r}: one of local, international, a2p") from None
    source = row.source or (A2P_PLACEHOLDER if route is Route.A2P else f"7701{index % 10**7:07d}")
    alphanumeric = not source.lstrip("+").isdigit()
    bind = contracted_bind(source) if (contracted_bind and route is Route.A2P) else None
    return SmsEvent(
        source=source,
        dest=f"7702{index % 10**7:07d}",
        text=row.text,
        source_ton=5 if alphanumeric else 1,
        source_npi=0 if alphanumeric else 1,
        dest_ton=1,
        dest_npi=1,
        smsc=bind or route.value,
        route=route,
        received_at=EPOCH + index * ROW_SPACING,
    )


def decide(
    inspect: Callable[[SmsEvent, float], Inspected],
    rows: Sequence[Row],
    contracted_bind: SenderBinds | None = None,
) -> list[Inspected]:
    """Every row inspected as the pipeline inspects it, in order."""
    out: list[Inspected] = []
    for i, row in enumerate(rows):
        sms = event_for(row, i, contracted_bind)
        out.append(inspect(sms, sms.received_at))
    return out


def breakdown(rows: Sequence[Row], decisions: Sequence[Decision]) -> Breakdown:
    b = Breakdown()
    for row, decision in zip(rows, decisions, strict=True):
        b.add(row, decision)
    return b
