"""Identity for the command-line tests: a configuration with one API token of a role."""

from __future__ import annotations

from pathlib import Path

from gateway.api.auth import hash_token


def caller(tmp_path: Path, role: str) -> list[str]:
    """-c CONFIG --token-file FILE: a configuration with one API token of `role`, the token
    (`[gateway] data_dir` is tmp_path / "var")."""
    token = f"tok-{role}-9c0b"
    config = tmp_path / f"{role}.toml"
    config.write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "var"}"\n\n[[api.token]]\n'
        f'sha256 = "{hash_token(token)}"\nuser = "u-{role}"\nrole = "{role}"\n'
    )
    (tmp_path / f"{role}.token").write_text(token)
    return ["-c", str(config), "--token-file", str(tmp_path / f"{role}.token")]
