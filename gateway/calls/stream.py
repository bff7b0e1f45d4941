"""The CDR stream: a TCP listener for switches and mediation that send call records as they are
written, one JSON object a line (docs/calls-intake.md "Stream").

    client: AUTH <token>\\n            (first line, when a token is configured)
    server: ACK 1\\n
    client: {"record_type": "MOC", "start": "2026-12-08T10:15:30+05:00", ...}\\n   (line 2)
    client: {"record_type": "MTC", ...}\\n                                          (line 3)
    server: ACK 3\\n                   (lines 1..3 are taken: the client may drop them)
    client: not json\\n                                                            (line 4)
    server: ERR 4 not JSON (...)\\n    (refused for good: do not resend it)
    server: ACK 4\\n                   (within flush_after, bad lines alone too)
    server: ERR 0 <reason>\\n          (about the connection, not a line: it is closed)

Lines are counted from 1 on each connection, every line included (AUTH, blank, bad). Records
go to the sink in batches (at `batch_max` records, or `flush_after` seconds after the first
of a batch); `ACK n` is written once the sink has accepted every record up to line n (a
stretch of bad or blank lines alone is acknowledged `flush_after` seconds after its first
line too). A line longer than `max_line` bytes is answered ERR and skipped, and so is a line
the parser cannot take, whatever it holds. A client that disconnects mid-line loses only
that partial line: the complete lines before it are accepted (their ACK may not
reach it; resent, they are counted once, by Cdr.key()). When the sink fails the connection is
closed without ACK: the client resends what was not acknowledged.

Backpressure: while a full batch waits for the sink, the connection is not read (TCP pushes
back on the client); at most two batches per connection are held.

Limits: a connection that sends nothing (or reads none of its answers) for `idle_timeout`
seconds is flushed, answered `ERR 0 idle ...` and closed; beyond `max_clients` connections at
once, a new one is answered `ERR 0 too many connections ...` and closed (resend later).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from gateway.calls.cdr import Cdr, CdrError
from gateway.calls.inbox import CdrSink
from gateway.calls.reader import DEFAULT_MAPPING, JsonParser, Mapping

log = logging.getLogger("fraudgate.calls")

MAX_LINE = 64 * 1024
_READ = 64 * 1024


class LineFramer:
    """Bytes in, numbered lines out (sans-I/O). A line longer than `max_line` comes out as
    (n, None) once, and the rest of it is dropped as it arrives; a trailing "\\r" is removed.
    `partial` is what an unfinished last line holds (lost if the stream ends there)."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self.lines = 0
        self._buf = bytearray()
        self._skipping = False  # inside a line already reported as too long

    @property
    def partial(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[int, bytes | None]]:
        out: list[tuple[int, bytes | None]] = []
        buf = self._buf
        buf += data
        start = 0
        while (nl := buf.find(b"\n", start)) >= 0:
            if self._skipping:
                self._skipping = False
            else:
                self.lines += 1
                end = nl - 1 if nl > start and buf[nl - 1] == 0x0D else nl
                out.append(
                    (self.lines, None if end - start > self.max_line else bytes(buf[start:end]))
                )
            start = nl + 1
        del buf[:start]
        if len(buf) > self.max_line:
            if not self._skipping:
                self.lines += 1
                out.append((self.lines, None))
                self._skipping = True
            buf.clear()
        return out


