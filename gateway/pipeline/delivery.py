"""Inline forwarding: the onward submit_sm of an accepted MO SMS, and delivery receipts correlated
with the original message (docs/inline.md).

    onward_submit(deliver_sm)            the submit_sm that carries one received part onward
    ReceiptCorrelator                    sans-I/O: submit_sm_resp ids and (source, dest) pairs in,
                                         receipts in, per-message outcomes out
    DeliveryWriter                       the `deliveries` rows, written in order off the hot path
    OnwardLedger                         sans-I/O: the messages accepted onward lately, so that
                                         an SMSC's redelivery of one is not sent twice

Correlation: an SMSC that answers submit_sm with the id its receipts carry is matched by id. One
that does not (osmo-msc answers 'msg_id_not_implemented' and its receipt says `id:<database id>`)
is matched by the address pair: the receipt comes FROM the original destination TO the original
source, and goes to the oldest pending part of that pair. Pair FIFO is exact while the SMSC
delivers one pair's messages in order, which a store-and-forward SMSC does for one recipient; a
receipt that overtakes an older one of the same pair is attributed to the older message.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from smsc.constants import EsmClass, Tag
from smsc.pdu import DataSm, DeliverSm, Pdu, SubmitSm, Tlv
from smsc.receipt import DeliveryReceipt

log = logging.getLogger("fraudgate.delivery")

# TLVs carried onward as received: the text (message_payload), SAR concatenation, application
# ports, and the phone's message reference (osmo-msc reads it back from submit_sm).
ONWARD_TLVS = frozenset(
    {
        Tag.MESSAGE_PAYLOAD,
        Tag.SAR_MSG_REF_NUM,
        Tag.SAR_TOTAL_SEGMENTS,
        Tag.SAR_SEGMENT_SEQNUM,
        Tag.USER_MESSAGE_REFERENCE,
        Tag.SOURCE_PORT,
        Tag.DESTINATION_PORT,
    }
)


class DeliveryState(StrEnum):
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    EXPIRED = "expired"
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # the SMSC said UNKNOWN, or no receipt came in time


class OnwardStatus(StrEnum):
    SUBMITTED = "submitted"  # every part accepted by the SMSC (submit_sm_resp 0)
    FAILED = "failed"  # a part refused (onward_error = its status), timed out or link lost


# Appendix B `stat` values; ENROUTE is not final (the entry stays pending).
_FINAL: dict[str, DeliveryState] = {
    "DELIVRD": DeliveryState.DELIVERED,
    "ACCEPTD": DeliveryState.DELIVERED,  # §5.2.28: read on the subscriber's behalf
    "UNDELIV": DeliveryState.UNDELIVERABLE,
    "DELETED": DeliveryState.UNDELIVERABLE,
    "EXPIRED": DeliveryState.EXPIRED,
    "REJECTD": DeliveryState.REJECTED,
    "UNKNOWN": DeliveryState.UNKNOWN,
}


def final_state(stat: str) -> DeliveryState | None:
    """The delivery state a receipt's `stat` reports, or None while the message is en route."""
    s = stat.strip().upper()
    if not s or s.startswith("ENROUTE"):
        return None
    return _FINAL.get(s[:7], DeliveryState.UNKNOWN)


def onward_submit(pdu: Pdu) -> SubmitSm:
    """The submit_sm that carries a received deliver_sm / data_sm part onward: source and
    destination (address, TON, NPI), data_coding, protocol_id and the UDHI bit as received, the
    text as received (short_message or message_payload), and a receipt requested."""
    assert isinstance(pdu, DeliverSm | DataSm)
    return SubmitSm(
        source_addr_ton=pdu.source_addr_ton,
        source_addr_npi=pdu.source_addr_npi,
        source_addr=pdu.source_addr,
        dest_addr_ton=pdu.dest_addr_ton,
        dest_addr_npi=pdu.dest_addr_npi,
        destination_addr=pdu.destination_addr,
        esm_class=pdu.esm_class & EsmClass.UDHI,
        protocol_id=0 if isinstance(pdu, DataSm) else pdu.protocol_id,
        registered_delivery=1,
        data_coding=pdu.data_coding,
        short_message=b"" if isinstance(pdu, DataSm) else pdu.short_message,
        tlvs=[Tlv(t.tag, t.value) for t in pdu.tlvs if t.tag in ONWARD_TLVS],
    )


