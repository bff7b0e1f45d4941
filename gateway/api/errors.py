"""Typed API errors and the handlers that turn domain errors into HTTP answers.

No answer echoes what the client sent: a validation error lists where and why (loc, msg,
type), never the value (it may be an IIN, a name or a number).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from gateway.cases import CaseNotFound, ConcurrentUpdate, IllegalTransition
from gateway.config_check import ConfigError
from gateway.feedback import FeedbackInvalid, FeedbackNotFound, FeedbackRefused
from gateway.store import StoreError, StoreUnavailable

log = logging.getLogger(__name__)


class ApiConfigError(ConfigError):
    """The API cannot be set up as configured (the message says which key, why). A ConfigError:
    the daemon reports it in one line at start-up, like a mistake in the file."""


class ApiError(Exception):
    """An answer other than 2xx: status, a stable error code, optional extra fields."""

    def __init__(self, status: int, error: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = headers


def unauthorized() -> ApiError:
    """Missing, malformed or unknown token: the same answer for each (no hint which)."""
    return ApiError(401, "unauthorized", {"WWW-Authenticate": "Bearer"})


def forbidden() -> ApiError:
    return ApiError(403, "forbidden")


def rate_limited(wait: float) -> ApiError:
    """Too many look-ups: `Retry-After` is whole seconds until the next one is allowed."""
    return ApiError(429, "rate_limited", {"Retry-After": str(max(1, math.ceil(wait)))})


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


async def _api_error(_r: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, ApiError)
    return _json(e.status, {"error": e.error}, e.headers)


async def _not_found(_r: Request, _e: Exception) -> JSONResponse:
    return _json(404, {"error": "not_found"})


async def _illegal(_r: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, IllegalTransition)
    body = {"error": "illegal_transition", "state": e.state.value, "action": e.action.value}
    return _json(409, body | {"detail": str(e)})


async def _concurrent(_r: Request, _e: Exception) -> JSONResponse:
    return _json(409, {"error": "concurrent_update", "detail": "the case changed; read it again"})


async def _feedback_refused(_r: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, FeedbackRefused)
    return _json(409, {"error": e.code, "detail": e.detail})


async def _feedback_invalid(_r: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, FeedbackInvalid)
    return _json(422, {"error": e.code, "detail": e.detail})


async def _stated_time(_r: Request, e: Exception) -> JSONResponse:
    from .complaints import StatedTimeError

    assert isinstance(e, StatedTimeError)
    detail = [{"loc": ["body", e.field], "msg": str(e), "type": "value_error"}]
    return _json(422, {"detail": detail})


async def _notice(_r: Request, e: Exception) -> JSONResponse:
    message = str(e)
    status = 404 if message.startswith("no centre report") else 409
    if message.startswith("status "):  # an unknown status filter
        status = 422
    return _json(status, {"error": "not_found" if status == 404 else "notice", "detail": message})


async def _unavailable(r: Request, e: Exception) -> JSONResponse:
    log.warning("%s %s: store unavailable (%s)", r.method, r.url.path, type(e).__name__)
    return _json(503, {"error": "unavailable"}, {"Retry-After": "5"})


async def _store_error(r: Request, e: Exception) -> JSONResponse:
    log.error("%s %s: store error (%s)", r.method, r.url.path, type(e).__name__)
    return _json(500, {"error": "store_error"})


async def _invalid(_r: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, RequestValidationError)
    detail = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in e.errors()
    ]
    return _json(422, {"detail": detail})


def install(app: FastAPI) -> None:
    """Register the handlers (a subclass is matched before its base: StoreUnavailable first)."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(CaseNotFound, _not_found)
    app.add_exception_handler(IllegalTransition, _illegal)
    app.add_exception_handler(ConcurrentUpdate, _concurrent)
    app.add_exception_handler(FeedbackNotFound, _not_found)
    app.add_exception_handler(FeedbackRefused, _feedback_refused)
    app.add_exception_handler(FeedbackInvalid, _feedback_invalid)
    from gateway.centre.notices import NoticeError

    from .complaints import StatedTimeError

    app.add_exception_handler(StatedTimeError, _stated_time)
    app.add_exception_handler(NoticeError, _notice)
    app.add_exception_handler(StoreUnavailable, _unavailable)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(RequestValidationError, _invalid)
