"""`fraudgate traffic`: play a scenario into an SMSC as a transmitter ESME.

    fraudgate traffic --smsc 127.0.0.1:2775 --account fraud:secret \\
        --scenario config/scenarios/demo.toml --rate 100 --count 1000

Pacing: submits go out on an absolute schedule (the k-th at start + k/rate), so sleep overshoot
never accumulates and the average holds; after a stall (full window, throttling pause) at most
`burst` submits go back to back to catch up. Every submit_sm on the wire takes a slot, parts of
a concatenated message and resubmissions included: that is what an SMSC's throughput limit counts.
Rate 0 sends as fast as the window allows.

Window: at most `window` submit_sm await their response (the SMSC's flow control, SMPP 3.4 §2.6).
A part answered ESME_RTHROTTLED (0x58) keeps its window slot, all sending pauses for
`throttle_delay` and the part is resubmitted: it is never dropped. Any other error status is final
and counted; a part with no response (timeout, link lost) counts as failed and is not resent,
since the SMSC may have accepted it.

`play()` is the library entry point (used by `fraudgate demo` and the tests); it returns a
`TrafficReport`, and `on_result` sees every message once all its parts are answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import signal
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.config_check import ConfigError, parse_hostport
from simulators.scenario import GeneratedMessage, Scenario, ScenarioError, load_scenario
from smsc.client import EsmeClient, EsmeConfig
from smsc.constants import CommandId, Status, status_name
from smsc.link import BindError, Link, LinkClosedError, RequestFailedError
from smsc.pdu import Pdu, SmppError, SubmitSm
from smsc.session import BindType

__all__ = [
    "NO_RESPONSE",
    "LabelStats",
    "MessageResult",
    "Pacer",
    "TrafficReport",
    "configure",
    "parse_account",
    "parse_smsc",
    "play",
    "run",
]

log = logging.getLogger("fraudgate.traffic")

#: The status recorded for a part that got no response (timeout, link lost).
NO_RESPONSE = -1


# --------------------------------------------------------------------------------------------
# Command line value parsers (shared with `fraudgate listen`)


def parse_smsc(text: str) -> tuple[str, int]:
    """'HOST:PORT' (or '[v6addr]:PORT') -> (host, port), for argparse."""
    try:
        return parse_hostport(text, "--smsc")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, e.g. 127.0.0.1:2775") from exc


def parse_account(text: str) -> tuple[str, str]:
    """'SYSTEM_ID:PASSWORD' -> (system_id, password); the password may contain ':'."""
    system_id, sep, password = text.partition(":")
    if not sep or not system_id:
        raise argparse.ArgumentTypeError(f"{text!r}: expected SYSTEM_ID:PASSWORD")
    # SMPP 3.4 §4.1.1: system_id at most 15 octets, password at most 8
    if len(system_id.encode("latin-1", "replace")) > 15:
        raise argparse.ArgumentTypeError(f"system_id {system_id!r}: at most 15 characters")
    if len(password.encode("latin-1", "replace")) > 8:
        raise argparse.ArgumentTypeError("password: at most 8 characters (SMPP 3.4 §4.1.1)")
    return system_id, password


# --------------------------------------------------------------------------------------------
# Pacing


class Pacer:
    """Spaces events `1/rate` apart on an absolute schedule (no drift).

    `reserve()` books the next slot and returns how long to wait for it; slots are booked
    synchronously, so concurrent callers each get their own. After a stall at most `burst`
    slots lie in the past (sent back to back); older ones are forfeited, so an idle period is
    not paid back with a flood. The default burst is 50 ms worth of sends (at least 1), which
    also absorbs the event loop's sleep overshoot. Rate 0: never wait.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: int | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not rate >= 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be a finite number >= 0, not {rate}")
        self.rate = rate
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.burst = burst if burst is not None else max(1, math.ceil(rate * 0.05))
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, not {self.burst}")
        self._clock = clock
        self._next: float | None = None

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def reserve(self) -> float:
        """Book the next slot; seconds to wait until it (0 when due)."""
        if self.rate <= 0:
            return 0.0
        now = self._now()
        if self._next is None:  # the schedule starts now, with no banked burst
            self._next = now
        earliest = now - (self.burst - 1) * self.interval
        slot = max(self._next, earliest)
        self._next = slot + self.interval
        return max(0.0, slot - now)

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


