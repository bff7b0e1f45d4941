"""The console over real HTTP for the command-line tests: `fraudgate console` in a subprocess,
a sign-in with a token, the cases page."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


class Process:
    """A `fraudgate` subprocess whose output is read as it comes (no pipe fills up)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out, True)),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err, False)),
        ]
        for t in self.readers:
            t.start()

    def _read(self, stream: IO[str], into: list[str], announce: bool) -> None:
        for line in stream:
            into.append(line)
            if announce:
                self.lines.put(line)
        if announce:
            self.lines.put("")  # end of output

    def wait_line(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first stdout line matching `pattern`; fails on the end of the output."""
        while True:
            line = self.lines.get(timeout=timeout)
            assert line, f"no line {pattern!r}: {''.join(self.out)}{''.join(self.err)}"
            if found := re.search(pattern, line):
                return found

    def finish(self, timeout: float, sig: int | None = None) -> tuple[int, str, str]:
        """(exit status, stdout, stderr), after `sig` if given; killed if it outlives timeout."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
            for t in self.readers:
                t.join(timeout=10)
        return rc, "".join(self.out), "".join(self.err)


@contextlib.contextmanager
def console_process(config: Path, *extra: str) -> Iterator[str]:
    """`fraudgate console -c config`: its base URL (http://HOST:PORT) while it serves; stopped
    with SIGTERM after the block, which it must survive with exit 0."""
    p = Process("console", "-c", str(config), *extra)
    try:
        url = p.wait_line(r"^# console: (http://\S+)/console/", timeout=60).group(1)
        yield url
    finally:
        rc, _out, err = p.finish(30, signal.SIGTERM)
    assert rc == 0, err
    assert "Traceback" not in err, err


def sign_in(client: httpx.Client, token: str) -> httpx.Response:
    """The login form (200) with the token: the answer to the POST."""
    page = client.get("/console/login")
    assert page.status_code == 200, page.text
    found = re.search(r'name="login_csrf" value="([^"]*)"', page.text)
    assert found is not None, page.text
    return client.post("/console/login", data={"login_csrf": found.group(1), "token": token})


def cases_page(url: str, token: str) -> str:
    """The cases page at `url` (http://HOST:PORT), signed in with `token`."""
    with httpx.Client(base_url=url, timeout=10.0) as client:
        login = sign_in(client, token)
        assert login.status_code == 303, login.text
        page = client.get("/console/cases")
        assert page.status_code == 200, page.text
        return page.text


def hidden(html: str, name: str) -> str:
    """The value of the page's hidden field `name` (login_csrf, csrf)."""
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, f"no hidden {name} in the page"
    return found.group(1)


async def sign_in_async(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """`sign_in` for an async client: the answer to the login POST."""
    page = await client.get("/console/login")
    form = {"login_csrf": hidden(page.text, "login_csrf"), "token": token}
    return await client.post("/console/login", data=form)


async def audit_rows(store: Any) -> list[dict[str, Any]]:
    """Every api_audit row, oldest first."""
    import sqlalchemy as sa

    from gateway.store.models_api import api_audit

    async with store.engine.connect() as conn:
        rows = await conn.execute(sa.select(api_audit).order_by(api_audit.c.at, api_audit.c.id))
        return [dict(r._mapping) for r in rows]
