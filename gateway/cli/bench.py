"""`fraudgate bench smpp|pipeline|console|lab`: benchmarks printing figures (docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import importlib

TARGETS = {
    "smpp": ("smsc.bench", "SMPP round trips/s and latency, ESME and SMSC in separate processes"),
    "pipeline": ("gateway.cli.bench_pipeline", "SMS/s through the gateway to committed verdicts"),
    "campaigns": (
        "gateway.detect.campaigns_bench",
        "campaign detector: us/message, bytes per cluster, false merges on real texts",
    ),
    "console": (
        "gateway.cli.bench_console",
        "the console's live page at a fixed SMS/s: daemon CPU without and with a browser",
    ),
    "lab": (
        "simulators.osmo.bench",
        "Osmocom lab: SMS/s with and without the gateway inline, block -> cut-off time",
    ),
    "calls": (
        "gateway.cli.bench_calls",
        "call records: read and scored per second, bytes per tracked SIM, a large file",
    ),
    "proxy": (
        "gateway.cli.bench_proxy",
        "A2P proxy: submit_sm round trips/s and the latency it adds against a direct bind",
    ),
}


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", required=True)
    for name, (module, help_text) in TARGETS.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(_bench=module)
        importlib.import_module(module).configure(p)


def run(args: argparse.Namespace) -> int:
    result: int = importlib.import_module(args._bench).run(args)
    return result
