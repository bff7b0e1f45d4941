"""The README's first command: `fraudgate demo` runs unattended and accounts for every message."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _demo(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--quiet", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _counts(out: str) -> tuple[int, int, int]:
    accepted = int(re.search(r"accepted (\d+), rejected", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"receiver: (\d+) messages, (\d+) incomplete", out)
    assert m, out
    return accepted, int(m.group(1)), int(m.group(2))


def test_demo_with_duration_exits_0_after_a_summary_where_every_message_arrived() -> None:
    proc = _demo("--duration", "3", "--rate", "200")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "# demo summary" in out
    accepted, received, incomplete = _counts(out)
    assert accepted > 300  # about 3 s at 200 submit_sm/s, parts included
    assert received + incomplete == accepted and incomplete == 0
    for label in ("normal", "smishing", "spoof", "fanout", "greyroute"):
        assert re.search(rf"^\s+{label}\s+\d+", out, re.M), label


def test_demo_stops_cleanly_on_ctrl_c() -> None:
    proc = _demo("--rate", "100")
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped: " in out and "Traceback" not in err
    accepted, received, incomplete = _counts(out)
    assert accepted > 0 and received + incomplete == accepted
