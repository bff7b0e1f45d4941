"""`fraudgate bench console`: does the console's live page keep up with the demo traffic at a
fixed rate, and what does a browser watching it cost the daemon?

Processes, all on this machine: the simulated SMSC (its own process: two transmitter accounts
for the traffic, A2P and P2P, routed to two receiver accounts for the gateway), the gateway
daemon as deployed (`fraudgate run -c` a configuration written here: monitor mode, SQLite in a
temporary directory, no MQTT, the case workflow on, the API and the console on a free loopback
port with one analyst token), and the traffic generator (its own process: `simulators.traffic.play`
of `config/scenarios/demo.toml` at `--rate` submit_sm/s, pre-generated before the clock starts
so that making messages does not take the CPU the run measures).

After `--warmup` seconds, phase A runs `--seconds` without a browser, then phase B as long with a
headless Chromium (Selenium, Debian's chromium + chromedriver) signed in as the analyst on
/console/ (the live page, one Server-Sent Event a second). Per phase: submit_sm offered per
second (the generator's view), deliver_sm answered per second and their round trip p50/p99 (the
SMSC's view), the SMSC's backlog (messages accepted and not yet answered by the gateway), the
CPU of each process (utime + stime from /proc over the wall time: 100 % is one core) and of
everything else on the machine, the daemon's RSS; in phase B the page's ticks (`data-ticks` of
#live-last-tick) per second, the lag from the last tick's time stamp to the browser's clock
(sampled each second), the rows in #live-rows and the streams the daemon dropped (a watcher
that fell behind). The daemon's extra CPU is B - A, in percentage points of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.api.auth import hash_token
from gateway.config import PROJECT_DIR
from smsc.bench import cpu_seconds, free_port, host_cpu_seconds, machine_info

FLOWS = {"agg": ("gw-a2p", "a2p"), "subs": ("gw-p2p", "local")}  # traffic account -> gateway's
PASSWORD = "secret"
SCENARIO = "config/scenarios/demo.toml"
MARGIN_S = 20.0  # traffic generated beyond warm-up + both phases: the browser's start, the stop
PAGE_STATE = """
const t = document.getElementById("live-last-tick");
const rows = document.getElementById("live-rows");
const status = document.getElementById("live-status");
if (!t || !rows) { return null; }
const at = Date.parse(t.getAttribute("datetime") || "");
return {ticks: Number(t.dataset.ticks || 0), lag_s: isNaN(at) ? null : (Date.now() - at) / 1000,
        rows: rows.rows.length, status: status ? status.textContent : ""};
"""


class BenchError(Exception):
    """The bench could not run: one line for the user."""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rate",
        type=float,
        default=2000.0,
        help="submit_sm per second offered, parts included (default 2000)",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        help="seconds of each phase, without and with the browser (default 30)",
    )
    p.add_argument("--warmup", type=float, default=5.0, help="seconds before phase A (5)")
    p.add_argument(
        "--fraud-share",
        type=float,
        default=0.1,
        help="share of fraud in the demo scenario's messages (default 0.1; the "
        "scenario's own mix is about 0.5)",
    )
    p.add_argument(
        "--window",
        type=int,
        default=32,
        help="deliver_sm in flight per gateway bind (default 32; two binds)",
    )
    p.add_argument(
        "--no-browser",
        dest="browser",
        action="store_false",
        help="phase A only (no Chromium, no Selenium needed)",
    )
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")


# ---------------------------------------------------------------------------- the children
async def _serve(conn: Any, answer: Callable[[str], dict[str, Any]]) -> None:
    """Answer the parent's commands until "stop" (or the pipe closes)."""
    while True:
        try:
            cmd = await asyncio.to_thread(conn.recv)
        except EOFError:
            return
        if cmd == "stop":
            return
        conn.send(answer(cmd))


def _smsc_child(conn: Any, window: int) -> None:
    asyncio.run(_smsc_main(conn, window))


