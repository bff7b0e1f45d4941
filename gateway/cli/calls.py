"""`fraudgate calls check|eval|tune`: call records (CDRs) from the command line (docs/calls.md).

fraudgate calls check FILE...  [--mapping M]             what a file holds, its bad rows
fraudgate calls eval --cdr FILE --labels labels.json     the analyzer measured on labels
fraudgate calls tune --cdr FILE --labels labels.json [--write]   fit the SIM-box weights
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from gateway.calls.cdr import Cdr, CdrError

WEIGHTS_FILE = Path(__file__).resolve().parent.parent / "calls" / "weights.py"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="read CDR files: records, bad rows (file and line)")
    check.add_argument("files", nargs="+", type=Path)
    check.add_argument("--mapping", type=Path, help="the operator's mapping file")
    check.add_argument("--show", type=int, default=10, help="bad rows to print per file")
    actions = (
        ("eval", "measure the analyzer on labelled records"),
        ("tune", "fit the SIM-box model's weights on labelled records"),
    )
    for name, text in actions:
        p = sub.add_parser(name, help=text)
        p.add_argument("--cdr", type=Path, required=True, nargs="+", help="CDR file(s)")
        p.add_argument("--labels", type=Path, required=True, help="labels.json (simulators.cdr)")
        p.add_argument("--mapping", type=Path)
        if name == "eval":
            p.add_argument("--threshold", type=float, help="instead of the configured 0.8")
            p.add_argument("--json", action="store_true")
        else:
            p.add_argument("--write", action="store_true", help=f"write {WEIGHTS_FILE.name}")
            p.add_argument("--source", default="", help="what the weights were fitted on")


def run(args: argparse.Namespace) -> int:
    from gateway.calls.reader import CdrFileError, Mapping, MappingError

    try:
        mapping = Mapping.load(args.mapping) if args.mapping else Mapping()
    except MappingError as e:
        print(f"fraudgate calls: {e}", file=sys.stderr)
        return 2
    try:
        if args.action == "check":
            return _check(args.files, mapping, args.show)
        if args.action == "eval":
            return _eval(args, mapping)
        return _tune(args, mapping)
    except CdrFileError as e:
        print(f"fraudgate calls: {e}", file=sys.stderr)
        return 1


def _records(files: list[Path], mapping: object, bad: Counter[str] | None = None) -> Iterator[Cdr]:
    from gateway.calls.reader import Mapping, read_records

    assert isinstance(mapping, Mapping)
    for path in files:
        for _, r in read_records(path, mapping):
            if isinstance(r, CdrError):
                if bad is not None:
                    bad[str(path)] += 1
                continue
            yield r


def _check(files: list[Path], mapping: object, show: int) -> int:
    from gateway.calls.reader import CdrFileError, Mapping, read_records

    assert isinstance(mapping, Mapping)
    failed = 0
    for path in files:
        kinds: Counter[str] = Counter()
        bad = 0
        try:
            for _, r in read_records(path, mapping):
                if isinstance(r, CdrError):
                    bad += 1
                    if bad <= show:
                        print(f"  bad row: {r}")
                else:
                    kinds[r.record_type.value] += 1
        except CdrFileError as e:
            failed += 1
            print(f"  {e}")
        total = sum(kinds.values())
        by_type = ", ".join(f"{k} {n:,}" for k, n in sorted(kinds.items()))
        print(f"{path}: {total:,} records ({by_type or 'none'}), {bad:,} bad rows")
    return 1 if failed else 0


def _eval(args: argparse.Namespace, mapping: object) -> int:
    from gateway.calls.analyzer import AnalyzerSettings
    from gateway.calls.evaluate import Truth, evaluate

    truth = Truth.from_json(json.loads(args.labels.read_text(encoding="utf-8")))
    settings = AnalyzerSettings()
    if args.threshold is not None:
        settings = replace(settings, threshold=args.threshold)
    bad: Counter[str] = Counter()
    report = evaluate(_records(args.cdr, mapping, bad), truth, settings).as_json()
    report["bad_rows"] = sum(bad.values())
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    s = report["simbox"]
    assert isinstance(s, dict)
    t = s["minutes_to_alert"]
    print(f"{report['records']:,} records, model: {report['model']}")
    print(f"SIM-box SIMs: {s['sims']}, found {s['found']}, missed {s['missed']}, false "
          f"positives {s['false_positives']}: precision {s['precision']:.3f}, recall "
          f"{s['recall']:.3f}")  # fmt: skip
    print(f"minutes from a SIM's first fraudulent call to its finding: median {t['median']}, "
          f"p90 {t['p90']}, max {t['max']}")  # fmt: skip
    for cls, row in s["by_class"].items():
        print(f"  {cls:<15} {row['sims']:>6} SIMs, {row['flagged']:>4} flagged")
    for kind in ("wangiri", "spoofed_cli"):
        k = report[kind]
        assert isinstance(k, dict)
        print(f"{kind}: labelled {k['labelled']}, found {k['found']}, of them true {k['true']}")
    return 0


def _tune(args: argparse.Namespace, mapping: object) -> int:
    from gateway.calls.evaluate import Truth, fit, model_source

    truth = Truth.from_json(json.loads(args.labels.read_text(encoding="utf-8")))
    model = fit(_records(args.cdr, mapping), truth, source=args.source)
    text = model_source(model)
    if args.write:
        WEIGHTS_FILE.write_text(text, encoding="utf-8")
        print(f"written {WEIGHTS_FILE}")
    print(text)
    return 0
