"""A raw SMPP peer for wire tests: PDUs built with smsc.pdu, written and read on a plain asyncio
stream, so a test controls every byte, its timing and its source address (which the project's
own Link would hide or get right)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from smsc.pdu import BindTransceiver, Pdu, decode_pdu


async def connect(
    port: int, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to 127.0.0.1:port from `source` (any 127.x.y.z is a loopback address on Linux,
    so one machine can play several clients)."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def read_pdu(reader: asyncio.StreamReader, timeout: float = 5.0) -> Pdu | None:
    """The next PDU, or None once the peer has closed (or reset) the connection."""
    try:
        head = await asyncio.wait_for(reader.readexactly(4), timeout)
        length = int.from_bytes(head, "big")
        body = await asyncio.wait_for(reader.readexactly(length - 4), timeout)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return decode_pdu(head + body)


async def read_pdus(reader: asyncio.StreamReader, count: int, timeout: float = 5.0) -> list[Pdu]:
    """Up to `count` PDUs: fewer when the peer closes first."""
    out: list[Pdu] = []
    while len(out) < count:
        pdu = await read_pdu(reader, timeout)
        if pdu is None:
            break
        out.append(pdu)
    return out


async def closed_by_peer(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    """True when the peer closes the connection within `timeout` (what it sent first is read
    and dropped); False when it is still open then."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def bind_status(port: int, system_id: str, password: str, source: str = "127.0.0.1") -> int:
    """One bind_transceiver on a fresh connection: its command_status (-1: no answer)."""
    reader, writer = await connect(port, source)
    try:
        writer.write(BindTransceiver(sequence=1, system_id=system_id, password=password).encode())
        await writer.drain()
        resp = await read_pdu(reader)
        return -1 if resp is None else resp.status
    finally:
        writer.close()


def non_reading_socket() -> socket.socket:
    """A client socket that will never read: its receive buffer is shrunk before connecting (so
    TCP advertises a small window) and the kernel cannot hide what the server keeps buffered."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    return sock


def shrink_send_buffer(transport: asyncio.BaseTransport | None) -> None:
    """Shrink the server's kernel send buffer for this connection (a slow path instead of
    loopback's megabytes), so what the server buffers shows up in its own write buffer."""
    assert transport is not None
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def flood(
    sock: socket.socket, data: bytes, seconds: float, sample: Callable[[], object]
) -> tuple[int, bool]:
    """Send `data` over and over without ever reading, calling `sample()` after each send,
    until the peer closes or resets the connection or `seconds` pass: (bytes sent, closed)."""
    loop = asyncio.get_running_loop()
    sent = 0
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        try:
            await asyncio.wait_for(loop.sock_sendall(sock, data), 0.2)
        except TimeoutError:  # the server stopped reading: keep pushing, see if it holds
            pass
        except OSError:  # EPIPE / ECONNRESET: the server closed the connection
            return sent, True
        else:
            sent += len(data)
        sample()
    return sent, False
