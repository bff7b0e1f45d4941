"""SwitchControl on an Osmocom core: osmo-hlr (CTRL) holds the subscription, osmo-msc (VTY)
holds the attached phones (docs/switch.md).

block(N):   GET  subscriber.by-msisdn-N.info              (IMSI, nam_cs, nam_ps: read first)
            SET  subscriber.by-msisdn-N.cs-enabled 0      (only if it was 1)
            SET  subscriber.by-msisdn-N.ps-enabled 0      (only if it was 1)
            VTY  subscriber imsi <IMSI> expire            (osmo-msc, always)
unblock(N): cs-enabled 1 / ps-enabled 1 (only what was 0, and only the flags named in
            `unblock_restores`); the phone attaches again by itself.
status(N):  cs-enabled: 0 -> "blocked", 1 -> "active"; no such subscriber -> "unknown".

Why both: `cs-enabled 0` only changes the HLR database, so the next location update is
rejected (GSUP UPDATE_LOCATION_ERROR cause 11), but a phone already attached keeps service until
the MSC forgets it. `subscriber imsi X expire` makes osmo-msc drop its VLR record now. osmo-msc
1.9 answers "% No subscriber found for imsi X" when the phone is not attached — fine, nothing
to expire. (osmo-hlr's VTY `network-access-mode` would send GSUP DELETE_DATA_REQUEST instead,
which osmo-msc 1.9 ignores: "msg_type=20 not yet implemented".)

Errors: no such subscriber -> SwitchRejected(code "unknown_subscriber"); the HLR unreachable or
slow -> SwitchUnavailable. If the MSC cannot be reached after the HLR change, the block is in
force at the HLR but an attached phone may keep service: SwitchUnavailable, so the workflow
retries the whole block — every step is idempotent, and the retry reports `changed=False` (the
HLR already was blocked) while doing the expiry it owes.

Unblock cannot know which flags the subscriber had before the block (the port keeps no place
for them): it sets the flags of `unblock_restores` (default both). An operator whose data-less
subscribers must stay data-less sets ("cs",).

Error texts (logged, and kept by the cases service as a row's last error) never carry a number
or an IMSI whole: everything from osmo-hlr / osmo-msc passes `_scrubbed`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from gateway.alerts.payloads import mask_msisdn
from gateway.osmocom.ctrl import CtrlClient, CtrlCommandError, CtrlError
from gateway.osmocom.vty import VtyClient, VtyError
from gateway.switch.port import SwitchRejected, SwitchResult, SwitchUnavailable

log = logging.getLogger(__name__)

NO_SUCH_SUBSCRIBER = "No such subscriber."
NOT_ATTACHED = "% No subscriber found"  # osmo-msc 1.9: "% No subscriber found for imsi X"
FLAGS = {"cs": "cs-enabled", "ps": "ps-enabled"}  # osmo-hlr CTRL: circuit / packet switched
_DIGITS = re.compile(r"[0-9]{6,}")


@dataclass(frozen=True, slots=True)
class OsmocomSettings:
    """Where osmo-hlr's CTRL and osmo-msc's VTY listen. An empty `msc_vty_host` leaves the MSC
    out (HLR only: attached phones keep service until their next location update)."""

    hlr_ctrl_host: str = "127.0.0.1"
    hlr_ctrl_port: int = 4259
    msc_vty_host: str = "127.0.0.1"
    msc_vty_port: int = 4254
    timeout: float = 5.0
    # Which flags unblock sets to 1. The pre-block flags are not stored anywhere this adapter can
    # read them back, so a subscriber who had no data (nam_ps 0) gets PS after an unblock unless
    # this is ("cs",). "cs" is required: status() reads cs-enabled.
    unblock_restores: tuple[str, ...] = ("cs", "ps")

    def __post_init__(self) -> None:
        restores = self.unblock_restores
        if (
            not isinstance(restores, tuple)
            or "cs" not in restores
            or not set(restores) <= set(FLAGS)
            or len(set(restores)) != len(restores)
        ):
            raise ValueError(
                f'unblock_restores: "cs" and optionally "ps", each once; got {restores!r}'
            )


@dataclass(frozen=True, slots=True)
class HlrSubscriber:
    """What osmo-hlr's `subscriber.by-msisdn-N.info` says (the fields used here)."""

    imsi: str
    cs_enabled: bool
    ps_enabled: bool


def parse_info(text: str) -> HlrSubscriber:
    """`\\nid\\t1\\nimsi\\t001010000000001\\nmsisdn\\t4900001\\nnam_cs\\t1\\nnam_ps\\t1...`

    An unusable answer raises SwitchUnavailable naming the keys, never their values (the text
    holds the IMSI and the MSISDN; the error is logged and stored with the case)."""
    fields = dict(line.split("\t", 1) for line in text.strip("\n").split("\n") if "\t" in line)
    missing = [key for key in ("imsi", "nam_cs", "nam_ps") if key not in fields]
    if missing:
        raise SwitchUnavailable(f"osmo-hlr info without {', '.join(missing)}")
    imsi = fields["imsi"].strip()
    bad = [] if imsi.isascii() and imsi.isdigit() and 5 <= len(imsi) <= 15 else ["imsi"]
    bad += [key for key in ("nam_cs", "nam_ps") if fields[key].strip() not in ("0", "1")]
    if bad:
        raise SwitchUnavailable(f"osmo-hlr info: {', '.join(bad)} not readable")
    return HlrSubscriber(
        imsi=imsi,
        cs_enabled=fields["nam_cs"].strip() == "1",
        ps_enabled=fields["nam_ps"].strip() == "1",
    )


