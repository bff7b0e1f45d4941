"""The subscriber registry (R6, R3; Rules points 55-1...55-6): individuals by IIN, the numbers
registered to them, their devices, and applications for more than ten numbers.

    registry = Registry(store)                   # store: gateway.store.Store, migrated
    found = await registry.subscriber_of("+77011234567", at=sent_at)
    if found:
        person, numbers = found                  # R3: the holder then and all their numbers

Import formats and the limit rule: docs/registry.md.
"""

from __future__ import annotations

from .errors import (
    ApplicationStateError,
    ImportInterrupted,
    LimitExceeded,
    NumberTaken,
    RegistryError,
    UnknownApplication,
    UnknownNumber,
    UnknownPerson,
)
from .importer import ImportReport, Rejection
from .readers import SourceRow, Unreadable, read_csv, read_json
from .repository import Registry
from .values import (
    DEFAULT_LIMIT,
    Application,
    ApplicationStatus,
    DeviceKind,
    DeviceSpec,
    LimitCheck,
    NumberRecord,
    NumberStatus,
    OverLimit,
    Person,
    join_need,
    normalize_msisdn,
)

__all__ = [
    "DEFAULT_LIMIT",
    "Application",
    "ApplicationStateError",
    "ApplicationStatus",
    "DeviceKind",
    "DeviceSpec",
    "ImportInterrupted",
    "ImportReport",
    "LimitCheck",
    "LimitExceeded",
    "NumberRecord",
    "NumberStatus",
    "NumberTaken",
    "OverLimit",
    "Person",
    "Registry",
    "RegistryError",
    "Rejection",
    "SourceRow",
    "UnknownApplication",
    "UnknownNumber",
    "UnknownPerson",
    "Unreadable",
    "join_need",
    "normalize_msisdn",
    "read_csv",
    "read_json",
]
