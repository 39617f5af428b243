"""Property-based: random interleavings of actions, ratings and clock ticks on a few cases."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.registry import Registry
from handlers.rules import Rules
from schemas import EventRejected
from schemas.lifecycle import CaseClosed, CaseEscalated, CaseReopened, RatingRecorded
from tests.unit.streams.test_lifecycle import T0, World

VERBS = ["acknowledged", "resolved", "verified", "escalation_requested", "rating"]
ACTORS = [
    "p0010",
    "p0015",
    "p0016",
    "p0004",
    "p0005",
    "p0001",
    "p0025",
    "res-1",
    "res-2",
    "qy-m004",
    "qy-g01",
    "qingyuan",
]
VERDICTS = ["satisfied", "basically_satisfied", "dissatisfied"]

step = st.tuples(
    st.sampled_from(VERBS),
    st.integers(0, 2),  # which case
    st.sampled_from(ACTORS),  # actor (and rater, for ratings)
    st.sampled_from(ACTORS),  # the rating's actor
    st.sampled_from(VERDICTS),
    st.integers(0, 400),  # minutes since the previous step
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=40))
def test_random_interleavings_keep_the_invariants(
    rules: Rules, registry: Registry, steps: list[tuple[str, int, str, str, str, int]]
) -> None:
    w = World(rules, registry)
    cases = [
        w.appeal("楼上噪音扰民", minutes=0),  # grid
        w.appeal("单元门口垃圾没人清运", minutes=1, mg="qy-m004"),  # micro-grid
        w.appeal("我们单元停水了", minutes=2),  # community
    ]
    minutes = 3.0
    inputs = 0
    for verb, which, actor, rating_actor, verdict, gap in steps:
        minutes += gap
        case = cases[which]
        w.runner.advance(T0 + timedelta(minutes=minutes), inclusive=False)
        before = w.runner.case(case)
        dead_before = len(w.dead())
        if verb == "rating":
            w.rate(case, actor, verdict, minutes, actor=rating_actor)
        else:
            w.act(verb, case, actor, minutes)
        inputs += 1
        refused = len(w.dead()) > dead_before
        if refused:
            assert w.dead()[-1][1], "a refusal always says why"
            assert w.runner.case(case) == before, "a refused action leaves the case unharmed"
    w.runner.advance(T0 + timedelta(days=60))

    t = w.runner.tally
    assert t.balanced
    assert t.applied + t.rejected == inputs  # every input applied or rejected with a reason
    values = {r.value.id: r.value for r in w.records}.values()
    closes = Counter((v.data.case_id, v.data.opening) for v in values if isinstance(v, CaseClosed))
    assert all(n == 1 for n in closes.values()), "a case closes at most once per opening"
    ratings = Counter(
        (v.data.case_id, v.data.opening, v.data.rater_id)
        for v in values
        if isinstance(v, RatingRecorded)
    )
    assert all(n == 1 for n in ratings.values()), "one rating per rater per case opening"
    for v in values:
        if isinstance(v, CaseEscalated):
            assert v.data.to_tier.rank >= v.data.from_tier.rank, "the tier never goes down"
            if v.data.reason == "supervised":  # 督办 at the ceiling: the case stays
                assert v.data.to_unit_id == v.data.from_unit_id and v.data.supervisor
                assert v.data.supervisor.tier.rank == v.data.from_tier.rank + 1
            elif not v.data.district_handoff:
                assert v.data.to_tier.rank == v.data.from_tier.rank + 1, "one tier at a time"
        if isinstance(v, CaseReopened):
            assert v.data.tier.rank >= v.data.from_tier.rank
        if isinstance(v, EventRejected):
            assert json.loads(v.data.payload)["type"].startswith("minhu.")
