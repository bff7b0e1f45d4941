"""A TCP proxy that misbehaves on demand, whatever the protocol (asyncpg's test proxy is the
model): put it between a client and a real server and make the network delay, cut, freeze
(half-open), garble or trickle what passes.

    async with FaultProxy("127.0.0.1", broker_port) as proxy:   # clients connect to proxy.port
        proxy.freeze()          # connections stay open, nothing passes either way (half-open)
        proxy.thaw()            # what was held goes through
        proxy.cut()             # every connection reset at once (RST); new ones are accepted
        proxy.refuse = True     # new connections closed at once (the server seems down)
        proxy.delay = 0.5       # each chunk waits this long, both ways
        proxy.garble(1)         # the next chunk from the server has its bytes flipped
        proxy.rate = 1000       # bytes per second towards the client (a slow link)

It speaks no protocol: TLS, SMPP, MQTT and HTTP pass through as bytes, so the client and the
server are the real ones and only the network is made bad. Used by the adversity tests of the
SMPP, MQTT, centre and switch links (tests/test_adversity.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from dataclasses import dataclass, field
from types import TracebackType

log = logging.getLogger("fraudgate.faultproxy")

CHUNK = 65536


@dataclass
class ProxyStats:
    accepted: int = 0
    refused: int = 0
    cut: int = 0
    bytes_up: int = 0  # client -> server
    bytes_down: int = 0  # server -> client
    garbled: int = 0  # chunks


@dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.server):
            sock = writer.get_extra_info("socket")
            if sock is not None:  # RST, not FIN: the peer sees a reset connection
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    """`async with FaultProxy(host, port)`: listens on 127.0.0.1 (`port` 0: a free one, read
    `proxy.port`) and relays every connection to host:port."""

    def __init__(self, host: str, port: int, *, listen_port: int = 0) -> None:
        self.upstream = (host, port)
        self.listen_port = listen_port
        self.port = 0
        self.delay = 0.0
        self.rate = 0.0  # bytes per second towards the client; 0: unlimited
        self.refuse = False
        self.stats = ProxyStats()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._garble = 0
        self._pairs: set[_Pair] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.listen_port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        self.cut(count=False)
        if self._server is not None:
            await self._server.wait_closed()

    # -- faults -----------------------------------------------------------------------------

    def freeze(self) -> None:
        """Half-open: every connection stays open and nothing passes, either way (held)."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def cut(self, *, count: bool = True) -> None:
        """Reset every connection now (both sides see a reset); later ones are accepted."""
        for pair in list(self._pairs):
            pair.abort()
            if count:
                self.stats.cut += 1
        self._pairs.clear()

    def garble(self, chunks: int = 1) -> None:
        """Flip every byte of the next `chunks` chunks from the server to the client."""
        self._garble += chunks

    @property
    def connections(self) -> int:
        return len(self._pairs)

    # -- relaying ---------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            self.stats.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError as exc:
            log.debug("upstream %s:%d unreachable: %s", *self.upstream, exc)
            writer.transport.abort()
            return
        self.stats.accepted += 1
        pair = _Pair(writer, up_writer)
        self._pairs.add(pair)
        pair.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, up=True)),
            asyncio.create_task(self._pump(up_reader, writer, up=False)),
        ]
        try:
            await asyncio.wait(pair.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._pairs.discard(pair)
            for task in pair.tasks:
                task.cancel()
            for w in (writer, up_writer):
                w.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool
    ) -> None:
        """One direction until EOF or an error: each chunk waits for the faults of the moment."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                    await self._flowing.wait()
                if up:
                    self.stats.bytes_up += len(data)
                else:
                    data = self._maybe_garbled(data)
                    self.stats.bytes_down += len(data)
                await self._write(writer, data, slow=not up)
            writer.write_eof()

    def _maybe_garbled(self, data: bytes) -> bytes:
        if not self._garble:
            return data
        self._garble -= 1
        self.stats.garbled += 1
        return bytes(b ^ 0xFF for b in data)

    async def _write(self, writer: asyncio.StreamWriter, data: bytes, *, slow: bool) -> None:
        if not (slow and self.rate):
            writer.write(data)
            await writer.drain()
            return
        step = max(1, int(self.rate / 10))  # ten writes a second
        for i in range(0, len(data), step):
            writer.write(data[i : i + step])
            await writer.drain()
            await asyncio.sleep(len(data[i : i + step]) / self.rate)
