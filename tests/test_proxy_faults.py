"""The A2P proxy under faults (docs/proxy.md "Nothing lost"): the gateway SIGKILLed mid-stream,
the link to the SMSC cut, the aggregator's link cut, the SMSC down. What the aggregator sends is
counted at the SMSC: every message exactly once (0 lost, 0 sent twice), whatever was answered
to the aggregator, which behaves as a real one: it resubmits what it got no answer for, and
what it was refused for now (ESME_RTHROTTLED, ESME_RMSGQFUL)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from fixtures_services import free_port
from waiting import eventually

from gateway.proxy.journal import Journal
from gateway.store import Store
from gateway.store.models_proxy import proxy_submits
from simulators.faultproxy import FaultProxy
from smsc.client import EsmeClient, EsmeConfig
from smsc.constants import Status
from smsc.link import Link
from smsc.pdu import SmppError, SubmitSm
from smsc.receipt import receipt_in
from smsc.session import BindType, SessionConfig
from smsc.simulator import Account, Faults, SimulatedSmsc, SmscConfig
from smsc.simulator import Route as SmscRoute
from smsc.text import split_for_sms
from tests.helpers.proxy_lab import AGGR, PASSWORD, ProxyLab, Receiver, proxy_lab

ROOT = Path(__file__).resolve().parent.parent
FRAUDGATE = Path(sys.executable).parent / "fraudgate"
SENDER = "SHOP"
AGAIN = (Status.ESME_RTHROTTLED, Status.ESME_RMSGQFUL)  # "later": a real aggregator resubmits


def text_of(i: int) -> str:
    return f"Заказ №{i} принят. Код получения {i * 7919 % 10000:04d}. Спасибо, что вы с нами!"


def body_of(i: int) -> bytes:
    _, bodies = split_for_sms(text_of(i), ref=1)
    (body,) = bodies
    return body


def submit_of(i: int, dest: str) -> SubmitSm:
    coding, bodies = split_for_sms(text_of(i), ref=1)
    return SubmitSm(
        source_addr_ton=5, source_addr_npi=0, source_addr=SENDER,
        dest_addr_ton=1, dest_addr_npi=1, destination_addr=dest,
        registered_delivery=1, data_coding=coding, short_message=bodies[0],
    )  # fmt: skip


@dataclass
class Stream:
    """An aggregator's bookkeeping: the messages it has to send, the ROK answers it got (with
    fraudgate's id), how often it sent each."""

    n: int
    dest: Callable[[int], str] = lambda i: f"7701{i:07d}"
    acked: dict[int, str] = field(default_factory=dict)
    sent: Counter[int] = field(default_factory=Counter)
    refused: Counter[int] = field(default_factory=Counter)  # answers by status, ROK aside
    binds: int = 0

    @property
    def resubmitted(self) -> int:
        return sum(c - 1 for c in self.sent.values())

    async def send(self, link: Link, indices: list[int]) -> list[int]:
        """Submit `indices` on `link` (its window bounds what is unanswered); the ones without
        a ROK (no answer, or a refusal for now) are returned, to send again."""

        async def one(i: int) -> int | None:
            self.sent[i] += 1
            try:
                resp = await link.request(submit_of(i, self.dest(i)), timeout=15)
            except (SmppError, TimeoutError):
                return i
            if resp.status == Status.ESME_ROK:
                mid = str(resp.message_id)  # type: ignore[attr-defined]
                assert self.acked.setdefault(i, mid) == mid, f"#{i}: answered two ids"
                return None
            self.refused[resp.status] += 1
            assert resp.status in AGAIN, f"#{i}: refused 0x{resp.status:02X}"
            return i

        left = await asyncio.gather(*(one(i) for i in indices))
        return sorted(i for i in left if i is not None)


async def bind(port: int, handler: Receiver, window: int, bind_type: BindType = BindType.TRANSCEIVER
               ) -> EsmeClient:  # fmt: skip
    client = EsmeClient(
        EsmeConfig("127.0.0.1", port, AGGR, PASSWORD, bind_type,
                   session=SessionConfig(window=window, response_timeout=10), connect_timeout=2),
        handler,
    )  # fmt: skip
    await client.__aenter__()
    return client


