"""The `classifier` detector: a statistical text classifier for SMS (ham vs. spam / fraud).

Method (chosen by 5-fold cross-validation on the UCI SMS Spam Collection, see docs/classifier.md):

* text normalised (`normalise`): the first MAX_CHARS characters, lower case, ё → е, a link →
  `zzurl` and its host name, a phone number (9-15 digits) → `zztel`, any other run of digits → 0;
* two feature blocks, each TF-IDF with sublinear tf (1 + ln tf) and its own L2 norm:
  character 1- to 5-grams inside word boundaries (`char_wb`: each whitespace-separated word padded
  with a space) and word uni- and bi-grams (words stripped of punctuation). Character n-grams
  carry Russian and Kazakh Cyrillic as well as English, misspellings and inflections;
* logistic regression (liblinear, C = 30, balanced class weights); the decision threshold is a
  fixed rule, p >= 0.5, never tuned on test data (balanced weights put it where the false
  positive rate is about 0.1 % on UCI). A `Reason` is emitted only at p >= threshold, so every
  finding is enough to FLAG on its own under the default `Thresholds` (0.5), and p >= 0.8 BLOCKs.

Training uses scikit-learn (imported only by `train`); inference is this module's own code
(`TextClassifier.predict_batch`): each distinct word's feature indices are looked up once and
cached, a batch is scored with a handful of numpy operations, with the same arithmetic as
scikit-learn's transform + decision_function (checked after every training run), and the logits
of recently seen normalised texts are remembered (templated A2P and campaigns repeat).

Model files are not pickles: a ZIP archive of `header.json`, `features.json` and two `.npy` arrays
(read with allow_pickle=False); `load_model` validates every part and names what is wrong. The
format is documented in docs/classifier.md.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import math
import operator
import os
import re
import string
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from gateway.domain import Reason, SmsEvent

FORMAT: Final = "fraudgate.text-classifier"
FORMAT_VERSION: Final = 1
# What this code implements; a model file must declare exactly this.
ANALYZER: Final[Mapping[str, object]] = {
    "normalisation": "v1",
    "char": "char_wb",
    "char_ngrams": [1, 5],
    "word_ngrams": [1, 2],
    "tf": "sublinear",
    "norm": "l2-per-block",
}
DEFAULT_C: Final = 30.0
DEFAULT_THRESHOLD: Final = 0.5
MIN_DF: Final = 2  # a feature seen in one training message only is noise (1 for tiny corpora)
SMALL_CORPUS: Final = 100
BATCH: Final = 1024  # predict_batch scores longer lists in chunks of this size
WORD_CACHE: Final = 1 << 15  # distinct words whose feature indices are kept per model
MAX_CHARS: Final = 2000  # only the start of a longer text is read (10 SMS parts are ~1,530)
MAX_NORMALISED: Final = 2 * MAX_CHARS
MEMO: Final = 1 << 14  # distinct normalised texts whose scores are kept per model
MAX_MEMBER_BYTES: Final = 512 << 20
_MEMBERS: Final = ("header.json", "features.json", "idf.npy", "coef.npy")
_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class ModelError(ValueError):
    """A model file that cannot be used: the message names the file and what is wrong."""


# --------------------------------------------------------------------------------------------
# Normalisation and features

_TLDS: Final = (
    "com|net|org|info|biz|kz|ru|uk|us|io|me|ly|co|top|site|online|xyz|app|pro|club|shop|live|"
    "store|click|link|icu|vip|cc|tk|ml|ga|cf|gq|su|uz|kg|by|ua|de|eu|tv|ws|win|bid|life|space|"
    "website|tech|fun|today|world|net\\.kz|gov\\.kz|org\\.kz"
)
# A link with a scheme or www., or a bare host name ending in a known top-level domain.
_URL_RE: Final = re.compile(
    r"(?:https?://|www\.)[^\s<>\"'«»]+"
    rf"|\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{_TLDS})\b(?:/[^\s<>\"'«»]*)?",
    re.IGNORECASE,
)
_URL_HINT_RE: Final = re.compile(rf"https?:|www\.|\.(?:{_TLDS})\b", re.IGNORECASE)
_SCHEME_RE: Final = re.compile(r"^(?:https?://)?(?:www\.)?", re.IGNORECASE)
# A phone number: 9 to 15 digits, optionally after +, grouped by spaces, dashes or brackets.
_PHONE_RE: Final = re.compile(r"(?<![\w+])\+?[0-9](?:[ ()\-]{0,2}[0-9]){8,14}(?!\w)")
# Every run of digits is one "0": how long a number is says more about the corpus it came from
# (UK premium short codes) than about fraud, and codes, amounts and times then look alike.
_DIGITS_RE: Final = re.compile(r"[0-9]+")
_PUNCT: Final = string.punctuation + "«»“”„‘’…—–¡¿‹›•·№"
URL_TOKEN: Final = "zzurl"
PHONE_TOKEN: Final = "zztel"


def _url(match: re.Match[str]) -> str:
    host = _SCHEME_RE.sub("", match.group()).split("/", 1)[0].split("?", 1)[0]
    return f" {URL_TOKEN} {host.rstrip(_PUNCT)} "


def normalise(text: str) -> str:
    """The text the features are taken from (normalisation "v1")."""
    t = text[:MAX_CHARS].lower().replace("ё", "е")
    if _URL_HINT_RE.search(t):  # the full pattern is slow; most messages have no link
        t = _URL_RE.sub(_url, t)
    digits = sum(map(t.count, "0123456789"))
    if digits:
        if digits >= 9:
            t = _PHONE_RE.sub(f" {PHONE_TOKEN} ", t)
        t = _DIGITS_RE.sub("0", t)
    return t[:MAX_NORMALISED]  # links written as "zzurl host" may have made it longer


def char_ngrams(word: str) -> list[str]:
    """Character 1- to 5-grams of one word padded with a space each side (like char_wb)."""
    padded = f" {word} "
    size = len(padded)
    out: list[str] = []
    for n in range(1, 6):
        if n > size:
            break
        out.extend(padded[i : i + n] for i in range(size - n + 1))
    return out


def _token(word: str) -> str:
    return word.strip(_PUNCT)


def analyze(text: str) -> tuple[list[str], list[str]]:
    """The features of one text: (character n-grams, word uni- and bi-grams), repeats kept."""
    chars: list[str] = []
    tokens: list[str] = []
    for word in normalise(text).split():
        chars.extend(char_ngrams(word))
        tok = _token(word)
        if tok:
            tokens.append(tok)
    words = tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]
    return chars, words


# --------------------------------------------------------------------------------------------
# The model


_FIRST: Final = operator.itemgetter(0)
_SECOND: Final = operator.itemgetter(1)


def _sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


# (1 + ln n, (1 + ln n)^2) for a term seen n times. A normalised text has at most
# MAX_NORMALISED characters, so no feature occurs more than 3 * MAX_NORMALISED times (every
# character position starts at most one n-gram of each length, plus two padding spaces a word).
_TF_ONE: Final = 1.0 + np.log(np.arange(1, 3 * MAX_NORMALISED + 2, dtype=np.float64))
_TF: Final = np.column_stack(
    (np.concatenate(([0.0], _TF_ONE)), np.concatenate(([0.0], _TF_ONE**2)))
)


def _runs(
    keys: npt.NDArray[np.integer[Any]],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Where each run of equal values starts in sorted keys, and 1 + ln(run length)."""
    edge = np.empty(len(keys) + 1, dtype=bool)
    edge[0] = True
    edge[-1] = True
    np.not_equal(keys[1:], keys[:-1], out=edge[1:-1])
    bounds = np.flatnonzero(edge)
    return bounds[:-1], np.log(bounds[1:] - bounds[:-1]) + 1.0