def reference_of(pdu: Pdu) -> int | None:
    """The user_message_reference TLV (0x0204) as an int, None when absent or malformed.
    osmo-msc puts a counter of its own on every MO deliver_sm and echoes the low 8 bits of an
    ESME's submit_sm reference in its receipt: the onward submit keeps the MO's."""
    raw = pdu.tlv_bytes(Tag.USER_MESSAGE_REFERENCE)
    if raw is None or not 1 <= len(raw) <= 2:
        return None
    return int.from_bytes(raw, "big")


def receipt_wanted(pdus: Iterable[Pdu]) -> bool:
    """Whether the sending phone asked for a status report (registered_delivery of the MO)."""
    return any(getattr(p, "registered_delivery", 0) & 0x03 for p in pdus)


def _addr(address: str) -> str:
    return address.lstrip("+")


# --------------------------------------------------------------------------------------------
# The correlator (sans-I/O)


@dataclass(slots=True, eq=False)
class _Entry:
    message_id: str
    part: int
    pair: tuple[str, str]  # (original source, original destination)
    submit_id: str
    at: float
    ref: int | None = None  # low 8 bits of the onward submit's user_message_reference
    live: bool = True


@dataclass(slots=True)
class _Track:
    pair: tuple[str, str]
    parts: int
    states: list[DeliveryState | None]
    receipt_ids: list[str]
    left: int  # parts still pending


@dataclass(frozen=True, slots=True)
class Outcome:
    """A message whose every part has a final state (or expired without a receipt)."""

    message_id: str
    state: DeliveryState  # delivered when all parts are; else the first part's that is not
    parts: int
    receipt_ids: tuple[str, ...]  # the SMSC's receipt ids, by part ("" where none came)
    matched_by: str  # "id", "reference", "pair" or "expiry"


@dataclass(frozen=True, slots=True)
class Match:
    """What one receipt did: the part it was matched to, and the message's outcome when that
    receipt completed it."""

    message_id: str
    part: int
    state: DeliveryState | None  # None: not final (ENROUTE), the part stays pending
    matched_by: str
    outcome: Outcome | None


@dataclass
class CorrelatorStats:
    registered: int = 0
    matched_by_id: int = 0
    matched_by_ref: int = 0  # pair + user_message_reference (osmo-msc)
    matched_by_pair: int = 0
    unmatched: int = 0
    expired: int = 0
    evicted: int = 0  # dropped because max_pending was reached
    pending: int = 0


