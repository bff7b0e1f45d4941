"""`fraudgate bench proxy`: submit_sm round trips/s through the A2P proxy (issue 17) with every
detector, and the latency it adds against the same load bound directly to the SMSC.

Processes, all on this machine:
  the simulated SMSC (its own process): account `fraudgate` for the proxy's upstream bind,
    account `direct` for the baseline, every message routed to the account `phones`. By
    default nobody binds `phones`: the SMSC stores what it accepts (store and forward), so it
    delivers nothing and sends no receipts, and stays cheap. `--handsets` binds a receiver ESME
    as `phones` inside the SMSC's process: every message is then delivered and its receipt goes
    back (through the proxy to the aggregator, or to the direct bind).
  the gateway daemon as deployed (`fraudgate run -c` a configuration written here): `[proxy]`
    on a free loopback port with one aggregator account (window `--window`) and one upstream
    bind, no `[[smsc]]`, monitor mode, every detector as configured by default, SQLite in a
    temporary directory (or `--db-url`), MQTT and the case workflow off.
  the load generator (its own process): the messages of config/scenarios/demo.toml
    (`--fraud-share` of them fraud, long ones as their parts), each to its own destination
    number, made before the clock starts. It binds as a transceiver and keeps `--window`
    submit_sm in flight; latency is `time.perf_counter()` around each `Link.request`.

The baseline runs first: the load generator bound to the SMSC as `direct`. Then the daemon
starts and the same submit_sm go through the proxy as the aggregator. Each phase sends a warm-up
first (not measured). After the proxy phase the bench waits until the SMSC has every submit
(the proxy answers the aggregator before it forwards) and checks each arrived exactly once
(SMSC messages from `fraudgate` by destination, text and TLVs). CPU seconds per process are
from /proc (utime + stime) from the start of the measured run to the last submit at the SMSC;
the daemon's peak RSS is VmHWM from /proc. `--profile DIR` runs the daemon under cProfile
(DIR/daemon.prof; `python -m pstats`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import PROJECT_DIR
from smsc.bench import cpu_seconds, free_port, host_cpu_seconds, machine_info, percentile

SCENARIO = "config/scenarios/demo.toml"
AGGREGATOR, UPSTREAM, DIRECT, HANDSETS = "aggr", "fraudgate", "direct", "phones"
PASSWORD = "secret"
TARGET_TRIPS, TARGET_ADDED_P99_MS = 5000.0, 5.0  # issue 17


class BenchError(Exception):
    """The bench could not run: one line for the user."""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--count", type=int, default=20000, help="submit_sm measured (default 20000)")
    p.add_argument(
        "--window",
        type=int,
        default=50,
        help="submit_sm in flight (default 50): the load generator's and the account's window",
    )
    p.add_argument(
        "--warmup", type=int, default=-1, help="submit_sm before each phase (default count/10, "
        "at most 1000)",
    )  # fmt: skip
    p.add_argument(
        "--db-url", default="", help="the daemon's database (default: SQLite in a temporary "
        "directory), e.g. postgresql://user:pw@127.0.0.1/fraudgate",
    )  # fmt: skip
    p.add_argument("--fraud-share", type=float, default=0.05, help="share of fraud (default 0.05)")
    p.add_argument(
        "--handsets", action="store_true",
        help="bind a receiver at the SMSC: messages are delivered and receipts come back",
    )  # fmt: skip
    p.add_argument("--profile", metavar="DIR", default="", help="cProfile the daemon")
    p.add_argument("--json", action="store_true", help="print one JSON object")


# ---------------------------------------------------------------------------- the children
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
        theirs.close()
        return cls(name, proc, ours)

    def ask(self, *message: Any, timeout: float = 30.0) -> Any:
        if message:
            self.conn.send(message)
        deadline = time.monotonic() + timeout
        while not self.conn.poll(0.1):
            if not self.proc.is_alive():
                raise BenchError(f"{self.name} stopped (exit code {self.proc.exitcode})")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: no answer in {timeout:g} s")
        try:
            kind, payload = self.conn.recv()
        except EOFError:
            raise BenchError(
                f"{self.name} closed its pipe (exit code {self.proc.exitcode})"
            ) from None
        if kind == "error":
            raise BenchError(f"{self.name} failed: {payload}")
        return payload

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(("stop",))
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


async def _commands(conn: Any, answer: Callable[..., Any]) -> None:
    """Answer the parent's commands until "stop" (or the pipe closes)."""
    while True:
        try:
            command, *params = await asyncio.to_thread(conn.recv)
        except EOFError:
            return
        if command == "stop":
            return
        try:
            result = answer(command, *params)
            if asyncio.iscoroutine(result):
                result = await result
            conn.send(("ok", result))
        except Exception as exc:  # the parent reports it
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class _Answering:
    """An ESME's handler: every deliver_sm (a receipt, mostly) answered OK and counted."""

    def __init__(self) -> None:
        self.received = 0

    def on_bind(self, link: Any, pdu: Any, bind_type: Any) -> None:  # pragma: no cover
        raise AssertionError("an ESME is never asked to accept a bind")

    def on_request(self, link: Any, pdu: Any) -> None:
        self.received += 1
        link.respond(pdu.response())

    def on_closed(self, link: Any, reason: str, clean: bool) -> None:
        pass


