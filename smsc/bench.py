"""`fraudgate bench smpp`: round-trip throughput and latency of the project's SMPP stack.

Two processes (multiprocessing, "spawn" start method), each with its own asyncio loop, talk over
loopback TCP through the real stack: `SmppServer` on the SMSC side, `EsmeClient` (bound as a
transceiver) on the ESME side, `Link.request` to send and wait. The parent process only starts
them, sends commands over a pipe and prints what they measured.

    submit_sm  -> submit_sm_resp    the ESME process sends, the SMSC process answers at once
    deliver_sm -> deliver_sm_resp   the SMSC process sends, the ESME process answers at once

For each window W, W tasks each loop `await link.request(pdu)` (so W requests are in flight at
any time); a warm-up run at the same window precedes each measurement. Latency is the time from
`Link.request` being called to its return (response received), with `time.perf_counter`;
throughput is completed round trips divided by the wall time of the measured run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import math
import multiprocessing
import os
import platform
import resource
import socket
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from smsc.client import EsmeClient, EsmeConfig
from smsc.constants import CommandId
from smsc.link import Link
from smsc.pdu import DeliverSm, Pdu, SubmitSm
from smsc.server import SmppServer
from smsc.session import BindType, SessionConfig

TARGETS = ("smpp",)
DEFAULT_WINDOWS = (1, 50)
HOST = "127.0.0.1"
SYSTEM_ID = "bench"
PASSWORD = "bench"
# A typical SMS: alphanumeric sender, international MSISDN, GSM 7-bit text, receipt requested.
TEXT = b"Your verification code is 482913. It expires in 10 minutes. Do not share it."
CHILD_START_TIMEOUT = 60.0  # spawn + imports + bind
PHASE_TIMEOUT = 900.0  # one measured run, warm-up included


class BenchError(Exception):
    """A benchmark process failed or did not answer."""


# --------------------------------------------------------------------------------------------
# Command line


def _windows(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"windows must be integers >= 1: {text!r}")
    return list(dict.fromkeys(values))


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}: {text!r}")
        return value

    return parse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Measure round trips/s and latency of the SMPP stack over loopback, with the ESME and "
        "the SMSC in separate processes."
    )
    parser.add_argument(
        "--count",
        type=_int_at_least(1),
        default=None,
        help="round trips per measurement (default: 5000 at window 1, 50000 at larger windows)",
    )
    parser.add_argument(
        "--windows",
        type=_windows,
        default=list(DEFAULT_WINDOWS),
        help="comma-separated requests in flight to measure at (default: 1,50)",
    )
    parser.add_argument(
        "--warmup",
        type=_int_at_least(0),
        default=None,
        help="round trips before each measurement, not counted (default: count/10, >= 100)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        default=None,
        help="run cProfile in the esme and smsc processes; write DIR/esme.prof and DIR/smsc.prof",
    )


def default_count(window: int) -> int:
    return 5000 if window == 1 else 50_000


def default_warmup(count: int) -> int:
    return min(count, max(100, count // 10))


def run(args: argparse.Namespace) -> int:
    try:
        report = run_smpp(args.windows, args.count, args.warmup, profile_dir=args.profile)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


# --------------------------------------------------------------------------------------------
# Parent: start the processes, run the phases, collect figures


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` now (for a process the bench starts)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system, every thread) process `pid` has used so far (Linux /proc);
    None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_info() -> dict[str, Any]:
    mem_total = 0
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
                break
    cpu_model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_count": os.cpu_count() or 0,
        "cpu_model": cpu_model,
        "mem_total_bytes": mem_total,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def host_cpu_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine so far, all CPUs, from /proc/stat.

    Busy minus the benchmark processes' own CPU time is what other processes took while we
    measured: on a 2-CPU machine anything else running makes the figures meaningless.
    """
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / tick, steal / tick


def peak_rss() -> dict[str, int]:
    """This process's peak resident set size, in bytes.

    `peak_rss_bytes` is VmHWM from /proc/self/status: the high-water mark of this process's own
    memory since it exec'd. `resource.getrusage(RUSAGE_SELF).ru_maxrss` is also given, but Linux
    carries it over exec: a process spawned from a 60 MiB parent reports at least 60 MiB there
    whatever it uses itself. Without /proc, peak_rss_bytes falls back to ru_maxrss.
    """
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    hwm = 0
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
                break
    return {"peak_rss_bytes": hwm or ru_maxrss, "ru_maxrss_bytes": ru_maxrss}


