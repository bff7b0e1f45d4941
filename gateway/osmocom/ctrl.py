"""The Osmocom CTRL protocol (osmo-hlr TCP 4259, osmo-msc 4255): a sans-I/O codec and a small
asyncio client.

CTRL messages are ASCII inside IPA frames of protocol 0xEE, extension 0x00 (gateway.osmocom.ipa):

    GET <id> <var>                  ->  GET_REPLY <id> <var> <value>
    SET <id> <var> <value>          ->  SET_REPLY <id> <var> <value>
                                        ERROR <id> <message>
    TRAP 0 <var> <value>               (unsolicited, from the server)

Values may hold spaces and newlines (osmo-hlr's `subscriber.by-msisdn-N.info` is a multi-line
"key<TAB>value" list). A request the server cannot even parse is answered `ERROR err <message>`
(id literally "err"); osmo-hlr 1.5 does that for a non-numeric id or an unknown verb. IPA CCM
PINGs may arrive between messages and are answered with PONG.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Self

from gateway.osmocom import ipa

log = logging.getLogger(__name__)


class Kind(StrEnum):
    GET = "GET"
    SET = "SET"
    GET_REPLY = "GET_REPLY"
    SET_REPLY = "SET_REPLY"
    ERROR = "ERROR"
    TRAP = "TRAP"


REPLY_TO = {Kind.GET: Kind.GET_REPLY, Kind.SET: Kind.SET_REPLY}
_WITH_VALUE = {Kind.SET, Kind.GET_REPLY, Kind.SET_REPLY, Kind.TRAP}


class CtrlError(Exception):
    """Base of the CTRL errors."""


class CtrlProtocolError(CtrlError):
    """Bytes that are not a CTRL message (or not IPA framing)."""


class CtrlConnectionError(CtrlError):
    """The TCP link could not be opened or was lost before the answer came."""


class CtrlTimeout(CtrlError):
    """No answer within the timeout."""


class CtrlCommandError(CtrlError):
    """The server answered ERROR: `message` is its text ("No such subscriber.")."""

    def __init__(self, message: str, var: str = "") -> None:
        super().__init__(f"{var}: {message}" if var else message)
        self.message = message
        self.var = var


@dataclass(frozen=True, slots=True)
class CtrlMessage:
    """One CTRL message. For ERROR, `value` is the message text and `var` is empty."""

    kind: Kind
    id: str
    var: str = ""
    value: str = ""

    def encode(self) -> bytes:
        """The CTRL text (without the IPA header)."""
        if not self.id or any(c.isspace() for c in self.id):
            raise CtrlProtocolError(f"bad message id {self.id!r}")
        if self.kind is Kind.ERROR:
            return f"ERROR {self.id} {self.value}".encode()
        if not self.var or any(c.isspace() for c in self.var):
            raise CtrlProtocolError(f"bad variable name {self.var!r}")
        if self.kind in _WITH_VALUE:
            if self.value == "":
                raise CtrlProtocolError(f"{self.kind} {self.var} needs a value")
            return f"{self.kind} {self.id} {self.var} {self.value}".encode()
        return f"{self.kind} {self.id} {self.var}".encode()

    def frame(self) -> bytes:
        """The message in its IPA frame, ready for the socket."""
        return ipa.encode_ctrl(self.encode())


def parse(text: bytes) -> CtrlMessage:
    """A CTRL message from the payload of an IPA 0xEE/0x00 frame."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CtrlProtocolError(f"not UTF-8 text: {text[:60]!r}") from e
    verb, _, rest = decoded.partition(" ")
    try:
        kind = Kind(verb)
    except ValueError:
        raise CtrlProtocolError(f"unknown CTRL verb {verb[:20]!r}") from None
    msg_id, _, rest = rest.partition(" ")
    if not msg_id:
        raise CtrlProtocolError(f"{kind} without an id")
    if kind is Kind.ERROR:
        return CtrlMessage(kind, msg_id, "", rest)
    var, _, value = rest.partition(" ")
    if not var:
        raise CtrlProtocolError(f"{kind} {msg_id} without a variable")
    if kind in _WITH_VALUE and not value and not rest.endswith(" "):
        raise CtrlProtocolError(f"{kind} {msg_id} {var} without a value")
    if kind is Kind.GET and value:
        raise CtrlProtocolError(f"GET {msg_id} {var} with a value")
    return CtrlMessage(kind, msg_id, var, value)