# --------------------------------------------------------------------------------------------
# Results


@dataclass(slots=True)
class MessageResult:
    """What happened to one message: per part, the final command_status (NO_RESPONSE when
    none came), the message_id given and why a part failed."""

    message: GeneratedMessage
    statuses: list[int]
    message_ids: list[str]
    errors: list[str]
    throttled: int = 0  # ESME_RTHROTTLED answers before the final one

    @property
    def outcome(self) -> str:
        """'accepted' (every part status 0), 'rejected' (a part got an error status) or
        'failed' (a part got no response and none was rejected)."""
        if any(s not in (0, NO_RESPONSE) for s in self.statuses):
            return "rejected"
        if NO_RESPONSE in self.statuses:
            return "failed"
        return "accepted"

    @property
    def status(self) -> int:
        """The first error status among the parts, else 0 (or NO_RESPONSE if one failed)."""
        for s in self.statuses:
            if s not in (0, NO_RESPONSE):
                return s
        return NO_RESPONSE if NO_RESPONSE in self.statuses else 0


@dataclass
class LabelStats:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    failed: int = 0


@dataclass
class TrafficReport:
    """Counters of a run. Messages are scenario messages; `pdus` counts every submit_sm written
    (parts and resubmissions included); `statuses` the final status of every part."""

    scenario: str = ""
    seed: int | None = None
    started: int = 0  # messages whose first part was sent
    messages: int = 0  # messages with every part answered (or failed)
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    pdus: int = 0
    throttled: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    rejected_by_status: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    labels: dict[str, LabelStats] = field(default_factory=dict)
    elapsed: float = 0.0
    stopped: str = ""

    @property
    def rate(self) -> float:
        """Achieved messages per second."""
        return self.messages / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def pdu_rate(self) -> float:
        """Achieved submit_sm per second (parts and resubmissions included)."""
        return self.pdus / self.elapsed if self.elapsed > 0 else 0.0

    def add(self, result: MessageResult) -> None:
        stats = self.labels.setdefault(result.message.label, LabelStats())
        stats.sent += 1
        self.messages += 1
        outcome = result.outcome
        if outcome == "accepted":
            self.accepted += 1
            stats.accepted += 1
        elif outcome == "rejected":
            self.rejected += 1
            stats.rejected += 1
            self.rejected_by_status[result.status] += 1
        else:
            self.failed += 1
            stats.failed += 1
        for status in result.statuses:
            if status != NO_RESPONSE:
                self.statuses[status] += 1
        for error in result.errors:
            if error:
                self.errors[error] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "messages": self.messages,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "failed": self.failed,
            "submit_sm": self.pdus,
            "throttled": self.throttled,
            "statuses": {f"0x{k:02X}": v for k, v in sorted(self.statuses.items())},
            "rejected_by_status": {
                f"0x{k:02X}": v for k, v in sorted(self.rejected_by_status.items())
            },
            "errors": dict(self.errors),
            "labels": {k: dataclasses.asdict(v) for k, v in sorted(self.labels.items())},
            "elapsed": round(self.elapsed, 3),
            "rate": round(self.rate, 1),
            "submit_sm_rate": round(self.pdu_rate, 1),
            "stopped": self.stopped,
        }

    def summary(self) -> str:
        head = f"scenario {self.scenario or '?'}" + (
            f" (seed {self.seed})" if self.seed is not None else ""
        )
        lines = [
            f"{head}: {self.messages} messages in {self.elapsed:.2f} s = {self.rate:.1f} msg/s "
            f"({self.pdus} submit_sm, {self.pdu_rate:.1f}/s)",
            f"  accepted {self.accepted}, rejected {self.rejected}, no response {self.failed}, "
            f"throttled {self.throttled} (all resubmitted)",
        ]
        if self.statuses:
            lines.append("  submit_sm_resp by command_status:")
            lines += [f"    {status_name(s):32} {n:>7}" for s, n in sorted(self.statuses.items())]
        if self.rejected_by_status:
            lines.append("  rejected messages by command_status:")
            by_status = sorted(self.rejected_by_status.items())
            lines += [f"    {status_name(s):32} {n:>7}" for s, n in by_status]
        if self.errors:
            lines.append("  parts without a response:")
            lines += [f"    {reason:32} {n:>7}" for reason, n in self.errors.most_common()]
        if self.labels:
            columns = ("sent", "accepted", "rejected", "failed")
            lines.append(f"  {'label':12} " + " ".join(f"{c:>9}" for c in columns))
            for label, st in sorted(self.labels.items()):
                lines.append(
                    f"  {label:12} {st.sent:>9} {st.accepted:>9} {st.rejected:>9} {st.failed:>9}"
                )
        lines.append(f"  stopped: {self.stopped}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Playing


class _TransmitterHandler:
    """A transmitter gets no requests but enquire_link (answered by the session). Bound as a
    transceiver it may get receipts: acknowledge them so the SMSC's window never stalls."""

    def on_request(self, link: Link, pdu: Pdu) -> None:
        status = 0 if pdu.command_id in (CommandId.DELIVER_SM, CommandId.DATA_SM) else 0x03
        with contextlib.suppress(SmppError):
            link.respond(pdu.response(status=status))

    def on_bind(self, link: Link, pdu: Pdu, bind_type: BindType) -> None:  # pragma: no cover
        pass

    def on_closed(self, link: Link, reason: str, clean: bool) -> None:
        log.log(logging.DEBUG if clean else logging.WARNING, "traffic link closed: %s", reason)


class _Pending:
    """A message being submitted: parts resolve in any order."""

    __slots__ = ("left", "result")

    def __init__(self, message: GeneratedMessage) -> None:
        n = len(message.pdus)
        self.result = MessageResult(message, [NO_RESPONSE] * n, [""] * n, [""] * n)
        self.left = n

    def resolve(self, part: int, status: int, message_id: str, error: str) -> bool:
        r = self.result
        r.statuses[part], r.message_ids[part], r.errors[part] = status, message_id, error
        self.left -= 1
        return self.left == 0


class _Player:
    def __init__(
        self,
        link: Link,
        report: TrafficReport,
        *,
        rate: float,
        window: int,
        throttle_delay: float,
        on_result: Callable[[MessageResult], None] | None,
    ) -> None:
        self.link = link
        self.report = report
        self.loop = asyncio.get_running_loop()
        self.pacer = Pacer(rate)
        self.window = asyncio.Semaphore(window)
        self.throttle_delay = throttle_delay
        self.on_result = on_result
        self.paused_until = 0.0
        self.halt = asyncio.Event()
        self.reason = ""
        self.tasks: set[asyncio.Task[None]] = set()

    def stop(self, reason: str) -> None:
        if not self.halt.is_set():
            self.reason = reason
            self.halt.set()

    async def run(
        self,
        messages: Iterator[GeneratedMessage],
        count: int | None,
        duration: float | None,
        stop: asyncio.Event | None,
    ) -> None:
        timer = self.loop.call_later(duration, self.stop, "duration reached") if duration else None
        watcher = asyncio.ensure_future(self._watch(stop)) if stop is not None else None
        closed_cb = self._on_link_closed
        self.link.closed.add_done_callback(closed_cb)
        try:
            await self._produce(messages, count)
        except asyncio.CancelledError:  # aborted: give up on what is in flight too
            for task in self.tasks:
                task.cancel()
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if watcher is not None:
                watcher.cancel()
            self.link.closed.remove_done_callback(closed_cb)
            if self.tasks:  # in flight and throttled parts finish: nothing is dropped
                await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.stop("stopped")

    def _on_link_closed(self, fut: asyncio.Future[Any]) -> None:
        reason = fut.result()[0] if not fut.cancelled() and fut.exception() is None else "?"
        self.stop(f"link closed: {reason}")

    async def _produce(self, messages: Iterator[GeneratedMessage], count: int | None) -> None:
        if self.link.closed.done():
            self._on_link_closed(self.link.closed)
        sent = 0
        while count is None or sent < count:
            if self.halt.is_set():
                break
            message = next(messages, None)
            if message is None:
                self.stop("scenario exhausted")
                break
            if not message.pdus:
                continue
            if not await self._slot(interruptible=True):
                break
            pending = _Pending(message)
            self.report.started += 1
            sent += 1
            for part, pdu in enumerate(message.pdus):
                # the parts of a message all go, even when a stop comes in between
                if part:
                    await self._slot(interruptible=False)
                self._spawn(self._submit(pending, part, pdu))
        else:
            self.stop("count reached")

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _slot(self, *, interruptible: bool) -> bool:
        """Take a window slot, wait out a throttling pause, then the pacer's slot."""
        await self.window.acquire()
        ok = await self._wait_pause(interruptible) and await self._sleep(
            self.pacer.reserve(), interruptible
        )
        if interruptible and self.halt.is_set():
            ok = False
        if not ok:
            self.window.release()
        return ok

    async def _sleep(self, delay: float, interruptible: bool) -> bool:
        if delay <= 0:
            return True
        if not interruptible:
            await asyncio.sleep(delay)
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.halt.wait(), delay)
        return not self.halt.is_set()

    async def _wait_pause(self, interruptible: bool) -> bool:
        while (delay := self.paused_until - self.loop.time()) > 0:
            if not await self._sleep(delay, interruptible):
                return False
        return True

    async def _submit(self, pending: _Pending, part: int, pdu: SubmitSm) -> None:
        status, message_id, error = NO_RESPONSE, "", ""
        try:
            while True:
                self.report.pdus += 1
                try:
                    response = await self.link.request(pdu)
                except SmppError as exc:  # timeout, link lost, session refused, bad field
                    error = _error_reason(exc)
                    break
                if response.status != Status.ESME_RTHROTTLED:
                    status = response.status
                    message_id = str(getattr(response, "message_id", ""))
                    break
                self.report.throttled += 1
                pending.result.throttled += 1
                self.paused_until = max(self.paused_until, self.loop.time() + self.throttle_delay)
                await self._wait_pause(interruptible=False)
                await self._sleep(self.pacer.reserve(), interruptible=False)
        finally:
            self.window.release()
        if pending.resolve(part, status, message_id, error):
            self.report.add(pending.result)
            if self.on_result is not None:
                try:
                    self.on_result(pending.result)
                except Exception:
                    log.exception("on_result callback failed")


