"""`fraudgate run` that cannot start says why in one line and exits non-zero, no traceback:
2 for the configuration (a directory it names is not writable, a bad store URL), 3 for a
database that cannot be opened (README "Commands"). The command runs in a subprocess, as an
operator or systemd starts it; the store is opened after the detectors are built (seconds)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fixtures_services import free_port

from gateway.daemon import EXIT_CONFIG, EXIT_STORE

ROOT = Path(__file__).resolve().parent.parent


def run_gateway(tmp_path: Path, data_dir: Path, **env: str) -> tuple[int, list[str]]:
    conf = tmp_path / "gw.toml"
    conf.write_text(
        f'[gateway]\ndata_dir = "{data_dir}"\n[mqtt]\nenabled = false\n[cases]\nenabled = false\n'
        '[[smsc]]\nname = "smsc-1"\naddress = "127.0.0.1:9"\nsystem_id = "gw"\npassword = "pw"\n'
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDGATE_")}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "run", "-c", str(conf)],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stderr.splitlines()


def test_an_unreachable_database_is_one_line_naming_the_url_without_its_password(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+asyncpg://fraudgate:s3cret-pw@127.0.0.1:{port}/fraudgate"
    code, lines = run_gateway(tmp_path, tmp_path / "var", FRAUDGATE_STORE__URL=url)
    assert code == EXIT_STORE, lines
    assert len(lines) == 1, lines
    shown = f"postgresql+asyncpg://fraudgate:***@127.0.0.1:{port}/fraudgate"
    assert lines[0].startswith(f"fraudgate run: cannot open the store {shown}: "), lines
    assert "database unavailable" in lines[0] and "s3cret-pw" not in lines[0]


def test_a_data_dir_that_cannot_be_created_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    code, lines = run_gateway(tmp_path, blocker / "var")  # the default SQLite store lives there
    assert (code, len(lines)) == (EXIT_CONFIG, 1), lines
    assert lines[0] == (
        f"fraudgate run: configuration error: gateway.data_dir {blocker / 'var'}: "
        "not writable: Not a directory"
    )
