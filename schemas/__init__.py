"""The wire contract: every event on every minhu topic, as pydantic v2 models.

Every event is a CloudEvents 1.0 envelope in structured JSON mode. `json_schemas()` gives the
JSON Schema of each type; `minhu schemas --out schemas/json` writes them to the repo.
"""

from __future__ import annotations

from typing import Any

from schemas import lifecycle as lc
from schemas.common import TIER_ORDER, AlarmType, Channel, Location, Severity, Tier
from schemas.envelope import CloudEvent
from schemas.intake import (
    ALARM_RAISED,
    APPEAL_REPORTED,
    PATROL_REPORTED,
    AlarmData,
    AlarmRaised,
    AppealData,
    AppealReported,
    Caller,
    IntakeEvent,
    PatrolData,
    PatrolReported,
)
from schemas.routing import (
    CASE_ATTACHED,
    CASE_ROUTED,
    EVENT_REJECTED,
    CaseAttached,
    CaseAttachedData,
    CaseRouted,
    CaseRoutedData,
    EventRejected,
    EventRejectedData,
    FieldError,
    MaskedCaller,
    Notified,
    Origin,
)

EVENT_MODELS: dict[str, type[CloudEvent]] = {
    APPEAL_REPORTED: AppealReported,
    ALARM_RAISED: AlarmRaised,
    PATROL_REPORTED: PatrolReported,
    lc.CASE_ACKNOWLEDGED: lc.CaseAcknowledged,
    lc.CASE_RESOLVED: lc.CaseResolved,
    lc.CASE_VERIFIED: lc.CaseVerified,
    lc.CASE_ESCALATION_REQUESTED: lc.CaseEscalationRequested,
    lc.CASE_REASSIGN_REQUESTED: lc.CaseReassignRequested,
    lc.CASE_EXTENSION_REQUESTED: lc.CaseExtensionRequested,
    lc.CASE_EXTENSION_DECIDED: lc.CaseExtensionDecided,
    lc.RATING_SUBMITTED: lc.RatingSubmitted,
    CASE_ROUTED: CaseRouted,
    CASE_ATTACHED: CaseAttached,
    lc.CASE_UPDATED: lc.CaseUpdated,
    lc.CASE_ESCALATED: lc.CaseEscalated,
    lc.CASE_CLOSED: lc.CaseClosed,
    lc.CASE_REOPENED: lc.CaseReopened,
    lc.RATING_REQUESTED: lc.RatingRequested,
    lc.RATING_RECORDED: lc.RatingRecorded,
    lc.CASE_REASSIGNED: lc.CaseReassigned,
    lc.CASE_EXTENSION_ASKED: lc.CaseExtensionAsked,
    lc.CASE_EXTENSION_ANSWERED: lc.CaseExtensionAnswered,
    EVENT_REJECTED: EventRejected,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every event type, keyed by its CloudEvents `type`."""
    return {name: model.model_json_schema() for name, model in EVENT_MODELS.items()}


__all__ = [
    "ALARM_RAISED",
    "APPEAL_REPORTED",
    "CASE_ATTACHED",
    "CASE_ROUTED",
    "EVENT_MODELS",
    "EVENT_REJECTED",
    "PATROL_REPORTED",
    "TIER_ORDER",
    "AlarmData",
    "AlarmRaised",
    "AlarmType",
    "AppealData",
    "AppealReported",
    "Caller",
    "CaseAttached",
    "CaseAttachedData",
    "CaseRouted",
    "CaseRoutedData",
    "Channel",
    "CloudEvent",
    "EventRejected",
    "EventRejectedData",
    "FieldError",
    "IntakeEvent",
    "Location",
    "MaskedCaller",
    "Notified",
    "Origin",
    "PatrolData",
    "PatrolReported",
    "Severity",
    "Tier",
    "json_schemas",
]