@dataclass
class _Child:
    name: str
    process: BaseProcess
    conn: Connection[Any, Any]

    def ask(self, *message: Any, timeout: float = PHASE_TIMEOUT) -> Any:
        self.conn.send(message)
        return self.expect(timeout)

    def expect(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while not self.conn.poll(0.2):
            if not self.process.is_alive():
                raise BenchError(f"{self.name} process exited with code {self.process.exitcode}")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} process did not answer within {timeout:.0f}s")
        try:
            kind, payload = self.conn.recv()
        except EOFError:
            raise BenchError(f"{self.name} process closed its pipe") from None
        if kind == "error":
            raise BenchError(f"{self.name} process failed:\n{payload}")
        return payload

    def stop(self) -> dict[str, Any] | None:
        """Ask the process to unbind/close and report its final figures; then reap it."""
        final: dict[str, Any] | None = None
        try:
            if self.process.is_alive():
                final = self.ask("stop", timeout=30.0)
        except (BenchError, OSError):
            final = None
        finally:
            self.process.join(10.0)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(5.0)
            self.conn.close()
        return final


def _spawn(
    ctx: multiprocessing.context.SpawnContext, name: str, target: Callable[..., None], *args: Any
) -> _Child:
    parent, child = ctx.Pipe()
    process = ctx.Process(target=target, args=(child, *args), name=f"fraudgate-bench-{name}")
    process.daemon = True
    process.start()
    child.close()
    return _Child(name, process, parent)


def run_smpp(
    windows: Sequence[int],
    count: int | None = None,
    warmup: int | None = None,
    *,
    profile_dir: str | None = None,
) -> dict[str, Any]:
    """Run every phase and return the report (see `format_report` for what it holds)."""
    if profile_dir is not None:
        os.makedirs(profile_dir, exist_ok=True)
        profile_dir = os.path.abspath(profile_dir)
    max_window = max(windows)
    ctx = multiprocessing.get_context("spawn")
    children: list[_Child] = []
    results: list[dict[str, Any]] = []
    finals: dict[str, dict[str, Any] | None] = {}
    try:
        smsc = _spawn(ctx, "smsc", _smsc_process, profile_dir, max_window)
        children.append(smsc)
        smsc_ready = smsc.expect(CHILD_START_TIMEOUT)
        esme = _spawn(ctx, "esme", _esme_process, profile_dir, smsc_ready["port"], max_window)
        children.append(esme)
        esme_ready = esme.expect(CHILD_START_TIMEOUT)
        phases = [("submit_sm", esme, smsc), ("deliver_sm", smsc, esme)]
        for operation, sender, answerer in phases:
            for window in windows:
                results.append(_run_phase(sender, answerer, operation, window, count, warmup))
    finally:
        # ESME first: it unbinds cleanly while the SMSC still listens.
        for child in reversed(children):
            finals[child.name] = child.stop()
    parent = peak_rss()
    return {
        "target": "smpp",
        "transport": f"TCP loopback {HOST}, one transceiver bind",
        "event_loop": {"esme": esme_ready["event_loop"], "smsc": smsc_ready["event_loop"]},
        "machine": machine_info(),
        "results": results,
        "peak_rss_bytes": {
            "esme": (finals.get("esme") or {}).get("peak_rss_bytes", 0),
            "smsc": (finals.get("smsc") or {}).get("peak_rss_bytes", 0),
            "parent": parent["peak_rss_bytes"],
        },
        # getrusage's ru_maxrss as reported; Linux keeps it across exec, so a spawned process
        # starts from its parent's (see peak_rss).
        "ru_maxrss_bytes": {
            "esme": (finals.get("esme") or {}).get("ru_maxrss_bytes", 0),
            "smsc": (finals.get("smsc") or {}).get("ru_maxrss_bytes", 0),
            "parent": parent["ru_maxrss_bytes"],
        },
    }


