"""A hostile HTTP client, run as its own process so that the server's process and event loop are
measured alone: `python tests/http_flood.py PORT --size N [--chunked] [--token T] ...` sends
request headers, then streams a body of zeros as fast as the server takes it, reading whatever
the server answers meanwhile. It prints one JSON line:

    {"status": 401, "answered_after": 0.002, "sent": 1048576, "closed": true, "elapsed": 0.01}

`answered_after`: seconds from the end of the headers to the first byte of the answer (null if
none came); `sent`: body bytes the kernel accepted; `closed`: the server closed or reset the
connection. With --chunked the body goes in 64 KiB chunks for at most --seconds, then the last
chunk; otherwise Content-Length is --size and at most --size bytes are sent.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import ssl
import sys
import time
from collections.abc import Sequence

CHUNK = 64 * 1024


def _connect(args: argparse.Namespace) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    if args.cafile is None:
        return sock
    ctx = ssl.create_default_context(cafile=args.cafile)
    if args.cert is not None:
        ctx.load_cert_chain(args.cert, args.key)
    tls = ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    tls.settimeout(10)
    return tls


def _head(args: argparse.Namespace) -> bytes:
    lines = [f"POST {args.path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if args.token is not None:
        lines.append(f"Authorization: Bearer {args.token}")
    lines.append("Transfer-Encoding: chunked" if args.chunked else f"Content-Length: {args.size}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _status(answer: bytes) -> int | None:
    first = answer.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) >= 2 and first[1].isdigit() else None


def flood(args: argparse.Namespace) -> dict[str, object]:
    sock = _connect(args)
    sock.sendall(_head(args))
    start = time.monotonic()
    frame = f"{CHUNK:x}\r\n".encode() + b"0" * CHUNK + b"\r\n" if args.chunked else b"0" * CHUNK
    answer, answered_at, sent, closed = b"", None, 0, False
    pending = memoryview(b"")  # the rest of a frame the kernel did not take yet
    sock.setblocking(False)
    while not closed and time.monotonic() - start < args.seconds:
        if not pending and (args.chunked or sent < args.size):
            pending = memoryview(frame if args.chunked else frame[: min(CHUNK, args.size - sent)])
        readable, writable, _ = select.select([sock], [sock] if pending else [], [], 0.2)
        try:
            if readable:
                data = sock.recv(65536)
                closed = not data
                answered_at = answered_at or (time.monotonic() if data else None)
                answer += data
            elif writable:
                n = sock.send(pending)
                pending, sent = pending[n:], sent + n
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            continue
        except (ConnectionError, ssl.SSLError, OSError):
            closed = True  # an answer may have come just before: read what the kernel holds
            if b"\r\n\r\n" not in answer:
                more = _leftover(sock)
                answered_at = answered_at or (time.monotonic() if more else None)
                answer += more
        if not pending and not args.chunked and sent >= args.size and b"\r\n\r\n" in answer:
            break
    if not closed:
        if args.chunked:
            _send_last_chunk(sock, bytes(pending))
        more, closed = _await_answer(sock, answer)
        answered_at = answered_at or (time.monotonic() if more else None)
        answer += more
    sock.close()
    return {
        "status": _status(answer),
        "answered_after": None if answered_at is None else round(answered_at - start, 4),
        "sent": sent,
        "closed": closed,
        "elapsed": round(time.monotonic() - start, 3),
    }


def _leftover(sock: socket.socket) -> bytes:
    """What can still be read after the server hung up (a reset may follow its answer)."""
    got = b""
    sock.settimeout(1.0)
    while True:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionError, ssl.SSLError, OSError):
            return got
        if not data:
            return got
        got += data


def _send_last_chunk(sock: socket.socket, pending: bytes) -> None:
    """The server took every chunk for --seconds: end the body as a patient client would."""
    sock.setblocking(True)
    try:
        sock.sendall(pending + b"0\r\n\r\n")
    except OSError:
        return


def _await_answer(sock: socket.socket, answer: bytes, timeout: float = 60.0) -> tuple[bytes, bool]:
    """What more the server says once the body is sent, and whether it closed."""
    sock.settimeout(timeout)
    more = b""
    while b"\r\n\r\n" not in answer + more:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionError, ssl.SSLError, OSError):
            return more, True
        if not data:
            return more, True
        more += data
    return more, False


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("port", type=int)
    p.add_argument("--path", default="/v1/complaints")
    p.add_argument("--size", type=int, default=1 << 30, help="Content-Length (bytes)")
    p.add_argument("--chunked", action="store_true")
    p.add_argument("--seconds", type=float, default=3.0, help="stop streaming after this")
    p.add_argument("--token")
    p.add_argument("--cafile", help="TLS: the server's CA")
    p.add_argument("--cert", help="TLS: a client certificate")
    p.add_argument("--key")
    args = p.parse_args(argv)
    print(json.dumps(flood(args)))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