async def _smsc_main(conn: Any, window: int) -> None:
    """The simulated SMSC; "mark" answers the deliver_sm round trips since the last mark."""
    from gateway.cli.bench_pipeline import _percentiles
    from smsc.session import BindType
    from smsc.simulator import Account, Route, SimulatedSmsc, SmscConfig

    tx = frozenset({BindType.TRANSMITTER})
    rx = frozenset({BindType.RECEIVER})
    cfg = SmscConfig(
        port=0,
        accounts=[Account(a, PASSWORD, tx) for a in FLOWS]
        + [Account(gw, PASSWORD, rx, window=window) for gw, _ in FLOWS.values()],
        routes=[Route("", gw, origin=a) for a, (gw, _) in FLOWS.items()],
    )
    async with SimulatedSmsc(cfg) as smsc:
        trips: list[float] = []
        smsc.round_trips = trips
        conn.send(smsc.port)
        seen = 0

        def answer(cmd: str) -> dict[str, Any]:
            nonlocal seen
            out: dict[str, Any] = {
                "t": time.monotonic(),
                "answered": len(trips),
                "backlog": smsc.pending(),
                "bound": all(smsc.accounts[gw].links for gw, _ in FLOWS.values()),
            }
            if cmd == "mark":
                out.update(_percentiles(trips[seen:], "deliver_sm_"))
                seen = len(trips)
            return out

        await _serve(conn, answer)


def _traffic_child(conn: Any, port: int, pdus: int, rate: float, fraud_share: float) -> None:
    asyncio.run(_traffic_main(conn, port, pdus, rate, fraud_share))


def _pick(messages: Iterator[Any], pdus: int, fraud_share: float) -> dict[str, list[Any]]:
    """Messages of the scenario, `fraud_share` of them fraud (spread evenly), until they make
    `pdus` submit_sm; split by flow: alphanumeric senders on the A2P account."""
    flows: dict[str, list[Any]] = {a: [] for a in FLOWS}
    taken = fraud = total = 0
    for m in messages:
        if total >= pdus:
            break
        want_fraud = fraud < fraud_share * (taken + 1)
        if (m.label != "normal") != want_fraud or not m.pdus:
            continue
        taken += 1
        fraud += m.label != "normal"
        total += len(m.pdus)
        flows["agg" if m.source_ton == 5 else "subs"].append(m)
    return flows


async def _traffic_main(conn: Any, port: int, pdus: int, rate: float, fraud_share: float) -> None:
    """Pre-generate, say so, wait for "go", play both flows at their share of `rate`."""
    from simulators.scenario import load_scenario
    from simulators.traffic import TrafficReport, play
    from smsc.client import EsmeConfig
    from smsc.session import BindType

    flows = _pick(load_scenario(PROJECT_DIR / SCENARIO).generate(), pdus, fraud_share)
    parts = {a: sum(len(m.pdus) for m in ms) for a, ms in flows.items()}
    total = max(sum(parts.values()), 1)
    conn.send({"messages": sum(len(ms) for ms in flows.values()), "submit_sm": total})
    if await asyncio.to_thread(conn.recv) != "go":
        return
    stop = asyncio.Event()
    reports = {a: TrafficReport() for a in flows}
    plays = [
        asyncio.create_task(
            play(
                EsmeConfig("127.0.0.1", port, a, PASSWORD, BindType.TRANSMITTER, name=f"bench {a}"),
                ms,
                rate=max(rate * parts[a] / total, 1.0),
                stop=stop,
                report=reports[a],
            )
        )
        for a, ms in flows.items()
        if ms
    ]

    def answer(_: str) -> dict[str, Any]:
        return {
            "t": time.monotonic(),
            "submit_sm": sum(r.pdus for r in reports.values()),
            "failed": sum(r.failed for r in reports.values()),
            "ended": [r.stopped for r in reports.values() if r.stopped],
        }

    await _serve(conn, answer)
    stop.set()
    await asyncio.gather(*plays, return_exceptions=True)
    conn.send({a: r.to_dict() for a, r in reports.items()})


