"""A small world for the handlers' tests: the pure engine on event time (each record moves its
clock; `until` moves it on), every output kept, with builders for actions and ratings."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from handlers.engine import Engine
from handlers.registry import Registry
from handlers.rules import Rules
from handlers.state import DictStore, Position
from schemas import CloudEvent, EventRejected
from tests.conftest import EventFactory

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 2, 14, 0, tzinfo=CST)
GRID_WORKER, GRID_HEAD = "p0015", "p0016"  # grid qy-g01
COMMUNITY_OP, GENERAL_HEAD = "p0005", "p0004"  # community qingyuan
OTHER_GRID_WORKER = "p0025"  # grid qy-g02


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


class World:
    def __init__(self, rules: Rules, registry: Registry) -> None:
        self.engine = Engine(rules, registry, DictStore())
        self.registry = registry
        self.make = EventFactory()
        self.out: list[CloudEvent] = []
        self.n = 0

    def feed(self, line: str) -> list[CloudEvent]:
        self.n += 1
        got = self.engine.feed(line, Position("test", self.n)).outputs
        self.out.extend(got)
        return got

    def until(self, minutes: float) -> list[CloudEvent]:
        got = self.engine.advance(T0 + timedelta(minutes=minutes)).outputs
        self.out.extend(got)
        return got

    def opened(self, line: str) -> Any:
        """Feed an intake record that opens a case; its `case.routed` data."""
        routed = [e for e in self.feed(line) if e.type == "minhu.case.routed"]
        assert len(routed) == 1, [e.type for e in self.out[-3:]]
        return routed[0].data

    def gas(self, minutes: float, sensor: str = "wj-gas-020", gateway: str = "gw-wj-g05") -> str:
        return self.make.alarm(sensor, gateway, "gas_leak", time=at(minutes))

    def act(self, verb: str, case: str, actor: str, minutes: float, **data: Any) -> list[Any]:
        if verb in ("resolved", "escalation_requested", "reassign_requested") or verb.startswith(
            "extension_"
        ):
            data.setdefault("note", "a note")
        self.n += 1
        line = json.dumps(
            {
                "specversion": "1.0",
                "id": f"act-{self.n}",
                "source": "/app",
                "time": at(minutes),
                "type": f"minhu.case.{verb}",
                "data": {"case_id": case, "actor_id": actor, **data},
            }
        )
        return self.feed(line)

    def rate(self, case: str, rater: str, verdict: str, minutes: float) -> list[Any]:
        self.n += 1
        line = json.dumps(
            {
                "specversion": "1.0",
                "id": f"rate-{self.n}",
                "source": "/rating",
                "time": at(minutes),
                "type": "minhu.rating.submitted",
                "data": {"case_id": case, "actor_id": rater, "rater_id": rater, "verdict": verdict},
            }
        )
        return self.feed(line)

    def of(self, type_: str, case: str | None = None) -> list[Any]:
        return [
            e.data  # type: ignore[attr-defined]
            for e in self.out
            if e.type == f"minhu.{type_}" and (case is None or e.subject == case)
        ]

    def refused(self, got: list[CloudEvent]) -> str:
        """The reason of the one dead letter in `got`."""
        dead = [e for e in got if isinstance(e, EventRejected)]
        assert len(dead) == 1, [e.type for e in got]
        return dead[0].data.reason
