"""`fraudgate bench lab`: figures from the Osmocom lab (docs/benchmarks.md, "Osmocom lab").

1. SMS/s through osmo-msc between virtual phones, with osmo-msc delivering on its own and with
   the gateway inline (`smpp-first`, forward mode, enforcing, all detectors, SQLite): the same
   phones, the same messages, the ratio of the two. The gateway runs as its own process
   (`fraudgate run`), as in production; osmo-msc, osmo-hlr, the phones' MMEs and the gateway
   share the machine.
2. Decision to block -> phone cut off: a confirmed block through the Osmocom `SwitchControl`
   adapter (HLR CTRL cs-enabled/ps-enabled 0 + MSC VTY expire) until the attached phone's next
   SMS is refused, repeated; then the re-attach rejection.

The virtual phones' MMEs frame their uplink by length for the lab's SCTP shim (simulators/osmo/
mme.py, "Uplink framing"), so they send without pacing; `--mmes` spreads the phones over several
SGs connections (one per MME name).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.osmocom.ctrl import CtrlClient
from gateway.switch.osmocom import OsmocomSettings, OsmocomSwitch
from simulators.broker import free_port
from simulators.osmo.lab import PROJECT_DIR, Lab, LabConfig, LabError
from simulators.osmo.mme import Framing, Phone, VirtualMme, shim_framing
from simulators.osmo.provision import LabSubscriber, provision
from smsc.bench import percentile

TEXTS = (
    "Сәлем! Кешке кездесеміз бе?",
    "Мама, я задержусь, буду в 8",
    "Running late, be there in 10",
    "Купи хлеб и молоко, пожалуйста",
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--messages", type=int, default=400, help="SMS per run (default 400)")
    p.add_argument("--pairs", type=int, default=20, help="sender/receiver phone pairs")
    p.add_argument("--mmes", type=int, default=4, help="SGs connections the phones share")
    p.add_argument("--blocks", type=int, default=5, help="block -> cut-off repetitions")
    p.add_argument("--workdir", type=Path, help="default: a temporary directory")
    p.add_argument(
        "--osmo-log",
        default="info",
        choices=("debug", "info", "notice", "error"),
        help="osmo-msc's smpp/lsms/mm/sgs logging (debug shows every PDU; slower)",
    )


def run(args: argparse.Namespace) -> int:
    if args.messages < 1 or args.pairs < 1 or args.mmes < 1 or args.blocks < 0:
        print("fraudgate bench lab: counts must be positive", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_main(args))
    except LabError as e:
        print(f"fraudgate bench lab: {e}", file=sys.stderr)
        return 2


async def _main(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        base = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        print(f"# Osmocom lab benchmark: {os.cpu_count()} CPUs, {args.messages} SMS, "
              f"{args.pairs} phone pairs on {args.mmes} SGs connection(s)", flush=True)  # fmt: skip
        alone = await _throughput(base / "alone", args, inline=False)
        print(alone.line("osmo-msc alone"), flush=True)
        inline = await _throughput(base / "inline", args, inline=True)
        print(inline.line("gateway inline"), flush=True)
        if alone.rate:
            print(f"ratio inline / alone: {inline.rate / alone.rate:.2f}", flush=True)
        if args.blocks:
            print(await _block_latency(base / "block", args.blocks), flush=True)
    return 0


@dataclass
class Run:
    sent: int = 0
    acked: int = 0
    received: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # send -> arrival at the receiver
    acks: list[float] = field(default_factory=list)  # send -> RP-ACK at the sender (MO path)

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds else 0.0

    def line(self, label: str) -> str:
        return (
            f"{label:15} {self.rate:6.1f} SMS/s delivered ({self.received}/{self.sent} in "
            f"{self.seconds:.1f} s, {self.acked} RP-ACK); MO send -> RP-ACK "
            f"{_quantiles(self.acks)}; phone -> phone {_quantiles(self.latencies)}"
        )


def _quantiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"p50 {_ms(values, 0.5, 0)} p99 {_ms(values, 0.99, 0)}"


def _subscribers(pairs: int) -> list[LabSubscriber]:
    return [
        LabSubscriber(f"00101{i:010d}", f"7701{i:07d}", name=f"bench-{i}")
        for i in range(1, 2 * pairs + 1)
    ]


async def _throughput(workdir: Path, args: argparse.Namespace, *, inline: bool) -> Run:
    cfg = LabConfig(
        workdir,
        smpp_port=free_port(),
        sgs_port=free_port(),
        smpp_first=inline,
        log_level=args.osmo_log,
    )
    subs = _subscribers(args.pairs)
    async with Lab(cfg) as lab:
        async with CtrlClient(cfg.host, lab.hlr_ctrl) as ctrl:
            await provision(ctrl, subs)
        framing = shim_framing(lab.shim)
        async with (
            _gateway(workdir, cfg) if inline else _nothing(),
            _mmes(cfg, args.mmes, framing) as mmes,
        ):
            phones = [mmes[i % len(mmes)].phone(s.imsi, s.msisdn) for i, s in enumerate(subs)]
            for phone in phones:
                if not (await phone.attach()).accepted:
                    raise LabError(f"{phone.imsi} was not accepted")
            senders, receivers = phones[: args.pairs], phones[args.pairs :]
            await _warm_up(senders[0], receivers[0])
            return await _play(senders, receivers, args.messages)


async def _play(senders: Sequence[Phone], receivers: Sequence[Phone], messages: int) -> Run:
    result = Run(sent=messages)
    sent_at: dict[str, float] = {}
    share = [messages // len(senders) + (i < messages % len(senders)) for i in range(len(senders))]

    async def send(i: int) -> None:
        sender, receiver = senders[i], receivers[i]
        for n in range(share[i]):
            text = f"{TEXTS[n % len(TEXTS)]} #{i}.{n}"
            t0 = sent_at[text] = time.perf_counter()
            results = await sender.send_sms(receiver.msisdn, text, timeout=20)
            if all(r.ok for r in results):
                result.acked += 1
                result.acks.append(time.perf_counter() - t0)

    all_in = asyncio.Event()

    async def receive(phone: Phone) -> None:
        while True:
            sms = await phone.next_sms(timeout=3600)
            if sms.text in sent_at:
                result.latencies.append(time.perf_counter() - sent_at[sms.text])
                result.received += 1
                if result.received >= result.acked:
                    all_in.set()

    start = time.perf_counter()
    readers = [asyncio.create_task(receive(p)) for p in receivers]
    await asyncio.gather(*(send(i) for i in range(len(senders))))
    all_in.clear()
    if result.received < result.acked:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), 30)
    result.seconds = time.perf_counter() - start
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    return result


async def _warm_up(sender: Phone, receiver: Phone) -> None:
    """Until the path works end to end (the gateway bound, the receiver paged once)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        results = await sender.send_sms(receiver.msisdn, "warm-up", timeout=10)
        if all(r.ok for r in results):
            with contextlib.suppress(TimeoutError):
                await receiver.next_sms(10)
                return
        await asyncio.sleep(0.5)
    raise LabError("no SMS got through during the warm-up")


