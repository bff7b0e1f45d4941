"""config/systemd/fraudgate.service: systemd's own checker accepts it without a warning, its
sandbox scores "OK" in `systemd-analyze security`, and its command lines are fraudgate's.

`systemd-analyze verify` and `security --offline=yes` read unit files without a running
systemd (none is PID 1 here). verify checks that ExecStart's binary exists, so it runs on a copy
whose ExecStart names this checkout's `fraudgate`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_services import require_binary

from gateway.cli import build_parser, subcommand_of
from gateway.daemon import EXIT_CONFIG, EXIT_STORE

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "config" / "systemd" / "fraudgate.service"
INSTALLED = "/opt/fraudgate/venv/bin/fraudgate"  # where README "Install (production)" puts it
# Measured 1.5 (systemd 252): what is left is the network, the serial devices and the dialout
# group, which the gateway needs. A change that loosens the sandbox fails here.
MAX_EXPOSURE = 2.0


def _analyze() -> str:
    return require_binary("systemd-analyze", "systemd", ["/usr/bin/systemd-analyze"])


def _fraudgate() -> Path:
    binary = Path(sys.executable).parent / "fraudgate"
    assert os.access(binary, os.X_OK), f"{binary} missing: install the project (./dev setup)"
    return binary


def _settings() -> dict[str, list[str]]:
    """The unit's Key=value settings (repeated keys keep every value, in order)."""
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


@pytest.fixture
def local_unit(tmp_path: Path) -> Path:
    """A copy of the unit whose ExecStart is this checkout's fraudgate (same name)."""
    text = UNIT.read_text()
    assert text.count(INSTALLED) == 1
    unit = tmp_path / "fraudgate.service"
    unit.write_text(text.replace(INSTALLED, str(_fraudgate())))
    return unit


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"SYSTEMD_PAGER": "cat", "SYSTEMD_COLORS": "0", "SYSTEMD_LOG_COLOR": "0"}
    return subprocess.run(
        [_analyze(), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(local_unit: Path) -> None:
    result = _run("verify", str(local_unit))
    output = (result.stdout + result.stderr).splitlines()
    ours = [line for line in output if "fraudgate" in line]
    # a misspelt key or a bad value is only a warning: verify still exits 0
    assert result.returncode == 0 and not ours, "\n".join(output)
    for line in output:  # other units of this machine, not ours
        print("systemd-analyze verify (not fraudgate.service):", line)


def test_verify_fails_when_the_binary_is_missing(local_unit: Path) -> None:
    """The check above is real: the binary it names is looked for."""
    local_unit.write_text(local_unit.read_text().replace(str(_fraudgate()), "/nonexistent/fg"))
    result = _run("verify", str(local_unit))
    assert result.returncode != 0 and "/nonexistent/fg" in result.stderr, result.stderr


def test_the_sandbox_exposure_is_ok(local_unit: Path) -> None:
    result = _run("security", "--offline=yes", str(local_unit))
    assert result.returncode == 0, result.stderr
    found = re.search(
        r"Overall exposure level for fraudgate\.service: ([\d.]+) (\w+)", result.stdout
    )
    assert found, result.stdout
    score, verdict = float(found[1]), found[2]
    print(f"systemd-analyze security: exposure {score} {verdict}")
    assert score <= MAX_EXPOSURE and verdict == "OK", result.stdout


def test_execstart_is_a_fraudgate_command_line_logging_json() -> None:
    (exec_start,) = _settings()["ExecStart"]
    binary, *argv = shlex.split(exec_start)
    assert binary == INSTALLED
    args = build_parser(only=subcommand_of(argv)).parse_args(argv)
    assert (args.command, args.log_format) == ("run", "json")
    assert args.config == Path("/etc/fraudgate/fraudgate.toml")


def test_restarts_on_a_store_failure_but_not_on_a_configuration_error() -> None:
    settings = _settings()
    assert settings["Restart"] == ["on-failure"]  # exit 3 (EXIT_STORE) is a failure: restarted
    assert settings["RestartPreventExitStatus"] == [str(EXIT_CONFIG)]
    assert str(EXIT_STORE) not in settings["RestartPreventExitStatus"][0].split()
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # SIGHUP reloads the rules
    assert settings["KillSignal"] == ["SIGTERM"]  # the drain
    assert settings["StateDirectory"] == ["fraudgate"]  # /var/lib/fraudgate
    assert settings["ConfigurationDirectory"] == ["fraudgate"]  # /etc/fraudgate
