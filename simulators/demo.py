"""`fraudgate demo`: the gateway at work against simulated surroundings, on embedded defaults.

In this process, over loopback TCP: a real mosquitto broker (started here), the simulated SMSC
with two flows, as an operator keeps them — an aggregator ("agg", A2P: alphanumeric senders)
and subscribers ("subs", P2P) — the traffic generator playing `config/scenarios/demo.toml`
into both, and the gateway bound twice (smsc-a2p, route a2p; smsc-p2p, route local), enforcing,
recording on SQLite and alerting on MQTT. Every message caught is printed with its reasons; an
MQTT subscriber counts the alerts; the summary compares what was caught with the scenario's
labels. Ctrl-C stops everything cleanly; `--duration S` runs unattended and exits 0 after the
summary.

Beside the SMS traffic, two probe modems (the modem simulator on ptys) are driven by the
gateway over their serial devices, and a test-call partner calls them from abroad over routes
of which some end in a SIM box (`simulators/simbox.py`): the gateway names the SIM box's SIMs.
`--no-probes` leaves that out.

While it runs, the gateway serves its API and the analysts' console on 127.0.0.1
(`--console-port`, default 8080, or a free port when that one is taken); its state (the SQLite
database, the console's tokens, a configuration over both: simulators/demo_state.py) stays in
`var/demo/` (`--data-dir`), for `fraudgate cases list` and `fraudgate console` afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from gateway.cases import CaseFilter
from gateway.config import GatewayConfig, SmscLink
from gateway.daemon import Gateway
from gateway.domain import Decision, Inspected, Route
from gateway.probes.settings import ProbeSettings
from gateway.probes.simbox import Finding, Outcome
from gateway.switch.config import SwitchSettings
from simulators.broker import BrokerError, Mosquitto
from simulators.centre import CentreSimulator, make_certs
from simulators.demo_state import (
    CONFIG_FILE,
    TOKENS_FILE,
    DemoToken,
    console_address,
    demo_tokens,
    shown,
    write_config,
)
from simulators.modem import ModemProfile, ModemSimulator
from simulators.scenario import GeneratedMessage, Scenario, ScenarioError, load_scenario
from simulators.simbox import Partner, PlannedTest
from simulators.switch import SwitchSimulator
from simulators.traffic import TrafficReport, play
from smsc.client import EsmeConfig
from smsc.session import BindType
from smsc.simulator import Account, SimulatedSmsc, SmscConfig
from smsc.simulator import Route as SmscRoute

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIO = PROJECT_DIR / "config" / "scenarios" / "demo.toml"
DEFAULT_DATA_DIR = PROJECT_DIR / "var" / "demo"
log = logging.getLogger("fraudgate.demo")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, help="stop after S seconds and print the summary")
    p.add_argument("--rate", type=float, default=50.0, help="submit_sm per second (default 50)")
    p.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO, help="scenario file")
    p.add_argument("--monitor", action="store_true", help="monitor-only: record, never reject")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="the demo's state: SQLite database, console tokens, fraudgate.toml (default: "
        "var/demo/ in the project; kept across runs)",
    )
    p.add_argument(
        "--fresh", action="store_true", help="start from an empty database (cases and records)"
    )
    p.add_argument(
        "--console-port",
        type=int,
        default=8080,
        help="the console and API on 127.0.0.1:PORT (default 8080; a free port if taken)",
    )
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument("--no-probes", action="store_true", help="no probe modems / SIM-box part")


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
        self.findings: list[Finding] = []

    def on_finding(self, f: Finding) -> None:
        self.findings.append(f)
        if self.out is None or f.outcome is Outcome.UNEXPECTED:
            return
        tag = {"clean": "CLEAN", "simbox": "SIMBOX", "simfarm": "SIMBOX", "local_cli": "SIMBOX",
               "no_arrival": "LOST"}.get(f.outcome.value, "ROUTE")  # fmt: skip
        route = f.expected.route if f.expected else "?"
        seen = f.observed or "no CLI"
        named = f" -> SIM-box SIM {f.number}" if f.number and f.outcome is not Outcome.CLEAN else ""
        print(
            f"{tag:6} probe {f.probe}: test {f.expected.kind if f.expected else '?'} from "
            f"{f.expected.a_number if f.expected else '?'} via {route} arrived as {seen}"
            f"{named} ({f.outcome.value})",
            file=self.out,
            flush=True,
        )

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
    data_dir: Path = args.data_dir
    board = Board(None if args.quiet else sys.stdout)
    started, since = time.monotonic(), time.time()
    reports = (TrafficReport(), TrafficReport())
    async with contextlib.AsyncExitStack() as stack:
        broker: Mosquitto | None = None
        try:
            broker = await stack.enter_async_context(Mosquitto())
        except BrokerError as exc:
            print(f"# no MQTT broker ({exc}); alerts stay in the outbox", file=sys.stderr)
        smsc = await stack.enter_async_context(SimulatedSmsc(smsc_config()))
        cfg = gateway_config(smsc.port, broker, data_dir, enforce=not args.monitor)
        probes, partner, tests = await _setup_probes(stack, cfg, data_dir, args, scenario)
        switch, centre = await _start_workflow_peers(stack, cfg, data_dir)
        console = _serve_console(cfg, data_dir, args.console_port)
        gateway = Gateway(cfg, on_inspected=board.on_inspected, on_finding=board.on_finding)
        gw_stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            sub_ready = asyncio.Event()
            subscriber = tg.create_task(board.subscribe(broker, sub_ready)) if broker else None
            if subscriber is None:
                sub_ready.set()
            gw = tg.create_task(gateway.run(gw_stop))
            await gateway.ready.wait()
            await sub_ready.wait()
            _announce(smsc.port, broker, cfg, scenario, args)
            print(console, flush=True)
            calls = (
                tg.create_task(partner.place(tests, probes, clock=time.time, ring_interval=1.0))
                if partner is not None
                else None
            )
            await _play(scenario, smsc.port, args, stop, board, reports)
            if calls is not None:
                await _finish_tests(calls, tests, board, stop)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(smsc.wait_idle(), 10.0)
            workflow_report = await _workflow_summary(gateway, switch, centre, since)
            gw_stop.set()
            run_report = await gw
            await asyncio.sleep(0.5)  # the last alerts reach the subscriber
            if subscriber is not None:
                subscriber.cancel()
    rejected = sum(st.rejected for st in run_report.stats.values())
    print(summary(board, reports, run_report.committed, rejected, time.monotonic() - started))
    if partner is not None:
        print(probe_summary(board, partner, tests))
    if workflow_report:
        print(workflow_report)
    print(afterwards(data_dir))
    return 0


def prepare_data_dir(data_dir: Path, *, fresh: bool) -> Path:
    """The demo's data directory, created if needed; `fresh`: its database erased first."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if fresh:
        for suffix in ("", "-wal", "-shm", "-journal"):
            (data_dir / f"fraudgate.db{suffix}").unlink(missing_ok=True)
    return data_dir


