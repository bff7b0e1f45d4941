"""The parts of one concatenated SMS spread over several gateway nodes (docs/operations.md
"Several nodes"): an SMSC delivers each part to whichever bind is free, so with N nodes a
message's parts land on different nodes, and none could judge the whole text.

Each part (tap mode) is parked in the shared store under its message's key (the bind's SMSC
account, source, destination, reference, total; hashed). The node whose part completes the set
gets every part back, judges the whole message as one node would (one record, the same id on
every node), answers its own parts, and publishes the answer status under the key with each
part's content digest; the nodes holding the other parts poll for it (every `poll` seconds
while they hold any) and answer theirs with it. A part redelivered after the verdict (same
content) gets the verdict at once; another text under the same key (a reused reference) is
a new message. A store error status (the database could not record: the SMSC retries) is
passed on but not kept, so the redelivered parts are reassembled afresh. A node that took
the parts to judge and never decided (it died) lets its claim expire after
`reassembly_timeout`: the next part parked takes it.

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

from gateway.pipeline.message_ids import message_key
from smsc.concat import ConcatInfo
from smsc.link import Link, LinkClosedError
from smsc.pdu import DataSm, DeliverSm, Pdu, decode_pdu
from smsc.sms import Sms, SmsAssembler, split_part

log = logging.getLogger("fraudgate.shared")

MAX_FOREIGN = 10_000  # parts answered elsewhere, listed at once at most


def _digest(pdu: Pdu, scope: str) -> str:
    """A part's content (the fields and text that make a message's id, not the PDU's sequence
    number): a redelivery has the same."""
    return message_key([pdu], scope).hex()


def _digests(pdus: Sequence[Pdu], scope: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for pdu in pdus:
        if isinstance(pdu, DeliverSm | DataSm) and (concat := split_part(pdu).concat):
            out[concat.seq] = _digest(pdu, scope)
    return out


@dataclass(frozen=True, slots=True)
class Parked:
    """A part's fate: "held" (others missing), "complete" (`raws`: every part's PDU, this one's
    included) or "verdict" (the message was judged: answer `status`)."""

    kind: str
    raws: tuple[bytes, ...] = ()
    status: int = 0


@dataclass(frozen=True, slots=True)
class PartToPark:
    key: str  # its message's key (`SharedParts.message_key`)
    seq: int
    total: int
    raw: bytes  # the PDU as received
    digest: str  # its content, without the PDU's sequence number (a redelivery has the same)
    ttl: float  # seconds the parked parts are kept
    judge_ttl: float  # seconds a node that took them to judge has before another may


class PartsStore(Protocol):
    async def park(self, part: PartToPark) -> Parked: ...

    async def decide(self, key: str, status: int, digests: dict[int, str], ttl: float) -> None:
        """`digests` (seq -> content digest) are kept for redeliveries; none: a retry status,
        told to the nodes waiting now only."""

    async def verdicts(self, keys: Sequence[str]) -> list[int | None]: ...


class PartsHandler(Protocol):
    """What of GatewayHandler the parts need (gateway/pipeline/handler.py)."""

    scope: str
    assembler: SmsAssembler
    assembler_timeout: float
    redelivery_window: float

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
        # parts another node answers, by id(): the part itself (kept, so its id is not reused
        # while listed) and its message's key and scope
        self.foreign: dict[int, tuple[Pdu, str, str]] = {}
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
        handler = held.handler
        part = PartToPark(
            key=self.message_key(handler.scope, held.pdu, concat), seq=concat.seq,
            total=concat.total, raw=held.pdu.encode(), digest=_digest(held.pdu, handler.scope),
            ttl=2 * handler.assembler_timeout + 5, judge_ttl=handler.assembler_timeout,
        )  # fmt: skip
        key = part.key
        try:
            # longer than a batch's limit: a part is rare, and one given up on after Redis
            # parked it would leave its message to be judged in fragments
            parked = await asyncio.wait_for(self.store.park(part), max(self.timeout, 1.0))
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
            self._remember(other, key, held.handler.scope)
            pdus.append(other)
        asm = SmsAssembler(timeout=held.handler.assembler_timeout,
                           ia5_is_gsm=held.handler.assembler.ia5_is_gsm)  # fmt: skip
        for pdu in pdus:
            sms = asm.feed(pdu, 0.0, scope=key)
            if sms is not None:
                held.handler.process(held.link, sms, held.started)

    def _remember(self, pdu: Pdu, key: str, scope: str) -> None:
        self.foreign[id(pdu)] = (pdu, key, scope)
        while len(self.foreign) > MAX_FOREIGN:  # messages judged and never answered: rare
            del self.foreign[next(iter(self.foreign))]

    def answered(
        self, pdus: Sequence[Pdu], status: int, retry: bool, redelivery_window: float
    ) -> list[Pdu]:
        """Called as a message is answered: its parts that other nodes hold are left out (the
        status goes to them through the store); the ones to answer here are returned."""
        keys: dict[str, str] = {}
        own: list[Pdu] = []
        for pdu in pdus:
            entry = self.foreign.pop(id(pdu), None)
            if entry is None or entry[0] is not pdu:
                own.append(pdu)
            else:
                keys[entry[1]] = entry[2]
        for key, scope in keys.items():
            digests = {} if retry else _digests(pdus, scope)
            ttl = 5.0 if retry else redelivery_window
            self._spawn(self._decide(key, int(status), digests, ttl))
        return own

    async def _decide(self, key: str, status: int, digests: dict[int, str], ttl: float) -> None:
        try:
            await self.store.decide(key, status, digests, ttl)
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