@dataclass
class Child:
    """A spawned child process and the parent's end of its pipe."""

    name: str
    proc: Any
    conn: Any

    @classmethod
    def start(cls, name: str, target: Callable[..., None], *args: Any) -> Child:
        ctx = mp.get_context("spawn")
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=target, args=(theirs, *args), name=name, daemon=True)
        proc.start()
        return cls(name, proc, ours)

    def ask(self, cmd: str | None, timeout: float = 10.0) -> Any:
        if cmd is not None:
            self.conn.send(cmd)
        deadline = time.monotonic() + timeout
        while not self.conn.poll(0.2):
            if not self.proc.is_alive():
                raise BenchError(f"{self.name} stopped (exit code {self.proc.exitcode})")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: no answer in {timeout:g} s")
        return self.conn.recv()

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send("stop")
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


# ---------------------------------------------------------------------------- /proc
def _rss_mib(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _descendants(root: int) -> list[int]:
    """The processes below `root` (children, their children...), from /proc."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text().rpartition(")")[2].split()
                parent[int(entry.name)] = int(stat[1])
    found, frontier = [], [root]
    while frontier:
        kids = [p for p, pp in parent.items() if pp in frontier]
        found += kids
        frontier = kids
    return found


# ---------------------------------------------------------------------------- the daemon
def daemon_config(
    data_dir: Path, smsc_port: int, api_port: int, digest: str, window: int, exempt: frozenset[str]
) -> str:
    """The daemon's TOML: monitor mode, SQLite in `data_dir`, no MQTT, cases on, the API and
    the console on loopback with one analyst token, both binds to the simulated SMSC."""
    q = json.dumps  # a JSON string is a TOML basic string
    lines = [
        "[gateway]",
        'mode = "monitor"',
        f"data_dir = {q(str(data_dir))}",
        "",
        "[mqtt]",
        "enabled = false",
        "",
        "[detectors.velocity]",
        f"exempt_senders = {q(sorted(exempt))}",
        "",
        "[cases]",
        "enabled = true",
        "",
        "[api]",
        f'listen = "127.0.0.1:{api_port}"',
        "",
        "[[api.token]]",
        f"sha256 = {q(digest)}",
        'user = "bench-analyst"',
        'role = "analyst"',
        "",
        "[console]",
        "enabled = true",
        "",
    ]
    for gw, route in FLOWS.values():
        lines += [
            "[[smsc]]",
            f'name = "bench-{route}"',
            f'address = "127.0.0.1:{smsc_port}"',
            f"system_id = {q(gw)}",
            f"password = {q(PASSWORD)}",
            'bind = "receiver"',
            f'route = "{route}"',
            f"window = {window}",
            "",
        ]
    return "\n".join(lines)


def _start_daemon(tmp: Path, cfg_text: str) -> subprocess.Popen[bytes]:
    path = tmp / "fraudgate.toml"
    path.write_text(cfg_text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not (k.startswith("FRAUDGATE_") and "__" in k)}
    log = (tmp / "daemon.log").open("wb")
    cmd = [sys.executable, "-m", "gateway.cli", "run", "-c", str(path)]
    return subprocess.Popen(
        cmd,
        cwd=PROJECT_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _log_tail(tmp: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        text = (tmp / "daemon.log").read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])
    return ""


def _wait_ready(daemon: subprocess.Popen[bytes], smsc: Child, api: str, timeout: float) -> None:
    """Until both binds are up at the SMSC and the console answers its login page."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise BenchError(f"the daemon exited with {daemon.returncode} while starting")
        if smsc.ask("peek")["bound"]:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{api}/console/login", timeout=2) as r,
            ):
                if r.status == 200:
                    return
        time.sleep(0.2)
    raise BenchError(f"the daemon was not bound and serving the console in {timeout:g} s")


def _stop_daemon(daemon: subprocess.Popen[bytes]) -> int | None:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    return daemon.returncode


