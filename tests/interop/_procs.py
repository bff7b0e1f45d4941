"""Helpers for interop tests: free ports, waiting for listeners, peer processes killed by pid.

A missing peer binary is a test FAILURE, never a skip: `./dev setup` installs every peer
(Debian packages, the node module), so a missing one means the machine is not set up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

INTEROP_DIR = Path(__file__).resolve().parent
NODE_DIR = INTEROP_DIR / "node"


def require_binary(name: str, *, package: str, candidates: Sequence[str] = ()) -> str:
    """The path of `name` (on PATH or one of `candidates`); fail the test when it is missing."""
    found = shutil.which(name)
    if found:
        return found
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    pytest.fail(
        f"interop peer {name!r} not found (Debian package {package}); "
        "run ./dev setup, which installs every interop peer",
        pytrace=False,
    )


def require_node_module(module: str = "smpp") -> Path:
    path = NODE_DIR / "node_modules" / module
    if not (path / "package.json").is_file():
        pytest.fail(
            f"node module {module!r} missing at {path}; run ./dev setup "
            "(npm install in tests/interop/node)",
            pytrace=False,
        )
    return path


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct TCP ports free on `host` right now (sockets held until all are chosen)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something listens on host:port (or the port cannot be bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class Peer:
    """One started peer process; its stdout and stderr go to `log`."""

    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self, limit: int = 6000) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return text[-limit:]

    def describe(self) -> str:
        rc = self.proc.poll()
        state = "running" if rc is None else f"exited with {rc}"
        return f"{self.name} (pid {self.pid}, {state}); last output:\n{self.output()}"


@dataclass
class Peers:
    """Processes started by one test; `stop_all` ends each by its pid (SIGTERM, then SIGKILL)."""

    workdir: Path
    started: list[Peer] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdin: int | None = subprocess.DEVNULL,
    ) -> Peer:
        log = self.workdir / f"{name}.out"
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                list(argv),
                stdin=stdin,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=cwd or self.workdir,
            )
        peer = Peer(name, list(argv), proc, log)
        self.started.append(peer)
        return peer

    def stop(self, peer: Peer, timeout: float = 5.0) -> int | None:
        proc = peer.proc
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        return proc.returncode

    def stop_all(self) -> None:
        for peer in reversed(self.started):
            self.stop(peer)

    def check_alive(self) -> None:
        for peer in self.started:
            if peer.proc.poll() is not None:
                pytest.fail(f"peer died: {peer.describe()}", pytrace=False)


def _can_connect(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect((host, port))
        except OSError:
            return False
    return True


def wait_port(
    port: int, *, peer: Peer | None = None, host: str = "127.0.0.1", timeout: float = 10.0
) -> None:
    """Block until host:port accepts a connection; fail (with the peer's output) otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _can_connect(host, port):
            return
        if peer is not None and peer.proc.poll() is not None:
            pytest.fail(f"{host}:{port} never opened: {peer.describe()}", pytrace=False)
        time.sleep(0.05)
    extra = f"; {peer.describe()}" if peer else ""
    pytest.fail(f"{host}:{port} not listening after {timeout}s{extra}", pytrace=False)


async def await_port(
    port: int, *, peer: Peer | None = None, host: str = "127.0.0.1", timeout: float = 10.0
) -> None:
    """`wait_port` without blocking the event loop (an SMSC may be running on it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 0.5)
        except (OSError, TimeoutError):
            if peer is not None and peer.proc.poll() is not None:
                pytest.fail(f"{host}:{port} never opened: {peer.describe()}", pytrace=False)
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    extra = f"; {peer.describe()}" if peer else ""
    pytest.fail(f"{host}:{port} not listening after {timeout}s{extra}", pytrace=False)


async def wait_for(
    predicate: Callable[[], object],
    *,
    timeout: float,
    what: str,
    peers: Peers | None = None,
    interval: float = 0.02,
) -> None:
    """Poll `predicate()` on the event loop until it is true; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if peers is not None:
            peers.check_alive()
        await asyncio.sleep(interval)
    detail = ""
    if peers is not None:
        detail = "\n" + "\n".join(p.describe() for p in peers.started)
    pytest.fail(f"timed out after {timeout}s waiting for {what}{detail}", pytrace=False)