def _error_reason(exc: SmppError) -> str:
    if isinstance(exc, LinkClosedError):
        return "link closed"
    if isinstance(exc, RequestFailedError):
        if exc.reason.startswith("no response"):
            return "response timeout"
        if exc.reason.startswith("session closed"):
            return "link closed"
        return exc.reason
    return str(exc)


async def play(
    target: Link | EsmeConfig,
    scenario: Scenario | Iterable[GeneratedMessage],
    *,
    rate: float = 0.0,
    count: int | None = None,
    duration: float | None = None,
    window: int = 10,
    seed: int | None = None,
    throttle_delay: float = 1.0,
    stop: asyncio.Event | None = None,
    on_result: Callable[[MessageResult], None] | None = None,
    report: TrafficReport | None = None,
) -> TrafficReport:
    """Submit a scenario's messages and return what the SMSC answered.

    `target`: a bound Link (left bound on return) or an EsmeConfig (connect, bind, play, drain,
    unbind; pass `bind_type=BindType.TRANSMITTER` for a plain transmitter). `count` messages
    (default: one pass of a Scenario, or until the iterable ends) or for `duration` seconds,
    whichever ends first; `stop` ends the run early (in-flight messages still finish). `rate`
    is submit_sm per second (0: as fast as `window` allows). `seed` overrides the scenario's.
    `report` may be given to watch the counters while the run goes on.
    """
    _check_play_args(rate, count, duration, window, throttle_delay)
    report = report if report is not None else TrafficReport()
    messages: Iterator[GeneratedMessage]
    if isinstance(scenario, Scenario):
        report.scenario = scenario.name
        report.seed = scenario.effective_seed(seed)
        messages = scenario.generate(report.seed)
        if count is None and duration is None:
            count = scenario.pass_length
    else:
        messages = iter(scenario)

    async def on_link(link: Link) -> None:
        player = _Player(
            link,
            report,
            rate=rate,
            window=window,
            throttle_delay=throttle_delay,
            on_result=on_result,
        )
        await _run_player(player, messages, count, duration, stop)

    if isinstance(target, Link):
        await on_link(target)
        return report
    session = dataclasses.replace(target.session, window=max(target.session.window, window))
    config = dataclasses.replace(target, session=session)
    async with EsmeClient(config, _TransmitterHandler()) as link:
        await on_link(link)
    return report


