"""Typed reads from parsed TOML with errors that name the key and the reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range; the message says
    which key (as a dotted path) and why."""


class Table:
    """A TOML table being read; remembers its path and refuses unknown keys at `done()`."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected a table, got {type(data).__name__}")
        self.data: Mapping[str, Any] = data
        self.path = path
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, kind: type[T], default: T | None = None) -> T:
        self.seen.add(name)
        if name not in self.data:
            if default is None:
                raise ConfigError(f"{self.key(name)}: required")
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(
                f"{self.key(name)}: expected {kind.__name__}, got {type(value).__name__} {value!r}"
            )
        return value

    def number(
        self, name: str, default: float, *, minimum: float = 0.0, maximum: float | None = None
    ) -> float:
        value = self.get(name, float, default)
        if value < minimum:
            raise ConfigError(f"{self.key(name)}: must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{self.key(name)}: must be at most {maximum:g}, got {value}")
        return value

    def file(self, name: str, base: Path) -> str:
        """A file named relative to `base` (the project directory); "" when not set."""
        value = self.get(name, str, "")
        return str(base / value) if value else ""

    def dates(self, name: str) -> tuple[str, ...]:
        """A list of YYYY-MM-DD dates."""
        values = self.get(name, list, [])
        for v in values:
            try:
                dt.date.fromisoformat(str(v))
            except ValueError:
                raise ConfigError(f"{self.key(name)}: {v!r} is not a YYYY-MM-DD date") from None
        return tuple(str(v) for v in values)

    def integer(
        self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value = self.get(name, int, default)
        if value < minimum or (maximum is not None and value > maximum):
            rng = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(f"{self.key(name)}: must be {rng}, got {value}")
        return value

    def tables(self, name: str) -> list[Table]:
        self.seen.add(name)
        items = self.data.get(name, [])
        if not isinstance(items, list):
            raise ConfigError(f"{self.key(name)}: expected an array of tables ([[{name}]])")
        return [Table(item, f"{self.key(name)}[{i}]") for i, item in enumerate(items)]

    def table(self, name: str) -> Table:
        self.seen.add(name)
        return Table(self.data.get(name, {}), self.key(name))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise ConfigError(f"{self.key(unknown[0])}: unknown key")


def parse_hostport(text: str, what: str, *, listen: bool = False) -> tuple[str, int]:
    """'HOST:PORT' or '[v6addr]:PORT' -> (host, port). For a listening address (`listen`) the
    host may be empty (127.0.0.1) and port 0 picks a free port; to connect, both are needed."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    lowest = 0 if listen else 1
    if not sep or not port.isdigit() or not lowest <= int(port) <= 65535 or not (host or listen):
        raise ConfigError(f"{what}: expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)
