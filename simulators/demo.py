"""`fraudgate demo`: the simulated SMSC, a traffic scenario and a client printing what it gets.

Everything runs in this process on loopback TCP, on embedded defaults: the simulated SMSC on a
free port with two accounts ("loadgen" submits, "gateway" receives), the traffic generator
playing `config/scenarios/demo.toml` as loadgen, and a receiver bound as "gateway" printing every
message, reassembled and decoded, and every delivery receipt. The next issue puts the gateway's
detectors where the printing client is.

Ctrl-C stops everything cleanly (in-flight messages finish, links unbind); `--duration S` runs
unattended and exits 0 after the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path

from simulators.listener import MessagePrinter, listen
from simulators.scenario import ScenarioError, load_scenario
from simulators.traffic import TrafficReport, play
from smsc.client import EsmeConfig
from smsc.session import BindType
from smsc.simulator import Account, Route, SimulatedSmsc, SmscConfig

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "config" / "scenarios" / "demo.toml"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, help="stop after S seconds and print the summary")
    p.add_argument("--rate", type=float, default=50.0, help="submit_sm per second (default 50)")
    p.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO, help="scenario file")
    p.add_argument("--port", type=int, default=0, help="SMSC port (default: a free one)")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.add_argument("--seed", type=int, help="override the scenario's seed")


def smsc_config(port: int) -> SmscConfig:
    return SmscConfig(
        host="127.0.0.1",
        port=port,
        accounts=[
            Account("gateway", "secret", frozenset({BindType.RECEIVER, BindType.TRANSCEIVER})),
            Account("loadgen", "secret", frozenset({BindType.TRANSMITTER, BindType.TRANSCEIVER})),
        ],
        routes=[Route("", "gateway")],
        retry_interval=1.0,
    )


async def demo(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
    except (ScenarioError, OSError) as exc:
        print(f"fraudgate demo: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    printer = MessagePrinter(out=None if args.quiet else sys.stdout, reassembly_timeout=5.0)
    report = TrafficReport()
    started = time.monotonic()
    async with SimulatedSmsc(smsc_config(args.port)) as smsc:
        print(
            f"# simulated SMSC on 127.0.0.1:{smsc.port}; scenario {scenario.name}; "
            f"{args.rate:g} submit_sm/s; Ctrl-C to stop",
            flush=True,
        )
        rx_cfg = EsmeConfig(
            "127.0.0.1", smsc.port, "gateway", "secret", BindType.RECEIVER, name="demo receiver"
        )
        rx_stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(listen(rx_cfg, printer, rx_stop))
            tx_cfg = EsmeConfig(
                "127.0.0.1",
                smsc.port,
                "loadgen",
                "secret",
                BindType.TRANSMITTER,
                name="demo traffic",
            )
            await play(
                tx_cfg,
                scenario,
                rate=args.rate,
                duration=args.duration,
                stop=stop,
                seed=args.seed,
                report=report,
            )
            await _wait_delivered(smsc, stop, timeout=10.0)
            rx_stop.set()
        stats = smsc.stats
    print(summary(report, printer, stats.delivered, stats.retries, time.monotonic() - started))
    return 0


async def _wait_delivered(smsc: SimulatedSmsc, stop: asyncio.Event, timeout: float) -> None:
    """Let what the SMSC accepted reach the receiver (bounded; Ctrl-C cuts it short)."""
    idle = asyncio.ensure_future(smsc.wait_idle())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({idle, stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    idle.cancel()
    stopped.cancel()


def summary(
    report: TrafficReport, printer: MessagePrinter, delivered: int, retries: int, elapsed: float
) -> str:
    c = printer.counts
    lines = [
        "",
        f"# demo summary after {elapsed:.1f} s",
        report.summary(),
        f"  receiver: {c['message']} messages, {c['incomplete']} incomplete, "
        f"{c['receipt']} receipts, from {c['parts']} deliver_sm",
        f"  SMSC: {delivered} deliveries, {retries} retries",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(demo(args))
    return 0