async def aggregate(port: int, stream: Stream, *, window: int = 30, timeout: float = 60) -> None:
    """Send every message of `stream` until each was answered ROK: (re)bind, submit what is
    left, again after a cut or a refusal for now."""
    todo = list(range(stream.n))
    deadline = time.monotonic() + timeout
    while todo:
        assert time.monotonic() < deadline, f"{len(todo)} never accepted"
        try:
            client = await bind(port, Receiver(), window)
        except (OSError, SmppError, TimeoutError):
            await asyncio.sleep(0.2)  # the gateway is restarting
            continue
        stream.binds += 1
        try:
            assert client.link is not None
            todo = await stream.send(client.link, todo)
        finally:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)
        if todo:
            await asyncio.sleep(0.2)


def at_smsc(smsc: SimulatedSmsc) -> Counter[bytes]:
    """The texts the SMSC accepted from the proxy, with how often."""
    return Counter(m.short_message for m in smsc.messages.values() if m.origin == "fraudgate")


def assert_once_each(smsc: SimulatedSmsc, stream: Stream) -> None:
    got = at_smsc(smsc)
    bodies = {body_of(i): i for i in range(stream.n)}
    twice = sorted(bodies[b] for b, c in got.items() if c > 1)
    lost = sorted(i for b, i in bodies.items() if b not in got)
    stray = [b for b in got if b not in bodies]
    assert not twice and not lost and not stray, f"twice {twice}, lost {lost}, stray {stray}"
    assert set(stream.acked) == set(range(stream.n))


async def rows(url: str) -> dict[str, tuple[str, str | None]]:
    """proxy_submits: id -> (state, smsc_id)."""
    async with await Store.open(url) as store, store.engine.connect() as conn:
        t = proxy_submits.c
        found = await conn.execute(sa.select(t.id, t.state, t.smsc_id))
        return {r.id: (r.state, r.smsc_id) for r in found}


def assert_journal(journal: dict[str, tuple[str, str | None]], smsc: SimulatedSmsc,
                   stream: Stream) -> None:  # fmt: skip
    """Every id the aggregator was answered names its message: forwarded, and the SMSC's id
    in its row is the SMSC's message with that text."""
    assert len(journal) == stream.n, Counter(s for s, _ in journal.values())
    for i, our_id in stream.acked.items():
        state, smsc_id = journal[our_id]
        assert state in ("forwarded", "receipted"), (i, state)
        assert smsc_id is not None, i
        there = smsc.messages[smsc_id].short_message
        assert there == body_of(i), f"#{i}'s row names the SMSC's message of {there!r}"


# ---------------------------------------------------------------------------------- SIGKILL


def simulated_smsc() -> SimulatedSmsc:
    rx = frozenset({BindType.RECEIVER, BindType.TRANSCEIVER})
    return SimulatedSmsc(
        SmscConfig(
            port=0,
            accounts=[Account("fraudgate", PASSWORD, rx), Account("phones", PASSWORD, rx)],
            routes=[SmscRoute("", "phones", origin="fraudgate"), SmscRoute("", "fraudgate")],
            retry_interval=0.2,
            response_timeout=5.0,
        )
    )


def gateway_toml(tmp_path: Path, db_url: str, port: int, smsc_port: int) -> Path:
    path = tmp_path / "fraudgate.toml"
    path.write_text(f"""
[gateway]
mode = "monitor"
data_dir = "{tmp_path / "data"}"
[store]
url = "{db_url}"
[mqtt]
enabled = false
[cases]
enabled = false
[proxy]
enabled = true
listen = "127.0.0.1:{port}"
reconcile_wait = 3.0
retry_interval = 0.2
receipt_retry = 0.5
[[proxy.account]]
system_id = "{AGGR}"
password = "{PASSWORD}"
senders = ["{SENDER}"]
[[proxy.upstream]]
name = "smsc"
address = "127.0.0.1:{smsc_port}"
system_id = "fraudgate"
password = "{PASSWORD}"
window = 50
response_timeout = 2.0
""")
    return path


