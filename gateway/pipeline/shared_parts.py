"""The parts of one concatenated SMS spread over several gateway nodes (docs/operations.md
"Several nodes"): an SMSC delivers each part to whichever bind is free, so with N nodes a
message's parts land on different nodes, and none could judge the whole text.

Each part (tap mode) is parked in the shared store under its message's key (the bind's SMSC
account, source, destination, reference, total; hashed). The node whose part completes the set
gets every part back, judges the whole message as one node would (one record, the same id on
every node), answers its own parts, and publishes the answer status under the key; the nodes
holding the other parts poll for it (every `poll` seconds while they hold any) and answer
theirs with it. A part redelivered after the verdict gets the verdict at once. A store error
status (the database could not record: the SMSC retries) is passed on but not kept, so the
redelivered parts are reassembled afresh.

The store unreachable when a part comes: the part is reassembled on this node as before. A
verdict not come within the reassembly timeout: the parts held here are judged on their own,
as an incomplete message (what one node does when parts never come).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from smsc.concat import ConcatInfo
from smsc.link import Link, LinkClosedError
from smsc.pdu import DataSm, DeliverSm, Pdu, decode_pdu
from smsc.sms import Sms, SmsAssembler

log = logging.getLogger("fraudgate.shared")


@dataclass(frozen=True, slots=True)
class Parked:
    """A part's fate: "held" (others missing), "complete" (`raws`: every part's PDU, this one's
    included) or "verdict" (the message was judged: answer `status`)."""

    kind: str
    raws: tuple[bytes, ...] = ()
    status: int = 0


class PartsStore(Protocol):
    async def park(self, key: str, seq: int, total: int, raw: bytes, ttl: float) -> Parked: ...

    async def decide(self, key: str, status: int, keep: bool, ttl: float) -> None: ...

    async def verdicts(self, keys: Sequence[str]) -> list[int | None]: ...


class PartsHandler(Protocol):
    """What of GatewayHandler the parts need (gateway/pipeline/handler.py)."""

    scope: str
    assembler: SmsAssembler
    assembler_timeout: float

    def take_local(self, link: Link, pdu: DeliverSm | DataSm, started: float) -> None: ...

    def process(self, link: Link, sms: Sms, started: float) -> None: ...


@dataclass
class _Held:
    handler: PartsHandler
    link: Link
    pdu: DeliverSm | DataSm
    started: float


@dataclass
class _Waiting:
    parts: list[_Held] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class SharedParts:
    def __init__(
        self, store: PartsStore, *, timeout: float = 0.05, poll: float = 0.01, key: bytes = b""
    ) -> None:
        self.store = store
        self.timeout = timeout  # a round trip's limit before the part goes the local way
        self.poll = poll
        self.key = key  # BLAKE2b key of message keys ([shared] pseudonym_key)
        self.waiting: dict[str, _Waiting] = {}
        self.foreign: dict[int, str] = {}  # id() of a part another node answers -> its key
        self.parked = 0
        self.completed = 0
        self.answered_remote = 0  # parts answered with another node's verdict
        self.local = 0  # parts reassembled on this node alone (store unreachable / no verdict)
        self._poller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def message_key(self, scope: str, pdu: DeliverSm | DataSm, concat: ConcatInfo) -> str:
        ident = f"{scope}|{pdu.source_addr}|{pdu.destination_addr}|{concat.ref_bits}:{concat.ref}"
        ident += f"|{concat.total}"
        return hashlib.blake2b(ident.encode(), digest_size=12, key=self.key).hexdigest()

    def submit(
        self, handler: PartsHandler, link: Link, pdu: DeliverSm | DataSm, concat: ConcatInfo,
        started: float,
    ) -> None:  # fmt: skip
        self._spawn(self._park(_Held(handler, link, pdu, started), concat))

    async def _park(self, held: _Held, concat: ConcatInfo) -> None:
        key = self.message_key(held.handler.scope, held.pdu, concat)
        ttl = 2 * held.handler.assembler_timeout + 5
        try:
            parked = await asyncio.wait_for(
                self.store.park(key, concat.seq, concat.total, held.pdu.encode(), ttl),
                self.timeout,
            )
        except Exception as exc:  # the part is reassembled here, as on one node
            log.debug("part not parked in the shared store (%s): reassembled locally", exc)
            self.local += 1
            held.handler.take_local(held.link, held.pdu, held.started)
            return
        self.parked += 1
        if parked.kind == "verdict":
            self._answer(held, parked.status)
        elif parked.kind == "complete":
            self._judge(key, held, parked.raws)
        else:
            self._hold(key, held)

    def _judge(self, key: str, held: _Held, raws: Sequence[bytes]) -> None:
        """This node has the last part: the whole message, judged here."""
        self.completed += 1
        mine = held.pdu.encode()
        pdus: list[DeliverSm | DataSm] = []
        for raw in raws:
            if raw == mine:
                pdus.append(held.pdu)
                continue
            other = decode_pdu(raw)
            assert isinstance(other, DeliverSm | DataSm)  # parked from the same path
            self.foreign[id(other)] = key
            pdus.append(other)
        asm = SmsAssembler(timeout=held.handler.assembler_timeout,
                           ia5_is_gsm=held.handler.assembler.ia5_is_gsm)  # fmt: skip
        for pdu in pdus:
            sms = asm.feed(pdu, 0.0, scope=key)
            if sms is not None:
                held.handler.process(held.link, sms, held.started)

    def answered(self, pdus: Sequence[Pdu], status: int, retry: bool) -> list[Pdu]:
        """Called as a message is answered: its parts that other nodes hold are left out (the
        status goes to them through the store); the ones to answer here are returned."""
        keys: set[str] = set()
        own: list[Pdu] = []
        for pdu in pdus:
            key = self.foreign.pop(id(pdu), None)
            if key is None:
                own.append(pdu)
            else:
                keys.add(key)
        for key in keys:
            self._spawn(self._decide(key, int(status), retry))
        return own

    async def _decide(self, key: str, status: int, retry: bool) -> None:
        try:
            await self.store.decide(key, status, keep=not retry, ttl=3600.0)
        except Exception as exc:  # the other parts are judged alone at their timeout
            log.warning("verdict of a message's parts not shared (%s)", exc)

    def _hold(self, key: str, held: _Held) -> None:
        waiting = self.waiting.setdefault(key, _Waiting())
        waiting.parts.append(held)
        if waiting.timer is None:
            loop = asyncio.get_running_loop()
            waiting.timer = loop.call_later(held.handler.assembler_timeout, self._expire, key)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        """While parts are held: one round trip per `poll` for the verdicts of all of them."""
        while self.waiting:
            await asyncio.sleep(self.poll)
            keys = list(self.waiting)
            try:
                found = await asyncio.wait_for(self.store.verdicts(keys), max(self.timeout, 1.0))
            except Exception:  # tried again next time; the timeout still applies
                continue
            for key, status in zip(keys, found, strict=True):
                if status is not None:
                    waiting = self.waiting.pop(key, None)
                    if waiting is not None:
                        self._release(waiting, status)

    def _release(self, waiting: _Waiting, status: int) -> None:
        if waiting.timer is not None:
            waiting.timer.cancel()
        for held in waiting.parts:
            self.answered_remote += 1
            self._answer(held, status)

    def _expire(self, key: str) -> None:
        """No verdict in time: the parts held here, judged on their own (incomplete), those of
        each link together (a part is answered on the link it came on)."""
        waiting = self.waiting.pop(key, None)
        if waiting is None:
            return
        by_link: dict[int, list[_Held]] = {}
        for held in waiting.parts:
            by_link.setdefault(id(held.link), []).append(held)
        for group in by_link.values():
            first = group[0]
            asm = SmsAssembler(timeout=1.0, ia5_is_gsm=first.handler.assembler.ia5_is_gsm)
            for held in group:
                self.local += 1
                asm.feed(held.pdu, 0.0, scope=key)
            for sms in asm.handle_timer(2.0):  # what came, now: the others will not
                first.handler.process(first.link, sms, first.started)

    @staticmethod
    def _answer(held: _Held, status: int) -> None:
        from gateway.pipeline.handler import refusal  # the handler imports this module

        pdu = held.pdu
        with contextlib.suppress(LinkClosedError):  # the SMSC redelivers it: verdict kept
            held.link.respond(refusal(pdu, status) if status else pdu.response())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
