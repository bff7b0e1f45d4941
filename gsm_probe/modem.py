"""The probe modem driver: one serial link, the AT engine of `gsm_probe.at` pumped by asyncio.

    async with Modem(ModemConfig(name="p1", url="/dev/ttyUSB2")) as modem:
        print(modem.identity, await modem.signal_dbm())
        async for event in modem:                 # IncomingCall, SmsReceived, RegistrationChanged
            ...

The driver's parts: `transport` (one open port, `AtLink`), `errors`, `model` (settings and
what the modem reports), `calls` (the call tracker) and `inbox` (the SMS inbox), mixed into
`Modem`, `cells` (vendors' serving-cell reports), `masking` (what the logs show), `supervisor`
(`ModemSupervisor` keeps one probe up, reopening with backoff). This module is the command API,
the start-up sequence and the dispatch of URCs.

Transport: `serial_asyncio_fast.create_serial_connection`. For device paths (ttyUSB, a pty or a
symlink to one) it opens `serial.serial_for_url(url)` itself and reads it with `loop.add_reader`
on the descriptor; for `socket://host:port` it builds the instance with `do_not_open=True` and
connects an ordinary asyncio TCP transport. Both are used as they are; nothing of our own.

Incoming SMS: AT+CNMI=2,1,0,1,0 (TS 27.005 §3.4.1, mt=1): the modem stores each SMS and says
+CMTI; the driver reads it (AT+CMGR), hands it on, then deletes it (AT+CMGD). Nothing is lost
while the driver is down, reconnecting or busy, because the message waits on the SIM until it has
been handed on (at start, AT+CMGL=4 reads whatever is stored). With mt=2 (+CMT, routed to the TE
and not stored) a message arriving while the port is closed or the driver restarts is gone: with
AT+CSMS=0 the modem acknowledges it to the network by itself. +CMT is still handled, for modems
configured so (`ModemConfig.cnmi`). Parts of a concatenated SMS that came from storage stay there
until the whole message is handed on, so a restart re-reads them; delivery is at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import serial_asyncio_fast

from gsm_probe.at import (
    ESC,
    AtError,
    AtParseError,
    AtSession,
    CmeError,
    CmsError,
    Garbage,
    Unsolicited,
    first_value,
    params,
    parse_cmgs,
    parse_cnum,
    parse_cops,
    parse_creg,
    parse_csq,
    parse_stored_pdus,
    rssi_to_dbm,
)
from gsm_probe.calls import CallTracker, _Call
from gsm_probe.cells import parse_cpsi, parse_qeng, vendor_of
from gsm_probe.errors import ModemError, ModemGone, ModemHung, ModemTimeout, SimLocked
from gsm_probe.events import (
    ProbeEvent,
    ProbeHealth,
    RegistrationChanged,
)
from gsm_probe.inbox import Slot, SmsInbox, _Partial
from gsm_probe.masking import masked, shown
from gsm_probe.model import Job, ModemConfig, ModemIdentity, Registration, ServingCell, StoredSms
from gsm_probe.transport import AtLink
from gsm_probe.ts23040 import (
    Address,
    TpduError,
    decode_mt,
    submit_parts,
    tpdu_length,
)

log = logging.getLogger("fraudgate.modem")
T = TypeVar("T")

# Boot notices: the modem restarted under us and lost its settings (ATE0, +CNMI …).
BOOT_URCS = frozenset({"RDY", "START", "^SYSSTART", "*ATREADY"})
# Transient "not yet" answers worth a retry during init: SIM busy (TS 27.007 §9.2.1 14,
# TS 27.005 §3.2.5 314) and the SIMCom / Huawei "please wait" (515).
_RETRY_CODES = frozenset({14, 314, 515})




# --------------------------------------------------------------------------------------------
# The modem


class Modem(CallTracker, SmsInbox):
    """One probe modem on one serial link (see the module docstring)."""

    def __init__(self, config: ModemConfig, *, clock: Callable[[], float] = time.time) -> None:
        if config.reinit_after_timeouts < 1:
            raise ValueError("reinit_after_timeouts must be at least 1")
        self.config = config
        self.clock = clock
        self.identity = ModemIdentity()
        self.vendor = ""  # "simcom", "quectel" or ""
        self.events: asyncio.Queue[ProbeEvent] = asyncio.Queue()
        self.garbage = 0  # Garbage events seen
        self.reopens = 0  # hard recoveries that worked
        self.last_event_at: float | None = None
        self._lock = asyncio.Lock()
        self._link: AtLink | None = None
        self._closed: asyncio.Future[None] | None = None
        self._failure: ModemError | None = None
        self._closing = False
        self._ready = False
        self._timeouts = 0
        self._no_recovery = 0  # > 0 while initialising or recovering
        self._mem: str | None = None  # +CPMS <mem1>: where +CMGR / +CMGD read
        self._registration: Registration | None = None
        self._call: _Call | None = None
        self._partials: dict[tuple[str, int, int], _Partial] = {}
        self._taken: set[Slot] = set()  # stored messages handed on or held, not yet deleted
        self._jobs: asyncio.Queue[Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._mr = random.randrange(256)  # TP-MR (modems usually set their own)
        self._concat_ref = random.randrange(256)

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Modem:
        self._closed = asyncio.get_running_loop().create_future()
        await self._open()
        try:
            with self._recovery_off():
                await self._initialise()
        except BaseException:
            await self._close_link()
            raise
        self._worker = asyncio.create_task(self._work(), name=f"modem-{self.config.name}")
        log.info(
            "%s: ready (%s %s, %s)",
            self.config.name,
            self.identity.manufacturer,
            self.identity.model,
            self.config.url,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the worker and timers, hand on unfinished +CMT parts, close the port."""
        if self._closing:
            return
        self._closing = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._end_call_timers()
        self._flush_partials(stored_too=False)
        await self._close_link()
        self._resolve_closed()

    @property
    def closed(self) -> bool:
        return self._closed is None or self._closed.done()

    @property
    def failure(self) -> ModemError | None:
        """Why the modem closed by itself (ModemGone / ModemHung), None after close()."""
        return self._failure

    async def wait_closed(self) -> ModemError | None:
        assert self._closed is not None, "not entered"
        await asyncio.shield(self._closed)
        return self._failure

    def __aiter__(self) -> Modem:
        return self

    async def __anext__(self) -> ProbeEvent:
        """The next event; iteration stops once the modem is closed and nothing is queued."""
        if not self.events.empty():
            return self.events.get_nowait()
        assert self._closed is not None, "not entered"
        if self._closed.done():
            raise StopAsyncIteration
        getter = asyncio.ensure_future(self.events.get())
        waiters: set[asyncio.Future[Any]] = {getter, self._closed}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        if not self.events.empty():
            return self.events.get_nowait()
        raise StopAsyncIteration

    async def _open(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        link = AtLink(self, AtSession(command_timeout=cfg.command_timeout))
        try:
            transport, _ = await asyncio.wait_for(
                serial_asyncio_fast.create_serial_connection(
                    loop, lambda: link, cfg.url, baudrate=cfg.baudrate, exclusive=True
                ),
                cfg.open_timeout,
            )
        except (OSError, TimeoutError, ValueError) as exc:  # SerialException is an OSError
            raise ModemGone(f"{cfg.url}: cannot open: {exc}") from exc
        link.transport = transport
        self._link = link

    async def _close_link(self) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        link.abort()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(link.lost), 2.0)

    def _link_lost(self, link: AtLink, reason: str) -> None:
        if link is self._link and not self._closing:
            self._fail(ModemGone(f"{self.config.url}: {reason}"))

    def _fail(self, failure: ModemError) -> None:
        """The modem is unusable: fail what waits, close, and let the supervisor reopen."""
        if self._failure is not None or self._closing:
            return
        self._failure = failure
        log.debug("%s: %s", self.config.name, failure)
        if self._worker is not None and self._worker is not asyncio.current_task():
            self._worker.cancel()
        self._end_call_timers()
        self._flush_partials(stored_too=False)
        link, self._link = self._link, None
        if link is not None:
            link.abort()
        self._resolve_closed()

    def _resolve_closed(self) -> None:
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    @contextlib.contextmanager
    def _recovery_off(self) -> Iterator[None]:
        self._no_recovery += 1
        try:
            yield
        finally:
            self._no_recovery -= 1

    # ------------------------------------------------------------------ commands
    async def command(
        self,
        cmd: str,
        *,
        expect: str | None = None,
        timeout: float | None = None,
        pdu: bytes | None = None,
    ) -> list[str]:
        """Run one AT command; its information lines, or the typed failure raised (AtError,
        ModemTimeout, ModemGone). Commands run one at a time."""
        async with self._lock:
            return await self._exchange(cmd, expect=expect, timeout=timeout, pdu=pdu)

    async def _exchange(
        self,
        cmd: str,
        *,
        expect: str | None = None,
        timeout: float | None = None,
        pdu: bytes | None = None,
    ) -> list[str]:
        link = self._usable_link()
        await link.idle()
        link = self._usable_link()
        waiter = link.execute(cmd, expect, pdu, timeout or self.config.command_timeout)
        try:
            # shielded: a cancelled caller leaves the command to finish (see AtLink.idle)
            completed = await asyncio.shield(waiter)
        except ModemTimeout:
            if pdu is not None:
                link.write(ESC)  # leave the "> " input state (TS 27.005 §3.5.1)
            await self._timed_out(cmd)
            raise
        self._timeouts = 0
        return completed.check()

    def _usable_link(self) -> AtLink:
        if self._failure is not None:
            raise self._failure
        if self._link is None or not self._link.open:
            raise ModemGone(f"{self.config.name}: closed")
        return self._link

    async def _timed_out(self, cmd: str) -> None:
        self._timeouts += 1
        log.debug("%s: %s timed out (%d in a row)", self.config.name, shown(cmd), self._timeouts)
        if self._timeouts >= self.config.reinit_after_timeouts and not self._no_recovery:
            await self._recover()

    async def _recover(self) -> None:
        """Hung: ESC and AT first (a lost prompt, a busy moment); else reopen and re-init; else
        fail with ModemHung so the supervisor takes over with backoff."""
        name = self.config.name
        with self._recovery_off():
            log.warning("%s: %d commands timed out in a row", name, self._timeouts)
            if await self._resync():
                log.warning("%s: answering again after ESC", name)
                self._timeouts = 0
                return
            try:
                await self._close_link()
                await self._open()
                await self._initialise()
            except (ModemError, AtError) as exc:
                # ModemGone: the port vanished, or AT was not answered (ModemHung)
                gone = exc if isinstance(exc, ModemGone) else None
                self._fail(gone or ModemHung(f"{name}: not answering: {exc}"))
                return
        self._timeouts = 0
        self.reopens += 1
        log.warning("%s: reopened and re-initialised", name)

    async def _resync(self) -> bool:
        """ESC then AT. Not Ctrl-Z: at a "> " prompt it would send whatever half PDU the modem
        holds as an SMS; ESC cancels it (TS 27.005 §3.5.1) and is ignored in command mode."""
        link = self._link
        if link is None or not link.open:
            return False
        link.write(ESC)
        try:
            await self._exchange("AT")
        except (ModemError, AtError):
            return False
        return True

    # ------------------------------------------------------------------ init
    async def _initialise(self) -> None:
        await self._sync()
        await self._setup()
        self.identity = await self._read_identity()
        self.vendor = vendor_of(self.identity.manufacturer)
        self._mem = await self._read_mem()
        with contextlib.suppress(AtError, ModemTimeout):
            await self._query_registration()
        self._ready = True
        await self._take_stored_all()

    async def _sync(self) -> None:
        """AT until OK, ESC before each retry (a "> " prompt left open by a previous run).
        Garbage the modem sends meanwhile comes out of the parser as Garbage, and a command
        line it garbled answers ERROR: both just cost a retry."""
        link = self._usable_link()
        for attempt in range(self.config.init_attempts):
            if attempt:
                link.write(ESC)
            try:
                await self._exchange("AT")
                return
            except (ModemTimeout, AtError):
                await asyncio.sleep(self.config.retry_delay)
        raise ModemHung(f"{self.config.name}: no answer to AT")

    async def _setup(self) -> None:
        await self._step("ATE0")  # echo off (V.250 §6.2.4); the parser drops echo anyway
        await self._step("AT+CMEE=2")  # verbose +CME ERROR (TS 27.007 §9.1)
        await self._unlock_sim()
        await self._step("AT+CLIP=1")  # caller line identity on (TS 27.007 §7.6)
        await self._step("AT+CRC=1", required=False)  # +CRING: VOICE (TS 27.007 §6.11)
        await self._step("AT+CMGF=0")  # PDU mode (TS 27.005 §3.2.3)
        await self._step(f"AT+CNMI={self.config.cnmi}")  # new SMS indications (§3.4.1)
        await self._step("AT+CREG=2")  # +CREG URCs with LAC and CI (TS 27.007 §7.2)

    async def _step(self, cmd: str, *, required: bool = True) -> list[str]:
        for attempt in range(self.config.init_attempts):
            try:
                return await self._exchange(cmd)
            except (CmeError, CmsError) as exc:
                if exc.code not in _RETRY_CODES or attempt + 1 == self.config.init_attempts:
                    if required:
                        raise
                    log.info("%s: %s refused: %s", self.config.name, cmd, exc)
                    return []
                await asyncio.sleep(self.config.retry_delay)
            except AtError as exc:
                if required:
                    raise
                log.info("%s: %s refused: %s", self.config.name, cmd, exc)
                return []
        return []

    async def _unlock_sim(self) -> None:
        status = await self._sim_status()
        if status == "READY":
            return
        if status == "SIM PIN" and self.config.pin:
            await self._exchange(f'AT+CPIN="{self.config.pin}"')  # TS 27.007 §8.3
            for _ in range(self.config.init_attempts):
                await asyncio.sleep(self.config.retry_delay)
                if await self._sim_status() == "READY":
                    return
        raise SimLocked(f"{self.config.name}: SIM wants {status or 'something unknown'}")

    async def _sim_status(self) -> str:
        lines = await self._step("AT+CPIN?")
        return first_value(lines, "+CPIN").strip().strip('"').upper()

    async def _read_identity(self) -> ModemIdentity:
        # TS 27.007 §5.1-§5.6 (+CGMI, +CGMM, +CGMR, +CGSN, +CIMI) and §7.1 (+CNUM).
        return ModemIdentity(
            manufacturer=await self._info("AT+CGMI"),
            model=await self._info("AT+CGMM"),
            revision=(await self._info("AT+CGMR")).removeprefix("Revision:").strip(),
            imei=await self._info("AT+CGSN"),
            imsi=await self._info("AT+CIMI"),
            msisdn=await self._own_number(),
        )

    async def _info(self, cmd: str) -> str:
        """The first information line with any "+NAME:" prefix removed; "" on failure."""
        try:
            lines = await self._exchange(cmd, expect="")
        except (AtError, ModemTimeout) as exc:
            log.info("%s: %s: %s", self.config.name, cmd, exc)
            return ""
        text = lines[0] if lines else ""
        name = cmd[2:].upper() + ":"
        return text[len(name) :].strip() if text.upper().startswith(name) else text.strip()

    async def _own_number(self) -> str:
        try:
            lines = await self._exchange("AT+CNUM")
            return parse_cnum(first_value(lines, "+CNUM"))[1]
        except (AtError, ModemTimeout):
            return ""  # many SIMs do not carry their MSISDN

    async def _read_mem(self) -> str | None:
        try:
            lines = await self._exchange("AT+CPMS?")  # TS 27.005 §3.2.2
            return params(first_value(lines, "+CPMS"))[0] or None
        except (AtError, ModemTimeout):
            return None

    # ------------------------------------------------------------------ queries
    async def signal_dbm(self) -> int | None:
        """+CSQ rssi in dBm (TS 27.007 §8.5), None when unknown (99)."""
        rssi, _ = parse_csq(first_value(await self.command("AT+CSQ"), "+CSQ"))
        return rssi_to_dbm(rssi)

    async def registration(self) -> Registration:
        async with self._lock:
            return await self._query_registration()

    async def _query_registration(self) -> Registration:
        _, stat, lac, ci = parse_creg(first_value(await self._exchange("AT+CREG?"), "+CREG"))
        return self._registered(stat, lac, ci)

    async def operator(self) -> str:
        """The registered network's name (+COPS, TS 27.007 §7.3); "" when none."""
        return parse_cops(first_value(await self.command("AT+COPS?"), "+COPS"))[2]

    async def serving_cell(self) -> ServingCell:
        """AT+CPSI? on SIMCom, AT+QENG="servingcell" on Quectel, else LAC / CI of +CREG."""
        cell: ServingCell | None = None
        try:
            if self.vendor == "simcom":
                cell = parse_cpsi(first_value(await self.command("AT+CPSI?"), "+CPSI"))
            elif self.vendor == "quectel":
                cell = parse_qeng(await self.command('AT+QENG="servingcell"'))
        except AtError as exc:
            log.debug("%s: serving cell query: %s", self.config.name, exc)
        if cell is not None:
            return cell
        reg = await self.registration()
        return ServingCell("", reg.lac, reg.cell_id, source="+CREG")

    async def health(self) -> ProbeHealth:
        """Signal, registration and operator now; what fails is named in `error`."""
        if self.closed or self._failure is not None:
            return self._health_down()
        errors: list[str] = []
        dbm = await self._try(self.signal_dbm(), errors)
        reg = await self._try(self.registration(), errors)
        oper = await self._try(self.operator(), errors)
        if self._failure is not None:
            return self._health_down()
        reg = reg or self._registration or Registration(0)
        ident = self.identity
        return ProbeHealth(
            probe=self.config.name,
            connected=True,
            registered=reg.registered,
            registration=reg.stat,
            signal_dbm=dbm,
            operator=oper or "",
            lac=reg.lac,
            cell_id=reg.cell_id,
            imei=ident.imei,
            imsi=ident.imsi,
            msisdn=ident.msisdn,
            last_event_at=self.last_event_at,
            error="; ".join(errors),
            extra=self._extra(),
        )

    def _health_down(self) -> ProbeHealth:
        return ProbeHealth(
            probe=self.config.name,
            connected=False,
            imei=self.identity.imei,
            imsi=self.identity.imsi,
            msisdn=self.identity.msisdn,
            last_event_at=self.last_event_at,
            error=str(self._failure or "closed"),
            extra=self._extra(),
        )

    def _extra(self) -> dict[str, str]:
        ident = self.identity
        return {
            "manufacturer": ident.manufacturer,
            "model": ident.model,
            "revision": ident.revision,
            "vendor": self.vendor,
            "garbage": str(self.garbage),
            "reopens": str(self.reopens),
        }

    @staticmethod
    async def _try(work: Awaitable[T], errors: list[str]) -> T | None:
        try:
            return await work
        except (AtError, ModemTimeout, ModemGone) as exc:
            errors.append(str(exc))
            return None

    # ------------------------------------------------------------------ SMS
    async def send_sms(self, number: str, text: str) -> list[int]:
        """Send `text` to `number` ("+7701…" international, else as dialled) in PDU mode,
        GSM 7-bit or UCS2, in as many parts as it needs; the TP-MR of each part (+CMGS)."""
        self._mr = (self._mr + 1) & 0xFF
        self._concat_ref = (self._concat_ref + 1) & 0xFF
        pdus = submit_parts(_address(number), text, reference=self._mr, concat_ref=self._concat_ref)
        refs: list[int] = []
        for pdu in pdus:
            # TS 27.005 §3.5.1: <length> counts the TPDU only, not the SMSC prefix.
            lines = await self.command(
                f"AT+CMGS={tpdu_length(pdu)}", pdu=pdu, timeout=self.config.sms_timeout
            )
            refs.append(parse_cmgs(first_value(lines, "+CMGS")))
        log.info("%s: SMS to %s sent in %d part(s)", self.config.name, masked(number), len(refs))
        return refs

    async def list_sms(self, stat: int = 4) -> list[StoredSms]:
        """AT+CMGL=<stat> (TS 27.005 §3.4.2; 4 = all) in the current storage."""
        lines = await self.command(f"AT+CMGL={stat}", timeout=self.config.sms_timeout)
        return [_stored(i or 0, s, pdu) for i, s, pdu in parse_stored_pdus(lines, "+CMGL")]

    async def read_sms(self, index: int, mem: str | None = None) -> StoredSms | None:
        """AT+CMGR=<index> (TS 27.005 §3.4.3); None for an empty slot."""
        async with self._lock:
            return await self._read_locked(index, mem)

    async def _read_locked(self, index: int, mem: str | None) -> StoredSms | None:
        await self._select_mem(mem)
        lines = await self._exchange(f"AT+CMGR={index}", timeout=self.config.sms_timeout)
        found = parse_stored_pdus(lines, "+CMGR")
        return _stored(index, found[0][1], found[0][2]) if found else None

    async def delete_sms(self, index: int, mem: str | None = None) -> None:
        """AT+CMGD=<index> (TS 27.005 §3.5.4)."""
        async with self._lock:
            await self._select_mem(mem)
            await self._exchange(f"AT+CMGD={index}")

    async def _select_mem(self, mem: str | None) -> None:
        # +CMTI names the storage; +CMGR / +CMGD read <mem1> (TS 27.005 §3.2.2).
        if mem is None or self._mem is None or mem.upper() == self._mem.upper():
            return
        await self._exchange(f'AT+CPMS="{mem}"')
        self._mem = mem

    async def hangup(self) -> None:
        """ATH (V.250 §6.3.6); AT+CHUP (TS 27.007 §6.5) when ATH is refused."""
        try:
            await self.command("ATH")
        except AtError:
            await self.command("AT+CHUP")

    # ------------------------------------------------------------------ URCs
    def _on_urc(self, urc: Unsolicited) -> None:
        handler = _URC_HANDLERS.get(urc.name)
        if handler is not None:
            handler(self, urc)
        elif urc.name in BOOT_URCS and self._ready:
            log.warning("%s: modem restarted (%s); re-initialising", self.config.name, urc.name)
            self._schedule(self._reinit)
        else:
            log.debug("%s: URC %s", self.config.name, urc.name)

    def _on_garbage(self, garbage: Garbage) -> None:
        self.garbage += 1
        log.debug("%s: %s (%d bytes)", self.config.name, garbage.reason, len(garbage.data))

    def _emit(self, event: ProbeEvent) -> None:
        self.last_event_at = event.at
        self.events.put_nowait(event)

    def _schedule(self, job: Job) -> None:
        self._jobs.put_nowait(job)

    async def _work(self) -> None:
        """Runs the commands URCs call for (read an SMS, hang up), one after the other."""
        while True:
            job = await self._jobs.get()
            try:
                await job()
            except ModemGone:
                return
            except (ModemError, AtError, TpduError) as exc:
                log.warning("%s: %s", self.config.name, exc)

    async def _reinit(self) -> None:
        """After a modem restart: settings again, and what arrived while it rebooted."""
        async with self._lock:
            with self._recovery_off():
                await self._setup()
                await self._take_stored_all()

    # ---------------- registration
    def _on_creg(self, urc: Unsolicited) -> None:
        try:
            _, stat, lac, ci = parse_creg(urc.value)
        except AtParseError as exc:
            log.warning("%s: %s", self.config.name, exc)
            return
        self._registered(stat, lac, ci)

    def _registered(self, stat: int, lac: str, ci: str) -> Registration:
        old = self._registration
        if old is not None and stat == old.stat and not (lac or ci):
            lac, ci = old.lac, old.cell_id  # +CREG: 1 after AT+CREG=1: the cell is unchanged
        reg = Registration(stat, lac, ci)
        if reg != old:
            self._registration = reg
            self._emit(RegistrationChanged(self.config.name, stat, lac, ci, self.clock()))
        return reg

_URC_HANDLERS: dict[str, Callable[[Modem, Unsolicited], None]] = {
    "RING": Modem._on_ring,
    "+CRING": Modem._on_ring,
    "+CLIP": Modem._on_clip,
    "NO CARRIER": Modem._on_call_end,
    "+CREG": Modem._on_creg,
    "+CMT": Modem._on_cmt,
    "+CMTI": Modem._on_cmti,
    "+CDSI": Modem._on_cdsi,
}


def _address(number: str) -> Address:
    """ "+7701…" is international (TON 1, TS 23.040 §9.1.2.5); anything else as dialled."""
    if number.startswith("+"):
        return Address(number[1:], ton=1)
    return Address(number, ton=0)


def _stored(index: int, stat: int, pdu: bytes) -> StoredSms:
    try:
        return StoredSms(index, stat, pdu, decode_mt(pdu))
    except TpduError as exc:
        return StoredSms(index, stat, pdu, None, str(exc))