def _run_phase(
    sender: _Child,
    answerer: _Child,
    operation: str,
    window: int,
    count: int | None,
    warmup: int | None,
) -> dict[str, Any]:
    """One phase at one window: warm up, measure, and add the answerer's and the host's CPU."""
    n = count if count is not None else default_count(window)
    w = warmup if warmup is not None else default_warmup(n)
    if w:
        sender.ask("warmup", operation, window, w)
    before = answerer.ask("stats")
    host_before = host_cpu_seconds()
    result: dict[str, Any] = sender.ask("measure", operation, window, n)
    host_after = host_cpu_seconds()
    after = answerer.ask("stats")
    result["warmup"] = w
    result["peer_answered"] = after["answered"] - before["answered"]
    result[f"{answerer.name}_cpu_s"] = round(after["cpu_s"] - before["cpu_s"], 3)
    busy = host_after[0] - host_before[0]
    ours = result["esme_cpu_s"] + result["smsc_cpu_s"]
    result["other_cpu_s"] = round(max(0.0, busy - ours), 2)
    result["steal_s"] = round(host_after[1] - host_before[1], 2)
    return result


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def format_report(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"fraudgate bench smpp: ESME and SMSC in separate processes, {report['transport']}",
        f"machine: {m['cpu_count']} CPUs ({m['cpu_model'] or 'unknown model'}), "
        f"{m['mem_total_bytes'] / 2**30:.1f} GiB RAM, "
        f"{m['python_implementation']} {m['python']}, {m['platform']}",
        f"event loop: esme {report['event_loop']['esme']}, smsc {report['event_loop']['smsc']}",
        "",
        f"{'round trip':<32} {'window':>6} {'count':>7} {'trips/s':>9} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'esme cpu s':>10} {'smsc cpu s':>10} {'other cpu s':>11}",
    ]
    for r in report["results"]:
        lines.append(
            f"{r['operation'] + ' -> ' + r['operation'] + '_resp':<32} {r['window']:>6} "
            f"{r['count']:>7} {r['throughput_per_s']:>9,.0f} {r['p50_ms']:>8.3f} "
            f"{r['p99_ms']:>8.3f} {r['esme_cpu_s']:>10.2f} {r['smsc_cpu_s']:>10.2f} "
            f"{r['other_cpu_s']:>11.2f}"
        )
    noisy = [r for r in report["results"] if r["other_cpu_s"] > 0.2 * r["elapsed_s"]]
    if noisy:
        lines.append(
            "warning: other processes took CPU during "
            f"{len(noisy)} measurement(s) (other cpu s); those figures are low and unreliable"
        )
    rss = report["peak_rss_bytes"]
    lines += [
        "",
        f"peak RSS: esme {_mib(rss['esme'])}, smsc {_mib(rss['smsc'])}, "
        f"parent {_mib(rss['parent'])}",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Children: one asyncio loop each


@dataclass
class _Counters:
    answered: int = 0
    links: list[Link] = field(default_factory=list)


def _stats(counters: _Counters) -> dict[str, Any]:
    return {"answered": counters.answered, "cpu_s": time.process_time()}


def _final(counters: _Counters) -> dict[str, Any]:
    return {"answered": counters.answered, **peak_rss()}


class _SmscHandler:
    """Accepts every bind; answers submit_sm with a message_id (and anything else with OK)."""

    def __init__(self, counters: _Counters) -> None:
        self.counters = counters
        self.next_id = 0

    def on_request(self, link: Link, pdu: Pdu) -> None:
        self.counters.answered += 1
        if pdu.command_id == CommandId.SUBMIT_SM:
            self.next_id += 1
            link.respond(pdu.response(message_id=f"{self.next_id:08x}"))
        else:
            link.respond(pdu.response())

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:
        link.accept_bind(pdu, "fraudgate-bench")
        self.counters.links.append(link)

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        if link in self.counters.links:
            self.counters.links.remove(link)


class _EsmeHandler:
    """Answers every deliver_sm with deliver_sm_resp OK."""

    def __init__(self, counters: _Counters) -> None:
        self.counters = counters

    def on_request(self, link: Link, pdu: Pdu) -> None:
        self.counters.answered += 1
        link.respond(pdu.response())

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:  # pragma: no cover
        raise AssertionError("an ESME is never asked to accept a bind")

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        pass


def _submit_sm() -> Pdu:
    return SubmitSm(
        source_addr_ton=5,
        source_addr="FraudGate",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="4915112345678",
        registered_delivery=1,
        short_message=TEXT,
    )


def _deliver_sm() -> Pdu:
    return DeliverSm(
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="4915112345678",
        dest_addr_ton=5,
        destination_addr="FraudGate",
        short_message=TEXT,
    )


_PDU_FACTORIES: dict[str, Callable[[], Pdu]] = {"submit_sm": _submit_sm, "deliver_sm": _deliver_sm}


async def _drive(
    link: Link, make_pdu: Callable[[], Pdu], window: int, count: int, latencies: list[float]
) -> None:
    """`count` round trips with `window` requests in flight; latencies[i] for the i-th one."""
    next_index = 0
    failures: list[str] = []
    clock = time.perf_counter

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            i = next_index
            next_index += 1
            pdu = make_pdu()
            start = clock()
            resp = await link.request(pdu)
            latencies[i] = clock() - start
            if resp.status != 0:
                failures.append(f"{resp.name} seq {resp.sequence} status 0x{resp.status:08X}")

    await asyncio.gather(*(worker() for _ in range(min(window, count))))
    if failures:
        raise BenchError(f"{len(failures)} requests failed, first: {failures[0]}")


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(len(sorted_values) * fraction))
    return sorted_values[rank - 1]


