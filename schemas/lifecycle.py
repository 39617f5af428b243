"""The case lifecycle on the wire: what responders and callers do, and what minhu says back.

Actions (published on the actions topic) and ratings (on the ratings topic) all carry the
`case_id` and the acting person's `actor_id`. minhu answers with updates, escalations,
closures, rating requests and records, and reopenings.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from schemas.common import FreeText, Identifier, PhotoUrl, Plain, Tier
from schemas.envelope import CloudEvent
from schemas.intake import AlarmRaised, AppealReported, PatrolReported
from schemas.routing import Notified

CASE_ACKNOWLEDGED: Final = "minhu.case.acknowledged"
CASE_RESOLVED: Final = "minhu.case.resolved"
CASE_VERIFIED: Final = "minhu.case.verified"
CASE_ESCALATION_REQUESTED: Final = "minhu.case.escalation_requested"
RATING_SUBMITTED: Final = "minhu.rating.submitted"
CASE_REASSIGN_REQUESTED: Final = "minhu.case.reassign_requested"
CASE_EXTENSION_REQUESTED: Final = "minhu.case.extension_requested"
CASE_EXTENSION_DECIDED: Final = "minhu.case.extension_decided"

CASE_UPDATED: Final = "minhu.case.updated"
CASE_ESCALATED: Final = "minhu.case.escalated"
CASE_CLOSED: Final = "minhu.case.closed"
CASE_REOPENED: Final = "minhu.case.reopened"
RATING_REQUESTED: Final = "minhu.rating.requested"
RATING_RECORDED: Final = "minhu.rating.recorded"
CASE_REASSIGNED: Final = "minhu.case.reassigned"
CASE_EXTENSION_ASKED: Final = "minhu.case.extension_asked"
CASE_EXTENSION_ANSWERED: Final = "minhu.case.extension_answered"

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


# ---- reassignment (退单, 转派) and extensions (延期): in -------------------------------------

_SHORT = re.compile(r"^(?:(\d{1,6})d)?(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,6})s)?$")
_ISO = re.compile(
    r"^P(?:(\d{1,6})W)?(?:(\d{1,6})D)?(?:T(?:(\d{1,6})H)?(?:(\d{1,6})M)?(?:(\d{1,6})S)?)?$"
)


def extension_duration(text: str) -> timedelta:
    """'2d', '1d12h', '36h' (the rules' style) or ISO 8601 'P2D', 'PT36H', 'P1W' -> timedelta.
    Months and years are refused: their length depends on the calendar."""
    m = _SHORT.match(text)
    if m is not None and text:
        d, h, mi, s = (int(g or 0) for g in m.groups())
        td = timedelta(days=d, hours=h, minutes=mi, seconds=s)
    else:
        iso = _ISO.match(text)
        if iso is None or text in ("P", "PT") or text.endswith("T"):
            raise ValueError(
                f"expected a duration like '2d', '1d12h' or ISO 8601 'P2D', 'PT36H' "
                f"(no months or years), got {text!r}"
            )
        wk, d, h, mi, s = (int(g or 0) for g in iso.groups())
        td = timedelta(weeks=wk, days=d, hours=h, minutes=mi, seconds=s)
    if td <= timedelta(0):
        raise ValueError("an extension must be longer than zero")
    return td


def _valid_duration(text: str) -> str:
    extension_duration(text)
    return text


ExtraDuration = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        description="More time on the resolve clock: '2d', '1d12h', or ISO 8601 'P2D', 'PT36H'",
    ),
    AfterValidator(_valid_duration),
]


class ReassignRequestedData(ActionData):
    to_unit_id: Identifier | None = Field(
        default=None,
        description="Where a triage desk sends the case (转派); absent: the unit returns it "
        "to the desk or unit it came from (退单)",
    )
    note: Note = Field(description="Why: what is outside the unit's remit, or why it goes there")


class ExtensionRequestedData(ActionData):
    extra: ExtraDuration
    note: Note = Field(description="Why the unit needs more time")


class ExtensionDecidedData(ActionData):
    approved: bool


class CaseReassignRequested(CloudEvent):
    """`minhu.case.reassign_requested`: a desk forwards the case to a named unit (转派), or the
    assigned unit returns it as outside its remit (退单)."""

    type: Literal["minhu.case.reassign_requested"]
    data: ReassignRequestedData


class CaseExtensionRequested(CloudEvent):
    """`minhu.case.extension_requested`: the assigned unit asks for more time to resolve (延期),
    once per opening."""

    type: Literal["minhu.case.extension_requested"]
    data: ExtensionRequestedData


class CaseExtensionDecided(CloudEvent):
    """`minhu.case.extension_decided`: the tier above approves or refuses the extension."""

    type: Literal["minhu.case.extension_decided"]
    data: ExtensionDecidedData


class RatingSubmitted(CloudEvent):
    """`minhu.rating.submitted`: a caller in the chain rates the unit that answered (谁呼谁评)."""

    type: Literal["minhu.rating.submitted"]
    data: RatingData


CaseAction = CaseAcknowledged | CaseResolved | CaseVerified | CaseEscalationRequested

AnyInput = (
    AppealReported
    | AlarmRaised
    | PatrolReported
    | CaseAcknowledged
    | CaseResolved
    | CaseVerified
    | CaseEscalationRequested
    | CaseReassignRequested
    | CaseExtensionRequested
    | CaseExtensionDecided
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


# ---- reassignment and extensions: out ------------------------------------------------------


class CaseReassignedData(_Data):
    case_id: str
    kind: Literal["forwarded", "returned"] = Field(
        description="forwarded: a desk sent it to a named unit (转派); returned: the unit gave "
        "it back as outside its remit (退单), a fault of the routing"
    )
    opening: int
    actor_id: str
    from_tier: Tier
    from_unit_id: str
    to_tier: Tier
    to_unit_id: str
    to_unit_name: str
    acknowledge_by: AwareDatetime | None = None
    resolve_by: AwareDatetime | None = None
    note: str | None = None
    explanation: str


class CaseExtensionAskedData(_Data):
    case_id: str
    opening: int
    tier: Tier
    unit_id: str
    actor_id: str
    extra: str
    resolve_by: AwareDatetime = Field(description="The resolve deadline now")
    requested_resolve_by: AwareDatetime = Field(description="The deadline if approved")
    decider_tier: Tier
    decider_unit_id: str = Field(description="Who decides: the unit of the tier above")
    note: str | None = None


class CaseExtensionAnsweredData(_Data):
    case_id: str
    opening: int
    tier: Tier
    unit_id: str
    actor_id: str
    approved: bool
    decider_tier: Tier
    decider_unit_id: str
    previous_resolve_by: AwareDatetime
    resolve_by: AwareDatetime = Field(description="The resolve deadline in force now")
    note: str | None = None


class CaseReassigned(CloudEvent):
    type: Literal["minhu.case.reassigned"]
    data: CaseReassignedData


class CaseExtensionAsked(CloudEvent):
    type: Literal["minhu.case.extension_asked"]
    data: CaseExtensionAskedData


class CaseExtensionAnswered(CloudEvent):
    type: Literal["minhu.case.extension_answered"]
    data: CaseExtensionAnsweredData


LifecycleEvent = (
    CaseUpdated
    | CaseEscalated
    | CaseClosed
    | CaseReopened
    | RatingRequested
    | RatingRecorded
    | CaseReassigned
    | CaseExtensionAsked
    | CaseExtensionAnswered
)
