"""The three rates, on a small history whose answers are known."""

from __future__ import annotations

from datetime import timedelta

from handlers.rates import three_rates
from handlers.registry import Registry
from handlers.rules import Rules
from tests.unit.streams.test_lifecycle import COMMUNITY_OP, GRID_WORKER, T0, World


def test_three_rates_by_unit_tier_category_period(rules: Rules, registry: Registry) -> None:
    w = World(rules, registry)
    a = w.appeal("楼上噪音扰民", minutes=0, mg="qy-m004")  # grid qy-g01
    b = w.appeal("楼上噪音扰民", minutes=1, mg="qy-m005")  # grid qy-g01, never acknowledged
    w.act("acknowledged", a, GRID_WORKER, 10)
    w.act("resolved", a, GRID_WORKER, 60)
    w.act("verified", a, GRID_WORKER, 70)
    w.rate(a, "res-1", "satisfied", 80)
    w.runner.advance(T0 + timedelta(minutes=121))  # b: escalated to the community
    w.act("acknowledged", b, COMMUNITY_OP, 130)
    w.act("resolved", b, COMMUNITY_OP, 200)
    w.appeal("楼上噪音扰民", minutes=240, mg="qy-m006")  # not due by 5h: left out
    w.feed(w.make.patrol("sanitation", on_spot=True, micro_grid="qy-m004", time=w_at(250)))
    events = [r.value for r in {r.value.id: r for r in w.records}.values()]
    as_of = T0 + timedelta(hours=5)

    by_unit = {r.group: r for r in three_rates(events, as_of, "unit")}
    g = by_unit["qy-g01"]
    assert (g.responded, g.due_response, g.resolved, g.due_resolution) == (1, 2, 1, 2)
    assert (g.satisfied, g.rated, g.satisfaction_rate) == (1, 1, 1.0)
    c = by_unit["qingyuan"]
    assert (c.responded, c.due_response, c.resolved, c.due_resolution) == (1, 1, 1, 1)
    assert c.satisfaction_rate is None
    assert "qy-m004" not in by_unit  # the on-spot patrol leaves the denominators

    by_tier = {r.group: r for r in three_rates(events, as_of, "tier")}
    assert by_tier["grid"].response_rate == 0.5 and by_tier["community"].response_rate == 1.0
    assert {r.group for r in three_rates(events, as_of, "category")} == {"noise"}
    assert {r.group for r in three_rates(events, as_of, "period")} == {"2026-11"}
    # Later, the third case is due too, and counts as not answered.
    later = {r.group: r for r in three_rates(events, T0 + timedelta(hours=7), "unit")}
    assert later["qy-g01"].due_response == 3


def w_at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()
