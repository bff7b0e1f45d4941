"""`fraudgate smsc`: run the simulated SMSC from a TOML file or from command-line flags.

    fraudgate smsc -c config/smsc.toml
    fraudgate smsc --listen 127.0.0.1:2775 --account gateway:secret --account loadgen:secret \
                   --route 7=gateway

Without --route, every destination routes to the first account. The file format is documented
in config/smsc.toml.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import tomllib
from pathlib import Path

from gateway.config_check import ConfigError, Table, parse_hostport
from smsc.bindguard import BindGuardConfig
from smsc.session import BindType
from smsc.simulator import Account, Faults, Route, SimulatedSmsc, SmscConfig

log = logging.getLogger("fraudgate.smsc")


def _faults(t: Table) -> Faults:
    f = Faults(
        throttle_every=t.integer("throttle_every", 0),
        throttle_ratio=t.number("throttle_ratio", 0.0),
        response_delay=t.number("response_delay", 0.0),
        drop_response_ratio=t.number("drop_response_ratio", 0.0),
        error_status=t.integer("error_status", 0, maximum=0xFFFFFFFF),
        error_prefix=t.get("error_prefix", str, ""),
        disconnect_after=t.integer("disconnect_after", 0),
        garbage_after=t.integer("garbage_after", 0),
    )
    for name in ("throttle_ratio", "drop_response_ratio"):
        if getattr(f, name) > 1:
            raise ConfigError(f"{t.key(name)}: a fraction, at most 1")
    t.done()
    return f


def _bind_guard(t: Table) -> BindGuardConfig:
    d = BindGuardConfig()
    cfg = BindGuardConfig(
        address_failures=t.integer("address_failures", d.address_failures, minimum=1),
        system_id_failures=t.integer("system_id_failures", d.system_id_failures, minimum=1),
        lockout=t.number("lockout", d.lockout, minimum=0.1),
        max_lockout=t.number("max_lockout", d.max_lockout, minimum=0.1),
        forget_after=t.number("forget_after", d.forget_after, minimum=1.0),
        log_interval=t.number("log_interval", d.log_interval, minimum=0.0),
    )
    if cfg.max_lockout < cfg.lockout:
        raise ConfigError(
            f"{t.key('max_lockout')}: must be at least {t.key('lockout')} ({cfg.lockout}), "
            f"got {cfg.max_lockout}"
        )
    t.done()
    return cfg


def _account(t: Table) -> Account:
    kinds = t.get("bind_types", list, [b.value for b in BindType])
    try:
        bind_types = frozenset(BindType(k) for k in kinds)
    except ValueError as exc:
        raise ConfigError(
            f"{t.key('bind_types')}: {exc}; use receiver, transmitter, transceiver"
        ) from exc
    nets = []
    for i, net in enumerate(t.get("allow_ips", list, [])):
        try:
            nets.append(ipaddress.ip_network(str(net), strict=False))
        except ValueError as exc:
            raise ConfigError(f"{t.key('allow_ips')}[{i}]: {exc}") from exc
    system_id = t.get("system_id", str)
    if not 0 < len(system_id) <= 15:
        raise ConfigError(f"{t.key('system_id')}: 1 to 15 characters (SMPP 3.4 §5.2.1)")
    password = t.get("password", str)
    if len(password) > 8:
        raise ConfigError(f"{t.key('password')}: at most 8 characters (SMPP 3.4 §5.2.2)")
    acc = Account(
        system_id=system_id,
        password=password,
        bind_types=bind_types,
        allow_ips=tuple(nets),
        window=t.integer("window", 50, minimum=1),
        throughput=t.number("throughput", 0.0),
        faults=_faults(t.table("faults")),
    )
    t.done()
    return acc


def config_from_toml(data: dict[str, object]) -> SmscConfig:
    root = Table(data, "")
    server = root.table("server")
    host, port = parse_hostport(
        server.get("listen", str, "127.0.0.1:2775"), "server.listen", listen=True
    )
    cfg = SmscConfig(
        host=host,
        port=port,
        system_id=server.get("system_id", str, "fraudgate-sim"),
        response_timeout=server.number("response_timeout", 10.0, minimum=0.1),
        enquire_link_interval=server.number("enquire_link_interval", 30.0, minimum=0.1),
    )
    server.done()
    delivery = root.table("delivery")
    cfg.retry_interval = delivery.number("retry_interval", 5.0, minimum=0.01)
    cfg.max_attempts = delivery.integer("max_attempts", 0)
    cfg.validity = delivery.number("validity", 24 * 3600.0, minimum=1.0)
    cfg.store_limit = delivery.integer("store_limit", 1_000_000, minimum=1)
    delivery.done()
    cfg.bind_guard = _bind_guard(root.table("bind_guard"))
    cfg.accounts = [_account(t) for t in root.tables("account")]
    if not cfg.accounts:
        raise ConfigError("account: at least one [[account]] is required")
    names = [a.system_id for a in cfg.accounts]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"account[{i}].system_id: {name!r} is already used by an account")
    for i, t in enumerate(root.tables("route")):
        route = Route(
            prefix=t.get("prefix", str, ""),
            account=t.get("account", str),
            origin=t.get("origin", str, ""),
        )
        if route.origin and route.origin not in names:
            raise ConfigError(f"route[{i}].origin: no account {route.origin!r}")
        if route.account not in names:
            raise ConfigError(f"route[{i}].account: no account {route.account!r}")
        if not route.prefix.isdigit() and route.prefix != "":
            raise ConfigError(f"route[{i}].prefix: digits only, got {route.prefix!r}")
        cfg.routes.append(route)
        t.done()
    if not cfg.routes:
        cfg.routes.append(Route("", cfg.accounts[0].system_id))
    root.done()
    return cfg


def load_config(path: Path) -> SmscConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return config_from_toml(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def config_from_flags(listen: str, accounts: list[str], routes: list[str]) -> SmscConfig:
    data: dict[str, object] = {"server": {"listen": listen}}
    acc_list = []
    for text in accounts:
        system_id, sep, password = text.partition(":")
        if not sep:
            raise ConfigError(f"--account: expected ID:PASSWORD, got {text!r}")
        acc_list.append({"system_id": system_id, "password": password})
    data["account"] = acc_list
    route_list = []
    for text in routes:
        prefix, sep, account = text.partition("=")
        if not sep:
            raise ConfigError(f"--route: expected PREFIX=ACCOUNT, got {text!r}")
        route_list.append({"prefix": prefix, "account": account})
    data["route"] = route_list
    return config_from_toml(data)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, help="TOML file (see config/smsc.toml)")
    p.add_argument("--listen", default="127.0.0.1:2775", help="HOST:PORT (without -c)")
    p.add_argument(
        "--account", action="append", default=[], metavar="ID:PASSWORD", help="repeatable"
    )
    p.add_argument("--route", action="append", default=[], metavar="PREFIX=ACCOUNT")


async def serve(cfg: SmscConfig, stop: asyncio.Event) -> SimulatedSmsc:
    async with SimulatedSmsc(cfg) as smsc:
        log.info(
            "simulated SMSC on %s:%d, accounts: %s",
            cfg.host,
            smsc.port,
            ", ".join(a.system_id for a in cfg.accounts),
        )
        await stop.wait()
    return smsc


def run(args: argparse.Namespace) -> int:
    try:
        if args.config:
            cfg = load_config(args.config)
        elif args.account:
            cfg = config_from_flags(args.listen, args.account, args.route)
        else:
            raise ConfigError("give -c FILE or at least one --account ID:PASSWORD")
    except ConfigError as exc:
        log.error("configuration: %s", exc)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        smsc = await serve(cfg, stop)
        s = smsc.stats
        log.info(
            "stopped: %d submitted, %d delivered, %d failed, %d receipts, %d retries; "
            "%d binds refused (%d of them locked out)",
            s.submitted,
            s.delivered,
            s.failed,
            s.receipts,
            s.retries,
            s.binds_refused,
            s.binds_locked_out,
        )

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0
