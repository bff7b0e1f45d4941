"""`fraudgate bench lab` runs end to end and prints its figures (small numbers: a smoke of the
command, not a measurement)."""

from __future__ import annotations

import re
import subprocess
import sys

from simulators.osmo.lab import PROJECT_DIR


def test_bench_lab_prints_both_runs_the_ratio_and_the_block_time() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "bench", "lab",
         "--messages", "12", "--pairs", "2", "--mmes", "1", "--blocks", "2"],
        capture_output=True, text=True, timeout=110, cwd=PROJECT_DIR, check=False,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    alone = re.search(r"osmo-msc alone +([\d.]+) SMS/s delivered \((\d+)/12 ", out)
    inline = re.search(r"gateway inline +([\d.]+) SMS/s delivered \((\d+)/12 ", out)
    assert alone and inline, out
    assert alone.group(2) == inline.group(2) == "12"  # every SMS reached its phone both ways
    assert float(alone.group(1)) > 0 and float(inline.group(1)) > 0
    assert re.search(r"ratio inline / alone: [\d.]+", out)
    assert re.search(r"block -> cut off \(2 rounds\): switch call p50 [\d.]+ ms", out), out