class CtrlProtocol:
    """The client side of one CTRL link, sans-I/O: requests get fresh ids; `receive_data`
    returns the CTRL messages in the bytes received and queues PONGs for PINGs; frames of other
    IPA protocols are ignored. Bytes to write accumulate in `data_to_send()`."""

    def __init__(self, first_id: int = 1) -> None:
        self._next_id = first_id
        self._decoder = ipa.IpaDecoder()
        self._out = bytearray()
        self.pings_answered = 0

    def request(self, kind: Kind, var: str, value: str = "") -> CtrlMessage:
        if kind not in REPLY_TO:
            raise CtrlProtocolError(f"a client sends GET or SET, not {kind}")
        msg = CtrlMessage(kind, str(self._next_id), var, value)
        self._out += msg.frame()  # encodes (and validates) before the id is spent
        self._next_id = self._next_id + 1 if self._next_id < 2**31 - 1 else 1
        return msg

    def receive_data(self, data: bytes) -> list[CtrlMessage]:
        try:
            frames = self._decoder.feed(data)
        except ipa.IpaError as e:
            raise CtrlProtocolError(str(e)) from e
        messages = []
        for frame in frames:
            answer = ipa.ccm_answer(frame)
            if answer is not None:
                self._out += answer
                self.pings_answered += 1
            elif frame.proto == ipa.Proto.OSMO and frame.ext == ipa.OsmoExt.CTRL:
                messages.append(parse(frame.payload))
        return messages

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out


def answers(request: CtrlMessage, reply: CtrlMessage) -> bool:
    """Whether `reply` is the answer to `request`. An `ERROR err ...` (a request the server could
    not parse) answers the one request in flight: the client sends one at a time."""
    if reply.kind is Kind.ERROR:
        return reply.id == request.id or not reply.id.isdigit()
    return reply.kind is REPLY_TO[request.kind] and reply.id == request.id


class CtrlClient:
    """An asyncio CTRL client: `async with CtrlClient(host, port) as c: await c.get(var)`.

    One request at a time (a lock): replies are matched by id, stale replies (to a request that
    timed out) are dropped, PINGs answered, TRAPs kept in `traps` (the newest 100). The TCP link
    is opened on the first call and again on the call after it was lost or timed out; a call
    that fails is not retried here (a SET may or may not have been done: the caller decides)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4259, *, timeout: float = 5.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.traps: collections.deque[CtrlMessage] = collections.deque(maxlen=100)
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._proto = CtrlProtocol()

    @property
    def where(self) -> str:
        return f"CTRL {self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._reader is not None and not self._reader.at_eof()

    @property
    def pings_answered(self) -> int:
        return self._proto.pings_answered

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def get(self, var: str) -> str:
        return await self._call(Kind.GET, var, "")

    async def set(self, var: str, value: str) -> str:
        return await self._call(Kind.SET, var, value)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _call(self, kind: Kind, var: str, value: str) -> str:
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout):
                    reply, request = await self._exchange(kind, var, value)
            except TimeoutError:
                await self.close()
                raise CtrlTimeout(
                    f"{self.where}: no answer to {kind} {var} in {self.timeout:g} s"
                ) from None
            except (OSError, EOFError) as e:
                await self.close()
                raise CtrlConnectionError(f"{self.where}: {type(e).__name__}: {e}") from e
            except CtrlProtocolError:
                await self.close()
                raise
        if reply.kind is Kind.ERROR:
            raise CtrlCommandError(reply.value, request.var)
        return reply.value

    async def _exchange(self, kind: Kind, var: str, value: str) -> tuple[CtrlMessage, CtrlMessage]:
        if not self.connected:
            await self.close()
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            self._proto = CtrlProtocol()
        assert self._reader is not None and self._writer is not None
        request = self._proto.request(kind, var, value)
        self._writer.write(self._proto.data_to_send())
        await self._writer.drain()
        while True:
            data = await self._reader.read(65536)
            if not data:
                raise EOFError("connection closed by the server")
            messages = self._proto.receive_data(data)
            if out := self._proto.data_to_send():
                self._writer.write(out)  # PONGs
            for msg in messages:
                if answers(request, msg):
                    return msg, request
                if msg.kind is Kind.TRAP:
                    self.traps.append(msg)
                else:
                    log.debug("%s: dropped a stale %s %s", self.where, msg.kind, msg.id)


__all__ = [
    "CtrlClient",
    "CtrlCommandError",
    "CtrlConnectionError",
    "CtrlError",
    "CtrlMessage",
    "CtrlProtocol",
    "CtrlProtocolError",
    "CtrlTimeout",
    "Kind",
    "answers",
    "parse",
]
