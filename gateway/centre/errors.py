"""Typed errors of the centre link: callers catch these, never httpx's or ssl's exceptions."""

from __future__ import annotations

from gateway.config_check import ConfigError


class CentreError(Exception):
    """Talking to the anti-fraud centre failed."""


class CentreUnavailable(CentreError):
    """The centre cannot be reached, timed out or answered 408/429/5xx: the report stays pending
    and a later attempt may succeed (the Idempotency-Key makes the repeat harmless)."""


class CentreTlsError(CentreUnavailable):
    """The TLS handshake failed (the centre refused our client certificate, or its certificate is
    not signed by the configured CA): retried, but an operator must look at the certificates."""


class ReportRejected(CentreError):
    """The centre refused this report for good (a 4xx other than 408/409/429), or it does not
    match the schema: it is kept, set aside and not retried."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CentreConfigError(CentreError, ConfigError):
    """The centre configuration is unusable (a certificate or key file missing or invalid). A
    ConfigError: the daemon reports it in one line at start-up, like a mistake in the file."""


__all__ = [
    "CentreConfigError",
    "CentreError",
    "CentreTlsError",
    "CentreUnavailable",
    "ReportRejected",
]
