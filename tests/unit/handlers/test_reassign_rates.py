"""Returns and forwards in the three rates and in the what-if replay; extensions in the rates."""

from __future__ import annotations

from datetime import timedelta

from handlers.rates import three_rates
from handlers.registry import Registry
from handlers.rules import Rules
from handlers.whatif import outcomes, rule_rows
from schemas import CloudEvent
from tests.unit.streams.test_lifecycle import (
    COMMUNITY_OP,
    GENERAL_HEAD,
    GRID_WORKER,
    OTHER_GRID_WORKER,
    T0,
    World,
)


def events_of(w: World) -> list[CloudEvent]:
    return [r.value for r in {r.value.id: r for r in w.records}.values()]


def test_a_return_is_not_charged_to_the_returning_unit(rules: Rules, registry: Registry) -> None:
    w = World(rules, registry)
    a = w.appeal("楼上噪音扰民", minutes=0, mg="qy-m004")  # grid qy-g01
    w.act("reassign_requested", a, GRID_WORKER, 10, note="不属于本网格")  # → qingyuan desk
    w.act("reassign_requested", a, COMMUNITY_OP, 20, to_unit_id="qy-g02", note="转派")
    w.act("acknowledged", a, OTHER_GRID_WORKER, 30)
    w.act("resolved", a, OTHER_GRID_WORKER, 60)
    b = w.appeal("楼上噪音扰民", minutes=1, mg="qy-m005")  # qy-g01, never acknowledged
    w.runner.advance(T0 + timedelta(hours=5))
    assert w.of("case.escalated", b)
    by_unit = {r.group: r for r in three_rates(events_of(w), T0 + timedelta(hours=5), "unit")}
    g1 = by_unit["qy-g01"]
    # Only b counts against qy-g01: the returned case leaves both denominators.
    assert (g1.responded, g1.due_response, g1.resolved, g1.due_resolution) == (0, 1, 0, 1)
    g2 = by_unit["qy-g02"]
    assert (g2.responded, g2.due_response, g2.resolved, g2.due_resolution) == (1, 1, 1, 1)
    # The desk that held a for ten minutes is not charged either; b's escalation is its own.
    c = by_unit["qingyuan"]
    assert (c.due_response, c.due_resolution) == (1, 1)


def test_rates_count_against_the_extended_deadline(rules: Rules, registry: Registry) -> None:
    w = World(rules, registry)
    a = w.appeal("楼上噪音扰民", minutes=0)  # resolve 3d
    w.act("acknowledged", a, GRID_WORKER, 10)
    w.act("extension_requested", a, GRID_WORKER, 20, extra="2d", note="等配件")
    w.act("extension_decided", a, GENERAL_HEAD, 30, approved=True)
    # After the original deadline, before the extended one: not due for a resolution yet.
    mid = T0 + timedelta(days=4)
    w.runner.advance(mid)
    [g] = [r for r in three_rates(events_of(w), mid, "unit") if r.group == "qy-g01"]
    assert (g.due_response, g.responded, g.due_resolution) == (1, 1, 0)
    w.act("resolved", a, GRID_WORKER, 4 * 1440 + 60)
    later = T0 + timedelta(days=6)
    [g] = [r for r in three_rates(events_of(w), later, "unit") if r.group == "qy-g01"]
    assert (g.due_resolution, g.resolved) == (1, 1)


def test_what_if_counts_reassignments_per_rule(rules: Rules, registry: Registry) -> None:
    w = World(rules, registry)
    a = w.appeal("楼上噪音扰民", minutes=0)  # category/noise
    b = w.appeal("楼上噪音扰民", minutes=1, mg="qy-m005")  # category/noise
    c = w.appeal("单元门口垃圾没人清运", minutes=2)  # category/sanitation
    w.act("reassign_requested", a, GRID_WORKER, 10, note="不属于本网格")
    w.act("reassign_requested", a, COMMUNITY_OP, 20, to_unit_id="qy-g02", note="转派")
    w.act("reassign_requested", b, GRID_WORKER, 30, note="不属于本网格")
    out = outcomes(events_of(w))
    assert (out[a].returns, out[a].forwards) == (1, 1)
    assert (out[b].returns, out[b].forwards) == (1, 0)
    assert (out[c].returns, out[c].forwards) == (0, 0)
    assert out[a].final_unit_id == "qy-g02"
    rows = {r["rule_id"]: r for r in rule_rows(out, out)}
    noise = rows["category/noise"]
    assert (noise["candidate_cases"], noise["candidate_returns"]) == (2, 2)
    assert (noise["candidate_forwards"], noise["candidate_cases_returned"]) == (1, 2)
    assert noise["baseline_returns"] == 2
    assert rows["category/sanitation"]["candidate_returns"] == 0
    alone = {r["rule_id"]: r for r in rule_rows(None, out)}
    assert alone["category/noise"]["baseline_returns"] is None
