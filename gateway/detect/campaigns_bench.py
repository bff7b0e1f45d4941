"""Figures for the campaign detector (`python -m gateway.detect.campaigns_bench`, or
`fraudgate bench campaigns`): speed, memory, and how well its clusters match templates.

* `bench()`: microseconds per message through `CampaignDetector.inspect` for mixed traffic
  (unique person-to-person texts, repeated texts, SIM-farm campaigns with varied names, amounts
  and links, A2P notices), cold (a text never seen: fingerprint and sketch) and warm (a repeated
  text: the exact path), the clusters tracked and bytes per tracked cluster (tracemalloc).
* `merge_quality(texts)`: feeds real texts as unrelated messages and counts the pairs of
  distinct fingerprints the detector puts in one cluster, by their true Jaccard similarity of
  4-gram sets (pairs below 0.5 are false merges), and the pairs of 0.6 or more it kept apart.

Timings depend on the machine and its load: they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import functools
import gc
import itertools
import random
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gateway.detect import campaigns, urls
from gateway.detect.campaigns import CampaignDetector, CampaignLimits, fingerprint
from gateway.detect.rules import _normalise_cached, normalise
from gateway.detect.urls import extract_urls
from gateway.domain import Route, SmsEvent

ROOT = Path(__file__).resolve().parent.parent.parent
REAL_CORPORA = (ROOT / "config" / "corpus" / "real-train.csv",
                ROOT / "config" / "corpus" / "real-heldout.csv")  # fmt: skip
UCI = ROOT.parent / "shared" / "datasets" / "uci-sms-spam" / "SMSSpamCollection.tsv"


# --------------------------------------------------------------------------------------------
# Real texts


def read_real_corpus(paths: Iterable[Path] = REAL_CORPORA) -> list[str]:
    out: list[str] = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as f:
            out.extend(row["text"] for row in csv.DictReader(f))
    return out


def read_uci(path: Path = UCI) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows, None)
        return [row[1] for row in rows if len(row) >= 2]


# --------------------------------------------------------------------------------------------
# Merge quality


@dataclass(frozen=True, slots=True)
class MergeQuality:
    texts: int
    tracked: int  # texts long enough to be tracked
    fingerprints: int  # distinct fingerprints among them
    clusters: int
    merged_pairs: dict[str, int]  # pairs of distinct fingerprints in one cluster, by Jaccard
    false_merges: int  # merged pairs with Jaccard < 0.5
    kept_apart: int  # pairs with Jaccard >= 0.6 in different clusters
    near_pairs: int  # pairs with Jaccard >= 0.6
    examples: list[tuple[float, str, str]]

    def report(self, name: str) -> str:
        bands = ", ".join(f"{k}: {v}" for k, v in self.merged_pairs.items())
        return (
            f"{name}: {self.texts} texts, {self.tracked} tracked, {self.fingerprints} distinct "
            f"fingerprints in {self.clusters} clusters; merged pairs by Jaccard [{bands}]; "
            f"false merges (J < 0.5): {self.false_merges}; near pairs (J >= 0.6): "
            f"{self.near_pairs}, kept apart: {self.kept_apart}"
        )


_BANDS = ((0.0, "<0.3"), (0.3, "0.3-0.5"), (0.5, "0.5-0.6"), (0.6, ">=0.6"))


def _grams(fp: str) -> set[str]:
    return {fp[i : i + 4] for i in range(len(fp) - 3)}


def _jaccard_matrix(fps: Sequence[str]) -> np.ndarray:
    """Dense Jaccard similarity of the fingerprints' 4-gram sets (sparse products)."""
    # imported here: every `fraudgate` command builds the bench parser, few compute this
    from scipy import sparse  # type: ignore[import-untyped, unused-ignore]

    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, fp in enumerate(fps):
        for g in _grams(fp):
            rows.append(i)
            cols.append(vocab.setdefault(g, len(vocab)))
    m = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(fps), len(vocab))
    )
    inter: np.ndarray = (m @ m.T).toarray()
    sizes = np.asarray(m.sum(axis=1)).ravel()
    union = sizes[:, None] + sizes[None, :] - inter
    out: np.ndarray = inter / np.maximum(union, 1.0)
    return out


