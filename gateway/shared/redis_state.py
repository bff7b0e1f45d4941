"""The detector state gateway nodes share, in Redis: velocity / fan-out windows, campaign
counts and campaign labels (docs/operations.md "Several nodes").

One round trip per batch of messages: a pipeline of one EVALSHA (gateway/shared/script.lua,
which counts the whole batch atomically, so three nodes count as one would), the XADDs of the
labels given here since the last batch, and one XRANGE reading the labels other nodes gave.

Keys are pseudonyms: addresses as 64-bit BLAKE2b hashes with a per-deployment key
(`[shared] key`), recipients and campaign members as the campaign detector's 32-bit hashes.
Every key expires (two windows), so Redis memory follows the traffic of the last window; the
label stream is capped (`label_stream_max`). Redis Cluster is not supported (the script names
its keys); one Redis with a replica and Sentinel is.

Errors: anything from redis-py (connection refused, timeout, script error, a reply of the
wrong shape) becomes `SharedStateError`; the caller (gateway.pipeline.shared) falls back to
each node's own windows, logs once and retries later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from types import TracebackType
from typing import Any, Self

import msgpack

from gateway.detect.campaigns import SharedCounts
from gateway.detect.velocity import Counts
from gateway.pipeline.shared import Batch, Reply
from gateway.pipeline.shared_parts import Parked, PartToPark

LABEL_STREAM = "labels"
LABEL_TTL = 7 * 86400.0  # seconds a label is kept in the stream (the campaign label's life)


class SharedStateError(Exception):
    """The shared state could not be read or written (Redis down, slow, or answering oddly)."""


@dataclass(frozen=True, slots=True)
class SharedConfig:
    url: str  # redis://host:port/db or rediss:// (TLS)
    prefix: str = "fg:"  # every key starts with it (several deployments on one Redis)
    key: bytes = b""  # BLAKE2b key for address pseudonyms
    timeout: float = 0.05  # seconds a round trip may take before the batch goes on locally
    window: float = 60.0  # velocity window ([velocity] window)
    fanout: int = 30  # distinct recipients per window that make a sender's fan-out
    campaign_window: float = 900.0
    campaign_min_senders: int = 5
    campaign_min_recipients: int = 20


class RedisSharedState:
    """One async context manager per link (a redis-py connection pool)."""

    def __init__(self, config: SharedConfig) -> None:
        self.config = config
        self._script = resources.files("gateway.shared").joinpath("script.lua").read_text()
        self._sha = hashlib.sha1(self._script.encode()).hexdigest()
        self._client: Any = None
        self._last_label = "0-0"  # the last label read from the stream
        self.round_trips = 0

    async def __aenter__(self) -> Self:
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(
            self.config.url,
            socket_timeout=max(self.config.timeout * 4, 0.5),
            socket_connect_timeout=1.0,
            decode_responses=False,
        )
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise SharedStateError("the shared state is not open")
        return self._client

    def pseudonym(self, address: str) -> str:
        return hashlib.blake2b(address.encode(), digest_size=8, key=self.config.key).hexdigest()

    async def start(self) -> None:
        """Load the script (SharedStateError if Redis is down). The label stream is read from
        its start: a node joining learns the labels the others gave (labels are idempotent)."""
        try:
            await self._client.script_load(self._script)
        except Exception as exc:
            raise SharedStateError(_describe(exc)) from exc

    @property
    def _stream(self) -> str:
        return self.config.prefix + LABEL_STREAM

    async def exchange(self, batch: Batch) -> Reply:
        """The batch counted on the shared windows; the labels other nodes gave meanwhile."""
        import redis.exceptions

        args = self._args(batch)
        pipe = self._client.pipeline(transaction=False)
        pipe.evalsha(self._sha, 0, args)
        # labels older than a label lives (7 days) leave the stream as new ones come
        oldest = f"{max(0, int((batch.now - LABEL_TTL) * 1000))}-0"
        for text, kind, when in batch.labels_out:
            fields = {"text": text.encode(), "kind": kind, "at": repr(when)}
            pipe.xadd(self._stream, fields, minid=oldest, approximate=True)
        pipe.xrange(self._stream, min=f"({self._last_label}", count=1000)
        try:
            try:
                replies = await pipe.execute()
            except redis.exceptions.NoScriptError:  # Redis restarted: its script cache is empty
                await self._client.script_load(self._script)
                return await self.exchange(batch)
        except SharedStateError:
            raise
        except Exception as exc:
            raise SharedStateError(_describe(exc)) from exc
        self.round_trips += 1
        try:
            return self._reply(batch, replies[0], replies[-1])
        except (TypeError, ValueError, IndexError) as exc:
            raise SharedStateError(f"unexpected reply from Redis: {exc}") from exc

    def _args(self, batch: Batch) -> bytes:
        """The batch as the script's one MessagePack argument (gateway/shared/script.lua)."""
        c = self.config
        pseudonym = self.pseudonym
        velocity = [
            [pseudonym(k.sender) if k.sender else "", pseudonym(k.dest) if k.dest else "",
             pseudonym(k.smsc) if k.smsc else "", pseudonym(dest)]
            for k, dest in zip(batch.velocity, batch.recipients, strict=True)
            if k is not None
        ]  # fmt: skip
        campaigns = [
            [pseudonym(m.sender), pseudonym(m.recipient), 1 if m.check else 0,
             [str(a) for a in m.anchors]]
            for m in batch.campaigns
            if m is not None
        ]  # fmt: skip
        claims = [[kind, [str(a) for a in anchors]] for _, kind, anchors in batch.label_claims]
        doc = [
            batch.now, c.window, c.fanout, c.prefix, c.campaign_window, c.campaign_min_senders,
            c.campaign_min_recipients, velocity, campaigns, claims,
        ]  # fmt: skip
        packed: bytes = msgpack.packb(doc)
        return packed

    def _reply(self, batch: Batch, packed: bytes, labels: Sequence[Any]) -> Reply:
        counted = [_seq(x) for x in _seq(msgpack.unpackb(packed, strict_map_key=False))]
        vel_rows, camp_rows = iter(counted[0]), iter(counted[1])
        velocity: list[Counts | None] = []
        for keys in batch.velocity:
            if keys is None:
                velocity.append(None)
                continue
            s, d, crossed, dc, mc = _seq(next(vel_rows))
            velocity.append(Counts(float(s), float(d), float(dc), float(mc), bool(crossed)))
        campaigns: list[SharedCounts | None] = []
        for m in batch.campaigns:
            if m is None:
                campaigns.append(None)
                continue
            senders, recipients, announce = _seq(next(camp_rows))
            campaigns.append(SharedCounts(int(senders), int(recipients), bool(announce)))
        labels_in: list[tuple[str, str, float]] = []
        for entry_id, fields in labels:
            self._last_label = entry_id.decode()
            labels_in.append(
                (fields[b"text"].decode(), fields[b"kind"].decode(), float(fields[b"at"]))
            )
        # ours come back too: the caller skips the ones it sent (same text, kind and time)
        won = [bool(x) for x in counted[2]]
        if len(won) != len(batch.label_claims):
            raise ValueError(f"{len(won)} claim outcomes for {len(batch.label_claims)} claims")
        return Reply(velocity, campaigns, labels_in, won)


