"""The velocity detector's bounded memory (gateway/detect/velocity.py): idle keys swept after two
windows, the least recently seen key evicted at the cap, and fan-out counted per window."""

from __future__ import annotations

from gateway.detect.velocity import VelocityDetector, VelocityLimits
from gateway.domain import SmsEvent


def sms(source: str, dest: str = "77010000000") -> SmsEvent:
    return SmsEvent(source=source, dest=dest, text="Сәлем")


def test_idle_senders_are_swept_after_two_windows_and_active_ones_stay() -> None:
    det = VelocityDetector(VelocityLimits(window=60.0))
    for i in range(50):
        det.inspect(sms(f"7701{i:07d}"), 1000.0)
    det.inspect(sms("77019999999"), 1100.0)  # one sender active again, within two windows
    assert det.tracked["senders"] == 51
    for t in range(200):  # later traffic from one sender: each message sweeps a couple of keys
        det.inspect(sms("77019999999"), 1130.0 + t * 0.1)
    assert det.tracked["senders"] == 1  # the 50 idle ones (last seen at 1000) are gone
    assert det.sent("77019999999", 1150.0) > 0 and det.sent("77010000001", 1150.0) == 0


def test_at_the_cap_the_least_recently_seen_sender_goes_not_the_first_inserted() -> None:
    det = VelocityDetector(VelocityLimits(max_keys=1000))
    for i in range(1000):
        det.inspect(sms(f"7701{i:07d}"), 1000.0 + i * 0.001)
    det.inspect(sms("77010000000"), 1001.5)  # the first one, seen again: now the most recent
    det.inspect(sms("77020000000"), 1001.6)  # a new one at the cap evicts the oldest seen
    assert det.tracked["senders"] == 1000
    assert det.sent("77010000000", 1001.7) == 2  # kept
    assert det.sent("77010000001", 1001.7) == 0  # evicted: the least recently seen


def test_fan_out_past_the_threshold_within_a_window_and_not_across_windows() -> None:
    det = VelocityDetector(VelocityLimits(window=60.0, sender_recipients=30))
    rules = [
        [r.rule_id for r in det.inspect(sms("77011234567", f"7702{i:07d}"), 1000.0 + i)]
        for i in range(31)
    ]
    assert all(not r for r in rules[:30])
    assert rules[30] == ["velocity.sender.fanout"]
    assert [c[0] for c in det.take_fanout_crossings()] == ["77011234567"]
    slow = VelocityDetector(VelocityLimits(window=60.0, sender_recipients=30))
    found = [
        r.rule_id
        for i in range(40)  # 40 recipients, one every 10 s: never 31 in a sliding minute
        for r in slow.inspect(sms("77011234567", f"7702{i:07d}"), 1000.0 + i * 10.0)
    ]
    assert found == []
