"""The shared windows in Redis count as the detectors count alone (gateway/shared/script.lua
mirrors gateway/detect/velocity._Win), against a real redis-server: the same random traffic
through a VelocityDetector on its own and through the script gives the same figures, window
rolls included; every key expires; a Redis restarted (its script cache empty) is used again."""

from __future__ import annotations

import asyncio
import random

import pytest
import redis.asyncio as aioredis

from gateway.detect.campaigns import SharedMessage
from gateway.detect.velocity import Counts, VelocityDetector, VelocityLimits
from gateway.domain import AlertKind, Inspected, Route, SmsEvent, Thresholds
from gateway.pipeline.inspector import Inspector
from gateway.pipeline.shared import Batch, Reply, SharedBatcher
from gateway.pipeline.shared_parts import PartToPark
from gateway.shared.redis_state import (
    RedisParts,
    RedisSharedState,
    SharedConfig,
    SharedStateError,
)

LIMITS = VelocityLimits(window=60.0, sender_recipients=6, sender_messages=10, dest_messages=4,
                        smsc_messages=15)  # fmt: skip


def event(n: int, src: str, dst: str, now: float) -> SmsEvent:
    return SmsEvent(source=src, dest=dst, text="x", smsc="bind-1", route=Route.LOCAL,
                    received_at=now, id=f"m{n}")  # fmt: skip


def config(url: str) -> SharedConfig:
    return SharedConfig(url=url, window=LIMITS.window, fanout=LIMITS.sender_recipients,
                        timeout=1.0)  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_script_counts_what_one_detector_counts(redis_server, seed: int) -> None:
    rng = random.Random(seed)
    alone = VelocityDetector(LIMITS)
    keys_of = VelocityDetector(LIMITS)  # only asked which keys a message counts against
    now = 1_000_000.0
    async with RedisSharedState(config(redis_server.url)) as state:
        await state.start()
        for n in range(400):
            now += rng.choice((0.5, 1.0, 3.0, 7.0, 25.0, 61.0, 130.0))
            sms = event(n, f"7701{rng.randrange(4):07d}", f"7702{rng.randrange(12):07d}", now)
            local = alone._count_locally(sms, alone.keys(sms), now)
            batch = Batch(now=now, velocity=[keys_of.keys(sms)], recipients=[sms.dest],
                          campaigns=[None])  # fmt: skip
            shared = (await state.exchange(batch)).velocity[0]
            assert shared is not None
            for field in ("sender_count", "distinct", "dest_count", "smsc_count"):
                assert getattr(shared, field) == pytest.approx(getattr(local, field)), (n, field)
            assert shared.crossed == local.crossed, n
        client = aioredis.Redis.from_url(redis_server.url)
        keys = [k async for k in client.scan_iter("fg:*")]
        ttls = [await client.ttl(k) for k in keys]
        await client.aclose()
    assert keys and all(t > 0 for t in ttls), "a shared key without an expiry"


async def test_campaign_counts_and_one_announcement_among_nodes(redis_server) -> None:
    anchors = (11, 22, 33, 44, 55, 66, 77, 88)
    async with (
        RedisSharedState(config(redis_server.url)) as a,
        RedisSharedState(config(redis_server.url)) as b,
    ):
        await a.start()
        won = []
        for i in range(24):  # two nodes alternating: 6 senders, 24 recipients in all
            node = a if i % 2 else b
            msg = SharedMessage(anchors, f"7701{i % 6:07d}", f"7702{i:07d}", True, "c")
            reply = await node.exchange(Batch(now=1e6 + i, campaigns=[msg]))
            counts = reply.campaigns[0]
            assert counts is not None
            # exact up to the thresholds (5 senders, 20 recipients): all a decision needs
            assert counts.senders == min(i + 1, 5) and counts.recipients == min(i + 1, 20)
            won.append(counts.announce)
        assert won.count(True) == 1 and won.index(True) == 19  # 5 senders and 20 recipients
        claims = [("c1", "complaint", anchors)]
        first = await a.exchange(Batch(now=1e6, label_claims=claims))
        second = await b.exchange(Batch(now=1e6, label_claims=claims))
        assert first.claims_won == [True] and second.claims_won == [False]


async def test_labels_given_on_one_node_reach_the_other(redis_server) -> None:
    async with (
        RedisSharedState(config(redis_server.url)) as a,
        RedisSharedState(config(redis_server.url)) as b,
    ):
        await a.start()
        await a.exchange(Batch(now=1.0, labels_out=[("Текст мошенников", "complaint", 1.0)]))
        got = await b.exchange(Batch(now=2.0))
        assert got.labels_in == [("Текст мошенников", "complaint", 1.0)]
        assert (await b.exchange(Batch(now=3.0))).labels_in == []  # each read once


async def test_redis_down_is_a_typed_error_and_a_restarted_redis_is_used_again(
    redis_server,
) -> None:
    async with RedisSharedState(config(redis_server.url)) as state:
        await state.start()
        redis_server.kill()
        with pytest.raises(SharedStateError):
            await state.exchange(Batch(now=1.0))
        redis_server.start()  # empty: no script loaded (NOSCRIPT is answered by loading it)
        reply = await state.exchange(
            Batch(
                now=2.0,
                velocity=[VelocityDetector(LIMITS).keys(event(1, "a", "b", 2.0))],
                recipients=["b"],
                campaigns=[None],
            )
        )
        assert reply.velocity[0] is not None and reply.velocity[0].sender_count == 1.0


