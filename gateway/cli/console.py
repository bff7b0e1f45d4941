"""`fraudgate console -c FILE`: the analysts' console (docs/console.md) without the daemon.

A console-only process over the configuration's database: the store (migrated), the switch
([switch] as configured, for confirm and unblock), cases built as the daemon builds them, and
the API's server on [api] listen with its tokens, [feedback] limits and the console under
/console, until SIGINT or SIGTERM. It inspects no traffic and runs no workflow rounds: the live,
probes and campaigns pages say so; deadlines, reminders and retries wait for the daemon. For
the demo's state afterwards: `fraudgate console -c var/demo/fraudgate.toml`.

Exit 2: a configuration error (no [api] listen, no token, the address taken); 3: the database
cannot be opened (as `fraudgate run`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from gateway.config import DEFAULT_CONFIG, GatewayConfig, load
from gateway.config_check import ConfigError, parse_hostport
from gateway.store import StoreError
from gateway.store.urls import display_url

EXIT_CONFIG = 2
EXIT_STORE = 3


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="TOML file")
    p.add_argument(
        "--listen",
        default="",
        metavar="HOST:PORT",
        help="serve here instead of the configuration's [api] listen",
    )


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load(args.config)
        if args.listen:
            parse_hostport(args.listen, "--listen", listen=True)
            cfg.api.listen = args.listen
        _check(cfg, args.config)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", EXIT_CONFIG)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(cfg))
    except ConfigError as exc:  # the address is taken, a TLS file is unusable
        return _fail(f"configuration error: {exc}", EXIT_CONFIG)
    except StoreError as exc:
        return _fail(f"cannot open the store {display_url(cfg.database_url)}: {exc}", EXIT_STORE)
    return 0


def _check(cfg: GatewayConfig, path: Path) -> None:
    """What the console needs of the configuration: an address, tokens, not disabled."""
    if not cfg.api.listen:
        raise ConfigError(f"{path}: no [api] listen: the console is served on the API's address")
    if not cfg.api.tokens:
        raise ConfigError(f"{path}: no [[api.token]]: nobody could sign in to the console")
    if not cfg.console.enabled:
        raise ConfigError(f"{path}: [console] enabled = false")


async def serve(cfg: GatewayConfig, stop: asyncio.Event | None = None) -> None:
    """Serve the API and the console over `cfg`'s database until `stop` (or SIGINT/SIGTERM)."""
    from gateway.cases.factory import build_cases
    from gateway.switch.config import open_switch
    from gateway.wiring import api_server, feedback_limits, open_store

    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    store = await open_store(cfg)
    try:
        async with open_switch(cfg.switch) as switch:
            cases = build_cases(cfg, store, switch)
            limits = feedback_limits(cfg.feedback)  # [feedback], as the daemon's server has
            server = api_server(
                cfg.api, cases, store, feedback=limits, console=cfg.console, sources=None
            )
            async with server:
                print(
                    f"# console: {server.url}/console/ over {display_url(cfg.database_url)} "
                    f"({len(cfg.api.tokens)} tokens); no traffic is inspected here; "
                    "Ctrl-C to stop",
                    flush=True,
                )
                await stop.wait()
    finally:
        await store.close()


def _fail(message: str, status: int) -> int:
    """One line on stderr, no traceback."""
    print("fraudgate console: " + " ".join(message.split()), file=sys.stderr)
    return status
