"""Traffic player and listener against a real SMPP server on loopback (smsc.server.SmppServer
with a small test handler): throttling and resubmission, rejections, rate, window, duration,
stop, link loss, the CLI, and the listener's reassembly, receipts and reconnects."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators import listener, traffic
from simulators.listener import MessagePrinter, ReceivedMessage, listen
from simulators.scenario import GeneratedMessage, Scenario, load_scenario, loads_scenario
from simulators.traffic import MessageResult, Pacer, TrafficReport, play
from smsc import simulator as sim
from smsc.client import EsmeClient, EsmeConfig
from smsc.constants import Status, Tag
from smsc.link import BindError, Link
from smsc.pdu import DataSm, DeliverSm, Pdu, SubmitSm, Tlv
from smsc.receipt import parse_receipt
from smsc.server import SmppServer
from smsc.session import BindType, SessionConfig
from smsc.text import encode_text, split_for_sms

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "config" / "scenarios" / "smoke.toml"
KAZAKH_LONG = (
    "Құрметті клиент! Kaspi Gold картаңыз күдікті операцияға байланысты бұғатталды. Қаражатты "
    "сақтау үшін 24 сағат ішінде https://kaspi-bank.kz-secure.com/kz сілтемесі арқылы "
    "деректеріңізді растаңыз."
)
SHORT_GSM = """
seed = 3
[[streams]]
name = "short"
label = "normal"
count = 1000
source = "+7701#######"
texts = ["Buy bread please", "Running late, be there in 10"]
"""


class FakeSmsc:
    """The SMSC side of the tests, one handler shared by every link of an SmppServer."""

    def __init__(
        self,
        *,
        password: str = "pw",
        throttle_first: int = 0,
        reject: Callable[[SubmitSm], int] | None = None,
        delay: float = 0.0,
        abort_after: int = 0,
        deliver: Callable[[], list[Pdu]] | None = None,
        drop_first_receiver: bool = False,
    ) -> None:
        self.password = password
        self.throttle_first = throttle_first
        self.reject = reject
        self.delay = delay
        self.abort_after = abort_after
        self.deliver = deliver
        self.drop_first_receiver = drop_first_receiver
        self.received: list[tuple[float, SubmitSm]] = []
        self.accepted: list[SubmitSm] = []
        self.throttled = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.binds: list[BindType] = []
        self.deliver_statuses: list[int] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:
        if getattr(pdu, "password", "") != self.password:
            link.reject_bind(pdu, Status.ESME_RINVPASWD)
            return
        link.accept_bind(pdu, "fake-smsc")
        self.binds.append(bind_type)
        if bind_type == BindType.TRANSMITTER:
            return
        receivers = sum(1 for b in self.binds if b != BindType.TRANSMITTER)
        if self.drop_first_receiver and receivers == 1:
            link.loop.call_later(0.05, link.abort, "test drops the first receiver")
        elif self.deliver is not None:
            task = asyncio.ensure_future(self._push(link, self.deliver()))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _push(self, link: Link, pdus: list[Pdu]) -> None:
        for pdu in pdus:
            response = await link.request(pdu)
            self.deliver_statuses.append(response.status)

    def on_request(self, link: Link, pdu: Pdu) -> None:
        if not isinstance(pdu, SubmitSm):
            link.respond(pdu.response(status=Status.ESME_RINVCMDID))
            return
        self.received.append((time.monotonic(), pdu))
        if self.abort_after and len(self.received) >= self.abort_after:
            link.abort("test cuts the link")
            return
        if self.throttled < self.throttle_first:
            self.throttled += 1
            link.respond(pdu.response(status=Status.ESME_RTHROTTLED))
            return
        status = self.reject(pdu) if self.reject else 0
        if status == 0:
            self.accepted.append(pdu)
        response = pdu.response(status=status, message_id=f"{len(self.received):08X}")
        if status:
            response = pdu.response(status=status)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.delay:
            link.loop.call_later(self.delay, self._answer, link, response)
        else:
            self._answer(link, response)

    def _answer(self, link: Link, response: Pdu) -> None:
        self.in_flight -= 1
        if not link.session.closed:
            link.respond(response)

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        pass


@contextlib.asynccontextmanager
async def smsc_server(smsc: FakeSmsc) -> AsyncIterator[int]:
    async with SmppServer(lambda: smsc, "127.0.0.1", 0) as server:
        yield server.port


def esme(port: int, bind_type: BindType = BindType.TRANSMITTER, password: str = "pw") -> EsmeConfig:
    return EsmeConfig("127.0.0.1", port, "loadgen", password, bind_type=bind_type)


def wire_key(pdu: SubmitSm) -> tuple[object, ...]:
    return (pdu.source_addr, pdu.destination_addr, pdu.short_message, tuple(pdu.tlvs))


# ---- pacing ----------------------------------------------------------------------------------


def test_pacer_keeps_an_absolute_schedule() -> None:
    now = [100.0]
    pacer = Pacer(10, burst=2, clock=lambda: now[0])

    def delays(n: int) -> list[float]:
        return [round(pacer.reserve(), 6) for _ in range(n)]

    assert delays(4) == [0.0, 0.1, 0.2, 0.3]  # no banked burst at the start
    now[0] += 0.45  # the caller slept 50 ms too long: the schedule does not move
    assert delays(2) == [0.0, 0.05]
    now[0] += 10  # a long stall: at most `burst` back to back, then the rate again
    assert delays(4) == [0.0, 0.0, 0.1, 0.2]
    strict = Pacer(10, burst=1, clock=lambda: now[0])
    assert [round(strict.reserve(), 6) for _ in range(2)] == [0.0, 0.1]
    now[0] += 10
    assert [round(strict.reserve(), 6) for _ in range(2)] == [0.0, 0.1]
    assert Pacer(0).reserve() == 0.0
    assert Pacer(200).burst == 10  # default: 50 ms worth
    with pytest.raises(ValueError):
        Pacer(-1)


# ---- play ------------------------------------------------------------------------------------


async def test_throttled_submits_are_resubmitted_and_the_count_is_exact() -> None:
    smsc = FakeSmsc(throttle_first=7)
    scenario = load_scenario(SMOKE)
    results: list[MessageResult] = []
    async with smsc_server(smsc) as port:
        report = await play(
            esme(port), scenario, count=40, window=5, throttle_delay=0.02, on_result=results.append
        )
    expected = scenario.messages(40)
    parts = sum(len(m.pdus) for m in expected)
    assert report.messages == report.accepted == report.started == 40
    assert report.throttled == smsc.throttled == 7
    assert report.pdus == len(smsc.received) == parts + 7
    assert report.statuses == Counter({0: parts})
    assert report.failed == report.rejected == 0
    assert report.stopped == "count reached"
    # every part arrived exactly once: nothing dropped, nothing duplicated
    assert Counter(wire_key(p) for p in smsc.accepted) == Counter(
        wire_key(p) for m in expected for p in m.pdus
    )
    assert sorted(r.message.index for r in results) == list(range(40))
    assert sum(r.throttled for r in results) == 7
    assert all(r.outcome == "accepted" and all(r.message_ids) for r in results)
    assert sum(s.sent for s in report.labels.values()) == 40


async def test_rejections_are_counted_by_status_and_label() -> None:
    def policy(pdu: SubmitSm) -> int:
        if pdu.source_addr_ton == 5:
            return Status.ESME_RX_R_APPN
        return Status.ESME_RINVDSTADR if pdu.destination_addr.startswith("7777") else 0

    smsc = FakeSmsc(reject=policy)
    scenario = load_scenario(SMOKE)
    async with smsc_server(smsc) as port:
        report = await play(esme(port), scenario, window=3)  # one pass by default
    messages = scenario.messages()
    alnum = [m for m in messages if m.source_ton == 5]
    blocked = [m for m in messages if m.source_ton != 5 and m.destination.startswith("7777")]
    assert report.messages == scenario.pass_length == 25
    assert report.rejected_by_status[Status.ESME_RX_R_APPN] == len(alnum) == 5
    assert report.rejected_by_status[Status.ESME_RINVDSTADR] == len(blocked)
    assert report.rejected == len(alnum) + len(blocked)
    assert report.accepted == 25 - report.rejected
    assert report.labels["spoof"].rejected == 3
    assert report.labels["normal"].rejected >= 2  # the "Yandex Go" notifications
    summary = report.summary()
    assert "ESME_RX_R_APPN (0x66)" in summary and "spoof" in summary
    assert report.to_dict()["rejected_by_status"]["0x66"] == 5


async def test_rate_holds_the_average() -> None:
    smsc = FakeSmsc()
    scenario = loads_scenario(SHORT_GSM)
    async with smsc_server(smsc) as port:
        started = time.monotonic()
        report = await play(esme(port), scenario, rate=200, count=100, window=10)
        took = time.monotonic() - started
    assert report.accepted == 100 and report.pdus == 100
    assert 0.35 <= took <= 1.5, took
    arrivals = [t for t, _ in smsc.received]
    assert 0.4 <= arrivals[-1] - arrivals[0] <= 1.4  # 99 intervals of 5 ms


async def test_window_bounds_the_submits_in_flight() -> None:
    smsc = FakeSmsc(delay=0.03)
    async with smsc_server(smsc) as port:
        report = await play(esme(port), loads_scenario(SHORT_GSM), count=40, window=4)
    assert report.accepted == 40
    assert smsc.max_in_flight == 4


async def test_duration_and_stop_end_the_run_cleanly() -> None:
    smsc = FakeSmsc()
    scenario = loads_scenario(SHORT_GSM)
    async with smsc_server(smsc) as port:
        report = await play(esme(port), scenario, rate=50, duration=0.3)
        assert report.stopped == "duration reached"
        assert 8 <= report.messages <= 20
        assert report.messages == report.started == report.accepted

        stop = asyncio.Event()

        def stop_after_five(result: MessageResult) -> None:
            if result.message.index >= 4:
                stop.set()

        report = await play(esme(port), scenario, rate=100, stop=stop, on_result=stop_after_five)
        assert report.stopped == "stopped"
        assert 5 <= report.messages <= 8 and report.messages == report.started


async def test_play_on_a_bound_link_and_from_a_list() -> None:
    smsc = FakeSmsc()
    messages = load_scenario(SMOKE).messages(6)
    async with smsc_server(smsc) as port:
        client = EsmeClient(esme(port, BindType.TRANSCEIVER), listener.MessagePrinter(out=None))
        async with client as link:
            report = await play(link, messages, window=2)
            assert link.session.bound
        assert report.messages == 6 and report.stopped == "scenario exhausted"
        assert report.scenario == "" and report.seed is None


async def test_link_lost_mid_run_is_reported_not_hung() -> None:
    smsc = FakeSmsc(abort_after=10, delay=0.01)
    async with smsc_server(smsc) as port:
        report = await asyncio.wait_for(
            play(esme(port), loads_scenario(SHORT_GSM), count=100, window=4), 10
        )
    assert report.stopped.startswith("link closed")
    assert report.failed >= 1 and report.errors["link closed"] >= 1
    assert report.messages == report.started < 100


async def test_bind_refused() -> None:
    async with smsc_server(FakeSmsc()) as port:
        with pytest.raises(BindError):
            await play(esme(port, password="wrong"), loads_scenario(SHORT_GSM), count=1)


def test_argument_parsers() -> None:
    assert traffic.parse_smsc("127.0.0.1:2775") == ("127.0.0.1", 2775)
    assert traffic.parse_smsc("[::1]:2775") == ("::1", 2775)
    assert traffic.parse_account("loadgen:p:w") == ("loadgen", "p:w")
    for bad in ("localhost", ":2775", "host:0", "host:x"):
        with pytest.raises(argparse.ArgumentTypeError):
            traffic.parse_smsc(bad)
    for bad in ("nopassword", ":pw", "a:123456789"):
        with pytest.raises(argparse.ArgumentTypeError):
            traffic.parse_account(bad)


# ---- command line (server in a thread, the CLI runs its own event loop) ------------------------


@contextlib.contextmanager
def threaded_smsc(smsc: FakeSmsc) -> Iterator[int]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        box["stop"] = stop
        async with smsc_server(smsc) as port:
            box["port"] = port
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        port = box["port"]
        assert isinstance(port, int)
        yield port
    finally:
        stop = box["stop"]
        assert isinstance(stop, asyncio.Event)
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def test_traffic_cli(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    traffic.configure(parser)
    smsc = FakeSmsc(throttle_first=2)
    with threaded_smsc(smsc) as port:
        common = ["--smsc", f"127.0.0.1:{port}", "--account", "loadgen:pw", "--scenario"]
        args = parser.parse_args(
            [*common, str(SMOKE), "--rate", "0", "--count", "12", "--throttle-delay", "0.01"]
        )
        assert traffic.run(args) == 0
        out = capsys.readouterr().out
        assert "scenario smoke (seed 1): 12 messages" in out and "throttled 2" in out
        args = parser.parse_args([*common, str(SMOKE), "--rate", "0", "--seed", "9", "--json"])
        assert traffic.run(args) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["messages"] == 25 and data["seed"] == 9 and data["accepted"] == 25
    assert smsc.binds == [BindType.TRANSMITTER, BindType.TRANSMITTER]


def test_traffic_cli_reports_a_bad_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[streams]]\nname = "x"\nlabel = "normal"\nsource = "A"\ntext = ["t"]\n')
    parser = argparse.ArgumentParser()
    traffic.configure(parser)
    args = parser.parse_args(["--smsc", "127.0.0.1:1", "--account", "a:b", "--scenario", str(bad)])
    assert traffic.run(args) == 2
    assert "streams[0].text: unknown key" in capsys.readouterr().err


# ---- listener --------------------------------------------------------------------------------

RECEIPT = (
    b"id:0000002A sub:001 dlvrd:001 submit date:2511232240 done date:2511232241 stat:DELIVRD "
    b"err:000 text:Kaspi.kz: kod"
)


def mobile(cls: type[DeliverSm | DataSm], source: str, **fields: Any) -> Pdu:
    """A PDU toward the receiver 77011234567, international numbers unless told otherwise."""
    base: dict[str, Any] = {
        "source_addr_ton": 1,
        "source_addr_npi": 1,
        "dest_addr_ton": 1,
        "dest_addr_npi": 1,
        "destination_addr": "77011234567",
        "data_coding": 8,
    }
    return cls(source_addr=source, **{**base, **fields})


def deliveries() -> list[Pdu]:
    """What the fake SMSC sends a receiver: every way a text can arrive."""
    _, udh = split_for_sms(KAZAKH_LONG, ref=42, data_coding=8)
    _, sar = split_for_sms(KAZAKH_LONG, ref=0, data_coding=8)
    payload = [Tlv.of(Tag.MESSAGE_PAYLOAD, encode_text(KAZAKH_LONG, 8))]
    pdus = [
        mobile(DeliverSm, "77051110001", esm_class=0x40, short_message=udh[i]) for i in (2, 0, 1)
    ]
    for seq, body in enumerate(sar, 1):
        sar_tlvs = [
            Tlv.of(Tag.SAR_MSG_REF_NUM, 700),
            Tlv.of(Tag.SAR_TOTAL_SEGMENTS, 3),
            Tlv.of(Tag.SAR_SEGMENT_SEQNUM, seq),
        ]
        pdus.append(
            mobile(DeliverSm, "77051110002", short_message=body[body[0] + 1 :], tlvs=sar_tlvs)
        )
    receipt_tlvs = [Tlv.of(Tag.RECEIPTED_MESSAGE_ID, "0000002A"), Tlv.of(Tag.MESSAGE_STATE, 2)]
    pdus += [
        mobile(DeliverSm, "77051110003", tlvs=payload),
        mobile(DataSm, "77051110004", tlvs=payload),
        mobile(
            DeliverSm,
            "Yandex Go",
            source_addr_ton=5,
            source_addr_npi=0,
            data_coding=0,
            short_message=b"Running late, be there in 10",
        ),
        mobile(
            DeliverSm,
            "77011234567",
            destination_addr="KASPI",
            dest_addr_ton=5,
            esm_class=0x04,
            data_coding=0,
            short_message=RECEIPT,
            tlvs=receipt_tlvs,
        ),
        mobile(
            DeliverSm,
            "77051110005",
            esm_class=0x40,
            short_message=split_for_sms(KAZAKH_LONG, ref=99)[1][0],
        ),
    ]
    return pdus


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_message_printer_reassembles_answers_and_prints() -> None:
    smsc = FakeSmsc(deliver=deliveries)
    got: list[ReceivedMessage] = []
    out = io.StringIO()
    printer = MessagePrinter(out=out, on_message=got.append, reassembly_timeout=0.3)
    sent = len(deliveries())
    async with smsc_server(smsc) as port:
        async with EsmeClient(esme(port, BindType.RECEIVER), printer):
            await wait_for(lambda: len(got) == 7)
        assert smsc.deliver_statuses == [0] * sent  # every part answered 0, as it arrived
    by_source = {m.source: m for m in got}
    udh, sar = by_source["77051110001"], by_source["77051110002"]
    assert udh.text == sar.text == KAZAKH_LONG
    assert (udh.parts, udh.total, udh.via, sar.via) == (3, 3, "udh", "sar")
    assert by_source["77051110003"].text == KAZAKH_LONG
    assert by_source["77051110003"].via == "payload"
    data_sm = by_source["77051110004"]
    assert data_sm.command == "data_sm" and data_sm.text == KAZAKH_LONG
    assert by_source["Yandex Go"].text == "Running late, be there in 10"
    receipt = by_source["77011234567"]
    assert receipt.kind == "receipt" and receipt.receipt is not None
    assert (receipt.receipt.message_id, receipt.receipt.stat, receipt.receipt.err) == (
        "0000002A",
        "DELIVRD",
        "000",
    )
    incomplete = by_source["77051110005"]
    assert incomplete.kind == "incomplete" and incomplete.missing == (2, 3)
    assert KAZAKH_LONG.startswith(incomplete.text)
    assert got[-1] is incomplete  # printed when the reassembly timeout passed
    assert printer.counts == {"parts": sent, "message": 5, "incomplete": 1, "receipt": 1}
    lines = out.getvalue().splitlines()
    assert len(lines) == 7
    assert any("RECEIPT +77011234567 -> KASPI id=0000002A stat=DELIVRD err=000" in x for x in lines)
    assert any(" INCOMPLETE [1/3 udh, missing 2,3] " in x for x in lines)
    assert any("deliver_sm Yandex Go -> +77011234567 dc=0x00 " in x for x in lines)
    assert any(f"[3/3 udh] {json.dumps(KAZAKH_LONG, ensure_ascii=False)}" in x for x in lines)


async def test_message_printer_flush_prints_pending_as_incomplete() -> None:
    smsc = FakeSmsc(deliver=lambda: deliveries()[:2])  # 2 of the 3 UDH parts
    got: list[ReceivedMessage] = []
    printer = MessagePrinter(out=None, on_message=got.append, reassembly_timeout=60)
    async with smsc_server(smsc) as port, EsmeClient(esme(port, BindType.RECEIVER), printer):
        await wait_for(lambda: printer.counts["parts"] == 2)
    assert got == [] and printer.pending == 1
    printer.flush()
    assert [m.kind for m in got] == ["incomplete"] and got[0].missing == (2,)
    assert printer.pending == 0


async def test_listen_reconnects_and_keeps_receiving() -> None:
    smsc = FakeSmsc(deliver=lambda: deliveries()[8:10], drop_first_receiver=True)
    got: list[ReceivedMessage] = []
    printer = MessagePrinter(out=None, on_message=got.append)
    stop = asyncio.Event()
    async with smsc_server(smsc) as port:
        task = asyncio.ensure_future(listen(esme(port, BindType.RECEIVER), printer, stop))
        await wait_for(lambda: len(got) == 2, timeout=10)
        stop.set()
        await asyncio.wait_for(task, 10)
    assert smsc.binds == [BindType.RECEIVER, BindType.RECEIVER]
    assert {m.command for m in got} == {"deliver_sm"}


def test_parse_receipt_is_lenient() -> None:
    r = parse_receipt("id:abc stat:UNDELIV err:001")
    assert (r.message_id, r.stat, r.err, r.text) == ("abc", "UNDELIV", "001", "")
    r = parse_receipt("ID:7 SUB:001 DLVRD:000 SUBMIT DATE:2511230000 DONE DATE:2511230001")
    assert (r.message_id, r.submit_date, r.done_date, r.stat) == (
        "7",
        "2511230000",
        "2511230001",
        "",
    )


def test_listen_cli_prints_lines_and_stops_on_sigint() -> None:
    smsc = FakeSmsc(deliver=lambda: deliveries()[8:10])
    with threaded_smsc(smsc) as port:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "simulators.listener", "--smsc", f"127.0.0.1:{port}",
             "--account", "phones:pw", "--bind", "transceiver"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(2)]
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert "deliver_sm Yandex Go -> +77011234567" in lines[0]
    assert "RECEIPT +77011234567 -> KASPI id=0000002A" in lines[1]
    assert "# 1 messages, 0 incomplete, 1 receipts (2 PDUs)" in err
    assert smsc.binds == [BindType.TRANSCEIVER]


# ---- end to end through the project's simulated SMSC ---------------------------------------


async def test_traffic_to_listener_through_the_simulated_smsc() -> None:
    config = sim.SmscConfig(
        host="127.0.0.1",
        port=0,
        accounts=[
            sim.Account("phones", "pw"),
            sim.Account("loadgen", "pw", faults=sim.Faults(throttle_every=5)),
        ],
        routes=[sim.Route("", "phones")],
    )
    scenario: Scenario = load_scenario(SMOKE)
    got: list[ReceivedMessage] = []
    printer = MessagePrinter(out=None, on_message=got.append)
    stop = asyncio.Event()
    async with sim.SimulatedSmsc(config) as smsc:
        rx = EsmeConfig("127.0.0.1", smsc.port, "phones", "pw", bind_type=BindType.RECEIVER)
        task = asyncio.ensure_future(listen(rx, printer, stop))
        await wait_for(lambda: printer.counts["parts"] == 0 and smsc.stats is not None)
        await asyncio.sleep(0.2)  # let the receiver bind before traffic starts
        tx = EsmeConfig(
            "127.0.0.1",
            smsc.port,
            "loadgen",
            "pw",
            bind_type=BindType.TRANSMITTER,
            session=SessionConfig(),
        )
        report: TrafficReport = await play(tx, scenario, rate=500, throttle_delay=0.02)
        await wait_for(lambda: len(got) == scenario.pass_length, timeout=10)
        stop.set()
        await asyncio.wait_for(task, 10)
    assert report.accepted == 25 and report.throttled >= 1
    sent: list[GeneratedMessage] = scenario.messages()
    assert Counter((m.source, m.destination, m.text) for m in sent) == Counter(
        (m.source, m.destination, m.text) for m in got
    )
