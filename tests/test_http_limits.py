"""What one HTTP client may cost the daemon's event loop, the loop that answers the SMSC: the API
and the centre's endpoint, each started as the daemon starts it (gateway.wiring, from a parsed
configuration) on a free loopback port, and attacked from another process (tests/http_flood.py)
so that this process's memory and loop are measured alone.

A coroutine ticking every 10 ms on the server's loop stands in for the SMPP sessions: were it
late by more than ~50 ms, a deliver_sm would have been answered late.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import pytest

from gateway.api import ApiServer
from gateway.api.settings import ApiSettings
from gateway.cases import Cases
from gateway.centre import CentreEndpoint, CentreOutbox
from gateway.config import from_toml
from gateway.registry import Registry
from gateway.store import Store, sqlite_url
from gateway.switch.port import NoSwitch
from gateway.wiring import api_server, centre_endpoint
from gateway.workdays import KzCalendar
from simulators.centre import CertSet, inbound_report, make_certs

FLOOD = Path(__file__).resolve().parent / "http_flood.py"
MIB = 1 << 20
GIB = 1 << 30
TOKEN = "helpline-token-for-the-limits-test"
BAD = {"Authorization": "Bearer not-a-token"}
GOOD = {"Authorization": f"Bearer {TOKEN}"}


def _token(secret: str, user: str, role: str) -> dict[str, str]:
    return {"sha256": hashlib.sha256(secret.encode()).hexdigest(), "user": user, "role": role}


def api_settings(**limits: Any) -> ApiSettings:
    """[api] as an operator writes it: loopback, any free port, one help-line token."""
    api = {"listen": "127.0.0.1:0", "token": [_token(TOKEN, "u-help", "helpline")], **limits}
    return from_toml({"api": api}).api


# -- the process seen from inside -----------------------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM (the peak resident size) so it measures from now: `5` to clear_refs."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class LoopWatch:
    """`async with LoopWatch() as w:` ticks every 10 ms on this loop; `w.late` is the worst
    lateness of a tick (seconds) and `w.growth` how far the resident size rose (bytes)."""

    def __init__(self) -> None:
        self.late = 0.0
        self.base = self.peak = 0
        self._task: asyncio.Task[None] | None = None
        self._hwm = False

    async def __aenter__(self) -> Self:
        self._hwm = _reset_peak()
        self.base = self.peak = _status_kib("VmRSS") * 1024
        self._task = asyncio.create_task(self._tick())
        return self

    async def _tick(self) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(0.01)
            self.late = max(self.late, time.monotonic() - start - 0.01)
            self.peak = max(self.peak, _status_kib("VmRSS") * 1024)

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._hwm:  # the kernel's peak: also what happened between two ticks
            self.peak = max(self.peak, _status_kib("VmHWM") * 1024)

    @property
    def growth(self) -> int:
        return self.peak - self.base

    def __str__(self) -> str:
        return f"RSS +{self.growth / MIB:.1f} MiB, worst tick {self.late * 1000:.1f} ms late"


async def flood(port: int, *args: str) -> dict[str, Any]:
    """Run tests/http_flood.py against `port` in its own process; its one-line report."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(FLOOD), str(port), *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, out
    report: dict[str, Any] = json.loads(out)
    return report


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(sqlite_url(tmp_path / "data")) as st:
        await st.migrate()
        yield st


@pytest.fixture
def cases(store: Store) -> Cases:
    registry = Registry(store)
    return Cases(
        store, KzCalendar(), switch=NoSwitch(), registry=registry, reports=CentreOutbox("test")
    )


@pytest.fixture
async def api(cases: Cases, store: Store) -> AsyncIterator[ApiServer]:
    async with api_server(api_settings(), cases, store) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:  # warm: first-call imports
            assert (await http.get("/v1/cases", headers=GOOD)).status_code == 200
        yield server


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_certs(tmp_path_factory.mktemp("centre-pki"))


@pytest.fixture
async def endpoint(certs: CertSet, cases: Cases, store: Store) -> AsyncIterator[CentreEndpoint]:
    cert, key = certs.cert("operator", "server")
    section = {"listen": "127.0.0.1:0", "cert": str(cert), "key": str(key)}
    settings = from_toml({"centre": {"endpoint": section | {"client_ca": str(certs.centre_ca)}}})
    async with centre_endpoint(settings.centre, cases, store) as ep:
        yield ep


def centre_tls(certs: CertSet) -> list[str]:
    """tests/http_flood.py options: the centre's client certificate, the operator's CA."""
    cert, key = certs.cert("centre", "client")
    return ["--cafile", str(certs.operator_ca), "--cert", str(cert), "--key", str(key)]


# -- a gigabyte, at full speed --------------------------------------------------------------------

