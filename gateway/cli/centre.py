"""`fraudgate centre list|resend|dismiss`: every notice to the anti-fraud centre seen through.

A report ends acknowledged, or it needs a person (docs/centre-api.md "Attention"): `list
--status attention` shows those; `resend` queues a new revision (a detection rebuilt from the
registry as it is now), `dismiss --reason` records that it was handled another way. Decisions
need a known caller with the API's cases:decide permission and are audited as the API audits
them (gateway.cli.identity). Payloads are never printed: they hold names and IINs (R7).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

from gateway.alerts.payloads import iso_utc
from gateway.api.auth import Permission
from gateway.centre.notices import NoticeError, NoticeRow
from gateway.cli.identity import Caller, CallerError, add_identity_arguments, resolve_caller
from gateway.config import DEFAULT_CONFIG, GatewayConfig, load
from gateway.config_check import ConfigError
from gateway.iin import screen_field
from gateway.store import Store, StoreError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="TOML file")
    sub = p.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="reports to the centre, newest first")
    ls.add_argument(
        "--status",
        choices=["pending", "acked", "refused", "incomplete", "resolved", "attention"],
        help="attention: refused by the centre, or sent without its subscriber",
    )
    ls.add_argument("--case", help="one case's reports")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true")
    resend = sub.add_parser("resend", help="queue a new revision of a report needing attention")
    resend.add_argument("report_id")
    dismiss = sub.add_parser("dismiss", help="record that a report was handled another way")
    dismiss.add_argument("report_id")
    dismiss.add_argument("--reason", required=True)
    for q in (resend, dismiss):
        add_identity_arguments(q)


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load(args.config)
    except ConfigError as exc:
        print(f"fraudgate centre: configuration error: {exc}", file=sys.stderr)
        return 2
    caller = None
    if args.action != "list":
        try:
            caller = resolve_caller(cfg, args)
            # dismissing means the centre never gets that notice: supervisors only
            need = Permission.CASES_UNBLOCK if args.action == "dismiss" else Permission.CASES_DECIDE
            caller.require(need, f"{args.action} a centre report")
        except CallerError as exc:
            print(f"fraudgate centre: {exc}", file=sys.stderr)
            return exc.exit_code
    try:
        return asyncio.run(_main(args, cfg, caller))
    except (StoreError, NoticeError, ValueError) as exc:
        print(f"fraudgate centre: {exc}", file=sys.stderr)
        return 1


async def _main(args: argparse.Namespace, cfg: GatewayConfig, caller: Caller | None) -> int:
    from gateway.cases.factory import build_cases, build_notices
    from gateway.switch.config import open_switch

    async with await Store.open(cfg.database_url) as store, open_switch(cfg.switch) as switch:
        await store.migrate()
        notices = build_notices(cfg, store, build_cases(cfg, store, switch))
        if args.action == "list":
            found = await notices.list(args.status, args.case, args.limit)
            if args.json:
                print(json.dumps([asdict(r) for r in found], ensure_ascii=False))
            else:
                for r in found:
                    print(_line(r))
            return 0
        assert caller is not None
        who = caller.principal.user_id
        if args.action == "resend":
            row = await notices.resend(args.report_id, who)
        else:
            reason = screen_field(args.reason, "cli reason")
            row = await notices.dismiss(args.report_id, who, reason)
        await caller.audit(store, f"centre.{args.action}", "centre_report", args.report_id)
        print(_line(row))
        return 0


def _line(r: NoticeRow) -> str:
    extra = f" error: {r.last_error[:120]}" if r.status == "refused" and r.last_error else ""
    done = f" -> {r.superseded_by or r.resolution}" if r.resolved_by else ""
    return (
        f"{r.id}  {r.status:<10} {r.kind:<13} case {r.case_id} round {r.round}"
        f" rev {r.revision}  {iso_utc(r.created_at)} attempts {r.attempts}{extra}{done}"
    )
