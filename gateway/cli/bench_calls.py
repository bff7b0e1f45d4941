"""`fraudgate bench calls`: call records read and scored per second, memory per tracked SIM, and
a large file read in bounded memory (issue 18, docs/benchmarks.md).

Phases, in this process, on one core each (the analyzer is single-threaded by design):
  generate  `--rows` records of the generator's `bench` mix (100,000 ordinary subscribers and
            the fraud of the mix; ~1.6 million records a day of traffic) into a CSV file, or
            take `--file` as it is. Not measured: the file is the input.
  read      the reader alone (gateway.calls.reader): records parsed per second.
  score     reader + de-duplication + analyzer, as CallService runs them: records per second,
            the time each batch of 5,000 takes (p50 / p99), the process's resident memory
            every million records and at its peak (VmHWM), what the analyzer tracks.
  bytes     tracemalloc over a fresh analyzer fed the first `--trace-rows` records: bytes of
            analyzer state per tracked SIM (its IMEI's entry and the dict entries included).
  inbox     (`--inbox-rows N`, default 1,000,000) the daemon's path: the file's first N records
            through Inbox -> CallService -> SQLite (ledger checkpoints, findings, alerts).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

BATCH = 5000


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=2_000_000, help="records to generate")
    parser.add_argument("--file", type=Path, help="read this CDR file instead of generating")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--trace-rows", type=int, default=300_000)
    parser.add_argument("--inbox-rows", type=int, default=1_000_000, help="0: skip the phase")
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    parser.add_argument(
        "--bad-line", action="store_true",
        help="put one malformed line in the middle of the file: it must be reported (file and "
        "line) and every other record read",
    )  # fmt: skip


def _status(key: str) -> int:
    """A /proc/self/status figure in bytes (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def run(args: argparse.Namespace) -> int:
    from gateway.calls.analyzer import CallAnalyzer
    from gateway.calls.dedup import RecentRecords
    from gateway.calls.reader import read_records

    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="fraudgate-bench-calls-") as tmp:
        path = args.file
        if path is None:
            path = Path(tmp) / "cdr.csv"
            from simulators.cdr import CdrGenerator, write_records

            days = max(1.0, args.rows / 1_500_000 + 1)
            gen = CdrGenerator(args.seed, "bench", days=days)
            t0 = time.perf_counter()
            written = write_records(itertools.islice(gen, args.rows), path)
            took = time.perf_counter() - t0
            print(f"generate: {written:,} records in {took:.1f} s ({written / took:,.0f}/s), "
                  f"{path.stat().st_size / 2**20:,.0f} MiB")  # fmt: skip
            if args.bad_line:
                at = _break_line(path, written // 2 + 2)
                print(f"          line {at:,} replaced by a malformed one")
        size = path.stat().st_size

        t0 = time.perf_counter()
        n = bad = 0
        for _, r in read_records(path):
            n += 1
            if isinstance(r, Exception):
                bad += 1
                if bad <= 3:
                    print(f"          bad row: {r}")
        took = time.perf_counter() - t0
        print(f"read:     {n:,} records ({bad} bad) in {took:.1f} s: {n / took:,.0f} records/s, "
              f"{size / took / 2**20:,.0f} MiB/s")  # fmt: skip

        analyzer = CallAnalyzer()
        recent = RecentRecords()
        batch_times: list[float] = []
        rss: list[tuple[int, int]] = []
        found = 0
        count = 0
        t0 = time.perf_counter()
        batch_start = t0
        for _, r in read_records(path):
            if isinstance(r, Exception):
                continue
            count += 1
            if recent.fresh(r) and analyzer.one(r) is not None:
                found += 1
            if count % BATCH == 0:
                now = time.perf_counter()
                batch_times.append(now - batch_start)
                batch_start = now
                if count % 50_000 == 0:
                    analyzer.expire()
                if count % 1_000_000 == 0:
                    rss.append((count, _status("VmRSS")))
        took = time.perf_counter() - t0
        batch_times.sort()
        p50 = statistics.median(batch_times) * 1000 if batch_times else 0.0
        p99 = batch_times[int(0.99 * (len(batch_times) - 1))] * 1000 if batch_times else 0.0
        print(f"score:    {count:,} records read, de-duplicated and scored in {took:.1f} s: "
              f"{count / took:,.0f} records/s; a batch of {BATCH:,}: p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms; {found} findings {dict(analyzer.stats.findings)}")  # fmt: skip
        tracked = analyzer.tracked
        print(f"          tracked {tracked}; de-duplication holds {len(recent):,} keys")
        print("          resident memory by records read: "
              + ", ".join(f"{c / 1e6:.0f}M {_mib(m)}" for c, m in rss)
              + f"; peak {_mib(_status('VmHWM'))}")  # fmt: skip
        del analyzer, recent

        per_sim, sims, imeis = _bytes_per_sim(path, args.trace_rows)
        print(f"bytes:    {per_sim:,.0f} bytes of analyzer state per tracked SIM ({sims:,} SIMs, "
              f"{imeis:,} IMEIs after {args.trace_rows:,} records)")  # fmt: skip

        if args.inbox_rows:
            asyncio.run(_inbox(path, args.inbox_rows, Path(tmp)))
        if args.keep and args.file is None:
            kept = Path.cwd() / "bench-cdr.csv"
            path.replace(kept)
            print(f"kept {kept}")
    return 0


def _break_line(path: Path, line: int) -> int:
    """Replace `line` (1-based, the header is line 1) with a malformed row, in place."""
    broken = path.with_name(path.name + ".broken")
    with path.open("rb") as src, broken.open("wb") as dst:
        for i, raw in enumerate(src, 1):
            dst.write(b"MOC,2026-13-45T99:99:99Z,not-a-duration,,,,\n" if i == line else raw)
    broken.replace(path)
    return line


def _bytes_per_sim(path: Path, rows: int) -> tuple[float, int, int]:
    from gateway.calls.analyzer import CallAnalyzer
    from gateway.calls.reader import read_records

    records = []
    for _, r in read_records(path):
        if not isinstance(r, Exception):
            records.append(r)
        if len(records) >= rows:
            break
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    analyzer = CallAnalyzer()
    for r in records:
        analyzer.one(r)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    sims = len(analyzer.sims)
    return used / max(sims, 1), sims, len(analyzer.imeis)


async def _inbox(path: Path, rows: int, tmp: Path) -> None:
    from gateway.calls.inbox import Inbox
    from gateway.calls.ledger import Ledger
    from gateway.calls.repository import CallFindings
    from gateway.calls.service import CallService
    from gateway.calls.settings import CallsSettings
    from gateway.store import Store

    folder = tmp / "inbox"
    folder.mkdir()
    with path.open("rb") as src, (folder / "cdr.csv").open("wb") as dst:
        dst.writelines(itertools.islice(src, rows + 1))  # the header and `rows` lines
    store = await Store.open(f"sqlite+aiosqlite:///{tmp / 'bench.db'}")
    try:
        await store.migrate()
        service = CallService(CallsSettings(), CallFindings(store))
        inbox = Inbox(folder, service, Ledger(store), interval=0.01)
        t0 = time.perf_counter()
        await inbox.scan()  # sees the file
        await inbox.scan()  # takes it (unchanged since the previous scan)
        took = time.perf_counter() - t0
        service.close()
        print(f"inbox:    {inbox.records:,} records through Inbox -> CallService -> SQLite in "
              f"{took:.1f} s: {inbox.records / took:,.0f} records/s; findings "
              f"{dict(service.found)}")  # fmt: skip
    finally:
        await store.close()
