"""[calls] in the daemon: the sink (CallService), the inbox and the stream, as one task of the
daemon's TaskGroup (docs/calls.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from gateway.calls.analyzer import CallFinding
from gateway.calls.inbox import Inbox
from gateway.calls.ledger import Ledger
from gateway.calls.reader import DEFAULT_MAPPING, Mapping
from gateway.calls.repository import CallFindings
from gateway.calls.service import CallService
from gateway.calls.settings import CallsSettings
from gateway.calls.stream import CdrStream
from gateway.store import Store

log = logging.getLogger("fraudgate.calls")


class Calls:
    def __init__(
        self,
        settings: CallsSettings,
        store: Store,
        *,
        wake: Callable[[], None] = lambda: None,
        node: str = "",
        on_finding: Callable[[CallFinding], None] | None = None,
    ) -> None:
        self.settings = settings
        mapping = Mapping.load(settings.mapping) if settings.mapping else DEFAULT_MAPPING
        self.service = CallService(settings, CallFindings(store), wake=wake, on_finding=on_finding)
        self.inbox = (
            Inbox(
                Path(settings.inbox), self.service, Ledger(store), mapping=mapping, node=node,
                after=settings.after, interval=settings.scan_interval,
            )
            if settings.inbox
            else None
        )  # fmt: skip
        self.stream = (
            CdrStream(
                self.service, host=settings.stream_host, port=settings.stream_port,
                token=settings.stream_token, mapping=mapping,
                idle_timeout=settings.stream_idle_timeout, max_clients=settings.stream_max_clients,
            )
            if settings.stream_host
            else None
        )  # fmt: skip
        self._confirming: set[asyncio.Task[object]] = set()

    async def run(self) -> None:
        """Until cancelled: the stream listens, the inbox scans. A file being read when this is
        cancelled resumes from its checkpoint next run."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self.stream is not None:
                    await stack.enter_async_context(self.stream)
                if self.inbox is not None:
                    await self.inbox.run()
                else:
                    await asyncio.Event().wait()
        finally:
            self.service.close()

    def confirm(self, msisdn: str, at: float) -> None:
        """A probe test named `msisdn` a SIM-box SIM (called from the probe manager)."""
        task = asyncio.get_running_loop().create_task(self._confirm(msisdn, at))
        self._confirming.add(task)
        task.add_done_callback(self._confirming.discard)

    async def _confirm(self, msisdn: str, at: float) -> None:
        try:
            found = await self.service.confirm(msisdn, at)
        except Exception as e:  # the store: the siblings are found again at the next sighting
            log.warning("SIM-box siblings of %s not recorded: %s", msisdn, e)
            return
        if found:
            log.info("%d SIM-box sibling(s) of the confirmed SIM %s", len(found), msisdn)
