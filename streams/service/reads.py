"""What a resident may see of an appeal, read from the ledger: its status and a note on where
it stands, never who called.

Only appeals are shown (an alarm's case is about a household). A case's status is Open311's:
`closed` once closed, else `open`; its note says in a few words what happened last and which
unit holds it now, from the case's own events. The description is the case's summary as the
dispatch topics carry it (phone and ID numbers and the caller's name masked); the address, the
caller, and the room are never shown.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from handlers.registry import Registry
from handlers.rules import Rules
from streams.drivers.ledger import Case, CaseEvent


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


class CaseReads:
    def __init__(self, engine: Engine, rules: Rules, registry: Registry) -> None:
        self.engine = engine
        self.rules = rules
        self.registry = registry

    def _unit_name(self, unit_id: str) -> str:
        unit = self.registry.units.get(unit_id)
        return unit.name if unit is not None else unit_id

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
            events: dict[str, list[tuple[str, datetime, dict[str, Any]]]] = {i: [] for i in ids}
            if ids:
                rows = conn.execute(
                    select(CaseEvent.case_id, CaseEvent.type, CaseEvent.at, CaseEvent.document)
                    .where(CaseEvent.case_id.in_(ids))
                    .order_by(CaseEvent.seq)
                )
                for cid, type_, at, doc in rows:
                    events[cid].append((type_, at, json.loads(doc)["data"]))
        views = [self._view(c, events[c.case_id]) for c in cases]
        if statuses is not None:
            views = [v for v in views if v.status in statuses]
        return views

    def _view(self, case: Case, events: list[tuple[str, datetime, dict[str, Any]]]) -> CaseView:
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
