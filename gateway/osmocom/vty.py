"""The Osmocom VTY (a telnet command line: osmo-msc 4254, osmo-hlr 4258) as an asyncio client.

Sans-I/O parts: `TelnetFilter` strips telnet negotiation (RFC 854: IAC WILL/WONT/DO/DONT <opt>,
IAC SB ... IAC SE, IAC IAC = a literal 0xFF) — osmo-msc 1.9 opens with `ff fb 01 ff fb 03 ff fe
22 ff fd 1f` (WILL ECHO, WILL SGA, DONT LINEMODE, DO NAWS) and needs no answer; `find_prompt`
recognises the prompt `Name> ` (view node), `Name# ` (enable) or `Name(config-x)# `.

Commands end with a bare LF: osmo's VTY takes CR and LF each as a line end, so CR LF would run
an empty second command and print a second prompt. Answers to commands that work may start
with '%' too ("% Created subscriber ..."); `VTY_ERROR` tells the error lines apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from types import TracebackType
from typing import Self

IAC, SB, SE = 0xFF, 0xFA, 0xF0
WILL, WONT, DO, DONT = 0xFB, 0xFC, 0xFD, 0xFE

VTY_ERROR = re.compile(
    r"^% (Unknown command|Command incomplete|There is no matched command|Ambiguous command"
    r"|Error|.*[Ff]ail|No such|Cannot|Invalid)",
    re.MULTILINE,
)
PROMPT = re.compile(
    r"(?:^|\n)(?P<name>[A-Za-z0-9_.\-]+)(?P<node>\([A-Za-z0-9_.\-]+\))?(?P<mode>[>#]) \Z"
)


class VtyError(Exception):
    """Base of the VTY errors."""


class VtyConnectionError(VtyError):
    """The telnet link could not be opened or was closed."""


class VtyTimeout(VtyError):
    """No prompt within the timeout."""


class VtyCommandError(VtyError):
    """The command was refused: its output has an error line ('% Unknown command.', ...)."""

    def __init__(self, command: str, output: str) -> None:
        super().__init__(f"VTY {command!r}: {output.strip()[:300]}")
        self.command = command
        self.output = output


class TelnetFilter:
    """Bytes from a telnet server in, plain data out; negotiation removed (also when split
    across reads)."""

    def __init__(self) -> None:
        self._state = "data"  # data | iac | option | sb | sb_iac

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            state = self._state
            if state == "data":
                if byte == IAC:
                    self._state = "iac"
                else:
                    out.append(byte)
            elif state == "iac":
                if byte == IAC:
                    out.append(IAC)
                    self._state = "data"
                elif byte in (WILL, WONT, DO, DONT):
                    self._state = "option"
                elif byte == SB:
                    self._state = "sb"
                else:  # a two-byte command (NOP, GA, ...)
                    self._state = "data"
            elif state == "option":
                self._state = "data"
            elif state == "sb":
                if byte == IAC:
                    self._state = "sb_iac"
            else:  # sb_iac
                self._state = "data" if byte == SE else "sb"
        return bytes(out)


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str  # "OsmoMSC"
    node: str  # "" or "(config)"
    mode: str  # ">" view, "#" enable

    @property
    def text(self) -> str:
        return f"{self.name}{self.node}{self.mode} "


def find_prompt(text: str) -> Prompt | None:
    """The prompt that `text` ends with, if it ends with one."""
    m = PROMPT.search(text)
    if m is None:
        return None
    return Prompt(m["name"], m["node"] or "", m["mode"])


def command_output(command: str, text: str) -> str:
    """What a command printed: `text` without the echoed command line and the final prompt."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    prompt = find_prompt(text)
    if prompt is not None:
        text = text[: len(text) - len(prompt.text)]
    first, _, rest = text.partition("\n")
    if first.strip() == command.strip():
        text = rest
    return text.strip("\n")


class VtyClient:
    """`async with VtyClient(host, port) as vty: await vty.command("show version")`.

    Opens the telnet link, waits for the prompt, enters `enable` (unless `enable=False`);
    `command` returns the output and raises VtyCommandError on an error line (`check=True`)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 4254, *, timeout: float = 5.0,
        enable: bool = True,
    ) -> None:  # fmt: skip
        self.host, self.port, self.timeout, self.enable = host, port, timeout, enable
        self.prompt: Prompt | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._telnet = TelnetFilter()

    @property
    def where(self) -> str:
        return f"VTY {self.host}:{self.port}"

    async def __aenter__(self) -> Self:
        try:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        except TimeoutError:
            raise VtyTimeout(f"{self.where}: no connection in {self.timeout:g} s") from None
        except OSError as e:
            raise VtyConnectionError(f"{self.where}: {type(e).__name__}: {e}") from e
        try:
            await self._until_prompt("(connect)")
            if self.enable:
                await self.command("enable")
                if self.prompt is None or self.prompt.mode != "#":
                    raise VtyCommandError("enable", "the prompt did not change to '#'")
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            with contextlib.suppress(OSError):
                writer.write(b"exit\n")
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def command(self, command: str, *, check: bool = True) -> str:
        if "\n" in command or "\r" in command:
            raise ValueError("one VTY command per call, without line ends")
        if self._writer is None:
            raise VtyConnectionError(f"{self.where}: not connected")
        try:
            self._writer.write(command.encode() + b"\n")
            await self._writer.drain()
        except OSError as e:
            raise VtyConnectionError(f"{self.where}: {type(e).__name__}: {e}") from e
        output = command_output(command, await self._until_prompt(command))
        if check and VTY_ERROR.search(output):
            raise VtyCommandError(command, output)
        return output

    async def _until_prompt(self, what: str) -> str:
        assert self._reader is not None
        text = ""
        try:
            async with asyncio.timeout(self.timeout):
                while (prompt := find_prompt(text)) is None:
                    chunk = await self._reader.read(4096)
                    if not chunk:
                        raise VtyConnectionError(
                            f"{self.where}: closed during {what!r}; got {text[-200:]!r}"
                        )
                    text += self._telnet.feed(chunk).decode("utf-8", "replace")
        except TimeoutError:
            raise VtyTimeout(
                f"{self.where}: no prompt after {what!r} in {self.timeout:g} s; got {text[-200:]!r}"
            ) from None
        except OSError as e:
            raise VtyConnectionError(f"{self.where}: {type(e).__name__}: {e}") from e
        self.prompt = prompt
        return text


__all__ = [
    "VTY_ERROR",
    "Prompt",
    "TelnetFilter",
    "VtyClient",
    "VtyCommandError",
    "VtyConnectionError",
    "VtyError",
    "VtyTimeout",
    "command_output",
    "find_prompt",
]