def _smsc_child(conn: Any, handsets: bool) -> None:
    asyncio.run(_smsc_main(conn, handsets))


async def _smsc_main(conn: Any, handsets: bool) -> None:
    from smsc.client import EsmeClient, EsmeConfig
    from smsc.session import BindType
    from smsc.simulator import Account, Route, SimulatedSmsc, SmscConfig

    cfg = SmscConfig(
        port=0,
        accounts=[Account(a, PASSWORD) for a in (UPSTREAM, DIRECT, HANDSETS)],
        routes=[Route("", HANDSETS)],
    )
    async with SimulatedSmsc(cfg) as smsc, contextlib.AsyncExitStack() as stack:
        smsc.finished_retention = 10**7  # every message stays countable
        phones = _Answering()
        if handsets:
            esme = EsmeConfig("127.0.0.1", smsc.port, HANDSETS, PASSWORD, BindType.RECEIVER)
            await stack.enter_async_context(EsmeClient(esme, phones))
        conn.send(("ok", smsc.port))

        def answer(command: str, *params: Any) -> Any:
            if command == "bound":
                return bool(smsc.accounts[params[0]].links)
            if command == "arrivals":
                return _arrivals(smsc.messages.values(), params[0], phones.received)
            raise ValueError(f"unknown command {command!r}")

        await _commands(conn, answer)


def _arrivals(messages: Any, origin: str, delivered: int) -> dict[str, Any]:
    """What the SMSC accepted from `origin`: how many, how many distinct (destination, text,
    TLVs) and when the first and last came (wall clock)."""
    mine = [m for m in messages if m.origin == origin]
    distinct = {(m.dest, m.short_message, tuple((t.tag, t.value) for t in m.tlvs)) for m in mine}
    times = [m.submitted_at for m in mine]
    return {
        "count": len(mine),
        "distinct": len(distinct),
        "first": min(times, default=0.0),
        "last": max(times, default=0.0),
        "delivered_to_handsets": delivered,
    }


def _load_child(conn: Any, count: int, warmup: int, fraud_share: float) -> None:
    asyncio.run(_load_main(conn, count, warmup, fraud_share))


def _submits(count: int, warmup: int, fraud_share: float) -> tuple[list[Any], list[Any], int]:
    """(warm-up submit_sm, measured submit_sm, measured messages): whole messages of the
    scenario, each to its own destination number, until each list has its count."""
    from gateway.cli.bench_pipeline import _mix

    msgs = iter(_mix(str(PROJECT_DIR / SCENARIO), count + warmup, fraud_share))
    number = 0

    def take(n: int) -> tuple[list[Any], int]:
        nonlocal number
        pdus: list[Any] = []
        taken = 0
        while len(pdus) < n:
            m = next(msgs, None)
            if m is None:
                break
            number += 1
            for pdu in m.pdus:
                pdu.destination_addr = f"7700{number:07d}"
            pdus += m.pdus
            taken += 1
        return pdus, taken

    warm, _ = take(warmup)
    measured, messages = take(count)
    return warm, measured, messages


