"""What a resident may see of an appeal: its status and a note on where it stands, never who
called. Read from the ledger on the embedded backend (`CaseReads`), from the dispatch, closure
and rating topics on Kafka (`CaseBook`); either way `CaseViews` makes the view from the case's
events.

Only appeals are shown (an alarm's case is about a household). A case's status is Open311's:
`closed` once closed, else `open`; its note says in a few words what happened last and which
unit holds it now, from the case's own events. The description is the case's summary as the
dispatch topics carry it (phone and ID numbers and the caller's name masked); the address, the
caller, and the room are never shown.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from handlers.registry import Registry
from handlers.rules import Rules
from schemas import CaseAttached, CaseRouted, CloudEvent
from streams.drivers.ledger import Case, CaseEvent, RoutingDecision


@dataclass(frozen=True, slots=True)
class CaseView:
    case_id: str
    status: str  # open | closed
    status_notes: str
    category: str
    category_name: str
    description: str
    unit_id: str
    unit_name: str
    requested: datetime
    updated: datetime
    expected: datetime | None


class AppealReads(Protocol):
    """What Open311's reads ask of a backend: `CaseReads` (the ledger) or `CaseBook` (the
    dispatch topics)."""

    def find(
        self,
        case_ids: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[CaseView]: ...

    def case_of(self, event_id: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Opened:
    """What a case's view starts from: the case as it was routed."""

    case_id: str
    kind: str  # appeal | alarm | patrol
    category: str
    summary: str  # masked, as the dispatch topics carry it
    unit_id: str
    opened_at: datetime
    resolve_by: datetime | None


Life = list[tuple[str, datetime, dict[str, Any]]]  # a case's events: type, time, data


class CaseViews:
    """The one place a case's life becomes what a resident sees (status, note, unit), from
    its events; the ledger (`CaseReads`) and the dispatch topics (`CaseBook`) hand them in."""

    def __init__(self, rules: Rules, registry: Registry) -> None:
        self.rules = rules
        self.registry = registry

    def _unit_name(self, unit_id: str) -> str:
        unit = self.registry.units.get(unit_id)
        return unit.name if unit is not None else unit_id

    def view(self, case: Opened, events: Life) -> CaseView:
        unit_id = case.unit_id
        note = f"已分派至{self._unit_name(unit_id)}"
        status = "open"
        updated = case.opened_at
        expected = case.resolve_by
        for type_, at, d in events:
            updated = max(updated, at)
            said = self._note(type_, d)
            if said is not None:
                note = said
            for key in ("to_unit_id", "unit_id"):
                if type_ != "minhu.case.closed" and isinstance(d.get(key), str):
                    unit_id = d[key]
                    break
            if d.get("resolve_by"):
                expected = datetime.fromisoformat(d["resolve_by"])
            if type_ == "minhu.case.closed":
                status = "closed"
            elif type_ == "minhu.case.reopened":
                status = "open"
        category = self.rules.categories.get(case.category)
        return CaseView(
            case_id=case.case_id,
            status=status,
            status_notes=note,
            category=case.category,
            category_name=category.name if category else case.category,
            description=case.summary,
            unit_id=unit_id,
            unit_name=self._unit_name(unit_id),
            requested=case.opened_at,
            updated=updated,
            expected=expected if status == "open" else None,
        )

    def _note(self, type_: str, d: dict[str, Any]) -> str | None:
        """A few words on an event of the case's life, with no personal data in them."""
        if type_ == "minhu.case.updated":
            unit = self._unit_name(d["unit_id"])
            return f"{unit}已受理" if d["status"] == "acknowledged" else f"{unit}已处置，待核实"
        if type_ == "minhu.case.escalated":
            return f"已上报至{d['to_unit_name']}"
        if type_ == "minhu.case.reassigned":
            return f"已改派至{self._unit_name(d.get('to_unit_id') or d.get('unit_id', ''))}"
        if type_ == "minhu.case.extension_answered":
            return "延期申请已批复" if d.get("approved") else "延期申请未获批准"
        if type_ == "minhu.case.closed":
            return "已办结"
        if type_ == "minhu.rating.requested" and d.get("rater_kind") == "caller":
            return "已办结，请评价"
        if type_ == "minhu.rating.recorded" and d.get("rater_kind") == "caller":
            return "已办结，已评价"
        if type_ == "minhu.case.reopened":
            return f"已重新办理，由{d['unit_name']}负责"
        return None


