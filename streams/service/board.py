"""The board of an operations room: what one unit must act on now, pushed to its screen.

    GET /board                     the units, by tier, each a link to its board
    GET /board/{unit_id}           the page (board.html): no build, a little vanilla JS
    GET /board/{unit_id}/events    server-sent events: the unit's board as JSON, at once and
                                   again after every change to it

A board shows the cases waiting for the unit's acknowledgement (受理) with their deadlines,
alarms first; what was just escalated, forwarded or sent back to the unit; and its three rates
(handlers/rates.py) over the last `RATES_DAYS` days. It is read from the engine's outputs only
— the dispatch records, whose caller is already masked — and shows no caller, address nor
household. Acknowledging from the board is the service's own `POST
/v1/cases/{case_id}/acknowledge` with the responder's key: the actor is the key's person, and
the engine decides again whether that person may act.

`Board.take` is called with each batch of outputs, in the order the engine emitted them: on
the embedded backend by the intake, under its lock, after the ledger's case events of the last
`RATES_DAYS` days at start; on Kafka by the reader of the dispatch, closure and rating topics
(streams/service/kafka.py), after their retained history at start, each event once. The
page's stream wakes and sends the unit's board when it changed.
"""

import asyncio
import html
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import HTMLResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from handlers.rates import RateRow, three_rates
from handlers.registry import Registry
from schemas import CaseAttached, CaseRouted, CloudEvent
from schemas.common import TIER_ORDER, Tier
from schemas.lifecycle import (
    CaseClosed,
    CaseEscalated,
    CaseExtensionAnswered,
    CaseReassigned,
    CaseReopened,
    CaseUpdated,
    RatingRecorded,
)

RATES_DAYS = 30
ARRIVALS_SHOWN = 10  # the latest cases escalated, forwarded or sent back to a unit
TIER_NAMES = {
    Tier.MICRO_GRID: "微网格",
    Tier.GRID: "网格",
    Tier.COMMUNITY: "社区",
    Tier.STREET: "街道",
}
ESCALATION_REASONS = {
    "ack_timeout": "超时未受理",
    "resolve_timeout": "超时未办结",
    "requested": "申请上报",
    "repeated_appeals": "重复诉求",
    "dissatisfied": "群众不满意",
    "supervised": "督办",
}
# What the rates read: the events of cases' lives (dead letters and rating requests are not).
RATED = (
    CaseRouted,
    CaseUpdated,
    CaseEscalated,
    CaseReopened,
    CaseReassigned,
    CaseExtensionAnswered,
    RatingRecorded,
)


@dataclass(slots=True)
class Line:
    """One case as a board shows it: nothing personal (the summary is the dispatch record's,
    masked)."""

    case_id: str
    kind: str  # alarm | appeal | patrol
    category_name: str
    severity: str
    summary: str
    unit_id: str
    status: str  # open (waiting for acknowledgement) | acknowledged | resolved | closed
    routed_at: datetime  # when the engine decided it
    acknowledge_by: datetime | None
    alarms: int = 1  # alarms of the storm attached to the case

    def shown(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "kind": self.kind,
            "category_name": self.category_name,
            "severity": self.severity,
            "summary": self.summary,
            "routed_at": self.routed_at.isoformat(),
            "acknowledge_by": self.acknowledge_by.isoformat() if self.acknowledge_by else None,
            "alarms": self.alarms,
        }


@dataclass(frozen=True, slots=True)
class Arrival:
    """A case that came to a unit from another: escalated (上报), forwarded or returned (改派),
    or sent back for handling again (重办)."""

    case_id: str
    unit_id: str
    how: str
    from_unit_id: str
    why: str
    at: datetime


@dataclass(eq=False)  # each page's own: hashed by identity
class _Watcher:
    loop: asyncio.AbstractEventLoop
    changed: asyncio.Event = field(default_factory=asyncio.Event)


