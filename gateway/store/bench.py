"""Record throughput: `python -m gateway.store.bench URL [--total N] [--batch B] [--flagged R]`.

Writes `total` synthetic inspected SMS in batches of `batch` (one transaction each, as the
pipeline's group commit does) into a fresh schema and prints SMS per second. `--flagged` is the
share of SMS that are flagged or blocked and so carry reasons and an alert; `--complaints` the
share carrying a complaint. URL is a SQLite file URL or a PostgreSQL URL (the database should be
empty: the run adds rows).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.domain import (
    Alert,
    AlertKind,
    Complaint,
    Decision,
    Inspected,
    Reason,
    Route,
    SmsEvent,
    Span,
    Verdict,
)

from .store import Store

_TEXTS = (
    "Привет, буду через 10 минут",
    "Сәлем! Кешке хабарласамын",
    "Ваша карта заблокирована. Переведите деньги на безопасный счёт: kaspi-secure.top",
    "1414 қысқа нөмірінен SMS-код келеді, кодты айтыңыз",
    "Your parcel is waiting: post-kz.delivery/track",
)


def synthetic(
    count: int,
    *,
    flagged: float = 0.1,
    complaints: float = 0.01,
    seed: int = 1,
    start: float = 1_800_000_000.0,
) -> list[Inspected]:
    """`count` inspected SMS, a `flagged` share flagged/blocked with an alert each and a
    `complaints` share forwarded to the complaint number."""
    rng = random.Random(seed)
    items: list[Inspected] = []
    for i in range(count):
        now = start + i * 0.001
        sms = SmsEvent(
            source=f"7701{rng.randrange(10**7):07d}",
            dest=f"7705{rng.randrange(10**7):07d}",
            text=rng.choice(_TEXTS),
            data_coding=8,
            smsc="smsc-1",
            route=rng.choice(list(Route)),
            received_at=now,
            id=f"{seed:04x}{i:028x}",
        )
        alerts: list[Alert] = []
        if rng.random() < flagged:
            reasons = [
                Reason(
                    "content", "content.ru.safe_account", 0.7, "safe account", (Span(0, 5, ""),)
                ),
                Reason("url", "url.lookalike.kaspi", 0.6, "look-alike of kaspi.kz"),
            ]
            decision = Decision.BLOCK if rng.random() < 0.3 else Decision.FLAG
            verdict = Verdict(0.88, decision, reasons)
            alerts.append(
                Alert(
                    AlertKind.SMS_VERDICT,
                    {"message_id": sms.id, "decision": decision.value, "score": 0.88},
                    created_at=now,
                    id=f"a{seed:03x}{i:028x}",
                )
            )
        else:
            verdict = Verdict(0.0, Decision.ALLOW, [])
        complaint = None
        if rng.random() < complaints:
            complaint = Complaint(
                sms.source, sms.text, now, sms.id, "KASPI", id=f"c{seed:03x}{i:028x}"
            )
        items.append(Inspected(sms, verdict, alerts, complaint))
    return items


@dataclass(frozen=True)
class BenchResult:
    url: str
    total: int
    batch: int
    seconds: float
    concurrency: int = 1

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else float("inf")

    def __str__(self) -> str:
        together = f", {self.concurrency} batches at a time" if self.concurrency > 1 else ""
        return (
            f"{self.url.split(':', 1)[0]}: {self.total} SMS in batches of {self.batch}{together}: "
            f"{self.seconds:.2f} s, {self.rate:,.0f} SMS/s"
        )


async def bench_record(
    store: Store, items: Sequence[Inspected], batch: int, *, concurrency: int = 1
) -> BenchResult:
    """Time `store.record` over `items` in batches of `batch` (schema must be migrated), with
    up to `concurrency` batches in flight at once (each on its own connection)."""
    batches = [items[k : k + batch] for k in range(0, len(items), batch)]
    queue = iter(batches)

    async def worker() -> None:
        for chunk in queue:
            await store.record(chunk)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return BenchResult(store.url, len(items), batch, time.perf_counter() - started, concurrency)


async def _main(args: argparse.Namespace) -> None:
    async with await Store.open(args.url) as store:
        await store.migrate()
        items = synthetic(
            args.total, flagged=args.flagged, complaints=args.complaints, seed=args.seed
        )
        print(await bench_record(store, items, args.batch, concurrency=args.concurrency))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.store.bench", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--total", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--flagged", type=float, default=0.1)
    parser.add_argument("--complaints", type=float, default=0.01)
    parser.add_argument("--concurrency", type=int, default=1, help="batches in flight at once")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 65536)
    asyncio.run(_main(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