# ---------------------------------------------------------------------------- the browser
def _chromium() -> Any:
    """A headless Chromium through chromedriver (as tests/console_browser.py starts it)."""
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not browser or not driver_path:
        raise BenchError(
            "chromium and chromedriver are needed (Debian: chromium, "
            "chromium-driver; ./dev setup installs them), or add --no-browser"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1366,900",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
    ):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
    except WebDriverException as exc:
        raise BenchError(f"chromium did not start through {driver_path}: {exc.msg}") from exc
    driver.set_page_load_timeout(30)
    return driver


def _page(driver: Any) -> dict[str, Any] | None:
    state: dict[str, Any] | None = driver.execute_script(PAGE_STATE)
    return state


def _open_live(driver: Any, api: str, token: str, timeout: float = 30.0) -> None:
    """Sign in as the analyst, open the live page, wait for its first tick."""
    from selenium.webdriver.common.by import By

    driver.get(f"{api}/console/login")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "login-submit").click()
    deadline = time.monotonic() + timeout
    while driver.get_cookie("fg_session") is None:
        if time.monotonic() > deadline:
            raise BenchError("the console did not sign the analyst in")
        time.sleep(0.1)
    driver.get(f"{api}/console/")
    while not ((_page(driver) or {}).get("ticks", 0) >= 1):
        if time.monotonic() > deadline:
            raise BenchError(f"the live page showed no tick in {timeout:g} s")
        time.sleep(0.2)


# ---------------------------------------------------------------------------- a phase
@dataclass
class Rig:
    """What a phase measures: the children, the processes' ids, the browser (or None)."""

    smsc: Child
    traffic: Child
    pids: dict[str, int]
    driver: Any = None
    driver_pid: int = 0
    daemon_log: Path = field(default_factory=Path)

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {
            "t": time.monotonic(),
            "smsc": self.smsc.ask("mark"),
            "traffic": self.traffic.ask("mark"),
            "cpu": {name: (cpu_seconds(pid) or 0.0) for name, pid in self.pids.items()},
            "host": host_cpu_seconds(),  # (busy, steal)
        }
        if self.driver is not None:
            snap["cpu"]["chromedriver"] = cpu_seconds(self.driver_pid) or 0.0
            snap["chromium"] = {p: (cpu_seconds(p) or 0.0) for p in _descendants(self.driver_pid)}
            snap["page"] = _page(self.driver) or {}
        return snap


def _phase(rig: Rig, seconds: float) -> dict[str, Any]:
    """Measure for `seconds`: snapshots at both ends, the backlog (and the page) each second."""
    start = rig.snapshot()
    samples: list[dict[str, Any]] = []
    deadline = start["t"] + seconds
    while (now := time.monotonic()) < deadline:
        time.sleep(min(1.0, deadline - now))
        sample = {"backlog": rig.smsc.ask("peek")["backlog"]}
        if rig.driver is not None:
            sample.update(_page(rig.driver) or {})
        samples.append(sample)
    end = rig.snapshot()
    return _figures(rig, start, end, samples)


def _figures(
    rig: Rig, start: dict[str, Any], end: dict[str, Any], samples: list[dict[str, Any]]
) -> dict[str, Any]:
    wall = end["t"] - start["t"]
    cpu = {k: round((end["cpu"][k] - start["cpu"][k]) / wall * 100, 1) for k in end["cpu"]}
    out: dict[str, Any] = {
        "seconds": round(wall, 1),
        "offered_submit_sm_per_s": round(
            (end["traffic"]["submit_sm"] - start["traffic"]["submit_sm"]) / wall, 1
        ),
        "answered_deliver_sm_per_s": round(
            (end["smsc"]["answered"] - start["smsc"]["answered"]) / wall, 1
        ),
        "deliver_sm_p50_ms": end["smsc"]["deliver_sm_p50_ms"],
        "deliver_sm_p99_ms": end["smsc"]["deliver_sm_p99_ms"],
        "backlog_end": end["smsc"]["backlog"],
        "backlog_max": max([s["backlog"] for s in samples] + [end["smsc"]["backlog"]]),
        "daemon_rss_mib": _rss_mib(rig.pids["daemon"]),
        "cpu_pct": cpu,
    }
    ours = sum(end["cpu"][k] - start["cpu"][k] for k in end["cpu"])
    if rig.driver is not None:
        chromium = sum(v - start["chromium"].get(p, 0.0) for p, v in end["chromium"].items())
        ours += chromium
        cpu["chromium"] = round(chromium / wall * 100, 1)
        out["page"] = _page_figures(start["page"], end["page"], samples, wall)
    busy = end["host"][0] - start["host"][0]
    out["other_cpu_pct"] = round(max(busy - ours, 0.0) / wall * 100, 1)
    out["steal_pct"] = round((end["host"][1] - start["host"][1]) / wall * 100, 1)
    return out


