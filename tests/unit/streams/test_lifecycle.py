"""Every path of the case lifecycle, through the embedded runner on event time (the fake clock:
events carry their time, and `advance` moves the clock on)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from handlers.privacy import pseudonym
from handlers.registry import Registry
from handlers.rules import Rules
from schemas import EventRejected
from streams.drivers.embedded import EmbeddedRunner
from streams.topics import Record
from tests.conftest import EventFactory

RES_1 = pseudonym("res-1")

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=CST)
# The sample registry's people used below.
GRID_WORKER, GRID_HEAD = "p0015", "p0016"  # grid qy-g01
MICRO_WORKER = "p0010"  # micro-grid qy-m004 (in qy-g01)
COMMUNITY_OP, GENERAL_HEAD = "p0005", "p0004"  # community qingyuan
STREET_OP = "p0001"
OTHER_GRID_WORKER = "p0025"  # grid qy-g02


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


class World:
    def __init__(self, rules: Rules, registry: Registry) -> None:
        self.records: list[Record] = []
        self.runner = EmbeddedRunner(rules, registry, self.records.append)
        self.make = EventFactory()
        self.n = 0

    def feed(self, line: str) -> None:
        self.runner.feed(line, "test", self.runner.tally.received + 1)

    def appeal(self, text: str, minutes: float = 0, mg: str = "qy-m004", **kw: Any) -> str:
        line = self.make.appeal(text, location={"micro_grid_id": mg}, time=at(minutes), **kw)
        self.feed(line)
        return self.case_of(line)

    def case_of(self, line: str) -> str:
        doc = json.loads(line)
        return next(
            r.value.data.case_id  # type: ignore[attr-defined]
            for r in self.records
            if r.value.type == "minhu.case.routed" and r.value.data.origin.event_id == doc["id"]  # type: ignore[attr-defined]
        )

    def act(self, verb: str, case: str, actor: str, minutes: float, **data: Any) -> None:
        self.n += 1
        if verb == "resolved":
            data.setdefault("note", "done")
        if verb == "escalation_requested":
            data.setdefault("note", "beyond us")
        self.feed(
            json.dumps(
                {
                    "specversion": "1.0",
                    "id": f"a-{self.n}",
                    "source": "/app",
                    "time": at(minutes),
                    "type": f"minhu.case.{verb}",
                    "data": {"case_id": case, "actor_id": actor, **data},
                }
            )
        )

    def rate(
        self, case: str, rater: str, verdict: str, minutes: float, actor: str | None = None
    ) -> None:
        self.n += 1
        self.feed(
            json.dumps(
                {
                    "specversion": "1.0",
                    "id": f"r-{self.n}",
                    "source": "/rating",
                    "time": at(minutes),
                    "type": "minhu.rating.submitted",
                    "data": {
                        "case_id": case,
                        "actor_id": actor or rater,
                        "rater_id": rater,
                        "verdict": verdict,
                    },
                }
            )
        )

    def of(self, type_: str, case: str | None = None) -> list[Any]:
        seen: dict[str, Any] = {}
        for r in self.records:
            v = r.value
            if v.type == f"minhu.{type_}" and (case is None or v.subject == case):
                seen.setdefault(v.id, v.data)
        return list(seen.values())

    def dead(self) -> list[tuple[str, str]]:
        return [
            (r.value.data.error_kind, r.value.data.reason)
            for r in self.records
            if isinstance(r.value, EventRejected)
        ]

    def topics(self, case: str, type_: str) -> set[str]:
        return {
            r.topic
            for r in self.records
            if r.value.subject == case and r.value.type == f"minhu.{type_}"
        }


@pytest.fixture()
def w(rules: Rules, registry: Registry) -> World:
    return World(rules, registry)


def test_happy_path_closes_and_asks_the_caller(w: World) -> None:
    case = w.appeal("楼上噪音扰民")  # noise: grid qy-g01, ack 2h, resolve 3d
    w.act("acknowledged", case, GRID_HEAD, 30)
    w.act("resolved", case, GRID_HEAD, 600)
    w.act("verified", case, GRID_WORKER, 700)
    w.rate(case, "res-1", "satisfied", 800)
    assert [u.status for u in w.of("case.updated")] == ["acknowledged", "resolved"]
    assert all(u.within_sla for u in w.of("case.updated"))
    closed = w.of("case.closed", case)
    assert len(closed) == 1 and closed[0].verified_by == GRID_WORKER
    assert closed[0].resolved_by == GRID_HEAD
    [req] = w.of("rating.requested", case)
    # On the bus a resident rater is a pseudonym, the same one each time.
    assert (req.rater_id, req.rater_kind, req.ratee_unit_id) == (RES_1, "caller", "qy-g01")
    [rec] = w.of("rating.recorded", case)
    assert (rec.verdict, rec.ratee_unit_id) == ("satisfied", "qy-g01")
    assert w.topics(case, "case.closed") == {"minhu.closures"}
    assert w.topics(case, "rating.recorded") == {"minhu.ratings"}
    assert w.dead() == [] and w.runner.tally.balanced


def test_resolve_without_acknowledgement_is_allowed(w: World) -> None:
    case = w.appeal("楼上噪音扰民")
    w.act("resolved", case, GRID_WORKER, 20)
    [u] = w.of("case.updated", case)
    assert (u.status, u.within_sla) == ("resolved", True)
    assert w.runner.case(case).status == "resolved"
    w.runner.advance(T0 + timedelta(days=10))  # a resolved case has no clock running
    assert w.of("case.escalated", case) == []


def test_ack_timeout_escalates_one_tier_with_fresh_clocks(w: World) -> None:
    case = w.appeal("楼上噪音扰民")  # grid, ack within 2h
    w.runner.advance(T0 + timedelta(minutes=119))
    assert w.of("case.escalated", case) == []
    w.runner.advance(T0 + timedelta(minutes=120))
    [esc] = w.of("case.escalated", case)
    assert (esc.reason, esc.from_tier.value, esc.to_tier.value, esc.to_unit_id) == (
        "ack_timeout",
        "grid",
        "community",
        "qingyuan",
    )
    assert esc.acknowledge_by == T0 + timedelta(hours=4)  # 2h again, from the escalation
    assert w.topics(case, "case.escalated") == {"minhu.dispatch.grid", "minhu.dispatch.community"}
    # The grid's late acknowledgement is refused: the case is the community's now.
    w.act("acknowledged", case, GRID_WORKER, 130)
    assert w.dead()[-1][0] == "unauthorized" and "assigned to qingyuan" in w.dead()[-1][1]
    w.act("acknowledged", case, COMMUNITY_OP, 140)
    assert w.runner.case(case).status == "acknowledged"


def test_resolve_timeout_escalates(w: World) -> None:
    case = w.appeal("楼上噪音扰民")
    w.act("acknowledged", case, GRID_WORKER, 10)
    w.runner.advance(T0 + timedelta(days=3))
    [esc] = w.of("case.escalated", case)
    assert (esc.reason, esc.to_unit_id) == ("resolve_timeout", "qingyuan")


def test_requested_escalation_and_ratings_up_the_chain(w: World) -> None:
    case = w.appeal("单元门口垃圾没人清运")  # sanitation: micro-grid qy-m004
    w.act("acknowledged", case, MICRO_WORKER, 5)
    w.act("escalation_requested", case, MICRO_WORKER, 10)
    w.act("acknowledged", case, GRID_WORKER, 15)
    w.act("escalation_requested", case, GRID_WORKER, 20)
    w.act("resolved", case, COMMUNITY_OP, 60)
    w.act("verified", case, GRID_WORKER, 90)
    assert [(e.from_unit_id, e.to_unit_id, e.reason) for e in w.of("case.escalated", case)] == [
        ("qy-m004", "qy-g01", "requested"),
        ("qy-g01", "qingyuan", "requested"),
    ]
    asked = {(r.rater_id, r.rater_kind, r.ratee_unit_id) for r in w.of("rating.requested", case)}
    assert asked == {
        (RES_1, "caller", "qingyuan"),
        ("qy-m004", "unit", "qy-g01"),
        ("qy-g01", "unit", "qingyuan"),
    }
    w.rate(case, "qy-g01", "satisfied", 100, actor=GRID_HEAD)  # a person of the rating unit
    w.rate(case, "qy-m004", "basically_satisfied", 100, actor=GRID_WORKER)  # not of qy-m004
    assert [r.rater_id for r in w.of("rating.recorded", case)] == ["qy-g01"]
    assert w.dead()[-1][0] == "unauthorized"


def test_street_breach_is_flagged_for_the_district(w: World) -> None:
    case = w.appeal("我们单元停水了", minutes=0)  # water_power: community, ack 1h
    w.runner.advance(T0 + timedelta(hours=1))  # → street
    w.runner.advance(T0 + timedelta(hours=2))  # street breaches → district hand-off
    w.runner.advance(T0 + timedelta(days=30))  # the clocks have stopped
    escalations = w.of("case.escalated", case)
    assert [(e.to_tier.value, e.district_handoff) for e in escalations] == [
        ("street", False),
        ("street", True),
    ]
    assert "minhu.handoff.district" in w.topics(case, "case.escalated")
    assert all(e.to_tier.rank >= e.from_tier.rank for e in escalations)
    w.act("escalation_requested", case, STREET_OP, 3000)
    assert w.dead()[-1][0] == "invalid_transition"


def test_dissatisfied_caller_reopens_one_tier_up(w: World) -> None:
    case = w.appeal("楼上噪音扰民")
    w.act("resolved", case, GRID_WORKER, 20)
    w.act("verified", case, GRID_WORKER, 30)
    w.rate(case, "res-1", "dissatisfied", 40)
    [re] = w.of("case.reopened", case)
    assert (re.opening, re.from_unit_id, re.unit_id, re.reason) == (
        2,
        "qy-g01",
        "qingyuan",
        "dissatisfied",
    )
    w.rate(case, "res-1", "satisfied", 41)  # the reopened case is not closed: no rating yet
    assert w.dead()[-1][0] == "invalid_transition"
    w.act("resolved", case, COMMUNITY_OP, 60)
    w.act("verified", case, GRID_WORKER, 70)
    w.rate(case, "res-1", "satisfied", 80)  # opening 2: asked again
    assert [(r.opening, r.verdict) for r in w.of("rating.recorded", case)] == [
        (1, "dissatisfied"),
        (2, "satisfied"),
    ]
    assert len(w.of("case.closed", case)) == 2


def test_one_rating_per_rater(w: World) -> None:
    case = w.appeal("楼上噪音扰民")
    w.act("resolved", case, GRID_WORKER, 20)
    w.act("verified", case, GRID_WORKER, 30)
    w.rate(case, "res-1", "satisfied", 40)
    w.rate(case, "res-1", "dissatisfied", 50)
    kind, reason = w.dead()[-1]
    assert kind == "already_rated" and "一事一评" in reason
    assert len(w.of("case.reopened", case)) == 0


@pytest.mark.parametrize(
    ("steps", "kind", "words"),
    [
        ([("acknowledged", OTHER_GRID_WORKER)], "unauthorized", "assigned to qy-g01"),
        ([("acknowledged", "p9999")], "unauthorized", "unknown actor"),
        (
            [("resolved", GRID_WORKER), ("verified", GRID_HEAD)],
            "unauthorized",
            "only a grid worker",
        ),
        (
            [("resolved", GRID_WORKER), ("verified", OTHER_GRID_WORKER)],
            "unauthorized",
            "not of the place",
        ),
        ([("verified", GRID_WORKER)], "invalid_transition", "not resolved"),
        (
            [("acknowledged", GRID_WORKER), ("acknowledged", GRID_HEAD)],
            "invalid_transition",
            "already acknowledged",
        ),
        (
            [("resolved", GRID_WORKER), ("verified", GRID_WORKER), ("resolved", GRID_WORKER)],
            "invalid_transition",
            "already closed",
        ),
        (
            [("resolved", GRID_WORKER), ("escalation_requested", GRID_WORKER)],
            "invalid_transition",
            "already resolved",
        ),
    ],
)
def test_refused_actions_leave_the_case_unharmed(
    w: World, steps: list[tuple[str, str]], kind: str, words: str
) -> None:
    case = w.appeal("楼上噪音扰民")
    for i, (verb, actor) in enumerate(steps[:-1]):
        w.act(verb, case, actor, i + 1)
    before = w.runner.case(case)
    verb, actor = steps[-1]
    w.act(verb, case, actor, 30)
    assert w.dead()[-1][0] == kind and words in w.dead()[-1][1]
    assert w.runner.case(case) == before
    assert w.runner.tally.balanced


def test_ratings_from_outside_the_chain(w: World) -> None:
    case = w.appeal("楼上噪音扰民")
    w.rate(case, "res-1", "satisfied", 5)
    assert w.dead()[-1][0] == "invalid_transition"  # not closed yet
    w.act("resolved", case, GRID_WORKER, 20)
    w.act("verified", case, GRID_WORKER, 30)
    w.rate(case, "res-9", "satisfied", 40)
    assert w.dead()[-1][0] == "unauthorized" and "谁呼谁评" in w.dead()[-1][1]
    w.rate(case, "res-1", "satisfied", 41, actor="res-9")  # rating for someone else
    assert w.dead()[-1][0] == "unauthorized"


def test_unknown_case(w: World) -> None:
    w.act("acknowledged", "case-0000000000000000", GRID_WORKER, 1)
    [(kind, reason)] = w.dead()
    assert kind == "unknown_case" and "unknown case 'case-0000000000000000'" in reason


def test_alarm_recurring_after_closure_reopens_at_the_same_unit(
    w: World, registry: Registry
) -> None:
    sensor = registry.sensors["qy-gas-liu"]
    w.feed(w.make.alarm(sensor.id, sensor.gateway, "gas_leak", time=at(0)))
    case = next(iter(w.runner.engine._deadlines))[1]
    w.act("resolved", case, GRID_WORKER, 5)
    w.act("verified", case, GRID_WORKER, 10)
    w.feed(w.make.alarm(sensor.id, sensor.gateway, "gas_leak", time=at(20)))
    [re] = w.of("case.reopened", case)
    assert (re.reason, re.unit_id, re.opening) == ("alarm_recurred", "qy-g01", 2)


def test_repeated_appeals_are_an_escalation(w: World) -> None:
    cases = [w.appeal("楼上噪音扰民", minutes=m) for m in (0, 60, 120)]
    [esc] = w.of("case.escalated", cases[2])
    assert (esc.reason, esc.from_unit_id, esc.to_unit_id) == (
        "repeated_appeals",
        "qy-g01",
        "qingyuan",
    )


def test_live_clock_drives_the_deadlines(rules: Rules, registry: Registry) -> None:
    now = [T0]
    out: list[Record] = []
    runner = EmbeddedRunner(rules, registry, out.append, clock=lambda: now[0])
    runner.feed(
        EventFactory().appeal("楼上噪音扰民", location={"micro_grid_id": "qy-m004"}, time=at(0)),
        "live",
        1,
    )
    now[0] = T0 + timedelta(hours=3)
    runner.advance(now[0])
    assert [r.value.type for r in out].count("minhu.case.escalated") == 2  # grid and community
