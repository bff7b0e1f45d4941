"""`fraudgate cases list|show|deadlines|verify|confirm|reject|close|reopen|unblock`: the
analyst's commands over Cases, built from the configuration as the daemon builds them ([cases]
calendar days, policy and reminders; [centre] operator).

The database comes from the configuration (-c, like `fraudgate run`). Numbers are printed
masked (R7); the subscriber's name and IIN are never printed. The switch (for confirm, which
suspends at once, and unblock) is the configuration's [switch] (docs/switch.md), or an HTTP
switch given as --switch-url with the configuration's switch token ([switch] token, or
FRAUDGATE_SWITCH__TOKEN as for the daemon); with none configured, a confirmed case waits with
its block actions pending for the daemon's retry_pending().

A decision (verify, confirm, reject, unblock) is made by a known caller, resolved by
gateway.cli.identity (an API token, or the OS user mapped in [cli.users]), with the API's
permission for it, and is recorded in api_audit as the API records it (docs/cases.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from gateway.alerts.payloads import iso_utc, mask_msisdn
from gateway.api.auth import Permission
from gateway.cases import Actor, CaseError, CaseFilter, Cases, CaseView, State
from gateway.cases.model import FLAGS
from gateway.cli.identity import Caller, CallerError, add_identity_arguments, resolve_caller
from gateway.config import DEFAULT_CONFIG, GatewayConfig, load
from gateway.config_check import ConfigError
from gateway.iin import screen_field
from gateway.store import Store, StoreError
from gateway.switch.config import SwitchSettings, open_switch


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="TOML file")
    p.add_argument(
        "--switch-url",
        default="",
        help="an HTTP switch API instead of the config's [switch]; its token is the config's "
        "switch token ([switch] token or FRAUDGATE_SWITCH__TOKEN)",
    )
    sub = p.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="cases, newest first")
    ls.add_argument("--state", action="append", choices=[s.value for s in State], default=[])
    ls.add_argument("--limit", type=int, default=50)
    sub.add_parser("show", help="one case with its history").add_argument("case_id")
    dl = sub.add_parser(
        "deadlines", aliases=["overdue"], help="cases overdue or due by the next working day"
    )
    dl.add_argument("--json", action="store_true")
    helps = {
        "verify": "start verifying a new or reopened case (point 119)",
        "confirm": "confirm a case being verified: its numbers are suspended (point 120)",
        "reject": "reject a case being verified (not confirmed)",
        "close": "close a case that owes nothing more",
        "reopen": "reopen a closed case (an appeal): verified again in 2 working days",
        "unblock": "lift a suspension",
    }
    for name, text in helps.items():
        q = sub.add_parser(name, help=text)
        q.add_argument("case_id")
        q.add_argument("--reason", required=True)
        add_identity_arguments(q)
    for action in {id(a): a for a in sub.choices.values()}.values():  # aliases: one parser
        # also after the action (`fraudgate cases list -c FILE`, as the demo prints it)
        action.add_argument(
            "-c", "--config", type=Path, default=argparse.SUPPRESS, help="TOML file"
        )


# action -> (the API's name of the decision, the permission it needs: gateway/api/app.py)
DECISIONS: dict[str, tuple[str, Permission]] = {
    "verify": ("start_verification", Permission.CASES_DECIDE),
    "confirm": ("confirm", Permission.CASES_DECIDE),
    "reject": ("reject", Permission.CASES_DECIDE),
    "close": ("close", Permission.CASES_DECIDE),
    "reopen": ("reopen", Permission.CASES_DECIDE),
    "unblock": ("unblock", Permission.CASES_UNBLOCK),
}


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load(args.config)
    except ConfigError as exc:
        print(f"fraudgate cases: configuration error: {exc}", file=sys.stderr)
        return 2
    caller = None
    if args.action in DECISIONS:
        try:
            caller = resolve_caller(cfg, args)
            caller.require(DECISIONS[args.action][1], f"{args.action} a case")
        except CallerError as exc:
            print(f"fraudgate cases: {exc}", file=sys.stderr)
            return exc.exit_code
    try:
        settings = switch_settings(cfg.switch, args.switch_url)
        return asyncio.run(_main(args, cfg, settings, caller))
    except (StoreError, CaseError, ValueError) as exc:
        print(f"fraudgate cases: {exc}", file=sys.stderr)
        return 1


def switch_settings(configured: SwitchSettings, switch_url: str) -> SwitchSettings:
    """The configured switch, or an HTTP switch at `switch_url` with the configured token: one
    variable, FRAUDGATE_SWITCH__TOKEN, holds the switch token for the daemon and this command."""
    if not switch_url:
        return configured
    return SwitchSettings.http(switch_url, configured.token, configured.timeout)


async def _main(
    args: argparse.Namespace, cfg: GatewayConfig, settings: SwitchSettings, caller: Caller | None
) -> int:
    from gateway.cases.factory import build_cases

    async with await Store.open(cfg.database_url) as store, open_switch(settings) as switch:
        await store.migrate()
        return await _act(build_cases(cfg, store, switch), args, caller)


async def _act(cases: Cases, args: argparse.Namespace, caller: Caller | None) -> int:
    if args.action == "list":
        states = [State(s) for s in args.state]
        found = await cases.list(CaseFilter(states=states, limit=args.limit))
        for case in found:
            print(_line(case))
        if not found:
            print(f"no cases in state {' or '.join(args.state)}" if states else "no cases")
        return 0
    if args.action == "show":
        _show(await cases.get(args.case_id))
        return 0
    if args.action in ("deadlines", "overdue"):
        return await _deadlines(cases, args.json)
    assert caller is not None  # run() resolved it for every decision
    who = caller.principal
    name = DECISIONS[args.action][0]
    op = {
        "start_verification": cases.start_verification,
        "confirm": cases.confirm,
        "reject": cases.reject,
        "close": cases.close,
        "reopen": cases.reopen,
        "unblock": cases.unblock,
    }[name]
    reason = screen_field(args.reason, "cli reason")  # an IIN in it is stored masked (R7)
    case = await op(args.case_id, Actor(who.user_id, who.role.value), reason)
    await caller.audit(cases.store, f"case.{name}", "case", case.id)  # as the API (R8)
    _show(case)
    return 0


async def _deadlines(cases: Cases, as_json: bool) -> int:
    """Every case overdue or due by the end of the next working day, soonest first, and the
    counts. Exit 1 when a case is overdue (for monitoring scripts)."""
    now = time.time()
    counts = await cases.deadline_counts(now)
    found = await cases.at_risk(now)
    if as_json:
        rows = [
            {"case_id": c.id, "state": c.state.value, "deadline": d[0], "due": iso_utc(d[1]),
             "overdue": d[1] < now, "numbers": [mask_msisdn(n) for n in c.numbers]}
            for c in found if (d := c.deadline()) is not None
        ]  # fmt: skip
        print(json.dumps({"counts": counts, "cases": rows}, ensure_ascii=False))
    else:
        for c in found:
            due = c.deadline()
            late = "OVERDUE " if due is not None and due[1] < now else ""
            print(f"{late}{_line(c)}")
        print(
            f"{counts['overdue']} overdue, {counts['due_today']} due today, "
            f"{counts['due_next']} due the next working day"
        )
    return 1 if counts["overdue"] else 0


def _line(case: CaseView) -> str:
    numbers = ",".join(mask_msisdn(n) for n in case.numbers)
    due = case.deadline()
    deadline = f"{due[0]} {iso_utc(due[1])}" if due else "-"
    return f"{case.id}  {case.state.value:<13} {case.source.value:<16} {numbers}  {deadline}"


def _show(case: CaseView) -> None:
    print(_line(case))
    print(f"  received {iso_utc(case.received_at)}  verify_by {iso_utc(case.verify_by)}")
    if case.facts_at is not None:
        print(f"  facts at {iso_utc(case.facts_at)}")
    if case.sender:
        print(f"  sender {case.sender}")
    for flag in case.flags:
        print(f"  flag {flag}: {FLAGS.get(flag, '')}")
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
