"""The API's application with the console beside it, on one server (gateway/http/dispatch.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.http.dispatch import PathDispatch
from gateway.http.guard import RequestGuard

from .app import MAX_FORM, Console, SecurityHeaders, Sources
from .sessions import SessionLimits


def with_console(
    api_app: Any,
    *,
    sources: Sources | None = None,
    limits: SessionLimits | None = None,
    secure: bool = False,
    client_timeout: float = 10.0,
    clock: Callable[[], float] | None = None,
) -> ConsoleDispatch:
    """`api_app` (build_api's) serving /v1 as before, and the console under /console, built on
    the same services, tokens and look-up limits. `secure`: served over TLS (Secure cookies).
    The console's bodies are forms: bounded at MAX_FORM and read with the API's deadline."""
    state = api_app.state
    extra: dict[str, Any] = {} if clock is None else {"clock": clock}
    console = Console(
        state.api, state.tokens, state.lookups, sources=sources, limits=limits, secure=secure,
        **extra,
    )  # fmt: skip
    guarded = SecurityHeaders(
        RequestGuard(console.app(), max_body=MAX_FORM, client_timeout=client_timeout)
    )
    return ConsoleDispatch(api_app, {"/console": guarded}, console)


class ConsoleDispatch(PathDispatch):
    """The dispatch, holding the console (its sessions, for the daemon's housekeeping)."""

    def __init__(self, default: Any, prefixed: dict[str, Any], console: Console) -> None:
        super().__init__(default, prefixed)
        self.console = console