def _page_figures(
    start: dict[str, Any], end: dict[str, Any], samples: list[dict[str, Any]], wall: float
) -> dict[str, Any]:
    lags = sorted(s["lag_s"] for s in samples if s.get("lag_s") is not None)
    return {
        "ticks_start": start.get("ticks", 0),
        "ticks_end": end.get("ticks", 0),
        "ticks_per_s": round((end.get("ticks", 0) - start.get("ticks", 0)) / wall, 2),
        "lag_p50_s": round(statistics.median(lags), 2) if lags else None,
        "lag_max_s": round(lags[-1], 2) if lags else None,
        "rows": end.get("rows", 0),
        "status": end.get("status", ""),
    }


# ---------------------------------------------------------------------------- the run
def _bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from gateway.cli.bench_pipeline import contracted_a2p_senders

    token = secrets.token_urlsafe(24)
    api_port = free_port()
    api = f"http://127.0.0.1:{api_port}"
    pdus = int(args.rate * (args.warmup + 2 * args.seconds + MARGIN_S))
    result: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        smsc = Child.start("the simulated SMSC", _smsc_child, args.window)
        stack.callback(smsc.stop)
        port = smsc.ask(None, 60)
        traffic = Child.start(
            "the traffic generator", _traffic_child, port, pdus, args.rate, args.fraud_share
        )
        stack.callback(traffic.stop)
        (tmp / "data").mkdir()
        cfg = daemon_config(
            tmp / "data",
            port,
            api_port,
            hash_token(token),
            args.window,
            contracted_a2p_senders(str(PROJECT_DIR / SCENARIO)),
        )
        daemon = _start_daemon(tmp, cfg)
        stack.callback(_stop_daemon, daemon)
        result["generated"] = traffic.ask(None, 600)
        _wait_ready(daemon, smsc, api, 120)
        traffic.conn.send("go")
        time.sleep(args.warmup)
        pids = {
            "daemon": daemon.pid,
            "smsc": smsc.proc.pid,
            "traffic": traffic.proc.pid,
            "bench": os.getpid(),
        }
        rig = Rig(smsc, traffic, pids)
        result["A"] = _phase(rig, args.seconds)
        if args.browser:
            rig.driver = _chromium()
            stack.callback(rig.driver.quit)
            rig.driver_pid = rig.driver.service.process.pid
            _open_live(rig.driver, api, token)
            result["B"] = _phase(rig, args.seconds)
        result["traffic"] = traffic.ask("stop", 120)
        result["daemon_exit"] = _stop_daemon(daemon)
    log = (tmp / "daemon.log").read_text(encoding="utf-8", errors="replace")
    result["streams_dropped"] = log.count("ticks behind; its stream ends")
    return result


def _check(args: argparse.Namespace) -> str:
    """Why the arguments cannot run, or ""."""
    if not args.rate > 0 or not args.seconds > 0 or args.warmup < 0 or args.window < 1:
        return "--rate and --seconds must be positive, --warmup >= 0, --window >= 1"
    if not 0 <= args.fraud_share <= 1:
        return "--fraud-share is a share: 0 to 1"
    if args.browser:
        import importlib.util

        if importlib.util.find_spec("selenium") is None:
            return "Selenium is not installed: pip install -e '.[test]' (or add --no-browser)"
    return ""


