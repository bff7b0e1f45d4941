"""`fraudgate` command line. Each subcommand lives with its subsystem; this file only wires them."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from importlib import metadata

# subcommand -> (module, help[, configure function, run function]). By default the module
# provides configure(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, ...]] = {
    "run": ("gateway.daemon", "run the gateway daemon (fraudgate run -c FILE)"),
    "demo": ("simulators.demo", "the gateway against a simulated SMSC, traffic and a broker"),
    "train": ("gateway.cli.train", "train the text classifier", "configure_train", "run_train"),
    "eval": ("gateway.cli.train", "evaluate the detectors on a labelled corpus",
             "configure_eval", "run_eval"),
    "smsc": ("simulators.smsc_cli", "run the simulated SMSC (SMPP 3.4 server)"),
    "modem": ("simulators.modem_cli", "run a simulated GSM probe modem on a pty or TCP port"),
    "traffic": ("simulators.traffic", "play a traffic scenario into an SMSC as an ESME"),
    "listen": ("simulators.listener", "bind to an SMSC and print every message received"),
    "bench": ("gateway.cli.bench", "benchmarks that print figures (smpp, pipeline)"),
    "cases": ("gateway.cli.cases", "list, show and decide cases (points 119-120)"),
    "console": ("gateway.cli.console", "the analysts' web console alone, over the database"),
    "centre": ("gateway.cli.centre", "reports to the anti-fraud centre: list, resend, dismiss"),
    "registry": ("gateway.cli.registry", "subscriber registry: import, over-limit, check (R6)"),
    "calls": ("gateway.cli.calls", "call records: check files, evaluate and tune the analyzer"),
    "retention": ("gateway.cli.retention", "erase personal data past its period (--dry-run)"),
    "lab": ("simulators.osmo.lab_cli", "the Osmocom lab: osmo-hlr + osmo-msc, virtual phones"),
}  # fmt: skip


# Libraries that log SQL with its parameters (IINs, names: personal data, R7) or every driver
# call at INFO / DEBUG. They stay at WARNING whatever -v says; --debug-logger asks for one.
QUIET_LOGGERS = ("sqlalchemy", "aiosqlite", "asyncpg")
# Libraries whose INFO is noise on every command (Alembic names each migration it checks): at
# WARNING unless -v.
CHATTY_LOGGERS = ("alembic",)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")  # --log-format; json: gateway.logformat
# Global options that take a value (the next word is not the subcommand).
VALUE_OPTIONS = frozenset({"--debug-logger", "--log-format"})


def version() -> str:
    try:
        return metadata.version("fraudgate")
    except metadata.PackageNotFoundError:  # run from a tree that is not installed
        return "unknown"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, just that subcommand's options are built (the
    others keep their name and help): its module alone is imported, so `fraudgate cases list`
    does not load the classifier's numpy or every simulator first."""
    parser = argparse.ArgumentParser(prog="fraudgate", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fraudgate {version()}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more logging (-v: libraries' INFO such as Alembic's migrations; -vv: debug). The "
        "database libraries (sqlalchemy, aiosqlite, asyncpg) stay at WARNING: they log SQL "
        "parameters, IINs and names in clear",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text (default): one line per record; json: one JSON object per line with the "
        "fields ts, level, logger, message and exc_info (docs/operations.md), for the journal "
        "and log shippers. The same loggers are quiet in both",
    )
    parser.add_argument(
        "--debug-logger",
        action="append",
        default=[],
        metavar="NAME",
        help="debug logging for the logger NAME and its children, quiet ones included "
        "(e.g. sqlalchemy.engine: every SQL statement with its parameters, personal data in "
        "clear); repeatable",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text, *funcs) in SUBCOMMANDS.items():
        configure, run = funcs or ("configure", "run")
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(_module=module, _run=run)
        if only is None or name == only:
            getattr(importlib.import_module(module), configure)(p)
    return parser


def subcommand_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in `argv` (the first word that is not an option or its value)."""
    words = iter(argv)
    for word in words:
        if word in VALUE_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word if word in SUBCOMMANDS else None
    return None


def setup_logging(
    verbose: int, debug_loggers: Sequence[str] = (), log_format: str = "text"
) -> None:
    """Log to stderr at INFO (-vv: DEBUG), CHATTY_LOGGERS at WARNING unless -v, QUIET_LOGGERS
    at WARNING unless named in `debug_loggers`, which log at DEBUG whatever `verbose` says.
    `log_format` "json" writes one JSON object per record (gateway.logformat); the levels are
    the same whatever the format."""
    level = logging.WARNING - 10 * min(verbose, 2) if verbose else logging.INFO
    if log_format == "json":
        from gateway.logformat import GatewayJsonFormatter  # only when asked for

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(GatewayJsonFormatter())
        logging.basicConfig(level=level, handlers=[handler])
    else:
        logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr)
    for name in QUIET_LOGGERS + (() if verbose else CHATTY_LOGGERS):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in debug_loggers:
        logging.getLogger(name).setLevel(logging.DEBUG)


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(only=subcommand_of(words) or "").parse_args(words)
    setup_logging(args.verbose, args.debug_logger, args.log_format)
    result: int = getattr(importlib.import_module(args._module), args._run)(args)
    return result
