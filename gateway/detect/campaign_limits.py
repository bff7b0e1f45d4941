"""The campaign detector's settings (`[campaigns]` in the configuration), apart from the
detector itself so that reading a configuration does not load numpy (gateway.detect.campaigns)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from gateway.config_check import ConfigError, Table

__all__ = ["CampaignLimits", "parse_campaigns"]


@dataclass(frozen=True, slots=True)
class CampaignLimits:
    window: float = 900.0  # seconds: recognition window and idle expiry of a cluster
    min_senders: int = 5  # distinct senders within the window to recognise a campaign
    min_recipients: int = 20  # distinct recipients within the window
    min_length: int = 20  # fingerprints shorter than this are not tracked
    similarity: float = 0.56  # estimated Jaccard (share of equal MinHash values) to join
    min_plain_length: int = 60  # a text without link or number needs this length to count
    max_clusters: int = 50_000  # unlabelled clusters, least recently seen evicted
    max_labelled: int = 10_000  # labelled clusters, least recently seen evicted
    label_ttl: float = 7 * 86400.0  # a labelled cluster lives this long after its last use
    max_texts: int = 100_000  # exact-path entries (one per distinct fingerprint)
    max_variants: int = 8  # signatures a cluster is indexed by
    distinct_cap: int = 256  # senders / recipients counted exactly, then estimated
    recent_ids: int = 50  # message ids kept per cluster
    simfarm_score: float = 0.6
    labelled_score: float = 0.9
    learn_min_score: float = 0.8  # other detectors' evidence to label a blocked message's cluster
    exempt_greetings: bool = True
    max_events: int = 10_000  # pending events kept when nobody takes them

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                continue
            if not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"campaigns.{f.name}: must be > 0, got {value!r}")
        for name in ("similarity", "simfarm_score", "labelled_score", "learn_min_score"):
            if getattr(self, name) > 1.0:
                raise ValueError(f"campaigns.{name}: must be in (0, 1]")
        if self.distinct_cap < max(self.min_senders, self.min_recipients):
            raise ValueError("campaigns.distinct_cap: must be >= min_senders and min_recipients")
        if self.min_length < 4:
            raise ValueError("campaigns.min_length: must be >= 4 (4-grams are sketched)")


_CAMPAIGN_KEYS = (
    "window", "min_senders", "min_recipients", "min_length", "min_plain_length", "similarity",
    "max_clusters", "max_labelled", "max_texts", "simfarm_score", "labelled_score",
    "learn_min_score", "exempt_greetings",
)  # fmt: skip


def parse_campaigns(t: Table) -> tuple[CampaignLimits | None, float]:
    """[campaigns]: the campaign detector's limits (gateway/detect/campaigns.py), each key
    checked by CampaignLimits and reported with its name."""
    enabled = t.get("enabled", bool, True)
    save_every = t.number("save_every", 60.0, minimum=1.0)
    ttl_days = t.number("label_ttl_days", 7.0, minimum=0.01)
    defaults = CampaignLimits()
    values: dict[str, Any] = {"label_ttl": ttl_days * 86400.0}
    for key in _CAMPAIGN_KEYS:
        default = getattr(defaults, key)
        if isinstance(default, bool):
            values[key] = t.get(key, bool, default)
        elif isinstance(default, int):
            values[key] = t.integer(key, default)
        else:
            values[key] = t.number(key, default)
    t.done()
    try:
        limits = CampaignLimits(**values)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return (limits if enabled else None), save_every