class CdrStream:
    """The listener (an async context manager): `async with CdrStream(sink, port=...) as s:`;
    `s.port` is the bound port (0 picks one)."""

    def __init__(
        self,
        sink: CdrSink,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = "",
        mapping: Mapping = DEFAULT_MAPPING,
        batch_max: int = 1000,
        flush_after: float = 0.2,
        max_line: int = MAX_LINE,
        auth_timeout: float = 10.0,
        idle_timeout: float = 300.0,
        max_clients: int = 64,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sink = sink
        self.host = host
        self.port = port
        self.token = token
        self.mapping = mapping
        self.batch_max = batch_max
        self.flush_after = flush_after
        self.max_line = max_line
        self.auth_timeout = auth_timeout
        self.idle_timeout = idle_timeout
        self.max_clients = max_clients
        self.clock = clock
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        # counters for metrics (since start)
        self.connections = 0
        self.lines = 0  # lines received (all connections)
        self.refused = 0  # connections refused: no or a wrong token
        self.turned_away = 0  # connections refused: max_clients already connected
        self.idle_closed = 0  # connections closed after idle_timeout without a byte
        self._full = False  # turning connections away (logged once until there is room)
        self.records = 0  # good records handed to the sink
        self.duplicates = 0
        self.bad_lines = 0

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("CDR stream listening on %s:%d%s", self.host, self.port,
                 " (token required)" if self.token else "")  # fmt: skip
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._clients) >= self.max_clients:
            self._turn_away(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        self.connections += 1
        conn = _Connection(self, reader, writer)
        try:
            await conn.run()
        except Exception as e:  # the sink failed: no ACK, the client resends
            log.warning("CDR stream from %s closed: %s", conn.peer, e)
        finally:
            self._clients.discard(task)
            conn.close()
            if self._full:
                self._full = False  # room again: the next time it is full is logged again

    def _turn_away(self, writer: asyncio.StreamWriter) -> None:
        """A connection beyond max_clients: told why, closed (its client resends later)."""
        self.turned_away += 1
        if not self._full:
            self._full = True
            log.warning("CDR stream: %d connections, turning new ones away until one ends",
                        self.max_clients)  # fmt: skip
        writer.write(b"ERR 0 too many connections (%d), try again later\n" % self.max_clients)
        writer.close()


class _Connection:
    def __init__(
        self, stream: CdrStream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.stream = stream
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.source = f"stream {self.peer}"
        self.framer = LineFramer(stream.max_line)
        self.parser = JsonParser(stream.mapping, now=stream.clock())
        self.pending: list[Cdr] = []
        self.last_line = 0  # the last line read whole (records up to it pending or accepted)
        self.acked = 0
        self.lock = asyncio.Lock()
        self.timer: asyncio.TimerHandle | None = None
        self.flusher: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None  # the sink failed in a timed flush
        self.bad = 0
        self.first_bad = ""
        self.idle = False  # closed for idle_timeout

    async def run(self) -> None:
        if self.stream.token and not await self._authenticate():
            return
        while data := await self._read():
            self.parser.at(self.stream.clock())
            for n, line in self.framer.feed(data):
                await self._line(n, line)
            # a client that does not read its answers is not read; one that is gone still
            # has the lines it sent whole taken
            if not await self._drain():
                break
        if self.framer.partial:
            log.info("CDR stream from %s ended inside line %d: that partial line is lost",
                     self.peer, self.framer.lines + 1)  # fmt: skip
        await self._flush()
        if self.idle:
            self.stream.idle_closed += 1
            log.info("CDR stream from %s closed: idle for %g s", self.peer,
                     self.stream.idle_timeout)  # fmt: skip
            self._write(b"ERR 0 idle for %g s, closed\n" % self.stream.idle_timeout)

    async def _read(self) -> bytes:
        """The next bytes; b"" at the end, when the connection broke, or after idle_timeout
        without a byte (`idle` set)."""
        if self.failure is not None:
            raise self.failure
        try:
            async with asyncio.timeout(self.stream.idle_timeout):
                return await self.reader.read(_READ)
        except ConnectionError:
            return b""
        except TimeoutError:
            self.idle = True
            return b""

    async def _drain(self) -> bool:
        """Wait while the client does not read its answers; False after idle_timeout."""
        try:
            async with asyncio.timeout(self.stream.idle_timeout):
                await self.writer.drain()
        except ConnectionError:
            pass
        except TimeoutError:
            self.idle = True
            return False
        return True

    async def _authenticate(self) -> bool:
        """The first line must be AUTH <token>; anything else (or nothing within
        auth_timeout) is refused and the connection closed."""
        lines: list[tuple[int, bytes | None]] = []
        try:
            async with asyncio.timeout(self.stream.auth_timeout):
                while not lines and (data := await self._read()):
                    lines = self.framer.feed(data)
        except TimeoutError:
            pass
        first = lines[0][1] if lines else None
        expected = b"AUTH " + self.stream.token.encode()
        if first is None or not hmac.compare_digest(first.rstrip(), expected):
            self.stream.refused += 1
            log.warning("CDR stream from %s refused: no valid AUTH line", self.peer)
            self._write(b"ERR 1 authentication required: AUTH <token>\n")
            return False
        self.last_line = self.acked = 1
        self._write(b"ACK 1\n")
        for n, line in lines[1:]:
            await self._line(n, line)
        return True

    async def _line(self, n: int, line: bytes | None) -> None:
        self.last_line = n
        self.stream.lines += 1
        if line is None:
            self._error(n, f"line over {self.stream.max_line // 1024} KiB, skipped")
        elif line.strip():
            try:
                record = self.parser.parse(line)
            except CdrError as e:
                self._error(n, f"{e.field}: {e.reason}" if e.field else e.reason)
            except Exception as e:  # JsonParser raises CdrError only: this is the last guard
                self._error(n, f"cannot be read ({type(e).__name__})")
            else:
                self.pending.append(record)
                if len(self.pending) >= self.stream.batch_max:
                    await self._flush()  # not reading meanwhile: the backpressure
                    return
        if self.timer is None:  # bad and blank lines are acknowledged in time too
            self.timer = asyncio.get_running_loop().call_later(
                self.stream.flush_after, self._flush_soon
            )

    def _flush_soon(self) -> None:
        self.timer = None
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.ensure_future(self._timed_flush())

    async def _timed_flush(self) -> None:
        try:
            await self._flush()
        except Exception as e:
            self.failure = e  # the reader raises it
            self.writer.close()

    async def _flush(self) -> None:
        """Hand the pending records to the sink, then ACK the lines they came to."""
        async with self.lock:
            if self.failure is not None:
                raise self.failure
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            batch, last = self.pending, self.last_line
            self.pending = []
            if last <= self.acked:
                return
            if batch:
                new = await self.stream.sink.accept(batch, self.source)
                self.stream.records += len(batch)
                self.stream.duplicates += len(batch) - max(0, min(new, len(batch)))
            self.acked = last
            self._write(b"ACK %d\n" % last)

    def _error(self, n: int, reason: str) -> None:
        self.bad += 1
        self.stream.bad_lines += 1
        if not self.first_bad:
            self.first_bad = f"line {n}: {reason}"
        self._write(f"ERR {n} {' '.join(reason.split())}\n".encode())

    def _write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.flusher is not None and not self.flusher.done():
            self.flusher.cancel()
        if self.bad:
            log.warning("CDR stream from %s: %d bad lines, the first %s", self.peer, self.bad,
                        self.first_bad)  # fmt: skip
        self.writer.close()


__all__ = ["MAX_LINE", "CdrStream", "LineFramer"]
