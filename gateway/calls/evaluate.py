"""The call analyzer measured on labelled records, and its SIM-box model fitted on them.

`evaluate` plays records through a fresh analyzer and counts, against the labels: SIM-box SIMs
found and missed (precision, recall), the time from each SIM's first fraudulent call to its
finding, the false positives among the hard cases by class (call-centre employee, taxi driver,
M2M device, two phones, roamer...), and the Wangiri ranges and spoofed numbers found. `fit`
collects the features of every SIM scored and fits the logistic weights (scikit-learn) that
gateway/calls/weights.py then holds. Tuning and evaluation must use different data: another
seed and mix of the generator, or the operator's own labelled records (docs/calls.md).
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.calls.analyzer import (
    FEATURES,
    AnalyzerSettings,
    CallAnalyzer,
    CallFinding,
    FindingKind,
    SimboxModel,
)
from gateway.calls.cdr import Cdr
from gateway.calls.dedup import RecentRecords

SIMBOX_CLASSES = frozenset({"simbox", "simbox_stealth"})


@dataclass
class Truth:
    """What the records hold: each SIM's class (by MSISDN; "normal" when absent), when each
    SIM-box SIM's fraud began, the Wangiri calling numbers and the spoofed presented numbers
    with their first call."""

    classes: dict[str, str] = field(default_factory=dict)
    simbox_start: dict[str, float] = field(default_factory=dict)
    wangiri: dict[str, float] = field(default_factory=dict)
    spoofed: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Truth:
        """The labels file of simulators.cdr (docs/calls-generator.md): `classes` (MSISDN ->
        class), `simbox` (MSISDN -> {first_fraud_call, ...}), `wangiri` (number ->
        {first_ring, ...}), `spoofed_clis` (presented number -> where its subscriber is)."""
        return cls(
            classes={str(k): str(v) for k, v in doc.get("classes", {}).items()},
            simbox_start={
                str(k): float(v["first_fraud_call"])
                for k, v in doc.get("simbox", {}).items()
                if v.get("first_fraud_call") is not None
            },
            wangiri={
                str(k): float(v.get("first_ring") or 0.0) for k, v in doc.get("wangiri", {}).items()
            },
            spoofed={str(k): 0.0 for k in doc.get("spoofed_clis", {})},
        )


@dataclass
class Report:
    records: int = 0
    sims: int = 0  # SIMs the analyzer tracked
    simbox_sims: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    delays: list[float] = field(default_factory=list)  # seconds, first fraud call -> finding
    classes: Counter[str] = field(default_factory=Counter)  # SIMs per labelled class
    flagged: Counter[str] = field(default_factory=Counter)  # findings per labelled class
    wangiri_found: int = 0
    wangiri_true: int = 0
    wangiri_labelled: int = 0
    spoofed_found: int = 0
    spoofed_true: int = 0
    spoofed_labelled: int = 0
    model: str = ""

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    def as_json(self) -> dict[str, object]:
        d = sorted(self.delays)

        def q(p: float) -> float | None:
            return round(d[min(len(d) - 1, int(p * len(d)))] / 60, 1) if d else None

        hard = {c: self.flagged[c] for c in self.classes if c not in SIMBOX_CLASSES}
        return {
            "records": self.records,
            "model": self.model,
            "simbox": {
                "sims": self.simbox_sims, "found": self.tp, "false_positives": self.fp,
                "missed": self.fn, "precision": round(self.precision, 4),
                "recall": round(self.recall, 4),
                "minutes_to_alert": {
                    "median": round(statistics.median(d) / 60, 1) if d else None,
                    "p90": q(0.9), "max": round(d[-1] / 60, 1) if d else None,
                },
                "by_class": {c: {"sims": n, "flagged": self.flagged[c]}
                             for c, n in sorted(self.classes.items())},
                "false_positives_by_class": {c: n for c, n in sorted(hard.items()) if n},
            },
            "wangiri": {"labelled": self.wangiri_labelled, "found": self.wangiri_found,
                        "true": self.wangiri_true},
            "spoofed_cli": {"labelled": self.spoofed_labelled, "found": self.spoofed_found,
                            "true": self.spoofed_true},
        }  # fmt: skip


def play(
    analyzer: CallAnalyzer, records: Iterable[Cdr],
    found: Callable[[CallFinding], object] = lambda f: None,
) -> int:  # fmt: skip
    """Records through de-duplication into `analyzer` as the service feeds them (idle state
    swept every 50,000 records); each finding to `found`. Returns how many records came."""
    recent = RecentRecords()
    n = 0
    for r in records:
        n += 1
        if recent.fresh(r):
            f = analyzer.one(r)
            if f is not None:
                found(f)
        if n % 50_000 == 0:
            analyzer.expire()
    return n


def evaluate(
    records: Iterable[Cdr], truth: Truth, settings: AnalyzerSettings | None = None
) -> Report:
    analyzer = CallAnalyzer(settings)
    found: list[CallFinding] = []
    n = play(analyzer, records, found.append)
    rep = Report(records=n, sims=len(analyzer.sims), model=analyzer.s.model.source)
    for cls in truth.classes.values():
        rep.classes[cls] += 1
    rep.simbox_sims = sum(1 for c in truth.classes.values() if c in SIMBOX_CLASSES)
    named: dict[str, CallFinding] = {}
    for f in found:
        if f.kind is FindingKind.SIMBOX:
            named.setdefault(f.subject, f)
    for msisdn, f in named.items():
        cls = truth.classes.get(msisdn, "normal")
        rep.flagged[cls] += 1
        if cls in SIMBOX_CLASSES:
            rep.tp += 1
            start = truth.simbox_start.get(msisdn)
            if start is not None:
                rep.delays.append(max(0.0, f.at - start))
        else:
            rep.fp += 1
    rep.fn = rep.simbox_sims - rep.tp
    ranges = {n[:-2] + "xx" for n in truth.wangiri}
    rep.wangiri_labelled = len(ranges)
    wangiri = {f.subject for f in found if f.kind is FindingKind.WANGIRI}
    rep.wangiri_found = len(wangiri)
    rep.wangiri_true = len(wangiri & ranges)
    rep.spoofed_labelled = len(truth.spoofed)
    spoofed = {f.subject for f in found if f.kind is FindingKind.SPOOFED_CLI}
    rep.spoofed_found = len(spoofed)
    rep.spoofed_true = len(spoofed & set(truth.spoofed))
    return rep


# The direction each feature may push the score (FEATURES' order): fitted weights keep these
# signs, so the model stays what an analyst can read (calling new numbers never makes a SIM
# look more ordinary) and does not lean on an accident of the training data the other way.
SIGNS: tuple[int, ...] = (1, -1, -1, 1, 1, 1, 1, 1, 1, 1)


def fit(
    records: Iterable[Cdr], truth: Truth, settings: AnalyzerSettings | None = None,
    source: str = "", l2: float = 0.001,
) -> SimboxModel:  # fmt: skip
    """Logistic weights over FEATURES from every scoring of every SIM, positive when the SIM is
    a SIM-box SIM and its fraud had begun: class-balanced log loss with an L2 penalty, each
    weight bounded to its SIGNS direction (scipy's L-BFGS-B)."""
    import numpy as np
    from scipy.optimize import minimize  # type: ignore[import-untyped, unused-ignore]

    s = replace(settings or AnalyzerSettings(), threshold=1.0)
    analyzer = CallAnalyzer(s)
    xs: list[tuple[float, ...]] = []
    ys: list[int] = []

    def observe(msisdn: str, at: float, x: tuple[float, ...]) -> None:
        start = truth.simbox_start.get(msisdn)
        xs.append(x)
        ys.append(1 if start is not None and at >= start else 0)

    analyzer.observe = observe
    play(analyzer, records)
    pos = sum(ys)
    if pos == 0 or pos == len(ys):
        raise ValueError("fitting needs scorings of SIM-box SIMs and of other SIMs")
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    w_row = np.where(y == 1, len(y) / (2 * pos), len(y) / (2 * (len(y) - pos)))

    def loss(theta: Any) -> tuple[float, Any]:
        w, b = theta[:-1], theta[-1]
        z = x @ w + b
        p = 1 / (1 + np.exp(-np.clip(z, -40, 40)))
        eps = 1e-12
        ll = -(w_row * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))).sum() / len(y)
        g = w_row * (p - y) / len(y)
        grad = np.append(x.T @ g + l2 * w, g.sum())
        return float(ll + 0.5 * l2 * float(w @ w)), grad

    bounds = [(0.0, None) if sign > 0 else (None, 0.0) for sign in SIGNS] + [(None, None)]
    result = minimize(loss, np.zeros(len(FEATURES) + 1), jac=True, method="L-BFGS-B",
                      bounds=bounds)  # fmt: skip
    theta = result.x
    return SimboxModel(
        tuple(round(float(v), 4) for v in theta[:-1]), round(float(theta[-1]), 4),
        source or f"fitted on {len(ys)} scorings ({pos} of SIM-box SIMs)",
    )  # fmt: skip


def model_source(model: SimboxModel) -> str:
    """gateway/calls/weights.py for `model`."""
    lines = [
        '"""The SIM-box model\'s weights (FEATURES\' order in gateway/calls/analyzer.py), written',
        'by `fraudgate calls tune` (docs/calls.md)."""',
        "",
        "WEIGHTS: tuple[float, ...] = (",
        *(f"    {w!r},  # {name}" for w, name in zip(model.weights, FEATURES, strict=True)),
        ")",
        f"BIAS = {model.bias!r}",
        f"SOURCE = {json.dumps(model.source, ensure_ascii=False)}",
        "",
    ]
    return "\n".join(lines)
