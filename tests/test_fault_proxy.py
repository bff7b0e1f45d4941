"""The fault proxy itself (simulators/faultproxy.py) against a plain echo server: it relays, and
each fault does what the adversity tests rely on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from simulators.faultproxy import FaultProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, FaultProxy("127.0.0.1", port) as p:
        yield p


async def _round_trip(
    proxy: FaultProxy, data: bytes, timeout: float = 2.0
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(data)
    got = await asyncio.wait_for(reader.readexactly(len(data)), timeout)
    return reader, writer, got


async def test_it_relays_both_ways_and_counts(proxy: FaultProxy) -> None:
    _, writer, got = await _round_trip(proxy, b"hello" * 1000)
    assert got == b"hello" * 1000
    assert proxy.stats.bytes_up == proxy.stats.bytes_down == 5000 and proxy.connections == 1
    writer.close()


async def test_a_frozen_link_stays_open_holds_everything_and_delivers_it_when_thawed(
    proxy: FaultProxy,
) -> None:
    reader, writer, _ = await _round_trip(proxy, b"a")
    proxy.freeze()
    writer.write(b"held")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(4), 0.3)
    assert proxy.connections == 1 and not reader.at_eof()
    proxy.thaw()
    assert await asyncio.wait_for(reader.readexactly(4), 2) == b"held"
    writer.close()


async def test_a_cut_resets_the_connection_and_the_next_one_works(proxy: FaultProxy) -> None:
    reader, writer, _ = await _round_trip(proxy, b"a")
    proxy.cut()
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), 2)
    assert proxy.stats.cut == 1
    _, writer2, got = await _round_trip(proxy, b"again")
    assert got == b"again"
    writer.close()
    writer2.close()


async def test_refused_connections_close_at_once(proxy: FaultProxy) -> None:
    proxy.refuse = True
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"x")
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), 2)
    assert proxy.stats.refused == 1 and proxy.stats.accepted == 0
    writer.close()


async def test_garble_flips_the_next_chunk_from_the_server_only(proxy: FaultProxy) -> None:
    reader, writer, _ = await _round_trip(proxy, b"a")
    proxy.garble(1)
    writer.write(b"\x00\x0f")
    assert await asyncio.wait_for(reader.readexactly(2), 2) == b"\xff\xf0"
    writer.write(b"ok")
    assert await asyncio.wait_for(reader.readexactly(2), 2) == b"ok"
    writer.close()


async def test_delay_and_rate_slow_the_link(proxy: FaultProxy) -> None:
    proxy.delay = 0.2
    started = time.monotonic()
    _, writer, _ = await _round_trip(proxy, b"a")
    assert time.monotonic() - started >= 0.4  # each way
    writer.close()
    proxy.delay, proxy.rate = 0.0, 2000.0
    started = time.monotonic()
    _, writer, got = await _round_trip(proxy, b"x" * 1000, timeout=5)
    assert got == b"x" * 1000 and time.monotonic() - started >= 0.4
    writer.close()
