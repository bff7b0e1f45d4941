"""One open serial port: bytes to the sans-I/O AT session (gsm_probe.at), its events to the
modem, one command pending at a time with its timeout."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from gsm_probe.at import (
    AtSession,
    CommandCompleted,
    CommandTimedOut,
    Event,
    Garbage,
    Prompt,
    Unsolicited,
)
from gsm_probe.errors import ModemGone, ModemTimeout
from gsm_probe.masking import shown


class LinkOwner(Protocol):
    """What a link reports to: the modem."""

    def _on_urc(self, urc: Unsolicited) -> None: ...

    def _on_garbage(self, garbage: Garbage) -> None: ...

    def _link_lost(self, link: AtLink, reason: str) -> None: ...


class AtLink(asyncio.Protocol):
    """One open port: bytes to the session, its events to the modem, one pending waiter."""

    def __init__(self, modem: LinkOwner, session: AtSession) -> None:
        self.loop = asyncio.get_running_loop()
        self.modem = modem
        self.session = session
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = self.loop.create_future()
        self._waiter: asyncio.Future[CommandCompleted] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._dispatch(self.session.receive(data, self.loop.time()))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        reason = f"link lost: {exc}" if exc else "link closed by peer"
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ModemGone(reason))
        if not self.lost.done():
            self.lost.set_result(None)
        self.modem._link_lost(self, reason)

    @property
    def open(self) -> bool:
        return not self.lost.done()

    def write(self, data: bytes) -> None:
        transport = self.transport
        if data and transport is not None and not transport.is_closing():
            transport.write(data)

    def execute(
        self, command: str, expect: str | None, pdu: bytes | None, timeout: float
    ) -> asyncio.Future[CommandCompleted]:
        if not self.open:
            raise ModemGone("link closed")
        data = self.session.send(
            command, expect=expect, pdu=pdu, now=self.loop.time(), timeout=timeout
        )
        self._waiter = self.loop.create_future()
        self.write(data)
        self._arm()
        return self._waiter

    async def idle(self) -> None:
        """Wait out a command left pending by a cancelled caller (it ends by its timeout)."""
        waiter = self._waiter
        if self.session.pending is not None and waiter is not None and not waiter.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(waiter)

    def abort(self) -> None:
        transport = self.transport
        if transport is None:
            if not self.lost.done():
                self.lost.set_result(None)
        elif not transport.is_closing():
            transport.abort()

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, CommandCompleted):
                self._resolve(event)
            elif isinstance(event, CommandTimedOut):
                self._resolve(ModemTimeout(f"{shown(event.command)}: no final result"))
            elif isinstance(event, Unsolicited):
                self.modem._on_urc(event)
            elif isinstance(event, Garbage):
                self.modem._on_garbage(event)
            elif isinstance(event, Prompt):
                self.write(self.session.data_to_send())
        self._arm()

    def _resolve(self, outcome: CommandCompleted | ModemTimeout) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if isinstance(outcome, ModemTimeout):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.session.next_deadline
        if deadline is not None and self.open:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch(self.session.handle_timer(self.loop.time()))