def _seq(value: Any) -> list[Any]:
    """A MessagePack array from Lua (an empty Lua table may come as an empty map)."""
    if isinstance(value, dict):
        return [value[k] for k in sorted(value)]
    if not isinstance(value, list):
        raise ValueError(f"expected an array, got {type(value).__name__}")
    return value


# A part of a concatenated message (KEYS: its message's parts hash, verdict hash, judge claim;
# ARGV: seq, total, PDU, ttl, the part's content digest, judge ttl). The verdict when this very
# part was judged (a redelivery); a verdict on another text under the same key (a reference
# reused) is dropped. The part is parked (a redelivered one replaces itself); the call that
# finds every part there and takes the judge claim gets them all. A judge that never decides
# (it died, or its call timed out) lets the claim expire: the next part parked takes it.
_PARK = """
local status = redis.call('HGET', KEYS[2], 'status')
if status then
  local judged = redis.call('HGET', KEYS[2], ARGV[1])
  if judged == ARGV[5] then return {'verdict', status} end
  if judged then redis.call('DEL', KEYS[2]) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if redis.call('HLEN', KEYS[1]) == tonumber(ARGV[2])
    and redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[6]) then
  return {'complete', redis.call('HVALS', KEYS[1])}
end
return {'held'}
"""

# The verdict (ARGV: status, ttl, then seq / digest pairs: the parts judged, for redeliveries;
# none for a retry status, which only the nodes waiting now should hear)
_DECIDE = """
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[2], 'status', ARGV[1])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""


class RedisParts:
    """gateway.pipeline.shared_parts.PartsStore on the shared state's Redis connection."""

    def __init__(self, state: RedisSharedState) -> None:
        self.state = state

    def _keys(self, key: str) -> list[str]:
        p = self.state.config.prefix
        return [f"{p}p:{key}", f"{p}pv:{key}", f"{p}pj:{key}"]

    async def park(self, part: PartToPark) -> Parked:
        args = (part.seq, part.total, part.raw, int(part.ttl) + 1, part.digest,
                int(part.judge_ttl) + 1)  # fmt: skip
        try:
            out = await self.state.client.eval(_PARK, 3, *self._keys(part.key), *args)
        except Exception as exc:
            raise SharedStateError(_describe(exc)) from exc
        kind = out[0].decode()
        if kind == "verdict":
            return Parked("verdict", status=int(out[1]))
        if kind == "complete":
            return Parked("complete", raws=tuple(out[1]))
        return Parked("held")

    async def decide(self, key: str, status: int, digests: dict[int, str], ttl: float) -> None:
        pairs = [x for seq, digest in sorted(digests.items()) for x in (seq, digest)]
        try:
            await self.state.client.eval(_DECIDE, 3, *self._keys(key), status, int(ttl) + 1, *pairs)
        except Exception as exc:
            raise SharedStateError(_describe(exc)) from exc

    async def verdicts(self, keys: Sequence[str]) -> list[int | None]:
        pipe = self.state.client.pipeline(transaction=False)
        for key in keys:
            pipe.hget(self._keys(key)[1], "status")
        try:
            found = await pipe.execute()
        except Exception as exc:
            raise SharedStateError(_describe(exc)) from exc
        return [None if v is None else int(v) for v in found]


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
