"""An HTTPS (mutual TLS) ASGI server running inside the current event loop.

uvicorn 0.54's `Server.serve()` installs handlers for SIGINT/SIGTERM (`capture_signals`) and
exits the process when it cannot bind; an embedded server must do neither: the daemon root owns
the signals. So the socket is bound here (errors raised, port 0 allowed) and `capture_signals`
is a no-op. Client certificates are required (ssl.CERT_REQUIRED): a client without one, or with
one from another CA, never completes the handshake and never reaches the application.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import uvicorn

from .config import server_context
from .errors import CentreConfigError


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the embedding application handles signals


class TlsHttpServer:
    """`async with TlsHttpServer(app, cert, key, client_ca, host, port) as s:` serves `app` on
    https://{host}:{s.port}/ until the block ends."""

    def __init__(
        self,
        app: Any,
        *,
        cert: Any,
        key: Any,
        client_ca: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "https",
    ) -> None:
        server_context(cert, key, client_ca)  # fail early, typed, on unusable files
        self.host = host
        self._requested_port = port
        self.port = port
        self.name = name
        self._config = uvicorn.Config(
            app,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            ssl_ca_certs=str(client_ca),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
            lifespan="off",
            log_config=None,  # leave the process' logging alone
            access_log=False,  # request lines carry nothing useful and cost a line each
            timeout_graceful_shutdown=5,
        )
        self._server = _EmbeddedServer(self._config)
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    async def start(self) -> None:
        try:
            sock = socket.create_server((self.host, self._requested_port), reuse_port=False)
        except OSError as e:
            raise CentreConfigError(
                f"{self.name}: cannot listen on {self.host}:{self.port}: {e}"
            ) from e
        sock.setblocking(False)
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        self._requested_port = self.port  # a restart (simulated outage) keeps the port
        self._server.should_exit = False
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=self.name)
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what stopped it
                raise CentreConfigError(f"{self.name}: the server stopped while starting")
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
        self._server = _EmbeddedServer(self._config)  # a Server runs once

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


__all__ = ["TlsHttpServer"]