def merge_quality(texts: Sequence[str], limits: CampaignLimits | None = None) -> MergeQuality:
    lim = limits or CampaignLimits(max_clusters=10**6, max_texts=10**6)
    det = CampaignDetector(lim)
    by_fp: dict[str, str] = {}
    tracked = 0
    for i, text in enumerate(texts):
        sms = SmsEvent(f"7700{i:07d}", f"7701{i:07d}", text, route=Route.LOCAL)
        det.inspect(sms, 1000.0)
        fp = fingerprint(text)
        if len(fp) >= lim.min_length:
            tracked += 1
            cid = det.cluster_of(text)
            if cid is not None:
                by_fp.setdefault(fp, cid)
    fps = list(by_fp)
    cluster = np.array([hash(by_fp[f]) for f in fps])
    jac = _jaccard_matrix(fps)
    iu = np.triu_indices(len(fps), k=1)
    same = cluster[iu[0]] == cluster[iu[1]]
    j = jac[iu]
    merged = {}
    for k, (lo, name) in enumerate(_BANDS):
        hi = _BANDS[k + 1][0] if k + 1 < len(_BANDS) else 2.0
        merged[name] = int(np.count_nonzero(same & (j >= lo) & (j < hi)))
    false_idx = np.nonzero(same & (j < 0.5))[0]
    examples = [(float(j[x]), fps[iu[0][x]], fps[iu[1][x]]) for x in false_idx[:20]]
    return MergeQuality(
        texts=len(texts),
        tracked=tracked,
        fingerprints=len(fps),
        clusters=len(set(by_fp.values())),
        merged_pairs=merged,
        false_merges=int(false_idx.size),
        kept_apart=int(np.count_nonzero(~same & (j >= 0.6))),
        near_pairs=int(np.count_nonzero(j >= 0.6)),
        examples=examples,
    )


# --------------------------------------------------------------------------------------------
# Speed and memory

_SYLLABLES = (
    "ка ма на ра та са ла да ба па ко мо но ро то со ло до бо по ки ми ни ри ти си ли ди "
    "ку му ну ру ту су лу ду бу пу ен ер ет ес ал ан ар ат ың ік ақ ұл ке ме не ре те се"
)


