"""`fraudgate -v/-vv`: more logging, yet never the SQL parameters (IINs, names: R7) that the
database libraries log, unless asked for by name with --debug-logger. Each case runs in its own
process: logging is configured once per process, as the command does it."""

from __future__ import annotations

import json
import os
import re
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
setup_logging(args.verbose, args.debug_logger, args.log_format)
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
    from gateway.api.auth import hash_token

    db = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    named = ["--debug-logger", "aiosqlite"] if ask else []
    config = tmp_path / "fraudgate.toml"  # a look-up of an IIN needs a known caller (audited)
    config.write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "var"}"\n\n[[api.token]]\n'
        f'sha256 = "{hash_token("tok-analyst")}"\nuser = "u-a"\nrole = "analyst"\n'
    )
    check = ["registry", "check", IIN, "--db", db, "-c", str(config)]
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "-vv", *named, *check],
        cwd=ROOT, env=_env() | {"FRAUDGATE_TOKEN": "tok-analyst"}, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "9001******17" in result.stdout  # the command's own output masks it
    assert (IIN in result.stderr) is ask
    assert "DEBUG" in result.stderr  # -vv still gives debug logging


# What `fraudgate cases list` loads and says: its own module only (not the classifier's numpy
# and scikit-learn, not the simulators), and Alembic's migration lines only with -v.
LOADED = """
import sys
from gateway.cli import main
code = main(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"numpy", "sklearn", "simulators"})
print("LOADED", ",".join(heavy), file=sys.stderr)
sys.exit(code)
"""


def _cases_list(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "fraudgate.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "var"}"\n')
    return subprocess.run(
        [sys.executable, "-c", LOADED, *options, "cases", "-c", str(config), "list"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_cases_list_loads_neither_the_classifier_nor_the_simulators_and_is_quiet(
    tmp_path: Path,
) -> None:
    result = _cases_list(tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "LOADED \n" in result.stderr + "\n", result.stderr[-2000:]
    assert "alembic" not in result.stderr  # migrations ran (a new database), silently
    verbose = _cases_list(tmp_path, "-v")
    assert verbose.returncode == 0 and "INFO alembic" in verbose.stderr


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--version"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert re.fullmatch(r"fraudgate \d+\.\d+\.\d+\n", result.stdout), result.stdout


# --log-format json: the same records as above, one JSON object per line, plus a traceback and
# a field passed in `extra=`.
EMIT_JSON = (
    EMIT
    + """
logging.getLogger("fraudgate.daemon").info("with extra", extra={"probe": "p1"})
try:
    {}["missing"]
except KeyError:
    logging.getLogger("fraudgate.daemon").exception("failed: %s", "kaput")
"""
)
JSON_FIELDS = {"ts", "level", "logger", "message"}  # docs/operations.md "Logs"
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _json_records(*args: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-c", EMIT_JSON, "--log-format", "json", *args],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    lines = result.stderr.splitlines()
    assert lines, result.stderr
    return [json.loads(line) for line in lines]  # every line is one whole object


def test_json_logs_one_object_per_line_with_the_documented_fields() -> None:
    records = _json_records("-vv")
    by_message = {r["message"]: r for r in records}
    debug = by_message["gateway debug line"]
    assert debug.keys() == JSON_FIELDS, debug
    assert debug["level"] == "DEBUG" and debug["logger"] == "fraudgate.daemon"
    assert TS.fullmatch(str(debug["ts"])), debug
    assert by_message["with extra"]["probe"] == "p1"
    failed = by_message["failed: kaput"]  # the traceback is a field of its record
    assert failed.keys() == JSON_FIELDS | {"exc_info"}, failed
    assert failed["level"] == "ERROR"
    assert str(failed["exc_info"]).startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in str(failed["exc_info"])
    assert len(records) == 3, records  # the database libraries wrote nothing


def test_json_logs_keep_the_database_libraries_quiet_and_never_dump_args() -> None:
    assert not [r for r in _json_records("-vv") if IIN in json.dumps(r)]
    asked = _json_records("--debug-logger", "sqlalchemy.engine")
    leaked = [r for r in asked if IIN in json.dumps(r)]
    assert [r["logger"] for r in leaked] == ["sqlalchemy.engine.Engine"], asked
    assert leaked[0].keys() == JSON_FIELDS  # in the message, as the text format shows it
    assert not any(r["message"] == "gateway debug line" for r in asked)  # INFO without -v


def test_a_command_logs_json_when_asked_before_the_subcommand(tmp_path: Path) -> None:
    """`--log-format json` takes a value: the subcommand is still found (its options built)."""
    result = _cases_list(tmp_path, "--log-format", "json", "-v")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if not line.startswith("LOADED")]
    records = [json.loads(line) for line in lines]
    assert any(str(r["logger"]).startswith("alembic") for r in records), lines
    assert all(r.keys() >= JSON_FIELDS for r in records)
