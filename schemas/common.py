"""Vocabulary shared by every event: tiers, severities, channels, alarm types, locations."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)


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


# Characters no text of an event may hold: C0 controls but tab, line feed and carriage return
# (PostgreSQL refuses NUL in text; the others are never meant), DEL, and lone UTF-16
# surrogates (no encoding can store them). A record with one is refused with the field's name.
UNSAFE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def plain(text: str) -> str:
    """Text every store accepts, or a ValueError that says which character is not."""
    m = UNSAFE_CHARS.search(text)
    if m is not None:
        raise ValueError(
            f"contains the control character U+{ord(m.group()):04X}, which no text may hold"
        )
    return text


Plain = AfterValidator(plain)
ShortText = Annotated[str, Field(min_length=1, max_length=200), Plain]
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][\w.:\-]*$")]
# The limit on free text: longer appeals are rejected to the dead-letter topic with the reason.
MAX_TEXT_CHARS = 4000
FreeText = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS), Plain]
PhotoUrl = Annotated[str, Field(max_length=2000, pattern=r"^https?://\S+$"), Plain]
# The largest record any entry point accepts (route, publish, the workers, the service); a larger
# one is refused with its size, and its dead letter keeps only its first `KEPT_OF_LARGE` bytes.
MAX_RECORD_BYTES = 512 * 1024
KEPT_OF_LARGE = 4096
# A reading is a finite number, never a string or a boolean ("NaN", true and 1e309 are refused).
Reading = Annotated[float, Field(strict=True, allow_inf_nan=False)]

# RFC 3339's date-time: a `T` between date and time, seconds, an offset (`Z` or ±hh:mm). What
# ISO 8601 also allows and RFC 3339 does not ("2026-11-02 09:00+08:00") is refused.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.match(value):
        return value
    raise ValueError(
        "must be a date and time with its UTC offset (RFC 3339), like "
        "2026-11-01T09:00:00+08:00 (a T, seconds and the offset); numbers, and times without "
        "an offset or seconds, are refused"
    )


@functools.cache
def _zone(offset: timedelta) -> tzinfo:
    return UTC if not offset else timezone(offset)


def shared_zone(value: datetime) -> datetime:
    """The time with its offset as one shared `datetime.timezone` per offset: the same instant
    and the same text. pydantic gives every parsed time a `TzInfo` of its own, and comparing
    two times whose zones are different objects asks each for its offset — a heap of deadlines
    compared that way cost a replay about a tenth of its time."""
    offset = value.utcoffset()
    if offset is None:
        return value
    zone = _zone(offset)
    return value if value.tzinfo is zone else value.replace(tzinfo=zone)


# A time with its offset, in a shared zone (`shared_zone`): what every parsed time is.
Instant = Annotated[AwareDatetime, AfterValidator(shared_zone)]
# When an event happened: RFC 3339 text with an offset, nothing else (no epoch numbers).
EventTime = Annotated[Instant, BeforeValidator(_rfc3339)]


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
