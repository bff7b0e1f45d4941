"""`fraudgate registry`: the subscriber registry (Rules 55-1...55-6, docs/registry.md): import
CRM/billing exports, report individuals over the ten-number limit, check one IIN, register
individuals and numbers, and take and decide applications for more than ten numbers.

Who runs a command that writes, decides or prints personal data is resolved by
gateway.cli.identity (an API token, or the OS user mapped in [cli.users]) and must have the API's
permission for it (registrar: registry:write; supervisor: registry:decide; personal_data to
print IINs and names whole). Each such command is recorded in api_audit as the API records it;
personal data is printed only after its audit row is written (R7).

IINs and names are personal data (R7): output masks them (9001******17, "Ж. А.") unless
--show-personal-data is given. Exit status: 0 done, 1 rows rejected / over the limit / number
refused / not allowed, 2 bad input, configuration or database error, unknown caller.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gateway.alerts.payloads import iso_utc, mask_msisdn
from gateway.api.auth import Permission
from gateway.cli.identity import Caller, CallerError, add_identity_arguments, resolve_caller
from gateway.config import DEFAULT_CONFIG, GatewayConfig, load
from gateway.config_check import ConfigError
from gateway.iin import mask_iin
from gateway.registry import (
    Application,
    DeviceSpec,
    ImportInterrupted,
    ImportReport,
    LimitExceeded,
    Person,
    Registry,
    RegistryError,
    join_need,
    normalize_msisdn,
)
from gateway.store import Store, StoreError
from gateway.workdays import KzCalendar

PERSONAL_HELP = (
    "print IINs, names and applications' free text whole (personal data: masked by default, "
    "R7); needs the personal_data permission, and each use is audited"
)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="registry_command", required=True)
    imp = sub.add_parser("import", help="import a CRM/billing export (CSV or JSON)")
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.add_argument("--format", choices=("csv", "json"), help="default: from the file suffix")
    over = sub.add_parser("over-limit", help="individuals holding more numbers than allowed")
    check = sub.add_parser("check", help="may this individual get one more number?")
    check.add_argument("iin", metavar="IIN")
    leaves = [imp, over, check, *_person(sub), *_number(sub), *_application(sub)]
    for p in leaves:
        p.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="TOML file")
        p.add_argument("--db", metavar="URL", help="database URL (default: from the config)")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("--show-personal-data", action="store_true", help=PERSONAL_HELP)
        add_identity_arguments(p)


def _person(sub: Any) -> list[argparse.ArgumentParser]:
    person = sub.add_parser("person", help="individuals").add_subparsers(
        dest="person_command", required=True
    )
    add = person.add_parser("add", help="register an individual (or update their names)")
    add.add_argument("iin", metavar="IIN")
    add.add_argument("--surname", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--patronymic", default="")
    return [add]


def _number(sub: Any) -> list[argparse.ArgumentParser]:
    number = sub.add_parser("number", help="subscriber numbers").add_subparsers(
        dest="number_command", required=True
    )
    add = number.add_parser("add", help="register a number to an individual (55-1, 55-6)")
    add.add_argument("msisdn", metavar="MSISDN")
    add.add_argument("--iin", required=True, metavar="IIN")
    add.add_argument("--contract-id", required=True, help="the contract (55-6)")
    add.add_argument("--contract-date", type=dt.date.fromisoformat, help="YYYY-MM-DD")
    add.add_argument("--imsi", default="")
    end = number.add_parser("terminate", help="terminate a number (its holding ends now)")
    end.add_argument("msisdn", metavar="MSISDN")
    return [add, end]


def _application(sub: Any) -> list[argparse.ArgumentParser]:
    app = sub.add_parser("application", help="applications for more than ten numbers")
    cmds = app.add_subparsers(dest="application_command", required=True)
    submit = cmds.add_parser("submit", help="an application (55-2, 55-3)")
    submit.add_argument("--iin", required=True, metavar="IIN")
    reapply = cmds.add_parser("reapply", help="apply again after a refusal (55-5)")
    reapply.add_argument("previous_id", metavar="APPLICATION_ID")
    for p in (submit, reapply):
        p.add_argument("--purpose", required=True, help="what the numbers are for (55-3)")
        p.add_argument("--count", type=int, required=True, help="numbers to hold in total")
        p.add_argument(
            "--device",
            action="append",
            required=True,
            metavar="SPEC",
            help="imei:<15 digits>:<description> or m2m:<id>:<description> (55-2); repeatable",
        )
        p.add_argument("--justification", required=True, help="why the numbers are needed")
        p.add_argument("--evidence", required=True, help="the evidence of need (55-2)")
        p.add_argument(
            "--declare-accurate", action="store_true", help="the applicant confirms (55-3)"
        )
    approve = cmds.add_parser("approve", help="approve (supervisors: registry:decide)")
    approve.add_argument("application_id", metavar="APPLICATION_ID")
    refuse = cmds.add_parser("refuse", help="refuse, stating the reason (55-4)")
    refuse.add_argument("application_id", metavar="APPLICATION_ID")
    refuse.add_argument("--reason", required=True)
    ls = cmds.add_parser("list", help="applications, newest first")
    ls.add_argument("--status", choices=("submitted", "approved", "refused"))
    ls.add_argument("--overdue", action="store_true", help="undecided past their decide_by")
    ls.add_argument("--limit", type=int, default=100)
    show = cmds.add_parser("show", help="one application")
    show.add_argument("application_id", metavar="APPLICATION_ID")
    return [submit, reapply, approve, refuse, ls, show]


@dataclass
class Context:
    registry: Registry
    store: Store
    args: argparse.Namespace
    caller: Caller | None  # resolved for commands that write, decide or show personal data

    @property
    def show(self) -> bool:
        return bool(self.args.show_personal_data)

    async def audit(self, action: str, kind: str, target: str, *, personal: bool) -> None:
        """The api_audit row, written before anything it records is printed."""
        assert self.caller is not None  # resolved by run() for every audited command
        await self.caller.audit(self.store, action, kind, target, personal_data=personal)


Command = Callable[[Context], Awaitable[int]]


def _command(args: argparse.Namespace) -> tuple[str, Command, Permission | None]:
    """(name, function, the permission it needs or None)."""
    name = args.registry_command
    for group in ("person", "number", "application"):
        if name == group:
            name = f"{group} {getattr(args, f'{group}_command')}"
    return name, *COMMANDS[name]


def run(args: argparse.Namespace) -> int:
    name, command, permission = _command(args)
    try:
        cfg = load(args.config)
        url = args.db or cfg.database_url
        caller = None
        if permission is not None or args.show_personal_data:
            caller = resolve_caller(cfg, args)
            if permission is not None:
                caller.require(permission, f"registry {name}")
            if args.show_personal_data:
                caller.require(Permission.PERSONAL_DATA, "see personal data")
        return asyncio.run(_with_registry(url, cfg, command, args, caller))
    except ConfigError as e:
        return _fail(f"configuration error: {e}")
    except CallerError as e:
        _fail(str(e))
        return e.exit_code
    except (RegistryError, StoreError, OSError) as e:
        return _fail(str(e))


async def _with_registry(
    url: str, cfg: GatewayConfig, command: Command, args: argparse.Namespace, caller: Caller | None
) -> int:
    calendar = KzCalendar(
        extra_days_off=[dt.date.fromisoformat(d) for d in cfg.cases.extra_days_off],
        extra_working_days=[dt.date.fromisoformat(d) for d in cfg.cases.extra_working_days],
    )
    async with await Store.open(url) as store:
        await store.migrate()
        registry = Registry(store, settings=cfg.registry, calendar=calendar)
        return await command(Context(registry, store, args, caller))


def _fail(message: str) -> int:
    print(f"fraudgate registry: {message}", file=sys.stderr)
    return 2


def _print(ctx: Context, data: dict[str, Any] | list[dict[str, Any]], text: str) -> None:
    print(json.dumps(data, ensure_ascii=False) if ctx.args.json else text)


# -- import --------------------------------------------------------------------------------------


async def _import(ctx: Context) -> int:
    path: Path = ctx.args.file
    fmt: Literal["csv", "json"] = ctx.args.format or (
        "json" if path.suffix.lower() in (".json", ".jsonl") else "csv"
    )
    await ctx.audit("registry.import", "file", path.name, personal=False)
    try:
        report = await ctx.registry.import_file(path, fmt)
    except ImportInterrupted as e:
        _print_report(e.report, ctx.args.json)
        raise
    _print_report(report, ctx.args.json)
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


async def _over_limit(ctx: Context) -> int:
    found = await ctx.registry.over_limit()
    if ctx.show and found:
        await ctx.audit("registry.over_limit", "registry", "", personal=True)
    rows = [
        {"person_id": o.person.id, **_shown(o.person, ctx.show), "count": o.count}
        | {"limit": o.limit}
        for o in found
    ]
    if ctx.args.json:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        for r in rows:
            who = " ".join(str(v) for k, v in r.items() if k not in ("count", "limit"))
            print(f"{who}: {r['count']} numbers, limit {r['limit']}")
        print(f"{len(rows)} individual(s) over the limit")
    return 1 if rows else 0


async def _check(ctx: Context) -> int:
    result = await ctx.registry.check_new_number(ctx.args.iin)
    iin = ctx.args.iin.strip()
    await ctx.audit("registry.check", "iin", iin, personal=ctx.show)  # who asked about whom
    if not ctx.show:
        iin = mask_iin(iin)
    data = {"iin": iin, "allowed": result.allowed, "count": result.count}
    data |= {"limit": result.limit, "reason": result.reason}
    verdict = "allowed" if result.allowed else "refused"
    _print(ctx, data, f"IIN {iin}: a new number is {verdict}: {result.reason}")
    return 0 if result.allowed else 1


# -- individuals and numbers ---------------------------------------------------------------------


async def _person_add(ctx: Context) -> int:
    a = ctx.args
    person = await ctx.registry.register_person(a.iin, a.surname, a.name, a.patronymic)
    await ctx.audit("registry.person.add", "person", person.id, personal=ctx.show)
    data = {"person_id": person.id, **_shown(person, ctx.show)}
    _print(ctx, data, f"person {person.id}: IIN {data['iin']} registered")
    return 0


async def _number_add(ctx: Context) -> int:
    a = ctx.args
    number = normalize_msisdn(a.msisdn) or a.msisdn
    try:
        record = await ctx.registry.register_number(
            a.iin, a.msisdn, imsi=a.imsi, contract_date=a.contract_date, contract_id=a.contract_id
        )
    except LimitExceeded as e:
        await ctx.audit("registry.number.refused", "msisdn", "+" + number, personal=False)
        _print(ctx, {"registered": False, "reason": str(e)}, f"refused: {e}")
        return 1
    await ctx.audit("registry.number.add", "msisdn", "+" + record.msisdn, personal=ctx.show)
    shown = record.msisdn if ctx.show else mask_msisdn(record.msisdn)
    iin = a.iin.strip() if ctx.show else mask_iin(a.iin.strip())
    data = {"registered": True, "msisdn": shown, "iin": iin, "status": record.status}
    _print(ctx, data, f"{shown} registered to IIN {iin} ({record.status})")
    return 0


async def _number_terminate(ctx: Context) -> int:
    number = normalize_msisdn(ctx.args.msisdn) or ctx.args.msisdn
    await ctx.registry.set_number_status(ctx.args.msisdn, "terminated")
    await ctx.audit("registry.number.terminate", "msisdn", "+" + number, personal=False)
    shown = number if ctx.show else mask_msisdn(number)
    _print(ctx, {"msisdn": shown, "status": "terminated"}, f"{shown} terminated")
    return 0


# -- applications ----------------------------------------------------------------------------------


def parse_device(spec: str) -> DeviceSpec:
    """imei:<15 digits>:<description> or m2m:<id>:<description> (checked by the registry)."""
    kind, _, rest = spec.partition(":")
    identifier, _, description = rest.partition(":")
    return DeviceSpec(kind, identifier, description)


def _request(a: argparse.Namespace) -> dict[str, Any]:
    return {
        "purpose": a.purpose,
        "requested_count": a.count,
        "devices": [parse_device(d) for d in a.device],
        "justification": join_need(a.justification, a.evidence),
        "declared_accurate": a.declare_accurate,
    }


async def _submit(ctx: Context) -> int:
    app = await ctx.registry.submit_application(ctx.args.iin, **_request(ctx.args))
    return await _answer(ctx, "registry.application.submit", app.id)


async def _reapply(ctx: Context) -> int:
    app = await ctx.registry.reapply(ctx.args.previous_id, **_request(ctx.args))
    return await _answer(ctx, "registry.application.reapply", app.id)


async def _approve(ctx: Context) -> int:
    assert ctx.caller is not None
    who = ctx.caller.principal.user_id
    app = await ctx.registry.approve_application(ctx.args.application_id, decided_by=who)
    return await _answer(ctx, "registry.application.approve", app.id)


async def _refuse(ctx: Context) -> int:
    assert ctx.caller is not None
    who = ctx.caller.principal.user_id
    app = await ctx.registry.refuse_application(
        ctx.args.application_id, ctx.args.reason, decided_by=who
    )
    return await _answer(ctx, "registry.application.refuse", app.id)


async def _show(ctx: Context) -> int:
    if ctx.show:
        await ctx.audit("registry.application.read", "application", ctx.args.application_id,
                        personal=True)  # fmt: skip
    app, person = await ctx.registry.applicant(ctx.args.application_id)
    data = application_data(app, person, show=ctx.show, now=ctx.registry.now())
    _print(ctx, data, _application_text(data))
    return 0


async def _answer(ctx: Context, action: str, application_id: str) -> int:
    """The audit row of the step, then the application as it is now."""
    await ctx.audit(action, "application", application_id, personal=ctx.show)
    app, person = await ctx.registry.applicant(application_id)
    data = application_data(app, person, show=ctx.show, now=ctx.registry.now())
    _print(ctx, data, _application_text(data))
    return 0


async def _list(ctx: Context) -> int:
    a = ctx.args
    found = await ctx.registry.list_applications(status=a.status, overdue=a.overdue, limit=a.limit)
    if ctx.show and found:
        await ctx.audit("registry.applications.read", "applications", "", personal=True)
    now = ctx.registry.now()
    rows = [application_data(app, p, show=ctx.show, now=now) for app, p in found]
    if a.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for r in rows:
        late = " OVERDUE" if r["overdue"] else ""
        print(f"{r['id']} {r['status']}{late} IIN {r['iin']} {r['requested_count']} numbers, "
              f"decide by {r['decide_by']}")  # fmt: skip
    print(f"{len(rows)} application(s)")
    return 0


def application_data(app: Application, person: Person, *, show: bool, now: float) -> dict[str, Any]:
    """An application as printed: the IIN masked and free text left out unless `show`."""
    data: dict[str, Any] = {
        "id": app.id,
        "iin": person.iin if show else mask_iin(person.iin),
        "status": app.status,
        "requested_count": app.requested_count,
        "devices": len(app.device_ids),
        "submitted_at": iso_utc(app.submitted_at),
        "decide_by": iso_utc(app.decide_by) if app.decide_by is not None else None,
        "overdue": app.overdue(now),
        "decision_at": iso_utc(app.decision_at) if app.decision_at is not None else None,
        "decided_by": app.decided_by or None,
        "refusal_reason": app.refusal_reason or None,
        "previous_application_id": app.previous_application_id,
    }
    if show:
        data |= {"purpose": app.purpose, "justification": app.justification}
    return data


def _application_text(d: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in d.items() if v is not None)


COMMANDS: dict[str, tuple[Command, Permission | None]] = {
    # an import re-assigns and terminates numbers: the holdings decide who is reported (R8)
    "import": (_import, Permission.REGISTRY_WRITE),
    "over-limit": (_over_limit, None),  # masked unless --show-personal-data (then audited)
    "check": (_check, Permission.SUBSCRIBERS_READ),  # a look-up of an IIN: always audited
    "person add": (_person_add, Permission.REGISTRY_WRITE),
    "number add": (_number_add, Permission.REGISTRY_WRITE),
    "number terminate": (_number_terminate, Permission.REGISTRY_WRITE),
    "application submit": (_submit, Permission.REGISTRY_WRITE),
    "application reapply": (_reapply, Permission.REGISTRY_WRITE),
    "application approve": (_approve, Permission.APPLICATIONS_DECIDE),
    "application refuse": (_refuse, Permission.APPLICATIONS_DECIDE),
    "application list": (_list, Permission.REGISTRY_WRITE),
    "application show": (_show, Permission.REGISTRY_WRITE),
}