def _check_play_args(
    rate: float, count: int | None, duration: float | None, window: int, throttle_delay: float
) -> None:
    """Raise ValueError for a `play` argument out of range, before anything connects."""
    if window < 1:
        raise ValueError(f"window must be at least 1, not {window}")
    if count is not None and count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    if duration is not None and not duration > 0:
        raise ValueError(f"duration must be positive, not {duration}")
    if not throttle_delay >= 0:
        raise ValueError(f"throttle_delay must be >= 0, not {throttle_delay}")
    Pacer(rate)  # validates rate


async def _run_player(
    player: _Player,
    messages: Iterator[GeneratedMessage],
    count: int | None,
    duration: float | None,
    stop: asyncio.Event | None,
) -> None:
    report = player.report
    started = player.loop.time()
    try:
        await player.run(messages, count, duration, stop)
    finally:
        report.elapsed = player.loop.time() - started
        report.stopped = player.reason


# --------------------------------------------------------------------------------------------
# Command line


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Play a traffic scenario into an SMSC, bound as a transmitter ESME."
    parser.add_argument("--smsc", required=True, type=parse_smsc, metavar="HOST:PORT")
    parser.add_argument("--account", required=True, type=parse_account, metavar="ID:PASSWORD")
    parser.add_argument("--scenario", required=True, metavar="FILE", help="scenario TOML file")
    parser.add_argument(
        "--rate",
        type=_non_negative,
        default=100.0,
        metavar="MSG_PER_S",
        help="submit_sm per second, parts included; 0 = as fast as the window allows (default 100)",
    )
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument(
        "--count", type=_positive_int, metavar="N", help="messages to send (default: one pass)"
    )
    limit.add_argument("--duration", type=_positive, metavar="S", help="send for S seconds")
    parser.add_argument(
        "--window", type=_positive_int, default=10, metavar="N", help="submits in flight (10)"
    )
    parser.add_argument("--seed", type=int, help="override the scenario's seed")
    parser.add_argument(
        "--throttle-delay",
        type=_non_negative,
        default=1.0,
        metavar="S",
        help="pause after ESME_RTHROTTLED before resubmitting (default 1.0)",
    )
    parser.add_argument("--system-type", default="", help="bind system_type")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text}: must be a number >= 0")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text}: must be positive")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"fraudgate traffic: {exc}", file=sys.stderr)
        return 2
    (host, port), (system_id, password) = args.smsc, args.account
    config = EsmeConfig(
        host=host,
        port=port,
        system_id=system_id,
        password=password,
        bind_type=BindType.TRANSMITTER,
        system_type=args.system_type,
        name=f"traffic {system_id}@{host}:{port}",
    )
    try:
        report = asyncio.run(_main(config, scenario, args))
    except (OSError, TimeoutError, BindError) as exc:
        print(f"fraudgate traffic: cannot bind to {host}:{port}: {exc}", file=sys.stderr)
        return 1
    except asyncio.CancelledError:
        print("fraudgate traffic: aborted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(report.summary())
    return 1 if report.failed or report.stopped.startswith("link closed") else 0


async def _main(config: EsmeConfig, scenario: Scenario, args: argparse.Namespace) -> TrafficReport:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and main is not None:
            main.cancel()  # second signal: abort
            return
        log.warning("stopping: finishing the messages in flight (again to abort)")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal)
    report = TrafficReport()
    progress = asyncio.ensure_future(_progress(report))
    try:
        return await play(
            config,
            scenario,
            rate=args.rate,
            count=args.count,
            duration=args.duration,
            window=args.window,
            seed=args.seed,
            throttle_delay=args.throttle_delay,
            stop=stop,
            report=report,
        )
    finally:
        progress.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


async def _progress(report: TrafficReport, every: float = 5.0) -> None:
    while True:
        await asyncio.sleep(every)
        log.info(
            "%d messages answered (%d accepted, %d rejected), %d submit_sm, %d throttled",
            report.messages,
            report.accepted,
            report.rejected,
            report.pdus,
            report.throttled,
        )


if __name__ == "__main__":  # python -m simulators.traffic ...
    _parser = argparse.ArgumentParser(prog="fraudgate traffic")
    configure(_parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sys.exit(run(_parser.parse_args()))
