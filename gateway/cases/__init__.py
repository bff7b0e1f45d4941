"""Cases: the legal workflow of points 119-120 (R4, R5, R8). See docs/cases.md.

cases = Cases(store, KzCalendar(), switch=HttpSwitch(...), registry=Registry(store),
              reports=CentreOutbox(...), policy=Policy())
case = await cases.open(source="complaint", numbers=["+77011234567"], received_at=now)
await cases.start_verification(case.id, analyst, "checking the forwarded SMS")
await cases.confirm(case.id, analyst, "smishing confirmed", [Evidence("message", msg_id)])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.lazy import exports

if TYPE_CHECKING:
    from .model import (
        SYSTEM,
        TRANSITIONS,
        Action,
        Actor,
        CaseError,
        CaseFilter,
        CaseNotFound,
        CaseView,
        ConcurrentUpdate,
        DetectionReport,
        Effect,
        Evidence,
        IllegalTransition,
        Notice,
        NumberLike,
        PersonLike,
        Policy,
        RegistryPort,
        ReportSink,
        Source,
        State,
        Step,
        SuspendScope,
        SwitchActionView,
        TransitionRecord,
    )
    from .service import WORKING_DAYS, Cases, OpenRequest

__getattr__ = exports(
    __name__,
    {
        "SYSTEM": ".model",
        "TRANSITIONS": ".model",
        "Action": ".model",
        "Actor": ".model",
        "CaseError": ".model",
        "CaseFilter": ".model",
        "CaseNotFound": ".model",
        "CaseView": ".model",
        "ConcurrentUpdate": ".model",
        "Effect": ".model",
        "Evidence": ".model",
        "DetectionReport": ".model",
        "IllegalTransition": ".model",
        "Notice": ".model",
        "SuspendScope": ".model",
        "NumberLike": ".model",
        "PersonLike": ".model",
        "Policy": ".model",
        "RegistryPort": ".model",
        "ReportSink": ".model",
        "Source": ".model",
        "State": ".model",
        "Step": ".model",
        "SwitchActionView": ".model",
        "TransitionRecord": ".model",
        "WORKING_DAYS": ".service",
        "Cases": ".service",
        "OpenRequest": ".service",
    },
)

__all__ = [
    "SYSTEM",
    "TRANSITIONS",
    "WORKING_DAYS",
    "Action",
    "Actor",
    "CaseError",
    "CaseFilter",
    "CaseNotFound",
    "CaseView",
    "Cases",
    "ConcurrentUpdate",
    "DetectionReport",
    "Effect",
    "Evidence",
    "IllegalTransition",
    "Notice",
    "NumberLike",
    "OpenRequest",
    "PersonLike",
    "Policy",
    "RegistryPort",
    "ReportSink",
    "Source",
    "State",
    "Step",
    "SuspendScope",
    "SwitchActionView",
    "TransitionRecord",
]