def _serve_console(cfg: GatewayConfig, data_dir: Path, port: int) -> str:
    """The API and the console on 127.0.0.1 with the demo's tokens of every role; the state
    files written (simulators/demo_state.py). Returns the line announcing the console."""
    tokens = demo_tokens(data_dir)
    cfg.api.listen, as_asked = console_address(port)
    cfg.api.tokens = tuple((t.sha256, t.user, t.role) for t in tokens.values())
    cfg.console.enabled = True
    write_config(cfg, data_dir)
    return console_line(cfg.api.listen, tokens["analyst"], data_dir, port, as_asked)


def console_line(listen: str, analyst: DemoToken, data_dir: Path, port: int, as_asked: bool) -> str:
    taken = "" if as_asked else f" (port {port} is taken)"
    return (
        f"# console: http://{listen}/console/{taken} — sign in with the analyst token "
        f"{analyst.token} (all demo tokens: {shown(data_dir / TOKENS_FILE)})"
    )


def afterwards(data_dir: Path) -> str:
    """How to look at the demo's state once it has ended."""
    config = shown(data_dir / CONFIG_FILE)
    return "\n".join(
        [
            f"# the demo's state stays in {shown(data_dir)}/; afterwards:",
            f"  fraudgate cases list -c {config}",
            f"  fraudgate console -c {config}      # the console alone, on the same address",
        ]
    )