async def _load_main(conn: Any, count: int, warmup: int, fraud_share: float) -> None:
    warm, measured, messages = _submits(count, warmup, fraud_share)
    conn.send(("ok", {"submit_sm": len(measured), "messages": messages, "warmup": len(warm)}))

    async def answer(command: str, *params: Any) -> Any:
        if command != "run":
            raise ValueError(f"unknown command {command!r}")
        return await _phase(*params, warm=warm, measured=measured)

    await _commands(conn, answer)


async def _phase(
    port: int, system_id: str, window: int, *, warm: list[Any], measured: list[Any]
) -> dict[str, Any]:
    """Bind as `system_id` on `port`, send the warm-up, then measure `measured`."""
    from smsc.client import EsmeClient, EsmeConfig
    from smsc.session import BindType, SessionConfig

    session = SessionConfig(window=max(window, 50), response_timeout=30.0)
    cfg = EsmeConfig("127.0.0.1", port, system_id, PASSWORD, BindType.TRANSCEIVER,
                     session=session, name=f"load {system_id}")  # fmt: skip
    handler = _Answering()
    statuses: collections.Counter[int] = collections.Counter()
    async with EsmeClient(cfg, handler) as link:
        await _drive(link, warm, window, [0.0] * len(warm), collections.Counter())
        latencies = [0.0] * len(measured)
        wall, cpu, t0 = time.time(), time.process_time(), time.perf_counter()
        await _drive(link, measured, window, latencies, statuses)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu
        ended = time.time()
        await asyncio.sleep(0.2)  # late receipts are answered, not cut off
    latencies.sort()
    n = max(len(latencies), 1)
    return {
        "submit_sm": len(measured),
        "elapsed_s": round(elapsed, 3),
        "trips_per_s": round(len(measured) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "max_ms": round(latencies[-1] * 1000, 3),
        "mean_ms": round(sum(latencies) / n * 1000, 3),
        "refused": {_status(s): c for s, c in sorted(statuses.items()) if s},
        "deliver_sm_received": handler.received,
        "load_cpu_s": round(cpu, 2),
        "started": wall,
        "ended": ended,
    }


def _status(status: int) -> str:
    return "no answer" if status < 0 else f"0x{status:08X}"


async def _drive(
    link: Any, pdus: list[Any], window: int, latencies: list[float], statuses: Any
) -> None:
    """Every PDU once with `window` requests in flight; latencies[i] for the i-th one."""
    from smsc.link import RequestFailedError

    next_index = 0
    clock = time.perf_counter

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(pdus):
            i = next_index
            next_index += 1
            start = clock()
            try:
                resp = await link.request(pdus[i])
            except RequestFailedError:
                statuses[-1] += 1
                continue
            latencies[i] = clock() - start
            statuses[resp.status] += 1

    await asyncio.gather(*(worker() for _ in range(max(1, min(window, len(pdus))))))


# ---------------------------------------------------------------------------- the daemon
def daemon_config(
    data_dir: Path, db_url: str, smsc_port: int, proxy_port: int, window: int, exempt: Any
) -> str:
    """The daemon's TOML: the proxy alone (no [[smsc]]), monitor mode, every detector as by
    default, no MQTT, no cases."""
    q = json.dumps  # a JSON string is a TOML basic string
    lines = [
        "[gateway]", 'mode = "monitor"', f"data_dir = {q(str(data_dir))}", "",
        "[store]", f"url = {q(db_url)}", "",
        "[mqtt]", "enabled = false", "",
        "[cases]", "enabled = false", "",
        "[detectors.velocity]", f"exempt_senders = {q(sorted(exempt))}", "",
        "[proxy]", "enabled = true", f'listen = "127.0.0.1:{proxy_port}"', "",
        "[[proxy.account]]", f"system_id = {q(AGGREGATOR)}", f"password = {q(PASSWORD)}",
        f"window = {window}", "",
        "[[proxy.upstream]]", f'address = "127.0.0.1:{smsc_port}"', f"system_id = {q(UPSTREAM)}",
        f"password = {q(PASSWORD)}", f"window = {window}", 'name = "smsc"', "",
    ]  # fmt: skip
    return "\n".join(lines)


def _start_daemon(tmp: Path, cfg_text: str, profile: str) -> subprocess.Popen[bytes]:
    path = tmp / "fraudgate.toml"
    path.write_text(cfg_text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not (k.startswith("FRAUDGATE_") and "__" in k)}
    prof = ["-m", "cProfile", "-o", str(Path(profile).resolve() / "daemon.prof")] if profile else []
    cmd = [sys.executable, *prof, "-m", "gateway.cli", "run", "-c", str(path)]
    with (tmp / "daemon.log").open("wb") as log:
        return subprocess.Popen(cmd, cwd=PROJECT_DIR, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


def _log_tail(tmp: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        text = (tmp / "daemon.log").read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])
    return ""


def _wait_ready(daemon: subprocess.Popen[bytes], smsc: Child, tmp: Path, timeout: float) -> None:
    """Until the proxy listens and its upstream bind is up at the SMSC."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise BenchError(f"the daemon exited with {daemon.returncode} while starting")
        log = (tmp / "daemon.log").read_text(encoding="utf-8", errors="replace")
        if "proxy listening on" in log and smsc.ask("bound", UPSTREAM):
            return
        time.sleep(0.2)
    raise BenchError(f"the proxy was not listening and bound upstream in {timeout:g} s")


def _stop_daemon(daemon: subprocess.Popen[bytes]) -> int | None:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(90)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    return daemon.returncode


def _memory_mib(pid: int) -> dict[str, float]:
    """VmHWM (peak) and VmRSS of process `pid`, MiB."""
    out = {"peak_rss_mib": 0.0, "rss_mib": 0.0}
    keys = {"VmHWM:": "peak_rss_mib", "VmRSS:": "rss_mib"}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name = line.split(maxsplit=1)[0] if line else ""
            if name in keys:
                out[keys[name]] = round(int(line.split()[1]) / 1024, 1)
    return out


def _wait_idle(pid: int, timeout: float = 15.0) -> None:
    """Until process `pid` used under 2 % of a core for half a second (bounded)."""
    deadline = time.monotonic() + timeout
    last = cpu_seconds(pid) or 0.0
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid) or 0.0
        if now - last < 0.01:
            return
        last = now


def _journal_states(data_dir: Path) -> dict[str, int]:
    """proxy_submits rows by state, read from the daemon's SQLite file after it stopped."""
    import sqlite3

    path = data_dir / "fraudgate.db"
    if not path.exists():
        return {}
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT state, count(*) FROM proxy_submits GROUP BY state").fetchall()
    return {str(state): int(n) for state, n in rows}


# ---------------------------------------------------------------------------- the run
@dataclass
class Rig:
    smsc: Child
    load: Child
    pids: dict[str, int]

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) or 0.0 for name, pid in self.pids.items()}


