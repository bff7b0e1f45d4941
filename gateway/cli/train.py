"""`fraudgate train` and `fraudgate eval`: the text classifier's training and measurement.

    fraudgate train --builtin --out var/builtin.npz              # the default model, as a file
    fraudgate train --corpus ../shared/datasets/uci-sms-spam/SMSSpamCollection.tsv --out uci.npz
    fraudgate train --builtin --from-db -c config/fraudgate.toml --out var/decisions.npz
    fraudgate eval --corpus ../shared/datasets/uci-sms-spam/SMSSpamCollection.tsv --cv 5
    fraudgate eval --corpus corpus.csv --model uci.npz --json
    fraudgate eval --corpus config/scenarios/demo.toml --format scenario   # the default model

`eval` reports precision, recall, F1 and the false-positive rate (ham flagged / all ham) of the
classifier on a labelled corpus: with `--cv K`, by stratified K-fold cross-validation inside the
corpus (a model trained on the other folds scores each fold; fixed seed); else with `--model`'s
model; else with the default model (trained on the project's own texts). `--json` prints one
JSON object (keys precision, recall, f1, fpr, n, and more).

`train --from-db` adds the texts analysts' decisions labelled in the gateway's database
(gateway.feedback.labels: feedback, decided complaints and detection cases, texts still
retained), counted by origin; the texts themselves are never printed or logged.

Hook for the rule detectors: `extra_detectors(args)` returns the detectors evaluated together
with the classifier (their findings combined by `gateway.domain.combine`, as the pipeline does).
It returns none today; a `--detectors` flag that builds the content / URL / sender detectors
belongs there.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from gateway.cli.evaluation import Breakdown, Row, breakdown, decide
from gateway.config import DEFAULT_CONFIG, GatewayConfig
from gateway.config_check import ConfigError
from gateway.detect.classifier import (
    DEFAULT_C,
    ClassifierDetector,
    CvResult,
    Metrics,
    ModelError,
    TextClassifier,
    confusion,
    cross_validate,
    cv_models,
    default_model,
    load_model,
    train,
)
from gateway.detect.corpus import FORMATS, CorpusError, CorpusReport, Format, read_corpus
from gateway.domain import Decision, Detector, Inspected, Reason, SmsEvent, Thresholds, combine
from gateway.store.errors import StoreError

# In a traffic scenario, the labels whose text is legitimate: grey-route OTPs are genuine
# one-time codes (the fraud is the route, which the sender / route detectors see, not the text).
SCENARIO_HAM_LABELS = frozenset({"normal", "greyroute"})
BENCH_BATCH = 64
_NONE: Mapping[str, str] = MappingProxyType({})
_ROW_FIELDS = frozenset({"source", "route", "lang", "theme", "channel", "publisher"})


@dataclass(slots=True)
class Corpus:
    texts: list[str] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)  # True: fraud / spam
    names: list[str] = field(default_factory=list)  # the label as written
    groups: list[str] = field(default_factory=list)  # built-in texts: the template's id
    sources: list[dict[str, Any]] = field(default_factory=list)
    meta: list[Mapping[str, str]] = field(default_factory=list)  # optional CSV columns

    def add(
        self, text: str, fraud: bool, name: str, group: str = "", meta: Mapping[str, str] = _NONE
    ) -> None:
        self.texts.append(text)
        self.labels.append(fraud)
        self.names.append(name)
        self.groups.append(group)
        self.meta.append(meta)

    def rows(self) -> list[Row]:
        return [
            Row(text, fraud, name, **{k: v for k, v in meta.items() if k in _ROW_FIELDS})
            for text, fraud, name, meta in zip(
                self.texts, self.labels, self.names, self.meta, strict=True
            )
        ]


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
        help="the default model's training texts (config/corpus/real-train.csv, "
        "config/corpus/tg-spam-ru/, gateway/detect/seed_texts.py)",
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
    parser.add_argument(
        "--from-db",
        action="store_true",
        help="also the texts analysts' decisions labelled in the gateway's database: feedback, "
        "decided complaints and detection cases (texts still retained; docs/classifier.md)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "-c",
        "--config",
        type=Path,
        metavar="FILE",
        help=f"--from-db: the configuration naming the database (default {DEFAULT_CONFIG})",
    )
    where.add_argument("--store", metavar="URL", help="--from-db: the database URL itself")


def configure_eval(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Measure what the gateway decides on a labelled corpus: every detector the "
        "configuration builds, combined as the pipeline combines them (--classifier-only: the "
        "text classifier alone)."
    )
    _corpus_arguments(parser, scenario=True)
    parser.add_argument("--model", metavar="MODEL", help="model file (default: the default model)")
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="the daemon's configuration whose detectors to measure (default: built-in defaults)",
    )
    parser.add_argument(
        "--classifier-only",
        action="store_true",
        help="measure the text classifier alone (p >= its threshold), not the whole stack",
    )
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


def load(args: argparse.Namespace, *, default_builtin: bool, allow_empty: bool = False) -> Corpus:
    corpus = Corpus()
    if not args.corpus and not args.builtin and not default_builtin and not allow_empty:
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
            corpus.add(ex.text, ex.fraud, ex.label, meta=ex.meta)
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
        from gateway.detect.default_corpus import default_examples, describe

        for text, fraud, group in default_examples():
            corpus.add(text, fraud, "fraud" if fraud else "ham", group)
        corpus.sources.extend(describe())
    if not corpus.texts and not allow_empty:
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
        route = "a2p" if m.source_ton == 5 else "local"
        meta = {"source": m.source, "route": route, "theme": m.stream}
        corpus.add(m.text, m.label not in SCENARIO_HAM_LABELS, m.label, meta=meta)
    corpus.sources.append({"source": path, "format": "scenario", "messages": len(messages)})


def _model_name(args: argparse.Namespace) -> str:
    if args.name:
        return str(args.name)
    if not args.corpus:
        return "decisions" if args.from_db else "builtin"
    stem = re.sub(r"[^a-z0-9._-]+", "-", Path(args.corpus[0]).stem.lower()).strip("-._")
    return stem[:64] or "model"


# --------------------------------------------------------------------------------------------
# train


def run_train(args: argparse.Namespace) -> int:
    try:
        return _train(args)
    except (UsageError, CorpusError, ModelError, ValueError, OSError, StoreError) as exc:
        print(f"fraudgate train: {exc}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    if args.format == "scenario" or any(p.lower().endswith(".toml") for p in args.corpus):
        raise UsageError("traffic scenarios are test traffic: training on them would be leakage")
    if (args.config or args.store) and not args.from_db:
        raise UsageError("-c / --store name the database of --from-db: give --from-db")
    corpus = load(args, default_builtin=not args.from_db, allow_empty=args.from_db)
    from_db = _add_decisions(args, corpus) if args.from_db else None
    if not corpus.texts:
        raise UsageError("the corpus holds no message (nothing labelled in the database yet?)")
    if from_db is not None and not args.json:
        print(_db_line(from_db))
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
        **({"from_db": from_db} if from_db is not None else {}),
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


def _add_decisions(args: argparse.Namespace, corpus: Corpus) -> dict[str, Any]:
    """The texts analysts' decisions labelled, added to `corpus`; returns what came from where
    (counts only: the texts are personal data and never printed)."""
    from gateway.feedback import template_key
    from gateway.feedback.labels import DecisionLabels, DecisionTexts
    from gateway.store import Store

    url = args.store or _database_url(args.config or DEFAULT_CONFIG)

    async def read() -> tuple[DecisionTexts, str]:
        async with await Store.open(url) as store:
            return await DecisionLabels(store).read(), store.url

    found, where = asyncio.run(read())
    for item in found.texts:
        # a template's variants stay in one cross-validation fold
        group = "db:" + template_key(item.text)[:16]
        corpus.add(item.text, item.fraud, "fraud" if item.fraud else "ham", group)
    counts = {origin: t.as_dict() for origin, t in found.tally.items()}
    corpus.sources.append({"source": "database", "store": where, **counts})
    return {"store": where, **counts}


def _database_url(config: Path) -> str:
    from gateway.config import load as load_config

    try:
        return load_config(config).database_url
    except ConfigError as exc:
        raise UsageError(f"{config}: {exc}") from None


def _db_line(found: dict[str, Any]) -> str:
    parts = []
    for origin, name in (("feedback", "feedback"), ("complaints", "complaints"),
                         ("cases", "case messages")):  # fmt: skip
        t = found[origin]
        parts.append(f"{name} {t['fraud'] + t['legitimate']} ({t['fraud']} fraud, "
                     f"{t['legitimate']} legitimate)")  # fmt: skip
    erased = sum(found[o]["erased"] for o in ("feedback", "complaints", "cases"))
    return f"from the database {found['store']}: {', '.join(parts)}; {erased} erased, not used"


def _groups(corpus: Corpus) -> list[str] | None:
    """Built-in texts are template variants: keep each template's variants in one fold; a
    corpus naming each row's publisher keeps each publisher's texts in one fold."""
    if all(corpus.groups):
        return corpus.groups
    publishers = [m.get("publisher", "") for m in corpus.meta]
    if all(publishers):
        return publishers
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
    started = time.perf_counter()
    model: TextClassifier | None = None
    result: CvResult | None = None
    found: Breakdown | None = None
    decisions: list[Decision] | None = None
    rules: list[list[str]] | None = None
    if args.classifier_only:
        scores, threshold, out, model, result = _classifier_scores(args, corpus)
        flags = [p >= threshold for p in scores]
    else:
        inspected = _stack_inspected(args, corpus)
        decisions = [i.verdict.decision for i in inspected]
        scores = [i.verdict.score for i in inspected]
        flags = [d is not Decision.ALLOW for d in decisions]
        threshold = _stack_config(args).thresholds.flag
        found = breakdown(corpus.rows(), decisions)
        out = {"mode": "cv" if args.cv else "model" if args.model else "default"}
        if args.cv:
            out |= {"k": args.cv, "seed": args.seed}
        rules = [i.verdict.rule_ids for i in inspected]
    metrics = confusion(corpus.labels, flags)
    out = {
        **metrics.as_dict(),
        **{k: v for k, v in out.items() if v is not None},
        "stack": "classifier" if args.classifier_only else "whole",
        "threshold": threshold,
        "corpus": corpus.sources,
        "by_label": _by_label(corpus, flags, decisions),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if found is not None:
        t = found.total
        out |= {"legit_blocked": t.legit_blocked, "block_rate": t.block_rate or 0.0}
        out |= found.as_dict()
    if result is not None:
        out["folds"] = [m.as_dict() for m in result.folds]
    if args.bench:
        out["bench"] = bench(model or default_model(), corpus.texts)
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return 0
    _print_report(args, corpus, out, metrics, scores, flags, rules)
    return 0


def _classifier_scores(
    args: argparse.Namespace, corpus: Corpus
) -> tuple[Sequence[float], float, dict[str, Any], TextClassifier | None, CvResult | None]:
    """The text classifier alone: scores, threshold, report keys, the model, the CV result."""
    if args.cv:
        result = cross_validate(
            corpus.texts, corpus.labels, k=args.cv, seed=args.seed, c=args.c, groups=_groups(corpus)
        )
        return result.scores, 0.5, {"mode": "cv", "k": args.cv, "seed": args.seed}, None, result
    model = load_model(args.model) if args.model else default_model()
    scores = model.predict_batch(corpus.texts)
    extra = extra_detectors(args)
    if extra:  # the hook: more detectors with the classifier (none by default)
        flags = detector_flags([ClassifierDetector(model), *extra], corpus.texts)
        scores = [1.0 if f else 0.0 for f in flags]
    out = {"mode": "model" if args.model else "default", "model": model.name}
    return scores, model.threshold, out, model, None


def _stack_config(args: argparse.Namespace) -> GatewayConfig:
    from gateway.config import load as load_config

    if not args.config:
        return GatewayConfig()
    try:
        return load_config(Path(args.config))
    except ConfigError as exc:
        raise UsageError(f"{args.config}: {exc}") from None


def _stack_inspected(args: argparse.Namespace, corpus: Corpus) -> list[Inspected]:
    """Every row inspected by the detectors the configuration builds (with each fold's model
    under --cv, else --model's or the configured one)."""
    from gateway.wiring import build_inspector

    cfg = _stack_config(args)
    rows = corpus.rows()
    if not args.cv:
        model = load_model(args.model) if args.model else None
        inspector = build_inspector(cfg, model)
        return decide(inspector.inspect, rows, _binds(inspector))
    done: dict[int, Inspected] = {}
    folds = cv_models(
        corpus.texts, corpus.labels, k=args.cv, seed=args.seed, c=args.c, groups=_groups(corpus)
    )
    for fold_model, idx in folds:
        inspector = build_inspector(cfg, fold_model)
        fold = decide(inspector.inspect, [rows[i] for i in idx], _binds(inspector))
        done.update(zip((int(i) for i in idx), fold, strict=True))
    return [done[i] for i in range(len(rows))]


def _binds(inspector: Any) -> Callable[[str], str | None] | None:
    sender = getattr(inspector, "sender", None)
    return None if sender is None else sender.contracted_bind


def _by_label(
    corpus: Corpus, flags: Sequence[bool], decisions: Sequence[Decision] | None = None
) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for i, (name, flag) in enumerate(zip(corpus.names, flags, strict=True)):
        row = table.setdefault(name, {"n": 0, "flagged": 0})
        row["n"] += 1
        row["flagged"] += int(flag)
        if decisions is not None:
            row["blocked"] = row.get("blocked", 0) + int(decisions[i] is Decision.BLOCK)
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
    rules: Sequence[list[str]] | None = None,
) -> None:
    if args.cv:
        how = f"{args.cv}-fold cross-validation (seed {args.seed})"
    elif out["stack"] == "whole":
        how = f"every detector, combined as the gateway does ({out['mode']} model)"
    else:
        how = f"model {out['model']!r} ({out['mode']})"
    print(f"{how}, flag at {out['threshold']:.2f}, {out['seconds']:.1f} s")
    print(_line(metrics))
    if "legit_blocked" in out:
        legit = metrics.fp + metrics.tn
        print(f"legitimate blocked: {out['legit_blocked']} of {legit} ({out['block_rate']:.2%})")
        for dim in ("lang", "channel", "route", "theme"):
            _print_cells(dim, out.get(f"by_{dim}", {}))
    elif len(out["by_label"]) > 2 or any(
        k not in ("ham", "spam", "fraud") for k in out["by_label"]
    ):
        for name, row in out["by_label"].items():
            print(f"  {name:<12} {row['flagged']:>6} / {row['n']:<6} flagged")
    if args.errors:
        _print_errors(args.errors, corpus, scores, flags, rules)
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


