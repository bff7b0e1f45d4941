"""`fraudgate bench smpp` end to end, with a small count: the figures are there and sane.

Speed is not asserted: that is what the benchmark is for (docs/benchmarks.md), not a test.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Iterator
from typing import Any

import pytest

from gateway import cli
from smsc import bench

COUNT = 500


@pytest.fixture
def bench_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Only the bench subcommand: this test must not depend on the other subsystems' modules.
    monkeypatch.setattr(cli, "SUBCOMMANDS", {"bench": cli.SUBCOMMANDS["bench"]})
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers  # cli.main's basicConfig points at the captured stderr
    root.setLevel(level)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(["bench", *argv]) == 0
    return capsys.readouterr().out


def test_bench_smpp_json(bench_cli: None, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_cli(capsys, "smpp", "--count", str(COUNT), "--windows", "1,50", "--json")
    report: dict[str, Any] = json.loads(out)

    assert report["target"] == "smpp"
    machine = report["machine"]
    assert machine["cpu_count"] >= 1
    assert machine["mem_total_bytes"] > 0
    assert machine["python"] == platform.python_version()

    results = report["results"]
    assert [(r["operation"], r["window"]) for r in results] == [
        ("submit_sm", 1),
        ("submit_sm", 50),
        ("deliver_sm", 1),
        ("deliver_sm", 50),
    ]
    for r in results:
        where = f"{r['operation']} window {r['window']}"
        assert r["count"] == COUNT, where
        assert r["warmup"] == bench.default_warmup(COUNT), where
        assert r["peer_answered"] == COUNT, where  # the other process answered each one
        assert r["elapsed_s"] > 0, where
        assert r["throughput_per_s"] > 0, where
        assert r["throughput_per_s"] == pytest.approx(COUNT / r["elapsed_s"], rel=0.01), where
        assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"], where
        assert r["mean_ms"] > 0, where
        for key in ("esme_cpu_s", "smsc_cpu_s", "other_cpu_s", "steal_s"):
            assert r[key] >= 0, (where, key)

    assert set(report["event_loop"]) == {"esme", "smsc"}
    for key in ("peak_rss_bytes", "ru_maxrss_bytes"):
        for process in ("esme", "smsc", "parent"):
            assert report[key][process] > 1 << 20, (key, process)


def test_bench_smpp_text(bench_cli: None, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_cli(capsys, "smpp", "--count", "200", "--windows", "4")
    assert "CPUs" in out and "GiB RAM" in out
    assert "submit_sm -> submit_sm_resp" in out
    assert "deliver_sm -> deliver_sm_resp" in out
    assert "peak RSS: esme" in out


@pytest.mark.parametrize("windows", ["0", "1,x", ""])
def test_bench_rejects_bad_windows(bench_cli: None, windows: str) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "smpp", "--windows", windows])
    assert exc.value.code == 2


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 0.50) == 50.0
    assert bench.percentile(values, 0.99) == 99.0
    assert bench.percentile([7.0], 0.99) == 7.0


def test_bench_pipeline_prints_figures_for_committed_verdicts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gateway.cli import main

    assert main(["bench", "pipeline", "--count", "300", "--senders", "2000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["messages"] == 300 and out["committed"] == 300
    assert out["sms_per_s"] > 0 and 0 < out["p50_ms"] <= out["p99_ms"]
    # the SMSC's view of the same responses: measured there, so never shorter than the gateway's
    assert 0 < out["smsc_p50_ms"] <= out["smsc_p99_ms"] and out["smsc_p50_ms"] >= out["p50_ms"]
    assert out["smsc_cpu_s"] > 0
    assert out["senders"] == 2000 and out["velocity_mib"] > 0 and out["velocity_us_sustained"] > 0


def test_bench_pipeline_says_so_at_once_when_its_smsc_process_dies(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The simulated SMSC (its own process) cannot start: here its traffic scenario is missing.
    The bench reports it and fails instead of waiting five minutes for a port that never comes."""
    import time

    from gateway.cli import bench_pipeline, main

    monkeypatch.setattr(bench_pipeline, "PROJECT_DIR", tmp_path)  # no config/scenarios there
    started = time.monotonic()
    assert main(["bench", "pipeline", "--count", "10", "--senders", "1000"]) == 1
    assert time.monotonic() - started < 60
    assert "the simulated SMSC stopped (exit code 1) before reporting" in capsys.readouterr().err


