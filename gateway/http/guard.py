"""A pure ASGI middleware that bounds what one HTTP request may cost the daemon's event loop.

The loop that runs the HTTP API and the centre's endpoint also answers the SMSC: a request
body read whole before anything is checked (384 MiB took the process from 233 to 2,551 MiB and
held the loop 12.7 s, so deliver_sm went unanswered) must never happen again. In front of the
application, in this order, and before the application sees the request at all:

1. `authenticate` (optional) looks at the headers only: a caller without a valid token gets
   401 before one byte of the body is read, so an anonymous client costs nothing;
2. a Content-Length over `max_body` gets 413 at once, without reading;
3. the body is read with a deadline (`client_timeout`: 408) and counted as it arrives, so a
   chunked body with no Content-Length is cut at `max_body` as well (413);
4. JSON nested deeper than `max_depth` gets 400: parsers and validators recurse, and a
   RecursionError escaping them would be a 500.

Then the application gets the whole body in one message. Every refusal ends the connection
(`Connection: close`): the rest of a refused body is never read.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

ErrorBody = Callable[[str, str], dict[str, Any]]
Authenticate = Callable[[str | None], bool]  # the Authorization header's value -> allowed


def plain_error(error: str, _detail: str) -> dict[str, Any]:
    """The refusal's body: `{"error": code}` (the API's error shape, docs/api.md)."""
    return {"error": error}


class Refused(Exception):
    """A request refused before the application saw it."""

    def __init__(
        self, status: int, error: str, detail: str, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers


class _Gone(Exception):
    """The client disconnected while its body was read: nobody to answer."""


class RequestGuard:
    """`RequestGuard(app, max_body=..., client_timeout=...)`: see the module's docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        client_timeout: float,
        max_depth: int = 32,
        authenticate: Authenticate | None = None,
        error_body: ErrorBody = plain_error,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.client_timeout = client_timeout
        self.max_depth = max_depth
        self.authenticate = authenticate
        self.error_body = error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_headers(scope)
            body = await self._read(receive)
            if nesting_depth(body) > self.max_depth:
                raise Refused(400, "bad_json", f"nested deeper than {self.max_depth}")
        except Refused as r:
            log.debug("request from %s refused: %d %s", _client(scope), r.status, r.detail)
            await self._refuse(send, r)
            return
        except _Gone:
            return
        await self.app(scope, _replay(body, receive), send)

    def _check_headers(self, scope: Scope) -> None:
        headers = dict(scope["headers"])  # names are lower case (ASGI)
        if self.authenticate is not None:
            value = headers.get(b"authorization")
            if not self.authenticate(value.decode("latin-1") if value is not None else None):
                raise Refused(401, "unauthorized", "token", ((b"www-authenticate", b"Bearer"),))
        length = headers.get(b"content-length", b"0")
        # h11 has refused a malformed Content-Length already; this is its size only
        if length.isdigit() and int(length) > self.max_body:
            raise Refused(413, "too_large", f"body over {self.max_body} bytes")

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.client_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Gone
                    chunk: bytes = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        raise Refused(413, "too_large", f"body over {self.max_body} bytes")
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise Refused(408, "timeout", f"body not sent in {self.client_timeout:g} s") from None

    async def _refuse(self, send: Send, r: Refused) -> None:
        payload = json.dumps(self.error_body(r.error, r.detail)).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close"),  # the rest of the body is never read
            *r.headers,
        ]
        await send({"type": "http.response.start", "status": r.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _replay(body: bytes, receive: Receive) -> Receive:
    """The application's `receive`: the whole body once, then the server's (disconnects)."""
    given = False

    async def again() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


# A JSON string, to its closing quote or to the end: a pattern that always matches from a quote
# scans each byte once (one that could fail would rescan the rest from every later quote).
_STRING = re.compile(rb'"(?:[^"\\]++|\\[\s\S]?)*+(?:"|\Z)')
_OTHER_BYTES = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")  # +1 and -1 as signed bytes


def nesting_depth(body: bytes) -> int:
    """How deep the JSON text `body` nests arrays and objects, without parsing it and without
    recursion: strings cut out, brackets kept as +1 / -1 steps, the highest running sum. Linear
    and in C but for the sum: about 3 ms for 64 KiB of brackets."""
    steps = memoryview(_STRING.sub(b"", body).translate(_STEPS, _OTHER_BYTES)).cast("b")
    return max(itertools.accumulate(steps), default=0)


__all__ = ["ErrorBody", "Refused", "RequestGuard", "nesting_depth", "plain_error"]