@functools.cache
def _vocabulary(n: int = 20_000, seed: int = 11) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Pseudo-words (person-to-person texts that share words but not sentences) and their
    cumulative Zipf weights: a few words are everywhere, as in real text. Made on first use:
    every `fraudgate` command imports this module to build its parser."""
    rng = random.Random(seed)
    syl = _SYLLABLES.split()
    words = tuple("".join(rng.choices(syl, k=rng.randint(1, 4))) for _ in range(n))
    return words, tuple(itertools.accumulate(1.0 / (rank + 1) for rank in range(n)))


_NAMES = ("Айгерим", "Ерлан", "Данияр", "Жанна", "Асель", "Нурлан", "Ольга", "Сергей", "Дина")
_TEMPLATES = (
    "{n}, ваша карта Kaspi заблокирована. Для разблокировки перейдите по ссылке "
    "https://kaspi-secure{d}.top/{p} и введите код {a}",
    "Уважаемый {n}! Вам начислена выплата {a} тг. Получите на gosuslugi-kz{d}.site/{p} "
    "до конца дня",
    "{n}, ваш родственник попал в ДТП, срочно нужно {a} тг, переведите на номер +7 701 {a} 55",
    "Сізге {a} теңге сыйлық! Алу үшін мына сілтемеге өтіңіз: halyk-bonus{d}.online/{p}",
)


def _random_text(rng: random.Random) -> str:
    k = rng.randint(6, 24)
    words, cum = _vocabulary()
    return " ".join(rng.choices(words, cum_weights=cum, k=k)).capitalize()


def _campaign_text(rng: random.Random, k: int) -> str:
    return _TEMPLATES[k % len(_TEMPLATES)].format(
        n=rng.choice(_NAMES),
        a=rng.randint(1000, 999999),
        d=k // len(_TEMPLATES),
        p="".join(rng.choices("abcdefghijkmnpqrstuvwxyz0123456789", k=6)),
    )


def mixed_traffic(n: int, seed: int = 1) -> Iterable[tuple[SmsEvent, float]]:
    """n messages at 1,000 SMS/s: 60 % unique P2P texts, 15 % repeats of
    recent P2P texts, 15 % SIM-farm campaigns (a new campaign every 20,000 messages), 10 %
    A2P notices."""
    rng = random.Random(seed)
    recent: list[str] = []
    for i in range(n):
        now = 1_700_000_000.0 + i / 1000.0
        x = rng.random()
        route = Route.LOCAL
        if x < 0.60:
            text = _random_text(rng)
            recent.append(text)
            if len(recent) > 1000:
                del recent[:500]
        elif x < 0.75 and recent:
            text = rng.choice(recent)
        elif x < 0.90:
            text = _campaign_text(rng, i // 20_000 + rng.randint(0, 1))
        else:
            text = f"Ваш код подтверждения {rng.randint(1000, 9999)}. Никому не сообщайте"
            route = Route.A2P
        src = f"7701{rng.randint(0, 10**6):07d}"
        yield SmsEvent(src, f"7702{rng.randint(0, 10**7):07d}", text, route=route), now


def _timed(det: CampaignDetector, events: Sequence[tuple[SmsEvent, float]]) -> float:
    """µs of this process's CPU time per message: other processes on a shared machine slow
    the wall clock, much less this."""
    t0 = time.process_time()
    for sms, now in events:
        det.inspect(sms, now)
    return (time.process_time() - t0) / max(1, len(events)) * 1e6


def _timed_batches(
    det: CampaignDetector, events: Sequence[tuple[SmsEvent, float]], size: int
) -> float:
    t0 = time.process_time()
    for i in range(0, len(events), size):
        group = events[i : i + size]
        det.prepare([sms for sms, _ in group])
        for sms, now in group:
            det.inspect(sms, now)
    return (time.process_time() - t0) / max(1, len(events)) * 1e6


def _cold_warm(texts: Sequence[str]) -> tuple[float, float, float]:
    """µs per message for never-seen texts (fingerprint and normalisation caches cleared), for
    the second sighting (exact path, and the cluster's masked sample is made) and for later
    ones (exact path)."""
    det = CampaignDetector()
    campaigns._fingerprint_cached.cache_clear()
    _normalise_cached.cache_clear()
    events = [(SmsEvent("77010000001", "77020000001", t, route=Route.LOCAL), 0.0) for t in texts]
    cold = _timed(det, events)
    second = _timed(det, events)
    warm = _timed(det, events)
    return cold, second, warm


def _marginal(texts: Sequence[str], batch: int = 0) -> float:
    """CPU µs per never-seen text as in the pipeline: the content and url detectors have just
    normalised the text and extracted its links (cached, shared), then this detector runs.
    `batch`: texts handed to `prepare` together (0: none)."""
    det = CampaignDetector()
    campaigns._fingerprint_cached.cache_clear()
    events = [SmsEvent("77010000001", "77020000001", t, route=Route.LOCAL) for t in texts]
    step = batch or 1
    spent = 0.0
    for i in range(0, len(events), step):
        group = events[i : i + step]
        for sms in group:  # the other detectors' work, not timed
            normalise(sms.text)
            extract_urls(sms.text)
        t0 = time.process_time()
        if batch:
            det.prepare(group)
        for sms in group:
            det.inspect(sms, 0.0)
        spent += time.process_time() - t0
    return spent / max(1, len(events)) * 1e6


def _cold_texts() -> list[str]:
    """Real texts (the corpus, and the UCI collection when present), each once; synthetic
    ones when they are missing."""
    texts: list[str] = []
    if REAL_CORPORA[0].exists():
        texts += read_real_corpus()
    if UCI.exists():
        texts += read_uci()
    if len(texts) < 1000:
        rng = random.Random(7)
        texts += [_random_text(rng) for _ in range(10_000)]
    return list(dict.fromkeys(t for t in texts if len(t) >= 20))


def bench(messages: int = 1_000_000, out: Callable[[str], None] = print) -> None:
    texts = _cold_texts()
    lengths = sorted(len(t) for t in texts)
    cold, second, warm = _cold_warm(texts)
    out(
        f"{len(texts)} real texts, {lengths[0]}-{lengths[-1]} chars (median "
        f"{lengths[len(lengths) // 2]}); CPU time per message:"
    )
    out(
        f"  cold (never seen, own normalisation): {cold:.1f} us; second sighting (the "
        f"cluster's sample is made): {second:.1f} us; warm (exact path): {warm:.1f} us"
    )
    out(
        f"  cold as in the pipeline (normalise and links already done by the content and url "
        f"detectors): {_marginal(texts):.1f} us; with prepare() on batches of 8: "
        f"{_marginal(texts, 8):.1f} us, of 32: {_marginal(texts, 32):.1f} us"
    )
    traffic = list(mixed_traffic(min(messages, 200_000), seed=2))
    plain = _timed(CampaignDetector(), traffic)
    batched = _timed_batches(CampaignDetector(), traffic, 32)
    out(
        f"mixed traffic ({len(traffic)} messages): {plain:.1f} us/message CPU; with prepare() "
        f"on batches of 32: {batched:.1f} us/message"
    )
    del traffic
    det = CampaignDetector()
    _clear_caches()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    flagged = 0
    events = 0
    for k, (sms, now) in enumerate(mixed_traffic(messages)):
        flagged += bool(det.inspect(sms, now))
        if not k % 1000:  # as the pipeline does after each message: alerts are not state
            events += len(det.take_events())
    _clear_caches()
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    n = det.tracked
    clusters = n["clusters"] + n["labelled"]
    out(f"{messages} messages of mixed traffic: {flagged} flagged, {events} events; tracked {n}")
    out(f"memory {used / 2**20:.1f} MiB: {used / max(1, clusters):.0f} bytes per tracked cluster "
        f"(band index and exact-path entries included)")  # fmt: skip


def _clear_caches() -> None:
    """The shared text caches (normalise, links, fingerprints) are not the detector's memory."""
    campaigns._fingerprint_cached.cache_clear()
    _normalise_cached.cache_clear()
    urls._extract.cache_clear()
    urls._split.cache_clear()


def quality(out: Callable[[str], None] = print) -> None:
    real = read_real_corpus()
    out(merge_quality(real).report("real corpus (train + heldout)"))
    if UCI.exists():
        out(merge_quality(read_uci()).report("UCI SMS spam"))


# --------------------------------------------------------------------------------------------
# Command


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--quality", action="store_true", help="also false merges on real texts")


def run(args: argparse.Namespace) -> int:
    bench(args.messages)
    if args.quality:
        quality()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    configure(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
