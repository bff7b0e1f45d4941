"""The modem's SMS inbox: +CMTI / +CMT / +CDSI in (TS 27.005 §3.4.1), each stored message read,
the parts of a long one collected (TS 23.040 §9.2.3.24.1), the whole handed on as SmsReceived,
then deleted from the SIM, so that nothing is lost while the driver is down (see the modem's
docstring). A mixin of `Modem`, which provides what is declared here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from gsm_probe.at import AtError, AtParseError, Unsolicited, parse_cmti, parse_stored_pdus
from gsm_probe.errors import ModemError, ModemTimeout
from gsm_probe.events import ProbeEvent, SmsReceived
from gsm_probe.masking import masked
from gsm_probe.model import Job, ModemConfig, StoredSms
from gsm_probe.ts23040 import SmsDeliver, SmsStatusReport, TpduError, decode_mt, join_parts

log = logging.getLogger("fraudgate.modem")

Slot = tuple[str, int]  # (storage, index) of a message still on the SIM


@dataclass
class _Partial:
    """Parts of one concatenated SMS (TS 23.040 §9.2.3.24.1) waiting for the rest."""

    total: int
    parts: dict[int, SmsDeliver] = field(default_factory=dict)
    slots: list[Slot] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class SmsInbox:
    """Stored and routed SMS in; whole messages out, deleted from storage once handed on."""

    config: ModemConfig
    clock: Callable[[], float]
    _lock: asyncio.Lock
    _closing: bool
    _failure: ModemError | None
    _mem: str | None
    _partials: dict[tuple[str, int, int], _Partial]
    _taken: set[Slot]

    def _emit(self, event: ProbeEvent) -> None:
        raise NotImplementedError  # Modem's

    def _schedule(self, job: Job) -> None:
        raise NotImplementedError  # Modem's

    async def _exchange(
        self, cmd: str, *, expect: str | None = None, timeout: float | None = None,
        pdu: bytes | None = None,
    ) -> list[str]:  # fmt: skip
        raise NotImplementedError  # Modem's

    async def _read_locked(self, index: int, mem: str | None) -> StoredSms | None:
        raise NotImplementedError  # Modem's

    async def delete_sms(self, index: int, mem: str | None = None) -> None:
        raise NotImplementedError  # Modem's

    def _on_cmt(self, urc: Unsolicited) -> None:
        if urc.pdu is not None:
            self._take_pdu(urc.pdu, None)

    def _on_cmti(self, urc: Unsolicited) -> None:
        try:
            mem, index = parse_cmti(urc.value)
        except AtParseError as exc:
            log.warning("%s: %s", self.config.name, exc)
            return
        self._schedule(lambda: self._fetch(mem, index))

    def _on_cdsi(self, urc: Unsolicited) -> None:
        with contextlib.suppress(AtParseError):
            mem, index = parse_cmti(urc.value)
            self._schedule(lambda: self._delete_slots([(mem, index)]))  # a report: not needed

    async def _fetch(self, mem: str, index: int) -> None:
        async with self._lock:
            stored = await self._read_locked(index, mem)
        if stored is not None:
            self._take_pdu(stored.pdu, (mem.upper(), index))

    async def _take_stored_all(self) -> None:
        """Whatever the storage holds at start (TS 27.005 §3.4.2, stat 4 = all)."""
        try:
            lines = await self._exchange("AT+CMGL=4", timeout=self.config.sms_timeout)
            stored = parse_stored_pdus(lines, "+CMGL")
        except (AtError, ModemTimeout) as exc:
            log.warning("%s: stored SMS not listed: %s", self.config.name, exc)
            return
        for index, _, pdu in stored:
            self._take_pdu(pdu, ((self._mem or "").upper(), index or 0))

    def _take_pdu(self, pdu: bytes, slot: Slot | None) -> None:
        if slot is not None:
            if slot in self._taken:
                return  # +CMTI and a listing both saw it: once is enough
            self._taken.add(slot)
        try:
            message = decode_mt(pdu)
        except TpduError as exc:
            # Kept on the SIM for an engineer: deleting it would lose it.
            log.warning("%s: SMS PDU (%d octets) not decoded: %s", self.config.name, len(pdu), exc)
            return
        if isinstance(message, SmsStatusReport):
            log.info("%s: status report for TP-MR %d", self.config.name, message.reference)
            if slot is not None:
                self._schedule(lambda: self._delete_slots([slot]))
            return
        self._collect(message, slot)

    def _collect(self, sms: SmsDeliver, slot: Slot | None) -> None:
        slots = [slot] if slot is not None else []
        concat = sms.concat
        if concat is None or concat.total <= 1:
            self._hand_on([sms], slots)
            return
        key = (str(sms.originator), concat.ref, concat.total)
        partial = self._partials.get(key)
        if partial is None:
            partial = self._partials[key] = _Partial(concat.total)
            loop = asyncio.get_running_loop()
            partial.timer = loop.call_later(self.config.concat_timeout, self._expire_partial, key)
        partial.parts.setdefault(concat.seq, sms)  # a repeated part: its slot is freed too
        partial.slots += slots
        if len(partial.parts) == partial.total:
            self._finish_partial(key)

    def _finish_partial(self, key: tuple[str, int, int]) -> None:
        partial = self._partials.pop(key)
        if partial.timer is not None:
            partial.timer.cancel()
        parts = [partial.parts[seq] for seq in sorted(partial.parts)]
        if len(parts) < partial.total:
            log.warning(
                "%s: SMS handed on with %d of %d parts",
                self.config.name,
                len(parts),
                partial.total,
            )
        self._hand_on(parts, partial.slots)

    def _expire_partial(self, key: tuple[str, int, int]) -> None:
        if key in self._partials:
            self._finish_partial(key)

    def _flush_partials(self, *, stored_too: bool) -> None:
        """At close: parts that came by +CMT exist nowhere else, hand them on now; stored ones
        stay on the SIM and are read again at the next start."""
        for key, partial in list(self._partials.items()):
            if stored_too or not partial.slots:
                self._finish_partial(key)
            elif partial.timer is not None:
                partial.timer.cancel()

    def _hand_on(self, parts: list[SmsDeliver], slots: list[Slot]) -> None:
        first = parts[0]
        try:
            text = join_parts(parts)
        except TpduError:
            text = "".join(p.text for p in parts)  # incomplete: what arrived, in order
        self._emit(
            SmsReceived(
                probe=self.config.name,
                originator=str(first.originator),
                originator_ton=first.originator.ton,
                text=text,
                smsc=str(first.smsc) if first.smsc is not None else "",
                sent_at=first.timestamp.timestamp(),
                parts=len(parts),
                at=self.clock(),
                total=first.concat.total if first.concat is not None else 1,
            )
        )
        log.info(
            "%s: SMS from %s, %d part(s)",
            self.config.name,
            masked(str(first.originator)),
            len(parts),
        )
        if slots and not self._closing and self._failure is None:
            self._schedule(lambda: self._delete_slots(slots))

    async def _delete_slots(self, slots: list[Slot]) -> None:
        for mem, index in slots:
            await self.delete_sms(index, mem or None)
            self._taken.discard((mem, index))


