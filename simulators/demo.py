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

And a day of call records (CDRs, `simulators/cdr.py`: a few hundred ordinary subscribers, a SIM
box, a Wangiri campaign, a spoofed-caller-id campaign and the legitimate look-alikes) is dropped
in the gateway's CDR inbox once it is ready: each call finding is printed as it is recorded, the
summary compares them with the generator's labels, and the SIM-box SIMs' cases wait for an
analyst (docs/calls.md). `--no-calls` leaves that out.

While it runs, the gateway serves its API and the analysts' console on 127.0.0.1
(`--console-port`, default 8080, or a free port when that one is taken); its state (the SQLite
database, the console's tokens, a configuration over both: simulators/demo_state.py) stays in
`var/demo/` (`--data-dir`), for `fraudgate cases list` and `fraudgate console` afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from gateway.calls.analyzer import CallFinding, FindingKind
from gateway.calls.payload import call_alert_payload
from gateway.cases import CaseFilter, CaseView, Source
from gateway.config import GatewayConfig, SmscLink
from gateway.daemon import Gateway
from gateway.domain import Decision, Inspected, Route
from gateway.probes.settings import ProbeSettings
from gateway.probes.simbox import Finding, Outcome
from gateway.switch.config import SwitchSettings
from simulators.broker import BrokerError, Mosquitto
from simulators.cdr import SIMBOX_A, CdrGenerator, Labels, Mix, write_records
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
    p.add_argument("--no-calls", action="store_true", help="no call records (CDR) part")


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
        self.call_labels: Labels | None = None  # the truth about the day of call records
        self.call_findings: list[CallFinding] = []

    def on_call_finding(self, f: CallFinding) -> None:
        """A call finding as recorded (the gateway's CallService calls this once per finding)."""
        self.call_findings.append(f)
        if self.out is None:
            return
        reasons = "; ".join(r.description for r in f.reasons[:3])
        print(
            f"CALL  {f.score:.2f} {f.kind.value:14} {call_alert_payload(f)['subject']} "
            f"[{reasons}] (records: {call_truth(self.call_labels, f)})",
            file=self.out,
            flush=True,
        )

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
        day = None if args.no_calls else await _setup_calls(cfg, data_dir, args.seed)
        board.call_labels = day.labels if day is not None else None
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
            read = None
            if day is not None and gateway.calls is not None:
                gateway.calls.service.on_finding = board.on_call_finding
                read = tg.create_task(_drop_and_wait(day, gateway, stop))
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
            read_in = await read if read is not None else None
            workflow_report, cases = await _workflow_summary(gateway, switch, centre, since)
            gw_stop.set()
            run_report = await gw
            await asyncio.sleep(0.5)  # the last alerts reach the subscriber
            if subscriber is not None:
                subscriber.cancel()
    rejected = sum(st.rejected for st in run_report.stats.values())
    print(summary(board, reports, run_report.committed, rejected, time.monotonic() - started))
    if partner is not None:
        print(probe_summary(board, partner, tests))
    if day is not None:
        print(call_summary(board, day, _inbox_counts(gateway), read_in, cases))
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
        for folder in (CDR_INBOX, CDR_STAGING):  # the files read are in the erased ledger
            shutil.rmtree(data_dir / folder, ignore_errors=True)
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
) -> tuple[str, list[CaseView]]:
    """The cases in the demo's database (those of earlier runs too: `since` tells this run's),
    what the switch blocked, what reached the centre; and the cases themselves."""
    if gateway.workflow is None:
        return "", []
    await asyncio.sleep(2.5)  # a last workflow round: findings of the last tests become cases
    cases = await gateway.workflow.cases.list(CaseFilter(limit=10_000))
    if centre is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_settled(centre), 5.0)
    by = Counter((c.source.value, c.state.value) for c in cases)
    # by when the case was opened: a call-record case's legal clock starts at its records' time
    earlier = sum(1 for c in cases if c.created_at < since)
    suspended = any(c.created_at < since and c.state.value == "suspended" for c in cases)
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
        "  SIM-box cases of probe tests confirmed by the demo's explicit policy"
        " (auto_confirm_probe_outcomes); the others (call records too) wait for an analyst:"
        " fraudgate cases list | verify | confirm | reject"
    )
    return "\n".join(lines), list(cases)


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


# -- call records (docs/calls.md) ----------------------------------------------------------