class Daemon:
    """`fraudgate run -c config` as a process (its output in `log`)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(FRAUDGATE), "run", "-c", str(self.config)], cwd=ROOT, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
                env={k: v for k, v in os.environ.items() if not k.startswith("FRAUDGATE_")},
            )  # fmt: skip
        self.starts += 1

    def kill(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


async def test_the_gateway_sigkilled_mid_stream_twice_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, db_url: str
) -> None:
    """600 submits (10 handsets, so that receipts share address pairs); the gateway is
    SIGKILLed after 200 and after 400 ROKs, and started again on its database. At the SMSC:
    each message exactly once; each id the aggregator got names its message."""
    assert FRAUDGATE.exists(), f"{FRAUDGATE}: ./dev setup installs the fraudgate command"
    stream = Stream(600, dest=lambda i: f"77011{i % 10:06d}")
    port = free_port()
    async with simulated_smsc() as smsc:
        phones = Receiver()
        handsets = EsmeClient(
            EsmeConfig("127.0.0.1", smsc.port, "phones", PASSWORD, BindType.RECEIVER), phones
        )
        await handsets.__aenter__()
        daemon = Daemon(gateway_toml(tmp_path, db_url, port, smsc.port), tmp_path / "gw.log")
        daemon.start()
        try:
            sender = asyncio.create_task(aggregate(port, stream, window=40, timeout=75))
            for at in (200, 400):
                await eventually(_reached(stream, at, sender), 40, f"{at} ROKs")
                assert not sender.done(), "the stream ended before the kill"
                daemon.kill()  # mid-stream: submits in the aggregator's window and upstream
                daemon.start()
            await sender
            async with await Store.open(db_url) as store:
                journal = Journal(store)
                await eventually_async(lambda: _settled(journal), 30)
            with contextlib.suppress(AssertionError):  # a loss is told below, by number
                await eventually(lambda: len(at_smsc(smsc)) >= stream.n, 5, "all at the SMSC")
            await asyncio.sleep(0.5)
        finally:
            code = daemon.stop()
            await handsets.__aexit__(None, None, None)
    print(f"resubmitted {stream.resubmitted}, binds {stream.binds}, refused {stream.refused}")
    assert code == 0, daemon.log.read_text()[-3000:]
    assert daemon.starts == 3 and stream.binds >= 3
    assert stream.resubmitted > 0  # the kills cut submits in flight
    assert_once_each(smsc, stream)
    assert_journal(await rows(db_url), smsc, stream)
    assert len(phones.received) >= stream.n


def _reached(stream: Stream, count: int, sender: asyncio.Task[None]) -> Callable[[], bool]:
    return lambda: len(stream.acked) >= count or sender.done()


async def _settled(journal: Journal) -> bool:
    counts = await journal.counts()
    return not any(counts.get(s, 0) for s in ("held", "pending", "sending"))


async def eventually_async(check: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[misc]
        assert time.monotonic() < deadline, "not settled in time"
        await asyncio.sleep(0.2)


# ---------------------------------------------------------------------------------- in process


async def test_the_smsc_link_cut_mid_stream_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    """The SMSC drops the proxy's bind at every 150th PDU: submits answered and not, submits
    taken and not. The unanswered ones are settled by their receipts or sent again."""
    stream = Stream(600)
    async with proxy_lab(tmp_path, mode="monitor", reconcile_wait=1.0,
                         upstream_faults=Faults(disconnect_after=150)) as lab:  # fmt: skip
        await aggregate(lab.proxy.port, stream, window=50)
        await eventually(lambda: len(at_smsc(lab.smsc)) >= stream.n, 30, "all at the SMSC")
        await _quiet(lab)
        stats = lab.proxy.forwarder.stats
        assert_once_each(lab.smsc, stream)
        assert_journal(await rows(lab.store_url), lab.smsc, stream)
    print(stats)
    assert lab.proxy.forwarder.supervisors[0].binds >= 4  # cut at least 3 times
    assert stats.unconfirmed >= 1
    assert stats.unconfirmed == stats.confirmed_by_receipt + stats.resent
    assert stats.confirmed_by_receipt >= 1  # taken by the SMSC, its answer lost: not resent
    assert stream.resubmitted == 0  # the aggregator saw none of it


async def _quiet(lab: ProxyLab) -> None:
    """Until nothing is outstanding upstream and the journal has nothing unfinished."""
    fwd = lab.proxy.forwarder
    await eventually(lambda: fwd.outstanding == 0, 30, "nothing outstanding")
    await eventually_async(lambda: _settled(lab.proxy.journal), 10)


async def test_the_aggregator_link_cut_mid_stream_is_answered_the_first_ids_and_sent_once(
    tmp_path: Path, db_url: str
) -> None:
    """The aggregator's TCP link is aborted while 50 submits are in flight (taken by the proxy,
    not answered yet); it binds again and resubmits them: answered with the first ids."""
    stream = Stream(300)
    async with proxy_lab(tmp_path, store_url=db_url, mode="monitor") as lab:
        proxy = lab.proxy
        first = await bind(proxy.port, Receiver(), 50)
        assert first.link is not None
        cut_at = proxy.stats.submits + 40
        burst = asyncio.create_task(stream.send(first.link, list(range(200))))
        while proxy.stats.submits < cut_at:  # noqa: ASYNC110 - cut as the 40th is read
            await asyncio.sleep(0)
        first.link.abort("test: the aggregator's network is cut")
        left = await burst
        assert len(left) >= 150  # most were in flight or not yet sent
        await aggregate(proxy.port, stream, window=50)  # rebinds, resubmits what is left
        await eventually(lambda: len(at_smsc(lab.smsc)) >= stream.n, 30, "all at the SMSC")
        await _quiet(lab)
        repeated = proxy.stats.repeated
        journal = await rows(lab.store_url)
    assert repeated >= 1, "no submit was taken and left unanswered by the cut"
    got = at_smsc(lab.smsc)
    assert all(got[body_of(i)] == 1 for i in range(stream.n)), [
        i for i in range(stream.n) if got[body_of(i)] != 1
    ]
    ours = {our_id: i for i, our_id in stream.acked.items()}
    assert len(ours) == stream.n  # one id per message, the first one for a resubmission
    for our_id, i in ours.items():
        state, smsc_id = journal[our_id]
        assert state in ("forwarded", "receipted") and smsc_id is not None
        assert lab.smsc.messages[smsc_id].short_message == body_of(i)


async def test_the_smsc_down_throttles_past_the_queue_limit_and_delivers_the_rest_once(
    tmp_path: Path,
) -> None:
    """The SMSC unreachable (its address refuses connections): the proxy accepts `queue_limit`
    submits and answers ESME_RTHROTTLED past it, holding no more; when the SMSC is back the
    accepted ones go, once, and the aggregator's resubmissions are accepted."""
    async with proxy_lab(tmp_path, mode="monitor", queue_limit=20) as lab:
        fwd = lab.proxy.forwarder
        sup = fwd.supervisors[0]
        async with FaultProxy("127.0.0.1", lab.smsc.port) as net:
            sup.config.port = net.port  # the next bind goes through the fault proxy
            assert sup.link is not None
            sup.link.abort("test: rebind through the fault proxy")
            await eventually(lambda: net.connections == 1 and fwd.any_link() is not None, 10)
            net.refuse = True  # the SMSC is down
            net.cut()
            await eventually(lambda: fwd.any_link() is None, 5, "the upstream bind down")
            stream = Stream(60)
            client = await bind(lab.proxy.port, Receiver(), 50)
            assert client.link is not None
            left = await stream.send(client.link, list(range(60)))
            assert len(stream.acked) == 20 and len(left) == 40
            assert stream.refused == Counter({Status.ESME_RTHROTTLED: 40})
            for _ in range(3):  # it keeps trying: nothing more is taken, nothing more held
                left = await stream.send(client.link, left)
                assert len(left) == 40 and fwd.outstanding == 20
            assert lab.at_smsc == 0
            net.refuse = False  # back
            await eventually(lambda: lab.at_smsc == 20, 30, "the accepted 20 at the SMSC")
            await eventually(lambda: fwd.outstanding == 0, 10, "the 20 settled")
            await aggregate(lab.proxy.port, stream, window=50)  # all 60 again, as it tracks
            await eventually(lambda: lab.at_smsc == 60, 30, "all 60 at the SMSC")
            await _quiet(lab)
            await client.__aexit__(None, None, None)
        assert_once_each(lab.smsc, stream)
        assert lab.proxy.stats.throttled >= 160
        assert lab.proxy.stats.repeated == 20  # the accepted ones sent again: the first ids


