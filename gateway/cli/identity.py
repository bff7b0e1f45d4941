"""Who is deciding on the command line (R7 access control, R8 traceability).

A command-line caller is, in this order:
  1. an operator token, from `--token-file PATH` or else the FRAUDGATE_TOKEN variable: the API's
     tokens, checked against the configuration's `[[api.token]]` SHA-256 hashes
     (gateway.api.auth.TokenTable); a token given but unknown is refused, never skipped;
  2. the OS user (the effective uid's name), mapped in `[cli.users]` to a user id and a role
     (gateway.cli_settings). Root is a name like any other: not mapped, not admitted.
Anyone else is refused (UnknownCaller, exit 2). The role is checked against the API's table
(gateway.api.auth.PERMISSIONS): a role without the permission is refused (Forbidden, exit 1)
before anything is written. Each decision is recorded in `api_audit` as the API records it,
with client "cli:<os user>@<host>" (the OS account, also when a token was used).

Use (docs/cases.md "Command-line identity"):

    add_identity_arguments(subparser)
    caller = resolve_caller(cfg, args)               # UnknownCaller
    caller.require(Permission.CASES_UNBLOCK, "unblock a case")  # Forbidden
    ... the decision, recorded as caller.principal.user_id / .role ...
    await caller.audit(store, "case.unblock", "case", case_id)
"""

from __future__ import annotations

import argparse
import os
import pwd
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.api.audit import AuditEntry, AuditLog
from gateway.api.auth import Permission, Principal, TokenTable
from gateway.config import GatewayConfig
from gateway.store import Store

TOKEN_ENV = "FRAUDGATE_TOKEN"


class CallerError(Exception):
    """The caller may not do this; `exit_code` is the command's exit status."""

    exit_code = 1


class UnknownCaller(CallerError):
    """No token and an OS user not in [cli.users], an unknown token, an unreadable token file."""

    exit_code = 2


class Forbidden(CallerError):
    """A known caller whose role lacks the permission (auth.PERMISSIONS)."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class Caller:
    """The resolved caller: the principal decisions are recorded under, how it was found
    ("token" or "os-user") and the audit's client, "cli:<os user>@<host>"."""

    principal: Principal
    via: str
    client: str

    def require(self, permission: Permission, what: str) -> None:
        """Forbidden unless the principal's role has `permission` (the API's table)."""
        if not self.principal.may(permission):
            p = self.principal
            raise Forbidden(
                f"{p.user_id} ({p.role.value}) may not {what}: it needs the {permission.value} "
                f"permission (docs/api.md, roles); nothing was changed"
            )

    async def audit(
        self,
        store: Store,
        action: str,
        target_kind: str,
        target: str,
        *,
        personal_data: bool = False,
    ) -> AuditEntry:
        """The api_audit row the API writes for the same action (e.g. case.confirm, case,
        CASE_ID). `personal_data`: the output carried personal data unmasked."""
        return await AuditLog(store).record(
            self.principal,
            action,
            target_kind,
            target,
            personal_data=personal_data,
            client=self.client,
        )


def add_identity_arguments(parser: argparse.ArgumentParser) -> None:
    """--token-file for a command that decides (the OS user is the fallback)."""
    parser.add_argument(
        "--token-file",
        type=Path,
        metavar="PATH",
        help=f"a file holding your API token (else ${TOKEN_ENV}, else your OS user as mapped in "
        "[cli.users] of the configuration)",
    )


def resolve_caller(
    cfg: GatewayConfig, args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> Caller:
    """The caller of a command-line decision, or UnknownCaller (see the module's docstring)."""
    environ = os.environ if environ is None else environ
    os_user = _os_user()
    client = f"cli:{os_user or os.geteuid()}@{socket.gethostname()}"
    token = _token(getattr(args, "token_file", None), environ)
    if token is not None:
        found = TokenTable({d: (user, role) for d, user, role in cfg.api.tokens}).lookup(token)
        if found is None:
            raise UnknownCaller(
                "unknown token: it matches no [[api.token]] sha256 of the configuration"
            )
        return Caller(found, "token", client)
    mapped = cfg.cli.users.get(os_user) if os_user else None
    if mapped is None:
        who = f"OS user {os_user!r}" if os_user else f"uid {os.geteuid()} (no user name)"
        raise UnknownCaller(
            f"unknown caller: {who} is not in [cli.users] of the configuration and no token "
            f"was given (--token-file PATH or {TOKEN_ENV})"
        )
    return Caller(mapped, "os-user", client)


def resolve_principal(
    cfg: GatewayConfig, args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> Principal:
    """resolve_caller(...).principal."""
    return resolve_caller(cfg, args, environ).principal


def _token(path: Path | None, environ: Mapping[str, str]) -> str | None:
    if path is None:
        token = environ.get(TOKEN_ENV, "").strip()
        return token or None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UnknownCaller(f"token file {path}: {reason}") from None
    if not token:
        raise UnknownCaller(f"token file {path}: empty")
    return token


def _os_user() -> str:
    """The effective uid's user name, "" when it has none (a container's bare uid)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return ""


__all__ = [
    "TOKEN_ENV",
    "Caller",
    "CallerError",
    "Forbidden",
    "UnknownCaller",
    "add_identity_arguments",
    "resolve_caller",
    "resolve_principal",
]
