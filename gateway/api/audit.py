"""The API's access audit (R7) and decision trail (R8): the `api_audit` table.

A row is written BEFORE the response that it records is sent: when the row cannot be written
(StoreError) the request fails and the personal data is not sent. Targets are stored as they
are (the auditor must be able to ask "who read this number"); `GET /v1/audit` shows numbers
masked and finds them by their exact value. Masking looks at the target itself, not its kind: a
number or an IIN anywhere in it is masked (a case-list filter, a message id typed as a number),
a record id (gateway/ids.py, 32 hex digits) is shown whole.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from gateway.alerts.payloads import mask_msisdn
from gateway.ids import new_id
from gateway.iin import mask_iin
from gateway.store import Store
from gateway.store.models_api import api_audit

from .auth import Principal


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    at: float
    user_id: str
    role: str
    action: str  # subscriber.read, cases.read, case.read, case.confirm, complaint.create...
    target_kind: str  # msisdn | case | cases | complaint | audit
    target: str
    personal_data: bool  # the response carried personal data unmasked
    client: str

    def masked(self) -> AuditEntry:
        """The entry as the audit endpoint shows it: every number or IIN in the target masked,
        whatever the target's kind (R7)."""
        if self.target_kind == "msisdn":
            return dataclasses.replace(self, target=mask_msisdn(self.target))
        if self.target_kind == "iin":
            return dataclasses.replace(self, target=mask_iin(self.target))
        if self.target_kind == "file":  # an import's file name (dates, counters): no one's
            return self
        return dataclasses.replace(self, target=mask_target(self.target))


# a record id (gateway/ids.py: 32 hex digits, at least one a letter; or a dashed UUID) not glued
# to other letters or digits: shown whole, it names no one
_ID = re.compile(
    r"(?<![0-9A-Za-z])"
    r"(?:(?=[0-9]*[a-fA-F])[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})"
    r"(?![0-9A-Za-z])"
)
# digits as anyone writes a number: joined by any run of characters that are neither letters
# nor digits (spaces, dots, any dash, brackets, colons, underscores...), except the ones that
# list several values ('/', ',', ';', '|') and a '+' starting the next number
_NUMBER = re.compile(r"\+?\d(?:(?:[^\w/,;|+]|_)*\d)*")
MAX_NUMBER = 15  # digits of one number (E.164); a longer run is several values run together
MIN_DIGITS = 6  # a shorter run (a count, a short code) is no one's number or IIN


def mask_target(target: str) -> str:
    """`target` with every run of `MIN_DIGITS` digits or more masked outside record ids: 12
    digits without a '+' as an IIN (9001******17), any other run as a number (7701***4567)."""
    out: list[str] = []
    at = 0
    for m in _ID.finditer(target):
        out += [_NUMBER.sub(_mask_number, target[at : m.start()]), m.group()]
        at = m.end()
    out.append(_NUMBER.sub(_mask_number, target[at:]))
    return "".join(out)


def _mask_number(m: re.Match[str]) -> str:
    written = m.group()
    digits = "".join(c for c in written if c.isdigit())
    if len(digits) < MIN_DIGITS:
        return written
    if len(digits) > MAX_NUMBER:  # numbers run together: none of their digits shown
        return "".join("*" if c.isdigit() else c for c in written)
    if len(digits) == 12 and not written.startswith("+"):
        return mask_iin(digits)
    return mask_msisdn(("+" if written.startswith("+") else "") + digits)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    user_id: str | None = None
    action: str | None = None
    target: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100


class AuditLog:
    """Writes and reads `api_audit` on the store's engine (errors typed by Store.guard)."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def record(
        self,
        who: Principal,
        action: str,
        target_kind: str,
        target: str,
        *,
        personal_data: bool,
        client: str,
    ) -> AuditEntry:
        entry = AuditEntry(
            new_id(),
            self.clock(),
            who.user_id,
            who.role.value,
            action,
            target_kind,
            target[:128],
            personal_data,
            client[:64],
        )
        with self.store.guard("api.audit"):
            async with self.store.engine.begin() as conn:
                await conn.execute(api_audit.insert().values(**_row(entry)))
        return entry

    async def find(self, q: AuditQuery) -> list[AuditEntry]:
        """Newest first."""
        t = api_audit
        query = sa.select(t).order_by(t.c.at.desc(), t.c.id).limit(q.limit)
        for column, value in (("user_id", q.user_id), ("action", q.action), ("target", q.target)):
            if value is not None:
                query = query.where(t.c[column] == value)
        if q.since is not None:
            query = query.where(t.c.at >= q.since)
        if q.until is not None:
            query = query.where(t.c.at < q.until)
        with self.store.guard("api.audit_read"):
            async with self.store.engine.connect() as conn:
                return [AuditEntry(**r._mapping) for r in await conn.execute(query)]


def _row(entry: AuditEntry) -> dict[str, object]:
    return {
        "id": entry.id,
        "at": entry.at,
        "user_id": entry.user_id,
        "role": entry.role,
        "action": entry.action,
        "target_kind": entry.target_kind,
        "target": entry.target,
        "personal_data": entry.personal_data,
        "client": entry.client,
    }