async def test_receipts_for_an_unbound_aggregator_are_kept_and_given_when_it_binds_again(
    tmp_path: Path,
) -> None:
    """The handsets answer late; the aggregator unbinds before its receipts come. They are kept
    (proxy_inbound) and given to it, with the ids it was answered, when it binds again."""
    async with proxy_lab(tmp_path, mode="monitor") as lab:
        later = Status.ESME_RX_T_APPN  # "later": the SMSC retries every 0.2 s
        lab.phones.status_of = lambda pdu: later
        stream = Stream(5)
        mine = Receiver()
        client = await bind(lab.proxy.port, mine, 10)
        assert client.link is not None
        assert await stream.send(client.link, list(range(5))) == []
        await client.__aexit__(None, None, None)  # unbound, receipts not yet there
        await eventually(lambda: not lab.proxy.inbound.links.get(AGGR), 5)
        lab.phones.status_of = lambda pdu: Status.ESME_ROK
        await eventually(lambda: lab.proxy.inbound.stats.kept == 5, 15, "5 receipts kept")
        assert (await lab.proxy.journal.counts())["inbound_waiting"] == 5
        assert mine.receipts() == []
        back = Receiver()
        again = await bind(lab.proxy.port, back, 10, BindType.RECEIVER)
        await eventually(lambda: len(back.receipts()) == 5, 10, "the kept receipts given")
        ids = {r.message_id for p in back.receipts() if (r := receipt_in(p)) is not None}
        assert ids == set(stream.acked.values())
        assert all(receipt_in(p).stat == "DELIVRD" for p in back.receipts())  # type: ignore[union-attr]
        await eventually(lambda: lab.proxy.inbound.stats.redelivered == 5, 5)
        await eventually_async(_none_waiting(lab), 5)
        await again.__aexit__(None, None, None)
        assert_once_each(lab.smsc, stream)


