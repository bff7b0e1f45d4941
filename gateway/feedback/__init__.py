"""Analysts' feedback on verdicts: labels for training and time-bounded exemptions
(docs/api.md "Feedback", docs/classifier.md "Feedback").

This package's root exports the pure values (`model`) lazily: the pipeline imports them. The
adapters are imported by path: `gateway.feedback.repository` (SQL), `.cache` (the exemptions in
memory and their refresher), `.service` (what the API calls), `.labels` (training texts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.lazy import exports

if TYPE_CHECKING:
    from .model import (
        RULE_PREFIX,
        Exemption,
        Exemptions,
        Feedback,
        FeedbackError,
        FeedbackInvalid,
        FeedbackLimits,
        FeedbackNotFound,
        FeedbackRefused,
        Judgement,
        Label,
        Scope,
        exempt,
        judged_rules,
        label_for,
        sender_key,
        template_key,
    )

__getattr__ = exports(
    __name__,
    {
        "RULE_PREFIX": ".model",
        "Exemption": ".model",
        "Exemptions": ".model",
        "Feedback": ".model",
        "FeedbackError": ".model",
        "FeedbackInvalid": ".model",
        "FeedbackLimits": ".model",
        "FeedbackNotFound": ".model",
        "FeedbackRefused": ".model",
        "Judgement": ".model",
        "Label": ".model",
        "Scope": ".model",
        "exempt": ".model",
        "judged_rules": ".model",
        "label_for": ".model",
        "sender_key": ".model",
        "template_key": ".model",
    },
)

__all__ = [
    "RULE_PREFIX",
    "Exemption",
    "Exemptions",
    "Feedback",
    "FeedbackError",
    "FeedbackInvalid",
    "FeedbackLimits",
    "FeedbackNotFound",
    "FeedbackRefused",
    "Judgement",
    "Label",
    "Scope",
    "exempt",
    "judged_rules",
    "label_for",
    "sender_key",
    "template_key",
]
