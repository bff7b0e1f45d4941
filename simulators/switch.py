"""A simulated switch speaking the block/unblock JSON protocol of gateway/switch/port.py
(docs/cases.md).

A real HTTP/1.1 server on loopback: `asyncio.start_server` for the sockets and h11 (already
installed with httpx) for the HTTP parsing, sans-I/O like the rest of the project. Not uvicorn:
its `serve()` captures the process's signals, and tests need to take the server down and back
up on the same port in the middle of a test, which start_server / close() do directly.

State is in memory: number -> "blocked" | "active", and idempotency key -> first answer. Faults
for tests (`faults`): `down()` (connection refused), `fail_next` requests answered with
`fail_status` (5xx), `delay` seconds before each answer (slow), `reject_unknown` (404 for a
number not in `known`).

    python -m simulators.switch --port 8099 --token secret 77011234567 77011234568
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import h11

from gateway.ids import new_id

_ROUTE = re.compile(r"^/v1/subscribers/(?P<msisdn>\+?[0-9]{3,15})(?:/(?P<action>block|unblock))?$")


@dataclass
class Faults:
    fail_next: int = 0  # the next N requests get fail_status
    fail_status: int = 503
    delay: float = 0.0  # seconds before each answer
    reject_unknown: bool = True  # 404 for numbers not in `known` (when `known` is set)


@dataclass
class Request:
    method: str
    path: str
    key: str
    body: dict[str, Any]


@dataclass
class SwitchSimulator:
    token: str = "switch-token"
    known: set[str] | None = None  # None: every well-formed number exists (status "active")
    host: str = "127.0.0.1"
    port: int = 0
    faults: Faults = field(default_factory=Faults)
    state: dict[str, str] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    _answers: dict[str, tuple[str, str, int, dict[str, Any]]] = field(default_factory=dict)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen (again, on the same port after down())."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        """Stop listening and drop every open connection: clients get connection refused."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.down()

    # -- HTTP ----------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await _read_request(conn, reader)
                if request is None:
                    break
                status, body = await self._answer(*request)
                await _write_response(conn, writer, status, body)
                if conn.our_state is h11.MUST_CLOSE:
                    break
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        if self.faults.delay:
            await asyncio.sleep(self.faults.delay)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return 400, _error("bad_json", "body is not JSON")
        key = headers.get("idempotency-key", "")
        self.requests.append(Request(method, target, key, body if isinstance(body, dict) else {}))
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            return self.faults.fail_status, _error("unavailable", "simulated failure")
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, _error("unauthorized", "bad or missing token")
        match = _ROUTE.match(target)
        if match is None:
            return 404, _error("not_found", "no such resource")
        return self._route(method, match["msisdn"], match["action"], key, body)

    def _route(
        self, method: str, msisdn: str, action: str | None, key: str, body: Any
    ) -> tuple[int, dict[str, Any]]:
        if self.known is not None and msisdn not in self.known and self.faults.reject_unknown:
            return 404, _error("unknown_subscriber", "no such subscriber")
        if action is None and method == "GET":
            return 200, {"msisdn": msisdn, "status": self.state.get(msisdn, "active")}
        if action is None or method != "POST":
            return 405, _error("method_not_allowed", method)
        if not key:
            return 400, _error("idempotency_key_required", "Idempotency-Key header missing")
        if not isinstance(body, dict) or not body.get("case_id"):
            return 422, _error("invalid", "case_id required")
        return self._change(msisdn, action, key)

    def _change(self, msisdn: str, action: str, key: str) -> tuple[int, dict[str, Any]]:
        done = self._answers.get(key)
        if done is not None:
            if done[:2] != (msisdn, action):
                return 422, _error("idempotency_mismatch", "key used for another request")
            replay = dict(done[3], changed=False)
            return done[2], replay
        new = "blocked" if action == "block" else "active"
        changed = self.state.get(msisdn, "active") != new
        self.state[msisdn] = new
        answer = {"msisdn": msisdn, "status": new, "request_id": new_id(), "changed": changed}
        self._answers[key] = (msisdn, action, 200, answer)
        return 200, answer


def _error(code: str, detail: str) -> dict[str, Any]:
    return {"error": code, "detail": detail}


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader
) -> tuple[str, str, dict[str, str], bytes] | None:
    request: h11.Request | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            conn.receive_data(data)
            if not data and request is None:
                return None
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            headers = {k.decode().lower(): v.decode() for k, v in request.headers}
            return request.method.decode(), request.target.decode(), headers, body
        elif isinstance(event, h11.ConnectionClosed):
            return None


async def _write_response(
    conn: h11.Connection, writer: asyncio.StreamWriter, status: int, body: dict[str, Any]
) -> None:
    data = json.dumps(body).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(data)))]
    writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
    writer.write(conn.send(h11.Data(data=data)) or b"")
    writer.write(conn.send(h11.EndOfMessage()) or b"")
    await writer.drain()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="simulated switch (block/unblock over HTTP)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--token", default="switch-token")
    parser.add_argument("known", nargs="*", help="known numbers (default: any number)")
    args = parser.parse_args(argv)

    async def serve() -> None:
        sim = SwitchSimulator(
            token=args.token, known=set(args.known) or None, host=args.host, port=args.port
        )
        async with sim:
            print(f"simulated switch on {sim.url}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
