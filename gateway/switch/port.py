"""Blocking numbers on the switch (HLR / provisioning): the `SwitchControl` port and its HTTP
adapter. Point 120 (R5): a confirmed case has its numbers' communication services suspended.

The JSON protocol (docs/cases.md, "Switch protocol"):

    POST /v1/subscribers/{msisdn}/block     {"reason", "case_id"}  Idempotency-Key: KEY
    POST /v1/subscribers/{msisdn}/unblock   {"reason", "case_id"}  Idempotency-Key: KEY
    GET  /v1/subscribers/{msisdn}           -> {"msisdn", "status"}
    200  {"msisdn", "status": "blocked"|"active", "request_id", "changed"}
    4xx/5xx {"error": CODE, "detail": TEXT}

`Authorization: Bearer TOKEN` on every request. A request repeated with the same Idempotency-Key
gets the first answer again (no second change), so a retry after a lost answer or a crash is
safe. Errors: SwitchUnavailable (connection, timeout, 5xx, 429, 401/403: retrying later, after
the operator fixes the cause, can work) vs SwitchRejected (any other 4xx: the switch refuses this
request for good, e.g. an unknown number).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import quote

import httpx

STATUSES = ("blocked", "active", "unknown")
T = TypeVar("T")


class SwitchError(Exception):
    """The switch did not do what was asked."""


class SwitchUnavailable(SwitchError):
    """Not now: the switch is unreachable, slow, overloaded or refusing our credentials.
    The same request (same idempotency key) may be retried."""


class SwitchRejected(SwitchError):
    """The switch refused the request for good (unknown number, invalid request)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class SwitchResult:
    """The switch's answer to block/unblock. `changed` is False when the number already was in
    that state or the request was a replay of one already done (same idempotency key)."""

    msisdn: str
    status: str  # "blocked" | "active"
    request_id: str
    changed: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "msisdn": self.msisdn,
            "status": self.status,
            "request_id": self.request_id,
            "changed": self.changed,
        }


class SwitchControl(Protocol):
    """The port the case workflow uses. `idempotency_key` names one intended change: the same
    key sent again must not change anything twice (default: derived from case, action, number)."""

    async def block(
        self, msisdn: str, *, reason: str, case_id: str, idempotency_key: str | None = None
    ) -> SwitchResult: ...

    async def unblock(
        self, msisdn: str, *, reason: str, case_id: str, idempotency_key: str | None = None
    ) -> SwitchResult: ...

    async def status(self, msisdn: str) -> str: ...


class HttpSwitch:
    """SwitchControl over the JSON protocol above (httpx; one connection pool)."""

    def __init__(self, base_url: str, token: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.aclose()

    async def block(
        self, msisdn: str, *, reason: str, case_id: str, idempotency_key: str | None = None
    ) -> SwitchResult:
        return await self._change("block", msisdn, reason, case_id, idempotency_key)

    async def unblock(
        self, msisdn: str, *, reason: str, case_id: str, idempotency_key: str | None = None
    ) -> SwitchResult:
        return await self._change("unblock", msisdn, reason, case_id, idempotency_key)

    async def status(self, msisdn: str) -> str:
        response = await self._send("GET", _path(msisdn), None, {})
        if response.status_code == 404:
            return "unknown"
        body = _checked(response, f"status of {msisdn}")
        status = str(body.get("status", "unknown"))
        return status if status in STATUSES else "unknown"

    async def _change(
        self, action: str, msisdn: str, reason: str, case_id: str, key: str | None
    ) -> SwitchResult:
        headers = {"Idempotency-Key": key or f"{case_id}:{action}:{msisdn}"}
        payload = {"reason": reason, "case_id": case_id}
        response = await self._send("POST", f"{_path(msisdn)}/{action}", payload, headers)
        body = _checked(response, f"{action} {msisdn}")
        try:
            return SwitchResult(
                msisdn=str(body["msisdn"]),
                status=str(body["status"]),
                request_id=str(body.get("request_id", "")),
                changed=bool(body.get("changed", True)),
            )
        except KeyError as e:
            raise SwitchUnavailable(f"{action} {msisdn}: answer without {e}") from e

    async def _send(
        self, method: str, path: str, payload: dict[str, Any] | None, headers: dict[str, str]
    ) -> httpx.Response:
        try:
            return await self._client.request(method, path, json=payload, headers=headers)
        except httpx.TimeoutException as e:
            raise SwitchUnavailable(f"switch {self.base_url}: timeout ({type(e).__name__})") from e
        except httpx.HTTPError as e:
            raise SwitchUnavailable(f"switch {self.base_url}: {type(e).__name__}: {e}") from e


def _path(msisdn: str) -> str:
    return f"/v1/subscribers/{quote(msisdn, safe='+')}"


def _checked(response: httpx.Response, what: str) -> dict[str, Any]:
    """The JSON body of a 2xx answer; a typed error for anything else."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = response.status_code
    if 200 <= code < 300:
        return body
    detail = f"{what}: HTTP {code} {body.get('error', '')} {body.get('detail', '')}".rstrip()
    if code >= 500 or code in (401, 403, 408, 429):
        raise SwitchUnavailable(detail)
    raise SwitchRejected(detail, str(body.get("error", f"http_{code}")))


__all__ = [
    "STATUSES",
    "CountedSwitch",
    "HttpSwitch",
    "SwitchControl",
    "SwitchError",
    "SwitchRejected",
    "SwitchResult",
    "SwitchUnavailable",
]


class NoSwitch:
    """No switch configured: every block / unblock waits (SwitchUnavailable) and is retried by
    the case workflow once a switch is configured; the cases stay confirmed meanwhile."""

    async def block(
        self, msisdn: str, *, reason: str, case_id: str, idempotency_key: str | None = None
    ) -> SwitchResult:
        raise SwitchUnavailable("no switch configured ([switch] url)")

    async def unblock(
        self, msisdn: str, *, reason: str, case_id: str, idempotency_key: str | None = None
    ) -> SwitchResult:
        raise SwitchUnavailable("no switch configured ([switch] url)")

    async def status(self, msisdn: str) -> str:
        return "unknown"


class CountedSwitch:
    """A SwitchControl counting the calls it passes on by (action, outcome) for monitoring
    (gateway.metrics): outcome "ok", "unavailable", "rejected" or "error" (anything else).
    `open_switch` wraps every adapter in one; the number called is never kept."""

    def __init__(self, inner: SwitchControl) -> None:
        self.inner = inner
        self.calls: dict[tuple[str, str], int] = {}

    async def block(
        self, msisdn: str, *, reason: str, case_id: str, idempotency_key: str | None = None
    ) -> SwitchResult:
        call = self.inner.block(
            msisdn, reason=reason, case_id=case_id, idempotency_key=idempotency_key
        )
        return await self._counted("block", call)

    async def unblock(
        self, msisdn: str, *, reason: str, case_id: str, idempotency_key: str | None = None
    ) -> SwitchResult:
        call = self.inner.unblock(
            msisdn, reason=reason, case_id=case_id, idempotency_key=idempotency_key
        )
        return await self._counted("unblock", call)

    async def status(self, msisdn: str) -> str:
        return await self._counted("status", self.inner.status(msisdn))

    async def _counted(self, action: str, call: Awaitable[T]) -> T:
        outcome = "error"
        try:
            result = await call
            outcome = "ok"
            return result
        except SwitchUnavailable:
            outcome = "unavailable"
            raise
        except SwitchRejected:
            outcome = "rejected"
            raise
        finally:
            key = (action, outcome)
            self.calls[key] = self.calls.get(key, 0) + 1
