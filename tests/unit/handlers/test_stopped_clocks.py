"""督办 twice, clocks stopped: the supervisor follows the case up, but late work stays late and
an unanswered case stays due in the rates (handlers/lifecycle.py, handlers/rates.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handlers.lifecycle import next_deadline
from handlers.rates import three_rates
from handlers.registry import Registry
from handlers.rules import Rules
from handlers.state import dump_bucket, load_bucket
from tests.unit.handlers.world import COMMUNITY_OP, GRID_WORKER, T0, World, at

H = 60  # minutes


@pytest.fixture()
def w(rules: Rules, registry: Registry) -> World:
    return World(rules, registry)


def stopped_case(w: World) -> str:
    """Rubbish at qy-m001 (trivial: its ceiling is the grid), nobody answering: 18:00 to the
    grid, 22:00 督办 with fresh clocks, 02:00 督办 again, clocks stopped."""
    d = w.opened(w.make.appeal("楼下垃圾没人清运", time=at(0)))
    w.until(13 * H)
    ups = w.of("case.escalated", d.case_id)
    assert [e.reason for e in ups] == ["ack_timeout", "supervised", "supervised"]
    assert "its clocks stop" in ups[-1].explanation
    return str(d.case_id)


def test_the_stopped_clocks_keep_the_deadlines_to_judge_by(w: World) -> None:
    case = stopped_case(w)
    last = w.of("case.escalated", case)[-1]
    # acknowledge: by the moment the clocks stopped; resolve: as the first 督办 set it
    assert last.acknowledge_by == T0 + timedelta(hours=12)
    assert last.resolve_by == T0 + timedelta(hours=8, days=2)
    state = w.engine.case(case)
    assert state is not None and state.stopped and next_deadline(state) is None
    w.until(5 * 24 * H)  # days on: nothing more fires
    assert len(w.of("case.escalated", case)) == 3


def test_late_work_after_the_clocks_stopped_is_late(w: World) -> None:
    case = stopped_case(w)
    w.act("acknowledged", case, GRID_WORKER, 30 * H)  # a day after the clocks stopped
    w.act("resolved", case, GRID_WORKER, 3 * 24 * H)  # after the resolve deadline, 16 Nov
    ack, res = w.of("case.updated", case)
    assert (ack.within_sla, res.within_sla) == (False, False)


def test_a_resolution_before_the_kept_resolve_deadline_is_on_time(w: World) -> None:
    case = stopped_case(w)
    w.act("resolved", case, GRID_WORKER, 20 * H)
    [res] = w.of("case.updated", case)
    assert res.within_sla is True


def test_an_unanswered_supervised_case_stays_due_in_both_rates(w: World) -> None:
    case = stopped_case(w)
    rows = {r.group: r for r in three_rates(w.out, T0 + timedelta(days=5), "unit")}
    grid = rows["qy-g01"]  # escalated to it, 督办 once, 督办 again: three assignments, all due
    assert (grid.due_response, grid.responded) == (3, 0)
    assert (grid.due_resolution, grid.resolved) == (3, 0)
    w.act("acknowledged", case, GRID_WORKER, 5 * 24 * H + 1)
    rows = {r.group: r for r in three_rates(w.out, T0 + timedelta(days=6), "unit")}
    assert (rows["qy-g01"].due_response, rows["qy-g01"].responded) == (3, 0)  # late is late


def test_a_reassignment_starts_stopped_clocks_again(w: World) -> None:
    case = stopped_case(w)
    w.act("reassign_requested", case, COMMUNITY_OP, 14 * H, to_unit_id="qy-g02")
    state = w.engine.case(case)
    assert state is not None and not state.stopped
    assert next_deadline(state) == T0 + timedelta(hours=18)  # qy-g02's own 4 hours
    w.until(19 * H)
    assert w.of("case.escalated", case)[-1].from_unit_id == "qy-g02"


def test_stopped_clocks_survive_a_restart(w: World) -> None:
    case = stopped_case(w)
    for _key, bucket in w.engine.store.items():
        if case in bucket.cases:
            again = load_bucket(dump_bucket(bucket)).cases[case]
            assert again.stopped and next_deadline(again) is None
            assert again == bucket.cases[case]
            return
    raise AssertionError("case not stored")
