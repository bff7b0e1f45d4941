"""What a deliver_sm is answered (gateway/pipeline/policy.py), case by case as docs/inline.md
states it; the end-to-end tests (test_forward, test_pipeline, test_exactly_once) hold the handler
to it on the wire."""

from __future__ import annotations

import pytest

from gateway.pipeline.policy import Answer, answer_for

R, B, E, F, C, D = "recorded", "blocked", "enforcing", "forward", "complaint", "receipt"
CASES = [
    # nothing is answered 0 before it is recorded, whatever else holds
    ({R: None, B: False, E: False, F: False, C: False, D: False}, Answer.RETRY),
    ({R: None, B: True, E: True, F: True, C: False, D: False}, Answer.RETRY),
    ({R: None, B: False, E: False, F: False, C: True, D: False}, Answer.RETRY),
    # tap mode: 0 unless blocked while enforcing
    ({R: True, B: False, E: True, F: False, C: False, D: False}, Answer.ACCEPT),
    ({R: True, B: True, E: True, F: False, C: False, D: False}, Answer.REFUSE),
    ({R: True, B: True, E: False, F: False, C: False, D: False}, Answer.ACCEPT),  # monitor
    ({R: False, B: True, E: True, F: False, C: False, D: False}, Answer.REFUSE),  # redelivered
    # forward mode: sent on (once), refused when blocked while enforcing
    ({R: True, B: False, E: True, F: True, C: False, D: False}, Answer.ONWARD),
    ({R: False, B: False, E: True, F: True, C: False, D: False}, Answer.REDELIVERED),
    ({R: True, B: True, E: False, F: True, C: False, D: False}, Answer.ONWARD),  # monitor
    ({R: False, B: True, E: False, F: True, C: False, D: False}, Answer.REDELIVERED),
    ({R: True, B: True, E: True, F: True, C: False, D: False}, Answer.REFUSE),
    # complaints end at the gateway; receipts are never sent onward
    ({R: True, B: False, E: True, F: True, C: True, D: False}, Answer.ACCEPT),
    ({R: False, B: False, E: True, F: True, C: True, D: False}, Answer.ACCEPT),
    ({R: True, B: False, E: True, F: True, C: False, D: True}, Answer.ACCEPT),
    ({R: True, B: True, E: True, F: True, C: False, D: True}, Answer.REFUSE),  # a bait receipt
]


@pytest.mark.parametrize(("facts", "answer"), CASES)
def test_the_answer(facts: dict[str, bool | None], answer: Answer) -> None:
    facts = dict(facts)
    recorded = facts.pop(R)
    assert answer_for(recorded=recorded, **facts) is answer  # type: ignore[arg-type]


def test_every_answer_is_reachable() -> None:
    assert {answer for _, answer in CASES} == set(Answer)
