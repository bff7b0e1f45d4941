"""`fraudgate demo`: the gateway at work against simulated surroundings, on embedded defaults.

In this process, over loopback TCP: a real mosquitto broker (started here), the simulated SMSC
with two flows, as an operator keeps them — an aggregator ("agg", A2P: alphanumeric senders)
and subscribers ("subs", P2P) — the traffic generator playing `config/scenarios/demo.toml`
into both, and the gateway bound twice (smsc-a2p, route a2p; smsc-p2p, route local), enforcing,
recording on SQLite and alerting on MQTT. Every message caught is printed with its reasons; an
MQTT subscriber counts the alerts; the summary compares what was caught with the scenario's
labels. Ctrl-C stops everything cleanly; `--duration S` runs unattended and exits 0 after the
summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from gateway.config import GatewayConfig, SmscLink
from gateway.daemon import Gateway
from gateway.domain import Decision, Inspected, Route
from simulators.broker import BrokerError, Mosquitto
from simulators.scenario import GeneratedMessage, Scenario, ScenarioError, load_scenario
from simulators.traffic import TrafficReport, play
from smsc.client import EsmeConfig
from smsc.session import BindType
from smsc.simulator import Account, SimulatedSmsc, SmscConfig
from smsc.simulator import Route as SmscRoute

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "config" / "scenarios" / "demo.toml"
log = logging.getLogger("fraudgate.demo")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, help="stop after S seconds and print the summary")
    p.add_argument("--rate", type=float, default=50.0, help="submit_sm per second (default 50)")
    p.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO, help="scenario file")
    p.add_argument("--monitor", action="store_true", help="monitor-only: record, never reject")
    p.add_argument("--data-dir", type=Path, help="keep the SQLite database here")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.add_argument("--seed", type=int, help="override the scenario's seed")


def smsc_config() -> SmscConfig:
    both = frozenset({BindType.TRANSMITTER, BindType.TRANSCEIVER})
    rx = frozenset({BindType.RECEIVER, BindType.TRANSCEIVER})
    return SmscConfig(
        port=0,
        accounts=[
            Account("agg", "secret", both),
            Account("subs", "secret", both),
            Account("gw-a2p", "secret", rx),
            Account("gw-p2p", "secret", rx),
        ],
        routes=[SmscRoute("", "gw-a2p", origin="agg"), SmscRoute("", "gw-p2p", origin="subs")],
        retry_interval=1.0,
    )


def gateway_config(
    smsc_port: int, broker: Mosquitto | None, data_dir: Path, enforce: bool
) -> GatewayConfig:
    cfg = GatewayConfig(data_dir=data_dir, mode="enforce" if enforce else "monitor")
    cfg.smsc = [
        SmscLink(
            EsmeConfig("127.0.0.1", smsc_port, f"gw-{flow}", "secret", BindType.RECEIVER,
                       name=f"smsc-{flow}"),
            route,
        )
        for flow, route in (("a2p", Route.A2P), ("p2p", Route.LOCAL))
    ]  # fmt: skip
    cfg.reassembly_timeout = 5.0
    if broker is None:
        cfg.mqtt.enabled = False
    else:
        cfg.mqtt.host, cfg.mqtt.port = broker.host, broker.port
        cfg.mqtt.client_id = "fraudgate-demo"
    return cfg


class Board:
    """What the demo shows: caught messages live, and the tallies for the summary."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self.truth: dict[tuple[str, str, str], str] = {}
        self.by_label: dict[str, Counter[str]] = defaultdict(Counter)
        self.alerts: Counter[str] = Counter()
        self.alert_ids: set[str] = set()

    def remember(self, messages: Iterator[GeneratedMessage]) -> Iterator[GeneratedMessage]:
        for m in messages:
            self.truth[(m.source, m.destination, m.text)] = m.label
            yield m

    def on_inspected(self, item: Inspected) -> None:
        sms, verdict = item.sms, item.verdict
        label = self.truth.get((sms.source, sms.dest, sms.text), "?")
        self.by_label[label][verdict.decision.value] += 1
        if verdict.decision is Decision.ALLOW or self.out is None:
            return
        rules = ", ".join(verdict.rule_ids[:3])
        text = sms.text if len(sms.text) <= 70 else sms.text[:67] + "..."
        print(
            f"{verdict.decision.value.upper():5} {verdict.score:.2f} {sms.smsc:8} "
            f"{sms.source} -> {sms.dest} [{rules}] {json.dumps(text, ensure_ascii=False)} "
            f"(scenario: {label})",
            file=self.out,
            flush=True,
        )

    async def subscribe(self, broker: Mosquitto, ready: asyncio.Event) -> None:
        import aiomqtt

        async with aiomqtt.Client(broker.host, broker.port, identifier="demo-subscriber") as c:
            await c.subscribe("fraudgate/alerts/#", qos=1)
            ready.set()
            async for message in c.messages:
                payload = json.loads(bytes(message.payload))
                if payload["id"] not in self.alert_ids:
                    self.alert_ids.add(payload["id"])
                    self.alerts[str(message.topic).rsplit("/", 1)[-1]] += 1


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
    board = Board(None if args.quiet else sys.stdout)
    started = time.monotonic()
    reports = (TrafficReport(), TrafficReport())
    async with contextlib.AsyncExitStack() as stack:
        broker: Mosquitto | None = None
        try:
            broker = await stack.enter_async_context(Mosquitto())
        except BrokerError as exc:
            print(f"# no MQTT broker ({exc}); alerts stay in the outbox", file=sys.stderr)
        data_dir = args.data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        smsc = await stack.enter_async_context(SimulatedSmsc(smsc_config()))
        cfg = gateway_config(smsc.port, broker, data_dir, enforce=not args.monitor)
        gateway = Gateway(cfg, on_inspected=board.on_inspected)
        gw_stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            sub_ready = asyncio.Event()
            subscriber = tg.create_task(board.subscribe(broker, sub_ready)) if broker else None
            if subscriber is None:
                sub_ready.set()
            gw = tg.create_task(gateway.run(gw_stop))
            await gateway.ready.wait()
            await sub_ready.wait()
            where = f"mosquitto on 127.0.0.1:{broker.port}" if broker else "no broker"
            print(
                f"# demo: simulated SMSC on 127.0.0.1:{smsc.port}, {where}, "
                f"gateway {cfg.mode} on SQLite {cfg.database_url.split('///')[-1]}; "
                f"scenario {scenario.name} at {args.rate:g} submit_sm/s; Ctrl-C to stop",
                flush=True,
            )
            await _play(scenario, smsc.port, args, stop, board, reports)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(smsc.wait_idle(), 10.0)
            gw_stop.set()
            run_report = await gw
            await asyncio.sleep(0.5)  # the last alerts reach the subscriber
            if subscriber is not None:
                subscriber.cancel()
    rejected = sum(st.rejected for st in run_report.stats.values())
    print(summary(board, reports, run_report.committed, rejected, time.monotonic() - started))
    return 0