async def _setup_probes(
    stack: contextlib.AsyncExitStack,
    cfg: GatewayConfig,
    data_dir: Path,
    args: argparse.Namespace,
    scenario: Scenario,
) -> tuple[dict[str, ModemSimulator], Partner | None, list[PlannedTest]]:
    """The probe modems and the test calls planned for them; none with --no-probes."""
    probes: dict[str, ModemSimulator] = {}
    partner: Partner | None = None
    tests: list[PlannedTest] = []
    if not args.no_probes:
        probes = await _start_probes(stack, data_dir)
        if probes:
            partner, tests = _plan_tests(probes, cfg, data_dir, args, scenario)
    return probes, partner, tests


def _announce(
    smsc_port: int,
    broker: Mosquitto | None,
    cfg: GatewayConfig,
    scenario: Scenario,
    args: argparse.Namespace,
) -> None:
    """Print the one line saying what the demo runs against, once everything is up."""
    where = f"mosquitto on 127.0.0.1:{broker.port}" if broker else "no broker"
    print(
        f"# demo: simulated SMSC on 127.0.0.1:{smsc_port}, {where}, "
        f"gateway {cfg.mode} on SQLite {cfg.database_url.split('///')[-1]}; "
        f"scenario {scenario.name} at {args.rate:g} submit_sm/s; Ctrl-C to stop",
        flush=True,
    )


async def _start_workflow_peers(
    stack: contextlib.AsyncExitStack, cfg: GatewayConfig, data_dir: Path
) -> tuple[SwitchSimulator | None, CentreSimulator | None]:
    """The simulated switch and anti-fraud centre the case workflow talks to (docs/cases.md,
    docs/centre-api.md); without openssl the centre is left out and its reports stay queued."""
    cfg.cases.interval = 1.0
    # the demo operator trusts its probes' SIM-box test calls: an explicit policy (the default
    # waits for a person), recorded in each case it confirms (flag auto_confirmed)
    cfg.cases.auto_confirm_probe_outcomes = ("simbox", "simfarm")
    switch = await stack.enter_async_context(SwitchSimulator())
    cfg.switch = SwitchSettings.http(switch.url, switch.token)
    try:
        certs = make_certs(data_dir / "pki")
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"# no anti-fraud centre simulator ({exc})", file=sys.stderr)
        return switch, None
    centre = await stack.enter_async_context(CentreSimulator(certs))
    c = cfg.centre
    c.url, c.operator = centre.url, "demo-operator"
    cert, key = certs.cert("operator", "client")
    c.client_cert, c.client_key, c.ca = str(cert), str(key), str(certs.centre_ca)
    return switch, centre


async def _workflow_summary(
    gateway: Gateway, switch: SwitchSimulator | None, centre: CentreSimulator | None, since: float
) -> str:
    """The cases in the demo's database (those of earlier runs too: `since` tells this run's),
    what the switch blocked, what reached the centre."""
    if gateway.workflow is None:
        return ""
    await asyncio.sleep(2.5)  # a last workflow round: findings of the last tests become cases
    cases = await gateway.workflow.cases.list(CaseFilter(limit=10_000))
    if centre is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_settled(centre), 5.0)
    by = Counter((c.source.value, c.state.value) for c in cases)
    earlier = sum(1 for c in cases if c.received_at < since)
    suspended = any(c.received_at < since and c.state.value == "suspended" for c in cases)
    title = "# cases (order No. 554/НҚ workflow)"
    if earlier:
        title += f": {len(cases) - earlier} opened by this run, {earlier} by earlier ones"
    lines = [title, f"  {'source':18} {'state':12} {'cases':>5}"]
    lines += [f"  {src:18} {state:12} {n:>5}" for (src, state), n in sorted(by.items())]
    blocked = sorted(n for n, st in (switch.state if switch else {}).items() if st == "blocked")
    lines.append(f"  blocked on the switch: {', '.join(blocked) or 'none'}")
    if suspended:
        lines.append(
            "  (the simulated switch starts empty; earlier runs' suspensions stay recorded)"
        )
    if centre is not None:
        kinds = Counter(r.document["kind"] for r in centre.reports.values())
        sent = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) or "none"
        lines.append(f"  reports received by the anti-fraud centre (mutual TLS): {sent}")
    lines.append(
        "  SIM-box cases confirmed by the demo's explicit policy (auto_confirm_probe_outcomes);"
        " the others wait for an analyst: fraudgate cases list | verify | confirm | reject"
    )
    return "\n".join(lines)


