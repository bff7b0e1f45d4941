"""Analysts' feedback on verdicts: labels for training and time-bounded exemptions
(docs/api.md "Feedback", docs/classifier.md "Feedback").

This package's root holds only the pure values (`model`): the pipeline imports it. The
adapters are imported by path: `gateway.feedback.repository` (SQL), `.cache` (the exemptions in
memory and their refresher), `.service` (what the API calls), `.labels` (training texts).
"""

from __future__ import annotations

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