def test_the_shared_section_is_parsed_and_checked() -> None:
    from gateway.config import from_toml
    from gateway.config_check import ConfigError

    assert from_toml({}).shared.redis_url == ""  # one node: nothing shared
    shared = {"redis_url": "redis://10.0.0.5:6379/0", "node": "gw-1", "pseudonym_key": "k"}
    s = from_toml({"shared": shared}).shared
    assert (s.node_name, s.timeout, s.retry_after, s.clustered) == ("gw-1", 0.05, 5.0, True)
    with pytest.raises(ConfigError, match=r"shared.pseudonym_key: required with redis_url"):
        from_toml({"shared": {"redis_url": "redis://10.0.0.5:6379/0"}})
    with pytest.raises(ConfigError, match=r"shared.redis_url: redis://, rediss:// or unix://"):
        from_toml({"shared": {"redis_url": "10.0.0.5:6379"}})
    with pytest.raises(ConfigError, match=r"shared.pseudonym_key: at most 64 bytes"):
        from_toml({"shared": {"pseudonym_key": "k" * 65}})
    with pytest.raises(ConfigError, match=r"shared.timout: unknown key"):
        from_toml({"shared": {"timout": 1}})


def _part(key: str, seq: int, text: bytes, judge_ttl: float = 30.0) -> PartToPark:
    return PartToPark(key=key, seq=seq, total=2, raw=b"pdu:" + text, digest=text.hex(),
                      ttl=60.0, judge_ttl=judge_ttl)  # fmt: skip


async def test_parts_meet_and_a_verdict_answers_only_the_parts_it_judged(redis_server) -> None:
    async with RedisSharedState(config(redis_server.url)) as state:
        parts = RedisParts(state)
        assert (await parts.park(_part("k1", 1, b"one"))).kind == "held"
        done = await parts.park(_part("k1", 2, b"two"))
        assert done.kind == "complete" and sorted(done.raws) == [b"pdu:one", b"pdu:two"]
        await parts.decide("k1", 0x66, {1: b"one".hex(), 2: b"two".hex()}, ttl=60.0)
        assert await parts.verdicts(["k1", "k2"]) == [0x66, None]
        # a redelivered part of the judged message: its verdict at once
        redelivered = await parts.park(_part("k1", 1, b"one"))
        assert (redelivered.kind, redelivered.status) == ("verdict", 0x66)
        # the same reference reused for another text: a new message, judged afresh
        assert (await parts.park(_part("k1", 1, b"other"))).kind == "held"
        assert (await parts.park(_part("k1", 2, b"text"))).kind == "complete"


async def test_a_judge_that_never_decides_lets_another_take_the_parts(redis_server) -> None:
    async with RedisSharedState(config(redis_server.url)) as state:
        parts = RedisParts(state)
        await parts.park(_part("k", 1, b"a", judge_ttl=1.0))
        assert (await parts.park(_part("k", 2, b"b", judge_ttl=1.0))).kind == "complete"
        # that node died before deciding: its parts come again, to other nodes
        assert (await parts.park(_part("k", 1, b"a", judge_ttl=1.0))).kind == "held"
        await asyncio.sleep(2.1)  # the judge's claim expired
        assert (await parts.park(_part("k", 2, b"b", judge_ttl=1.0))).kind == "complete"
        # a retry status is told to the waiting nodes only: the parts come again, afresh
        await parts.decide("k", 0x14, {}, ttl=5.0)
        assert await parts.verdicts(["k"]) == [0x14]
        assert (await parts.park(_part("k", 1, b"a"))).kind == "held"


class _SlowStore:
    """A shared store answering after the batch's limit: Redis counted the batch (and gave this
    node the fan-out crossing) but the node had already judged it alone."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def exchange(self, batch: Batch) -> Reply:
        await asyncio.sleep(self.delay)
        crossed = Counts(sender_count=31.0, distinct=31.0, dest_count=1.0, crossed=True)
        return Reply([crossed for _ in batch.velocity], [None for _ in batch.campaigns], [])


async def test_a_late_answer_that_gave_this_node_the_crossing_still_raises_the_alert() -> None:
    inspector = Inspector([VelocityDetector(VelocityLimits(sender_recipients=30))], Thresholds())
    batcher = SharedBatcher(_SlowStore(0.2), inspector, timeout=0.05, retry_after=0.0)
    seen: list[Inspected] = []

    def judge(event: SmsEvent) -> None:
        seen.append(inspector.inspect(event, event.received_at))

    first = event(1, "77011230001", "77020000001", 1000.0)
    batcher.submit(first, lambda: judge(first))
    await asyncio.sleep(0.1)  # judged alone: one recipient, nothing crossed here
    assert len(seen) == 1 and not seen[0].alerts
    await asyncio.sleep(0.2)  # Redis's answer comes: the crossing was this node's
    second = event(2, "77011230002", "77020000002", 1001.0)
    batcher.submit(second, lambda: judge(second))
    await asyncio.sleep(0.3)
    fanout = [a for a in seen[1].alerts if a.kind is AlertKind.FANOUT]
    assert len(fanout) == 1 and fanout[0].payload["distinct_recipients"] == 31
    assert fanout[0].payload["sender"] == first.source  # the farm, not the message carrying it
