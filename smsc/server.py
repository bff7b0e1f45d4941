"""SMSC side listener: accepts ESME connections, one `Link` each, the handler decides binds."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections.abc import Callable

from smsc.link import Link, LinkHandler
from smsc.session import Role, SessionConfig

log = logging.getLogger("fraudgate.smpp.server")


class SmppServer:
    """`async with SmppServer(handler_factory, "127.0.0.1", 0) as srv:` listens; `srv.port` is
    the bound port (0 picks a free one). On exit: stop listening, unbind every bound link (their
    pending requests drained), abort the rest."""

    def __init__(
        self,
        handler_factory: Callable[[], LinkHandler],
        host: str = "127.0.0.1",
        port: int = 2775,
        *,
        session_config: SessionConfig | None = None,
        ssl_context: ssl.SSLContext | None = None,
        name: str = "smsc",
    ) -> None:
        self.handler_factory = handler_factory
        self.host = host
        self.port = port
        self.session_config = session_config or SessionConfig()
        self.ssl_context = ssl_context
        self.name = name
        self.links: set[Link] = set()
        self._server: asyncio.Server | None = None

    def _make_link(self) -> Link:
        cfg = dataclasses.replace(self.session_config)  # each link may be retuned on bind
        link = Link(Role.SMSC, self.handler_factory(), cfg, name=self.name)
        self.links.add(link)
        link.closed.add_done_callback(lambda _: self.links.discard(link))
        return link

    async def __aenter__(self) -> SmppServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._make_link, self.host, self.port, ssl=self.ssl_context, reuse_address=True
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        log.info("%s: listening on %s:%d", self.name, self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.close()
        links = list(self.links)
        await asyncio.gather(
            *(link.unbind(timeout) for link in links if link.session.bound),
            return_exceptions=True,
        )
        for link in list(self.links):
            link.abort("server shutting down")
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
