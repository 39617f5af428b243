"""Output events: routed cases, alarms attached to an open case, and dead letters."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.common import Severity, Tier
from schemas.envelope import CloudEvent

CASE_ROUTED: Final = "minhu.case.routed"
CASE_ATTACHED: Final = "minhu.case.attached"
EVENT_REJECTED: Final = "minhu.event.rejected"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Origin(_Data):
    """The intake event a case or record came from."""

    event_id: str
    event_source: str
    event_type: str
    event_time: AwareDatetime


class Notified(_Data):
    """A unit told about a case without owning it (e.g. the community ops room on a gas leak)."""

    unit_id: str
    unit_name: str
    tier: Tier


class MaskedCaller(_Data):
    """The caller as dispatch topics show them: name and phone masked (138****1234)."""

    id: str
    name: str | None = None
    phone: str | None = None


class CaseRoutedData(_Data):
    case_id: str
    tier: Tier
    unit_id: str
    unit_name: str
    community_id: str | None = None
    grid_id: str | None = None
    micro_grid_id: str | None = None
    rule_id: str
    severity: Severity
    category: str
    category_name: str
    tags: list[str]
    dedup_key: str
    status: Literal["open", "closed"]
    acknowledge_by: AwareDatetime | None = None
    resolve_by: AwareDatetime | None = None
    notified: list[Notified]
    explanation: str
    summary: str
    caller: MaskedCaller | None = None
    household: str | None = None
    raised_from: Tier | None = None
    origin: Origin


class CaseAttachedData(_Data):
    """A later alarm of a storm, attached to the case the first alarm opened; `tier` and
    `unit_id` are the case's owner now (it may have been escalated since)."""

    case_id: str
    tier: Tier
    unit_id: str
    rule_id: str
    occurrence: int
    explanation: str
    origin: Origin
    late: bool | None = Field(
        default=None,
        description="True when the alarm is dated before the latest alarm of its storm already "
        "seen (a buffering gateway): attached as it is, never a case of its own",
    )
    notified: list[Notified] | None = Field(
        default=None, description="Units told of the case besides its owner"
    )


ErrorKind = Literal[
    "malformed_json",
    "unknown_type",
    "invalid_event",
    "too_large",
    "implausible_time",
    "implausible_reading",
    "unknown_sensor",
    "sensor_mismatch",
    "unknown_case",
    "invalid_transition",
    "unauthorized",
    "already_rated",
]


class FieldError(_Data):
    loc: str
    msg: str


class EventRejectedData(_Data):
    """A dead letter: why a record was refused, where it came from, and the record itself."""

    reason: str
    error_kind: ErrorKind
    errors: list[FieldError]
    received_from: str
    position: int | None = None
    event_id: str | None = None
    event_type: str | None = None
    payload: str


class CaseRouted(CloudEvent):
    type: Literal["minhu.case.routed"]
    data: CaseRoutedData


class CaseAttached(CloudEvent):
    type: Literal["minhu.case.attached"]
    data: CaseAttachedData


class EventRejected(CloudEvent):
    type: Literal["minhu.event.rejected"]
    data: EventRejectedData
