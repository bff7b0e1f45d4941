"""Console sessions: a token presented once at the login form becomes a server-side session.

Sans-I/O (the clock is given): the HTTP layer (app.py) turns a session into a cookie and back.

- The cookie carries only a random session id (32 bytes, URL-safe): no user, no role, nothing
  signed to forge; the session lives in this process, so a restart logs everyone out and a
  logout ends the session at once (several nodes: the load balancer keeps a user on one node,
  docs/console.md).
- Each session has its own CSRF token, compared in constant time on every change (POST).
- A session ends after `idle` seconds without a request, `lifetime` seconds after the login
  whatever happens, or at logout. At most `max_sessions` live at once: the least recently used
  goes first, so a flood of logins cannot grow memory.
- A new login always gets a new id (no session fixation).
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

from gateway.api.auth import Principal

FLASH_MAX = 5


@dataclass(slots=True)
class Session:
    id: str
    principal: Principal
    csrf: str
    created: float
    seen: float
    lang: str = "ru"
    flash: list[str] = field(default_factory=list)  # one-shot messages for the next page

    def say(self, message: str) -> None:
        """A message for the next page; the latest few only (a script that never reads its
        pages cannot grow the list)."""
        self.flash = [*self.flash[-(FLASH_MAX - 1) :], message]

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether `presented` is this session's CSRF token (constant time)."""
        return presented is not None and hmac.compare_digest(
            presented.encode("utf-8", "replace"), self.csrf.encode()
        )


@dataclass(frozen=True, slots=True)
class SessionLimits:
    idle: float = 30 * 60.0  # seconds without a request
    lifetime: float = 12 * 3600.0  # seconds from the login, whatever happens
    max_sessions: int = 1000
    per_user: int = 5  # sessions of one user at once: a sixth login ends that user's oldest

    def __post_init__(self) -> None:
        if not 60 <= self.idle <= self.lifetime:
            raise ValueError("console: idle must be at least 60 s and at most the lifetime")
        if self.max_sessions < 1:
            raise ValueError("console: max_sessions must be at least 1")


class SessionStore:
    """The live sessions of this process, least recently used first."""

    def __init__(self, limits: SessionLimits | None = None) -> None:
        self.limits = limits or SessionLimits()
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, principal: Principal, now: float, lang: str = "ru") -> Session:
        if len(self._sessions) >= self.limits.max_sessions:
            self.sweep(now)  # the sessions that are over go before any live one
        mine = [k for k, x in self._sessions.items() if x.principal.user_id == principal.user_id]
        for k in mine[: max(0, len(mine) - self.limits.per_user + 1)]:
            del self._sessions[k]  # one token cannot push everyone else's sessions out
        while len(self._sessions) >= self.limits.max_sessions:
            self._sessions.popitem(last=False)
        s = Session(
            id=secrets.token_urlsafe(32),
            principal=principal,
            csrf=secrets.token_urlsafe(32),
            created=now,
            seen=now,
            lang=lang,
        )
        self._sessions[s.id] = s
        return s

    def get(self, session_id: str | None, now: float, *, touch: bool = True) -> Session | None:
        """The live session of that id, its idle clock restarted (unless `touch` is false: a
        live stream checking its session is no sign of a person); None when unknown or over."""
        if not session_id:
            return None
        s = self._sessions.get(session_id)
        if s is None:
            return None
        if now - s.seen > self.limits.idle or now - s.created > self.limits.lifetime:
            del self._sessions[session_id]
            return None
        if touch:
            s.seen = now
            self._sessions.move_to_end(session_id)
        return s

    def drop(self, session_id: str | None) -> bool:
        return self._sessions.pop(session_id or "", None) is not None

    def sweep(self, now: float) -> int:
        """Forget sessions that are over; how many."""
        over = [
            k
            for k, s in self._sessions.items()
            if now - s.seen > self.limits.idle or now - s.created > self.limits.lifetime
        ]
        for k in over:
            del self._sessions[k]
        return len(over)


class FailedLogins:
    """Wrong tokens per client address: `burst` allowed, then one more every `every` seconds;
    a client over it waits (is refused without its token being looked at). At most `keep`
    addresses are remembered, the least recently failed forgotten first: memory is bounded
    whatever the number of addresses an attacker uses."""

    def __init__(self, burst: int = 10, every: float = 6.0, keep: int = 10_000) -> None:
        self.burst = burst
        self.every = every
        self.keep = keep
        self._seen: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (debt, at)

    def __len__(self) -> int:
        return len(self._seen)

    def _debt(self, key: str, now: float) -> float:
        debt, at = self._seen.get(key, (0.0, now))
        return max(0.0, debt - (now - at) / self.every)

    def wait(self, key: str, now: float) -> float:
        """Seconds `key` must wait before its token is looked at (0: now)."""
        over = self._debt(key, now) - (self.burst - 1)
        return max(0.0, over * self.every)

    def failed(self, key: str, now: float) -> None:
        self._seen[key] = (self._debt(key, now) + 1.0, now)
        self._seen.move_to_end(key)
        while len(self._seen) > self.keep:
            self._seen.popitem(last=False)
