"""Concatenated short message reassembly (sans-I/O).

* :func:`parse_udh` splits a User Data Header from the payload (3GPP TS 23.040 §9.2.3.24).
* :func:`concat_from_udh` reads the concatenation IE: IEI 0x00 (8-bit reference,
  §9.2.3.24.1) or IEI 0x08 (16-bit reference, §9.2.3.24.8).
* :func:`concat_from_sar` reads the SMPP 3.4 ``sar_msg_ref_num`` / ``sar_total_segments`` /
  ``sar_segment_seqnum`` TLVs (§5.3.2.22-24).
* :class:`Reassembler` groups parts and hands back whole messages, or incomplete ones on
  timeout or eviction. It never loses a caller's token: each token handed to :meth:`add`
  comes back exactly once, in an :class:`Assembled`.

Time is passed in as ``now`` (seconds, any monotonic clock); nothing here sleeps or does I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

__all__ = [
    "Assembled",
    "ConcatInfo",
    "Reassembler",
    "UdhElement",
    "UdhError",
    "concat_from_sar",
    "concat_from_udh",
    "parse_udh",
]

T = TypeVar("T")

IEI_CONCAT_8BIT: Final = 0x00
IEI_CONCAT_16BIT: Final = 0x08


class UdhError(ValueError):
    """The User Data Header is malformed."""


@dataclass(frozen=True, slots=True)
class UdhElement:
    """One information element of a UDH."""

    iei: int
    data: bytes


def parse_udh(data: bytes) -> tuple[list[UdhElement], bytes]:
    """Split ``data`` (starting with the UDHL octet) into its IEs and the remaining payload.

    TS 23.040 §9.2.3.24: UDHL, then IEs of IEI, IEDL and IEDL octets of data. Raises
    :class:`UdhError` (and nothing else) when the header is broken: no UDHL, UDHL beyond the
    data, or an IE whose header or length runs past the UDHL.
    """
    if not data:
        raise UdhError("empty user data: no UDHL octet")
    udhl = data[0]
    available = len(data) - 1
    if udhl > available:
        raise UdhError(f"UDHL {udhl} exceeds the {available} octets following it")
    header = bytes(data[1 : 1 + udhl])
    elements: list[UdhElement] = []
    i = 0
    while i < udhl:
        if i + 2 > udhl:
            raise UdhError(
                f"truncated IE at UDH offset {i}: IEI 0x{header[i]:02x} without a length octet "
                f"(UDHL {udhl})"
            )
        iei, iedl = header[i], header[i + 1]
        if i + 2 + iedl > udhl:
            raise UdhError(
                f"IE 0x{iei:02x} at UDH offset {i} has length {iedl}, beyond the UDH "
                f"({udhl - i - 2} octets left of UDHL {udhl})"
            )
        elements.append(UdhElement(iei, header[i + 2 : i + 2 + iedl]))
        i += 2 + iedl
    return elements, bytes(data[1 + udhl :])


@dataclass(frozen=True, slots=True)
class ConcatInfo:
    """Position of one part in a concatenated message.

    ``ref_bits`` is 8 for IEI 0x00 and 16 for IEI 0x08 and for the SMPP SAR TLVs (whose
    ``sar_msg_ref_num`` is a 2-octet integer). It is part of the message identity, so an 8-bit
    ref 5 and a 16-bit ref 5 are different messages. Construction validates the fields
    (ValueError): 1 <= seq <= total <= 255, 0 <= ref < 2**ref_bits.
    """

    ref: int
    total: int
    seq: int
    ref_bits: int = 8

    def __post_init__(self) -> None:
        if self.ref_bits not in (8, 16):
            raise ValueError(f"ref_bits must be 8 or 16, not {self.ref_bits}")
        if not 0 <= self.ref < (1 << self.ref_bits):
            raise ValueError(f"ref {self.ref} does not fit {self.ref_bits} bits")
        if not 1 <= self.total <= 255:
            raise ValueError(f"total {self.total} outside 1..255")
        if not 1 <= self.seq <= self.total:
            raise ValueError(f"seq {self.seq} outside 1..{self.total}")


def _valid(ref: int, total: int, seq: int, ref_bits: int) -> ConcatInfo | None:
    if 1 <= seq <= total <= 255 and 0 <= ref < (1 << ref_bits):
        return ConcatInfo(ref, total, seq, ref_bits)
    return None


def concat_from_udh(elements: Iterable[UdhElement]) -> ConcatInfo | None:
    """The concatenation information of a UDH, or None if it has none usable.

    The 8-bit (IEI 0x00, 3 octets: ref, total, seq) and 16-bit (IEI 0x08, 4 octets: ref hi,
    ref lo, total, seq) IEs are mutually exclusive and not repeatable, so, as TS 23.040
    §9.2.3.24 requires, the last one present is used. If that IE is unusable (wrong length,
    total 0, seq 0 or seq > total) the result is None: the caller then treats the part as a
    message of its own, so it is still scored and answered, never rejected.
    """
    last: UdhElement | None = None
    for element in elements:
        if element.iei in (IEI_CONCAT_8BIT, IEI_CONCAT_16BIT):
            last = element
    if last is None:
        return None
    data = last.data
    if last.iei == IEI_CONCAT_8BIT:
        if len(data) != 3:
            return None
        return _valid(data[0], data[1], data[2], 8)
    if len(data) != 4:
        return None
    return _valid((data[0] << 8) | data[1], data[2], data[3], 16)


def concat_from_sar(ref: int | None, total: int | None, seq: int | None) -> ConcatInfo | None:
    """Concatenation information from the SMPP 3.4 SAR TLVs (§5.3.2.22-24).

    ``sar_msg_ref_num`` (2 octets), ``sar_total_segments`` and ``sar_segment_seqnum``
    (1 octet each, 1..255). Returns None, like :func:`concat_from_udh`, when any of the three
    is absent or the values are inconsistent (total 0, seq 0, seq > total, out of range).
    """
    if ref is None or total is None or seq is None:
        return None
    return _valid(ref, total, seq, 16)


@dataclass(slots=True)
class Assembled(Generic[T]):
    """A reassembled message, whole (``complete``) or not (timeout or eviction).

    ``payload`` is the received parts joined in seq order; ``tokens`` every token given to
    :meth:`Reassembler.add` for this message, duplicates included, in arrival order;
    ``missing`` the seq numbers that never arrived. ``key``, ``ref`` and ``ref_bits`` identify
    the message; ``first_seen`` is the ``now`` of its first part.
    """

    payload: bytes
    tokens: list[T]
    parts_received: int
    total: int
    complete: bool
    missing: tuple[int, ...]
    key: Hashable = None
    ref: int = 0
    ref_bits: int = 8
    first_seen: float = 0.0


@dataclass(slots=True)
class _Group(Generic[T]):
    key: Hashable
    ref: int
    ref_bits: int
    total: int
    first_seen: float
    parts: dict[int, bytes] = field(default_factory=dict)
    tokens: list[T] = field(default_factory=list)

    def assemble(self) -> Assembled[T]:
        seqs = sorted(self.parts)
        missing = tuple(seq for seq in range(1, self.total + 1) if seq not in self.parts)
        return Assembled(
            payload=b"".join(self.parts[seq] for seq in seqs),
            tokens=self.tokens,
            parts_received=len(seqs),
            total=self.total,
            complete=not missing,
            missing=missing,
            key=self.key,
            ref=self.ref,
            ref_bits=self.ref_bits,
            first_seen=self.first_seen,
        )


_Identity = tuple[Hashable, int, int, int]


class Reassembler(Generic[T]):
    """Reassemble concatenated messages.

    A message is identified by ``(key, info.ref_bits, info.ref, info.total)``; ``key`` is the
    caller's grouping key, e.g. ``(source_addr, dest_addr, esme)``.

    Incomplete messages come back, never dropped, in two ways:

    * timeout: :meth:`handle_timer` returns every message whose first part is at least ``timeout``
      old; :meth:`next_deadline` says when to call it;
    * eviction: when ``max_pending`` messages are open, opening another one first evicts the
      oldest. Evicted messages wait in a queue returned (and emptied) by :meth:`drain_evicted`
      and by :meth:`handle_timer`, whichever comes first; :meth:`next_deadline` returns a time not
      later than any ``now`` already seen while that queue is not empty.

    Groups are kept in an OrderedDict in order of first arrival, so :meth:`handle_timer` costs
    O(expired). ``now`` should come from a monotonic clock; a ``now`` smaller than one already
    seen is treated as the largest seen so far, which keeps that order.

    A part whose message completed earlier (e.g. a retransmission after the submit_sm_resp
    was lost) opens a new group, which comes back incomplete on timeout with its token: the
    token is not lost, only answered late.
    """

    def __init__(self, *, timeout: float, max_pending: int = 100_000) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending}")
        self._timeout = float(timeout)
        self._max_pending = max_pending
        self._groups: OrderedDict[_Identity, _Group[T]] = OrderedDict()
        self._evicted: list[Assembled[T]] = []
        self._clock = float("-inf")

    @property
    def timeout(self) -> float:
        return self._timeout

    @property
    def max_pending(self) -> int:
        return self._max_pending

    @property
    def pending_count(self) -> int:
        """Number of open (incomplete, not evicted) messages."""
        return len(self._groups)

    @property
    def evicted_count(self) -> int:
        """Number of evicted messages not yet handed back."""
        return len(self._evicted)

    def _tick(self, now: float) -> float:
        if now > self._clock:
            self._clock = now
        return self._clock

    def add(
        self, key: Hashable, info: ConcatInfo, payload: bytes, token: T, now: float
    ) -> Assembled[T] | None:
        """Add one part; return the whole message when this part completes it.

        A duplicate seq keeps the first payload, but its token is kept too. Opening a new
        message while ``max_pending`` are open evicts the oldest (see :meth:`drain_evicted`).
        """
        clock = self._tick(now)
        identity: _Identity = (key, info.ref_bits, info.ref, info.total)
        group = self._groups.get(identity)
        if group is None:
            group = _Group[T](key, info.ref, info.ref_bits, info.total, clock)
            if info.total > 1:
                while len(self._groups) >= self._max_pending:
                    _, oldest = self._groups.popitem(last=False)
                    self._evicted.append(oldest.assemble())
                self._groups[identity] = group
        group.tokens.append(token)
        group.parts.setdefault(info.seq, bytes(payload))
        if len(group.parts) < group.total:
            return None
        self._groups.pop(identity, None)
        return group.assemble()

    def handle_timer(self, now: float) -> list[Assembled[T]]:
        """Hand back the evicted messages and those open for at least ``timeout``."""
        clock = self._tick(now)
        result = self.drain_evicted()
        groups = self._groups
        while groups:
            identity = next(iter(groups))
            group = groups[identity]
            if clock < group.first_seen + self._timeout:
                break
            del groups[identity]
            result.append(group.assemble())
        return result

    def drain_evicted(self) -> list[Assembled[T]]:
        """Hand back (once) the messages evicted to respect ``max_pending``."""
        evicted, self._evicted = self._evicted, []
        return evicted

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` next has something to return; None when nothing is pending."""
        if self._evicted:
            return self._clock
        if not self._groups:
            return None
        oldest = self._groups[next(iter(self._groups))]
        return oldest.first_seen + self._timeout