@contextlib.asynccontextmanager
async def _mmes(cfg: LabConfig, count: int, framing: Framing) -> AsyncIterator[list[VirtualMme]]:
    async with contextlib.AsyncExitStack() as stack:
        mmes = []
        for i in range(count):
            name = f"mmec{i + 1:02x}.mmegi0001.mme.epc.mnc001.mcc001.3gppnetwork.org"
            mme = VirtualMme(cfg.host, cfg.sgs_port, mme_name=name, framing=framing)
            mmes.append(await stack.enter_async_context(mme))
        yield mmes


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


@contextlib.asynccontextmanager
async def _gateway(workdir: Path, cfg: LabConfig) -> AsyncIterator[None]:
    """`fraudgate run -c config/lab-gateway.toml` aimed at this lab (its own process)."""
    env = {
        **os.environ,
        "FRAUDGATE_SMSC__0__ADDRESS": f"{cfg.host}:{cfg.smpp_port}",
        "FRAUDGATE_GATEWAY__DATA_DIR": str(workdir / "gateway"),
        "FRAUDGATE_MQTT__ENABLED": "false",
        "FRAUDGATE_CASES__ENABLED": "false",
    }
    argv = [sys.executable, "-m", "gateway.cli", "run", "-c",
            str(PROJECT_DIR / "config" / "lab-gateway.toml")]  # fmt: skip
    log = (workdir / "gateway.log").open("wb")
    proc = await asyncio.to_thread(
        subprocess.Popen, argv, env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        log.close()


async def _block_latency(workdir: Path, rounds: int) -> str:
    cfg = LabConfig(workdir, smpp_port=free_port(), sgs_port=free_port())
    target, other = LabSubscriber("001010000000666", "77470000666"), _subscribers(1)[0]
    calls, cutoffs, rejects = [], [], []
    async with Lab(cfg) as lab:
        async with CtrlClient(cfg.host, lab.hlr_ctrl) as ctrl:
            await provision(ctrl, [target, other])
        settings = OsmocomSettings(hlr_ctrl_host=cfg.host, msc_vty_host=cfg.host)
        async with (
            OsmocomSwitch(settings) as switch,
            VirtualMme(cfg.host, cfg.sgs_port, framing=shim_framing(lab.shim)) as mme,
        ):
            phone, peer = mme.phone(target.imsi, target.msisdn), mme.phone(other.imsi, other.msisdn)
            await peer.attach()
            for n in range(rounds):
                if not (await phone.attach()).accepted:
                    raise LabError("the phone was not accepted before the block")
                t0 = time.perf_counter()
                await switch.block(target.msisdn, reason="bench", case_id=f"bench-{n}")
                calls.append(time.perf_counter() - t0)
                results = await phone.send_sms(other.msisdn, "после блокировки", timeout=10)
                if any(r.ok for r in results):
                    raise LabError("the phone could still send after the block")
                cutoffs.append(time.perf_counter() - t0)
                t1 = time.perf_counter()
                if (await phone.attach()).accepted:
                    raise LabError("the blocked phone attached again")
                rejects.append(time.perf_counter() - t1)
                await switch.unblock(target.msisdn, reason="bench", case_id=f"bench-{n}")
    return (
        f"block -> cut off ({rounds} rounds): switch call p50 {_ms(calls)} max {_ms(calls, 1)}; "
        f"decision -> first refused SMS p50 {_ms(cutoffs)} max {_ms(cutoffs, 1)}; "
        f"re-attach rejected in p50 {_ms(rejects)}"
    )


def _ms(values: list[float], q: float = 0.5, digits: int = 1) -> str:
    return f"{percentile(sorted(values), q) * 1000:.{digits}f} ms"
