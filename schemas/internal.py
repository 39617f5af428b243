"""Messages on the workers' own topics (never read by anyone else)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Forwarded(BaseModel):
    """A record that reached a partition that does not hold its shard (its publisher keyed it
    otherwise), sent on to the partition that does. It keeps where it was first read, so that
    a replay of the original after a restart is recognised as the same delivery."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    received_from: str
    position: int
    timestamp: float  # seconds (as Faust gives it): the original record's, for the merge
    payload: str
