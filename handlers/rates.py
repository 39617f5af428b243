"""The three rates cities are judged by, computed from the events of cases' lives.

- 响应率 response rate     = assignments acknowledged within their SLA / assignments due
- 解决率 resolution rate   = assignments resolved / assignments due
- 满意率 satisfaction rate = ratings satisfied or basically satisfied / ratings

An *assignment* is one unit holding one case: the routing opens one, every escalation and
reopening ends the current one and opens the next. Rates count assignments, so a unit answers
for the cases it held, and an escalation for a timeout counts against the unit that let it
pass. What leaves the denominators (docs/lifecycle.md says why):
- cases closed on the spot at routing (a patrol handled on the spot) — nothing to respond to;
- for the response rate, assignments still within their acknowledge deadline at `as_of` and
  not yet acknowledged; for the resolution rate, assignments still within their resolve
  deadline and not yet resolved — they are not due yet;
- an escalation for repeated appeals at routing opens no assignment of its own (the case was
  routed straight to the higher tier).
A resolution without an acknowledgement counts as acknowledged at that moment.

A reassignment (退单, 转派: handlers/desks.py) ends an assignment too, and the one it ends
leaves both denominators: a case returned as outside a unit's remit, or forwarded away by a
desk, counts against the routing, not the unit (the what-if replay counts returns per rule).
An approved extension (延期) moves the assignment's resolve deadline: it is due by that.
A 督办 (supervision) opens an assignment of the same unit; the second, which stops the clocks,
carries the deadlines that stay (acknowledge: that moment; resolve: as it was), so an
unanswered case stays due and a late answer is late.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from schemas import CaseRouted, CloudEvent
from schemas.lifecycle import (
    CaseEscalated,
    CaseExtensionAnswered,
    CaseReassigned,
    CaseReopened,
    CaseUpdated,
    RatingRecorded,
)

GroupBy = Literal["unit", "tier", "category", "period"]


@dataclass(slots=True)
class Assignment:
    case_id: str
    unit_id: str
    tier: str
    category: str
    assigned_at: datetime
    ack_by: datetime | None
    resolve_by: datetime | None
    acknowledged: bool = False
    acknowledged_in_time: bool = False
    resolved: bool = False
    ended: bool = False  # escalated or reopened away
    reassigned: bool = False  # returned or forwarded away: leaves the denominators


@dataclass(frozen=True, slots=True)
class Rating:
    unit_id: str
    tier: str
    category: str
    at: datetime
    verdict: str


@dataclass(frozen=True, slots=True)
class RateRow:
    group: str
    due_response: int
    responded: int
    due_resolution: int
    resolved: int
    rated: int
    satisfied: int

    @staticmethod
    def _rate(n: int, d: int) -> float | None:
        return n / d if d else None

    @property
    def response_rate(self) -> float | None:
        return self._rate(self.responded, self.due_response)

    @property
    def resolution_rate(self) -> float | None:
        return self._rate(self.resolved, self.due_resolution)

    @property
    def satisfaction_rate(self) -> float | None:
        return self._rate(self.satisfied, self.rated)

    def cells(self) -> tuple[str, str, str]:
        """The three rates as people read them: '92.5% (2295/2480)', or '—' with no one due."""

        def cell(rate: float | None, n: int, d: int) -> str:
            return f"{'—' if rate is None else f'{rate:.1%}'} ({n}/{d})"

        return (
            cell(self.response_rate, self.responded, self.due_response),
            cell(self.resolution_rate, self.resolved, self.due_resolution),
            cell(self.satisfaction_rate, self.satisfied, self.rated),
        )


class AssignmentLog:
    """Case events in, one at a time (in time order): the assignments they open and end, and
    the ratings recorded. Each assignment that ends goes to `on_ended` as it ends, each rating
    to `on_rating`; the ones still current stay in `current` (one per case at most)."""

    def __init__(
        self,
        on_ended: Callable[[Assignment], None],
        on_rating: Callable[[Rating], None],
    ) -> None:
        self.current: dict[str, Assignment] = {}
        self._category: dict[str, str] = {}
        self._on_ended = on_ended
        self._on_rating = on_rating

    def add(self, ev: CloudEvent) -> None:
        current, category = self.current, self._category
        if isinstance(ev, CaseRouted):
            d = ev.data
            category[d.case_id] = d.category
            if d.status == "open":
                current[d.case_id] = Assignment(
                    d.case_id,
                    d.unit_id,
                    d.tier.value,
                    d.category,
                    ev.time,
                    d.acknowledge_by,
                    d.resolve_by,
                )
        elif isinstance(ev, CaseUpdated):
            a = current.get(ev.data.case_id)
            if a is None:
                return
            if ev.data.status == "acknowledged" or not a.acknowledged:
                a.acknowledged = True
                a.acknowledged_in_time = (
                    ev.data.within_sla
                    if ev.data.status == "acknowledged"
                    else a.ack_by is None or ev.time <= a.ack_by
                )
            if ev.data.status == "resolved":
                a.resolved = True
        elif isinstance(ev, CaseEscalated | CaseReopened):
            r = ev.data
            if r.district_handoff and isinstance(ev, CaseEscalated):
                return
            if isinstance(ev, CaseEscalated) and ev.data.reason == "repeated_appeals":
                return
            old = current.pop(r.case_id, None)
            if old is not None:
                old.ended = True
                self._on_ended(old)
            if isinstance(ev, CaseEscalated):
                to_unit, to_tier = ev.data.to_unit_id, ev.data.to_tier
            else:
                to_unit, to_tier = ev.data.unit_id, ev.data.tier
            current[r.case_id] = Assignment(
                r.case_id,
                to_unit,
                to_tier.value,
                category.get(r.case_id, "other"),
                ev.time,
                r.acknowledge_by,
                r.resolve_by,
            )
        elif isinstance(ev, CaseReassigned):
            g = ev.data
            old = current.pop(g.case_id, None)
            if old is not None:
                old.ended = old.reassigned = True
                self._on_ended(old)
            current[g.case_id] = Assignment(
                g.case_id,
                g.to_unit_id,
                g.to_tier.value,
                category.get(g.case_id, "other"),
                ev.time,
                g.acknowledge_by,
                g.resolve_by,
            )
        elif isinstance(ev, CaseExtensionAnswered):
            a = current.get(ev.data.case_id)
            if a is not None and a.unit_id == ev.data.unit_id:
                a.resolve_by = ev.data.resolve_by
        elif isinstance(ev, RatingRecorded):
            d2 = ev.data
            self._on_rating(
                Rating(d2.ratee_unit_id, d2.ratee_tier.value, d2.category, ev.time, d2.verdict)
            )


def assignments_and_ratings(events: Iterable[CloudEvent]) -> tuple[list[Assignment], list[Rating]]:
    """Replay case events (in time order) into assignments and ratings."""
    done: list[Assignment] = []
    ratings: list[Rating] = []
    log = AssignmentLog(done.append, ratings.append)
    for ev in events:
        log.add(ev)
    return done + list(log.current.values()), ratings


class RateFold:
    """The three rates folded one event at a time, so that a replay of a year need not keep
    its events: an assignment is counted when it ends (it is due then, whatever `as_of`), a
    rating when it is recorded; only the assignments still current wait for `rows()`.

    `as_of`: when deadlines are judged; None: at the latest time of the events added (every
    event is then at or before it, so nothing counted early could have been left out)."""

    def __init__(self, by: GroupBy, as_of: datetime | None = None) -> None:
        self.by = by
        self._as_of = as_of
        self.latest: datetime | None = None
        self._acc: dict[str, list[int]] = {}
        self._log = AssignmentLog(self._ended, self._rating)

    @property
    def as_of(self) -> datetime | None:
        return self._as_of if self._as_of is not None else self.latest

    def _key(self, unit: str, tier: str, category: str, at: datetime) -> str:
        by = self.by
        if by == "unit":
            return unit
        if by == "tier":
            return tier
        if by == "category":
            return category
        return at.strftime("%Y-%m")

    def _counted(self, at: datetime) -> bool:
        return self._as_of is None or at <= self._as_of

    def _assignment(self, acc: dict[str, list[int]], a: Assignment, as_of: datetime) -> None:
        if a.assigned_at > as_of or a.reassigned:
            return
        row = acc.setdefault(self._key(a.unit_id, a.tier, a.category, a.assigned_at), [0] * 6)
        if a.acknowledged or a.ended or (a.ack_by is not None and a.ack_by <= as_of):
            row[0] += 1
            row[1] += a.acknowledged_in_time
        if a.resolved or a.ended or (a.resolve_by is not None and a.resolve_by <= as_of):
            row[2] += 1
            row[3] += a.resolved

    def _ended(self, a: Assignment) -> None:
        # Ended: due in both denominators whatever the moment it is judged at.
        if self._counted(a.assigned_at):
            self._assignment(self._acc, a, a.assigned_at)

    def _rating(self, r: Rating) -> None:
        if not self._counted(r.at):
            return
        row = self._acc.setdefault(self._key(r.unit_id, r.tier, r.category, r.at), [0] * 6)
        row[4] += 1
        row[5] += r.verdict in ("satisfied", "basically_satisfied")

    def add(self, ev: CloudEvent) -> None:
        if self.latest is None or ev.time > self.latest:
            self.latest = ev.time
        self._log.add(ev)

    def judges(self, as_of: datetime) -> bool:
        """Whether `rows(as_of)` is exact: at the moment the fold was told, or, folding as of
        the latest event, at that event or any time after it."""
        if self._as_of is not None:
            return as_of == self._as_of
        return self.latest is None or as_of >= self.latest

    def rows(self, as_of: datetime | None = None) -> list[RateRow]:
        """The rates per group as of `as_of` (default: the fold's), in group order (the fold
        can go on after)."""
        if as_of is None:
            as_of = self.as_of
        elif not self.judges(as_of):
            raise ValueError(f"rates folded as of {self.as_of} cannot be judged as of {as_of}")
        acc = {g: list(v) for g, v in self._acc.items()}
        if as_of is not None:
            for a in self._log.current.values():
                self._assignment(acc, a, as_of)
        return [RateRow(g, *acc[g]) for g in sorted(acc)]


def three_rates(events: Iterable[CloudEvent], as_of: datetime, by: GroupBy) -> list[RateRow]:
    """The three rates per unit, tier, category or month, as of `as_of`."""
    fold = RateFold(by, as_of)
    for ev in events:
        fold.add(ev)
    return fold.rows()