def _none_waiting(lab: ProxyLab) -> Callable[[], object]:
    async def check() -> bool:
        return (await lab.proxy.journal.counts())["inbound_waiting"] == 0

    return check


async def test_an_smsc_link_cut_with_submits_queued_does_not_stop_the_loop(tmp_path: Path) -> None:
    """Review finding: with submits queued behind a full window, a cut link left the sender
    looping without ever awaiting (the supervisor still said bound): the whole daemon froze."""
    from tests.helpers.proxy_lab import proxy_lab
    from tests.test_proxy import submit

    async with proxy_lab(tmp_path, mode="monitor",
                         upstream_faults=Faults(response_delay=1.0)) as lab:  # fmt: skip
        sup = lab.proxy.forwarder.supervisors[0]
        link, _ = await lab.aggregator(window=50)  # the account's window: none refused
        futs = [
            asyncio.ensure_future(link.request(submit("SHOP", f"7702{i:07d}", f"Заказ {i} готов")))
            for i in range(200)
        ]
        await eventually(lambda: lab.proxy.forwarder.holding()["queued"] > 0, 10)
        ticks: list[float] = []

        async def heartbeat() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.05)

        beat = asyncio.ensure_future(heartbeat())
        assert sup.link is not None
        sup.link.abort("cut by the test")
        await asyncio.sleep(2.0)
        beat.cancel()
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        assert ticks and max(gaps, default=0.0) < 1.0, f"the loop stalled {max(gaps):.1f} s"
        await asyncio.gather(*futs, return_exceptions=True)
        await eventually(lambda: lab.at_smsc >= 200, 30)
