"""ESME side: one async context manager per bind, and a supervisor that keeps a bind up.

    async with EsmeClient(config, handler) as link:      # connected and bound
        resp = await link.request(SubmitSm(...))
    # drained and unbound here

`EsmeSupervisor.run()` reconnects with capped exponential backoff and jitter; it logs once when
the link drops and once when it is back, not at every attempt.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass, field

from smsc.backoff import Backoff, Failure, Outage
from smsc.counters import PduCounters
from smsc.link import BindError, Link, LinkClosedError, LinkHandler
from smsc.pdu import Pdu
from smsc.session import BindType, Role, SessionConfig

log = logging.getLogger("fraudgate.smpp.client")


@dataclass
class TlsConfig:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True
    server_hostname: str | None = None

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


@dataclass
class EsmeConfig:
    host: str
    port: int
    system_id: str
    password: str
    bind_type: BindType = BindType.TRANSCEIVER
    system_type: str = ""
    address_range: str = ""
    session: SessionConfig = field(default_factory=SessionConfig)
    tls: TlsConfig | None = None
    connect_timeout: float = 10.0
    bind_timeout: float = 10.0
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.system_id}@{self.host}:{self.port}"


class EsmeClient:
    """Connect, bind; on exit drain, unbind and close."""

    def __init__(
        self, config: EsmeConfig, handler: LinkHandler, counters: PduCounters | None = None
    ) -> None:
        self.config = config
        self.handler = handler
        self.counters = counters
        self.link: Link | None = None

    async def __aenter__(self) -> Link:
        cfg = self.config
        loop = asyncio.get_running_loop()
        ssl_ctx = cfg.tls.context() if cfg.tls else None
        hostname = cfg.tls.server_hostname or cfg.host if cfg.tls else None
        _, link = await asyncio.wait_for(
            loop.create_connection(
                lambda: Link(
                    Role.ESME, self.handler, cfg.session, name=cfg.label, counters=self.counters
                ),
                cfg.host,
                cfg.port,
                ssl=ssl_ctx,
                server_hostname=hostname,
            ),
            cfg.connect_timeout,
        )
        self.link = link
        try:
            await asyncio.wait_for(
                link.bind(
                    cfg.bind_type,
                    cfg.system_id,
                    cfg.password,
                    system_type=cfg.system_type,
                    address_range=cfg.address_range,
                ),
                cfg.bind_timeout,
            )
        except BaseException:
            link.abort("bind failed")
            raise
        return link

    async def __aexit__(self, *exc: object) -> None:
        link = self.link
        if link is None:
            return
        if link.session.bound:
            await link.unbind()
        elif not link.closed.done():
            link.abort("client exit")


class EsmeSupervisor:
    """Keeps one bind up for as long as `run()` runs; `request()` waits for a bound link."""

    def __init__(
        self, config: EsmeConfig, handler: LinkHandler, backoff: Backoff | None = None
    ) -> None:
        self.config = config
        self.handler = handler
        self.backoff = backoff or Backoff()
        self.outage = Outage(self.backoff)  # logged once down, once back
        self.link: Link | None = None
        self._bound = asyncio.Event()
        self._stop = asyncio.Event()
        self.binds = 0  # successful binds, for status and tests
        self.failures = 0  # connections or binds that failed, and bound links that dropped
        self.pdus = PduCounters()  # over every link of this bind (gateway.metrics reads them)

    async def run(self) -> None:
        label = self.config.label
        while not self._stop.is_set():
            try:
                async with EsmeClient(self.config, self.handler, self.pdus) as link:
                    self.link = link
                    self.binds += 1
                    gone = self.outage.restored()
                    if gone is not None:
                        log.info("%s: link back after %.1fs", label, gone)
                    else:
                        log.info("%s: bound as %s", label, self.config.bind_type.value)
                    self._bound.set()
                    stop = asyncio.ensure_future(self._stop.wait())
                    await asyncio.wait({stop, link.closed}, return_when=asyncio.FIRST_COMPLETED)
                    stop.cancel()
                    self._bound.clear()
                    if link.closed.done():
                        reason, _ = link.closed.result()
                        raise LinkClosedError(reason)
            except (OSError, TimeoutError, BindError, LinkClosedError) as exc:
                self._bound.clear()
                self.link = None
                self.failures += 1
                if self.outage.failed(exc) is Failure.FIRST:
                    log.warning("%s: link down (%s); reconnecting with backoff", label, exc)
                else:
                    log.debug("%s: reconnect failed: %s", label, exc)
                if isinstance(exc, BindError) and exc.status in (0x0E, 0x0F):
                    log.debug("%s: credentials refused; still retrying", label)
                await self.outage.pause(self._stop)
        self.link = None

    def stop(self) -> None:
        """Ask `run()` to drain, unbind and return."""
        self._stop.set()

    async def wait_bound(self, timeout: float | None = None) -> Link:
        """The bound link, once there is one. A link that closed before this supervisor saw
        it is not returned: the wait yields until the next bind (a caller looping on it would
        otherwise never give the supervisor the turn to notice: nothing here would suspend)."""
        return await asyncio.wait_for(self._bound_link(), timeout)

    async def _bound_link(self) -> Link:
        while True:
            await self._bound.wait()
            link = self.link
            if link is not None and link.session.bound:
                return link
            await asyncio.sleep(0.01)

    async def request(self, pdu: Pdu, timeout: float = 30.0) -> Pdu:
        link = await self.wait_bound(timeout)
        return await link.request(pdu, timeout=timeout)
