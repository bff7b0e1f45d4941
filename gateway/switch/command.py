"""SwitchControl through the operator's own provisioning command-line tool (docs/switch.md).

Each action is an argv template, run directly (execve, never a shell):

    block  = ["/opt/prov/hlrctl", "barring", "--msisdn", "{msisdn}", "--on"]

Placeholders {msisdn} {case_id} {reason} {idempotency_key} are replaced inside each argument, so
a value is always exactly one argument whatever it holds; `{{` and `}}` are literal braces.
Free text belongs glued to its option (`--reason={reason}`): a bare reason starting with '-'
would read as an option. A template that runs a shell (`sh -c ...`) is refused: it would read
the values as code. That is a guard against mistakes, not a sandbox (`python3 -c`, `awk` run
code too): templates come from the configuration, which only operators write.

The exit code decides: `ok_codes` (default [0]) success; `retry_codes` -> SwitchUnavailable
(the workflow retries with the same idempotency key); `unknown_codes` -> SwitchRejected code
"unknown_subscriber" (and status "unknown"); anything else -> SwitchRejected code "exit_N".
Optional regexes on stdout: `expect` must match for an ok exit to count as success,
`unchanged_pattern` marks an answer "already in that state" (changed=False), and
`blocked_pattern` / `active_pattern` read the status command's answer. With a status command,
block and unblock read the state first and do nothing when it already is the wanted one.

A command still running at `timeout` gets SIGTERM, then SIGKILL 2 s later, to its whole process
group -> SwitchUnavailable. A caller cancelled while its command runs takes the command down
too (the same SIGTERM / SIGKILL, at once if cancelled again; reaped, readers stopped) before the
cancellation goes on. At most `max_concurrent` commands run at once; stdout and stderr are
kept up to 64 KiB each and shown shortened in errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import PurePath
from types import TracebackType
from typing import Any, Self

from gateway.alerts.payloads import mask_msisdn
from gateway.switch.port import SwitchRejected, SwitchResult, SwitchUnavailable

log = logging.getLogger(__name__)

PLACEHOLDERS = ("msisdn", "case_id", "reason", "idempotency_key")
SHELLS = frozenset(
    {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "csh", "tcsh", "fish", "busybox", "rbash"}
)
OUTPUT_LIMIT = 64 * 1024
KILL_GRACE = 2.0
_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_MSISDN = re.compile(r"\+?[0-9]{1,20}")


class CommandTemplateError(ValueError):
    """A template or pattern that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class CommandSettings:
    block: tuple[str, ...]
    unblock: tuple[str, ...]
    status: tuple[str, ...] = ()  # empty: status() is "unknown", no read before write
    ok_codes: tuple[int, ...] = (0,)
    retry_codes: tuple[int, ...] = ()
    unknown_codes: tuple[int, ...] = ()
    expect: str = ""
    unchanged_pattern: str = ""
    blocked_pattern: str = ""
    active_pattern: str = ""
    timeout: float = 30.0
    env: tuple[str, ...] = ()  # NAME (copied from our environment) or NAME=VALUE
    max_concurrent: int = 4
    output_limit: int = OUTPUT_LIMIT

    def check(self) -> None:
        """Raise CommandTemplateError for anything unusable (called by CommandSwitch)."""
        for name in ("block", "unblock", "status"):
            template = getattr(self, name)
            if template or name != "status":
                check_template(template, name)
        for name in ("expect", "unchanged_pattern", "blocked_pattern", "active_pattern"):
            try:
                re.compile(getattr(self, name))
            except re.error as e:
                raise CommandTemplateError(f"{name}: not a regular expression ({e})") from None
        if self.status and not (self.blocked_pattern and self.active_pattern):
            raise CommandTemplateError("status: needs blocked_pattern and active_pattern")
        clash = set(self.ok_codes) & (set(self.retry_codes) | set(self.unknown_codes))
        if clash or set(self.retry_codes) & set(self.unknown_codes):
            raise CommandTemplateError("ok_codes, retry_codes, unknown_codes: overlap")
        for entry in self.env:
            name = entry.partition("=")[0]
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise CommandTemplateError(f"env: {entry!r} is not NAME or NAME=VALUE")
        if self.timeout <= 0 or self.max_concurrent < 1 or self.output_limit < 1024:
            raise CommandTemplateError("timeout > 0, max_concurrent >= 1, output_limit >= 1024")


def check_template(template: tuple[str, ...], name: str) -> None:
    if not template or not all(isinstance(a, str) for a in template):
        raise CommandTemplateError(f"{name}: a non-empty array of strings")
    program = template[0]
    if not program or any(c.isspace() for c in program):
        raise CommandTemplateError(
            f"{name}: the program {program!r} is one path; give each argument as its own item"
        )
    if "{" in program or "}" in program:
        raise CommandTemplateError(f"{name}: no placeholders in the program path")
    for arg in template:
        if PurePath(arg).name in SHELLS:
            raise CommandTemplateError(
                f"{name}: runs a shell ({arg}); the values would be read as shell code. "
                "Call the provisioning tool directly, or a script of yours with the values as "
                "its arguments"
            )
        substitute(arg, dict.fromkeys(PLACEHOLDERS, ""), name)


