"""What `fraudgate demo` leaves in its data directory (default `var/demo/`) for afterwards.

- `console-tokens.txt` (mode 0600): one line per role, `role user token`; made once with
  `secrets.token_urlsafe` and read back on later runs, so a bookmarked login keeps working;
- `fraudgate.toml`: a complete configuration over that directory (its SQLite database, [cases]
  as the demo ran them, [api] on the demo's console address with the tokens' SHA-256 hashes),
  for `fraudgate cases list -c` and `fraudgate console -c` once the demo has ended. It has no
  [[smsc]] bind, switch, broker or centre: those are the demo's simulators, gone with it.

The console is the API's server (`[api] listen`, tokens): `console_address` picks the port.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import socket
from pathlib import Path

from gateway.config import GatewayConfig

TOKENS_FILE = "console-tokens.txt"
CONFIG_FILE = "fraudgate.toml"
# role -> the user id its demo token signs in as (gateway/api/auth.py roles)
ROLES = {
    "analyst": "demo-analyst",
    "helpline": "demo-helpline",
    "supervisor": "demo-supervisor",
    "auditor": "demo-auditor",
}


@dataclasses.dataclass(frozen=True)
class DemoToken:
    role: str
    user: str
    token: str

    @property
    def sha256(self) -> str:
        """What the configuration holds (as gateway.api.hash_token computes it)."""
        return hashlib.sha256(self.token.encode("utf-8")).hexdigest()


def demo_tokens(data_dir: Path) -> dict[str, DemoToken]:
    """The demo's token per role: those already in `data_dir/console-tokens.txt`, new ones for
    the roles it lacks; the file is (re)written with mode 0600."""
    path = data_dir / TOKENS_FILE
    known: dict[str, DemoToken] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 3 and ROLES.get(parts[0]) == parts[1] and len(parts[2]) >= 16:
                known[parts[0]] = DemoToken(*parts)
    tokens = {
        role: known.get(role) or DemoToken(role, user, secrets.token_urlsafe(24))
        for role, user in ROLES.items()
    }
    text = "".join(f"{t.role} {t.user} {t.token}\n" for t in tokens.values())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)  # an older file keeps its mode through O_CREAT
        f.write(text)
    return tokens


def console_address(port: int, host: str = "127.0.0.1") -> tuple[str, bool]:
    """(HOST:PORT for the console, whether it is `port`): a free port when `port` is taken."""
    try:
        with socket.create_server((host, port)):  # SO_REUSEADDR, as the API's server binds
            return f"{host}:{port}", True
    except OSError:
        with socket.create_server((host, 0)) as s:
            return f"{host}:{s.getsockname()[1]}", False


def write_config(cfg: GatewayConfig, data_dir: Path) -> Path:
    """`data_dir/fraudgate.toml`: the demo's database, [cases], [centre] operator, [api] and
    [console] of `cfg`, for the commands that read the demo's state afterwards."""
    lines = [
        "# Written by `fraudgate demo` on every run, for its state in this directory:",
        f"#   fraudgate cases list -c {shown(data_dir / CONFIG_FILE)}",
        f"#   fraudgate console -c {shown(data_dir / CONFIG_FILE)}",
        f"# The tokens are in {TOKENS_FILE} beside it (mode 0600); here only their SHA-256.",
        "# No [[smsc]] bind, [switch], broker or [centre] url: the demo's simulators end with it",
        "# (a case confirmed here keeps its suspension pending, reports stay queued).",
        "",
        "[gateway]",
        f"mode = {_value(cfg.mode)}",
        f"data_dir = {_value(str(data_dir.resolve()))}",
        "",
        "[mqtt]",
        "enabled = false",
        "",
        "[cases]",
        *(f"{k} = {_value(v)}" for k, v in dataclasses.asdict(cfg.cases).items()),
        "",
        "[centre]",
        f"operator = {_value(cfg.centre.operator)}",
        "",
        "[api]",
        f"listen = {_value(cfg.api.listen)}",
    ]
    for digest, user, role in cfg.api.tokens:
        lines += ["", "[[api.token]]", f"sha256 = {_value(digest)}"]
        lines += [f"user = {_value(user)}", f"role = {_value(role)}"]
    lines += ["", "[console]", f"enabled = {_value(cfg.console.enabled)}", ""]
    path = data_dir / CONFIG_FILE
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _value(v: object) -> str:
    """A TOML value: JSON's strings and lists of strings are TOML's too."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {v!r}")


def shown(path: Path) -> str:
    """`path` relative to the current directory when under it (var/demo/...), else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)