async def _measure(link: Link, operation: str, window: int, count: int) -> Any:
    make_pdu = _PDU_FACTORIES[operation]
    latencies = [0.0] * count
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    await _drive(link, make_pdu, window, count, latencies)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    latencies.sort()
    own = "esme" if operation == "submit_sm" else "smsc"
    return {
        "operation": operation,
        "window": window,
        "count": count,
        "elapsed_s": round(elapsed, 4),
        "throughput_per_s": round(count / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 4),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 4),
        "max_ms": round(latencies[-1] * 1000, 4),
        "mean_ms": round(sum(latencies) / count * 1000, 4),
        f"{own}_cpu_s": round(cpu, 3),
    }


async def _recv(conn: Connection[Any, Any]) -> tuple[Any, ...]:
    """Wait for the next command from the parent without blocking the loop."""
    if not conn.poll():
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = conn.fileno()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, on_readable)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
    message: tuple[Any, ...] = conn.recv()
    return message


async def _serve_commands(
    conn: Connection[Any, Any], counters: _Counters, link_of: Callable[[], Link]
) -> None:
    while True:
        command, *params = await _recv(conn)
        if command == "stop":
            return
        if command == "stats":
            conn.send(("ok", _stats(counters)))
        elif command == "warmup":
            operation, window, count = params
            await _drive(link_of(), _PDU_FACTORIES[operation], window, count, [0.0] * count)
            conn.send(("ok", {}))
        elif command == "measure":
            operation, window, count = params
            conn.send(("ok", await _measure(link_of(), operation, window, count)))
        else:  # pragma: no cover - the parent sends only the commands above
            raise BenchError(f"unknown command {command!r}")


def _loop_name() -> str:
    loop = type(asyncio.get_running_loop())
    return f"{loop.__module__}.{loop.__qualname__}"


def _session_config(window: int) -> SessionConfig:
    # Our window is set by the number of tasks; the session's must not be the limit.
    return SessionConfig(window=max(window, SessionConfig().window))


async def _smsc_main(conn: Connection[Any, Any], window: int) -> None:
    counters = _Counters()

    def bound_link() -> Link:
        if len(counters.links) != 1:
            raise BenchError(f"expected one bound ESME, have {len(counters.links)}")
        return counters.links[0]

    server = SmppServer(
        lambda: _SmscHandler(counters), HOST, 0, session_config=_session_config(window)
    )
    async with server:
        conn.send(("ok", {"port": server.port, "event_loop": _loop_name()}))
        await _serve_commands(conn, counters, bound_link)
    conn.send(("ok", _final(counters)))


async def _esme_main(conn: Connection[Any, Any], port: int, window: int) -> None:
    counters = _Counters()
    config = EsmeConfig(
        HOST,
        port,
        SYSTEM_ID,
        PASSWORD,
        BindType.TRANSCEIVER,
        session=_session_config(window),
        name="bench-esme",
    )
    async with EsmeClient(config, _EsmeHandler(counters)) as link:
        conn.send(("ok", {"event_loop": _loop_name()}))
        await _serve_commands(conn, counters, lambda: link)
    conn.send(("ok", _final(counters)))


def _child(
    conn: Connection[Any, Any], name: str, profile_dir: str | None, main: Callable[[], Any]
) -> None:
    profiler = cProfile.Profile() if profile_dir is not None else None
    try:
        if profiler is not None:
            profiler.enable()
        asyncio.run(main())
    except BaseException:
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc()))
        raise
    finally:
        if profiler is not None and profile_dir is not None:
            profiler.disable()
            profiler.dump_stats(os.path.join(profile_dir, f"{name}.prof"))
        conn.close()


def _smsc_process(conn: Connection[Any, Any], profile_dir: str | None, window: int) -> None:
    _child(conn, "smsc", profile_dir, lambda: _smsc_main(conn, window))


def _esme_process(
    conn: Connection[Any, Any], profile_dir: str | None, port: int, window: int
) -> None:
    _child(conn, "esme", profile_dir, lambda: _esme_main(conn, port, window))


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m smsc.bench")
    configure(_parser)
    sys.exit(run(_parser.parse_args()))