SHAPES = {"content-length": ["--size", str(GIB)], "chunked": ["--chunked", "--seconds", "3"]}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize(("token", "status"), [(None, 401), (TOKEN, 413)], ids=["anon", "token"])
async def test_a_gigabyte_to_the_api_is_refused_at_once(
    api: ApiServer, shape: str, token: str | None, status: int
) -> None:
    auth = ["--token", token] if token else []
    async with LoopWatch() as watch:
        got = await flood(api.port, *SHAPES[shape], *auth)
    print(f"API {shape} {status}: {got}; {watch}")
    assert (got["status"], got["closed"]) == (status, True), got
    assert got["answered_after"] < 0.5, got  # from the headers, not from the end of a body
    assert got["sent"] < 256 * MIB, got  # the server hung up; nothing like a GiB was taken
    assert watch.growth < 20 * MIB, str(watch)
    assert watch.late < 0.05, str(watch)


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_a_gigabyte_to_the_centre_endpoint_is_413_at_once(
    endpoint: CentreEndpoint, certs: CertSet, shape: str
) -> None:
    async with LoopWatch() as watch:
        got = await flood(
            endpoint.port, *SHAPES[shape], "--path", "/v1/reports", *centre_tls(certs)
        )
    print(f"centre {shape}: {got}; {watch}")
    assert (got["status"], got["closed"]) == (413, True), got
    assert got["answered_after"] < 0.5, got
    assert watch.growth < 20 * MIB, str(watch)
    assert watch.late < 0.05, str(watch)


# -- the token first, then the body ---------------------------------------------------------------


async def test_a_bad_token_is_401_whatever_the_body(api: ApiServer) -> None:
    deep = b"[" * 30_000 + b"]" * 30_000
    async with httpx.AsyncClient(base_url=api.url) as http:
        for body in (b"{not json", deep, b"x" * (1 << 20), b'{"reason": ""}'):
            r = await http.post("/v1/cases/nope/confirm", content=body, headers=BAD)
            assert (r.status_code, r.json()) == (401, {"error": "unauthorized"}), body[:20]
            assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" * 30_000 + b"]" * 30_000, 400),  # under the size cap, far over the nesting cap
        (b'{"reason": ' + b"[" * 900 + b"]" * 900 + b"}", 400),  # under the recursion limit
        (b'{"reason": ' + b"[" * 20 + b"]" * 20 + b"}", 422),  # shallow: plain validation
        (b"[" * 60_000, 400),  # unpaired
    ],
    ids=["30000", "900", "20", "unpaired"],
)
async def test_deeply_nested_json_is_refused_not_500(
    api: ApiServer, body: bytes, status: int
) -> None:
    async with httpx.AsyncClient(base_url=api.url) as http:
        r = await http.post("/v1/complaints", content=body, headers=GOOD)
    assert r.status_code == status, r.text
    if status == 400:
        assert r.json() == {"error": "bad_json"}


async def test_deeply_nested_json_to_the_centre_is_400(
    endpoint: CentreEndpoint, certs: CertSet
) -> None:
    cert, key = certs.cert("centre", "client")
    tls = ssl.create_default_context(cafile=str(certs.operator_ca))
    tls.load_cert_chain(str(cert), str(key))
    report = json.dumps(inbound_report(["+77011234567"])).encode()
    async with httpx.AsyncClient(base_url=endpoint.url, verify=tls) as http:
        for body in (
            b"[" * 30_000 + b"]" * 30_000,
            b"{" * 5000,
            report[:-1] + b', "x": [[[[1]]]]}',
        ):
            r = await http.post("/v1/reports", content=body)
            assert r.status_code == 400, r.text
            assert r.json()["error"] in ("bad_json", "schema")


# -- slow clients ---------------------------------------------------------------------------------


async def _trickle(port: int, head: bytes, every: float, limit: float) -> float:
    """Send `head` a byte at a time; seconds until the server hung up (or `limit`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()
    try:
        for byte in head:
            if reader.at_eof() or time.monotonic() - start > limit:
                break
            writer.write(bytes([byte]))
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(1), every)  # b"" once closed
    except ConnectionError:
        pass
    finally:
        writer.close()
    return time.monotonic() - start


async def test_slowloris_loses_its_connection_and_its_slot(cases: Cases, store: Store) -> None:
    settings = api_settings(client_timeout=0.5, max_connections=3)
    head = b"GET /v1/cases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
    async with api_server(settings, cases, store) as server:
        slow = [asyncio.create_task(_trickle(server.port, head * 10, 0.05, 5.0)) for _ in (1, 2)]
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/v1/cases", headers=GOOD)).status_code == 503  # all taken
            held = await asyncio.gather(*slow)
            assert all(0.4 < t < 1.5 for t in held), held  # cut at client_timeout, not 5 s
            assert (await http.get("/v1/cases", headers=GOOD)).status_code == 200


async def test_a_body_not_sent_in_time_is_408(cases: Cases, store: Store) -> None:
    async with api_server(api_settings(client_timeout=0.5), cases, store) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        head = f"POST /v1/complaints HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        writer.write(head.encode() + b"Content-Length: 100\r\n\r\n{")
        start = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), 5)  # to EOF: the server hangs up
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert 0.4 < time.monotonic() - start < 1.5


PIPELINED = 300  # requests for /openapi.json (26 KB each) sent at once, answers never read


async def test_a_client_that_stops_reading_is_cut_off(cases: Cases, store: Store) -> None:
    request = f"GET /openapi.json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    async with api_server(api_settings(client_timeout=0.5), cases, store) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            one = len((await http.get("/openapi.json", headers=GOOD)).content)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        # answers pile up in the server: past the kernel's send buffer (at most 4 MiB, tcp_wmem)
        # and then past the transport's 64 KiB, where uvicorn waits for the client to read
        sock.sendall(request.encode() * PIPELINED)
        await asyncio.sleep(1.5)  # never reading
        got, reset = 0, False
        sock.settimeout(5)
        try:
            while data := sock.recv(1 << 16):
                got += len(data)
        except ConnectionResetError:
            reset = True
        sock.close()
    assert reset or got < PIPELINED * one, (got, one)
