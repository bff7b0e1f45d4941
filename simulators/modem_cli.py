"""`fraudgate modem`: one simulated probe modem on a pty (or a TCP port), optionally scripted.

    fraudgate modem                                   # a pty; prints the path to open
    fraudgate modem --link /tmp/ttyPROBE-lab --imsi 401021111111111 --msisdn +77011111111
    fraudgate modem --tcp 7001 --script lab/modem.toml   # prints socket://127.0.0.1:7001

The first line on stdout is the pyserial URL (a symlink to the pty slave, or socket://...).
A script is TOML, one table per event, ``at`` in seconds after start:

    [[event]]
    at = 2.0
    kind = "call"            # number, ton = 145, validity = 0, rings = 3, interval = 1.0
    number = "+77011234567"

    [[event]]
    at = 5
    kind = "sms"             # originator, text, ton (optional: 5 unless digits / +digits)
    originator = "KCELL"
    text = "Сәлеметсіз бе! Тест қоңырауы"

Other kinds: "registration" (stat, lac, cell_id), "signal" (rssi), "hang" (seconds; none:
until the next replug), "garbage" (hex), "unplug", "replug".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.config_check import ConfigError, Table
from simulators.modem import ModemProfile, ModemSimulator

log = logging.getLogger("fraudgate.sim.modem")

Action = Callable[[ModemSimulator], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class ScriptEvent:
    at: float
    kind: str
    action: Action


def _call(t: Table) -> Action:
    number = t.get("number", str)
    ton = t.integer("ton", 145, maximum=255)
    validity = t.integer("validity", 0, maximum=2)
    rings = t.integer("rings", 3, minimum=1)
    interval = t.number("interval", 1.0, minimum=0.01)
    return lambda sim: sim.incoming_call(
        number, ton=ton, validity=validity, rings=rings, interval=interval
    )


def _sms(t: Table) -> Action:
    originator, text = t.get("originator", str), t.get("text", str)
    ton = t.integer("ton", 0, maximum=255) if "ton" in t.data else None

    def act(sim: ModemSimulator) -> None:
        sim.receive_sms(originator, text, ton=ton)

    return act


def _registration(t: Table) -> Action:
    stat = t.integer("stat", 1, maximum=5)
    lac = t.get("lac", str, "") or None
    cell_id = t.get("cell_id", str, "") or None
    return lambda sim: sim.set_registration(stat, lac=lac, cell_id=cell_id)


def _signal(t: Table) -> Action:
    rssi = t.integer("rssi", 20, maximum=99)
    return lambda sim: sim.set_signal(rssi)


def _hang(t: Table) -> Action:
    seconds = t.number("seconds", 0.0) if "seconds" in t.data else None
    return lambda sim: sim.hang(seconds)


def _garbage(t: Table) -> Action:
    text = t.get("hex", str)
    try:
        data = bytes.fromhex(text)
    except ValueError as exc:
        raise ConfigError(f"{t.key('hex')}: {exc}") from None
    return lambda sim: sim.garbage(data)


_KINDS: dict[str, Callable[[Table], Action]] = {
    "call": _call,
    "sms": _sms,
    "registration": _registration,
    "signal": _signal,
    "hang": _hang,
    "garbage": _garbage,
    "unplug": lambda t: ModemSimulator.unplug,
    "replug": lambda t: ModemSimulator.replug,
}


def script_from_toml(data: dict[str, object]) -> list[ScriptEvent]:
    root = Table(data, "")
    events: list[ScriptEvent] = []
    for t in root.tables("event"):
        at = t.number("at", 0.0)
        kind = t.get("kind", str)
        if kind not in _KINDS:
            raise ConfigError(f"{t.key('kind')}: {kind!r}, expected one of {', '.join(_KINDS)}")
        events.append(ScriptEvent(at, kind, _KINDS[kind](t)))
        t.done()
    root.done()
    return sorted(events, key=lambda e: e.at)


def load_script(path: Path) -> list[ScriptEvent]:
    try:
        return script_from_toml(tomllib.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


async def play(sim: ModemSimulator, events: list[ScriptEvent]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    for event in events:
        await asyncio.sleep(max(0.0, start + event.at - loop.time()))
        log.info("script: %s at %.1f s", event.kind, event.at)
        result = event.action(sim)
        if result is not None:
            await result


def configure(p: argparse.ArgumentParser) -> None:
    p.description = __doc__
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    where = p.add_mutually_exclusive_group()
    where.add_argument("--tcp", type=int, metavar="PORT", help="listen on 127.0.0.1:PORT")
    where.add_argument("--link", type=Path, metavar="PATH", help="symlink to the pty slave")
    p.add_argument("--name", default="probe-1", help="probe name (the default link's suffix)")
    p.add_argument("--imsi", default=ModemProfile.imsi)
    p.add_argument("--imei", default=ModemProfile.imei)
    p.add_argument("--msisdn", default=ModemProfile.msisdn)
    p.add_argument("--pin", default=None, help="the SIM asks for this PIN (AT+CPIN)")
    p.add_argument("--script", type=Path, metavar="FILE", help="TOML events, see above")


async def serve(args: argparse.Namespace, events: list[ScriptEvent], stop: asyncio.Event) -> None:
    profile = ModemProfile(imsi=args.imsi, imei=args.imei, msisdn=args.msisdn, pin=args.pin)
    sim = ModemSimulator(
        profile,
        tcp=args.tcp is not None,
        port=args.tcp or 0,
        name=args.name,
        link_path=args.link,
    )
    async with sim:
        print(sim.url, flush=True)
        async with asyncio.TaskGroup() as tasks:
            script = tasks.create_task(play(sim, events))
            await stop.wait()
            script.cancel()


def run(args: argparse.Namespace) -> int:
    try:
        events = load_script(args.script) if args.script else []
    except ConfigError as exc:
        log.error("script: %s", exc)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(args, events, stop)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    except OSError as exc:
        print(f"fraudgate modem: {exc}", file=sys.stderr)
        return 1
    return 0
