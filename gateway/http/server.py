"""An ASGI application served by uvicorn inside the current event loop (one async CM).

uvicorn 0.54's `Server.serve()` installs handlers for SIGINT/SIGTERM (`capture_signals`) and
exits the process when it cannot bind; an embedded server must do neither: the daemon root owns
the signals. So the socket is bound here (a typed error, port 0 allowed, the port kept across a
restart) and `capture_signals` is a no-op. Used by the centre's inbound endpoint and simulator
(mutual TLS) and by the HTTP API (server TLS or plain HTTP).

The same loop answers the SMSC, so what one HTTP client may hold is bounded here (bodies are
bounded by gateway/http/guard.py, in front of the application):
- `max_connections` (uvicorn's limit_concurrency): a request beyond it is answered 503;
- `client_timeout`: a request's headers must all arrive within it, counted from the connection
  (after the TLS handshake, which has asyncio's own 60 s) or from the previous answer. uvicorn
  has no such deadline: its keep-alive timer stops at a request's first byte, so a client
  sending headers a byte at a time (slowloris) would hold its connection, and a slot, forever;
- a client that stops reading its answer for `client_timeout` is cut off (its unsent answer
  would otherwise hold the connection and the request's task);
- idle keep-alive connections close after 5 s (uvicorn's timeout_keep_alive); request headers
  are at most 16 KiB (h11's max incomplete event size; more: 400).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Self

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

KEEP_ALIVE = 5  # seconds an idle connection stays open (uvicorn's timeout_keep_alive)
MAX_HEADER_BYTES = 16 * 1024  # h11's limit on a request's head; more is answered 400


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the embedding application handles signals


class _DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the two deadlines of the module's docstring (headers in
    time; answers read). `client_timeout` is set by `_protocol` on a subclass per server."""

    client_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._headers_due: asyncio.TimerHandle | None = None
        self._write_due: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_due = self.loop.call_later(self.client_timeout, self._headers_late)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the headers are in; the guard bounds the body
            self._cancel_headers_due()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if waiting and self._headers_due is None:
            self._headers_due = self.loop.call_later(self.client_timeout, self._headers_late)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_due is None:
            self._write_due = self.loop.call_later(self.client_timeout, self.transport.abort)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_write_due()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_headers_due()
        self._cancel_write_due()
        super().connection_lost(exc)

    def _cancel_headers_due(self) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def _cancel_write_due(self) -> None:
        if self._write_due is not None:
            self._write_due.cancel()
            self._write_due = None

    def _headers_late(self) -> None:
        self._headers_due = None
        if self.conn.their_state is h11.IDLE:  # nothing to answer yet: just hang up
            self.transport.close()


def _protocol(client_timeout: float) -> type[H11Protocol]:
    """The protocol class uvicorn instantiates per connection, with this server's deadline."""
    return type("DeadlineH11Protocol", (_DeadlineH11Protocol,), {"client_timeout": client_timeout})


class EmbeddedHttpServer:
    """`async with EmbeddedHttpServer(app, host=..., port=...) as s:` serves `app` on
    {scheme}://{host}:{s.port}/ until the block ends. `ssl` holds uvicorn's ssl_* options;
    `error` builds the exception raised when the socket cannot be bound; `max_connections`
    and `client_timeout` bound what clients may hold (the module's docstring)."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "http",
        ssl: dict[str, Any] | None = None,
        error: Callable[[str], Exception] = OSError,
        max_connections: int = 32,
        client_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.port = port
        self.name = name
        self.scheme = "https" if ssl else "http"
        self._error = error
        self._config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,  # leave the process' logging alone
            access_log=False,  # a request line may name numbers in its path (R7)
            timeout_graceful_shutdown=5,
            http=_protocol(client_timeout),
            limit_concurrency=max_connections,
            timeout_keep_alive=KEEP_ALIVE,
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
            **(ssl or {}),
        )
        self._server = _EmbeddedServer(self._config)
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        try:
            sock = socket.create_server((self.host, self._requested_port))
        except OSError as e:
            raise self._error(f"{self.name}: cannot listen on {self.host}:{self.port}: {e}") from e
        sock.setblocking(False)
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        self._requested_port = self.port  # a restart (a simulated outage) keeps the port
        self._server.should_exit = False
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=self.name)
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what stopped it
                raise self._error(f"{self.name}: the server stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=10)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._server = _EmbeddedServer(self._config)  # a uvicorn Server runs once

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
