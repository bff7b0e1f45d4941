"""The exemptions in force, in memory: what the Inspector consults on every flag or block.

    cache = ExemptionCache(max_active=10_000)
    inspector = Inspector(..., exemptions=cache)
    async with ExemptionRefresher(cache, repository, interval=5.0):   # the database's view
        ...   # and the API calls cache.add / cache.remove as it creates or revokes one

`match` is a dictionary look-up (plus one SHA-256 of the normalised text while any template
exemption is in force), done only for messages about to be flagged or blocked. The whole set is
reloaded from the database every few seconds (other gateways on the same PostgreSQL, expiry); a
change made in this process applies at once and survives a reload that read the database just
before it (`mark` / `replace`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from gateway.domain import SmsEvent, Verdict
from gateway.loop import BackgroundLoop
from gateway.store.errors import StoreError

from .model import Exemption, Scope, sender_key, template_key

log = logging.getLogger(__name__)

Key = tuple[Scope, str]


class ExemptionCache:
    """Implements `Exemptions`. Bounded: at most `max_active` exemptions (the service refuses
    more in the database; here, past the bound, the one expiring first is dropped)."""

    def __init__(self, *, max_active: int = 10_000) -> None:
        self.max_active = max_active
        self._by_id: dict[str, Exemption] = {}
        self._by_key: dict[Key, list[Exemption]] = {}
        self._templates = 0  # template exemptions held: hash texts only while there are any
        self._seq = 0  # local changes so far
        self._log: list[tuple[int, Exemption | None, str]] = []  # (seq, added or None, id)

    def __len__(self) -> int:
        return len(self._by_id)

    # -- the port --------------------------------------------------------------------------

    def match(self, sms: SmsEvent, verdict: Verdict, now: float) -> Exemption | None:
        if not self._by_id:
            return None
        keys: list[Key] = [(Scope.SENDER, sender_key(sms.smsc, sms.source))]
        if self._templates:
            keys.append((Scope.TEMPLATE, template_key(sms.text)))
        for key in keys:
            for found in self._by_key.get(key, ()):
                if found.active(now) and found.covers(verdict):
                    return found
        return None

    # -- changes made in this process --------------------------------------------------------

    def add(self, exemption: Exemption) -> None:
        self._seq += 1
        self._log.append((self._seq, exemption, exemption.id))
        self._insert(exemption)

    def remove(self, exemption_id: str) -> None:
        self._seq += 1
        self._log.append((self._seq, None, exemption_id))
        self._delete(exemption_id)

    # -- reloads -------------------------------------------------------------------------------

    def mark(self) -> int:
        """Call before reading the database for `replace`: changes made after this are kept."""
        return self._seq

    def replace(self, active: Iterable[Exemption], since: int, now: float) -> None:
        """The exemptions in force as the database had them after `mark()` returned `since`,
        plus the local changes made since (their reads may have missed them)."""
        self._by_id, self._by_key, self._templates = {}, {}, 0
        for exemption in active:
            if exemption.active(now):
                self._insert(exemption)
        self._log = [entry for entry in self._log if entry[0] > since]
        for _seq, added, exemption_id in self._log:
            if added is None:
                self._delete(exemption_id)
            else:
                self._insert(added)

    # -- the index -------------------------------------------------------------------------------

    def _insert(self, exemption: Exemption) -> None:
        if exemption.id in self._by_id:
            return
        if len(self._by_id) >= self.max_active:
            self._delete(min(self._by_id.values(), key=lambda e: e.expires_at).id)
        self._by_id[exemption.id] = exemption
        self._by_key.setdefault((exemption.scope, exemption.key), []).append(exemption)
        self._templates += exemption.scope is Scope.TEMPLATE

    def _delete(self, exemption_id: str) -> None:
        exemption = self._by_id.pop(exemption_id, None)
        if exemption is None:
            return
        key = (exemption.scope, exemption.key)
        left = [e for e in self._by_key.get(key, ()) if e.id != exemption_id]
        if left:
            self._by_key[key] = left
        else:
            self._by_key.pop(key, None)
        self._templates -= exemption.scope is Scope.TEMPLATE


class ActiveSource(Protocol):
    """Where the exemptions in force are read from (the feedback repository)."""

    async def active(self, now: float, limit: int) -> Sequence[Exemption]: ...


class ExemptionRefresher(BackgroundLoop):
    """Reloads the cache from the database every `interval` seconds (and drops the expired).
    A database failure keeps the exemptions held (they still expire by time) and is logged
    once until the database answers again."""

    task_name = "exemptions"

    def __init__(
        self,
        cache: ExemptionCache,
        source: ActiveSource,
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(stop_grace=1.0)
        self.cache = cache
        self.source = source
        self.interval = interval
        self.clock = clock
        self._failing = False

    async def refresh(self) -> None:
        since = self.cache.mark()
        now = self.clock()
        active = await self.source.active(now, self.cache.max_active)
        self.cache.replace(active, since, now)

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.refresh()
            except StoreError as e:
                if not self._failing:
                    log.warning("exemptions not reloaded, keeping %d: %s", len(self.cache), e)
                self._failing = True
            else:
                if self._failing:
                    log.warning("exemptions reloaded again (%d in force)", len(self.cache))
                self._failing = False
            await self._pause()

    async def _pause(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.interval)
