"""The CDR stream (gateway/calls/stream.py) with real TCP clients: ACK after the sink accepted,
ERR for a bad line and the stream going on, AUTH, over-long lines, a client gone mid-line,
backpressure while the sink is busy; and its line framer on its own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest

from gateway.calls.cdr import Cdr
from gateway.calls.reader import Mapping
from gateway.calls.stream import CdrStream, LineFramer

NOW = datetime(2026, 12, 9, tzinfo=UTC).timestamp()
T0 = datetime(2026, 12, 8, 5, 15, 30, tzinfo=UTC).timestamp()


class Sink:
    """Records what it was given; `gate` (when set) holds each accept until opened."""

    def __init__(self) -> None:
        self.batches: list[list[Cdr]] = []
        self.sources: set[str] = set()
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.changed = asyncio.Event()
        self.seen: set[str] = set()

    @property
    def records(self) -> list[Cdr]:
        return [r for b in self.batches for r in b]

    async def accept(self, batch: Sequence[Cdr], source: str) -> int:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        self.batches.append(list(batch))
        self.sources.add(source)
        new = {r.key() for r in batch} - self.seen
        self.seen |= new
        self.changed.set()
        return len(new)

    async def wait_records(self, n: int) -> None:
        async with asyncio.timeout(5):
            while len(self.records) < n:
                self.changed.clear()
                await self.changed.wait()


def line(i: int, **extra: object) -> bytes:
    rec = {"record_type": "MOC", "start": T0 + i, "calling": "87011234567", "record_id": f"m:{i}"}
    rec.update(extra)
    return json.dumps(rec).encode() + b"\n"


EPOCH = Mapping(time_format="epoch")


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
async def stream(sink: Sink) -> AsyncIterator[CdrStream]:
    async with CdrStream(sink, mapping=EPOCH, flush_after=0.05, clock=lambda: NOW) as s:
        yield s


async def connect(s: CdrStream) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", s.port)


async def answer(reader: asyncio.StreamReader) -> str:
    async with asyncio.timeout(5):
        return (await reader.readline()).decode().rstrip("\n")


async def test_records_are_acknowledged_once_the_sink_has_them(
    stream: CdrStream, sink: Sink
) -> None:
    reader, writer = await connect(stream)
    writer.write(line(1) + line(2) + line(3))
    assert await answer(reader) == "ACK 3"  # the 50 ms flush
    assert [r.record_id for r in sink.records] == ["m:1", "m:2", "m:3"]
    assert sink.records[0].start == T0 + 1 and sink.records[0].calling == "77011234567"
    assert sink.sources == {f"stream 127.0.0.1:{writer.get_extra_info('sockname')[1]}"}
    writer.write(line(3) + line(4))  # line 3 again: a duplicate for the sink
    assert await answer(reader) == "ACK 5"
    assert (stream.records, stream.duplicates, stream.lines) == (5, 1, 5)
    writer.close()


async def test_a_full_batch_goes_at_once_and_the_end_of_the_stream_flushes(sink: Sink) -> None:
    async with CdrStream(sink, mapping=EPOCH, batch_max=2, flush_after=60, clock=lambda: NOW) as s:
        reader, writer = await connect(s)
        writer.write(b"".join(line(i) for i in range(5)))
        assert [await answer(reader), await answer(reader)] == ["ACK 2", "ACK 4"]
        writer.write_eof()  # line 5 waits for no timer: the end of the stream sends it
        assert await answer(reader) == "ACK 5"
        assert [len(b) for b in sink.batches] == [2, 2, 1]
        writer.close()


async def test_a_bad_line_is_refused_and_the_stream_goes_on(stream: CdrStream, sink: Sink) -> None:
    reader, writer = await connect(stream)
    writer.write(line(1) + b"not json\n" + line(3, start=NOW + 3 * 86400) + b"[1]\n\n" + line(6))
    got = [await answer(reader) for _ in range(4)]
    assert got[0].startswith("ERR 2 not JSON")
    assert got[1] == f"ERR 3 start: {str(NOW + 3 * 86400)!r} is more than a day in the future"
    assert got[2] == "ERR 4 not a JSON object (a JSON array)"
    assert got[3] == "ACK 6"  # lines 1..6 handled: 1 and 6 taken, 2..4 refused, 5 blank
    assert [r.record_id for r in sink.records] == ["m:1", "m:6"]
    assert stream.bad_lines == 3
    writer.close()


async def test_a_line_over_64_kib_is_refused_and_skipped(stream: CdrStream, sink: Sink) -> None:
    reader, writer = await connect(stream)
    writer.write(line(1, record_id="x" * 70_000))
    writer.write(line(2))
    assert await answer(reader) == "ERR 1 line over 64 KiB, skipped"
    assert await answer(reader) == "ACK 2"
    assert [r.record_id for r in sink.records] == ["m:2"]
    writer.close()


async def test_a_client_gone_mid_line_loses_only_that_line(stream: CdrStream, sink: Sink) -> None:
    _, writer = await connect(stream)
    writer.write(line(1) + line(2) + line(3)[:20])
    writer.close()
    await sink.wait_records(2)
    assert [r.record_id for r in sink.records] == ["m:1", "m:2"]
    assert stream.lines == 2


async def test_with_a_token_the_first_line_must_authenticate(sink: Sink) -> None:
    async with CdrStream(sink, token="s3cret", mapping=EPOCH, flush_after=0.05) as s:
        reader, writer = await connect(s)
        writer.write(b"AUTH s3cret\n" + line(2))
        assert await answer(reader) == "ACK 1"
        assert await answer(reader) == "ACK 2"
        writer.close()
        for first in (b"AUTH wrong\n", line(1)):
            reader, writer = await connect(s)
            writer.write(first + line(2))
            assert await answer(reader) == "ERR 1 authentication required: AUTH <token>"
            assert await reader.read() == b""  # closed
            writer.close()
        assert s.refused == 2 and len(sink.records) == 1


async def test_an_unauthenticated_silent_client_is_dropped(sink: Sink) -> None:
    async with CdrStream(sink, token="t", auth_timeout=0.05) as s:
        reader, writer = await connect(s)
        assert await answer(reader) == "ERR 1 authentication required: AUTH <token>"
        assert await reader.read() == b""
        writer.close()


async def test_a_busy_sink_stops_the_reading(sink: Sink) -> None:
    sink.gate = asyncio.Event()
    async with CdrStream(sink, mapping=EPOCH, batch_max=100, clock=lambda: NOW) as s:
        reader, writer = await connect(s)
        data = b"".join(line(i, record_id=f"m:{i}:" + "p" * 300) for i in range(60_000))
        writer.write(data)  # ~22 MB: far more than the socket buffers hold
        await sink.entered.wait()
        with pytest.raises(TimeoutError):  # the server does not read while the sink is busy
            await asyncio.wait_for(writer.drain(), 0.5)
        assert s.lines < 2_000  # one batch and the chunk it came in, not the whole stream
        sink.gate.set()
        await writer.drain()
        writer.write_eof()
        async with asyncio.timeout(30):
            answers = [a async for a in reader]
        assert answers[-1] == b"ACK 60000\n" and len(sink.records) == 60_000
        writer.close()


async def test_closing_the_listener_ends_its_connections(sink: Sink) -> None:
    async with CdrStream(sink, mapping=EPOCH, flush_after=0.01, clock=lambda: NOW) as s:
        reader, writer = await connect(s)
        writer.write(line(1) + line(2)[:10])
        assert await answer(reader) == "ACK 1" and s.clients == 1
        port = s.port
    assert s.clients == 0
    assert await reader.read() == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


def test_the_framer_numbers_lines_and_cuts_long_ones() -> None:
    f = LineFramer(max_line=8)
    assert f.feed(b"ab\r\ncd") == [(1, b"ab")]
    assert f.feed(b"\n\n0123456789") == [(2, b"cd"), (3, b""), (4, None)]
    assert f.feed(b"more of line 4") == [] and f.partial == 0
    assert f.feed(b"...\nxyz\n0123456789\n") == [(5, b"xyz"), (6, None)]
    assert f.feed(b"tail") == [] and f.partial == 4


class FailingSink(Sink):
    async def accept(self, batch: Sequence[Cdr], source: str) -> int:
        if not self.batches:
            self.batches.append([])
            raise RuntimeError("the analyzer's database is down")
        return await super().accept(batch, source)


async def test_a_failing_sink_closes_the_connection_without_ack() -> None:
    sink = FailingSink()
    async with CdrStream(sink, mapping=EPOCH, flush_after=0.01, clock=lambda: NOW) as s:
        reader, writer = await connect(s)
        writer.write(line(1) + line(2))
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # closed, no ACK: the client resends
        writer.close()
        reader, writer = await connect(s)  # the listener goes on
        writer.write(line(1) + line(2))
        assert await answer(reader) == "ACK 2"
        assert [r.record_id for r in sink.records] == ["m:1", "m:2"]
        writer.close()


# -- the issue 18 review: bad-only stretches, lines the parser chokes on, limits ---------------


async def test_a_stretch_of_bad_lines_alone_is_acknowledged_within_flush_after(
    stream: CdrStream, sink: Sink
) -> None:
    reader, writer = await connect(stream)
    writer.write(b"not json\n\n[1]\n")  # nothing good: before, no ACK until a record came
    got = [await answer(reader) for _ in range(3)]
    assert got[0].startswith("ERR 1 not JSON") and got[1].startswith("ERR 3 not a JSON object")
    assert got[2] == "ACK 3" and not sink.batches  # the sink was not called for nothing
    writer.write(line(4))
    assert await answer(reader) == "ACK 4"
    writer.close()


async def test_a_line_nested_too_deep_is_refused_and_the_stream_goes_on(
    stream: CdrStream, sink: Sink
) -> None:
    """40,000 '[' (under 64 KiB) raised RecursionError: the connection closed without an
    answer and the client resent the same line forever."""
    reader, writer = await connect(stream)
    writer.write(b"[" * 40_000 + b"\n" + line(2))
    assert await answer(reader) == "ERR 1 not JSON (nested too deeply)"
    assert await answer(reader) == "ACK 2"
    assert [r.record_id for r in sink.records] == ["m:2"]
    writer.close()


async def test_an_idle_connection_is_flushed_told_and_closed(sink: Sink) -> None:
    async with CdrStream(sink, mapping=EPOCH, flush_after=60, idle_timeout=0.2,
                         clock=lambda: NOW) as s:  # fmt: skip
        reader, writer = await connect(s)
        writer.write(line(1))  # then nothing: not even the end of the stream
        assert await answer(reader) == "ACK 1"  # the idle timeout flushes, not the 60 s timer
        assert await answer(reader) == "ERR 0 idle for 0.2 s, closed"
        assert await reader.read() == b"" and s.idle_closed == 1 and s.clients == 0
        assert [r.record_id for r in sink.records] == ["m:1"]
        writer.close()


async def test_connections_beyond_max_clients_are_told_why_and_closed(sink: Sink) -> None:
    async with CdrStream(sink, mapping=EPOCH, flush_after=0.01, max_clients=2,
                         clock=lambda: NOW) as s:  # fmt: skip
        first, second = await connect(s), await connect(s)
        for i, (reader, writer) in enumerate((first, second), 1):
            writer.write(line(i))
            assert await answer(reader) == "ACK 1"  # both served
        reader, writer = await connect(s)
        assert await answer(reader) == "ERR 0 too many connections (2), try again later"
        assert await reader.read() == b""
        writer.close()
        assert (s.turned_away, s.clients) == (1, 2)
        first[1].write_eof()  # one ends: its server side is gone before its EOF reaches it
        assert await first[0].read() == b""
        first[1].close()
        reader, writer = await connect(s)
        writer.write(line(3))
        assert await answer(reader) == "ACK 1"
        assert sorted(r.record_id for r in sink.records) == ["m:1", "m:2", "m:3"]
        for w in (second[1], writer):
            w.close()
