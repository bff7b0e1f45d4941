"""What the driver is configured with and what it reports: settings, identity, registration,
serving cell, stored messages."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from gsm_probe.ts23040 import SmsDeliver, SmsStatusReport

# work the modem's worker runs, one after the other (reading an SMS, hanging up)
Job = Callable[[], Coroutine[Any, Any, None]]

# +CREG <stat> (TS 27.007 §7.2) meaning registered: 1 home, 5 roaming (6/7 SMS-only, 9/10 CSFB
# not preferred are registered too).
REGISTERED = frozenset({1, 5, 6, 7, 9, 10})


@dataclass
class ModemConfig:
    name: str
    url: str  # pyserial URL: /dev/ttyUSB2, a pty (or a symlink to it), socket://host:port
    baudrate: int = 115200
    command_timeout: float = 5.0
    sms_timeout: float = 60.0  # AT+CMGS, +CMGR, +CMGL (network round trips, big listings)
    pin: str | None = None
    poll_interval: float = 30.0  # health polling by the supervisor
    hangup_after_cli: bool = True  # reject a test call once its CLI is read: no charge
    reinit_after_timeouts: int = 2  # this many timeouts in a row: the modem is hung
    cnmi: str = "2,1,0,1,0"  # TS 27.005 §3.4.1; see the module docstring
    ring_timeout: float = 8.0  # RINGs come every ~5 s; none for this long: the call ended
    cli_timeout: float = 2.0  # +CLIP follows its RING at once; none by then: no CLI
    concat_timeout: float = 120.0  # parts of a long SMS wait this long for the missing ones
    open_timeout: float = 10.0
    init_attempts: int = 3  # AT probes at start; retries of a busy SIM
    retry_delay: float = 0.5


@dataclass(frozen=True, slots=True)
class ModemIdentity:
    manufacturer: str = ""
    model: str = ""
    revision: str = ""
    imei: str = ""
    imsi: str = ""
    msisdn: str = ""  # AT+CNUM; empty when the SIM does not carry it


@dataclass(frozen=True, slots=True)
class Registration:
    """+CREG (TS 27.007 §7.2): stat, and LAC / CI in hex when the network gave them."""

    stat: int
    lac: str = ""
    cell_id: str = ""

    @property
    def registered(self) -> bool:
        return self.stat in REGISTERED


@dataclass(frozen=True, slots=True)
class ServingCell:
    rat: str  # "GSM", "WCDMA", "LTE"; "" when only +CREG told
    lac: str  # LAC (2G/3G) or TAC (LTE), hex
    cell_id: str  # hex
    plmn: str = ""  # MCC-MNC
    source: str = ""  # "+CPSI" (SIMCom), "+QENG" (Quectel), "+CREG"


@dataclass(frozen=True, slots=True)
class StoredSms:
    """A message in the modem's storage (+CMGL / +CMGR, TS 27.005 §3.4.2, §3.4.3)."""

    index: int
    stat: int  # 0 received unread, 1 received read, 2 stored unsent, 3 stored sent
    pdu: bytes
    message: SmsDeliver | SmsStatusReport | None  # None when the TPDU does not decode
    error: str = ""
