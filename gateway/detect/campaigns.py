"""SMS campaigns across senders: the same fraud text sent at scale from rotating SIMs (SIM farms).

A SIM farm keeps every SIM under any per-sender limit (velocity, fan-out) and varies the text a
little (the victim's name, an amount, the link's path, digits). What gives it away is the
*template*: one text, with small variations, from many senders to many recipients in a short
time. `CampaignDetector` groups messages by template and scores members of templates that look
like a campaign.

Template fingerprint
    `fingerprint(text)`: the rules' normalised text (`rules.normalise`: lower case, look-alike
    letters folded, leet read as letters), every link replaced by its registrable host
    ("kaspi-secure.top/a8fk?u=1" -> "kaspi-secure.top"), every number (digit runs, amounts
    "50 000,00", phone numbers "+7 (701) 234-56-78", dates) replaced by one placeholder `#`,
    white space collapsed. Identical fingerprints are found through a dict (the exact path),
    before any sketching.

Near-duplicates
    MinHash over the character 4-grams of the fingerprint: each 4-gram of UTF-16 code units is
    one 64-bit integer read straight out of the encoded text (numpy strides, no per-gram Python
    work), hashed by 32 multiply-shift functions; the minimum of each is kept as its top 16 bits
    (b-bit MinHash: 64 bytes a signature). Locality-sensitive hashing: 8 bands of 4 values, each
    band one 64-bit dict key; a message sharing a band with a cluster is a candidate (chance
    0.67 at Jaccard 0.6, 0.98 at 0.8, 0.06 at 0.3), and joins it when at least `similarity`
    (0.56: 18 of the 32 values) are equal, 4 more for a fingerprint under 48 characters (few
    4-grams, a noisier estimate). A cluster indexes up to `max_variants` (8) distinct
    signatures, so a template varied by names and amounts keeps being found. The same text
    with another name, amount and link path has a Jaccard of about 0.7-0.9. Measured on the
    1,630 real texts of config/corpus and the 5,574 of the UCI SMS spam collection: no pair of
    fingerprints with a Jaccard under 0.3 shares a cluster; the few pairs merged between 0.3
    and 0.5 are nearly all one template family (one bank's notices, rewritten spam), see
    `campaigns_bench.merge_quality`. Only the fingerprint's first 640 characters are sketched
    (a 10-part text costs a bounded time). The multipliers come from a fixed seed, so
    signatures survive a restart (`snapshot`).

Clusters
    Each cluster keeps: a stable id (from its first signature and time), first / last seen,
    message count, distinct senders and distinct recipients (exact up to `distinct_cap`, 256,
    then a 64-register HyperLogLog adds an estimate of the rest: +-13 %), the routes seen, a
    masked sample text (digits masked "77***67", links cut to their host, e-mail addresses and
    the addressee's name masked, words that differ between variants masked: the template, no
    personal data), the strongest label and the ids of its last `recent_ids` (50) messages.
    A cluster lives while its messages keep coming: it expires `window` seconds (900) after
    its last message; a labelled cluster `label_ttl` seconds (7 days) after its last message
    or label. Memory is bounded: at most `max_clusters` (50,000) unlabelled and `max_labelled`
    (10,000) labelled clusters, least recently seen evicted first, and `max_texts` (100,000)
    exact-path entries (oldest dropped). `bench()` in `campaigns_bench` measures the bytes.

Scoring (`inspect`, the Detector protocol)
    Only person-to-person routes (LOCAL, INTERNATIONAL, UNKNOWN) are tracked and scored. A2P
    messages are skipped altogether: aggregators legitimately send one template (an OTP, a
    notice) to hundreds of thousands of subscribers, judged by sender registration elsewhere;
    tracking them would only fill the table and evict the P2P clusters. A cluster is
    *recognised* as a campaign once, within the last `window`, it reached `min_senders` (5)
    distinct senders and `min_recipients` (20) distinct recipients; from then on (while it
    lives) every member gets `campaign.simfarm` (score 0.6: flags, never blocks alone).
    Fingerprints shorter than `min_length` (20) characters are not tracked ("ok", "Где ты?",
    "Код: #"): too short to tell a campaign from coincidence. A text with neither a link nor a
    number to act upon (a phone, card or account number of 7+ digits, a messenger handle; a
    time or an amount is not one) is recognised only when its fingerprint has
    `min_plain_length` (60) characters: a
    phone's quick replies ("Извините, не могу говорить. Перезвоню позже") are sent by many
    people to many callers, and a scam without a link or a number needs more words than that.
    Holiday greetings ("С Новым годом...", "Наурыз мейрамы құтты болсын", "Happy birthday")
    are copied by many people to many contacts and would look like campaigns: a cluster whose
    text has a greeting phrase and neither a link nor a long number (a phone or card number:
    what a scam needs to be acted upon) is never recognised by counts (`exempt_greetings`);
    it can still be labelled.

Labels
    `label(cluster id or message text, kind, now)` with kind "confirmed_case", "complaint",
    "lookalike_link" or "blocked" (strongest first; a weaker label never replaces a stronger).
    Every later member of a labelled cluster gets `campaign.labelled.<kind>` (score 0.9: blocks
    at the default thresholds) whatever its sender count. Labelling a text never seen creates
    its cluster, so the first copy after a complaint is already caught. `learn_blocked` (called
    by the pipeline after a BLOCK) labels the message's cluster "blocked" when the evidence of
    the *other* detectors reached `learn_min_score` (0.8) or one of them forces blocking: a
    block caused by this detector's own reasons does not feed back into labels.

Queries
    `cluster_of(text)` (the live cluster a text belongs to, or None; changes nothing),
    `members(cluster_id)` (ids of its recent messages, oldest first), `campaign(cluster_id)`
    (its counts and sample now), `tracked` (table sizes).

Events, persistence
    `take_events()` returns campaigns just recognised or just labelled (once per cluster and
    label) with what a `campaign` MQTT alert needs (`CampaignEvent.payload()`).
    `snapshot()` / `restore(data, now)` save and load the clusters (versioned, compressed JSON);
    no text but the masked sample; senders and recipients as 32-bit CRC hashes, never as
    numbers. The hashes are pseudonyms, not anonymous (the numbering plan is small enough to
    reverse them by brute force): keep snapshots where subscribers' numbers may be kept. A
    corrupt or incompatible snapshot raises `SnapshotError` and leaves the detector empty.

Wiring
    Run it after the content and url detectors: it reuses their cached normalisation and link
    extraction. Turn `take_events()` into `campaign` alerts after each message or batch
    (`CampaignEvent.payload()`). Label from the case workflow: `label(forwarded_text,
    "complaint", now)` for a subscriber's complaint, `label(cluster_id or text,
    "confirmed_case", now)` when an analyst confirms a case; `label(text, "lookalike_link",
    now)` when the url detector finds a brand look-alike link, if the operator wants its
    near-copies blocked too. The pipeline already calls `learn_blocked` after a BLOCK. Store
    `snapshot()` periodically and at shutdown; at start `restore(data, now)`, and on
    `SnapshotError` log it and go on empty. `prepare(batch)` is optional (speed only).

Cost (CPU time on this 2-vCPU machine, which runs `sum(range(1000))` in 14.5 µs when quiet)
    A text seen before (same fingerprint) takes the exact path: a dict look-up and the
    counters, 3.5-6 µs. A new text is fingerprinted and sketched (numpy: ~12 µs for a
    75-character fingerprint in a tight loop, about twice that amid other work), looked up in
    the band index and made a cluster: 52-58 µs as the pipeline runs it (normalisation and
    links already done by the content and url detectors), 75-90 µs on its own. Numpy's cost is
    mostly per call, so `prepare(batch)` before inspecting a batch sketches its new texts
    together: 34-40 µs a new text in batches of 32, same results. datasketch's MinHash was
    measured and not used: 130-155 µs a text for 32-128 permutations even with the
    permutations reused (each 4-gram hashed with SHA-1 in Python), 300 µs without.
    `python -m gateway.detect.campaigns_bench` (`fraudgate bench campaigns`) prints the
    figures; docs/benchmarks.md has the last ones.

Limits: the messages of a campaign before it is recognised (19 at the defaults, when every
recipient is new) are not flagged by this detector. Near-duplicates are judged on characters,
so a template rewritten with other words (synonyms, reordered sentences) is another template.
A campaign that sends one copy per SIM per hour for days is seen only as long as copies keep
coming within `window` of each other. The counts of senders and recipients in descriptions and
events are since the cluster appeared; recognition counts only the last `window`. Whether a
cluster is a greeting or a quick reply is decided once, when it first reaches the thresholds.
Viral forwards with a link or a number (a news video, a charity's card number) look like
campaigns too: they are flagged (0.6: recorded, alerted, delivered), never blocked on counts;
only a label blocks.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import itertools
import json
import math
import re
import sys
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from gateway.detect.campaign_limits import CampaignLimits
from gateway.detect.rules import Normalised, compile_pattern, normalise
from gateway.detect.urls import FoundUrl, extract_urls
from gateway.domain import CampaignEvent, Reason, Route, SmsEvent, Verdict

__all__ = [
    "LABELS",
    "CampaignDetector",
    "CampaignEvent",
    "CampaignLimits",
    "SnapshotError",
    "fingerprint",
    "mask_sample",
    "sketch",
    "sketch_many",
]

# Strength order: a label is only ever replaced by a stronger one.
LABELS: Final[dict[str, int]] = {
    "confirmed_case": 4,
    "complaint": 3,
    "lookalike_link": 2,
    "blocked": 1,
}


class SnapshotError(ValueError):
    """A snapshot that cannot be restored (corrupt, truncated, another format or sketch)."""


# --------------------------------------------------------------------------------------------
# Fingerprint


# A number as people write it: digit groups joined by at most two separators ("50 000,00",
# "+7 (701) 234-56-78", "12.05.2024 14:30"). One placeholder for all: amounts, codes and
# phone numbers are what campaigns vary.
_NUMBER: Final = re.compile(r"\+?\d+(?:[ .,:/()\-]{1,2}\d+)*")
_PLACEHOLDER: Final = "#"
_MAX_SKETCHED: Final = 640  # characters of a fingerprint sketched: bounds the time of long texts


def fingerprint(text: str) -> str:
    """The template view of `text` (see the module's documentation). Never raises."""
    if len(text) <= 640:
        return _fingerprint_cached(text)
    return _fingerprint(text)


@lru_cache(maxsize=8192)  # repeated texts (campaigns, greetings) skip the regex work
def _fingerprint_cached(text: str) -> str:
    return _fingerprint(text)


def _fingerprint(text: str) -> str:
    norm = normalise(text)  # cached and shared with the content detectors
    t = norm.text
    urls = extract_urls(text)  # cached and shared with the url detector
    if urls:
        t = _links_to_hosts(norm, urls)
    t = _NUMBER.sub(_PLACEHOLDER, t)
    return " ".join(t.split())


def _links_to_hosts(norm: Normalised, urls: Sequence[FoundUrl]) -> str:
    """norm.text with each link replaced by its registrable host (the path varies per victim)."""
    t = norm.text
    out: list[str] = []
    pos = 0
    for u in urls:
        start, end = _normalised_range(norm, u.span.start, u.span.end)
        if start < pos:  # overlapping matches: keep the first
            continue
        out.append(t[pos:start])
        out.append(f" {u.registrable} ")
        pos = end
    out.append(t[pos:])
    return "".join(out)


def _normalised_range(norm: Normalised, start: int, end: int) -> tuple[int, int]:
    """Positions in norm.text of the original text[start:end] (normalisation may drop some)."""
    index = norm.index
    if index is None:
        return start, end
    return bisect.bisect_left(index, start), bisect.bisect_left(index, end)


# --------------------------------------------------------------------------------------------
# Sketch: b-bit MinHash of the 4-grams, banded


_K: Final = 32  # MinHash values per signature
_BAND_ROWS: Final = 4  # 4 x 16 bits = one 64-bit band key
_SEED: Final = 0x5EED_CA3B_2024
_SKETCH_ID: Final = f"minhash-4gram-utf16-k{_K}-b16-r{_BAND_ROWS}-{_SEED:x}"
_M64: Final = (1 << 64) - 1
_SHORT: Final = 48  # fingerprints shorter than this need _SHORT_EXTRA more equal values to join
_SHORT_EXTRA: Final = 4


def _multipliers(seed: int, n: int) -> npt.NDArray[np.uint64]:
    """n odd 64-bit multipliers from SplitMix64: fixed by the seed on every machine and numpy
    version (snapshots restored elsewhere must sketch alike)."""
    out = []
    x = seed
    for _ in range(n):
        x = (x + 0x9E3779B97F4A7C15) & _M64
        z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        out.append((z ^ (z >> 31)) | 1)
    return np.array(out, dtype=np.uint64)


_MULT: Final = _multipliers(_SEED, _K)
_GRAM: Final = np.dtype("<u8")
# The top 16 bits of each 64-bit minimum, read in place: the last uint16 of each on a
# little-endian machine, the first on a big-endian one.
_TOP16: Final = 3 if sys.byteorder == "little" else 0


def sketch(fp: str) -> npt.NDArray[np.uint16]:
    """32 16-bit MinHash values of the 4-grams of `fp` (at least 4 characters).

    Multiply-shift hashing (a * x mod 2^64, top bits) of each 4-gram; the 4-grams are the
    UTF-16 code units of the text read as overlapping little-endian 64-bit integers, so numpy
    does all the work in a few calls whatever the length."""
    raw = fp[:_MAX_SKETCHED].encode("utf-16-le", "surrogatepass")
    n = len(raw) // 2 - 3
    grams = np.ndarray((n,), dtype=_GRAM, buffer=raw, strides=(2,))
    mins = np.multiply.outer(_MULT, grams).min(axis=1)
    sig: npt.NDArray[np.uint16] = mins.view(np.uint16)[_TOP16::4].copy()
    return sig


_SEP: Final = "\uffff" * 4  # between texts sketched together; 4-grams touching it are ignored
_SEP_BYTES: Final = _SEP.encode("utf-16-le")
_NO_GRAM: Final = np.uint64(2**64 - 1)
_TOUCHING: Final = np.arange(-3, 4, dtype=np.int64)  # 4-grams from 3 before a text's end to 4 after


def sketch_many(fps: Sequence[str]) -> npt.NDArray[np.uint16]:
    """`sketch` of several fingerprints (each at least 4 characters) in one pass: row i is
    `sketch(fps[i])`, bit for bit. Numpy's cost per call is paid once per batch, not per
    text: on this machine 32 texts cost ~5 µs each instead of ~13."""
    raws = [fp[:_MAX_SKETCHED].encode("utf-16-le", "surrogatepass") for fp in fps]
    raw = _SEP_BYTES.join(raws) + _SEP_BYTES
    n = len(raw) // 2 - 3
    grams = np.ndarray((n,), dtype=_GRAM, buffer=raw, strides=(2,))
    prod = np.multiply.outer(_MULT, grams)
    units = np.fromiter((len(r) >> 1 for r in raws), dtype=np.int64, count=len(raws))
    starts = np.zeros(len(raws), dtype=np.int64)
    np.cumsum(units[:-1] + len(_SEP), out=starts[1:])
    touching = ((starts + units)[:, None] + _TOUCHING).ravel()
    prod[:, touching[touching < n]] = _NO_GRAM  # grams across texts: not any text's
    mins = np.ascontiguousarray(np.minimum.reduceat(prod, starts, axis=1).T)
    sigs: npt.NDArray[np.uint16] = mins.view(np.uint16)[:, _TOP16::4].copy()
    return sigs


def _band_keys(sigs: bytes | npt.NDArray[np.uint16]) -> list[int]:
    """The band keys of one or more signatures: each 4 consecutive 16-bit values as one int."""
    if isinstance(sigs, bytes):
        return np.frombuffer(sigs, dtype=np.uint64).tolist()  # type: ignore[no-any-return]
    return sigs.view(np.uint64).tolist()  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------
# Sample text (masked)


_SAMPLE_DIGITS: Final = re.compile(r"\+?\d[\d ()\-]*\d|\d")
_ANY_DIGIT: Final = re.compile(r"\d")
_EMAIL: Final = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_CAPITAL: Final = "A-ZА-ЯЁӘҒҚҢӨҰҮҺІ"
# The addressee's name: a capitalised word opening the text before a comma ("Айгерим, ваша
# карта..."), or up to three words after a polite form of address.
_OPENING_NAME: Final = re.compile(rf"\s*[{_CAPITAL}][\w-]*(?=\s*,)")
_ADDRESSEE: Final = re.compile(
    rf"(?i:\b(?:уважаем(?:ый|ая)|дорог(?:ой|ая)|құрметті|hurmetti|dear)\s+)"
    rf"([\w-]+(?:\s+[{_CAPITAL}][\w-]*){{0,2}})"
)
_ADDRESS_FORMS: Final = ("уважаем", "дорог", "құрметті", "hurmetti", "dear")
_SAMPLE_MAX: Final = 200


def mask_sample(text: str) -> str:
    """`text` for analysts and alerts: links cut to their host, e-mail addresses, the addressee's
    name and every number masked ("+7 701 234 56 67" -> "77***67", "5000" -> "****")."""
    try:
        urls = extract_urls(text)
        if urls:
            text = _cut_links(text, urls)
        if "@" in text:
            text = _EMAIL.sub("***@***", text)
        text = _OPENING_NAME.sub("***", text, count=1) if _OPENING_NAME.match(text) else text
        low = text.lower()
        if any(form in low for form in _ADDRESS_FORMS):  # the regex costs more than this
            text = _ADDRESSEE.sub(lambda m: m.group()[: m.start(1) - m.start()] + "***", text)
        if _ANY_DIGIT.search(text) is not None:
            text = _SAMPLE_DIGITS.sub(_mask_number, text)
        text = " ".join(text.encode("utf-8", "replace").decode("utf-8").split())
    except Exception:  # never let a sample break inspection; say nothing rather than leak
        return "***"
    if len(text) > _SAMPLE_MAX:
        text = text[: _SAMPLE_MAX - 1] + "…"
    return text


def _cut_links(text: str, urls: Sequence[FoundUrl]) -> str:
    out: list[str] = []
    pos = 0
    for u in urls:
        if u.span.start < pos:
            continue
        out.append(text[pos : u.span.start])
        out.append(u.registrable + ("/…" if u.span.end - u.span.start > len(u.domain) + 9 else ""))
        pos = u.span.end
    out.append(text[pos:])
    return "".join(out)


def _mask_number(m: re.Match[str]) -> str:
    digits = "".join(c for c in m.group() if c.isdigit())
    if len(digits) >= 7:  # phone, card, account: keep the ends only, like "77***67"
        return f"{digits[:2]}***{digits[-2:]}"
    return "*" * len(digits)


def _refine_sample(sample: str, variant: str) -> str:
    """Mask the sample's words missing from another variant of the template (names, ...)."""
    words = {_bare(w) for w in variant.split()}
    out = [w if _bare(w) in words or _bare(w) in ("", "***") else "***" for w in sample.split()]
    return " ".join(out)


def _bare(word: str) -> str:
    return word.strip(".,;:!?\"'«»()[]…").lower()


# --------------------------------------------------------------------------------------------
# Greetings people copy to all their contacts (see the module's documentation)

_GREETING: Final = compile_pattern(
    r"\bс(?:о)?\s+(?:новым\s+годом|наступающим|рождеством|пасхой|праздник|юбиле|"
    r"дн[её]м\s+рождения|8\s*марта|международным\s+женским|дн[её]м\s+(?:защитника|победы|"
    r"матери|отца|учителя|независимости|республики|знаний|единства|столицы|конституции|семьи))"
    r"|\bнаурыз|\bжаңа\s+жыл|\bтуған\s+күн|\bмереке|\bайт\s+қабыл|\bайтыңыз|\bораза\s+айт|"
    r"\bқұрбан\s+айт|\bрамазан|\bхристос\s+воскрес|\bhappy\s+(?:new\s+year|birthday|holidays)|"
    r"\bmerry\s+christmas",
    "campaigns.greetings",
)
_LONG_NUMBER: Final = re.compile(r"\d(?:[ ()\-]?\d){6,}")


def _is_greeting(text: str) -> bool:
    """A holiday greeting without what a scam needs to be acted upon (a link, a number)."""
    t = normalise(text).text
    if _GREETING.search(t) is None:
        return False
    return not extract_urls(text) and _LONG_NUMBER.search(text) is None


# --------------------------------------------------------------------------------------------
# Distinct counting


_HLL_P: Final = 6  # 64 registers: +-13 %, 64 bytes
_HLL_M: Final = 1 << _HLL_P
_HLL_ALPHA: Final = 0.709


def _h32(address: str) -> int:
    """A 32-bit hash of an address, the same in every process (snapshots keep these)."""
    return zlib.crc32(address.encode("utf-8", "surrogatepass"))


def _fmix32(h: int) -> int:
    """MurmurHash3's finaliser: CRC values of similar numbers need mixing for HyperLogLog."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


class _Distinct:
    """Distinct addresses: exact (hash -> last seen) up to a cap, then a HyperLogLog of the rest."""

    __slots__ = ("est", "hll", "seen")

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self.hll: bytearray | None = None
        self.est = 0  # the HyperLogLog's estimate, -1 when a register changed since

    def add(self, h: int, now: float, cap: int) -> None:
        seen = self.seen
        if h in seen or len(seen) < cap:
            seen[h] = now
            return
        if self.hll is None:
            self.hll = bytearray(_HLL_M)
        x = _fmix32(h)
        idx = x >> (32 - _HLL_P)
        rest = x & ((1 << (32 - _HLL_P)) - 1)
        rank = (32 - _HLL_P) - rest.bit_length() + 1
        if rank > self.hll[idx]:
            self.hll[idx] = rank
            self.est = -1

    def count(self) -> int:
        return len(self.seen) + self.extra()

    def extra(self) -> int:
        """Estimated distinct addresses past the cap (HyperLogLog with small-range correction)."""
        regs = self.hll
        if regs is None or self.est >= 0:  # every member's reason asks: computed on change
            return self.est
        zeros = regs.count(0)
        est = _HLL_ALPHA * _HLL_M * _HLL_M / sum(2.0**-r for r in regs)
        if est <= 2.5 * _HLL_M and zeros:
            est = _HLL_M * math.log(_HLL_M / zeros)
        self.est = round(est)
        return self.est

    def in_window(self, cutoff: float) -> int:
        """Forget addresses last seen before `cutoff`; the number left (plus any estimate)."""
        seen = self.seen
        if any(t < cutoff for t in seen.values()):
            self.seen = {h: t for h, t in seen.items() if t >= cutoff}
        return self.count()


# Most clusters never see a second sender or recipient: until then the one address is kept as
# its hash alone (an int; NOBODY for none), last seen when the cluster was, and a _Distinct
# (a dict and its floats: ~500 bytes more) is made at the second.
Addresses = int | _Distinct
NOBODY: Final = -1


def _add(d: Addresses, h: int, now: float, last: float, cap: int) -> Addresses:
    """`d` with address hash `h` seen at `now` (`last`: when the cluster was last seen)."""
    if isinstance(d, int):
        if d in (h, NOBODY):
            return h
        grown = _Distinct()
        grown.seen[d] = last
        grown.seen[h] = now
        return grown
    d.add(h, now, cap)
    return d


def _size(d: Addresses) -> int:
    """Addresses kept exactly."""
    return int(d != NOBODY) if isinstance(d, int) else len(d.seen)


def _count(d: Addresses) -> int:
    return int(d != NOBODY) if isinstance(d, int) else d.count()


def _estimated(d: Addresses) -> bool:
    return not isinstance(d, int) and d.hll is not None


def _in_window(d: Addresses, cutoff: float) -> int:
    # one address: seen with the cluster's last message, which is the one being checked
    return int(d != NOBODY) if isinstance(d, int) else d.in_window(cutoff)


# --------------------------------------------------------------------------------------------
# Clusters


_ROUTES: Final = (Route.LOCAL, Route.INTERNATIONAL, Route.UNKNOWN, Route.A2P)
_ROUTE_BIT: Final = {r: 1 << i for i, r in enumerate(_ROUTES)}


class _Cluster:
    __slots__ = (
        "announce",
        "count",
        "exempt",
        "first_seen",
        "id",
        "label",
        "labelled_at",
        "last_seen",
        "recent",
        "recipients",
        "recognised",
        "reps",
        "routes",
        "sample",
        "senders",
    )

    def __init__(self, cid: str, sig: bytes, now: float) -> None:
        self.id = cid
        self.reps = sig  # up to max_variants signatures, 64 bytes each, concatenated
        self.first_seen = now
        self.last_seen = now
        self.count = 0
        self.senders: Addresses = NOBODY
        self.recipients: Addresses = NOBODY
        self.routes = 0
        self.sample: str | None = None
        self.label: str | None = None
        self.labelled_at = 0.0
        # a label not yet announced: a complaint about one text is no campaign until a second
        # sender sends it (then the `labelled` event goes out)
        self.announce = False
        self.recognised = False
        self.exempt = False
        self.recent: list[str] = []

    @property
    def variants(self) -> int:
        return len(self.reps) // (2 * _K)

    def matches(self, sig: npt.NDArray[np.uint16]) -> int:
        """Most MinHash values `sig` shares with one of the cluster's signatures."""
        reps = np.frombuffer(self.reps, dtype=np.uint16)
        if len(reps) == _K:  # most clusters: one signature, two numpy calls
            return int(np.count_nonzero(reps == sig))
        return int((reps.reshape(-1, _K) == sig).sum(axis=1).max())

    def route_names(self) -> tuple[str, ...]:
        return tuple(r.value for r in _ROUTES if self.routes & _ROUTE_BIT[r])

    def counts_text(self) -> str:
        s, r = self.senders, self.recipients
        mark = "~" if _estimated(s) or _estimated(r) else ""
        return f"{mark}{_count(s)} senders to {mark}{_count(r)} recipients"


def _cluster_id(sig: bytes, now: float) -> str:
    """Stable id: a CRC of the first signature, then the second it was seen (14 hex digits)."""
    return f"{zlib.crc32(sig):08x}{int(now) & 0xFFFFFF:06x}"


@dataclass(frozen=True, slots=True)
class SharedMessage:
    """What a message adds to the state the gateway nodes share (see `CampaignDetector.share`)."""

    anchors: tuple[int, ...]  # band keys of its cluster's first signature
    sender: str  # the numbers: the shared store keeps them only as keyed pseudonyms
    recipient: str
    check: bool  # its cluster is not recognised yet: the counts are wanted back
    cluster: str  # its cluster's id here (not shared: each node numbers its own)


@dataclass(frozen=True, slots=True)
class SharedCounts:
    """Every node's distinct senders and recipients of a message's template in the window, and
    whether this node is the one to announce its recognition."""

    senders: int
    recipients: int
    announce: bool


# --------------------------------------------------------------------------------------------
# The detector


class CampaignDetector:
    name = "campaign"

    def __init__(self, limits: CampaignLimits | None = None) -> None:
        self.limits = limits or CampaignLimits()
        # OrderedDicts, not dicts: a dict whose oldest entries are deleted one by one keeps
        # their slots until it is resized, and finding its first entry walks over all of them
        # (7 µs a look at 20,000 clusters); an OrderedDict finds it at once.
        self._live: OrderedDict[str, _Cluster] = OrderedDict()  # unlabelled; LRU order
        self._labelled: OrderedDict[str, _Cluster] = OrderedDict()  # labelled; same order
        self._bands: dict[int, str] = {}  # band key -> cluster id (the latest indexed)
        self._exact: OrderedDict[int, str] = OrderedDict()  # hash(fingerprint) -> id; FIFO
        self._events: list[CampaignEvent] = []
        self._thresh = math.ceil(self.limits.similarity * _K)
        self._sweeps = 0
        self._prepared: dict[str, npt.NDArray[np.uint16]] = {}  # fingerprint -> signature
        # Shared state between gateway nodes (gateway.shared): `share` joins a message's
        # cluster before the batch's round trip, `shared` receives every node's counts, and
        # `on_label` hears the labels given here so the other nodes can `replay_label` them.
        self._joined: dict[str, tuple[_Cluster, bool]] = {}
        self.shared: dict[str, SharedCounts] = {}
        self.on_label: Callable[[str, str, float], None] | None = None
        self.claim_labels = False  # True with shared state: see _announce_label
        self._label_claims: list[tuple[str, str, tuple[int, ...]]] = []
        self._replaying = False

    # -- the Detector protocol ------------------------------------------------------------

    def inspect(self, sms: SmsEvent, now: float) -> Sequence[Reason]:
        joined = self._joined.pop(sms.id, None) if self._joined else None
        if joined is None:
            if sms.route is Route.A2P:  # judged by sender registration; see the module docstring
                return ()
            fp = self._fingerprint(sms.text)
            if fp is None:
                return ()
            self._sweep(now)
            joined = self._join(fp, now)
        c, new_variant = joined
        self._record(c, sms, now, new_variant)
        shared = self.shared.pop(sms.id, None) if self.shared else None
        if c.recognised or c.exempt:
            pass
        elif shared is not None:  # every node's senders and recipients
            if shared.senders >= self.limits.min_senders and (
                shared.recipients >= self.limits.min_recipients
            ):
                self._recognise(c, sms, announce=shared.announce)
        else:
            self._check(c, sms, now)
        return self._reasons(c)

    def share(self, sms: SmsEvent, now: float) -> SharedMessage | None:
        """With shared state, before `inspect`: the message's cluster is joined now and what
        the nodes count in common is returned: the sender and recipient hashes, added under
        the cluster's first signature's band keys (the same on every node for one template:
        the sketch is seeded, and near-copies share a band with probability 0.98 at Jaccard
        0.8), and whether the cluster still waits to be recognised. None: not tracked."""
        if sms.route is Route.A2P:
            return None
        fp = self._fingerprint(sms.text)
        if fp is None:
            return None
        self._sweep(now)
        c, new_variant = self._join(fp, now)
        self._joined[sms.id] = (c, new_variant)
        anchors = tuple(_band_keys(c.reps[: 2 * _K]))
        check = not (c.recognised or c.exempt)
        return SharedMessage(anchors, sms.source, sms.dest, check, c.id)

    def prepare(self, batch: Sequence[SmsEvent]) -> None:
        """Optional, before inspecting a batch one message at a time: sketch the batch's new
        texts together (`sketch_many`). Results are the same; a new text costs less. Only the
        last batch's signatures are kept."""
        todo: dict[str, None] = {}
        for sms in batch:
            if sms.route is Route.A2P:
                continue
            fp = self._fingerprint(sms.text)
            if fp is not None and self._exact_cluster(fp) is None:
                todo[fp] = None
        try:
            sigs = sketch_many(list(todo)) if todo else None
        except Exception:  # inspect sketches one by one instead
            sigs = None
        self._prepared = {} if sigs is None else dict(zip(todo, sigs, strict=True))

    def learn_blocked(self, sms: SmsEvent, verdict: Verdict, now: float) -> None:
        """After a BLOCK: label the message's cluster "blocked" when other detectors' evidence
        was strong (this detector's own reasons do not count: no feedback loop)."""
        if sms.route is Route.A2P or _independent_score(verdict, self.name) < (
            self.limits.learn_min_score
        ):
            return
        self.label(sms.text, "blocked", now)

    # -- queries --------------------------------------------------------------------------

    def cluster_of(self, text: str) -> str | None:
        """The id of the live cluster `text` belongs to, or None. Changes nothing."""
        fp = self._fingerprint(text)
        if fp is None:
            return None
        c = self._exact_cluster(fp)
        if c is None:
            sig = sketch(fp)
            c = self._find(sig, _band_keys(sig), len(fp))
        return None if c is None else c.id

    def members(self, cluster_id: str) -> list[str]:
        """Ids of the cluster's recent messages, oldest first (empty when unknown)."""
        c = self._get(cluster_id)
        return [] if c is None else c.recent[-self.limits.recent_ids :]

    def campaign(self, cluster_id: str) -> CampaignEvent | None:
        """The cluster as an analyst sees it now (None when not tracked)."""
        c = self._get(cluster_id)
        if c is None:
            return None
        return self._event(
            c, "labelled" if c.label else "recognised" if c.recognised else "tracked"
        )

    @property
    def tracked(self) -> dict[str, int]:
        return {
            "clusters": len(self._live),
            "labelled": len(self._labelled),
            "texts": len(self._exact),
            "band_keys": len(self._bands),
        }

    def take_events(self) -> list[CampaignEvent]:
        """Campaigns recognised or labelled since the last call, once per cluster and label."""
        out, self._events = self._events, []
        return out

    # -- labels ---------------------------------------------------------------------------

    def label(self, target: str, kind: str, now: float) -> str | None:
        """Label a cluster, given by id or by a message text (a text never seen creates its
        cluster). Returns the cluster id, None for a text too short to be tracked."""
        strength = LABELS.get(kind)
        if strength is None:
            raise ValueError(f"unknown label {kind!r} (known: {', '.join(LABELS)})")
        c = self._get(target)
        if c is None:
            c = self._cluster_for_text(target, now)
            if c is None:
                return None
        if c.sample is None and target != c.id:
            c.sample = mask_sample(target)
        if target != c.id and self.on_label is not None and not self._replaying:
            self.on_label(target, kind, now)  # the other nodes label their cluster of it
        if strength > LABELS.get(c.label or "", 0):
            c.label = kind
            c.labelled_at = now
            self._live.pop(c.id, None)
            self._labelled.pop(c.id, None)
            self._labelled[c.id] = c
            self._evict_labelled()
            if self._replaying:
                pass  # the node that labelled it announces it
            elif _size(c.senders) >= 2:
                self._announce_label(c)
            else:
                c.announce = True
        return c.id

    def _announce_label(self, c: _Cluster) -> None:
        """The `labelled` event; with shared state, once among the nodes: held until the next
        round trip claims it (`take_label_claims`, `claimed`)."""
        if not self.claim_labels:
            self._emit(c, "labelled")
            return
        self._label_claims.append((c.id, c.label or "", tuple(_band_keys(c.reps[: 2 * _K]))))

    def take_label_claims(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """(cluster id, label, anchor band keys) of the labels to announce, for the claim."""
        out, self._label_claims = self._label_claims, []
        return out

    def claimed(
        self, claims: Sequence[tuple[str, str, tuple[int, ...]]], won: Sequence[bool]
    ) -> None:
        """The claims' outcome: the node that won announces (Redis unreachable: every node)."""
        for (cid, _, _), ok in zip(claims, won, strict=True):
            c = self._get(cid)
            if ok and c is not None:
                self._emit(c, "labelled")

    def announce_late(self, cluster_id: str) -> None:
        """The shared store's late answer: this node's message made the template a campaign
        among the nodes, and its announcement is this node's (the next message carries it)."""
        c = self._get(cluster_id)
        if c is None or c.exempt:
            return
        c.recognised = True
        self._emit(c, "recognised")

    def replay_label(self, text: str, kind: str, now: float) -> str | None:
        """A label another node gave (its `on_label`): applied here, announced there only."""
        self._replaying = True
        try:
            return self.label(text, kind, now)
        finally:
            self._replaying = False

    # -- persistence ----------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """All clusters, compressed JSON behind a magic and a version (see `restore`)."""
        doc = {
            "format": _FORMAT,
            "version": SNAPSHOT_VERSION,
            "sketch": _SKETCH_ID,
            "clusters": [_dump(c) for c in self._all()],
        }
        # ASCII escapes: a lone surrogate in an id or a sample cannot break the encoding
        body = json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        return _MAGIC + zlib.compress(body, 6)

    def restore(self, data: bytes, now: float) -> int:
        """Replace the clusters by a snapshot's, dropping those expired at `now`; returns how
        many were restored. Raises SnapshotError (detector left empty) on a bad snapshot."""
        self._clear()
        try:
            clusters = _load(data)
        except SnapshotError:
            raise
        except (ValueError, TypeError, KeyError, RecursionError, zlib.error, binascii.Error) as exc:
            raise SnapshotError(f"corrupt campaign snapshot: {exc}") from exc
        lim = self.limits
        for c in clusters:
            ttl = lim.label_ttl if c.label else lim.window
            if max(c.last_seen, c.labelled_at) + ttl < now:
                continue
            (self._labelled if c.label else self._live)[c.id] = c
            self._index(c.id, _band_keys(c.reps))
        self._evict_live()
        self._evict_labelled()
        return len(self._live) + len(self._labelled)

    # -- internals ------------------------------------------------------------------------

    def _fingerprint(self, text: str) -> str | None:
        try:
            fp = fingerprint(text)
        except Exception:  # a text no rule can read is not a campaign template
            return None
        return fp if len(fp) >= self.limits.min_length else None

    def _get(self, cluster_id: str) -> _Cluster | None:
        return self._live.get(cluster_id) or self._labelled.get(cluster_id)

    def _all(self) -> Iterator[_Cluster]:
        yield from self._live.values()
        yield from self._labelled.values()

    def _exact_cluster(self, fp: str) -> _Cluster | None:
        cid = self._exact.get(hash(fp))
        return None if cid is None else self._get(cid)

    def _find(self, sig: npt.NDArray[np.uint16], keys: list[int], length: int) -> _Cluster | None:
        """The most similar cluster sharing a band key with `sig`, if similar enough (a short
        text has few 4-grams, so a noisier estimate: it must match more)."""
        best: _Cluster | None = None
        best_m = self._thresh - 1 + (_SHORT_EXTRA if length < _SHORT else 0)
        tried: list[str] = []
        bands = self._bands
        for key in keys:
            cid = bands.get(key)
            if cid is None or cid in tried:
                continue
            tried.append(cid)
            c = self._get(cid)
            if c is not None and (m := c.matches(sig)) > best_m:
                best, best_m = c, m
        return best

    def _join(self, fp: str, now: float) -> tuple[_Cluster, bool]:
        """The message's cluster (found or created) and whether its signature was added to
        the cluster's (a new variant, one of the first `max_variants`)."""
        key = hash(fp)  # process-local: the exact path is not snapshotted
        c = self._exact_cluster(fp)
        if c is not None:
            return c, False
        sig = self._prepared.pop(fp, None)
        if sig is None:
            sig = sketch(fp)
        keys = _band_keys(sig)
        c = self._find(sig, keys, len(fp))
        added = True
        if c is None:
            c = self._create(sig.tobytes(), keys, now)
        elif c.variants < self.limits.max_variants:
            c.reps += sig.tobytes()
            self._index(c.id, keys)
        else:
            added = False
        self._remember(key, c.id)
        return c, added

    def _cluster_for_text(self, text: str, now: float) -> _Cluster | None:
        fp = self._fingerprint(text)
        if fp is None:
            return None
        c, _ = self._join(fp, now)
        return c

    def _create(self, sig: bytes, keys: list[int], now: float) -> _Cluster:
        cid = _cluster_id(sig, now)
        while self._get(cid) is not None:  # same signature in the same second: next id
            cid = _cluster_id(sig + cid.encode(), now)
        c = _Cluster(cid, sig, now)
        self._live[cid] = c
        self._index(cid, keys)
        if len(self._live) > self.limits.max_clusters:
            self._evict_live()
        return c

    def _index(self, cid: str, keys: list[int]) -> None:
        """First come, first kept: a key stays with the older cluster (a campaign's), so a
        stray variant that made its own cluster cannot draw the next variants away."""
        bands = self._bands
        for key in keys:
            bands.setdefault(key, cid)

    def _remember(self, key: int, cid: str) -> None:
        exact = self._exact
        exact[key] = cid
        if len(exact) > self.limits.max_texts:
            exact.popitem(last=False)

    def _record(self, c: _Cluster, sms: SmsEvent, now: float, new_variant: bool) -> None:
        lim = self.limits
        c.count += 1
        last, c.last_seen = c.last_seen, now
        c.senders = _add(c.senders, _h32(sms.source), now, last, lim.distinct_cap)
        c.recipients = _add(c.recipients, _h32(sms.dest), now, last, lim.distinct_cap)
        c.routes |= _ROUTE_BIT[sms.route]
        if c.announce and _size(c.senders) >= 2:
            c.announce = False
            self._announce_label(c)
        recent = c.recent
        recent.append(sms.id)
        if len(recent) > 2 * lim.recent_ids:  # trim in batches: amortised O(1)
            del recent[: -lim.recent_ids]
        if c.sample is None:
            if c.count > 1 or c.label:  # singletons (most texts) never need one
                c.sample = mask_sample(sms.text)
        elif new_variant:
            c.sample = _refine_sample(c.sample, mask_sample(sms.text))
        (self._labelled if c.label else self._live).move_to_end(c.id)

    def _check(self, c: _Cluster, sms: SmsEvent, now: float) -> None:
        lim = self.limits
        if _size(c.senders) < lim.min_senders or _size(c.recipients) < lim.min_recipients:
            return
        cutoff = now - lim.window
        if _in_window(c.senders, cutoff) < lim.min_senders:
            return
        if _in_window(c.recipients, cutoff) < lim.min_recipients:
            return
        self._recognise(c, sms)

    def _recognise(self, c: _Cluster, sms: SmsEvent, announce: bool = True) -> None:
        """The counts are reached: a campaign unless its text is exempt. `announce`: this node
        raises the `recognised` event (with shared state, exactly one node does)."""
        if self._exempt(sms.text):
            c.exempt = True
            return
        c.recognised = True
        if c.sample is None:
            c.sample = mask_sample(sms.text)
        if announce:
            self._emit(c, "recognised")

    def _exempt(self, text: str) -> bool:
        """Texts many people send to many contacts by nature: holiday greetings, and short
        texts with nothing to act upon (a phone's quick replies: "Не могу говорить,
        перезвоню")."""
        fp = self._fingerprint(text) or ""
        # what a scam is acted upon through: a link, a phone / card / account number, a
        # messenger handle. A time or an amount is not one ("собрание в 14:15")
        hook = bool(extract_urls(text)) or _LONG_NUMBER.search(text) is not None or "@" in text
        if not hook and len(fp) < self.limits.min_plain_length:
            return True
        return self.limits.exempt_greetings and _is_greeting(text)

    def _reasons(self, c: _Cluster) -> list[Reason]:
        lim = self.limits
        out: list[Reason] = []
        if c.label is not None:
            out.append(
                Reason(
                    self.name,
                    f"campaign.labelled.{c.label}",
                    lim.labelled_score,
                    f"text of campaign {c.id} labelled {c.label.replace('_', ' ')} "
                    f"({c.count} messages, {c.counts_text()})",
                )
            )
        if c.recognised:
            out.append(
                Reason(
                    self.name,
                    "campaign.simfarm",
                    lim.simfarm_score,
                    f"same text template from {c.counts_text()} "
                    f"(campaign {c.id}, {c.count} messages; recognised at {lim.min_senders} "
                    f"senders and {lim.min_recipients} recipients in {lim.window / 60:g} min)",
                )
            )
        return out

    def _event(
        self, c: _Cluster, kind: Literal["recognised", "labelled", "tracked"]
    ) -> CampaignEvent:
        return CampaignEvent(
            campaign_id=c.id,
            kind=kind,
            label=c.label,
            messages=c.count,
            senders=_count(c.senders),
            recipients=_count(c.recipients),
            first_seen=c.first_seen,
            last_seen=c.last_seen,
            routes=c.route_names(),
            sample=c.sample or "",
            approximate=_estimated(c.senders) or _estimated(c.recipients),
        )

    def _emit(self, c: _Cluster, kind: Literal["recognised", "labelled"]) -> None:
        events = self._events
        events.append(self._event(c, kind))
        if len(events) > self.limits.max_events:
            del events[0]

    # -- memory ---------------------------------------------------------------------------

    def _sweep(self, now: float) -> None:
        """Every 16 messages, drop up to 32 expired clusters, oldest first (amortised O(1),
        and most messages pay one counter); labelled ones (few, long-lived) every 64."""
        self._sweeps += 1
        if self._sweeps & 15:
            return
        self._sweep_table(self._live, now - self.limits.window)
        if not self._sweeps & 63:
            self._sweep_table(self._labelled, now - self.limits.label_ttl)

    def _sweep_table(self, table: OrderedDict[str, _Cluster], cutoff: float) -> None:
        for c in list(itertools.islice(table.values(), 32)):
            if max(c.last_seen, c.labelled_at) >= cutoff:
                return
            self._drop(table, c)

    def _evict_live(self) -> None:
        while len(self._live) > self.limits.max_clusters:
            self._drop(self._live, next(iter(self._live.values())))

    def _evict_labelled(self) -> None:
        while len(self._labelled) > self.limits.max_labelled:
            self._drop(self._labelled, next(iter(self._labelled.values())))

    def _drop(self, table: OrderedDict[str, _Cluster], c: _Cluster) -> None:
        del table[c.id]
        bands = self._bands
        for key in _band_keys(c.reps):
            if bands.get(key) == c.id:
                del bands[key]
        # exact-path entries of a dropped cluster are left to age out: they name a missing id

    def _clear(self) -> None:
        self._live.clear()
        self._labelled.clear()
        self._bands.clear()
        self._exact.clear()
        self._events.clear()


def _independent_score(verdict: Verdict, own: str) -> float:
    """Noisy-OR of the reasons of the other detectors; 1.0 when one of them forces a block."""
    clean = 1.0
    for r in verdict.reasons:
        if r.detector == own:
            continue
        if r.block:
            return 1.0
        clean *= 1.0 - min(max(r.score, 0.0), 1.0)
    return 1.0 - clean


# --------------------------------------------------------------------------------------------
# Snapshot format

_MAGIC: Final = b"FGCAMP\x00"
_FORMAT: Final = "fraudgate.campaigns"
SNAPSHOT_VERSION: Final = 1


def _dump(c: _Cluster) -> dict[str, Any]:
    return {
        "id": c.id,
        "first": c.first_seen,
        "last": c.last_seen,
        "n": c.count,
        "snd": _dump_distinct(c.senders, c.last_seen),
        "rcp": _dump_distinct(c.recipients, c.last_seen),
        "routes": list(c.route_names()),
        "sample": c.sample,
        "label": c.label,
        "labelled_at": c.labelled_at,
        "recognised": c.recognised,
        "exempt": c.exempt,
        "reps": base64.b64encode(c.reps).decode("ascii"),
        "recent": c.recent,
    }


def _dump_distinct(d: Addresses, last_seen: float) -> dict[str, Any]:
    if isinstance(d, int):
        return {"seen": [] if d == NOBODY else [[d, last_seen]], "hll": None}
    return {
        "seen": [[h, t] for h, t in d.seen.items()],
        "hll": None if d.hll is None else base64.b64encode(bytes(d.hll)).decode("ascii"),
    }


def _load(data: bytes) -> list[_Cluster]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SnapshotError("campaign snapshot: expected bytes")
    data = bytes(data)
    if not data.startswith(_MAGIC):
        raise SnapshotError("not a campaign snapshot (bad magic)")
    doc = json.loads(zlib.decompress(data[len(_MAGIC) :]).decode("utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise SnapshotError("not a campaign snapshot (format)")
    if doc.get("version") != SNAPSHOT_VERSION:
        raise SnapshotError(f"campaign snapshot version {doc.get('version')!r} is not supported")
    if doc.get("sketch") != _SKETCH_ID:
        raise SnapshotError("campaign snapshot made with another sketch: signatures not comparable")
    items = _typed(doc.get("clusters"), list, "clusters")
    return [_load_cluster(_typed(item, dict, "cluster")) for item in items]


def _typed(value: Any, kind: type[Any] | tuple[type[Any], ...], what: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
        raise SnapshotError(f"corrupt campaign snapshot: {what} has the wrong type")
    return value


def _num(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SnapshotError(f"corrupt campaign snapshot: {what} is not a number")
    return float(value)


def _load_cluster(d: dict[str, Any]) -> _Cluster:
    reps = base64.b64decode(_typed(d["reps"], str, "reps"), validate=True)
    if not reps or len(reps) % (2 * _K):
        raise SnapshotError("corrupt campaign snapshot: signature length")
    c = _Cluster(_typed(d["id"], str, "id"), reps, _num(d["first"], "first"))
    c.last_seen = _num(d["last"], "last")
    c.count = int(_num(d["n"], "n"))
    c.senders = _load_distinct(_typed(d["snd"], dict, "snd"))
    c.recipients = _load_distinct(_typed(d["rcp"], dict, "rcp"))
    for r in _typed(d["routes"], list, "routes"):
        c.routes |= _ROUTE_BIT[Route(r)]
    sample = d["sample"]
    c.sample = None if sample is None else _typed(sample, str, "sample")
    label = d["label"]
    if label is not None and label not in LABELS:
        raise SnapshotError(f"corrupt campaign snapshot: unknown label {label!r}")
    c.label = label
    c.labelled_at = _num(d["labelled_at"], "labelled_at")
    c.recognised = _typed(d["recognised"], bool, "recognised")
    c.exempt = _typed(d["exempt"], bool, "exempt")
    c.recent = [_typed(i, str, "recent") for i in _typed(d["recent"], list, "recent")]
    return c


def _load_distinct(d: dict[str, Any]) -> Addresses:
    out = _Distinct()
    for pair in _typed(d["seen"], list, "seen"):
        h, t = _typed(pair, list, "seen entry")
        out.seen[int(_num(h, "hash")) & 0xFFFFFFFF] = _num(t, "seen time")
    hll = d["hll"]
    if hll is not None:
        regs = base64.b64decode(_typed(hll, str, "hll"), validate=True)
        if len(regs) != _HLL_M:
            raise SnapshotError("corrupt campaign snapshot: HyperLogLog size")
        out.hll = bytearray(regs)
        out.est = -1
    if out.hll is None and len(out.seen) <= 1:
        return next(iter(out.seen), NOBODY)
    return out
