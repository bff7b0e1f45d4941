"""`[cli]`: who may decide on the command line, parsed here, outside gateway.cli, because the
daemon's configuration (gateway.config) imports no command-line module (docs/cases.md
"Command-line identity").

    [cli.users]
    "aigerim" = { user_id = "u-aigerim", role = "analyst" }

maps an OS user name (the effective uid's) to the user id and role its decisions are recorded
under. Roles are the API's (gateway.api.auth.Role); root is a name like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.api.auth import Principal, Role
from gateway.config_check import ConfigError, Table


@dataclass
class CliSettings:
    """[cli]: OS user name -> the principal its command-line decisions run as."""

    users: Mapping[str, Principal] = field(default_factory=dict)


def parse_cli(c: Table) -> CliSettings:
    """[cli] (docs/cases.md "Command-line identity")."""
    u = c.table("users")
    users = {name: _user(Table(entry, u.key(name))) for name, entry in u.data.items()}
    u.seen.update(users)
    u.done()
    c.done()
    return CliSettings(users)


def _user(t: Table) -> Principal:
    user_id, role = t.get("user_id", str).strip(), t.get("role", str)
    if not user_id:
        raise ConfigError(f"{t.key('user_id')}: empty")
    if role not in {r.value for r in Role}:
        raise ConfigError(f"{t.key('role')}: one of {', '.join(r.value for r in Role)}")
    t.done()
    return Principal(user_id, Role(role))
