"""The README's first command: `fraudgate demo` runs unattended, catches the scenario's fraud,
lets normal traffic through, and alerts on MQTT."""

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


def _table(out: str) -> dict[str, tuple[int, int, int, int]]:
    rows = re.findall(r"^\s+(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", out, re.M)
    return {label: (int(a), int(b), int(c), int(d)) for label, a, b, c, d in rows}


def test_demo_with_duration_catches_fraud_passes_normal_traffic_and_alerts() -> None:
    proc = _demo("--duration", "5", "--rate", "150")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    m = re.search(r"(\d+) messages sent, (\d+) recorded, (\d+) stopped inline", out)
    assert m, out
    sent, recorded, stopped = map(int, m.groups())
    assert sent > 200 and recorded == sent
    table = _table(out)
    inspected, allowed, _, _ = table["normal"]
    assert inspected > 50 and allowed == inspected  # no false positive on normal traffic
    for label in ("smishing", "spoof", "fanout"):
        inspected, allowed, _flagged, blocked = table[label]
        assert inspected > 0 and blocked >= 0.9 * inspected, (label, table[label])
    assert stopped == sum(t[3] for t in table.values())  # enforcing: every block stopped
    alerts = re.search(r"MQTT alerts received: .*sms (\d+)", out)
    assert alerts and int(alerts.group(1)) == sum(t[2] + t[3] for t in table.values())


def test_demo_stops_cleanly_on_ctrl_c() -> None:
    proc = _demo("--rate", "100")
    time.sleep(6)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "# demo summary" in out
    m = re.search(r"(\d+) messages sent, (\d+) recorded", out)
    assert m and int(m.group(1)) > 0 and int(m.group(1)) == int(m.group(2))