async def _settled(centre: CentreSimulator) -> None:
    seen = -1
    while len(centre.reports) != seen:
        seen = len(centre.reports)
        await asyncio.sleep(1.0)


PROBES = {
    "almaty-1": ModemProfile(imsi="401021000000101", msisdn="+77010000101"),
    "astana-1": ModemProfile(
        imsi="401771000000102",
        msisdn="+77770000102",
        operator="Beeline KZ",
        operator_numeric="40177",
    ),
}
TEST_SPACING = 4.0  # seconds between test calls (alternating probes)


async def _start_probes(
    stack: contextlib.AsyncExitStack, data_dir: Path
) -> dict[str, ModemSimulator]:
    """Two probe modems on ptys (symlinks under data_dir/dev), or none if ptys are refused."""
    probes: dict[str, ModemSimulator] = {}
    try:
        for name, profile in PROBES.items():
            sim = ModemSimulator(profile, name=name, link_dir=data_dir / "dev")
            probes[name] = await stack.enter_async_context(sim)
    except OSError as exc:
        print(f"# no probe modems ({exc}); SIM-box part skipped", file=sys.stderr)
        return {}
    return probes


def _plan_tests(
    probes: dict[str, ModemSimulator],
    cfg: GatewayConfig,
    data_dir: Path,
    args: argparse.Namespace,
    scenario: Scenario,
) -> tuple[Partner, list[PlannedTest]]:
    """Probes in the gateway's configuration, and the partner's plan in a drop folder."""
    (data_dir / "dev").mkdir(exist_ok=True)
    cfg.probes.probes = [ProbeSettings(n, str(s.url), poll_interval=2.0) for n, s in probes.items()]
    cfg.probes.grace = 2.0
    plans = data_dir / "plans"
    plans.mkdir(exist_ok=True)
    cfg.probes.plans = [plans]
    seconds = args.duration or scenario.pass_length / max(args.rate, 1.0)
    count = max(int(seconds / TEST_SPACING), 4)
    partner = Partner(list(probes), window=TEST_SPACING * 1.5, seed=args.seed or 7)
    tests = partner.plan(count, start=time.time() + 8.0, spacing=TEST_SPACING)
    (plans / "partner.json").write_text(partner.plan_file(), encoding="utf-8")
    return partner, tests


async def _finish_tests(
    calls: asyncio.Task[None], tests: list[PlannedTest], board: Board, stop: asyncio.Event
) -> None:
    """Let the partner place its remaining calls and the gateway conclude each test (the last
    window has to close for a lost call to count as lost), unless the user stops the demo."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({calls, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            calls.cancel()
            return
        ids = {t.expected.id for t in tests}
        deadline = time.monotonic() + max(t.expected.end for t in tests) - time.time() + 10
        while time.monotonic() < deadline and not stop.is_set():
            done = {f.expected.id for f in board.findings if f.expected is not None}
            if ids <= done:
                return
            await asyncio.sleep(0.2)
    finally:
        stopped.cancel()


def probe_summary(board: Board, partner: Partner, tests: list[PlannedTest]) -> str:
    found = Counter(f.outcome.value for f in board.findings if f.expected is not None)
    truth = partner.expected_outcomes()
    lines = [
        f"# probes: {len(tests)} test calls / SMS announced by the partner",
        f"  {'outcome':14} {'expected':>8} {'found':>6}",
    ]
    for outcome in sorted(set(truth) | set(found)):
        lines.append(f"  {outcome:14} {truth[outcome]:>8} {found[outcome]:>6}")
    named = sorted(
        {f.number for f in board.findings if f.number and f.outcome is not Outcome.CLEAN}
    )
    used = sorted({t.cli.lstrip("+") for t in tests if t.route in ("simbox", "simfarm")})
    lines.append(f"  SIM-box / SIM-farm numbers named: {', '.join(named) or 'none'}")
    lines.append(f"  numbers the SIM box and farm used: {', '.join(used) or 'none'}")
    return "\n".join(lines)


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
    logging.getLogger("fraudgate.modem").setLevel(logging.WARNING)  # the board shows calls
    try:
        prepare_data_dir(args.data_dir, fresh=args.fresh)
    except OSError as exc:
        print(f"fraudgate demo: data directory {args.data_dir}: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(demo(args))
    return 0