class ReceiptCorrelator:
    """Pending onward parts, matched to receipts by submit id first, else by the address pair
    (oldest first). Entries older than `ttl` seconds expire (the message's outcome is 'unknown');
    at most `max_pending` parts are held (the oldest goes first). A submit id seen twice (an
    SMSC that answers a constant such as 'msg_id_not_implemented') is never used to match."""

    def __init__(self, *, ttl: float = 48 * 3600.0, max_pending: int = 200_000) -> None:
        self.ttl = ttl
        self.max_pending = max_pending
        self.stats = CorrelatorStats()
        self._by_pair: dict[tuple[str, str], deque[_Entry]] = {}
        self._by_id: dict[str, _Entry] = {}
        self._ambiguous: set[str] = set()  # submit ids seen more than once: useless to match
        self._order: deque[_Entry] = deque()  # registration order (ttl is the same for all)
        self._tracks: dict[str, _Track] = {}

    def __len__(self) -> int:
        return self.stats.pending

    def knows(self, submit_id: str) -> bool:
        """A submit id this correlator matches receipts by (seen once, still pending)."""
        return submit_id in self._by_id

    def ambiguous(self, submit_id: str) -> bool:
        """A submit id answered more than once (a constant): it names no submit."""
        return submit_id in self._ambiguous

    # -- registration ------------------------------------------------------------------------
    def register(
        self,
        message_id: str,
        source: str,
        dest: str,
        parts: int,
        now: float,
        refs: Sequence[int | None] = (),
    ) -> list[Outcome]:
        """Expect receipts for the `parts` parts of a message about to be submitted onward. Done
        BEFORE the first submit_sm goes out: a fast SMSC's receipt may be read in the same
        packet as the submit_sm_resp, before the submitter has seen the response. Returns the
        outcomes of messages that expired or were evicted to make room."""
        pair = (_addr(source), _addr(dest))
        self._tracks[message_id] = _Track(pair, parts, [None] * parts, [""] * parts, parts)
        queue = self._by_pair.setdefault(pair, deque())
        for part in range(parts):
            ref = refs[part] if part < len(refs) else None
            entry = _Entry(message_id, part, pair, "", now, None if ref is None else ref & 0xFF)
            queue.append(entry)
            self._order.append(entry)
            self.stats.registered += 1
            self.stats.pending += 1
        return self.handle_timer(now)

    def submitted(self, message_id: str, part: int, submit_id: str) -> None:
        """The submit_sm_resp message_id of a part, for matching receipts by id."""
        if not submit_id or submit_id in self._ambiguous:
            return
        if submit_id in self._by_id:
            del self._by_id[submit_id]
            self._ambiguous.add(submit_id)
            return
        entry = next(
            (
                e
                for e in self._by_pair_of(message_id)
                if e.message_id == message_id and e.part == part
            ),
            None,
        )
        if entry is not None:
            entry.submit_id = submit_id
            self._by_id[submit_id] = entry

    def cancel(self, message_id: str, *, from_part: int = 0) -> None:
        """Parts `from_part`.. of the message never reached the SMSC (or were refused): forget
        them. The parts before were accepted and their receipts will come: they stay pending,
        or a receipt of theirs would be taken for the next message between the same numbers.
        The message's outcome then covers the accepted parts only."""
        track = self._tracks.get(message_id)
        if track is None:
            return
        queue = self._by_pair.get(track.pair, deque())
        for entry in [e for e in queue if e.message_id == message_id and e.part >= from_part]:
            entry.live = False
            self.stats.pending -= 1
            self._unlink(entry)
            track.left -= 1
        if track.left <= 0:
            del self._tracks[message_id]

    def _by_pair_of(self, message_id: str) -> deque[_Entry]:
        track = self._tracks.get(message_id)
        if track is None:
            return deque()
        return self._by_pair.get(track.pair, deque())

    # -- receipts ----------------------------------------------------------------------------
    def match(
        self,
        source: str,
        dest: str,
        receipt: DeliveryReceipt,
        now: float,
        ref: int | None = None,
        accept: Callable[[str], bool] | None = None,
    ) -> Match | None:
        """A receipt FROM `source` (the original destination) TO `dest` (the original source),
        with the receipt's user_message_reference `ref` when it has one. By submit id; else
        the oldest part of the pair whose reference is `ref`; else the oldest of the pair.
        With `accept`, only parts whose message id it accepts are matched by pair (the A2P
        proxy compares the receipt's text with the message's). None when no pending part fits
        (counted in stats.unmatched)."""
        entry = self._by_id.get(receipt.message_id) if receipt.message_id else None
        how = "id"
        if entry is None:
            queue = self._by_pair.get((_addr(dest), _addr(source)))
            if queue and accept is not None:
                queue = deque(e for e in queue if accept(e.message_id))
            how, entry = "pair", queue[0] if queue else None
            if queue and ref is not None:
                low = ref & 0xFF
                found = next((e for e in queue if e.ref == low), None)
                if found is not None:
                    how, entry = "reference", found
        if entry is None:
            self.stats.unmatched += 1
            return None
        if how == "id":
            self.stats.matched_by_id += 1
        elif how == "reference":
            self.stats.matched_by_ref += 1
        else:
            self.stats.matched_by_pair += 1
        state = final_state(receipt.stat)
        if state is None:
            return Match(entry.message_id, entry.part, None, how, None)
        track = self._tracks[entry.message_id]
        track.receipt_ids[entry.part] = receipt.message_id
        outcome = self._settle(entry, state, how)
        return Match(entry.message_id, entry.part, state, how, outcome)

    def _unlink(self, entry: _Entry) -> None:
        queue = self._by_pair.get(entry.pair)
        if queue is not None:
            if queue and queue[0] is entry:
                queue.popleft()
            else:
                queue.remove(entry)
            if not queue:
                del self._by_pair[entry.pair]
        if self._by_id.get(entry.submit_id) is entry:
            del self._by_id[entry.submit_id]

    # -- expiry ------------------------------------------------------------------------------
    def handle_timer(self, now: float) -> list[Outcome]:
        """Parts pending longer than ttl, and the oldest beyond max_pending, end 'unknown'."""
        outcomes: list[Outcome] = []
        order = self._order
        while order:
            entry = order[0]
            if not entry.live:
                order.popleft()
                continue
            over = self.stats.pending > self.max_pending
            if not over and now - entry.at <= self.ttl:
                break
            order.popleft()
            if over:
                self.stats.evicted += 1
            else:
                self.stats.expired += 1
            outcome = self._settle(entry, DeliveryState.UNKNOWN, "expiry")
            if outcome is not None:
                outcomes.append(outcome)
        if len(order) > 2 * max(self.stats.pending, 1000):  # settled entries behind a live one
            self._order = deque(e for e in order if e.live)
        return outcomes

    def _settle(self, entry: _Entry, state: DeliveryState, how: str) -> Outcome | None:
        entry.live = False
        self.stats.pending -= 1
        track = self._tracks[entry.message_id]
        self._unlink(entry)
        track.states[entry.part] = state
        track.left -= 1
        if track.left:
            return None
        del self._tracks[entry.message_id]
        final = next(
            (s for s in track.states if s is not DeliveryState.DELIVERED), DeliveryState.DELIVERED
        )
        return Outcome(
            entry.message_id, final or DeliveryState.UNKNOWN, track.parts,
            tuple(track.receipt_ids), how,
        )  # fmt: skip


