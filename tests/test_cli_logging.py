"""`fraudgate -v/-vv`: more logging, yet never the SQL parameters (IINs, names: R7) that the
database libraries log, unless asked for by name with --debug-logger. Each case runs in its own
process: logging is configured once per process, as the command does it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IIN = "900101300017"  # synthetic (shared/domain/KAZAKHSTAN.md)

# The records the libraries write at -vv: SQLAlchemy's engine logs each statement's parameters
# at INFO, aiosqlite every call with its arguments at DEBUG.
EMIT = f"""
import logging, sys
from gateway.cli import build_parser, setup_logging

args = build_parser().parse_args([*sys.argv[1:], "cases", "list"])
setup_logging(args.verbose, args.debug_logger)
logging.getLogger("sqlalchemy.engine.Engine").info("[cached since 0.1s ago] (%r,)", "{IIN}")
logging.getLogger("aiosqlite").debug("executing %r", ("SELECT ... WHERE iin = ?", ("{IIN}",)))
logging.getLogger("asyncpg.pool").debug("acquired for %r", "{IIN}")
logging.getLogger("fraudgate.daemon").debug("gateway debug line")
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FRAUDGATE_")}


def _stderr(*args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", EMIT, *args],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return result.stderr.splitlines()


def test_vv_logs_debug_but_not_the_database_libraries() -> None:
    lines = _stderr("-vv")
    assert any("gateway debug line" in line for line in lines), lines
    assert not [line for line in lines if IIN in line], lines


def test_a_library_logger_asked_for_by_name_logs_whatever_the_verbosity() -> None:
    lines = _stderr("--debug-logger", "sqlalchemy.engine")
    leaked = [line for line in lines if IIN in line]
    assert len(leaked) == 1 and "INFO sqlalchemy.engine.Engine:" in leaked[0], lines
    assert not any("gateway debug line" in line for line in lines)  # -v not given: INFO
    lines = _stderr("-vv", "--debug-logger", "aiosqlite", "--debug-logger", "asyncpg")
    assert sorted(line.split()[3] for line in lines if IIN in line) == [
        "aiosqlite:",
        "asyncpg.pool:",
    ]


@pytest.mark.parametrize("ask", [False, True], ids=["quiet", "asked-by-name"])
def test_a_registry_check_at_vv_does_not_log_the_iin(tmp_path: Path, ask: bool) -> None:
    """The real command: the IIN is an SQL parameter of the look-up (aiosqlite logs it)."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    named = ["--debug-logger", "aiosqlite"] if ask else []
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "-vv", *named, "registry", "check", IIN, "--db", db],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "9001******17" in result.stdout  # the command's own output masks it
    assert (IIN in result.stderr) is ask
    assert "DEBUG" in result.stderr  # -vv still gives debug logging
