"""Forward mode: the lifecycle of one concatenated message whose parts the gateway acknowledges
one at a time and holds until its last part decides for the whole (docs/inline.md, "Long
messages"), as a transition table like the case workflow's (gateway/cases/model.py).

    OPEN ──hold──▶ HOLDING ──release──▶ RELEASING ──sent──▶ DONE
      │              │  ▲                  │
      │            block wait            wait ──▶ WAITING ──release──▶ RELEASING
      ▼              ▼                     │         │
    BLOCKED ◀──block─┘            give_up ─┴──▶ LOST ◀┘ give_up
      └──drop──▶ DONE

Anything missing from the table is an error (PartStateError): a held part must never go onward
twice or after its message was blocked."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import Enum

from gateway.domain import Inspected
from smsc.pdu import Pdu
from smsc.sms import Sms

# A concatenated message in forward mode: (source, destination, reference, reference bits). Not
# tied to a link: parts acknowledged before a rebind go onward on the next link.
PartKey = tuple[str, str, int, int]
FLUSH_ATTEMPTS = 3  # timer rounds a held message waits for a bound link / accepting SMSC


class PartState(Enum):
    OPEN = "open"  # parts arriving, none held
    HOLDING = "holding"  # accepted leading parts acknowledged to the phone and held
    BLOCKED = "blocked"  # a part was refused (enforcing): nothing of it goes onward
    RELEASING = "releasing"  # the held parts (and the last one) are being submitted onward
    WAITING = "waiting"  # a release failed or no link was bound: retried by timer or last part
    DONE = "done"  # sent onward, or nothing left to send (blocked, never held)
    LOST = "lost"  # acknowledged parts that could not be sent onward in the end


class PartInput(Enum):
    HOLD = "hold"  # an accepted part that is not the last: acknowledged, held
    BLOCK = "block"  # a refused part (enforcing)
    RELEASE = "release"  # the last part allowed, or the timer with held parts: submit onward
    SENT = "sent"  # every part accepted onward
    WAIT = "wait"  # not (all) accepted onward, or no bound link: try again later
    GIVE_UP = "give_up"  # out of attempts
    DROP = "drop"  # nothing (left) to send: blocked, never held, or the rest went on


_S, _I = PartState, PartInput
TRANSITIONS: dict[tuple[PartState, PartInput], PartState] = {
    (_S.OPEN, _I.HOLD): _S.HOLDING,
    (_S.OPEN, _I.BLOCK): _S.BLOCKED,
    (_S.OPEN, _I.DROP): _S.DONE,
    (_S.HOLDING, _I.HOLD): _S.HOLDING,
    (_S.HOLDING, _I.BLOCK): _S.BLOCKED,
    (_S.HOLDING, _I.RELEASE): _S.RELEASING,
    (_S.HOLDING, _I.WAIT): _S.WAITING,
    (_S.HOLDING, _I.GIVE_UP): _S.LOST,
    (_S.HOLDING, _I.DROP): _S.DONE,
    (_S.BLOCKED, _I.HOLD): _S.BLOCKED,  # a later part allowed on its own: dropped at the last
    (_S.BLOCKED, _I.BLOCK): _S.BLOCKED,
    (_S.BLOCKED, _I.DROP): _S.DONE,
    (_S.RELEASING, _I.HOLD): _S.RELEASING,  # a leading part redelivered meanwhile
    (_S.RELEASING, _I.SENT): _S.DONE,
    (_S.RELEASING, _I.WAIT): _S.WAITING,
    (_S.RELEASING, _I.GIVE_UP): _S.LOST,
    (_S.RELEASING, _I.DROP): _S.DONE,
    (_S.WAITING, _I.HOLD): _S.WAITING,
    (_S.WAITING, _I.BLOCK): _S.BLOCKED,
    (_S.WAITING, _I.RELEASE): _S.RELEASING,
    (_S.WAITING, _I.WAIT): _S.WAITING,
    (_S.WAITING, _I.GIVE_UP): _S.LOST,
    (_S.WAITING, _I.DROP): _S.DONE,
}


class PartStateError(RuntimeError):
    """A move the table does not have: a bug, never a peer's doing."""


@dataclass(slots=True)
class HeldMessage:
    """The parts of one concatenated message seen so far. `held`: accepted parts acknowledged
    to the phone and waiting for the last one (sequence -> deliver_sm)."""

    started: float  # loop time of the first part (of the latest attempt, when waiting)
    total: int
    state: PartState = PartState.OPEN
    texts: dict[int, str] = field(default_factory=dict)
    held: dict[int, Pdu] = field(default_factory=dict)
    attempts: int = 0  # flushes tried (the last part never came)
    last: Inspected | None = None  # the latest held part's record
    last_sms: Sms | None = None
    timer: asyncio.TimerHandle | None = None

    @property
    def blocked(self) -> bool:
        return self.state is PartState.BLOCKED

    def go(self, what: PartInput) -> None:
        new = TRANSITIONS.get((self.state, what))
        if new is None:
            raise PartStateError(f"{what.value} is not allowed in state {self.state.value}")
        self.state = new