def _measure(rig: Rig, port: int, account: str, window: int, expected: int) -> dict[str, Any]:
    """One phase: the load through `port` as `account`, then until the SMSC has `expected`
    submits from its side (or nothing new came for 15 s). CPU from the measured run's start:
    the load generator's own figure for its run, /proc for the others."""
    origin = DIRECT if account == DIRECT else UPSTREAM
    before_cpu, before_host = rig.cpu(), host_cpu_seconds()
    result: dict[str, Any] = rig.load.ask("run", port, account, window, timeout=1800)
    arrived = rig.smsc.ask("arrivals", origin)
    seen, still = arrived["count"], time.monotonic()
    while arrived["count"] < expected and time.monotonic() - still < 15:
        time.sleep(0.2)
        arrived = rig.smsc.ask("arrivals", origin)
        if arrived["count"] != seen:
            seen, still = arrived["count"], time.monotonic()
    after_cpu, after_host = rig.cpu(), host_cpu_seconds()
    cpu = {k: round(after_cpu[k] - before_cpu[k], 2) for k in after_cpu}
    result["cpu_s"] = cpu
    busy = after_host[0] - before_host[0]
    result["other_cpu_s"] = round(max(0.0, busy - sum(cpu.values())), 2)
    result["steal_s"] = round(after_host[1] - before_host[1], 2)
    result["at_smsc"] = arrived
    last = arrived["last"]
    result["forward_tail_s"] = round(max(0.0, last - result["ended"]), 3)
    result["at_smsc_per_s"] = round(result["submit_sm"] / max(last - result["started"], 1e-9), 1)
    return result


