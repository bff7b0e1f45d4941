"""The lab shim's uplink framing (simulators/osmo/sctp_shim.c) against the real osmo-msc 1.9.

osmo-msc reads its SGs socket one sctp_recvmsg() per SGsAP message. A peer that opens with
"FGS1" sends length-prefixed messages and the shim hands osmo-msc exactly one per call, however
the bytes arrive; a peer without the preamble gets today's plain recv() (one message per read,
so it must pace itself). Raw sockets give the byte-level control; VirtualMme the load.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from conftest import OsmoLab

from gateway.osmocom.ctrl import CtrlClient
from simulators.osmo import sgsap
from simulators.osmo.lab import Lab
from simulators.osmo.mme import (
    DEFAULT_MME_NAME,
    FRAMING_PREAMBLE,
    VirtualMme,
    shim_framing,
)
from simulators.osmo.provision import LabSubscriber, provision
from simulators.osmo.sgsap import Lai, Message, MsgType

pytestmark = pytest.mark.interop

PHONES = [(f"0010100000{i:05d}", f"77010{i:05d}") for i in range(1, 51)]
TEXTS = ("Сәлем! Кешке кездесеміз бе?", "Мама, я задержусь", "Рахмет, жақсы", "Купи хлеб")


async def _provision(lab: Lab, subs: list[tuple[str, str]]) -> None:
    async with CtrlClient(lab.cfg.host, lab.hlr_ctrl) as ctrl:
        await provision(ctrl, [LabSubscriber(imsi, msisdn) for imsi, msisdn in subs])


def _lu(imsi: str) -> bytes:
    return sgsap.location_update_request(imsi, DEFAULT_MME_NAME, Lai("001", "01", 1)).encode()


def _frame(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (clock ticks of 10 ms)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


class _Raw:
    """A bare TCP connection to osmo-msc's SGs port; the downlink split by sgsap.Framer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = sgsap.Framer()
        self.got: list[Message] = []

    @classmethod
    async def open(cls, lab: Lab) -> _Raw:
        return cls(*await asyncio.open_connection(lab.cfg.host, lab.cfg.sgs_port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def accepted(self, count: int, timeout: float = 5.0) -> list[str]:
        """IMSIs of the next `count` LOCATION-UPDATE-ACCEPTs."""
        hits = await self._until(MsgType.LOCATION_UPDATE_ACCEPT, count, timeout)
        return [m.imsi or "" for m in hits]

    async def quiet(self, seconds: float) -> list[Message]:
        """Whatever osmo-msc sends within `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except TimeoutError:
                break
            if not data:
                break
            self.got.extend(self.framer.feed(data))
        self.got.extend(self.framer.flush())
        return self.got

    async def _until(self, kind: MsgType, count: int, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(hits := [m for m in self.got if m.type == kind]) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"{len(hits)}/{count} {kind.name} in {timeout} s: {self.got}"
            try:
                data = await asyncio.wait_for(self.reader.read(65536), min(left, 0.01))
            except TimeoutError:
                self.got.extend(self.framer.flush())
                continue
            assert data, f"osmo-msc closed the connection; got {self.got}"
            self.got.extend(self.framer.feed(data))
        del self.got[: self.got.index(hits[count - 1]) + 1]
        return hits

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


# --------------------------------------------------------------------------------------------


async def test_back_to_back_frames_in_one_write_each_read_alone(
    osmo_lab: OsmoLab, tmp_path: Path
) -> None:
    lab = await osmo_lab()
    assert lab.shim is not None  # this kernel has no SCTP: the shim is what is tested
    assert shim_framing(lab.shim) == "length"
    old = tmp_path / "sctp_shim-old.so"
    old.write_bytes(b"\x7fELF" + bytes(64))  # a library without the framing mark
    assert (shim_framing(old), shim_framing(None), shim_framing(tmp_path / "gone.so")) == (
        "paced", "paced", "paced",
    )  # fmt: skip
    await _provision(lab, PHONES[:3])
    imsis = [imsi for imsi, _ in PHONES[:3]]
    raw = await _Raw.open(lab)
    # The preamble and three LOCATION-UPDATE-REQUESTs in a single write: three answers.
    await raw.send(FRAMING_PREAMBLE + b"".join(_frame(_lu(imsi)) for imsi in imsis))
    assert sorted(await raw.accepted(3)) == imsis
    await raw.close()


async def test_frame_split_across_writes_waits_without_spinning(osmo_lab: OsmoLab) -> None:
    """Preamble, length and body each cut in two, with pauses: osmo-msc reads nothing until a
    message is whole (neither lost nor merged with the next) and does not spin meanwhile."""
    lab = await osmo_lab()
    await _provision(lab, PHONES[:2])
    (a, _), (b, _) = PHONES[:2]
    pid = lab.procs["osmo-msc"].pid
    raw = await _Raw.open(lab)
    first, second = _frame(_lu(a)), _frame(_lu(b))
    cpu = _cpu_seconds(pid)
    started = time.monotonic()
    for chunk in (b"FG", b"S1" + first[:1], first[1:20]):
        await raw.send(chunk)
        await asyncio.sleep(0.2)
    assert await raw.quiet(0.2) == []  # nothing read before the message is whole
    await raw.send(first[20:] + second[:30])
    assert await raw.accepted(1) == [a]  # whole now: answered; the next one still partial
    assert await raw.quiet(0.3) == []
    await raw.send(second[30:])
    assert await raw.accepted(1) == [b]
    spent = _cpu_seconds(pid) - cpu
    assert spent < 0.2 * (time.monotonic() - started), f"osmo-msc busy {spent:.2f} s"
    await raw.close()


async def test_oversized_frame_truncated_and_stream_stays_in_step(osmo_lab: OsmoLab) -> None:
    """osmo-msc reads SGs into a 512-octet buffer: a longer frame is cut to it (MSG_TRUNC), the
    rest discarded, and the next frame read from its own start."""
    lab = await osmo_lab()
    await _provision(lab, PHONES[:2])
    (a, _), (b, _) = PHONES[:2]
    raw = await _Raw.open(lab)
    await raw.send(FRAMING_PREAMBLE + _frame(_lu(a) + bytes(700)) + _frame(_lu(b)))
    assert sorted(await raw.accepted(2)) == sorted([a, b])
    await raw.close()


async def test_peer_closing_mid_frame_is_eof(osmo_lab: OsmoLab) -> None:
    lab = await osmo_lab()
    await _provision(lab, PHONES[:1])
    [(a, _)] = PHONES[:1]
    pid = lab.procs["osmo-msc"].pid
    raw = await _Raw.open(lab)
    await raw.send(FRAMING_PREAMBLE + _frame(_lu(a))[:15])
    await asyncio.sleep(0.1)
    await raw.close()
    cpu = _cpu_seconds(pid)
    await asyncio.sleep(0.5)
    assert _cpu_seconds(pid) - cpu < 0.1  # the half message does not keep osmo-msc polling
    assert "Connection lost" in lab.output("osmo-msc", 4000)
    again = await _Raw.open(lab)  # the next connection (maybe the same fd number) starts fresh
    await again.send(FRAMING_PREAMBLE + _frame(_lu(a)))
    assert await again.accepted(1) == [a]
    await again.close()


async def test_peer_without_preamble_gets_plain_reads(osmo_lab: OsmoLab) -> None:
    """No preamble: one recv() per message as before. One message per write works; two that
    reach osmo-msc together are read as one, the second lost (why paced/framed exist)."""
    lab = await osmo_lab()
    await _provision(lab, PHONES[:3])
    (a, _), (b, _), (c, _) = PHONES[:3]
    raw = await _Raw.open(lab)
    await raw.send(_lu(a))
    assert await raw.accepted(1) == [a]
    await raw.send(_lu(b) + _lu(c))
    await raw.quiet(1.0)
    assert [m.imsi for m in raw.got if m.type == MsgType.LOCATION_UPDATE_ACCEPT] == [b]
    await raw.close()


async def test_fifty_phones_sending_at_once_unpaced(osmo_lab: OsmoLab) -> None:
    """One length-framed MME, 50 phones attaching together, then each sending 4 SMS to the next
    one, all at once: every part RP-ACKed, every SMS delivered."""
    lab = await osmo_lab()
    await _provision(lab, PHONES)
    async with VirtualMme(lab.cfg.host, lab.cfg.sgs_port, framing=shim_framing(lab.shim)) as mme:
        assert mme.framing == "length"
        phones = [mme.phone(imsi, msisdn) for imsi, msisdn in PHONES]
        attached = await asyncio.gather(*(p.attach(timeout=10) for p in phones))
        assert all(r.accepted for r in attached)

        async def send(i: int) -> list[bool]:
            dest = phones[(i + 1) % len(phones)].msisdn
            return [
                all(r.ok for r in await phones[i].send_sms(dest, f"{text} #{i}", timeout=20))
                for text in TEXTS
            ]

        sent = await asyncio.gather(*(send(i) for i in range(len(phones))))
        assert all(all(row) for row in sent)
        for i, phone in enumerate(phones):
            src = (i - 1) % len(phones)
            got = {(await phone.next_sms(20)).text for _ in TEXTS}
            assert got == {f"{text} #{src}" for text in TEXTS}
            assert phone.inbox.empty()
        assert mme.slow_sends == 0


async def test_paced_framing_still_works(osmo_lab: OsmoLab) -> None:
    lab = await osmo_lab()
    await _provision(lab, PHONES[:2])
    async with VirtualMme(lab.cfg.host, lab.cfg.sgs_port, framing="paced") as mme:
        alice, bob = mme.phone(*PHONES[0]), mme.phone(*PHONES[1])
        assert (await alice.attach()).accepted and (await bob.attach()).accepted
        [sent] = await alice.send_sms(bob.msisdn, "Қайырлы таң!")
        assert sent.ok
        assert (await bob.next_sms(10)).text == "Қайырлы таң!"
        assert "paced framing" in mme.events[0].detail