# --------------------------------------------------------------------------------------------
# The `deliveries` rows (written in order, off the SMPP path)


@dataclass(frozen=True, slots=True)
class Submitted:
    """An onward submission's result: the row's first write."""

    message_id: str
    smsc: str
    parts: int
    onward: OnwardStatus
    onward_error: int | None  # the SMSC's submit_sm_resp status of the failing part
    detail: str  # "", "timeout", "link closed", or the status name
    submit_ids: tuple[str, ...]
    receipt_requested: bool  # the phone asked for a status report
    submitted_at: float


@runtime_checkable
class DeliveryStore(Protocol):
    async def record_delivery(self, row: Submitted) -> None: ...

    async def finish_delivery(self, outcome: Outcome, done_at: float) -> None: ...

    async def went_onward(self, message_ids: Sequence[str]) -> bool: ...


@dataclass
class DeliveryWriter:
    """Writes `deliveries` rows one at a time in arrival order (an insert always precedes the
    update of the same message). A failed write is logged and counted, not retried: the SMS and
    its verdict are recorded by the Recorder already; this is the delivery bookkeeping."""

    store: DeliveryStore
    clock: Callable[[], float]
    failed: int = 0
    written: int = 0
    _queue: deque[Callable[[], Awaitable[None]]] = field(default_factory=deque)
    _task: asyncio.Task[None] | None = None
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def submitted(self, row: Submitted) -> None:
        self._put(lambda: self.store.record_delivery(row))

    def finished(self, outcome: Outcome) -> None:
        done_at = self.clock()
        self._put(lambda: self.store.finish_delivery(outcome, done_at))

    def _put(self, op: Callable[[], Awaitable[None]]) -> None:
        self._queue.append(op)
        self._idle.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="deliveries")

    async def _run(self) -> None:
        while self._queue:
            op = self._queue.popleft()
            try:
                await op()
                self.written += 1
            except Exception as exc:  # StoreError and the like: bookkeeping only
                self.failed += 1
                log.warning("delivery record not written: %s", exc)
        self._idle.set()

    async def flush(self, timeout: float) -> None:
        """Wait until every queued row is written (bounded)."""
        if not self._queue and (self._task is None or self._task.done()):
            return
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("%d delivery records still unwritten", len(self._queue))

    async def went_onward(self, message_ids: Sequence[str], timeout: float = 5.0) -> bool:
        """Whether one of these ids (a message's id and its prior id,
        gateway.pipeline.message_ids) was accepted onward, by the rows written (the queued ones
        first). Raises the store's error: the caller cannot tell, and must not guess."""
        await self.flush(timeout)
        return await self.store.went_onward([i for i in message_ids if i])


class OnwardLedger:
    """Forward mode, sans-I/O: the ids of messages accepted onward (every part's submit_sm_resp
    0) within the last `ttl` seconds, at most `max_entries` of them.

    An SMSC redelivers a deliver_sm whose answer it did not get: the link was cut after the
    onward submit was accepted and before the deliver_sm_resp arrived, or the gateway died in
    between. The redelivery has the same id (gateway.pipeline.message_ids); found here, or in the
    `deliveries` rows (DeliveryWriter.went_onward, after a restart), it is answered ROK and not
    submitted again. This memory covers the rows not written yet; the rows cover the rest."""

    def __init__(self, *, ttl: float = 120.0, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._at: OrderedDict[str, float] = OrderedDict()  # id -> when accepted, oldest first

    def __len__(self) -> int:
        return len(self._at)

    def accepted(self, message_id: str, now: float) -> None:
        self._at[message_id] = now
        self._at.move_to_end(message_id)
        self._trim(now)

    def knows(self, message_ids: Iterable[str], now: float) -> bool:
        self._trim(now)
        return any(i in self._at for i in message_ids if i)

    def _trim(self, now: float) -> None:
        at = self._at
        while at and (len(at) > self.max_entries or now - next(iter(at.values())) > self.ttl):
            at.popitem(last=False)
