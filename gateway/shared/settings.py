"""`[shared]`: the state several gateway nodes share in Redis (docs/operations.md "Several
nodes"). No redis_url: each node judges by its own windows (one node needs nothing more)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from gateway.config_check import ConfigError, Table


@dataclass(frozen=True)
class SharedSettings:
    redis_url: str = ""  # redis://HOST:PORT/DB or rediss:// (TLS); empty: nothing shared
    node: str = ""  # this node's name (alerts, leases, its own campaign snapshot); hostname
    prefix: str = "fg:"  # every Redis key starts with it
    pseudonym_key: str = ""  # BLAKE2b key of the address hashes in Redis (same on every node)
    timeout: float = 0.05  # seconds a batch waits for Redis before it is judged locally
    retry_after: float = 5.0  # seconds between attempts while Redis is unreachable
    batch_max: int = 256  # messages per round trip at most

    def __post_init__(self) -> None:
        if self.redis_url and not self.pseudonym_key:
            raise ConfigError(
                "shared.pseudonym_key: required with redis_url: the secret (the same on every "
                "node) that keys the hashes standing for subscribers' numbers in Redis; "
                "unkeyed, the numbering plan is small enough to reverse them"
            )
        if len(self.pseudonym_key.encode()) > 64:
            raise ConfigError("shared.pseudonym_key: at most 64 bytes (BLAKE2b key)")

    @property
    def node_name(self) -> str:
        return self.node or socket.gethostname()

    @property
    def clustered(self) -> bool:
        """One of several nodes ([shared] redis_url or node set): per-node MQTT client id,
        campaign snapshot and health topic."""
        return bool(self.redis_url or self.node)


def parse_shared(t: Table) -> SharedSettings:
    url = t.get("redis_url", str, "")
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{t.key('redis_url')}: redis://, rediss:// or unix:// URL, got {url!r}")
    s = SharedSettings(
        redis_url=url,
        node=t.get("node", str, ""),
        prefix=t.get("prefix", str, "fg:"),
        pseudonym_key=t.get("pseudonym_key", str, ""),
        timeout=t.number("timeout", 0.05, minimum=0.001, maximum=5.0),
        retry_after=t.number("retry_after", 5.0, minimum=0.1, maximum=600.0),
        batch_max=t.integer("batch_max", 256, minimum=1, maximum=10_000),
    )
    t.done()
    return s
