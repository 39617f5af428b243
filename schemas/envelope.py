"""The CloudEvents 1.0 envelope (structured JSON mode) that carries every event on every topic."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import EventTime, Plain


class CloudEvent(BaseModel):
    """Common envelope attributes. Subclasses pin `type` to a Literal and `data` to a model.

    `time` is required (CloudEvents makes it optional): minhu runs on event time, so an event
    without one cannot be placed on the SLA clock; it is RFC 3339 text with an offset, never a
    number. Extension attributes are not accepted in v1. No text may hold control characters.
    `source` + `id` identify an event; a repeat of that pair is a duplicate.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"]
    id: Annotated[str, Field(min_length=1, max_length=200), Plain]
    source: Annotated[str, Field(min_length=1, max_length=500), Plain]
    type: str
    time: EventTime
    subject: Annotated[str, Field(max_length=500), Plain] | None = None
    datacontenttype: Literal["application/json"] = "application/json"
