"""`fraudgate train` and `fraudgate eval`: the text classifier's training and measurement.

    fraudgate train --builtin --out var/builtin.npz              # the default model, as a file
    fraudgate train --corpus ../shared/datasets/uci-sms-spam/SMSSpamCollection.tsv --out uci.npz
    fraudgate eval --corpus ../shared/datasets/uci-sms-spam/SMSSpamCollection.tsv --cv 5
    fraudgate eval --corpus corpus.csv --model uci.npz --json
    fraudgate eval --corpus config/scenarios/demo.toml --format scenario   # the default model

`eval` reports precision, recall, F1 and the false-positive rate (ham flagged / all ham) of the
classifier on a labelled corpus: with `--cv K`, by stratified K-fold cross-validation inside the
corpus (a model trained on the other folds scores each fold; fixed seed); else with `--model`'s
model; else with the default model (trained on the project's own texts). `--json` prints one
JSON object (keys precision, recall, f1, fpr, n, and more).

Hook for the rule detectors: `extra_detectors(args)` returns the detectors evaluated together
with the classifier (their findings combined by `gateway.domain.combine`, as the pipeline does).
It returns none today; a `--detectors` flag that builds the content / URL / sender detectors
belongs there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from gateway.detect.classifier import (
    DEFAULT_C,
    ClassifierDetector,
    Metrics,
    ModelError,
    TextClassifier,
    confusion,
    cross_validate,
    default_model,
    load_model,
    train,
)
from gateway.detect.corpus import FORMATS, CorpusError, CorpusReport, Format, read_corpus
from gateway.domain import Decision, Detector, Reason, SmsEvent, Thresholds, combine

# In a traffic scenario, the labels whose text is legitimate: grey-route OTPs are genuine
# one-time codes (the fraud is the route, which the sender / route detectors see, not the text).
SCENARIO_HAM_LABELS = frozenset({"normal", "greyroute"})
BENCH_BATCH = 64


@dataclass(slots=True)
class Corpus:
    texts: list[str] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)  # True: fraud / spam
    names: list[str] = field(default_factory=list)  # the label as written
    groups: list[str] = field(default_factory=list)  # built-in texts: the template's id
    sources: list[dict[str, Any]] = field(default_factory=list)

    def add(self, text: str, fraud: bool, name: str, group: str = "") -> None:
        self.texts.append(text)
        self.labels.append(fraud)
        self.names.append(name)
        self.groups.append(group)


class UsageError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Arguments


def _corpus_arguments(parser: argparse.ArgumentParser, *, scenario: bool) -> None:
    formats = [*FORMATS, "scenario"] if scenario else list(FORMATS)
    parser.add_argument(
        "--corpus",
        action="append",
        default=[],
        metavar="PATH",
        help="labelled corpus file (repeatable); `ham` = legitimate, any other label = fraud",
    )
    parser.add_argument(
        "--format",
        choices=formats,
        help="corpus format (default: csv for *.csv, scenario for *.toml, else uci)",
    )
    parser.add_argument(
        "--builtin",
        action="store_true",
        help="the project's own training texts (gateway/detect/seed_texts.py)",
    )
    parser.add_argument(
        "--skip-malformed",
        action="store_true",
        help="skip malformed rows (counted on stderr) instead of stopping at the first",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def configure_train(parser: argparse.ArgumentParser) -> None:
    parser.description = "Train the text classifier and write a model file (not a pickle)."
    _corpus_arguments(parser, scenario=False)
    parser.add_argument("--out", required=True, metavar="MODEL", help="model file to write")
    parser.add_argument(
        "--name", help="model name, used in rule ids classifier.NAME (default: from the corpus)"
    )
    parser.add_argument(
        "--cv",
        type=int,
        default=0,
        metavar="K",
        help="also measure by K-fold cross-validation and record it in the model's metadata",
    )
    parser.add_argument("--seed", type=int, default=0, help="cross-validation seed (default 0)")
    parser.add_argument(
        "--c", type=float, default=DEFAULT_C, help=f"inverse regularisation (default {DEFAULT_C})"
    )


def configure_eval(parser: argparse.ArgumentParser) -> None:
    parser.description = "Measure the text classifier on a labelled corpus."
    _corpus_arguments(parser, scenario=True)
    parser.add_argument("--model", metavar="MODEL", help="model file (default: the default model)")
    parser.add_argument(
        "--cv", type=int, default=0, metavar="K", help="stratified K-fold cross-validation"
    )
    parser.add_argument("--seed", type=int, default=0, help="cross-validation seed (default 0)")
    parser.add_argument(
        "--c", type=float, default=DEFAULT_C, help=f"inverse regularisation (default {DEFAULT_C})"
    )
    parser.add_argument("--errors", type=int, default=0, metavar="N", help="show N mistakes")
    parser.add_argument(
        "--bench",
        action="store_true",
        help="also time inference on the corpus: one message at a time and in batches of 64",
    )


# --------------------------------------------------------------------------------------------
# Corpora


def _format_of(path: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    if path.lower().endswith(".toml"):
        return "scenario"
    return "csv" if path.lower().endswith(".csv") else "uci"


def load(args: argparse.Namespace, *, default_builtin: bool) -> Corpus:
    corpus = Corpus()
    if not args.corpus and not args.builtin and not default_builtin:
        raise UsageError("give --corpus PATH (or --builtin)")
    for path in args.corpus:
        fmt = _format_of(path, args.format)
        if fmt == "scenario":
            _load_scenario(path, corpus)
            continue
        report = CorpusReport()
        before = len(corpus.texts)
        examples = read_corpus(
            path, cast(Format, fmt), strict=not args.skip_malformed, report=report
        )
        for ex in examples:
            corpus.add(ex.text, ex.fraud, ex.label)
        if report.skipped:
            print(f"fraudgate: {report.summary(path)}", file=sys.stderr)
        added = corpus.labels[before:]
        corpus.sources.append(
            {
                "source": path,
                "format": fmt,
                "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
                "ham": added.count(False),
                "fraud": added.count(True),
            }
        )
    if args.builtin or (default_builtin and not args.corpus):
        from gateway.detect.seed_texts import builtin_examples, describe

        for text, fraud, group in builtin_examples():
            corpus.add(text, fraud, "fraud" if fraud else "ham", group)
        corpus.sources.append(describe())
    if not corpus.texts:
        raise UsageError("the corpus holds no message")
    return corpus


def _load_scenario(path: str, corpus: Corpus) -> None:
    from simulators.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(path)
    except (ScenarioError, OSError) as exc:
        raise UsageError(str(exc)) from None
    messages = scenario.messages()  # one pass, the file's seed
    for m in messages:
        corpus.add(m.text, m.label not in SCENARIO_HAM_LABELS, m.label)
    corpus.sources.append({"source": path, "format": "scenario", "messages": len(messages)})


def _model_name(args: argparse.Namespace) -> str:
    if args.name:
        return str(args.name)
    if not args.corpus:
        return "builtin"
    stem = re.sub(r"[^a-z0-9._-]+", "-", Path(args.corpus[0]).stem.lower()).strip("-._")
    return stem[:64] or "model"


# --------------------------------------------------------------------------------------------
# train


def run_train(args: argparse.Namespace) -> int:
    try:
        return _train(args)
    except (UsageError, CorpusError, ModelError, ValueError, OSError) as exc:
        print(f"fraudgate train: {exc}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    if args.format == "scenario" or any(p.lower().endswith(".toml") for p in args.corpus):
        raise UsageError("traffic scenarios are test traffic: training on them would be leakage")
    corpus = load(args, default_builtin=True)
    metadata: dict[str, Any] = {"trained_on": corpus.sources}
    if args.cv:
        result = cross_validate(
            corpus.texts,
            corpus.labels,
            k=args.cv,
            seed=args.seed,
            c=args.c,
            groups=_groups(corpus),
        )
        metadata["metrics"] = {
            "cv": {"k": args.cv, "seed": args.seed, **result.metrics.as_dict()},
        }
    started = time.perf_counter()
    model = train(corpus.texts, corpus.labels, name=_model_name(args), c=args.c, metadata=metadata)
    seconds = time.perf_counter() - started
    model.save(args.out)
    summary = {
        "model": model.name,
        "out": args.out,
        "features": model.size,
        "ham": corpus.labels.count(False),
        "fraud": corpus.labels.count(True),
        "seconds": round(seconds, 3),
        "bytes": Path(args.out).stat().st_size,
        **({"cv": metadata["metrics"]["cv"]} if args.cv else {}),
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    print(
        f"trained {model.name!r} on {len(corpus.texts)} messages ({summary['fraud']} fraud) in "
        f"{seconds:.1f} s: {model.size} features; wrote {args.out} ({summary['bytes']} bytes)"
    )
    if args.cv:
        print(f"{args.cv}-fold cross-validation: {_line(result.metrics)}")
    return 0


def _groups(corpus: Corpus) -> list[str] | None:
    """Built-in texts are template variants: keep each template's variants in one fold."""
    if all(corpus.groups):
        return corpus.groups
    return None


