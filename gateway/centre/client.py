"""One HTTPS (mutual TLS) link to the centre: POST a report, get its acknowledgement.

    async with CentreClient(config) as client:
        ack = await client.send(report_id, document)   # Ack(status, ack_id)

Answers (docs/centre-api.md): 200/201/202 with {"ack_id": ...} = received; 409 = the centre has
it already (acknowledged too); 408, 429 and 5xx = try again later (CentreUnavailable); any other
4xx = refused for good (ReportRejected). Timeouts and connection failures are CentreUnavailable,
TLS handshake failures CentreTlsError. Nothing of the document (personal data) is put in an
error message.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from .config import CentreConfig
from .errors import CentreTlsError, CentreUnavailable, ReportRejected

ACK_STATUSES = frozenset({200, 201, 202})
RETRY_STATUSES = frozenset({408, 429})
E = TypeVar("E", bound=BaseException)


@dataclass(frozen=True, slots=True)
class Ack:
    status: int
    ack_id: str | None
    duplicate: bool  # 409: the centre had it already


class CentreClient:
    """An httpx.AsyncClient verifying the centre's certificate and presenting ours."""

    def __init__(self, config: CentreConfig, *, user_agent: str = "fraudgate") -> None:
        self.config = config
        self._context = config.ssl_context()  # CentreConfigError on unusable files
        self._user_agent = user_agent
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        self._client = httpx.AsyncClient(
            verify=self._context,
            timeout=httpx.Timeout(self.config.timeout),
            headers={"User-Agent": self._user_agent},
            follow_redirects=False,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def send(self, report_id: str, document: dict[str, Any]) -> Ack:
        """POST one report with `Idempotency-Key: report_id`."""
        if self._client is None:
            raise RuntimeError("CentreClient used outside `async with`")
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Idempotency-Key": report_id, "Content-Type": "application/json"}
        try:
            response = await self._client.post(
                self.config.reports_url, content=body, headers=headers
            )
        except httpx.TimeoutException as e:
            raise CentreUnavailable(f"centre {self.where}: timed out ({type(e).__name__})") from e
        except httpx.TransportError as e:
            raise _transport_error(e, self.where) from e
        return _answer(response)

    @property
    def where(self) -> str:
        return httpx.URL(self.config.url).netloc.decode()


def _transport_error(e: httpx.TransportError, where: str) -> CentreUnavailable:
    tls = _cause(e, ssl.SSLError)
    if tls is not None:
        reason = getattr(tls, "reason", None) or type(tls).__name__
        return CentreTlsError(f"centre {where}: TLS handshake failed: {reason}")
    if isinstance(e, httpx.ReadError) and _cause(e, ConnectionResetError) is not None:
        # TLS 1.3 checks the client certificate after the client's handshake is done: a server
        # that refuses it without sending an alert (Python's asyncio servers reset) shows up
        # as a reset on the first read. A crash mid-request looks the same: retried either way.
        return CentreTlsError(
            f"centre {where}: connection reset on reading the answer: the centre probably "
            "refused our client certificate (TLS 1.3)"
        )
    return CentreUnavailable(f"centre {where}: {type(e).__name__}: {_first_line(e)}")


def _cause(e: BaseException, kind: type[E]) -> E | None:
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _answer(response: httpx.Response) -> Ack:
    status = response.status_code
    if status in ACK_STATUSES or status == 409:
        ack_id = _ack_id(response)
        if ack_id is None and status != 409:
            raise CentreUnavailable(f"centre answered {status} without an ack_id")
        return Ack(status, ack_id, duplicate=status == 409)
    if status in RETRY_STATUSES or status >= 500:
        raise CentreUnavailable(f"centre answered {status} {response.reason_phrase}")
    raise ReportRejected(
        f"centre refused the report: {status} {_error_code(response)}", status=status
    )


def _ack_id(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get("ack_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) and value else None


def _error_code(response: httpx.Response) -> str:
    """The centre's error code and the paths it names (never echoed values)."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if not isinstance(body, dict):
        return response.reason_phrase
    code = str(body.get("error", response.reason_phrase))[:100]
    paths = body.get("paths")
    if isinstance(paths, list):
        code += " at " + ", ".join(str(p)[:100] for p in paths[:5])
    return code


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else "connection failed"


__all__ = ["Ack", "CentreClient"]
