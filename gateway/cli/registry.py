"""`fraudgate registry`: import CRM/billing exports, report individuals over the ten-number limit,
check one IIN (Rules 55-1...55-6, docs/registry.md).

IINs and names are personal data (R7): output masks them (9001******17, "Ж. А.") unless
--show-personal-data is given. Exit status: 0 done, 1 rows rejected / over the limit / number
refused, 2 bad input, configuration or database error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from gateway.config import DEFAULT_CONFIG, load
from gateway.config_check import ConfigError
from gateway.iin import mask_iin
from gateway.registry import ImportInterrupted, ImportReport, Person, Registry, RegistryError
from gateway.store import Store, StoreError

PERSONAL_HELP = "print IINs and names whole (personal data: masked by default, R7)"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="registry_command", required=True)
    imp = sub.add_parser("import", help="import a CRM/billing export (CSV or JSON)")
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.add_argument("--format", choices=("csv", "json"), help="default: from the file suffix")
    over = sub.add_parser("over-limit", help="individuals holding more numbers than allowed")
    check = sub.add_parser("check", help="may this individual get one more number?")
    check.add_argument("iin", metavar="IIN")
    for p in (imp, over, check):
        p.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="TOML file")
        p.add_argument("--db", metavar="URL", help="database URL (default: from the config)")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("--show-personal-data", action="store_true", help=PERSONAL_HELP)


def run(args: argparse.Namespace) -> int:
    command: Callable[[Registry, argparse.Namespace], Awaitable[int]] = {
        "import": _import,
        "over-limit": _over_limit,
        "check": _check,
    }[args.registry_command]
    try:
        url = args.db or load(args.config).database_url
        return asyncio.run(_with_registry(url, command, args))
    except ConfigError as e:
        return _fail(f"configuration error: {e}")
    except (RegistryError, StoreError, OSError) as e:
        return _fail(str(e))


async def _with_registry(
    url: str, command: Callable[[Registry, argparse.Namespace], Awaitable[int]], a: Any
) -> int:
    async with await Store.open(url) as store:
        await store.migrate()
        return await command(Registry(store), a)


def _fail(message: str) -> int:
    print(f"fraudgate registry: {message}", file=sys.stderr)
    return 2


# -- import --------------------------------------------------------------------------------------


async def _import(registry: Registry, args: argparse.Namespace) -> int:
    path: Path = args.file
    fmt: Literal["csv", "json"] = args.format or (
        "json" if path.suffix.lower() in (".json", ".jsonl") else "csv"
    )
    try:
        report = await registry.import_file(path, fmt)
    except ImportInterrupted as e:
        _print_report(e.report, args.json)
        raise
    _print_report(report, args.json)
    return 1 if report.rejected_count else 0


def _print_report(report: ImportReport, as_json: bool) -> None:
    """Rejection reasons carry masked IINs and numbers only (built that way in the registry)."""
    if as_json:
        data = {
            "read": report.read,
            "inserted": report.inserted,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected_count": report.rejected_count,
            "rejected": [{"line": r.line, "reason": r.reason} for r in report.rejected],
            "lines_done": report.lines_done,
            "complete": report.complete,
        }
        print(json.dumps(data, ensure_ascii=False))
        return
    print(report.summary())
    for r in report.rejected:
        print(f"line {r.line}: {r.reason}")
    if report.rejected_count > len(report.rejected):
        print(f"... {report.rejected_count - len(report.rejected)} more rejected rows not listed")


# -- over-limit and check --------------------------------------------------------------------------


def _shown(person: Person, show: bool) -> dict[str, str]:
    if show:
        return {
            "iin": person.iin,
            "surname": person.surname,
            "name": person.name,
            "patronymic": person.patronymic,
        }
    initials = " ".join(f"{n[0]}." for n in (person.surname, person.name, person.patronymic) if n)
    return {"iin": mask_iin(person.iin), "initials": initials}


async def _over_limit(registry: Registry, args: argparse.Namespace) -> int:
    found = await registry.over_limit()
    rows = [
        {"person_id": o.person.id, **_shown(o.person, args.show_personal_data), "count": o.count}
        | {"limit": o.limit}
        for o in found
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        for r in rows:
            who = " ".join(str(v) for k, v in r.items() if k not in ("count", "limit"))
            print(f"{who}: {r['count']} numbers, limit {r['limit']}")
        print(f"{len(rows)} individual(s) over the limit")
    return 1 if rows else 0


async def _check(registry: Registry, args: argparse.Namespace) -> int:
    result = await registry.check_new_number(args.iin)
    iin = args.iin.strip() if args.show_personal_data else mask_iin(args.iin.strip())
    if args.json:
        data = {"iin": iin, "allowed": result.allowed, "count": result.count}
        data |= {"limit": result.limit, "reason": result.reason}
        print(json.dumps(data, ensure_ascii=False))
    else:
        verdict = "allowed" if result.allowed else "refused"
        print(f"IIN {iin}: a new number is {verdict}: {result.reason}")
    return 0 if result.allowed else 1