CDR_INBOX = "cdr"  # under the data directory: the gateway's [calls] inbox (read files: done/)
CDR_STAGING = "cdr-staging"  # where the day is written before it is renamed into the inbox
CDR_RUNS = "runs"  # in the staging folder: how many days earlier runs generated
# A small day: a few hundred subscribers, one SIM-box gateway (8-32 ports, 16-64 SIMs), one
# Wangiri campaign, one spoofing campaign, one of each legitimate look-alike. About 10-22
# thousand records: generated in ~0.2 s, read and analysed by the gateway in under a second.
CDR_MIX = Mix(
    "demo", normal=300, call_centre=1, taxi=1, m2m=1, two_phones=1, roamers=1, simbox=1,
    wangiri=1, spoofing=1, simbox_variant=SIMBOX_A, wangiri_victims=(80, 120),
    spoof_calls=(30, 40),
)  # fmt: skip
HARD_CASES = ("call_centre", "taxi", "m2m", "two_phones", "roamer")
KZ_TIME = dt.timezone(dt.timedelta(hours=5))


@dataclass(frozen=True, slots=True)
class CallDay:
    """A day of generated call records, written outside the inbox, and the truth about them."""

    staged: Path
    inbox: Path
    labels: Labels
    records: int
    seed: int
    day: dt.date
    generated_in: float  # seconds

    def drop(self) -> Path:
        """Rename the finished file into the inbox, as a mediation does: never half-written."""
        target = self.inbox / self.staged.name
        self.staged.rename(target)
        return target


async def _setup_calls(cfg: GatewayConfig, data_dir: Path, seed: int | None) -> CallDay:
    """[calls] on an inbox under data_dir, and yesterday's records generated for it."""
    inbox = data_dir / CDR_INBOX
    inbox.mkdir(exist_ok=True)
    for leftover in inbox.iterdir():  # an interrupted run's file: its truth is gone
        if leftover.is_file():
            leftover.unlink()
    cfg.calls.enabled = True
    cfg.calls.inbox = str(inbox)
    cfg.calls.after = "move"
    cfg.calls.scan_interval = 0.25
    return await asyncio.to_thread(stage_call_day, data_dir, seed or 7, time.time())