def _print_cells(dimension: str, cells: Mapping[str, Mapping[str, Any]]) -> None:
    if len(cells) < 2 and dimension != "lang":
        return
    print(f"  by {dimension}: {'':<14} fraud caught        legit flagged / blocked")
    for name, c in cells.items():
        caught = f"{c['caught']:>5} / {c['fraud']:<5} {c['recall']:>6.1%}" if c["fraud"] else ""
        legit = (
            f"{c['legit_flagged']:>5} / {c['legit_blocked']:<4} of {c['legit']:<5} "
            f"{c['flag_rate']:>6.2%}"
            if c["legit"]
            else ""
        )
        print(f"    {name[:28]:<28} {caught:<22} {legit}")


def _print_errors(
    count: int,
    corpus: Corpus,
    scores: Sequence[float],
    flags: Sequence[bool],
    rules: Sequence[list[str]] | None,
) -> None:
    rows = zip(corpus.texts, corpus.labels, scores, flags, strict=True)
    wrong = [(p, y, t, rules[i] if rules else []) for i, (t, y, p, f) in enumerate(rows) if f != y]
    wrong.sort(key=lambda w: (w[1], -w[0] if not w[1] else w[0]))
    for p, y, t, ids in wrong[:count]:
        kind = "missed fraud" if y else "false positive"
        why = f" [{', '.join(ids)}]" if ids else ""
        print(f"  {kind:<14} p={p:.2f}{why}  {t[:120]!r}")


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
