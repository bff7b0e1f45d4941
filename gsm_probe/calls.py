"""The modem's call tracker: one IncomingCall per call, from RING / +CRING, +CLIP and NO CARRIER
(TS 27.007 §6.11, §7.6), with the caller's number when the network gave it; the test call is
rejected once its CLI is read (no charge). A mixin of `Modem`, which provides what is declared
here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from gsm_probe.at import AtParseError, Unsolicited, parse_clip
from gsm_probe.events import IncomingCall, ProbeEvent
from gsm_probe.masking import masked
from gsm_probe.model import Job, ModemConfig

log = logging.getLogger("fraudgate.modem")



@dataclass
class _Call:
    reported: bool = False
    timer: asyncio.TimerHandle | None = None  # the end: ring_timeout after the last RING
    cli_timer: asyncio.TimerHandle | None = None  # no +CLIP by then: report without a CLI


class CallTracker:
    """RING, +CLIP and NO CARRIER in; one IncomingCall out per call."""

    config: ModemConfig
    clock: Callable[[], float]
    _call: _Call | None

    def _emit(self, event: ProbeEvent) -> None:
        raise NotImplementedError  # Modem's

    def _schedule(self, job: Job) -> None:
        raise NotImplementedError  # Modem's

    async def hangup(self) -> None:
        raise NotImplementedError  # Modem's

    def _on_ring(self, urc: Unsolicited) -> None:
        call = self._call_now()
        if call.cli_timer is None and not call.reported:
            loop = asyncio.get_running_loop()
            call.cli_timer = loop.call_later(self.config.cli_timeout, self._no_cli, call)

    def _no_cli(self, call: _Call) -> None:
        if call is self._call and not call.reported:
            self._report_call(call, "", 129, 2)  # it rings and no +CLIP: CLI not available

    def _on_clip(self, urc: Unsolicited) -> None:
        try:
            number, ton, validity = parse_clip(urc.value)
        except AtParseError as exc:
            log.warning("%s: %s", self.config.name, exc)
            return
        call = self._call_now()
        if not call.reported:
            self._report_call(call, number, ton, validity)

    def _on_call_end(self, urc: Unsolicited) -> None:
        self._end_call()

    def _call_now(self) -> _Call:
        call = self._call
        if call is None:
            call = self._call = _Call()
        if call.timer is not None:
            call.timer.cancel()
        loop = asyncio.get_running_loop()
        call.timer = loop.call_later(self.config.ring_timeout, self._end_call)
        return call

    def _report_call(self, call: _Call, number: str, ton: int, validity: int) -> None:
        call.reported = True
        if call.cli_timer is not None:
            call.cli_timer.cancel()
        event = IncomingCall(self.config.name, number, ton, validity, self.clock())
        log.info("%s: call from %s (ton %d)", self.config.name, masked(number), ton)
        self._emit(event)
        if self.config.hangup_after_cli:
            self._schedule(self._hangup_call)

    async def _hangup_call(self) -> None:
        call = self._call
        if call is not None:
            await self.hangup()
            if self._call is call:
                self._end_call()  # we ended it: the next RING is the next call

    def _end_call(self) -> None:
        self._end_call_timers()
        call, self._call = self._call, None
        if call is None:
            return
        if not call.reported:
            self._report_call(call, "", 129, 2)

    def _end_call_timers(self) -> None:
        call = self._call
        for timer in (call.timer, call.cli_timer) if call is not None else ():
            if timer is not None:
                timer.cancel()

