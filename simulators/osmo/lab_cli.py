"""`fraudgate lab up|down|status`: the Osmocom lab for engineers (docs/lab.md).

    fraudgate lab up                 # foreground: Ctrl-C stops everything it started
    fraudgate lab up --detach        # leaves osmo-hlr / osmo-msc running; `lab down` stops them
    fraudgate lab status             # what runs (pids, ports); exit 0 only when all runs
    fraudgate lab down               # stops, by pid, what `lab up` started in the workdir
    fraudgate lab scenario           # lab + gateway inline + virtual phones: who saw what
    fraudgate lab scenario --no-gateway      # the same traffic with osmo-msc delivering alone
    fraudgate lab scenario --running         # phones on a lab (and gateway) already running

Settings come from config/lab.toml ([lab]); `--workdir`, `--smpp-first` / `--no-smpp-first`
override them. `up` provisions the scenario's phones (IMSI, MSISDN, Ki) in osmo-hlr over CTRL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
import tomllib
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway.config_check import ConfigError, Table
from simulators.osmo.lab import PROJECT_DIR, Lab, LabConfig, LabError, lab_down, lab_status

log = logging.getLogger("fraudgate.lab")
DEFAULT_CONFIG = PROJECT_DIR / "config" / "lab.toml"


@dataclass(frozen=True, slots=True)
class LabSettings:
    lab: LabConfig
    scenario: Path | None


def _path(text: str, base: Path) -> Path:
    p = Path(text)
    return p if p.is_absolute() else base / p


def load_settings(path: Path | None) -> LabSettings:
    """config/lab.toml (or `path`) -> settings; ConfigError names the key."""
    data: dict[str, object] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"{path}: {e}") from e
    root = Table(data, "")
    t = root.table("lab")
    base = PROJECT_DIR
    try:
        cfg = LabConfig(
            workdir=_path(t.get("workdir", str, "var/lab"), base),
            host=t.get("host", str, "127.0.0.1"),
            smpp_port=t.integer("smpp_port", 2775, minimum=1, maximum=65535),
            sgs_port=t.integer("sgs_port", 29118, minimum=1, maximum=65535),
            smpp_first=t.get("smpp_first", bool, True),
            esme_system_id=t.get("esme_system_id", str, "gw"),
            esme_password=t.get("esme_password", str, "secret"),
            mcc=t.get("mcc", str, "001"),
            mnc=t.get("mnc", str, "01"),
            lac=t.integer("lac", 1, minimum=1, maximum=65533),
            start_timeout=t.number("start_timeout", 10.0, minimum=1.0),
            log_level=t.get("log_level", str, "info"),
        )
    except LabError as e:
        raise ConfigError(f"lab: {e}") from e
    scenario = t.get("scenario", str, "")
    t.done()
    root.done()
    return LabSettings(cfg, _path(scenario, base) if scenario else None)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="lab settings")
    p.add_argument("--workdir", type=Path, help="override [lab] workdir")
    sub = p.add_subparsers(dest="lab_command", required=True)
    up = sub.add_parser("up", help="start osmo-hlr + osmo-msc (Ctrl-C stops them)")
    first = up.add_mutually_exclusive_group()
    first.add_argument("--smpp-first", dest="smpp_first", action="store_true", default=None)
    first.add_argument("--no-smpp-first", dest="smpp_first", action="store_false")
    up.add_argument("--detach", action="store_true", help="leave them running and return")
    up.add_argument("--scenario", type=Path, help="provision this scenario's phones")
    up.add_argument("--no-provision", action="store_true", help="start with an empty HLR")
    sub.add_parser("down", help="stop what `lab up` started (by pid)")
    sc = sub.add_parser("scenario", help="run virtual phones through the lab (and the gateway)")
    sc.add_argument("scenario", nargs="?", type=Path, help="default: [lab] scenario")
    sc.add_argument("--no-gateway", action="store_true", help="osmo-msc delivers on its own")
    sc.add_argument(
        "--running",
        action="store_true",
        help="use the lab running from the workdir (and whatever ESME is bound to it)",
    )
    sc.add_argument(
        "--gateway-config", type=Path, default=PROJECT_DIR / "config" / "lab-gateway.toml"
    )
    sub.add_parser("status", help="what runs; exit 0 only when everything runs")


def settings_from_args(args: argparse.Namespace) -> LabSettings:
    s = load_settings(args.config)
    lab = s.lab
    if args.workdir is not None:
        lab = replace(lab, workdir=args.workdir.resolve())
    if getattr(args, "smpp_first", None) is not None:
        lab = replace(lab, smpp_first=args.smpp_first)
    scenario = getattr(args, "scenario", None) or s.scenario
    return LabSettings(lab, scenario)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        if args.lab_command == "up":
            return asyncio.run(_up(settings, args))
        if args.lab_command == "scenario":
            from simulators.osmo.lab_scenario import ERRORS, run_lab_scenario

            # The gateway's start-up (migrations, bind) is not what this command shows.
            quiet_loggers = ("alembic", "fraudgate.wiring", "fraudgate.daemon",
                             "gateway.alerts.dispatcher")  # fmt: skip
            for quiet in quiet_loggers:
                logging.getLogger(quiet).setLevel(logging.WARNING)
            try:
                return asyncio.run(_until_signal(run_lab_scenario(settings, args)))
            except ERRORS as e:
                print(f"fraudgate lab scenario: {e}", file=sys.stderr)
                return 2
        if args.lab_command == "down":
            return _down(settings.lab.workdir)
        return _status(settings.lab.workdir)
    except (ConfigError, LabError) as e:
        print(f"fraudgate lab: {e}", file=sys.stderr)
        return 2


async def _until_signal(main: Coroutine[Any, Any, int]) -> int:
    """Run `main`; SIGTERM (like Ctrl-C) cancels it, so the lab it started is stopped; each
    further signal cancels again (on Python 3.11 a wait_for whose awaited thing completes at
    the same moment can swallow a cancellation, and the run then ends on its own)."""
    task = asyncio.ensure_future(main)
    signals: list[int] = []
    loop = asyncio.get_running_loop()

    def interrupt(sig: int) -> None:
        signals.append(sig)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt, sig)
    try:
        result = await task
    except asyncio.CancelledError:
        if not signals:
            raise
        result = 130
    if signals:
        print("interrupted: the lab is stopped", file=sys.stderr)
        return 130
    return result


async def _up(settings: LabSettings, args: argparse.Namespace) -> int:
    existing = lab_status(settings.lab.workdir)
    if existing is not None and any(p.alive for p in existing.processes):
        print(
            f"a lab already runs from {existing.workdir} (`fraudgate lab down` first)",
            file=sys.stderr,
        )
        return 2
    if existing is not None:  # a stale state file (the lab died): clear it
        lab_down(settings.lab.workdir)
    lab = Lab(settings.lab, detach=args.detach)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    await lab.start()
    try:
        provisioned = ""
        if settings.scenario is not None and not args.no_provision:
            provisioned = await provision_scenario(lab, settings.scenario)
        print(describe(lab, time.monotonic() - started, provisioned), flush=True)
        if args.detach:
            lab.procs.clear()  # theirs now: `lab down` stops them by pid
            return 0
        print("Ctrl-C stops the lab", flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
            lab.check_alive()
    finally:
        if lab.procs:
            await lab.stop()
            print("lab stopped: osmo-msc, osmo-hlr ended; ports free", flush=True)
    return 0


async def provision_scenario(lab: Lab, scenario: Path) -> str:
    """Provision the scenario's phones in osmo-hlr (CTRL); returns a one-line summary."""
    from gateway.osmocom.ctrl import CtrlClient
    from simulators.osmo.provision import provision
    from simulators.osmo.scenario import load_scenario

    sc = load_scenario(scenario)
    async with CtrlClient(lab.cfg.host, lab.hlr_ctrl) as ctrl:
        report = await provision(ctrl, [p.subscriber for p in sc.phones])
    return f"{len(sc.phones)} phones from {scenario.name} ({report})"


