"""Receipts and MO messages on their way to an aggregator (docs/proxy.md "Receipts").

Given to one of the account's bound receiver / transceiver links (round robin) and taken when
it answers ROK; when none is bound, or none answers, the PDU is kept in the journal
(`proxy_inbound`) and offered again every `receipt_retry` seconds and whenever the account
binds, until taken or `max_inbound_attempts` tries failed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from gateway.proxy.journal import Delivered, InboundRow, Journal, Keep
from gateway.proxy.settings import ProxySettings
from smsc.constants import Status
from smsc.link import Link
from smsc.pdu import DataSm, DeliverSm, Pdu, PduError, SmppError, decode_pdu

log = logging.getLogger("fraudgate.proxy")
OFFER_TIMEOUT = 1.0  # seconds an aggregator has to answer a receipt or MO (then: kept)
SLOW_FOR = 30.0  # a link that let an offer time out is passed over this long (kept instead)


@dataclass
class InboundStats:
    delivered: int = 0  # taken by the aggregator at once
    kept: int = 0  # kept in the journal for later
    redelivered: int = 0  # kept ones taken later
    refused: int = 0  # answers other than ROK


class Inbound:
    def __init__(
        self, settings: ProxySettings, journal: Journal, clock: Callable[[], float]
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.clock = clock
        self.links: dict[str, list[Link]] = {}
        self.stats = InboundStats()
        self._turn = 0
        self._kick = asyncio.Event()
        self._slow: dict[Link, float] = {}  # links that did not answer in time: until when

    def bound(self, account: str, link: Link) -> None:
        self.links.setdefault(account, []).append(link)
        self._kick.set()  # what was kept for it goes now

    def gone(self, link: Link) -> None:
        self._slow.pop(link, None)
        for links in self.links.values():
            if link in links:
                links.remove(link)

    def _candidates(self, account: str) -> list[Link]:
        """Bound links with room in their window, not slow lately: an aggregator that does
        not answer must not hold the SMSC's deliver_sm (and so every account's) for long."""
        now = self.clock()
        links = [
            x for x in self.links.get(account, [])
            if x.session.bound and x.session.window_free > 0 and self._slow.get(x, 0.0) <= now
        ]  # fmt: skip
        if len(links) > 1:
            self._turn += 1
            k = self._turn % len(links)
            links = links[k:] + links[:k]
        return links

    async def offer(self, link: Link, pdu: Pdu) -> bool:
        """One try on one link: True when the aggregator took it."""
        try:
            resp = await link.request(decode_pdu(pdu.encode()), timeout=OFFER_TIMEOUT)
        except TimeoutError:
            self._slow[link] = self.clock() + SLOW_FOR
            return False
        except SmppError:
            return False
        if resp.status != Status.ESME_ROK:
            self.stats.refused += 1
            return False
        return True

    async def deliver(self, account: str, pdu: DeliverSm | DataSm, kind: str, key: str) -> bool:
        """To the aggregator now, else kept. False only when neither worked (the SMSC is then
        answered for retry)."""
        for link in self._candidates(account)[:2]:
            if await self.offer(link, pdu):
                self.stats.delivered += 1
                return True
        row_id = hashlib.blake2b(f"{account}/{key}".encode(), digest_size=16).hexdigest()
        row = InboundRow(row_id, account, kind, pdu.encode(), 0, self.clock())
        try:
            await self.journal.submit(Keep(row))
        except Exception as exc:  # StoreError, timeout
            log.warning("proxy: a %s for %s could not be kept: %s", kind, account, exc)
            return False
        self.stats.kept += 1
        self._kick.set()
        return True

    async def run(self) -> None:
        """Offer what was kept to the accounts that are bound."""
        while True:
            self._kick.clear()
            for account in [a for a, links in self.links.items() if links]:
                try:
                    await self._redeliver(account)
                except Exception as exc:  # the journal: next round
                    log.warning("proxy: kept messages for %s not offered: %s", account, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.settings.receipt_retry)

    async def _redeliver(self, account: str) -> None:
        while True:
            rows = await self.journal.inbound_for(
                account, self.settings.max_inbound_attempts, limit=200
            )
            if not rows:
                return
            for row in rows:
                links = self._candidates(account)
                if not links:
                    return
                try:
                    pdu = decode_pdu(row.pdu)
                except PduError:  # pragma: no cover - written by us
                    await self.journal.submit(Delivered([row.id]))
                    continue
                ok = await self.offer(links[0], pdu)
                await self.journal.submit(Delivered([row.id], failed=not ok))
                if not ok:
                    return  # this account is not taking them now: the next round
                self.stats.redelivered += 1