async def _play(
    scenario: Scenario,
    port: int,
    args: argparse.Namespace,
    stop: asyncio.Event,
    board: Board,
    reports: tuple[TrafficReport, TrafficReport],
) -> None:
    seed = scenario.effective_seed(args.seed)
    a2p = (m for m in scenario.generate(seed) if m.source_ton == 5)
    p2p = (m for m in scenario.generate(seed) if m.source_ton != 5)
    share = sum(n for s, n in scenario.shares().items() if _alnum_stream(scenario, s))
    a2p_rate = max(args.rate * share / max(scenario.pass_length, 1), 1.0)
    count = None if args.duration else scenario.pass_length
    a2p_count = p2p_count = None
    if count is not None:
        a2p_count, p2p_count = share, count - share
    flows = (("agg", a2p, a2p_rate, a2p_count), ("subs", p2p, args.rate - a2p_rate, p2p_count))
    await asyncio.gather(
        *(
            play(
                EsmeConfig("127.0.0.1", port, account, "secret", BindType.TRANSMITTER,
                           name=f"demo {account}"),
                board.remember(messages),
                rate=max(rate, 1.0),
                count=n,
                duration=args.duration,
                stop=stop,
                report=report,
            )
            for (account, messages, rate, n), report in zip(flows, reports, strict=True)
        )
    )  # fmt: skip


def _alnum_stream(scenario: Scenario, name: str) -> bool:
    stream = next(s for s in scenario.streams if s.name == name)
    return stream.source_ton == 5  # alphanumeric sender ids travel the A2P flow


def summary(
    board: Board, reports: tuple[TrafficReport, ...], committed: int, rejected: int, elapsed: float
) -> str:
    sent = sum(r.messages for r in reports)
    lines = [
        "",
        f"# demo summary after {elapsed:.1f} s: {sent} messages sent, {committed} recorded, "
        f"{rejected} stopped inline by the gateway",
        f"  {'scenario label':16} {'inspected':>9} {'allowed':>8} {'flagged':>8} {'blocked':>8}",
    ]
    for label, c in sorted(board.by_label.items()):
        lines.append(
            f"  {label:16} {sum(c.values()):>9} {c['allow']:>8} {c['flag']:>8} {c['block']:>8}"
        )
    alerts = ", ".join(f"{k} {v}" for k, v in sorted(board.alerts.items())) or "none"
    lines.append(f"  MQTT alerts received: {alerts}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    logging.getLogger("fraudgate.smpp").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(demo(args))
    return 0