def _bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from gateway.cli.bench_pipeline import contracted_a2p_senders

    result: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        smsc = Child.start("the simulated SMSC", _smsc_child, args.handsets)
        stack.callback(smsc.stop)
        port = smsc.ask(timeout=60)
        load = Child.start("the load generator", _load_child, args.count, args.warmup,
                           args.fraud_share)  # fmt: skip
        stack.callback(load.stop)
        result["generated"] = generated = load.ask(timeout=600)
        expected = generated["warmup"] + generated["submit_sm"]
        rig = Rig(smsc, load, {"smsc": smsc.proc.pid, "load": load.proc.pid})
        result["direct"] = _measure(rig, port, DIRECT, args.window, expected)
        (tmp / "data").mkdir()
        proxy_port = free_port()
        exempt = contracted_a2p_senders(str(PROJECT_DIR / SCENARIO))
        cfg = daemon_config(tmp / "data", args.db_url, port, proxy_port, args.window, exempt)
        daemon = _start_daemon(tmp, cfg, args.profile)
        stack.callback(_stop_daemon, daemon)
        _wait_ready(daemon, smsc, tmp, 120)
        rig.pids["daemon"] = daemon.pid
        result["proxy"] = _measure(rig, proxy_port, AGGREGATOR, args.window, expected)
        _wait_idle(daemon.pid)  # its journal written: a stop now loses nothing (see docs)
        result["daemon_memory"] = _memory_mib(daemon.pid)
        result["daemon_exit"] = _stop_daemon(daemon)
    result["forwarded"] = _forwarded(result["proxy"], expected)
    result["journal"] = _journal_states(tmp / "data") if not args.db_url else {}
    return result


def _forwarded(proxy: dict[str, Any], expected: int) -> dict[str, Any]:
    """Every submit the aggregator sent (warm-up included), at the SMSC exactly once?"""
    at = proxy["at_smsc"]
    return {
        "sent": expected,
        "at_smsc": at["count"],
        "distinct_at_smsc": at["distinct"],
        "exactly_once": at["count"] == at["distinct"] == expected and not proxy["refused"],
    }


def _summary(result: dict[str, Any], args: argparse.Namespace) -> None:
    p, d = result["proxy"], result["direct"]
    result["added_p50_ms"] = round(p["p50_ms"] - d["p50_ms"], 3)
    result["added_p99_ms"] = round(p["p99_ms"] - d["p99_ms"], 3)
    result["daemon_us_per_submit"] = round(p["cpu_s"]["daemon"] / p["submit_sm"] * 1e6, 1)
    result["targets"] = {
        "trips_per_s": TARGET_TRIPS,
        "added_p99_ms": TARGET_ADDED_P99_MS,
        "met": p["trips_per_s"] >= TARGET_TRIPS and result["added_p99_ms"] <= TARGET_ADDED_P99_MS,
    }
    result["machine"] = machine_info()
    result["settings"] = {
        "count": args.count, "warmup": result["generated"]["warmup"], "window": args.window,
        "fraud_share": args.fraud_share, "handsets": args.handsets, "scenario": SCENARIO,
        "store": args.db_url.split(":")[0] if args.db_url else "sqlite",
        "profile": str(Path(args.profile) / "daemon.prof") if args.profile else "",
    }  # fmt: skip


def _check(args: argparse.Namespace) -> str:
    if args.count < 1 or args.window < 1:
        return "--count and --window must be >= 1"
    if not 0 <= args.fraud_share <= 1:
        return "--fraud-share is a share: 0 to 1"
    return ""


