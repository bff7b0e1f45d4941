"""The HTTP API for analysts, the help line, supervisors and auditors (R4, R5, R7, R8).

    tokens = {hash_token(secret): ("u-aigerim", "analyst")}   # configure hashes, not secrets
    app = build_api(cases, registry, store, tokens, clock=time.time)
    async with ApiServer(ApiConfig(port=8443, cert=cert, key=key), app):
        ...

Roles, masking, audit and examples: docs/api.md; the contract: docs/openapi.json
(`python -m gateway.api.openapi > docs/openapi.json` regenerates it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.lazy import exports

if TYPE_CHECKING:
    from .app import build_api
    from .audit import AuditEntry, AuditLog, AuditQuery
    from .auth import (
        PERMISSIONS,
        Permission,
        Principal,
        Role,
        TokenConfigError,
        TokenTable,
        hash_token,
    )
    from .errors import ApiConfigError
    from .limits import ApiLimits, LookupLimiter
    from .server import ApiConfig, ApiServer

__getattr__ = exports(
    __name__,
    {
        "build_api": ".app",
        "AuditEntry": ".audit",
        "AuditLog": ".audit",
        "AuditQuery": ".audit",
        "PERMISSIONS": ".auth",
        "Permission": ".auth",
        "Principal": ".auth",
        "Role": ".auth",
        "TokenConfigError": ".auth",
        "TokenTable": ".auth",
        "hash_token": ".auth",
        "ApiConfigError": ".errors",
        "ApiLimits": ".limits",
        "LookupLimiter": ".limits",
        "ApiConfig": ".server",
        "ApiServer": ".server",
    },
)

__all__ = [
    "PERMISSIONS",
    "ApiConfig",
    "ApiConfigError",
    "ApiLimits",
    "ApiServer",
    "AuditEntry",
    "AuditLog",
    "AuditQuery",
    "LookupLimiter",
    "Permission",
    "Principal",
    "Role",
    "TokenConfigError",
    "TokenTable",
    "build_api",
    "hash_token",
]
