"""Subscribers for the Osmocom lab, provisioned in osmo-hlr over CTRL (TCP 4259).

    SET <id> subscriber.create <IMSI>                       -> SET_REPLY ... <new db id>
                                                               ERROR ... Subscriber already exists.
    SET <id> subscriber.by-imsi-<IMSI>.msisdn <MSISDN>
    SET <id> subscriber.by-imsi-<IMSI>.aud2g comp128v1,<KI> (or `none`: no 2G keys)

Idempotent: a subscriber that exists is brought to the wanted MSISDN and keys (read first, only
what differs is written). Everything is validated before the first byte is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.osmocom.ctrl import CtrlClient, CtrlCommandError, CtrlError

ALREADY_EXISTS = "Subscriber already exists."


class ProvisionError(Exception):
    """A subscriber could not be provisioned; the message names it (IMSI, and name if any)."""

    def __init__(self, subscriber: LabSubscriber, reason: str) -> None:
        super().__init__(f"subscriber {subscriber.label}: {reason}")
        self.subscriber = subscriber
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LabSubscriber:
    """A lab SIM. `ki`: 32 hex digits for COMP128v1 (empty: no 2G keys; the lab's MSC runs with
    `authentication optional`). `name` is a label for test output only; the HLR has no name."""

    imsi: str
    msisdn: str
    ki: str = ""
    name: str = ""

    @property
    def label(self) -> str:
        return f"{self.imsi} ({self.name})" if self.name else self.imsi

    @property
    def aud2g(self) -> str:
        return f"comp128v1,{self.ki.lower()}" if self.ki else "none"

    def problems(self) -> list[str]:
        out = []
        if not (self.imsi.isascii() and self.imsi.isdigit() and len(self.imsi) == 15):
            out.append(f"IMSI {self.imsi!r} is not 15 digits")
        if not (self.msisdn.isascii() and self.msisdn.isdigit() and 1 <= len(self.msisdn) <= 15):
            out.append(f"MSISDN {self.msisdn!r} is not 1-15 digits")
        if self.ki and not (
            len(self.ki) == 32 and all(c in "0123456789abcdefABCDEF" for c in self.ki)
        ):
            out.append("Ki is not 32 hex digits")
        return out


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    created: int = 0
    updated: int = 0  # existed, and something (MSISDN, keys) had to change
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


def validate(subscribers: Sequence[LabSubscriber]) -> None:
    """Raise ProvisionError for the first bad or duplicated subscriber."""
    imsis: set[str] = set()
    msisdns: set[str] = set()
    for sub in subscribers:
        if problems := sub.problems():
            raise ProvisionError(sub, "; ".join(problems))
        if sub.imsi in imsis:
            raise ProvisionError(sub, "IMSI given twice")
        if sub.msisdn in msisdns:
            raise ProvisionError(sub, f"MSISDN {sub.msisdn} given to two subscribers")
        imsis.add(sub.imsi)
        msisdns.add(sub.msisdn)


async def provision(ctrl: CtrlClient, subscribers: Sequence[LabSubscriber]) -> ProvisionReport:
    validate(subscribers)
    created = updated = unchanged = 0
    for sub in subscribers:
        try:
            outcome = await _one(ctrl, sub)
        except CtrlError as e:
            raise ProvisionError(sub, f"osmo-hlr: {e}") from e
        if outcome == "created":
            created += 1
        elif outcome == "updated":
            updated += 1
        else:
            unchanged += 1
    return ProvisionReport(created, updated, unchanged)


async def _one(ctrl: CtrlClient, sub: LabSubscriber) -> str:
    base = f"subscriber.by-imsi-{sub.imsi}"
    try:
        await ctrl.set("subscriber.create", sub.imsi)
    except CtrlCommandError as e:
        if e.message.strip() != ALREADY_EXISTS:
            raise
    else:
        await ctrl.set(f"{base}.msisdn", sub.msisdn)
        if sub.ki:  # osmo-hlr 1.5 answers "Update aud2g failed." to `none` on no keys
            await ctrl.set(f"{base}.aud2g", sub.aud2g)
        return "created"
    changed = False
    if (await ctrl.get(f"{base}.msisdn")).strip() != sub.msisdn:
        await ctrl.set(f"{base}.msisdn", sub.msisdn)
        changed = True
    if (await ctrl.get(f"{base}.aud2g")).strip().lower() != sub.aud2g:
        await ctrl.set(f"{base}.aud2g", sub.aud2g)
        changed = True
    return "updated" if changed else "unchanged"


__all__ = ["LabSubscriber", "ProvisionError", "ProvisionReport", "provision", "validate"]
