"""`fraudgate bench pipeline --nodes N` / `--shared`: several gateway nodes bound to one
simulated SMSC, sharing their detector state through Redis (`[shared]`, issue 15).

Processes: the simulated SMSC (as for one node), one per gateway node (each binds both
accounts, with `[shared] redis_url` and its own `node` name), a redis-server (throwaway, on
loopback, no persistence, unless --redis-url) and mosquitto (one for all nodes, unless
--no-mqtt). The SMSC queues the messages once every account has N receivers bound and measures
from then until every message is answered: SMS/s and deliver_sm round trip p50/p99 are the
SMSC's view of all nodes together. Each node reports what it inspected, its Redis round trips
(`RedisSharedState.round_trips`), the messages it judged on its own windows alone
(`SharedBatcher.local`) and its CPU after binding.

With N > 1 the messages are single-part: an SMSC spreads the parts of one message over the
binds of its account, and a node holding some parts of a message waits out the reassembly
timeout for the rest. Without --store-url each node records to its own SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import platform
import queue
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.cli import bench_pipeline as bp
from gateway.config import PROJECT_DIR
from gateway.shared.settings import SharedSettings
from smsc.bench import cpu_seconds, free_port, machine_info


class RedisError(Exception):
    """The throwaway redis-server could not be started."""


@dataclass(frozen=True)
class Redis:
    url: str
    pid: int | None = None  # ours to measure (its CPU) and stop; None: given by --redis-url


@dataclass(frozen=True)
class Broker:
    host: str
    port: int


@dataclass(frozen=True)
class NodeSpec:
    """What one node process needs (pickled to it)."""

    name: str
    port: int  # the simulated SMSC's
    store_url: str
    data_dir: str
    window: int
    scenario: str
    broker: Broker | None
    cases: bool
    redis_url: str
    redis_timeout: float


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(url: str) -> Iterator[Redis]:
    """`url` as given, or a throwaway redis-server on a free loopback port (no snapshots, no
    append-only file), stopped on leaving."""
    if url:
        yield Redis(url)
        return
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        raise RedisError("redis-server is not installed (./dev setup installs it)")
    port = free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--logfile", ""]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if proc.poll() is not None:
                raise RedisError(f"redis-server exited with {proc.returncode}")
            if _ping(port):
                break
            time.sleep(0.05)
        else:
            raise RedisError(f"redis-server did not answer on port {port} in 5 s")
        yield Redis(f"redis://127.0.0.1:{port}/0", proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _redis_cpu(redis: Redis) -> float | None:
    return None if redis.pid is None else cpu_seconds(redis.pid)


# ---------------------------------------------------------------------------- one node
def _node_process(spec: NodeSpec, stop: Any, results: Any) -> None:
    Path(spec.data_dir).mkdir(parents=True, exist_ok=True)
    results.put(asyncio.run(_node(spec, stop)))


async def _node(spec: NodeSpec, stop: Any) -> dict[str, Any]:
    """One gateway node until `stop`: its own figures."""
    from gateway.daemon import Gateway

    cfg = bp._bench_config(spec.port, spec.store_url, Path(spec.data_dir), spec.window,
                           spec.scenario, spec.broker, spec.cases)  # fmt: skip
    if spec.redis_url:
        cfg.shared = SharedSettings(
            redis_url=spec.redis_url,
            node=spec.name,
            timeout=spec.redis_timeout,
            pseudonym_key="bench",
        )
    seen = 0
    first = last = 0.0

    def on_inspected(_: object) -> None:
        nonlocal seen, first, last
        last = time.perf_counter()
        first = first or last
        seen += 1

    gw = Gateway(cfg, on_inspected=on_inspected)
    done = asyncio.Event()
    task = asyncio.create_task(gw.run(done))
    ready = asyncio.create_task(gw.ready.wait())
    await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # it failed before binding: its exception
        raise RuntimeError("the gateway stopped before binding")
    for h in gw.handlers:
        h.measure = True
    cpu = time.process_time()
    await asyncio.to_thread(stop.wait)
    cpu = time.process_time() - cpu
    done.set()
    report = await task
    batcher = gw.shared
    trips = getattr(batcher.store, "round_trips", batcher.batches) if batcher else 0
    return {
        "node": spec.name,
        "inspected": seen,
        "committed": report.committed,
        "sms_per_s": round(seen / (last - first), 1) if last > first else 0.0,
        **bp._percentiles([x for h in gw.handlers for x in h.latencies]),
        "redis_round_trips": trips,
        "round_trips_per_message": round(trips / seen, 4) if seen else 0.0,
        "shared_messages": batcher.messages if batcher else 0,
        "judged_locally": batcher.local if batcher else 0,
        "cpu_s": round(cpu, 2),  # from bound to stopped: the SMS path, not start-up
        "cpu_us_per_message": round(cpu / seen * 1e6) if seen else 0,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


# ---------------------------------------------------------------------------- the run
def _wait(q: Any, procs: list[Any], timeout: float) -> Any:
    """The next report on `q`; ChildProcessError as soon as one of `procs` failed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return q.get(timeout=0.5)
        except queue.Empty:
            failed = [p for p in procs if p.exitcode not in (None, 0)]
            if failed:
                raise ChildProcessError(
                    f"{failed[0].name} stopped (exit code {failed[0].exitcode}) before "
                    "reporting; its traceback is above"
                ) from None
            if time.monotonic() > deadline:
                raise ChildProcessError(f"no report in {timeout:g} s") from None


