"""Typed registry errors. Messages name the field and carry IINs masked (R7), never whole."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.store.errors import StoreError

if TYPE_CHECKING:
    from .importer import ImportReport


class RegistryError(ValueError):
    """Bad input or a request the registry refuses; the message names the field."""


class UnknownPerson(RegistryError):
    """No individual with this IIN or id is registered."""


class UnknownNumber(RegistryError):
    """The subscriber number is not in the registry."""


class UnknownApplication(RegistryError):
    """No application with this id."""


class NumberTaken(RegistryError):
    """The number is registered (not terminated) to another individual."""


class ApplicationStateError(RegistryError):
    """The application is not in a state that allows this step (e.g. approving a refused one)."""


class LimitExceeded(RegistryError):
    """55-1/55-2: the individual already holds `count` numbers of the `limit` allowed."""

    def __init__(self, message: str, *, count: int, limit: int) -> None:
        super().__init__(message)
        self.count = count
        self.limit = limit


class ImportInterrupted(StoreError):
    """The database failed during an import. Batches before `report.lines_done` are committed;
    the failing batch was rolled back whole. The database error is chained as __cause__."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report
