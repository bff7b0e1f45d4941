"""Bind guard: password guessing against the server side of SMPP, limited. Sans-I/O: the caller
passes the time in and sends the answer; the guard only decides and counts.

One `BindGuard` per listener (the simulated SMSC today, the A2P proxy's server side next).
`BindGuard.authenticate` decides a bind (§4.1.1-§4.1.6) in an order that leaks nothing:

1. the source address, or the system_id, is locked out: ESME_RBINDFAIL, the password is not
   looked at (a right one must not answer differently);
2. unknown system_id: ESME_RINVSYSID;
3. source address outside the account's allow-list: ESME_RBINDFAIL whatever the password
   (checking the password first made the answer an oracle: 0x0D right, 0x0E wrong);
4. wrong password: ESME_RINVPASWD (compared in constant time);
5. bind type not allowed for the account: ESME_RBINDFAIL.

Every refusal counts against the source address, a wrong password also against the system_id
(guessing spread over many addresses). Past `address_failures` (`system_id_failures`) the address
(system_id) is locked out for `lockout` seconds, doubled at each further failure up to
`max_lockout`: an address gets a few guesses, then one per lockout. Binds refused by a lockout
are not counted, as no password was tried: a client whose password was fixed binds when the
current lockout ends. A system_id lockout does not apply to addresses that have bound to it
before, so an attacker elsewhere cannot lock the real client out. Counts are forgotten after
`forget_after` seconds without a failure, from the end of the lockout.

IPv4 addresses count one by one, IPv6 by /64 (a host picks freely within its prefix). Refusals
are reported for the log at most once per address per `log_interval`, with the number left
unlogged since; the password is never part of a decision.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from smsc.constants import Status
from smsc.session import BindType

_NEVER = float("-inf")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class BindGuardConfig:
    address_failures: int = 5  # refused binds from one address before it is locked out
    system_id_failures: int = 20  # wrong passwords for one system_id, all addresses together
    lockout: float = 60.0  # seconds of the first lockout; each further failure doubles it
    max_lockout: float = 3600.0
    forget_after: float = 3600.0  # seconds without a failure (after the lockout) to forget
    log_interval: float = 60.0  # at most one log line per address per this many seconds
    max_tracked: int = 100_000  # addresses, system_ids, known pairs kept each (oldest go)


class Credentials(Protocol):
    """What the guard needs to know of an account."""

    @property
    def password(self) -> str: ...

    @property
    def bind_types(self) -> frozenset[BindType]: ...

    def admits(self, address: str | None) -> bool:
        """Whether a bind may come from this source address."""
        ...


@dataclass(frozen=True, slots=True)
class BindDecision:
    status: int  # command_status of the bind_resp; 0: accept
    reason: str  # why, for the log (never the password)
    locked_out: bool = False  # refused by a lockout, the password not looked at
    log: bool = False  # log this refusal now (at most once per address per log_interval)
    unlogged: int = 0  # refusals from this address left out of the log since its last line
    locked_for: float = 0.0  # seconds the address stays locked out from now


@dataclass(slots=True)
class _Record:
    failures: int = 0
    last_failure: float = _NEVER
    locked_until: float = _NEVER
    logged_at: float = _NEVER
    unlogged: int = 0


def admits_address(
    address: str | None, allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    """Whether a bind from `address` is within `allow` (an account's allow-list; empty: any
    address). An IPv4 client on a dual-stack socket (::ffff:a.b.c.d) is its IPv4 address."""
    if not allow:
        return True
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in allow)


def address_key(address: str | None) -> str:
    """What failures are counted under: the IPv4 address, or the IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "?"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class BindGuard:
    def __init__(self, config: BindGuardConfig | None = None) -> None:
        self.config = config or BindGuardConfig()
        self._addresses: dict[str, _Record] = {}
        self._system_ids: dict[str, _Record] = {}
        self._known: dict[tuple[str, str], float] = {}  # (system_id, address key) -> last bind

    def authenticate(
        self,
        now: float,
        address: str | None,
        system_id: str,
        password: str,
        bind_type: BindType,
        account: Credentials | None,
    ) -> BindDecision:
        """Decide a bind from `address` (the peer's IP) and count it."""
        key = address_key(address)
        if self._locked(now, key, system_id):
            return self._refused(now, key, Status.ESME_RBINDFAIL, "locked out", counted=False)
        if account is None:
            return self._refused(now, key, Status.ESME_RINVSYSID, "unknown system_id")
        if not account.admits(address):
            return self._refused(now, key, Status.ESME_RBINDFAIL, "address not allowed")
        if not _same(password, account.password):
            self._fail(self._system_ids, system_id, now, self.config.system_id_failures)
            return self._refused(now, key, Status.ESME_RINVPASWD, "wrong password")
        if bind_type not in account.bind_types:
            why = f"{bind_type.value} bind not allowed"
            return self._refused(now, key, Status.ESME_RBINDFAIL, why)
        _touch(self._known, (system_id, key), now, self.config.max_tracked)
        return BindDecision(Status.ESME_ROK, "bound")

    def locked_for(self, now: float, address: str | None) -> float:
        """Seconds the address stays locked out (0: it may try)."""
        rec = self._addresses.get(address_key(address))
        return max(0.0, rec.locked_until - now) if rec else 0.0

    # ------------------------------------------------------------------ internals
    def _locked(self, now: float, key: str, system_id: str) -> bool:
        rec = self._addresses.get(key)
        if rec is not None and now < rec.locked_until:
            return True
        rec = self._system_ids.get(system_id)
        if rec is None or now >= rec.locked_until:
            return False
        return (system_id, key) not in self._known  # its own client still gets in

    def _refused(
        self, now: float, key: str, status: int, reason: str, *, counted: bool = True
    ) -> BindDecision:
        limit = self.config.address_failures
        rec = self._fail(self._addresses, key, now, limit) if counted else self._record(key)
        log = now - rec.logged_at >= self.config.log_interval
        unlogged = rec.unlogged
        if log:
            rec.logged_at, rec.unlogged = now, 0
        else:
            rec.unlogged += 1
        return BindDecision(
            status,
            reason,
            locked_out=not counted,
            log=log,
            unlogged=unlogged if log else 0,
            locked_for=max(0.0, rec.locked_until - now),
        )

    def _record(self, key: str) -> _Record:
        rec = self._addresses.get(key)
        if rec is None:
            rec = _Record()
        _touch(self._addresses, key, rec, self.config.max_tracked)
        return rec

    def _fail(self, table: dict[str, _Record], key: str, now: float, limit: int) -> _Record:
        cfg = self.config
        rec = table.get(key) or _Record()
        if now - max(rec.last_failure, rec.locked_until) > cfg.forget_after:
            rec.failures = 0
        rec.failures += 1
        rec.last_failure = now
        if rec.failures >= limit:
            doublings = min(rec.failures - limit, 32)  # 2**32 lockouts: the cap long before
            rec.locked_until = now + min(cfg.max_lockout, cfg.lockout * 2**doublings)
        _touch(table, key, rec, cfg.max_tracked)
        return rec


def _touch(table: dict[K, V], key: K, value: V, limit: int) -> None:
    """Store `value` as the most recent entry; past `limit` entries the oldest goes."""
    table.pop(key, None)
    table[key] = value
    if len(table) > limit:
        del table[next(iter(table))]


def _same(given: str, expected: str) -> bool:
    # Constant time, so the answer's timing does not tell how much of a guess was right.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
