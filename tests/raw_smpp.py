"""A raw SMPP peer for wire tests: PDUs built with smsc.pdu, written and read on a plain asyncio
stream, so a test controls every byte, its timing and its source address (which the project's
own Link would hide or get right)."""

from __future__ import annotations

import asyncio

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
