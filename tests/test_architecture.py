"""The one-way layers (pyproject.toml [tool.importlinter], docs/architecture.md) hold on the
tree, and the contracts do catch a violation: a copy of the packages with one deliberate bad
import each breaks the contract that forbids it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("smsc", "gsm_probe", "gateway", "simulators")
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(where)}  # the copy, not the installed tree
    return subprocess.run(
        [str(LINT), "--config", str(where / "pyproject.toml"), "--no-cache"],
        cwd=where, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_tree_keeps_every_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


# (file of the copy, the line appended to it, what lint-imports must say)
VIOLATIONS = {
    "library-up": (
        "smsc/session.py",
        "from gateway.daemon import Gateway",
        "smsc is not allowed to import gateway",
    ),
    "library-to-simulators": (
        "gsm_probe/modem.py",
        "import simulators.modem",
        "gsm_probe is not allowed to import simulators",
    ),
    "domain-to-adapter": (
        "gateway/detect/rules.py",
        "import sqlalchemy",
        "gateway.detect is not allowed to import sqlalchemy",
    ),
    "adapter-to-cli": (
        "gateway/store/store.py",
        "from gateway.cli import cases",
        "gateway.store is not allowed to import gateway.cli",
    ),
    "simulator-to-internals": (
        "simulators/traffic.py",
        "from gateway.store import Store",
        "simulators is not allowed to import gateway.store",
    ),
    "daemon-to-simulators": (
        "gateway/pipeline/handler.py",
        "import simulators.demo",
        "gateway is not allowed to import simulators",
    ),
}


@pytest.mark.parametrize(("module", "line", "broken"), VIOLATIONS.values(), ids=VIOLATIONS)
def test_a_deliberate_violation_breaks_its_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    assert _lint(tmp_path).returncode == 0  # the copy as it is keeps them
    with (tmp_path / module).open("a") as f:
        f.write(f"\n{line}  # deliberate\n")
    result = _lint(tmp_path)
    assert result.returncode == 1
    assert broken in " ".join(result.stdout.split()), result.stdout[-3000:]
