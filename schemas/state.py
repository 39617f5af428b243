"""The engine's state as it is stored: one snapshot per bucket (handlers/state.py).

A bucket holds the routing state of its dedup keys, the cases they opened, and the events
applied to it. It is the unit the drivers persist: one row of the ledger's `buckets` table,
one record of the worker's changelog. Personal data: none beyond ids (the caller's id, the
resolver's and raters' ids) — names and phones stay in the ledger's `cases` table.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.common import Instant, Tier


class _Snap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StormSnapshot(_Snap):
    case_id: str
    tier: Tier | None = None  # no longer written: a storm's records go to its case's owner now
    unit_id: str | None = None  # (likewise)
    rule_id: str
    first: Instant | None = None  # None in older snapshots: `last` then
    last: Instant
    count: int


class KeyStateSnapshot(_Snap):
    key: str
    recent: list[Instant]
    storm: StormSnapshot | None = None


class PendingRatingSnapshot(_Snap):
    rater_id: str
    rater_kind: Literal["caller", "unit"]
    ratee_unit_id: str
    ratee_tier: Tier


class ExtensionAskSnapshot(_Snap):
    unit_id: str
    opening: int
    extra_s: float
    actor_id: str


class CaseSnapshot(_Snap):
    case_id: str
    category: str
    status: Literal["open", "acknowledged", "resolved", "closed"]
    opening: int
    tier: Tier
    unit_id: str
    community_id: str | None
    grid_id: str | None
    ack_sla_s: float | None
    resolve_sla_s: float | None
    ack_by: Instant | None
    resolve_by: Instant | None
    caller_id: str | None
    resolved_by: str | None
    asked: list[tuple[str, str]]
    pending: list[PendingRatingSnapshot]
    rated: list[str]
    handoff: bool
    seq: int
    closed_at: Instant | None
    ceiling: Tier | None = None
    notified: list[str] = []
    resolved_at: Instant | None = None
    moves: list[tuple[str, str, Instant, str]] = []  # (from unit, to unit, at, why)
    # reassignment and extensions (handlers/desks.py); defaults: snapshots written before them
    returnable: tuple[str, int] | None = None
    came_from: str | None = None
    extension_pending: ExtensionAskSnapshot | None = None
    extension_opening: int = 0
    caller_name: str | None = None  # to mask it in notes; the state stays with the workers
    supervisions: int = 0
    stopped: bool = False  # clocks stopped at the second 督办: the deadlines only judge


class AppliedSnapshot(_Snap):
    """An event applied to this bucket: its identity, where it was read, and its time."""

    source: str
    id: str
    received_from: str
    position: int | None
    at: Instant


class BucketSnapshot(_Snap):
    keys: list[KeyStateSnapshot]
    cases: list[CaseSnapshot]
    applied: list[AppliedSnapshot]