def _kind(event_type: str) -> str:
    return {"minhu.alarm.raised": "alarm", "minhu.patrol.reported": "patrol"}.get(
        event_type, "appeal"
    )


class Board:
    """The boards of all units, from the engine's outputs (see the module's docstring)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._lines: dict[str, Line] = {}
        self._arrivals: deque[Arrival] = deque(maxlen=1000)
        self._rated: list[CloudEvent] = []
        self._rates: dict[str, RateRow] | None = None  # by unit, until the next change
        self._watchers: set[_Watcher] = set()

    # ---- fed by the engine ----

    def take(self, events: Iterable[CloudEvent]) -> None:
        """Fold the engine's outputs into the boards and wake the pages."""
        changed = False
        with self._lock:
            for ev in events:
                changed = self._fold(ev) or changed
            if changed:
                self._rates = None
            watchers = list(self._watchers)
        if changed:
            for w in watchers:
                w.loop.call_soon_threadsafe(w.changed.set)

    def _fold(self, ev: CloudEvent) -> bool:
        """Fold one output in; False if it changes no board."""
        if isinstance(ev, RATED):
            self._rated.append(ev)
        if isinstance(ev, CaseRouted):
            r = ev.data
            if r.status == "open":
                self._lines[r.case_id] = Line(
                    r.case_id, _kind(r.origin.event_type), r.category_name, r.severity.value,
                    r.summary, r.unit_id, "open", ev.time, r.acknowledge_by,
                )  # fmt: skip
            return True
        data = getattr(ev, "data", None)
        line = self._lines.get(str(getattr(data, "case_id", "")))
        if line is None:
            return isinstance(ev, RATED)
        if isinstance(ev, CaseAttached):
            line.alarms = max(line.alarms, ev.data.occurrence)
            line.unit_id = ev.data.unit_id
        elif isinstance(ev, CaseUpdated):
            line.status = ev.data.status
        elif isinstance(ev, CaseClosed):
            del self._lines[line.case_id]
        elif isinstance(ev, CaseEscalated):
            e = ev.data
            why = ESCALATION_REASONS.get(e.reason, e.reason)
            self._arrive(line, "上报", e.to_unit_id, e.from_unit_id, why, ev.time, e.acknowledge_by)
        elif isinstance(ev, CaseReassigned):
            g = ev.data
            how = "退回改派" if g.kind == "returned" else "转派"
            why = g.note or ""
            self._arrive(line, how, g.to_unit_id, g.from_unit_id, why, ev.time, g.acknowledge_by)
        elif isinstance(ev, CaseReopened):
            o = ev.data
            why = "群众不满意" if o.reason == "dissatisfied" else "告警复发"
            self._arrive(line, "重办", o.unit_id, o.from_unit_id, why, ev.time, o.acknowledge_by)
            line.status = o.status
        return True

    def _arrive(
        self, line: Line, how: str, to_unit: str, from_unit: str, why: str, at: datetime,
        acknowledge_by: datetime | None,
    ) -> None:  # fmt: skip
        if to_unit != line.unit_id:  # a new holder must acknowledge it; 督办 leaves it where it is
            self._arrivals.append(Arrival(line.case_id, to_unit, how, from_unit, why, at))
            line.unit_id, line.status = to_unit, "open"
        line.acknowledge_by = acknowledge_by

    # ---- read by the pages ----

    def unit_board(self, unit_id: str, now: datetime) -> dict[str, Any]:
        """One unit's board, as the page renders it: alarms first, then by deadline."""
        unit = self.registry.units[unit_id]
        with self._lock:
            waiting = [
                x for x in self._lines.values() if x.unit_id == unit_id and x.status == "open"
            ]
            arrivals = [a for a in self._arrivals if a.unit_id == unit_id][-ARRIVALS_SHOWN:]
            if self._rates is None:
                since = now - timedelta(days=RATES_DAYS)
                rows = three_rates((e for e in self._rated if e.time >= since), now, "unit")
                self._rates = {r.group: r for r in rows}
            rates = self._rates.get(unit_id)
        far = now + timedelta(days=3650)
        waiting.sort(key=lambda x: (x.kind != "alarm", x.acknowledge_by or far, x.routed_at))
        cells = rates.cells() if rates else ("—", "—", "—")
        return {
            "unit": {"id": unit.id, "name": unit.name, "tier": TIER_NAMES[unit.tier]},
            "waiting": [x.shown() for x in waiting],
            "arrivals": [
                {
                    "case_id": a.case_id,
                    "how": a.how,
                    "from": self._unit_name(a.from_unit_id),
                    "why": a.why,
                    "at": a.at.isoformat(),
                }
                for a in reversed(arrivals)
            ],
            "rates": {"response": cells[0], "resolution": cells[1], "satisfaction": cells[2]},
            "rates_days": RATES_DAYS,
        }

    def _unit_name(self, unit_id: str) -> str:
        unit = self.registry.units.get(unit_id)
        return unit.name if unit else unit_id

    def units_by_tier(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """(tier name, [(unit id, name)]) from the street down."""
        return [
            (TIER_NAMES[t], sorted((u.id, u.name) for u in self.registry.units.values() if u.tier == t))
            for t in reversed(TIER_ORDER)
        ]  # fmt: skip

    def watch(self) -> _Watcher:
        """A page's wake-up: its `changed` is set after each change (on the caller's loop)."""
        w = _Watcher(asyncio.get_running_loop())
        with self._lock:
            self._watchers.add(w)
        return w

    def unwatch(self, w: _Watcher) -> None:
        with self._lock:
            self._watchers.discard(w)


# ---- the pages ---------------------------------------------------------------------------------

PAGE = Path(__file__).with_name("board.html")


def board_router(board: Board | None, registry: Registry) -> APIRouter:
    """`/board`, `/board/{unit_id}` and its stream. Without a board (a service made without
    one) each answers 404 and says why."""
    router = APIRouter(tags=["board"])

    def the_board() -> Board:
        if board is None:
            raise HTTPException(404, "no board here: this service was started without one")
        return board

    def known_unit(unit_id: str) -> str:
        if unit_id not in registry.units:
            raise HTTPException(404, f"no unit {unit_id!r} in the registry")
        return unit_id

    Boards = Annotated[Board, Depends(the_board)]
    UnitId = Annotated[str, Depends(known_unit)]

    @router.get("/board", response_class=HTMLResponse, summary="The units' boards, by tier")
    async def index(b: Boards) -> str:
        parts = ["<!doctype html><html lang='zh-CN'><meta charset='utf-8'><title>值班看板</title>"]
        for tier_name, units in b.units_by_tier():
            links = "".join(
                f"<li><a href='/board/{html.escape(uid)}'>{html.escape(name)}</a></li>"
                for uid, name in units
            )
            parts.append(f"<h2>{tier_name}</h2><ul>{links}</ul>")
        return "".join(parts)

    @router.get("/board/{unit_id}", response_class=HTMLResponse, summary="A unit's board")
    async def page(b: Boards, unit_id: UnitId) -> str:
        return PAGE.read_text(encoding="utf-8")

    @router.get(
        "/board/{unit_id}/events",
        response_class=EventSourceResponse,
        summary="A unit's board as server-sent events: at once, then after each change",
    )
    async def events(b: Boards, unit_id: UnitId) -> AsyncIterator[ServerSentEvent]:
        watcher = b.watch()
        try:
            last = None
            while True:
                doc = await asyncio.to_thread(b.unit_board, unit_id, datetime.now(UTC))
                if doc != last:
                    last = doc
                    yield ServerSentEvent(
                        event="board", data={**doc, "now": datetime.now(UTC).isoformat()}
                    )
                await watcher.changed.wait()
                watcher.changed.clear()
        finally:
            b.unwatch(watcher)

    return router