class CaseReads:
    """The appeals of the embedded backend, read from the ledger's tables."""

    def __init__(self, engine: Engine, rules: Rules, registry: Registry) -> None:
        self.engine = engine
        self.views = CaseViews(rules, registry)

    def find(
        self,
        case_ids: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[CaseView]:
        """The appeals asked for, newest first."""
        stmt = select(Case).where(Case.kind == "appeal")
        if case_ids is not None:
            stmt = stmt.where(Case.case_id.in_(list(case_ids)))
        if categories is not None:
            stmt = stmt.where(Case.category.in_(list(categories)))
        if since is not None:
            stmt = stmt.where(Case.opened_at >= since)
        if until is not None:
            stmt = stmt.where(Case.opened_at <= until)
        stmt = stmt.order_by(Case.opened_at.desc()).limit(limit)
        with Session(self.engine) as session:
            cases = list(session.execute(stmt).scalars().all())
            session.expunge_all()
            conn = session
            ids = [c.case_id for c in cases]
            events: dict[str, Life] = {i: [] for i in ids}
            if ids:
                rows = conn.execute(
                    select(CaseEvent.case_id, CaseEvent.type, CaseEvent.at, CaseEvent.document)
                    .where(CaseEvent.case_id.in_(ids))
                    .order_by(CaseEvent.seq)
                )
                for cid, type_, at, doc in rows:
                    events[cid].append((type_, at, json.loads(doc)["data"]))
        views = [self.views.view(_opened(c), events[c.case_id]) for c in cases]
        if statuses is not None:
            views = [v for v in views if v.status in statuses]
        return views

    def case_of(self, event_id: str) -> str | None:
        """The case the intake event `event_id` opened or joined, None if none (yet)."""
        stmt = select(RoutingDecision.case_id).where(RoutingDecision.event_id == event_id)
        with self.engine.connect() as conn:
            return conn.execute(stmt.limit(1)).scalar()


def _opened(c: Case) -> Opened:
    return Opened(c.case_id, c.kind, c.category, c.summary, c.unit_id, c.opened_at, c.resolve_by)


class CaseBook:
    """The appeals of the Kafka backend, from the dispatch, closure and rating topics: what
    `CaseReads` reads from the ledger, folded from the same events as they come (`take`,
    each event once, in the order of the cases' lives). In memory: the topics' retained
    history, read again at each start."""

    def __init__(self, rules: Rules, registry: Registry) -> None:
        self.views = CaseViews(rules, registry)
        self._lock = threading.Lock()
        self._opened: dict[str, Opened] = {}
        self._lives: dict[str, Life] = {}
        self._cases_of_events: dict[str, str] = {}  # intake event id → case id

    def take(self, events: Iterable[CloudEvent]) -> None:
        with self._lock:
            for ev in events:
                data = getattr(ev, "data", None)
                case_id = getattr(data, "case_id", None)
                if not isinstance(case_id, str):
                    continue
                if isinstance(ev, CaseRouted | CaseAttached):
                    self._cases_of_events[ev.data.origin.event_id] = case_id
                if isinstance(ev, CaseRouted):
                    d = ev.data
                    kind = d.origin.event_type.split(".")[1]
                    self._opened[case_id] = Opened(
                        case_id, kind, d.category, d.summary, d.unit_id, ev.time, d.resolve_by
                    )
                    self._lives[case_id] = []
                if case_id in self._lives:
                    doc = ev.model_dump(mode="json", exclude_none=True)
                    self._lives[case_id].append((ev.type, ev.time, doc["data"]))

    def find(
        self,
        case_ids: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[CaseView]:
        """The appeals asked for, newest first (as `CaseReads.find`)."""
        with self._lock:
            cases = [
                c
                for c in self._opened.values()
                if c.kind == "appeal"
                and (case_ids is None or c.case_id in case_ids)
                and (categories is None or c.category in categories)
                and (since is None or c.opened_at >= since)
                and (until is None or c.opened_at <= until)
            ]
            cases.sort(key=lambda c: c.opened_at, reverse=True)
            lives = [(c, list(self._lives[c.case_id])) for c in cases[:limit]]
        views = [self.views.view(c, life) for c, life in lives]
        if statuses is not None:
            views = [v for v in views if v.status in statuses]
        return views

    def case_of(self, event_id: str) -> str | None:
        """The case the intake event `event_id` opened or joined, None if none (yet)."""
        with self._lock:
            return self._cases_of_events.get(event_id)