# --------------------------------------------------------------------------------------------
# eval


def extra_detectors(args: argparse.Namespace) -> list[Detector]:
    """The detectors evaluated together with the classifier: none yet (see the docstring)."""
    return []


def detector_flags(
    detectors: Sequence[Detector], texts: Sequence[str], thresholds: Thresholds | None = None
) -> list[bool]:
    """Whether the pipeline's combination of the detectors' findings flags each text (FLAG or
    BLOCK). Each text is inspected as an SMS from an unknown sender on an unknown route."""
    thresholds = thresholds or Thresholds()
    flags: list[bool] = []
    for i, text in enumerate(texts):
        sms = SmsEvent(source="", dest="", text=text, id=str(i))
        reasons: list[Reason] = []
        for detector in detectors:
            reasons.extend(detector.inspect(sms, 0.0))
        flags.append(combine(reasons, thresholds).decision is not Decision.ALLOW)
    return flags


def run_eval(args: argparse.Namespace) -> int:
    try:
        return _eval(args)
    except (UsageError, CorpusError, ModelError, ValueError, OSError) as exc:
        print(f"fraudgate eval: {exc}", file=sys.stderr)
        return 2


def _eval(args: argparse.Namespace) -> int:
    corpus = load(args, default_builtin=False)
    if args.cv and args.model:
        raise UsageError("--cv trains its own models: give --cv or --model, not both")
    out: dict[str, Any]
    scores: Sequence[float]
    started = time.perf_counter()
    model: TextClassifier | None = None
    if args.cv:
        result = cross_validate(
            corpus.texts, corpus.labels, k=args.cv, seed=args.seed, c=args.c, groups=_groups(corpus)
        )
        metrics, scores = result.metrics, result.scores
        threshold = 0.5
        flags = [p >= threshold for p in scores]
        out = {"mode": "cv", "k": args.cv, "seed": args.seed}
    else:
        model = load_model(args.model) if args.model else default_model()
        threshold = model.threshold
        scores = model.predict_batch(corpus.texts)
        flags = [p >= threshold for p in scores]
        extra = extra_detectors(args)
        if extra:
            flags = detector_flags([ClassifierDetector(model), *extra], corpus.texts)
        metrics = confusion(corpus.labels, flags)
        out = {"mode": "model" if args.model else "default", "model": model.name}
    out = {
        **metrics.as_dict(),
        **out,
        "threshold": threshold,
        "corpus": corpus.sources,
        "by_label": _by_label(corpus, flags),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if args.cv:
        out["folds"] = [m.as_dict() for m in result.folds]
    if args.bench:
        out["bench"] = bench(model or default_model(), corpus.texts)
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return 0
    _print_report(args, corpus, out, metrics, scores, flags)
    return 0


def _by_label(corpus: Corpus, flags: Sequence[bool]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for name, flag in zip(corpus.names, flags, strict=True):
        row = table.setdefault(name, {"n": 0, "flagged": 0})
        row["n"] += 1
        row["flagged"] += int(flag)
    return dict(sorted(table.items()))


def _line(m: Metrics) -> str:
    return (
        f"precision {m.precision:.4f}  recall {m.recall:.4f}  F1 {m.f1:.4f}  "
        f"FPR {m.fpr:.4%}  (n {m.n}: tp {m.tp}, fp {m.fp}, tn {m.tn}, fn {m.fn})"
    )


def _print_report(
    args: argparse.Namespace,
    corpus: Corpus,
    out: dict[str, Any],
    metrics: Metrics,
    scores: Sequence[float],
    flags: Sequence[bool],
) -> None:
    how = (
        f"{args.cv}-fold cross-validation (seed {args.seed})"
        if args.cv
        else f"model {out['model']!r} ({out['mode']})"
    )
    print(f"{how}, threshold {out['threshold']:.2f}, {out['seconds']:.1f} s")
    print(_line(metrics))
    if len(out["by_label"]) > 2 or any(k not in ("ham", "spam", "fraud") for k in out["by_label"]):
        for name, row in out["by_label"].items():
            print(f"  {name:<12} {row['flagged']:>6} / {row['n']:<6} flagged")
    if args.errors:
        wrong = [
            (p, y, t)
            for t, y, p, f in zip(corpus.texts, corpus.labels, scores, flags, strict=True)
            if f != y
        ]
        wrong.sort(key=lambda w: (w[1], -w[0] if not w[1] else w[0]))
        for p, y, t in wrong[: args.errors]:
            kind = "missed fraud" if y else "false positive"
            print(f"  {kind:<14} p={p:.2f}  {t[:120]!r}")
    if "bench" in out:
        b = out["bench"]
        print(
            f"inference ({b['messages']} messages, word cache warm, score memo off): "
            f"{b['single_us']:.1f} µs/message one at a time, {b['batch_us']:.1f} µs/message "
            f"in batches of {b['batch']} ({b['cold_batch_us']:.1f} with the word cache cold); "
            f"scikit-learn transform + decision_function: {b['sklearn_single_us']:.1f} / "
            f"{b['sklearn_batch_us']:.1f}"
        )
        print(
            f"one pass one at a time from empty caches with the score memo on (repeated texts "
            f"are remembered): {b['memo_single_us']:.1f} µs/message"
        )


# --------------------------------------------------------------------------------------------
# bench


def bench(model: TextClassifier, texts: Sequence[str], repeat: int = 3) -> dict[str, Any]:
    """µs per message: this module's inference one at a time and in batches of BENCH_BATCH,
    and scikit-learn's transform + decision_function with the same vocabulary and weights.
    Best of `repeat` runs after a first, cold run (then the word cache is warm; the score memo
    is off, so every message is scored). Also one pass from empty caches with the memo on, as a
    fresh stream of this corpus would see it."""
    memo = model.memo_size
    model.memo_size = 0
    try:
        model.forget()
        started = time.perf_counter()
        _batches(model.predict_batch, texts)
        cold = time.perf_counter() - started
        single = _best(lambda: [model.predict(t) for t in texts], repeat)
        batched = _best(lambda: _batches(model.predict_batch, texts), repeat)
    finally:
        model.memo_size = memo
    model.forget()  # a fresh stream: caches empty, the score memo on
    started = time.perf_counter()
    for t in texts:
        model.predict(t)
    memo_single = time.perf_counter() - started
    reference = _sklearn_reference(model)
    sk_single = _best(lambda: [reference([t]) for t in texts], 1)
    sk_batched = _best(lambda: _batches(reference, texts), repeat)
    n = max(len(texts), 1)
    return {
        "messages": len(texts),
        "batch": BENCH_BATCH,
        "cold_batch_us": round(cold / n * 1e6, 2),
        "single_us": round(single / n * 1e6, 2),
        "batch_us": round(batched / n * 1e6, 2),
        "memo_single_us": round(memo_single / n * 1e6, 2),
        "sklearn_single_us": round(sk_single / n * 1e6, 2),
        "sklearn_batch_us": round(sk_batched / n * 1e6, 2),
    }


def _batches(fn: Callable[[Sequence[str]], object], texts: Sequence[str]) -> None:
    for start in range(0, len(texts), BENCH_BATCH):
        fn(texts[start : start + BENCH_BATCH])


def _best(fn: Callable[[], object], repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _sklearn_reference(model: TextClassifier) -> Callable[[Sequence[str]], Any]:
    """scikit-learn doing the same inference (for the benchmark)."""
    import operator

    import numpy as np
    import scipy.sparse  # type: ignore[import-untyped, unused-ignore]
    from sklearn.feature_extraction.text import (  # type: ignore[import-untyped, unused-ignore]
        TfidfVectorizer,
    )

    from gateway.detect.classifier import analyze

    n_char = len(model.char_features)
    vectorizers = []
    for block, features, idf in (
        (0, model.char_features, model.idf[:n_char]),
        (1, model.word_features, model.idf[n_char:]),
    ):
        vec = TfidfVectorizer(
            analyzer=operator.itemgetter(block),
            vocabulary={f: i for i, f in enumerate(features)},
            sublinear_tf=True,
            dtype=np.float64,
        )
        vec.idf_ = idf
        vectorizers.append(vec)
    coef, intercept = model.coef, model.intercept

    def decide(texts: Sequence[str]) -> Any:
        docs = [analyze(t) for t in texts]
        x = scipy.sparse.hstack([v.transform(docs) for v in vectorizers]).tocsr()
        return x @ coef + intercept

    return decide