def run(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        print(f"fraudgate bench console: {problem}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="fraudgate-bench-console-") as name:
        tmp = Path(name)
        try:
            result = _bench(args, tmp)
        except BenchError as exc:
            tail = _log_tail(tmp)
            print(f"fraudgate bench console: {exc}", file=sys.stderr)
            if tail:
                print(f"the daemon's log ends:\n{tail}", file=sys.stderr)
            return 1
    a, b = result["A"], result.get("B")
    if b is not None:
        result["daemon_extra_cpu_points"] = round(
            b["cpu_pct"]["daemon"] - a["cpu_pct"]["daemon"], 1
        )
    info = machine_info()
    result["machine"] = info
    result["settings"] = {
        "rate": args.rate,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "fraud_share": args.fraud_share,
        "window": args.window,
        "scenario": SCENARIO,
    }
    if args.json:
        print(json.dumps(result))
    else:
        _print(result)
    return 0


ROWS: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("submit_sm offered /s (generator)", lambda p: p["offered_submit_sm_per_s"]),
    ("deliver_sm answered /s (SMSC)", lambda p: p["answered_deliver_sm_per_s"]),
    ("deliver_sm p50 / p99 ms", lambda p: f"{p['deliver_sm_p50_ms']} / {p['deliver_sm_p99_ms']}"),
    ("SMSC backlog end / max", lambda p: f"{p['backlog_end']} / {p['backlog_max']}"),
    ("daemon CPU %", lambda p: p["cpu_pct"]["daemon"]),
    ("daemon RSS MiB", lambda p: p["daemon_rss_mib"]),
    ("SMSC sim / generator CPU %", lambda p: f"{p['cpu_pct']['smsc']} / {p['cpu_pct']['traffic']}"),
    (
        "Chromium (+driver) CPU %",
        lambda p: (
            f"{p['cpu_pct']['chromium']} (+{p['cpu_pct']['chromedriver']})"
            if "chromium" in p["cpu_pct"]
            else "-"
        ),
    ),
    ("other processes / stolen CPU %", lambda p: f"{p['other_cpu_pct']} / {p['steal_pct']}"),
    (
        "page ticks start -> end (/s)",
        lambda p: (
            f"{p['page']['ticks_start']} -> {p['page']['ticks_end']} ({p['page']['ticks_per_s']})"
            if "page" in p
            else "-"
        ),
    ),
    (
        "page lag p50 / max s",
        lambda p: f"{p['page']['lag_p50_s']} / {p['page']['lag_max_s']}" if "page" in p else "-",
    ),
    ("rows in #live-rows", lambda p: p["page"]["rows"] if "page" in p else "-"),
]


def _print(result: dict[str, Any]) -> None:
    m, s = result["machine"], result["settings"]
    print(
        f"fraudgate bench console: {m['cpu_count']} CPUs ({m['cpu_model'] or 'unknown CPU'}), "
        f"{m['mem_total_bytes'] / 2**30:.1f} GiB, CPython {platform.python_version()}"
    )
    print(
        f"  {s['scenario']} at {s['rate']:g} submit_sm/s, fraud share {s['fraud_share']:g}, "
        f"{s['warmup']:g} s warm-up, {s['seconds']:g} s per phase; daemon: monitor, SQLite, "
        "no MQTT, cases on"
    )
    phases = [("A: no browser", result["A"])]
    if "B" in result:
        phases.append(("B: live page open", result["B"]))
    print(f"  {'':34}" + "".join(f"{name:>22}" for name, _ in phases))
    for label, value in ROWS:
        print(f"  {label:34}" + "".join(f"{value(p)!s:>22}" for _, p in phases))
    if "daemon_extra_cpu_points" in result:
        print(
            f"  the daemon's extra CPU with the live page open (B - A): "
            f"{result['daemon_extra_cpu_points']:+.1f} points of one core"
        )
    print(f"  live streams the daemon dropped (a watcher behind): {result['streams_dropped']}")
