"""What the SMSC is answered, as one named decision (docs/inline.md, "What the phone gets").

The handler records every message first; then `answer_for` says what the deliver_sm gets from
what is known by then. It is a pure function of six facts, tested over all of them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from smsc.constants import Status


@dataclass
class AnswerPolicy:
    """The statuses the SMSC is answered with ([gateway] mode, block_status, ...)."""

    enforcing: bool
    block_status: int = Status.ESME_RX_R_APPN
    store_error_status: int = Status.ESME_RMSGQFUL
    # forward mode: the onward submit_sm got no answer in time (the SMSC / phone retries later)
    forward_error_status: int = Status.ESME_RMSGQFUL


class Answer(Enum):
    RETRY = "retry"  # not recorded: store_error_status (0x14), the SMSC sends it again
    REFUSE = "refuse"  # blocked while enforcing: block_status, it goes nowhere
    ONWARD = "onward"  # forward mode: held (a leading part) or submitted onward, then answered
    REDELIVERED = "redelivered"  # forward mode, recorded already: onward once only
    ACCEPT = "accept"  # 0: the SMSC delivers it (tap mode), or it ends here (a complaint)


def answer_for(
    *,
    recorded: bool | None,
    blocked: bool,
    enforcing: bool,
    forward: bool,
    complaint: bool,
    receipt: bool,
) -> Answer:
    """`recorded`: True when the record is new, False when it was recorded already (a
    redelivery, gateway.pipeline.message_ids), None when it failed. `blocked`: the verdict
    blocks, or an earlier part of the same message did and this is its last part. `complaint`:
    sent to a complaint number (ends at the gateway). `receipt`: esm_class says receipt (one
    that matched nothing is recorded, never sent onward)."""
    if recorded is None:
        return Answer.RETRY
    if enforcing and blocked:
        return Answer.REFUSE
    if forward and not complaint and not receipt:
        return Answer.ONWARD if recorded else Answer.REDELIVERED
    return Answer.ACCEPT