def stage_call_day(data_dir: Path, base_seed: int, now: float) -> CallDay:
    """Yesterday's records (Almaty midnight to midnight), gzip'd CSV as a switch's mediation
    writes them, in the staging folder. Each run on a data directory takes the next seed: a
    finding is recorded once per subject, so a day with the same SIMs would show nothing new."""
    staging = data_dir / CDR_STAGING
    staging.mkdir(exist_ok=True)
    counter = staging / CDR_RUNS
    try:
        runs = int(counter.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        runs = 0
    counter.write_text(f"{runs + 1}\n", encoding="utf-8")
    seed = base_seed + runs
    started = time.monotonic()
    today = dt.datetime.fromtimestamp(now, KZ_TIME).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    yesterday = today - dt.timedelta(days=1)
    gen = CdrGenerator(seed=seed, mix=CDR_MIX, days=1.0, start=yesterday.timestamp())
    name = f"msc1-{yesterday:%Y%m%d}-s{seed}.csv.gz"
    part = staging / (name + ".part")
    records = write_records(gen, part)
    staged = part.rename(staging / name)
    return CallDay(
        staged, data_dir / CDR_INBOX, gen.labels, records, seed, yesterday.date(),
        time.monotonic() - started,
    )  # fmt: skip


async def _drop_and_wait(day: CallDay, gateway: Gateway, stop: asyncio.Event) -> float | None:
    """Drop the day in the inbox; seconds until the gateway has read and analysed it (its
    findings recorded), None if the demo was stopped or it took over 30 s."""
    inbox = gateway.calls.inbox if gateway.calls is not None else None
    if inbox is None:
        return None
    before, dropped = inbox.files, time.monotonic()
    day.drop()
    while inbox.files == before and not stop.is_set():
        if time.monotonic() - dropped > 30.0:
            return None
        await asyncio.sleep(0.05)
    return None if stop.is_set() else time.monotonic() - dropped


def _inbox_counts(gateway: Gateway) -> tuple[int, int, int]:
    """Files, records and bad rows the gateway's CDR inbox read."""
    inbox = gateway.calls.inbox if gateway.calls is not None else None
    return (inbox.files, inbox.records, inbox.bad_rows) if inbox is not None else (0, 0, 0)


def call_truth(labels: Labels | None, f: CallFinding) -> str:
    """What the generator says the finding's subject is (its label)."""
    if labels is None:
        return "?"
    if f.kind is FindingKind.WANGIRI:
        return ", ".join(_campaigns(labels, [f.subject])) or "no campaign"
    if f.kind is FindingKind.SPOOFED_CLI:
        how = labels.spoofed_clis.get(f.subject)
        return f"spoofing campaign ({how} number)" if how else _class(labels, f.subject)
    sim = labels.simbox.get(f.msisdn or f.subject)
    return f"SIM-box SIM of {sim.gateway}" if sim else _class(labels, f.msisdn or f.subject)


def _class(labels: Labels, msisdn: str) -> str:
    cls = labels.classes.get(msisdn)
    return f"{cls} subscriber" if cls else "not in the records"


def _campaigns(labels: Labels, ranges: Sequence[str]) -> list[str]:
    """The Wangiri campaigns with a number in one of `ranges` ("2653562572xx")."""
    keys = tuple(r.removesuffix("xx") for r in ranges)
    return sorted({w.campaign for n, w in labels.wangiri.items() if keys and n.startswith(keys)})


def call_summary(
    board: Board,
    day: CallDay,
    inbox: tuple[int, int, int],
    read_in: float | None,
    cases: Sequence[CaseView],
) -> str:
    """The call findings against the generator's labels, and the cases they opened."""
    labels, found = day.labels, board.call_findings
    files, records, bad_rows = inbox
    by_kind: dict[FindingKind, list[CallFinding]] = defaultdict(list)
    for f in found:
        by_kind[f.kind].append(f)
    sims = {f.msisdn or f.subject for k in (FindingKind.SIMBOX, FindingKind.SIMBOX_SIBLING)
            for f in by_kind[k]}  # fmt: skip
    in_box = {n for n, s in labels.simbox.items() if s.first_fraud_call is not None}
    ranges = sorted(f.subject for f in by_kind[FindingKind.WANGIRI])
    campaigns = sorted({w.campaign for w in labels.wangiri.values()})
    covered = _campaigns(labels, ranges)
    stray = [r for r in ranges if not _campaigns(labels, [r])]
    spoofed = {f.subject for f in by_kind[FindingKind.SPOOFED_CLI]}
    spoof_truth = set(labels.spoofed_clis)
    hard = {n for n, c in labels.classes.items() if c in HARD_CASES}
    on_hard = (sims | spoofed) & hard
    timing = f"analysed in {read_in:.1f} s" if read_in is not None else "not read (stopped)"
    lines = [
        f"# call records: a day ({day.day}, seed {day.seed}) of {day.records} records generated "
        f"in {day.generated_in:.1f} s, dropped in {shown(day.inbox)}/; the gateway read {files} "
        f"file, {records} records ({bad_rows} bad rows), {timing}",
        f"  {'finding':17} {'labelled':>8} {'found':>6} {'false positives':>16}",
        f"  {'SIM-box SIMs':17} {len(in_box):>8} {len(sims & in_box):>6} "
        f"{len(sims - set(labels.simbox)):>16}",
        f"  {'Wangiri campaigns':17} {len(campaigns):>8} {len(covered):>6} {len(stray):>16}"
        f"   ranges: {', '.join(ranges) or 'none'}",
        f"  {'spoofed numbers':17} {len(spoof_truth):>8} {len(spoofed & spoof_truth):>6} "
        f"{len(spoofed - spoof_truth):>16}",
        f"  hard cases (call centre, taxi, M2M, two phones, roamer): {len(hard)} SIMs, "
        f"{len(on_hard)} findings",
    ]
    mine = {"+" + n for n in sims}
    opened = [c for c in cases if c.source is Source.DETECTION_SIMBOX and mine & set(c.numbers)]
    states = Counter(c.state.value for c in opened)
    lines.append(
        f"  cases opened from them: {len(opened)} detection_simbox "
        f"({', '.join(f'{s} {n}' for s, n in sorted(states.items())) or 'none'}), waiting for "
        "an analyst: call-record findings are never confirmed by the demo's policy"
    )
    lines.append(f"  MQTT alerts received on alerts/call: {board.alerts['call']}")
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