def describe(lab: Lab, took: float, provisioned: str) -> str:
    c = lab.cfg
    lines = [
        f"Osmocom lab up in {took:.1f} s (workdir {c.workdir})",
        f"  osmo-hlr  VTY {c.host}:{lab.hlr_vty}  CTRL {lab.hlr_ctrl}  GSUP {lab.hlr_gsup}",
        f"  osmo-msc  VTY {c.host}:{lab.msc_vty}  CTRL {lab.msc_ctrl}  SGs {c.sgs_port}",
        f"  SMPP      {c.host}:{c.smpp_port}  ESME {c.esme_system_id}"
        f"  smpp-first {'on' if c.smpp_first else 'off'}",
        f"  SCTP      {'shim ' + str(lab.shim) if lab.shim else 'kernel'}",
    ]
    if provisioned:
        lines.append(f"  HLR       {provisioned}")
    return "\n".join(lines)


def _down(workdir: Path) -> int:
    stopped = lab_down(workdir)
    print("stopped: " + ", ".join(stopped) if stopped else f"no lab running from {workdir}")
    return 0


def _status(workdir: Path) -> int:
    st = lab_status(workdir)
    if st is None:
        print(f"no lab started from {workdir}")
        return 3
    for p in st.processes:
        print(f"{p.name:9} pid {p.pid:<7} {'running' if p.alive else 'NOT running'}  log {p.log}")
    ports = "  ".join(f"{port}:{'up' if up else 'down'}" for port, up in sorted(st.ports.items()))
    print(f"ports     {ports}")
    return 0 if st.running and all(st.ports.values()) else 3
