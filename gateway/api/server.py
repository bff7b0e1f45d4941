"""The API's HTTP(S) server inside the current event loop (uvicorn, no signal handlers).

    async with ApiServer(ApiConfig(host="0.0.0.0", port=8443, cert=..., key=...), app) as s:
        ...   # https://{host}:{s.port}/v1/...

It reuses the centre's embedded uvicorn server (gateway.centre.server): the socket is bound
here (errors raised, port 0 allowed) and the daemon root keeps the signals. TLS is server-side
only (clients authenticate with bearer tokens); without cert and key it serves plain HTTP,
for loopback behind a TLS-terminating proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn

from gateway.centre.server import _EmbeddedServer


class ApiConfigError(ValueError):
    """The API server cannot be set up as configured (the message says which key, why)."""


@dataclass(frozen=True, slots=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    cert: Path | None = None  # PEM certificate chain; TLS when cert and key are set
    key: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ApiConfigError("api.cert and api.key: set both (TLS) or neither (plain HTTP)")
        for name, path in (("api.cert", self.cert), ("api.key", self.key)):
            if path is not None and not Path(path).is_file():
                raise ApiConfigError(f"{name}: no such file {path}")
        if not 0 <= self.port <= 65535:
            raise ApiConfigError(f"api.port: {self.port} is not a TCP port")

    @property
    def tls(self) -> bool:
        return self.cert is not None


class ApiServer:
    """`async with ApiServer(config, app) as s:` serves `app` on s.url until the block ends."""

    def __init__(self, config: ApiConfig, app: Any) -> None:
        self.config = config
        self.port = config.port
        tls: dict[str, Any] = {}
        if config.cert is not None and config.key is not None:
            tls = {"ssl_certfile": str(config.cert), "ssl_keyfile": str(config.key)}
        self._uvicorn = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,  # leave the process' logging alone
            access_log=False,  # a request line names numbers in its path (R7)
            timeout_graceful_shutdown=5,
            **tls,
        )
        self._server = _EmbeddedServer(self._uvicorn)
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{self.config.host}:{self.port}"

    async def start(self) -> None:
        try:
            sock = socket.create_server((self.config.host, self.config.port))
        except OSError as e:
            raise ApiConfigError(
                f"api: cannot listen on {self.config.host}:{self.config.port}: {e}"
            ) from e
        sock.setblocking(False)
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="api")
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what stopped it
                raise ApiConfigError("api: the server stopped while starting")
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
        self._server = _EmbeddedServer(self._uvicorn)  # a uvicorn Server runs once

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
