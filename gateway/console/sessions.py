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


@dataclass(slots=True)
class Session:
    id: str
    principal: Principal
    csrf: str
    created: float
    seen: float
    lang: str = "ru"
    flash: list[str] = field(default_factory=list)  # one-shot messages for the next page

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

    def get(self, session_id: str | None, now: float) -> Session | None:
        """The live session of that id, its idle clock restarted; None when unknown or over."""
        if not session_id:
            return None
        s = self._sessions.get(session_id)
        if s is None:
            return None
        if now - s.seen > self.limits.idle or now - s.created > self.limits.lifetime:
            del self._sessions[session_id]
            return None
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
