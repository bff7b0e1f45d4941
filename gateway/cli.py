"""`fraudgate` command line. Each subcommand lives with its subsystem; this file only wires them."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# subcommand -> (module, help). The module provides configure(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "smsc": ("smsc.simulator_cli", "run the simulated SMSC (SMPP 3.4 server)"),
    "traffic": ("simulators.traffic", "play a traffic scenario into an SMSC as an ESME"),
    "listen": ("simulators.listener", "bind to an SMSC and print every message received"),
    "demo": ("simulators.demo", "the simulated SMSC, a traffic scenario and a printing client"),
    "bench": ("smsc.bench", "benchmarks that print figures (smpp)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fraudgate", description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(_module=module)
        importlib.import_module(module).configure(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2) if args.verbose else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    result: int = importlib.import_module(args._module).run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