def test_bench_pipeline_two_nodes_share_state_through_redis(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two gateway processes bound to one SMSC, counting together in a throwaway Redis: every
    message answered, both nodes took some, and one Redis round trip serves a batch."""
    import time

    from gateway.cli import main

    started = time.monotonic()
    assert main(["bench", "pipeline", "--nodes", "2", "--count", "300", "--no-mqtt", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert time.monotonic() - started < 60
    assert out["nodes"] == 2 and out["messages"] == 300
    # every part answered, long messages too: their parts met in Redis across the two nodes
    assert out["answered_pdus"] == out["pdus"] > 300
    assert out["inspected"] == 300 and out["sms_per_s"] > 0
    assert 0 < out["smsc_p50_ms"] <= out["smsc_p99_ms"]
    nodes = out["per_node"]
    assert [n["node"] for n in nodes] == ["node-1", "node-2"]
    for n in nodes:
        assert n["inspected"] > 0, n  # the SMSC spread the messages over both nodes' binds
        assert n["shared_messages"] == n["inspected"] and n["judged_locally"] == 0, n
        assert 0 < n["round_trips_per_message"] <= 1.0, n
    assert 0 < out["round_trips_per_message"] <= 1.0
    assert out["redis_round_trips"] == sum(n["redis_round_trips"] for n in nodes)
    assert "each node records to its own file" in out["store"]


def test_bench_console_measures_the_daemon_without_and_with_the_live_page_open(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The daemon in its own process, traffic at a fixed rate, then a headless Chromium on the
    live page: both phases carry the traffic, and the page ticks once a second with rows."""
    from gateway.cli import main

    argv = ["bench", "console", "--rate", "200", "--seconds", "2", "--warmup", "1", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for name in ("A", "B"):
        phase = out[name]
        assert phase["offered_submit_sm_per_s"] == pytest.approx(200, rel=0.25), name
        assert phase["answered_deliver_sm_per_s"] > 100, name  # the gateway answered them
        assert 0 < phase["deliver_sm_p50_ms"] <= phase["deliver_sm_p99_ms"], name
        assert phase["cpu_pct"]["daemon"] > 0 and phase["daemon_rss_mib"] > 50, name
    assert "chromium" not in out["A"]["cpu_pct"] and out["B"]["cpu_pct"]["chromium"] > 0
    page = out["B"]["page"]
    assert page["ticks_end"] - page["ticks_start"] >= 1  # the stream went on during the phase
    assert page["rows"] > 0 and 0 <= page["lag_max_s"] < 3
    assert out["daemon_extra_cpu_points"] == pytest.approx(
        out["B"]["cpu_pct"]["daemon"] - out["A"]["cpu_pct"]["daemon"], abs=0.11
    )
    assert out["streams_dropped"] == 0 and out["daemon_exit"] == 0


def test_bench_proxy_measures_the_proxy_against_a_direct_bind_and_forwards_each_submit_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The daemon with [proxy] in its own process, the simulated SMSC in another, the load
    generator bound directly, then as the aggregator: every submit answered in both phases, and
    each one the aggregator sent is at the SMSC exactly once (the warm-up's too)."""
    from gateway.cli import main

    assert main(["bench", "proxy", "--count", "300", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    sent = out["generated"]["warmup"] + out["generated"]["submit_sm"]
    assert out["generated"]["submit_sm"] >= 300 and out["generated"]["warmup"] == 30
    for name in ("direct", "proxy"):
        phase = out[name]
        assert phase["submit_sm"] == out["generated"]["submit_sm"], name
        assert phase["refused"] == {}, name  # every submit_sm answered ROK
        assert phase["trips_per_s"] > 0 and 0 < phase["p50_ms"] <= phase["p99_ms"], name
        assert phase["at_smsc"]["count"] == phase["at_smsc"]["distinct"] == sent, name
        assert phase["cpu_s"]["smsc"] > 0 and phase["cpu_s"]["load"] > 0, name
    assert "daemon" not in out["direct"]["cpu_s"] and out["proxy"]["cpu_s"]["daemon"] > 0
    assert out["forwarded"] == {
        "sent": sent, "at_smsc": sent, "distinct_at_smsc": sent, "exactly_once": True
    }  # fmt: skip
    assert out["journal"] == {"forwarded": sent}  # the daemon's own record agrees
    assert out["added_p99_ms"] == pytest.approx(
        out["proxy"]["p99_ms"] - out["direct"]["p99_ms"], abs=0.002
    )
    assert out["daemon_memory"]["peak_rss_mib"] > 50 and out["daemon_exit"] == 0
    assert out["machine"]["cpu_count"] >= 1 and out["targets"]["trips_per_s"] == 5000
