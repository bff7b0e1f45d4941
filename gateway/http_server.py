"""An ASGI application served by uvicorn inside the current event loop (one async CM).

uvicorn 0.54's `Server.serve()` installs handlers for SIGINT/SIGTERM (`capture_signals`) and
exits the process when it cannot bind; an embedded server must do neither: the daemon root owns
the signals. So the socket is bound here (a typed error, port 0 allowed, the port kept across a
restart) and `capture_signals` is a no-op. Used by the centre's inbound endpoint and simulator
(mutual TLS) and by the HTTP API (server TLS or plain HTTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Self

import uvicorn


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the embedding application handles signals


class EmbeddedHttpServer:
    """`async with EmbeddedHttpServer(app, host=..., port=...) as s:` serves `app` on
    {scheme}://{host}:{s.port}/ until the block ends. `ssl` holds uvicorn's ssl_* options;
    `error` builds the exception raised when the socket cannot be bound."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "http",
        ssl: dict[str, Any] | None = None,
        error: Callable[[str], Exception] = OSError,
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
