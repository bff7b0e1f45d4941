"""`fraudgate retention run [--dry-run]`: erase the personal data past its retention period now
(the daemon does the same every hour; docs/retention.md). Prints counts, never values."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from gateway.config import DEFAULT_CONFIG, load
from gateway.config_check import ConfigError
from gateway.retention.purge import Retention, RetentionReport
from gateway.retention.settings import RetentionSettings
from gateway.store import Store, StoreError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="TOML file")
    sub = p.add_subparsers(dest="action", required=True)
    run_p = sub.add_parser("run", help="erase what is past its [retention] period")
    run_p.add_argument("--dry-run", action="store_true", help="count only, change nothing")


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load(args.config)
    except ConfigError as exc:
        print(f"fraudgate retention: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(_run(cfg.database_url, cfg.retention, args.dry_run))
    except StoreError as exc:
        print(f"fraudgate retention: {exc}", file=sys.stderr)
        return 1
    verb = "would erase" if args.dry_run else "erased"
    print(f"centre report payloads {verb}: {report.centre_reports}")
    print(f"centre inbound payloads {verb}: {report.centre_inbound}")
    print(f"help-line complaints {verb}: {report.complaints}")
    print(f"audit rows {'would be ' if args.dry_run else ''}deleted: {report.audit_deleted}")
    return 0


async def _run(url: str, settings: RetentionSettings, dry_run: bool) -> RetentionReport:
    async with await Store.open(url) as store:
        await store.migrate()
        return await Retention(store, settings).run(time.time(), dry_run=dry_run)