def _run_processes(args: argparse.Namespace, redis: Redis, broker: Broker | None) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    port_q, results, done, stop = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
    scenario = str(PROJECT_DIR / "config/scenarios/demo.toml")
    smsc = ctx.Process(
        target=bp._smsc_process, name="the simulated SMSC",
        args=(port_q, args.count, scenario, done, args.fraud_share, args.window, 0.0, args.nodes),
    )  # fmt: skip
    smsc.start()
    nodes: list[Any] = []
    try:
        port, pdus = _wait(port_q, [smsc], 300)
        with tempfile.TemporaryDirectory(prefix="fraudgate-nodes-") as tmp:
            for i in range(args.nodes):
                name = f"node-{i + 1}"
                spec = NodeSpec(name, port, args.store_url, str(Path(tmp) / name), args.window,
                                scenario, broker, args.cases, redis.url,
                                args.redis_timeout)  # fmt: skip
                nodes.append(ctx.Process(target=_node_process, args=(spec, stop, results),
                                         name=f"gateway {name}"))  # fmt: skip
                nodes[-1].start()
            redis_cpu = _redis_cpu(redis)
            result: dict[str, Any] = _wait(port_q, [smsc, *nodes], 600)
            if redis_cpu is not None:
                result["redis_cpu_s"] = round((_redis_cpu(redis) or 0.0) - redis_cpu, 2)
            stop.set()
            per_node = [_wait(results, nodes, 120) for _ in nodes]
            for p in nodes:
                p.join(30)
    finally:
        stop.set()
        done.set()
        for p in [*nodes, smsc]:
            p.join(10)
            if p.is_alive():
                p.kill()
    result["pdus"] = pdus
    result["per_node"] = sorted(per_node, key=lambda n: str(n["node"]))
    return result


async def _with_broker(args: argparse.Namespace, redis: Redis) -> dict[str, Any]:
    async with bp.broker_for(args.mqtt) as b:
        broker = Broker(b.host, b.port) if b is not None else None
        return await asyncio.to_thread(_run_processes, args, redis, broker)


def _summary(result: dict[str, Any], args: argparse.Namespace, redis: Redis) -> None:
    nodes = result["per_node"]
    inspected = sum(n["inspected"] for n in nodes)
    trips = sum(n["redis_round_trips"] for n in nodes)
    result["nodes"] = args.nodes
    result["inspected"] = inspected
    result["redis_round_trips"] = trips
    result["round_trips_per_message"] = round(trips / inspected, 4) if inspected else 0.0
    result["judged_locally"] = sum(n["judged_locally"] for n in nodes)
    result["redis"] = (
        "throwaway redis-server on loopback (no persistence)" if redis.pid else redis.url
    )
    result["redis_timeout_s"] = args.redis_timeout
    result["fraud_share"] = args.fraud_share
    result["window"] = args.window
    result["mqtt"] = args.mqtt
    result["cases"] = args.cases
    if args.store_url:
        result["store"] = args.store_url.split(":")[0] + ", shared by all nodes"
    else:
        result["store"] = "sqlite, each node records to its own file (the SMS path is measured)"
    cpu = machine_info()["cpu_model"] or "unknown CPU"
    result["machine"] = f"{os.cpu_count()} CPUs ({cpu}), CPython {platform.python_version()}"


def _print(result: dict[str, Any]) -> None:
    n = result["nodes"]
    print(f"fraudgate bench pipeline: simulated SMSC (own process) -> {n} gateway node process"
          f"{'es' if n > 1 else ''} sharing state through Redis, all detectors")  # fmt: skip
    for key, value in result.items():
        if key != "per_node":
            print(f"  {key:24} {value}")
    cols = {"node": "node", "inspected": "inspected", "sms_per_s": "SMS/s", "p50_ms": "p50 ms",
            "p99_ms": "p99 ms", "redis_round_trips": "Redis trips",
            "round_trips_per_message": "trips/msg", "judged_locally": "local",
            "cpu_us_per_message": "CPU us/msg"}  # fmt: skip
    print("  " + " ".join(f"{label:>11}" for label in cols.values()))
    for node in result["per_node"]:
        print("  " + " ".join(f"{node[c]!s:>11}" for c in cols))


def run_nodes(args: argparse.Namespace) -> int:
    if args.nodes < 1:
        print("fraudgate bench pipeline: --nodes must be at least 1", file=sys.stderr)
        return 2
    if args.rate:
        print("fraudgate bench pipeline: --rate is for one node without --shared",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        with redis_server(args.redis_url) as redis:
            result = asyncio.run(_with_broker(args, redis))
    except (ChildProcessError, RedisError) as exc:
        print(f"fraudgate bench pipeline: {exc}", file=sys.stderr)
        return 1
    _summary(result, args, redis)
    if args.json:
        import json

        print(json.dumps(result))
    else:
        _print(result)
    return 0
