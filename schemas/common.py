"""Vocabulary shared by every event: tiers, severities, channels, alarm types, locations."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Tier(StrEnum):
    """The four routing tiers, smallest first. Their order is the escalation ladder."""

    MICRO_GRID = "micro_grid"  # 微网格
    GRID = "grid"  # 网格
    COMMUNITY = "community"  # 社区 (总网格)
    STREET = "street"  # 街道

    @property
    def rank(self) -> int:
        return TIER_ORDER.index(self)

    def raised(self, steps: int = 1) -> Tier:
        """The tier `steps` rungs up the ladder, never beyond street."""
        return TIER_ORDER[min(self.rank + steps, len(TIER_ORDER) - 1)]


TIER_ORDER: tuple[Tier, ...] = (Tier.MICRO_GRID, Tier.GRID, Tier.COMMUNITY, Tier.STREET)


class Severity(StrEnum):
    """How serious a matter is; each severity has a ceiling tier in the rules file."""

    TRIVIAL = "trivial"  # 琐事
    MINOR = "minor"  # 小事
    MAJOR = "major"  # 大事
    CRITICAL = "critical"  # 急事: life or property at risk

    @property
    def rank(self) -> int:
        return SEVERITY_ORDER.index(self)


SEVERITY_ORDER: tuple[Severity, ...] = (
    Severity.TRIVIAL,
    Severity.MINOR,
    Severity.MAJOR,
    Severity.CRITICAL,
)


class Channel(StrEnum):
    """Where a resident's appeal came in."""

    HOTLINE_12345 = "hotline_12345"
    WECHAT = "wechat"
    QR_CODE = "qr_code"
    WALK_IN = "walk_in"
    APP = "app"  # 随手拍 and city apps
    LETTER_BOX = "letter_box"


class AlarmType(StrEnum):
    """What an IoT sensor can report."""

    GAS_LEAK = "gas_leak"
    SMOKE = "smoke"
    WATER_LEAK = "water_leak"
    DOOR_SENSOR = "door_sensor"
    FALL = "fall"
    ELEVATOR_TRAPPED = "elevator_trapped"


ShortText = Annotated[str, Field(min_length=1, max_length=200)]
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][\w.:\-]*$")]
# The limit on free text: longer appeals are rejected to the dead-letter topic with the reason.
MAX_TEXT_CHARS = 4000
FreeText = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
PhotoUrl = Annotated[str, Field(max_length=2000, pattern=r"^https?://\S+$")]


class Location(BaseModel):
    """Where a matter is. Any one of the four forms will do; the most precise one given wins.

    Precision order: `micro_grid_id`, then `building_id`, then `address`, then `lat`/`lon`.
    `household` (e.g. "3单元502") is kept for the responder and never used to route.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    micro_grid_id: Identifier | None = None
    building_id: Identifier | None = None
    address: ShortText | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    household: ShortText | None = None

    @model_validator(mode="after")
    def _one_form_given(self) -> Self:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        if (
            self.micro_grid_id is None
            and self.building_id is None
            and self.address is None
            and self.lat is None
        ):
            raise ValueError(
                "a location needs a micro_grid_id, a building_id, an address or lat/lon"
            )
        return self