def hlr_msisdn(msisdn: str) -> str:
    """The number as osmo-hlr stores it: digits, without a leading '+'."""
    digits = msisdn.removeprefix("+")
    if not digits.isdigit() or not 1 <= len(digits) <= 15:
        raise SwitchRejected(f"{mask_msisdn(msisdn)}: not an MSISDN", "invalid_msisdn")
    return digits


class OsmocomSwitch:
    """`async with OsmocomSwitch(settings) as switch:` — the CTRL link opens on first use and
    again after it was lost; a VTY session is opened per block (blocks are rare)."""

    def __init__(self, settings: OsmocomSettings | None = None) -> None:
        self.settings = s = settings or OsmocomSettings()
        self.ctrl = CtrlClient(s.hlr_ctrl_host, s.hlr_ctrl_port, timeout=s.timeout)
        self._lock = asyncio.Lock()  # read-before-write is atomic among our own calls

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.ctrl.close()

    async def block(
        self, msisdn: str, *, reason: str, case_id: str, idempotency_key: str | None = None
    ) -> SwitchResult:
        return await self._change("block", msisdn, case_id)

    async def unblock(
        self, msisdn: str, *, reason: str, case_id: str, idempotency_key: str | None = None
    ) -> SwitchResult:
        return await self._change("unblock", msisdn, case_id)

    async def status(self, msisdn: str) -> str:
        number = hlr_msisdn(msisdn)
        try:
            value = await self._hlr_get(number, "cs-enabled")
        except SwitchRejected as e:
            if e.code == "unknown_subscriber":
                return "unknown"
            raise
        return {"0": "blocked", "1": "active"}.get(value.strip(), "unknown")

    async def _change(self, action: str, msisdn: str, case_id: str) -> SwitchResult:
        number = hlr_msisdn(msisdn)
        enable = action == "unblock"
        started = time.monotonic()
        msc = ""
        try:
            async with self._lock:
                sub = parse_info(await self._hlr_get(number, "info"))
                changed = False
                now = {"cs": sub.cs_enabled, "ps": sub.ps_enabled}
                for name in self.settings.unblock_restores if enable else tuple(FLAGS):
                    if now[name] != enable:
                        await self._hlr_set(number, FLAGS[name], str(int(enable)))
                        changed = True
                if not enable:
                    msc = await self._expire(sub.imsi, changed)
        except (SwitchRejected, SwitchUnavailable) as e:
            log.warning(
                "switch osmocom: %s %s (case %s) failed: %s: %s", action, mask_msisdn(msisdn),
                case_id, type(e).__name__, e,
            )  # fmt: skip
            raise
        status = "active" if enable else "blocked"
        log.info(
            "switch osmocom: %s %s (case %s) -> %s, changed=%s%s in %.0f ms", action,
            mask_msisdn(msisdn), case_id, status, changed, f", msc {msc}" if msc else "",
            (time.monotonic() - started) * 1000,
        )  # fmt: skip
        return SwitchResult(msisdn, status, f"osmo-{uuid.uuid4().hex[:16]}", changed)

    async def _expire(self, imsi: str, hlr_changed: bool) -> str:
        """Make osmo-msc forget the subscriber now: "expired", "not attached" or "" (no MSC)."""
        s = self.settings
        if not s.msc_vty_host:
            return ""
        command = f"subscriber imsi {imsi} expire"
        try:
            async with VtyClient(s.msc_vty_host, s.msc_vty_port, timeout=s.timeout) as vty:
                output = await vty.command(command, check=False)
        except VtyError as e:
            done = "blocked at the HLR" if hlr_changed else "already blocked at the HLR"
            raise SwitchUnavailable(
                f"{done}, but osmo-msc could not expire the attached phone "
                f"({_scrubbed(str(e), imsi)}); retry"
            ) from e
        if output.startswith(NOT_ATTACHED):
            return "not attached"
        if any(line.startswith("%") and "released" not in line and "in use" not in line
               for line in output.splitlines()):  # fmt: skip
            raise SwitchUnavailable(f"osmo-msc refused the expiry: {_scrubbed(output, imsi)}")
        return "expired"

    async def _hlr_get(self, number: str, field: str) -> str:
        try:
            return await self.ctrl.get(f"subscriber.by-msisdn-{number}.{field}")
        except CtrlError as e:
            raise _translated(e, number) from e

    async def _hlr_set(self, number: str, field: str, value: str) -> None:
        try:
            await self.ctrl.set(f"subscriber.by-msisdn-{number}.{field}", value)
        except CtrlError as e:
            raise _translated(e, number) from e


def _scrubbed(text: str, known: str) -> str:
    """Error texts end up in logs and in a case's last error: the number (or IMSI) we asked
    about is masked, and so is any other run of 6 or more digits (an MSISDN or IMSI quoted in
    a CTRL variable, raw CTRL bytes or VTY output) — like mask_msisdn, never whole."""
    text = text.replace(known, mask_msisdn(known))
    return _DIGITS.sub(lambda m: mask_msisdn(m.group(0)), text)


def _translated(error: CtrlError, number: str) -> SwitchRejected | SwitchUnavailable:
    if isinstance(error, CtrlCommandError):
        if error.message.strip() == NO_SUCH_SUBSCRIBER:
            return SwitchRejected("osmo-hlr: no such subscriber", "unknown_subscriber")
        return SwitchRejected(f"osmo-hlr refused: {_scrubbed(str(error), number)}", "hlr_error")
    return SwitchUnavailable(f"osmo-hlr: {_scrubbed(str(error), number)}")


__all__ = ["FLAGS", "HlrSubscriber", "OsmocomSettings", "OsmocomSwitch", "hlr_msisdn", "parse_info"]
