"""Intake events: what residents, sensor gateways and grid patrols publish."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import (
    AlarmType,
    Channel,
    FreeText,
    Identifier,
    Location,
    PhotoUrl,
    Reading,
    ShortText,
)
from schemas.envelope import CloudEvent

APPEAL_REPORTED: Final = "minhu.appeal.reported"
ALARM_RAISED: Final = "minhu.alarm.raised"
PATROL_REPORTED: Final = "minhu.patrol.reported"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Caller(_Data):
    """The resident who called. `name` and `phone` are personal data: the ledger keeps them,
    dispatch topics carry them masked."""

    id: Identifier
    name: ShortText | None = None
    phone: Annotated[str, Field(pattern=r"^\+?[0-9][0-9\- ]{4,19}$")] | None = None


class AppealData(_Data):
    caller: Caller
    channel: Channel
    text: FreeText
    category: Identifier | None = Field(
        default=None, description="Category id from the rules file; derived from the text if absent"
    )
    location: Location


class AlarmData(_Data):
    sensor_id: Identifier
    gateway_id: Identifier
    alarm_type: AlarmType
    reading: Reading
    threshold: Reading
    unit: Annotated[str, Field(max_length=20)] | None = Field(
        default=None, description="Unit of reading and threshold, e.g. '%LEL' or 'ppm'"
    )
    location: Location | None = Field(
        default=None, description="Ignored for routing: a sensor's place is its registry binding"
    )


class PatrolData(_Data):
    reporter_id: Identifier
    category: Identifier
    text: FreeText
    photo_urls: Annotated[list[PhotoUrl], Field(max_length=20)] = []
    location: Location
    handled_on_spot: bool = Field(
        default=False, description="Solved on the spot (就地解决): recorded and closed at once"
    )


class AppealReported(CloudEvent):
    """`minhu.appeal.reported`: a resident's appeal from any channel."""

    type: Literal["minhu.appeal.reported"]
    data: AppealData


class AlarmRaised(CloudEvent):
    """`minhu.alarm.raised`: an IoT alarm published by a sensor gateway."""

    type: Literal["minhu.alarm.raised"]
    data: AlarmData


class PatrolReported(CloudEvent):
    """`minhu.patrol.reported`: a grid worker's patrol report (巡查上报)."""

    type: Literal["minhu.patrol.reported"]
    data: PatrolData


IntakeEvent = Annotated[AppealReported | AlarmRaised | PatrolReported, Field(discriminator="type")]
