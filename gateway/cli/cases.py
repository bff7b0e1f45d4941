"""`fraudgate cases list|show|verify|confirm|reject|unblock`: the analyst's commands over Cases.

The database comes from the configuration (-c, like `fraudgate run`). Numbers are printed
masked (R7); the subscriber's name and IIN are never printed. The switch (for confirm, which
suspends at once, and unblock) is the configuration's [switch] (docs/switch.md), or an HTTP
switch given as --switch-url with the configuration's switch token ([switch] token, or
FRAUDGATE_SWITCH__TOKEN as for the daemon); with none configured, a confirmed case waits with
its block actions pending for the daemon's retry_pending().
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from gateway.alerts.payloads import iso_utc, mask_msisdn
from gateway.cases import Actor, CaseError, CaseFilter, Cases, CaseView, State
from gateway.config import DEFAULT_CONFIG, load
from gateway.config_check import ConfigError
from gateway.store import Store, StoreError
from gateway.switch.config import SwitchSettings, open_switch
from gateway.workdays import KzCalendar


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="TOML file")
    p.add_argument(
        "--switch-url",
        default="",
        help="an HTTP switch API instead of the config's [switch]; its token is the config's "
        "switch token ([switch] token or FRAUDGATE_SWITCH__TOKEN)",
    )
    p.add_argument("--operator", default=os.environ.get("FRAUDGATE_OPERATOR", "operator"))
    sub = p.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="cases, newest first")
    ls.add_argument("--state", action="append", choices=[s.value for s in State], default=[])
    ls.add_argument("--limit", type=int, default=50)
    sub.add_parser("show", help="one case with its history").add_argument("case_id")
    helps = {
        "verify": "start verifying a new or reopened case (point 119)",
        "confirm": "confirm a case being verified: its numbers are suspended (point 120)",
        "reject": "reject a case being verified (not confirmed)",
        "unblock": "lift a suspension",
    }
    for name, text in helps.items():
        q = sub.add_parser(name, help=text)
        q.add_argument("case_id")
        q.add_argument("--actor", required=True, help="your user id")
        q.add_argument("--role", default="analyst")
        q.add_argument("--reason", required=True)


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load(args.config)
    except ConfigError as exc:
        print(f"fraudgate cases: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        settings = switch_settings(cfg.switch, args.switch_url)
        return asyncio.run(_main(args, cfg.database_url, settings))
    except (StoreError, CaseError, ValueError) as exc:
        print(f"fraudgate cases: {exc}", file=sys.stderr)
        return 1


def switch_settings(configured: SwitchSettings, switch_url: str) -> SwitchSettings:
    """The configured switch, or an HTTP switch at `switch_url` with the configured token: one
    variable, FRAUDGATE_SWITCH__TOKEN, holds the switch token for the daemon and this command."""
    if not switch_url:
        return configured
    return SwitchSettings.http(switch_url, configured.token, configured.timeout)


async def _main(args: argparse.Namespace, url: str, settings: SwitchSettings) -> int:
    from gateway.centre import CentreOutbox
    from gateway.registry import Registry

    async with await Store.open(url) as store, open_switch(settings) as switch:
        await store.migrate()
        cases = Cases(
            store,
            KzCalendar(),
            switch=switch,
            registry=Registry(store),
            reports=CentreOutbox(args.operator),
        )
        return await _act(cases, args)


async def _act(cases: Cases, args: argparse.Namespace) -> int:
    if args.action == "list":
        states = [State(s) for s in args.state]
        for case in await cases.list(CaseFilter(states=states, limit=args.limit)):
            print(_line(case))
        return 0
    if args.action == "show":
        _show(await cases.get(args.case_id))
        return 0
    actor = Actor(args.actor, args.role)
    op = {
        "verify": cases.start_verification,
        "confirm": cases.confirm,
        "reject": cases.reject,
        "unblock": cases.unblock,
    }
    case = await op[args.action](args.case_id, actor, args.reason)
    _show(case)
    return 0


def _line(case: CaseView) -> str:
    numbers = ",".join(mask_msisdn(n) for n in case.numbers)
    due = case.deadline()
    deadline = f"{due[0]} {iso_utc(due[1])}" if due else "-"
    return f"{case.id}  {case.state.value:<13} {case.source.value:<16} {numbers}  {deadline}"


def _show(case: CaseView) -> None:
    print(_line(case))
    print(f"  received {iso_utc(case.received_at)}  verify_by {iso_utc(case.verify_by)}")
    if case.act_by is not None:
        print(f"  act_by {iso_utc(case.act_by)}  external_id {case.external_id or '-'}")
    for t in case.transitions:
        was = t.from_state.value if t.from_state else "-"
        print(f"  {iso_utc(t.at)} {t.actor} ({t.role}) {t.action}: {was} -> {t.to_state.value}")
        if t.reason:
            print(f"      {t.reason}")
    for e in case.evidence:
        print(f"  evidence {e['kind']} {e['ref']}")
    for a in case.switch_actions:
        error = f" [{a.error_kind}]" if a.error_kind else ""
        print(f"  switch {a.action} {mask_msisdn(a.msisdn)}: {a.status}{error}")