def run(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        print(f"fraudgate bench proxy: {problem}", file=sys.stderr)
        return 2
    if args.warmup < 0:
        args.warmup = min(1000, args.count // 10)
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fraudgate-bench-proxy-") as name:
        tmp = Path(name)
        try:
            result = _bench(args, tmp)
        except BenchError as exc:
            print(f"fraudgate bench proxy: {exc}", file=sys.stderr)
            tail = _log_tail(tmp)
            if tail:
                print(f"the daemon's log ends:\n{tail}", file=sys.stderr)
            return 1
    _summary(result, args)
    if args.json:
        print(json.dumps(result))
    else:
        print("\n".join(_lines(result)))
    if not result["forwarded"]["exactly_once"]:
        print(f"fraudgate bench proxy: not every submit reached the SMSC exactly once: "
              f"{result['forwarded']}", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _lines(r: dict[str, Any]) -> Iterator[str]:
    m, s, p, d = r["machine"], r["settings"], r["proxy"], r["direct"]
    cpu = m["cpu_model"] or "unknown CPU"
    yield (f"fraudgate bench proxy: {m['cpu_count']} CPUs ({cpu}), "
           f"{m['mem_total_bytes'] / 2**30:.1f} GiB, "
           f"{m['python_implementation']} {m['python']}")  # fmt: skip
    yield (f"  {r['generated']['submit_sm']} submit_sm ({r['generated']['messages']} messages of "
           f"{s['scenario']}, fraud share {s['fraud_share']:g}) after {s['warmup']} warm-up, "
           f"window {s['window']}; daemon: monitor, {s['store']}, no MQTT, no cases; "
           f"handsets {'bound' if s['handsets'] else 'none (stored at the SMSC)'}")  # fmt: skip
    rows: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("round trips /s", lambda x: f"{x['trips_per_s']:,.0f}"),
        ("p50 / p99 / max ms", lambda x: f"{x['p50_ms']} / {x['p99_ms']} / {x['max_ms']}"),
        ("at the SMSC /s (to the last)", lambda x: f"{x['at_smsc_per_s']:,.0f}"),
        ("load generator CPU s", lambda x: x["cpu_s"]["load"]),
        ("SMSC CPU s", lambda x: x["cpu_s"]["smsc"]),
        ("daemon CPU s", lambda x: x["cpu_s"].get("daemon", "-")),
        ("other / stolen CPU s", lambda x: f"{x['other_cpu_s']} / {x['steal_s']}"),
        ("refused (status: count)", lambda x: x["refused"] or "none"),
        ("deliver_sm received (receipts)", lambda x: x["deliver_sm_received"]),
    ]
    yield f"  {'':30}{'direct':>28}{'through the proxy':>28}"
    for label, value in rows:
        yield f"  {label:30}{value(d)!s:>28}{value(p)!s:>28}"
    yield f"  added p50 / p99 ms: {r['added_p50_ms']} / {r['added_p99_ms']}"
    f = r["forwarded"]
    yield (f"  forwarded: {f['at_smsc']} at the SMSC of {f['sent']} sent ({f['distinct_at_smsc']} "
           f"distinct): {'exactly once' if f['exactly_once'] else 'NOT exactly once'}; "
           f"last arrived {p['forward_tail_s']} s after the last answer")  # fmt: skip
    mem = r["daemon_memory"]
    yield (
        f"  daemon: {r['daemon_us_per_submit']} µs CPU per submit, peak RSS "
        f"{mem['peak_rss_mib']} MiB, exit {r['daemon_exit']}; journal {r['journal'] or '-'}"
    )
    left = {k: v for k, v in r["journal"].items() if k in ("held", "pending", "sending")}
    if left:
        yield (f"  warning: the journal kept {left} after a clean stop although every submit is "
               "at the SMSC: a restart would send those again")  # fmt: skip
    t = r["targets"]
    yield (
        f"  target ≥ {t['trips_per_s']:,.0f}/s, added p99 ≤ {t['added_p99_ms']:g} ms: "
        f"{'met' if t['met'] else 'not met'}"
    )
    if s["profile"]:
        yield f"  profile: {s['profile']} (python -m pstats)"


__all__ = ["configure", "daemon_config", "run"]
