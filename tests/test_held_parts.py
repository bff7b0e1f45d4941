"""Forward mode's held-message lifecycle is its table (gateway/pipeline/parts.py): every
(state, input) pair either moves as the table says or is refused, and the terminal states take
nothing (a held part must never go onward twice or after its message was blocked)."""

from __future__ import annotations

import itertools

import pytest

from gateway.pipeline.parts import (
    TRANSITIONS,
    HeldMessage,
    PartInput,
    PartState,
    PartStateError,
)


def test_every_pair_moves_as_the_table_says_or_is_refused() -> None:
    moves = 0
    for state, what in itertools.product(PartState, PartInput):
        m = HeldMessage(started=0.0, total=3, state=state)
        if (state, what) in TRANSITIONS:
            m.go(what)
            assert m.state is TRANSITIONS[(state, what)]
            moves += 1
        else:
            with pytest.raises(PartStateError, match=f"{what.value} is not allowed in state"):
                m.go(what)
            assert m.state is state
    assert moves == len(TRANSITIONS)


def test_done_and_lost_are_final_and_nothing_blocked_is_released() -> None:
    assert not [pair for pair in TRANSITIONS if pair[0] in (PartState.DONE, PartState.LOST)]
    assert (PartState.BLOCKED, PartInput.RELEASE) not in TRANSITIONS
    assert (PartState.BLOCKED, PartInput.WAIT) not in TRANSITIONS
    # a release in flight is decided by its outcome, never sent again by a timer
    assert (PartState.RELEASING, PartInput.RELEASE) not in TRANSITIONS


def test_the_usual_lives() -> None:
    def life(*inputs: PartInput) -> PartState:
        m = HeldMessage(started=0.0, total=3)
        for what in inputs:
            m.go(what)
        return m.state

    In = PartInput
    assert life(In.HOLD, In.HOLD, In.RELEASE, In.SENT) is PartState.DONE  # 3 parts, all allowed
    assert life(In.HOLD, In.BLOCK, In.DROP) is PartState.DONE  # a bait in part 2
    assert life(In.HOLD, In.HOLD, In.BLOCK) is PartState.BLOCKED  # the bait in the last part
    assert life(In.HOLD, In.RELEASE, In.WAIT, In.RELEASE, In.SENT) is PartState.DONE  # retried
    assert life(In.HOLD, In.WAIT, In.WAIT, In.GIVE_UP) is PartState.LOST  # no link for good
