"""`ModemSupervisor` keeps one probe up for as long as it runs: it opens the `Modem`, polls its
health every `poll_interval`, forwards events, and reopens with capped exponential backoff and
jitter when the modem is gone (unplugged, refused) or hung; it logs once down and once back."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from gsm_probe.at import AtError
from gsm_probe.errors import ModemError
from gsm_probe.events import ProbeEvent, ProbeHealth
from gsm_probe.model import ModemConfig
from gsm_probe.modem import Modem
from smsc.backoff import Backoff, Failure, Outage

log = logging.getLogger("fraudgate.modem")
T = TypeVar("T")


EventCallback = Callable[[ProbeEvent], Awaitable[None] | None]
HealthCallback = Callable[[ProbeHealth], Awaitable[None] | None]


async def _call(callback: Callable[[T], Awaitable[None] | None], arg: T) -> None:
    result = callback(arg)
    if inspect.isawaitable(result):
        await result


class ModemSupervisor:
    """Keeps one probe modem open for as long as `run()` runs (see the module docstring)."""

    def __init__(
        self,
        config: ModemConfig,
        on_event: EventCallback,
        on_health: HealthCallback,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.on_event = on_event
        self.on_health = on_health
        self.backoff = backoff or Backoff(initial=1.0, cap=60.0)
        self.outage = Outage(self.backoff)  # logged once down, once back
        self.modem: Modem | None = None
        self.connects = 0  # successful opens, for status and tests
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ask `run()` to close the modem (queued events still forwarded) and return."""
        self._stop.set()

    async def run(self) -> None:
        name = self.config.name
        while not self._stop.is_set():
            try:
                async with Modem(self.config) as modem:
                    self.modem = modem
                    self.connects += 1
                    gone = self.outage.restored()
                    if gone is not None:
                        log.info("%s: modem back after %.1fs", name, gone)
                    await self._serve(modem)
            except (ModemError, AtError) as exc:
                self.modem = None
                if self.outage.failed(exc) is Failure.FIRST:
                    log.warning("%s: modem down (%s); reopening with backoff", name, exc)
                    await _call(self.on_health, ProbeHealth(name, connected=False, error=str(exc)))
                else:
                    log.debug("%s: reopen failed: %s", name, exc)
                await self.outage.pause(self._stop)
        self.modem = None

    async def _serve(self, modem: Modem) -> None:
        """Forward events and poll health until stop() or the modem fails (raised). An
        exception of on_event / on_health is a bug: it ends run()."""
        forward = asyncio.create_task(self._forward(modem))
        try:
            await self._poll(modem, forward)
        finally:
            await modem.close()  # ends the event iteration once the queue is drained
            await forward
        if modem.failure is not None:
            raise modem.failure

    async def _forward(self, modem: Modem) -> None:
        async for event in modem:
            await _call(self.on_event, event)

    async def _poll(self, modem: Modem, forward: asyncio.Task[None]) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        closed = asyncio.ensure_future(modem.wait_closed())
        ends: set[asyncio.Future[Any]] = {stop, closed, forward}
        try:
            while True:
                health = await modem.health()
                if modem.failure is not None:
                    return  # run() reports it down, once
                await _call(self.on_health, health)
                interval = self.config.poll_interval
                done, _ = await asyncio.wait(ends, timeout=interval, return_when="FIRST_COMPLETED")
                if done:
                    return
        finally:
            stop.cancel()
            closed.cancel()