def substitute(arg: str, values: dict[str, str], name: str = "template") -> str:
    def one(m: re.Match[str]) -> str:
        text = m.group(0)
        if text in ("{{", "}}"):
            return text[0]
        key = m.group(1)
        if key is None or key not in values:
            raise CommandTemplateError(
                f"{name}: {text!r} is not one of {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            )
        return values[key]

    return _FIELD.sub(one, arg)


@dataclass(slots=True)
class Completed:
    code: int
    stdout: str
    stderr: str
    seconds: float
    truncated: bool = False

    def shown(self, limit: int = 400) -> str:
        """The output for an error message: its tail, shortened."""
        text = (self.stderr.strip() + "\n" + self.stdout.strip()).strip()
        return text if len(text) <= limit else "..." + text[-limit:]


@dataclass(slots=True)
class _Bounded:
    limit: int
    data: bytearray = field(default_factory=bytearray)
    dropped: int = 0

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            room = self.limit - len(self.data)
            self.data += chunk[:room]
            self.dropped += max(0, len(chunk) - room)

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


class CommandSwitch:
    """`async with CommandSwitch(settings) as switch:` (SwitchControl)."""

    def __init__(self, settings: CommandSettings) -> None:
        settings.check()
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        self._running: set[int] = set()  # process group ids, killed on exit

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for pgid in list(self._running):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)

    async def block(
        self, msisdn: str, *, reason: str, case_id: str, idempotency_key: str | None = None
    ) -> SwitchResult:
        return await self._change("block", msisdn, reason, case_id, idempotency_key)

    async def unblock(
        self, msisdn: str, *, reason: str, case_id: str, idempotency_key: str | None = None
    ) -> SwitchResult:
        return await self._change("unblock", msisdn, reason, case_id, idempotency_key)

    async def status(self, msisdn: str) -> str:
        s = self.settings
        if not s.status:
            return "unknown"
        values = self._values(msisdn, "", "status", "")
        done = await self._run("status", s.status, values)
        if done.code in s.unknown_codes:
            return "unknown"
        self._check(done, "status", msisdn, expect="")  # `expect` is for block / unblock
        if re.search(s.blocked_pattern, done.stdout, re.MULTILINE):
            return "blocked"
        if re.search(s.active_pattern, done.stdout, re.MULTILINE):
            return "active"
        return "unknown"

    async def _change(
        self, action: str, msisdn: str, reason: str, case_id: str, key: str | None
    ) -> SwitchResult:
        s = self.settings
        wanted = "blocked" if action == "block" else "active"
        request_id = f"cmd-{uuid.uuid4().hex[:16]}"
        if s.status and await self.status(msisdn) == wanted:
            log.info("switch command: %s %s: already %s", action, mask_msisdn(msisdn), wanted)
            return SwitchResult(msisdn, wanted, request_id, changed=False)
        values = self._values(msisdn, case_id, reason, key or f"{case_id}:{action}:{msisdn}")
        done = await self._run(action, s.block if action == "block" else s.unblock, values)
        self._check(done, action, msisdn, s.expect)
        changed = not (
            s.unchanged_pattern and re.search(s.unchanged_pattern, done.stdout, re.MULTILINE)
        )
        return SwitchResult(msisdn, wanted, request_id, changed)

    def _values(self, msisdn: str, case_id: str, reason: str, key: str) -> dict[str, str]:
        if not _MSISDN.fullmatch(msisdn):
            raise SwitchRejected(f"{mask_msisdn(msisdn)}: not an MSISDN", "invalid_msisdn")
        # One line of printable text: a tool reading its arguments line-wise sees one value.
        clean = "".join(c if c.isprintable() else " " for c in reason)[:500]
        return {"msisdn": msisdn, "case_id": case_id, "reason": clean, "idempotency_key": key}

    def _check(self, done: Completed, action: str, msisdn: str, expect: str) -> None:
        s = self.settings
        what = f"{action} {mask_msisdn(msisdn)}: exit {done.code}"
        if done.code in s.ok_codes:
            if expect and not re.search(expect, done.stdout, re.MULTILINE):
                raise SwitchRejected(
                    f"{what}, but the output does not match `expect`: {done.shown()}",
                    "unexpected_output",
                )
            return
        if done.code in s.retry_codes:
            raise SwitchUnavailable(f"{what} (retry later): {done.shown()}")
        if done.code in s.unknown_codes:
            raise SwitchRejected(f"{what}: unknown subscriber", "unknown_subscriber")
        raise SwitchRejected(f"{what}: {done.shown()}", f"exit_{done.code}")

    def _environment(self) -> dict[str, str]:
        env = {"PATH": os.defpath, "LC_ALL": "C.UTF-8"}
        for entry in self.settings.env:
            name, sep, value = entry.partition("=")
            if sep:
                env[name] = value
            elif name in os.environ:
                env[name] = os.environ[name]
        return env

    async def _run(
        self, action: str, template: tuple[str, ...], values: dict[str, str]
    ) -> Completed:
        argv = [substitute(arg, values, action) for arg in template]
        async with self._slots:
            started = time.monotonic()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env=self._environment(),
                    start_new_session=True,  # its own process group, killed as a whole
                )
            except OSError as e:
                # A missing or non-executable tool: an operator fixes it, then retries work.
                raise SwitchUnavailable(f"{action}: cannot run {argv[0]}: {e}") from e
            self._running.add(proc.pid)
            try:
                done = await self._collect(proc, action, started)
            finally:
                self._running.discard(proc.pid)
        log.info(
            "switch command: %s %s -> exit %d in %.0f ms", action,
            mask_msisdn(values["msisdn"]), done.code, done.seconds * 1000,
        )  # fmt: skip
        return done

    async def _collect(
        self, proc: asyncio.subprocess.Process, action: str, started: float
    ) -> Completed:
        s = self.settings
        assert proc.stdout is not None and proc.stderr is not None
        out, err = _Bounded(s.output_limit), _Bounded(s.output_limit)
        readers = asyncio.gather(out.drain(proc.stdout), err.drain(proc.stderr))
        try:
            code = await asyncio.wait_for(proc.wait(), s.timeout)
        except TimeoutError:
            await _abandon(proc, readers)
            partial = Completed(-1, out.text(), err.text(), time.monotonic() - started)
            raise SwitchUnavailable(
                f"{action}: no answer in {s.timeout:g} s, process group killed: {partial.shown()}"
            ) from None
        except BaseException as e:
            # Our caller is gone (its task cancelled: a TaskGroup failing, shutdown): the tool
            # must not outlive it, and nothing may be left running behind our back.
            if isinstance(e, Exception | asyncio.CancelledError):
                await _abandon(proc, readers)
            else:  # KeyboardInterrupt, SystemExit: no awaiting any more
                _kill_now(proc, readers)
            raise
        try:
            # A child left in the background may keep the pipes open: give it a moment.
            await asyncio.wait_for(asyncio.shield(readers), 1.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await _stop_readers(readers)
        except BaseException:
            _kill_now(proc, readers)  # the tool has exited; what is left of its group goes
            raise
        return Completed(
            code, out.text(), err.text(), time.monotonic() - started,
            truncated=bool(out.dropped or err.dropped),
        )  # fmt: skip


async def _abandon(proc: asyncio.subprocess.Process, readers: asyncio.Future[Any]) -> None:
    """Stop a tool we no longer wait for: its process group killed (SIGTERM, SIGKILL after
    KILL_GRACE), the leader reaped, the pipe readers cancelled and awaited. The work runs in a
    task of its own, shielded from the caller's cancellation; a further cancellation while it
    runs skips the grace (SIGKILL now) and is passed on."""
    cleanup = asyncio.ensure_future(_kill_and_reap(proc, readers))
    try:
        await asyncio.shield(cleanup)
    except BaseException:
        if not cleanup.done():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        raise


def _kill_now(proc: asyncio.subprocess.Process, readers: asyncio.Future[Any]) -> None:
    """SIGKILL to the process group and the readers cancelled, without awaiting anything (the
    readers end at EOF; their outcome is retrieved when they do)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    readers.add_done_callback(_retrieve)
    readers.cancel()


async def _kill_and_reap(proc: asyncio.subprocess.Process, readers: asyncio.Future[Any]) -> None:
    try:
        await _kill_group(proc)
    finally:
        if proc.returncode is None:  # cancelled itself (the loop shutting down): no grace
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        await _stop_readers(readers)


async def _stop_readers(readers: asyncio.Future[Any]) -> None:
    """Cancel the pipe readers and wait for them; their outcome is retrieved, so asyncio never
    reports an exception "never retrieved"."""
    readers.add_done_callback(_retrieve)  # also when our wait below is cancelled
    readers.cancel()
    await asyncio.wait([readers])


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM to the process group (a tool may roll back), SIGKILL after KILL_GRACE."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.wait_for(proc.wait(), KILL_GRACE)
            if sig == signal.SIGTERM:
                # The leader is gone; anything else left in its group goes too.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            return
        except TimeoutError:
            continue


__all__ = [
    "PLACEHOLDERS",
    "CommandSettings",
    "CommandSwitch",
    "CommandTemplateError",
    "check_template",
    "substitute",
]
