"""`fraudgate` command line. Each subcommand lives with its subsystem; this file only wires them."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# subcommand -> (module, help[, configure function, run function]). By default the module
# provides configure(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, ...]] = {
    "run": ("gateway.daemon", "run the gateway daemon (fraudgate run -c FILE)"),
    "demo": ("simulators.demo", "the gateway against a simulated SMSC, traffic and a broker"),
    "train": ("gateway.train_cli", "train the text classifier", "configure_train", "run_train"),
    "eval": ("gateway.train_cli", "evaluate the detectors on a labelled corpus",
             "configure_eval", "run_eval"),
    "smsc": ("smsc.simulator_cli", "run the simulated SMSC (SMPP 3.4 server)"),
    "modem": ("simulators.modem_cli", "run a simulated GSM probe modem on a pty or TCP port"),
    "traffic": ("simulators.traffic", "play a traffic scenario into an SMSC as an ESME"),
    "listen": ("simulators.listener", "bind to an SMSC and print every message received"),
    "bench": ("gateway.bench_cli", "benchmarks that print figures (smpp, pipeline)"),
    "cases": ("gateway.cases_cli", "list, show and decide cases (points 119-120)"),
    "registry": ("gateway.registry_cli", "subscriber registry: import, over-limit, check (R6)"),
    "lab": ("simulators.osmo.lab_cli", "the Osmocom lab: osmo-hlr + osmo-msc, virtual phones"),
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fraudgate", description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text, *funcs) in SUBCOMMANDS.items():
        configure, run = funcs or ("configure", "run")
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(_module=module, _run=run)
        getattr(importlib.import_module(module), configure)(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2) if args.verbose else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    result: int = getattr(importlib.import_module(args._module), args._run)(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
