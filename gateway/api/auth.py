"""Bearer tokens and roles (R7 access control).

The configuration holds SHA-256 hashes of the tokens, never the tokens: a leaked configuration
file or backup opens nothing. A presented token is hashed and compared with EVERY configured
hash by `hmac.compare_digest`, so the time taken tells nothing about which hash came close.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from gateway.config_check import ConfigError


class Role(StrEnum):
    ANALYST = "analyst"
    HELPLINE = "helpline"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    REGISTRAR = "registrar"  # registers individuals and numbers, takes applications (55-1...55-6)


class Permission(StrEnum):
    CASES_READ = "cases:read"
    CASES_DECIDE = "cases:decide"  # start_verification, confirm, reject, close, reopen
    CASES_UNBLOCK = "cases:unblock"
    COMPLAINTS_CREATE = "complaints:create"
    SUBSCRIBERS_READ = "subscribers:read"
    PERSONAL_DATA = "personal_data"  # responses unmasked (IIN, names, numbers, person links)
    AUDIT_READ = "audit:read"
    FEEDBACK = "feedback"  # "this verdict was wrong / right", exemptions: give, list, revoke
    REGISTRY_WRITE = "registry:write"  # register individuals, numbers; submit applications
    APPLICATIONS_DECIDE = "registry:decide"  # approve or refuse applications (55-4)


P = Permission
PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.ANALYST: frozenset(
        {P.CASES_READ, P.CASES_DECIDE, P.SUBSCRIBERS_READ, P.PERSONAL_DATA, P.FEEDBACK},
    ),
    Role.HELPLINE: frozenset({P.CASES_READ, P.COMPLAINTS_CREATE, P.SUBSCRIBERS_READ}),
    Role.SUPERVISOR: frozenset(Permission),
    # cases read masked (no PERSONAL_DATA), every such read audited (AUDITED_READERS)
    Role.AUDITOR: frozenset({P.AUDIT_READ, P.CASES_READ}),
    Role.REGISTRAR: frozenset({P.REGISTRY_WRITE}),
}
del P
# Roles whose every read of cases is audited, masked or not: an auditor reads across all cases
# to check others' work, and the audit shows what they looked at (R7).
AUDITED_READERS = frozenset({Role.AUDITOR})

_HASH = re.compile(r"[0-9a-f]{64}")


class TokenConfigError(ConfigError):
    """A token entry is unusable (the message names the entry by user id, never the hash)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's user and role."""

    user_id: str
    role: Role

    def may(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]

    @property
    def reads_audited(self) -> bool:
        """Every read this caller makes is audited, even masked (AUDITED_READERS)."""
        return self.role in AUDITED_READERS


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token: what the configuration holds."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenTable:
    """{sha256 hex of the token: (user_id, role)}, checked at construction."""

    def __init__(self, hashes: Mapping[str, tuple[str, str]]) -> None:
        self._entries: list[tuple[bytes, Principal]] = []
        for digest, (user_id, role) in hashes.items():
            self._entries.append((_digest(digest, user_id), _principal(user_id, role)))

    def __len__(self) -> int:
        return len(self._entries)

    def admits(self, authorization: str | None) -> bool:
        """Whether an Authorization header's value carries a known bearer token: the check
        made before anything else of a request is read (gateway/http/guard.py)."""
        token = bearer_token(authorization)
        return token is not None and self.lookup(token) is not None

    def lookup(self, token: str) -> Principal | None:
        """The principal of `token`, or None. Every entry is compared (no early exit)."""
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        found: Principal | None = None
        for digest, principal in self._entries:
            if hmac.compare_digest(presented, digest):
                found = principal
        return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of `Bearer <token>` (scheme in any case), else None; split as FastAPI's
    HTTPBearer splits it, so that the early check and the routes' check agree."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _digest(value: str, user_id: str) -> bytes:
    text = value.strip().lower()
    if not _HASH.fullmatch(text):
        raise TokenConfigError(f"token of {user_id!r}: not a SHA-256 hex digest (64 hex digits)")
    return bytes.fromhex(text)


def _principal(user_id: str, role: str) -> Principal:
    if not user_id.strip():
        raise TokenConfigError("a token has an empty user id")
    try:
        return Principal(user_id, Role(role))
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise TokenConfigError(
            f"token of {user_id!r}: role {role!r} is not one of {allowed}"
        ) from None