class TextClassifier:
    """A trained linear model over the two feature blocks; `predict*` give p(fraud) in [0, 1].

    Thread-safe for reading (the word cache is a functools.lru_cache)."""

    def __init__(
        self,
        *,
        name: str,
        char_features: Sequence[str],
        word_features: Sequence[str],
        idf: npt.NDArray[np.float64],
        coef: npt.NDArray[np.float64],
        intercept: float,
        threshold: float = DEFAULT_THRESHOLD,
        metadata: Mapping[str, Any] | None = None,
        memo_size: int = MEMO,
    ) -> None:
        size = len(char_features) + len(word_features)
        if idf.shape != (size,) or coef.shape != (size,):
            raise ValueError(f"idf {idf.shape} and coef {coef.shape} must both be ({size},)")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold {threshold} must be in (0, 1)")
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"model name {name!r} must match {_NAME_RE.pattern}")
        self.name = name
        self.threshold = float(threshold)
        self.intercept = float(intercept)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.char_features = tuple(char_features)
        self.word_features = tuple(word_features)
        self.idf = np.ascontiguousarray(idf, dtype=np.float64)
        self.coef = np.ascontiguousarray(coef, dtype=np.float64)
        self._n_char = len(char_features)
        self._size = size
        self._weight = self.coef * self.idf  # tf * idf * coef, divided by the block's norm
        self._char_vocab = {f: i for i, f in enumerate(char_features)}
        self._word_vocab = {f: self._n_char + i for i, f in enumerate(word_features)}
        if len(self._char_vocab) != len(char_features):
            raise ValueError("duplicate character features")
        if len(self._word_vocab) != len(word_features):
            raise ValueError("duplicate word features")
        self._pair_vocab: dict[tuple[str, ...], int] = {
            tuple(f.split(" ")): i for f, i in self._word_vocab.items() if " " in f
        }
        self._idf2 = self.idf * self.idf
        self._pairs = np.column_stack((self._weight, self._idf2))
        self._lookup = functools.lru_cache(maxsize=WORD_CACHE)(self._lookup_word)
        # normalised text -> logit: A2P templates (digits are normalised) and campaigns repeat.
        self.memo_size = memo_size
        self._memo: dict[str, float] = {}

    def __repr__(self) -> str:
        return (
            f"TextClassifier(name={self.name!r}, features={self._size}, threshold={self.threshold})"
        )

    def forget(self) -> None:
        """Empty the caches (word features and scores of texts seen)."""
        self._memo.clear()
        self._lookup.cache_clear()

    @property
    def size(self) -> int:
        return self._size

    def _lookup_word(self, word: str) -> tuple[npt.NDArray[np.int32], str]:
        get = self._char_vocab.get
        found = [i for i in map(get, char_ngrams(word)) if i is not None]
        tok = _token(word)
        if tok and (j := self._word_vocab.get(tok)) is not None:
            found.append(j)
        return np.array(found, dtype=np.int32), tok

    def _parts(self, normalised: str, parts: list[npt.NDArray[np.int32]]) -> int:
        """Append the feature indices of one normalised text (repeats kept); return how many."""
        entries = list(map(self._lookup, normalised.split()))
        parts.extend(map(_FIRST, entries))
        total = sum(map(len, map(_FIRST, entries)))
        tokens = list(filter(None, map(_SECOND, entries)))
        if len(tokens) > 1:
            get = self._pair_vocab.get
            pairs = [j for j in map(get, itertools.pairwise(tokens)) if j is not None]
            if pairs:
                parts.append(np.array(pairs, dtype=np.int32))
                total += len(pairs)
        return total

    def decision_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """The linear decision values (logits) of the texts."""
        out = np.empty(len(texts), dtype=np.float64)
        memo = self._memo if self.memo_size else {}
        todo: list[int] = []
        keys: list[str] = []
        for i, text in enumerate(texts):
            key = normalise(text)
            hit = memo.get(key)
            if hit is None:
                todo.append(i)
                keys.append(key)
            else:
                out[i] = hit
        for start in range(0, len(todo), BATCH):
            chunk = keys[start : start + BATCH]
            values = self._decide(chunk)
            out[todo[start : start + BATCH]] = values
            if self.memo_size:
                if len(memo) + len(chunk) > self.memo_size:
                    memo.clear()  # a generation at a time: O(1) per message, no ordering
                memo.update(zip(chunk, values.tolist(), strict=True))
        return out

    def _decide(self, normalised: Sequence[str]) -> npt.NDArray[np.float64]:
        """Logits of normalised texts: the TF-IDF (sublinear tf, L2 norm per block) . coef."""
        count = len(normalised)
        parts: list[npt.NDArray[np.int32]] = []
        lengths = [self._parts(t, parts) for t in normalised]
        if not parts:
            return np.full(count, self.intercept)
        keys = np.concatenate(parts).astype(np.int64)
        if count > 1:  # key = message * size + feature: one sort groups both
            keys += np.repeat(np.arange(0, count * self._size, self._size), lengths)
        keys.sort()
        starts, tf = _runs(keys)
        doc, feat = np.divmod(keys[starts], self._size)
        cell = 2 * doc + (feat >= self._n_char)  # (message, block)
        num = np.bincount(cell, weights=tf * self._weight.take(feat), minlength=2 * count)
        sq = np.bincount(cell, weights=tf * tf * self._idf2.take(feat), minlength=2 * count)
        sq[sq == 0.0] = 1.0  # an empty block: its numerator is 0 too
        part = num / np.sqrt(sq)
        result: npt.NDArray[np.float64] = part.reshape(count, 2).sum(axis=1) + self.intercept
        return result

    def _decide_one(self, normalised: str) -> float:
        """`_decide` for one text with fewer numpy calls (each costs a microsecond or two)."""
        parts: list[npt.NDArray[np.int32]] = []
        if not self._parts(normalised, parts):
            return self.intercept
        keys = np.concatenate(parts)
        keys.sort()
        edge = np.empty(len(keys) + 1, dtype=bool)
        edge[0] = edge[-1] = True
        np.not_equal(keys[1:], keys[:-1], out=edge[1:-1])
        bounds = np.flatnonzero(edge)
        feat = keys[bounds[:-1]]
        # rows: (tf . weight, tf^2 . idf^2) of each distinct feature; sums per block
        rows = self._pairs.take(feat, axis=0) * _TF.take(bounds[1:] - bounds[:-1], axis=0)
        split = int(np.searchsorted(feat, self._n_char))
        z = self.intercept
        if 0 < split < len(feat):
            sums: list[list[float]] = np.add.reduceat(rows, [0, split]).tolist()
            (n0, q0), (n1, q1) = sums
            return z + n0 / math.sqrt(q0) + n1 / math.sqrt(q1)
        total: list[float] = rows.sum(axis=0).tolist()
        return z + total[0] / math.sqrt(total[1])

    def predict_batch(self, texts: Sequence[str]) -> list[float]:
        """p(fraud) of each text, vectorised: the way to score many messages."""
        return [float(p) for p in _sigmoid(self.decision_batch(texts))]

    def predict(self, text: str) -> float:
        """p(fraud) of one text."""
        key = normalise(text)
        z = self._memo.get(key) if self.memo_size else None
        if z is None:
            z = self._decide_one(key)
            if self.memo_size:
                if len(self._memo) >= self.memo_size:
                    self._memo.clear()
                self._memo[key] = z
        return 0.5 * (1.0 + math.tanh(0.5 * z))

    def flags(self, texts: Sequence[str]) -> list[bool]:
        """Whether each text is classified as fraud (p >= threshold)."""
        return [p >= self.threshold for p in self.predict_batch(texts)]

    def top_features(self, count: int = 20) -> list[tuple[str, float]]:
        """The features with the largest weights toward fraud (positive) and ham (negative)."""
        names = [f"c:{f}" for f in self.char_features] + [f"w:{f}" for f in self.word_features]
        order = np.argsort(self._weight)
        picked = [*order[::-1][:count], *order[:count]]
        return [(names[i], float(self._weight[i])) for i in picked]

    # ----------------------------------------------------------------------------------------
    # Files

    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": self.name,
            "analyzer": dict(ANALYZER),
            "model": {
                "kind": "logistic-regression",
                "intercept": self.intercept,
                "threshold": self.threshold,
                "char_features": self._n_char,
                "word_features": len(self.word_features),
            },
            "metadata": self.metadata,
        }

    def save(self, path: str | Path) -> None:
        """Write the model file (atomically: a temporary file renamed into place)."""
        path = Path(path)
        members = {
            "header.json": _json_bytes(self.header(), indent=2),
            "features.json": _json_bytes(
                {"char": list(self.char_features), "word": list(self.word_features)}
            ),
            "idf.npy": _npy_bytes(self.idf),
            "coef.npy": _npy_bytes(self.coef),
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
        try:
            with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
                for member, data in members.items():
                    # A fixed date: the same model gives the same bytes.
                    info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    zf.writestr(info, data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _json_bytes(obj: object, indent: int | None = None) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False).encode("utf-8")


def _npy_bytes(array: npt.NDArray[Any]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Loading


def load_model(path: str | Path) -> TextClassifier:
    """Read and validate a model file; ModelError names the file and what is wrong."""
    where = str(path)

    def fail(reason: str) -> ModelError:
        return ModelError(f"{where}: {reason}")

    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise fail("no such file") from None
    except (zipfile.BadZipFile, IsADirectoryError, PermissionError, OSError) as exc:
        raise fail(
            f"not a fraudgate model file ({exc}); expected a ZIP archive of "
            f"{', '.join(_MEMBERS)} (see docs/classifier.md)"
        ) from None
    with zf:
        data = _read_members(zf, fail)
    header = _parse_json(data["header.json"], "header.json", fail)
    if not isinstance(header, dict):
        raise fail("header.json: not a JSON object")
    if header.get("format") != FORMAT:
        raise fail(f"header.json: format is {header.get('format')!r}, expected {FORMAT!r}")
    if header.get("version") != FORMAT_VERSION:
        raise fail(
            f"header.json: version {header.get('version')!r} is not supported "
            f"(this fraudgate reads version {FORMAT_VERSION})"
        )
    name = header.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise fail(f"header.json: name {name!r} must match {_NAME_RE.pattern}")
    _check_analyzer(header.get("analyzer"), fail)
    model = header.get("model")
    if not isinstance(model, dict):
        raise fail("header.json: model: missing or not an object")
    if model.get("kind") != "logistic-regression":
        raise fail(f"header.json: model.kind {model.get('kind')!r} is not 'logistic-regression'")
    intercept = _number(model.get("intercept"), "model.intercept", fail)
    threshold = _number(model.get("threshold"), "model.threshold", fail)
    if not 0.0 < threshold < 1.0:
        raise fail(f"header.json: model.threshold {threshold} must be in (0, 1)")
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise fail("header.json: metadata must be an object")
    chars, words = _features(data["features.json"], model, fail)
    size = len(chars) + len(words)
    idf = _array(data["idf.npy"], "idf.npy", size, fail)
    coef = _array(data["coef.npy"], "coef.npy", size, fail)
    if size and float(idf.min()) <= 0.0:
        raise fail("idf.npy: idf values must be positive")
    return TextClassifier(
        name=name,
        char_features=chars,
        word_features=words,
        idf=idf,
        coef=coef,
        intercept=intercept,
        threshold=threshold,
        metadata=metadata,
    )


def _read_members(zf: zipfile.ZipFile, fail: Callable[[str], ModelError]) -> dict[str, bytes]:
    infos = {i.filename: i for i in zf.infolist()}
    out: dict[str, bytes] = {}
    for member in _MEMBERS:
        info = infos.get(member)
        if info is None:
            raise fail(
                f"not a fraudgate model file: member {member} is missing "
                f"(archive holds: {', '.join(sorted(infos)) or 'nothing'})"
            )
        if info.file_size > MAX_MEMBER_BYTES:
            raise fail(f"{member}: {info.file_size} bytes is more than a model may hold")
        try:
            out[member] = zf.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise fail(f"{member}: cannot be read ({exc})") from None
    return out


def _parse_json(raw: bytes, member: str, fail: Callable[[str], ModelError]) -> object:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fail(f"{member}: not valid UTF-8 JSON ({exc})") from None


def _check_analyzer(analyzer: object, fail: Callable[[str], ModelError]) -> None:
    if not isinstance(analyzer, dict):
        raise fail("header.json: analyzer: missing or not an object")
    for key, expected in ANALYZER.items():
        if analyzer.get(key) != expected:
            raise fail(
                f"header.json: analyzer.{key} is {analyzer.get(key)!r}; this fraudgate "
                f"implements only {expected!r}"
            )
    extra = sorted(set(analyzer) - set(ANALYZER))
    if extra:
        raise fail(f"header.json: analyzer: unknown keys {extra}")


def _number(value: object, key: str, fail: Callable[[str], ModelError]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(f"header.json: {key} must be a finite number, not {value!r}")
    return float(value)


def _features(
    raw: bytes, model: Mapping[str, object], fail: Callable[[str], ModelError]
) -> tuple[list[str], list[str]]:
    features = _parse_json(raw, "features.json", fail)
    if not isinstance(features, dict):
        raise fail("features.json: not a JSON object with 'char' and 'word' lists")
    out: list[list[str]] = []
    for block in ("char", "word"):
        items = features.get(block)
        if not isinstance(items, list) or not all(isinstance(f, str) and f for f in items):
            raise fail(f"features.json: {block!r} must be a list of non-empty strings")
        declared = model.get(f"{block}_features")
        if declared != len(items):
            raise fail(
                f"features.json: {len(items)} {block} features, header.json model."
                f"{block}_features says {declared!r}"
            )
        if len(set(items)) != len(items):
            raise fail(f"features.json: duplicate {block} features")
        out.append(items)
    return out[0], out[1]


def _array(
    raw: bytes, member: str, size: int, fail: Callable[[str], ModelError]
) -> npt.NDArray[np.float64]:
    try:
        array = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise fail(f"{member}: not a numpy .npy array without objects ({exc})") from None
    if array.dtype != np.float64 or array.shape != (size,):
        raise fail(
            f"{member}: expected float64 of shape ({size},), found {array.dtype} {array.shape}"
        )
    if not np.isfinite(array).all():
        raise fail(f"{member}: holds NaN or infinite values")
    result: npt.NDArray[np.float64] = array
    return result


# --------------------------------------------------------------------------------------------
# Training


Doc = tuple[list[str], list[str]]


def train(
    texts: Sequence[str],
    labels: Sequence[bool],
    *,
    name: str,
    c: float = DEFAULT_C,
    threshold: float = DEFAULT_THRESHOLD,
    metadata: Mapping[str, Any] | None = None,
) -> TextClassifier:
    """Fit a model on texts labelled True (fraud / spam) or False (ham). Needs scikit-learn."""
    return fit_analyzed(
        [analyze(t) for t in texts],
        labels,
        name=name,
        c=c,
        threshold=threshold,
        metadata=metadata,
        check_texts=texts,
    )


def fit_analyzed(
    docs: Sequence[Doc],
    labels: Sequence[bool],
    *,
    name: str,
    c: float = DEFAULT_C,
    threshold: float = DEFAULT_THRESHOLD,
    metadata: Mapping[str, Any] | None = None,
    check_texts: Sequence[str] = (),
) -> TextClassifier:
    """`train` on texts already passed through `analyze` (cross-validation analyses once)."""
    import scipy.sparse  # type: ignore[import-untyped, unused-ignore]
    import sklearn  # type: ignore[import-untyped, unused-ignore]
    from sklearn.linear_model import (  # type: ignore[import-untyped, unused-ignore]
        LogisticRegression,
    )

    y = np.array([bool(v) for v in labels], dtype=bool)
    if len(docs) != len(y):
        raise ValueError(f"{len(docs)} texts but {len(y)} labels")
    if y.all() or not y.any():
        raise ValueError("training needs both ham and fraud examples")
    started = time.perf_counter()
    min_df = MIN_DF if len(docs) >= SMALL_CORPUS else 1
    blocks = [_tfidf_block(docs, block, min_df) for block in (0, 1)]
    x = scipy.sparse.hstack([b[2] for b in blocks]).tocsr()
    lr = LogisticRegression(
        C=c, class_weight="balanced", solver="liblinear", max_iter=1000, random_state=0
    )
    lr.fit(x, y)
    info: dict[str, Any] = {
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "examples": {"ham": int((~y).sum()), "fraud": int(y.sum())},
        "params": {"C": c, "class_weight": "balanced", "solver": "liblinear", "min_df": min_df},
        "library": {"scikit-learn": sklearn.__version__, "numpy": np.__version__},
        "train_seconds": round(time.perf_counter() - started, 3),
    }
    info.update(metadata or {})
    model = TextClassifier(
        name=name,
        char_features=blocks[0][0],
        word_features=blocks[1][0],
        idf=np.concatenate([blocks[0][1], blocks[1][1]]),
        coef=np.asarray(lr.coef_, dtype=np.float64).ravel(),
        intercept=float(lr.intercept_[0]),
        threshold=threshold,
        metadata=info,
    )
    if check_texts:
        _check_inference(model, lr, x, check_texts)
    return model


def _tfidf_block(
    docs: Sequence[Doc], block: int, min_df: int
) -> tuple[list[str], npt.NDArray[np.float64], Any]:
    """Fit TF-IDF on one block of the analysed docs (0: char n-grams, 1: words): the feature
    names by column, their idf and the document-term matrix."""
    import scipy.sparse  # type: ignore[import-untyped, unused-ignore]
    from sklearn.feature_extraction.text import (  # type: ignore[import-untyped, unused-ignore]
        TfidfVectorizer,
    )

    vec = TfidfVectorizer(
        analyzer=operator.itemgetter(block), sublinear_tf=True, min_df=min_df, dtype=np.float64
    )
    try:
        matrix = vec.fit_transform(docs)
    except ValueError:  # no feature of this block survived min_df
        return [], np.zeros(0), scipy.sparse.csr_matrix((len(docs), 0))
    names = [""] * len(vec.vocabulary_)
    for feature, column in vec.vocabulary_.items():
        names[column] = feature
    return names, np.asarray(vec.idf_, dtype=np.float64), matrix


def _check_inference(model: TextClassifier, lr: Any, x: Any, check_texts: Sequence[str]) -> None:
    """Our numpy inference must give scikit-learn's decisions on (a sample of) the training
    texts: a mismatch is a bug in this module."""
    sample = min(len(check_texts), 256)
    ours = model.decision_batch(check_texts[:sample])
    theirs = lr.decision_function(x[:sample])
    gap = float(np.max(np.abs(ours - theirs)))
    if gap > 1e-6:  # pragma: no cover - a bug in this module, not a user error
        raise RuntimeError(f"inference differs from scikit-learn's by {gap}")


# --------------------------------------------------------------------------------------------
# Measuring


@dataclass(frozen=True, slots=True)
class Metrics:
    """Counts of a binary decision (positive = fraud / spam) and the usual rates."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp else 0.0

    @property
    def fpr(self) -> float:
        """Ham flagged / all ham."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    def __add__(self, other: Metrics) -> Metrics:
        return Metrics(
            self.tp + other.tp, self.fp + other.fp, self.tn + other.tn, self.fn + other.fn
        )

    def as_dict(self) -> dict[str, float | int]:
        return {
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "f1": round(self.f1, 6),
            "fpr": round(self.fpr, 6),
            "n": self.n,
            "tp": self.tp,
            "fp": self.fp,
            "tn": self.tn,
            "fn": self.fn,
        }


def confusion(labels: Sequence[bool], flags: Sequence[bool]) -> Metrics:
    if len(labels) != len(flags):
        raise ValueError(f"{len(labels)} labels but {len(flags)} decisions")
    tp = sum(1 for y, f in zip(labels, flags, strict=True) if y and f)
    fp = sum(1 for y, f in zip(labels, flags, strict=True) if not y and f)
    fn = sum(1 for y, f in zip(labels, flags, strict=True) if y and not f)
    return Metrics(tp, fp, len(labels) - tp - fp - fn, fn)


@dataclass(frozen=True, slots=True)
class CvResult:
    metrics: Metrics  # pooled over the folds
    folds: tuple[Metrics, ...]
    scores: tuple[float, ...]  # each text's p(fraud) from the model that did not see it
    seconds: float


def cv_models(
    texts: Sequence[str],
    labels: Sequence[bool],
    *,
    k: int = 5,
    seed: int = 0,
    c: float = DEFAULT_C,
    threshold: float = DEFAULT_THRESHOLD,
    groups: Sequence[str] | None = None,
) -> Iterator[tuple[TextClassifier, npt.NDArray[np.intp]]]:
    """For each of k stratified folds: (a model trained on the other folds, the fold's indices).
    `groups`: texts of one group (a template's variants, one publisher's texts) stay in one
    fold. `cross_validate` scores the classifier with them; `fraudgate eval --cv` the whole
    stack of detectors with each fold's model."""
    from sklearn.model_selection import (  # type: ignore[import-untyped, unused-ignore]
        StratifiedGroupKFold,
        StratifiedKFold,
    )

    if k < 2:
        raise ValueError(f"--cv {k}: need at least 2 folds")
    y = np.array([bool(v) for v in labels], dtype=bool)
    fewest = int(min(y.sum(), (~y).sum()))
    if fewest < k:
        raise ValueError(f"{k}-fold cross-validation needs at least {k} messages of each class")
    docs = [analyze(t) for t in texts]
    if groups is None:
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(
            np.zeros(len(y)), y
        )
    else:
        if len(groups) != len(y):
            raise ValueError(f"{len(groups)} groups but {len(y)} labels")
        splits = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(
            np.zeros(len(y)), y, groups
        )
    for train_idx, test_idx in splits:
        model = fit_analyzed(
            [docs[i] for i in train_idx],
            y[train_idx].tolist(),
            name="cv",
            c=c,
            threshold=threshold,
            check_texts=[texts[i] for i in train_idx[:64]],
        )
        yield model, test_idx


def cross_validate(
    texts: Sequence[str],
    labels: Sequence[bool],
    *,
    k: int = 5,
    seed: int = 0,
    c: float = DEFAULT_C,
    threshold: float = DEFAULT_THRESHOLD,
    groups: Sequence[str] | None = None,
) -> CvResult:
    """Stratified k-fold cross-validation: each fold is scored by a model trained on the others
    (vocabulary, idf and weights from the training folds only; the threshold is the fixed rule).

    `groups`: texts of one group (variants of one template) are kept in the same fold."""
    y = np.array([bool(v) for v in labels], dtype=bool)
    started = time.perf_counter()
    scores = np.zeros(len(texts), dtype=np.float64)
    folds: list[Metrics] = []
    for model, test_idx in cv_models(texts, labels, k=k, seed=seed, c=c, threshold=threshold,
                                     groups=groups):  # fmt: skip
        p = model.predict_batch([texts[i] for i in test_idx])
        scores[test_idx] = p
        folds.append(confusion(y[test_idx].tolist(), [v >= threshold for v in p]))
    total = folds[0]
    for fold in folds[1:]:
        total = total + fold
    return CvResult(total, tuple(folds), tuple(scores.tolist()), time.perf_counter() - started)


# --------------------------------------------------------------------------------------------
# The detector


@functools.cache
def default_model() -> TextClassifier:
    """The default model (`gateway.detect.default_corpus`: the real texts' training side, real
    messenger spam and chat, the project's templates), trained once per process (about two
    seconds; `fraudgate train --builtin` writes the same model to a file)."""
    from gateway.detect.default_corpus import default_examples, describe

    examples = default_examples()
    texts = [text for text, _, _ in examples]
    labels = [fraud for _, fraud, _ in examples]
    return train(texts, labels, name="builtin", metadata={"trained_on": describe()})


@dataclass(frozen=True, slots=True)
class _InUse:
    """The model a ClassifierDetector scores with, swapped as one object on reload."""

    model: TextClassifier
    threshold: float
    rule_id: str


def _file_stamp(path: Path) -> tuple[int, int] | None:
    """(mtime ns, size) of a file, None when it cannot be read: what tells a reload it changed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class ClassifierDetector:
    """The Detector for the text classifier: one Reason when p(fraud) >= the threshold.

    Built `from_file`, it re-reads the file on `maybe_reload_model()` (the daemon's SIGHUP)
    when its modification time or size changed, and swaps the model in one assignment: a
    message is scored wholly by the old model or wholly by the new one, and nothing else stops
    (the SMPP binds stay up)."""

    def __init__(
        self,
        model: TextClassifier,
        threshold: float | None = None,
        weight: float = 1.0,
        *,
        path: str | Path | None = None,
    ) -> None:
        self.name = "classifier"
        self._threshold = threshold  # None: each model's own
        # The finding's score is p(fraud) x weight: with weight < 1 a statistical guess alone
        # flags only when it is sure, and blocks only with a rule's or a link's evidence.
        if not 0.0 < weight <= 1.0:
            raise ValueError(f"weight {weight} must be in (0, 1]")
        self.weight = float(weight)
        self.path = Path(path) if path is not None else None
        self._stamp = _file_stamp(self.path) if self.path is not None else None
        self._in_use = self._use(model)

    def _use(self, model: TextClassifier) -> _InUse:
        threshold = model.threshold if self._threshold is None else float(self._threshold)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold {threshold} must be in (0, 1)")
        return _InUse(model, threshold, f"classifier.{model.name}")

    @property
    def model(self) -> TextClassifier:
        return self._in_use.model

    @property
    def threshold(self) -> float:
        return self._in_use.threshold

    @property
    def rule_id(self) -> str:
        return self._in_use.rule_id

    @classmethod
    def default(cls) -> ClassifierDetector:
        return cls(default_model())

    @classmethod
    def from_file(
        cls, path: str | Path, *, threshold: float | None = None, weight: float = 1.0
    ) -> ClassifierDetector:
        stamp = _file_stamp(Path(path))  # before reading: a change while it is read is seen
        detector = cls(load_model(path), threshold, weight, path=path)
        detector._stamp = stamp
        return detector

    def maybe_reload_model(self) -> bool:
        """Re-read the model file if it changed since the last attempt; True when a new model
        is in use. A broken file raises ModelError (naming the file and what is wrong) and the
        model in use stays; the same broken file is not read again until it changes."""
        if self.path is None:
            return False
        stamp = _file_stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        self._in_use = self._use(load_model(self.path))
        return True

    def inspect(self, sms: SmsEvent, now: float) -> Sequence[Reason]:
        if not sms.text.strip():
            return ()
        used = self._in_use
        return self._reasons(used, used.model.predict(sms.text))

    def inspect_batch(self, messages: Sequence[SmsEvent]) -> list[Sequence[Reason]]:
        """`inspect` for many messages at once (vectorised; the same findings)."""
        used = self._in_use
        scores = used.model.predict_batch([m.text for m in messages])
        return [
            self._reasons(used, p) if m.text.strip() else ()
            for m, p in zip(messages, scores, strict=True)
        ]

    def _reasons(self, used: _InUse, p: float) -> Sequence[Reason]:
        if p < used.threshold:
            return ()
        return (
            Reason(
                detector=self.name,
                rule_id=used.rule_id,
                score=round(p * self.weight, 4),
                description=(
                    f"text classifier {used.model.name!r}: p(fraud) {p:.2f} "
                    f">= threshold {used.threshold:.2f}"
                ),
            ),
        )
