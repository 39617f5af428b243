"""The case lifecycle on the wire: what responders and callers do, and what minhu says back.

Actions (published on the actions topic) and ratings (on the ratings topic) all carry the
`case_id` and the acting person's `actor_id`. minhu answers with updates, escalations,
closures, rating requests and records, and reopenings.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from schemas.common import FreeText, Identifier, PhotoUrl, Plain, Tier
from schemas.envelope import CloudEvent
from schemas.intake import AlarmRaised, AppealReported, PatrolReported
from schemas.routing import Notified

CASE_ACKNOWLEDGED: Final = "minhu.case.acknowledged"
CASE_RESOLVED: Final = "minhu.case.resolved"
CASE_VERIFIED: Final = "minhu.case.verified"
CASE_ESCALATION_REQUESTED: Final = "minhu.case.escalation_requested"
RATING_SUBMITTED: Final = "minhu.rating.submitted"

CASE_UPDATED: Final = "minhu.case.updated"
CASE_ESCALATED: Final = "minhu.case.escalated"
CASE_CLOSED: Final = "minhu.case.closed"
CASE_REOPENED: Final = "minhu.case.reopened"
RATING_REQUESTED: Final = "minhu.rating.requested"
RATING_RECORDED: Final = "minhu.rating.recorded"

CaseId = Annotated[str, Field(min_length=1, max_length=64), Plain]
Note = Annotated[str, Field(max_length=2000), Plain]
Verdict = Literal["satisfied", "basically_satisfied", "dissatisfied"]
EscalationReason = Literal[
    "ack_timeout", "resolve_timeout", "requested", "repeated_appeals", "dissatisfied", "supervised"
]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- actions (in) ----------------------------------------------------------------------------


class ActionData(_Data):
    case_id: CaseId
    actor_id: Identifier
    note: Note | None = None


class ResolvedData(ActionData):
    note: Note
    photo_urls: Annotated[list[PhotoUrl], Field(max_length=20)] = []


class EscalationRequestedData(ActionData):
    note: Note = Field(description="Why the unit cannot solve it at its level")


class RatingData(_Data):
    case_id: CaseId
    actor_id: Identifier = Field(
        description="Who submits: the resident, or a person of the rating unit"
    )
    rater_id: Identifier = Field(description="The resident's id, or the rating unit's id")
    verdict: Verdict
    score: Annotated[int, Field(ge=1, le=5)] | None = None
    comment: FreeText | None = None


class CaseAcknowledged(CloudEvent):
    """`minhu.case.acknowledged`: the assigned unit has taken the case (接单)."""

    type: Literal["minhu.case.acknowledged"]
    data: ActionData


class CaseResolved(CloudEvent):
    """`minhu.case.resolved`: the assigned unit says it is solved, with a note and photos."""

    type: Literal["minhu.case.resolved"]
    data: ResolvedData


class CaseVerified(CloudEvent):
    """`minhu.case.verified`: a grid worker checked on site (问题解决后网格员实地核查)."""

    type: Literal["minhu.case.verified"]
    data: ActionData


class CaseEscalationRequested(CloudEvent):
    """`minhu.case.escalation_requested`: the unit cannot solve it at its level."""

    type: Literal["minhu.case.escalation_requested"]
    data: EscalationRequestedData


class RatingSubmitted(CloudEvent):
    """`minhu.rating.submitted`: a caller in the chain rates the unit that answered (谁呼谁评)."""

    type: Literal["minhu.rating.submitted"]
    data: RatingData


CaseAction = CaseAcknowledged | CaseResolved | CaseVerified | CaseEscalationRequested
ACTION_TYPES: tuple[str, ...] = (
    CASE_ACKNOWLEDGED,
    CASE_RESOLVED,
    CASE_VERIFIED,
    CASE_ESCALATION_REQUESTED,
)

AnyInput = (
    AppealReported
    | AlarmRaised
    | PatrolReported
    | CaseAcknowledged
    | CaseResolved
    | CaseVerified
    | CaseEscalationRequested
    | RatingSubmitted
)
InputEvent = Annotated[AnyInput, Field(discriminator="type")]
input_adapter: TypeAdapter[AnyInput] = TypeAdapter(InputEvent)


# ---- what minhu says (out) -------------------------------------------------------------------


class CaseUpdatedData(_Data):
    case_id: str
    status: Literal["acknowledged", "resolved"]
    actor_id: str
    tier: Tier
    unit_id: str
    opening: int
    note: str | None = None
    within_sla: bool = Field(description="Acknowledged (or resolved) before its deadline")
    notified: list[Notified] | None = Field(
        default=None, description="Units told of the case besides its owner"
    )


class CaseEscalatedData(_Data):
    case_id: str
    reason: EscalationReason
    from_tier: Tier
    from_unit_id: str
    to_tier: Tier
    to_unit_id: str
    to_unit_name: str
    opening: int
    acknowledge_by: AwareDatetime | None = None
    resolve_by: AwareDatetime | None = None
    district_handoff: bool = Field(
        description="At the street and still failing: flagged for hand-off to the district (12345)"
    )
    explanation: str
    supervisor: Notified | None = Field(
        default=None,
        description="督办 (reason supervised): the unit of the tier above, told of a deadline "
        "breached at the matter's ceiling tier; the case stays where it is",
    )
    notified: list[Notified] | None = Field(
        default=None, description="Units told of the case besides its owner"
    )


class CaseClosedData(_Data):
    case_id: str
    tier: Tier
    unit_id: str
    opening: int
    category: str
    resolved_by: str | None = None
    verified_by: str | None = None
    note: str | None = None


class CaseReopenedData(_Data):
    case_id: str
    reason: Literal["dissatisfied", "alarm_recurred"]
    status: Literal["open", "acknowledged"] = Field(
        default="open",
        description="open: a new handling (opening + 1) that must be acknowledged again; "
        "acknowledged: a resolved case sent back to work by a recurring alarm (same opening)",
    )
    opening: int
    from_tier: Tier
    from_unit_id: str
    tier: Tier
    unit_id: str
    unit_name: str
    acknowledge_by: AwareDatetime | None = None
    resolve_by: AwareDatetime | None = None
    district_handoff: bool
    explanation: str
    notified: list[Notified] | None = Field(
        default=None, description="Units told of the case besides its owner"
    )


class RatingRequestedData(_Data):
    case_id: str
    opening: int
    rater_id: str
    rater_kind: Literal["caller", "unit"]
    ratee_unit_id: str
    ratee_tier: Tier
    due_by: AwareDatetime


class RatingRecordedData(_Data):
    case_id: str
    opening: int
    rater_id: str
    rater_kind: Literal["caller", "unit"]
    actor_id: str
    ratee_unit_id: str
    ratee_tier: Tier
    category: str
    verdict: Verdict
    score: int | None = None
    comment: str | None = None


class CaseUpdated(CloudEvent):
    type: Literal["minhu.case.updated"]
    data: CaseUpdatedData


class CaseEscalated(CloudEvent):
    type: Literal["minhu.case.escalated"]
    data: CaseEscalatedData


class CaseClosed(CloudEvent):
    type: Literal["minhu.case.closed"]
    data: CaseClosedData


class CaseReopened(CloudEvent):
    type: Literal["minhu.case.reopened"]
    data: CaseReopenedData


class RatingRequested(CloudEvent):
    type: Literal["minhu.rating.requested"]
    data: RatingRequestedData


class RatingRecorded(CloudEvent):
    type: Literal["minhu.rating.recorded"]
    data: RatingRecordedData


LifecycleEvent = (
    CaseUpdated | CaseEscalated | CaseClosed | CaseReopened | RatingRequested | RatingRecorded
)
