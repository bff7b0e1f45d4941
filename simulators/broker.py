"""Start a real mosquitto broker for the demo and lab work: a generated config, a free loopback
port, stopped (by pid) on exit."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

MOSQUITTO_PATHS = ("mosquitto", "/usr/sbin/mosquitto")


class BrokerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str | None:
    for name in MOSQUITTO_PATHS:
        found = shutil.which(name) or (name if Path(name).exists() else None)
        if found:
            return found
    return None


class Mosquitto:
    """`async with Mosquitto() as broker:` -> broker.host, broker.port (anonymous, loopback)."""

    def __init__(self, port: int = 0) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Mosquitto:
        binary = find_mosquitto()
        if binary is None:
            raise BrokerError("mosquitto is not installed (./dev setup installs it)")
        self._dir = tempfile.TemporaryDirectory(prefix="fraudgate-mqtt-")
        conf = Path(self._dir.name) / "mosquitto.conf"
        # Started as root, mosquitto drops to its own user unless told to stay: it must read its
        # config and write its log in our temporary directory.
        run_as = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n"
            f"log_dest file {self._dir.name}/mosquitto.log\n{run_as}"
        )
        # A plain Popen: the broker outlives no await of ours and is reaped in __aexit__.
        self._proc = subprocess.Popen(  # noqa: ASYNC220
            [binary, "-c", str(conf)], stdin=subprocess.DEVNULL
        )
        for _ in range(100):
            if self._proc.poll() is not None:
                raise BrokerError(f"mosquitto exited with {self._proc.returncode}")
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                return self
            except OSError:
                await asyncio.sleep(0.05)
        raise BrokerError(f"mosquitto did not listen on {self.port} within 5 s")

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._dir is not None:
            self._dir.cleanup()
