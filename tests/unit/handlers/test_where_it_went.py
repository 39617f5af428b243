"""A refused late action says where the case went and when — after a forward (转派), a return
(退单) or a dissatisfied caller's reopening, as after a deadline's escalation — and a refusal
of a desk action reads plainly."""

from __future__ import annotations

import pytest

from handlers.registry import Registry
from handlers.rules import Rules
from tests.unit.handlers.world import (
    COMMUNITY_OP,
    GRID_HEAD,
    GRID_WORKER,
    OTHER_GRID_WORKER,
    World,
    at,
)


@pytest.fixture()
def w(rules: Rules, registry: Registry) -> World:
    return World(rules, registry)


def noise(w: World) -> str:
    """A noise complaint at qy-m001: grid qy-g01's."""
    d = w.opened(w.make.appeal("楼上装修噪音扰民", time=at(0)))
    assert d.unit_id == "qy-g01"
    return str(d.case_id)


def test_a_unit_forwarded_away_hears_where_and_when_to(w: World) -> None:
    d = w.opened(
        w.make.appeal("楼道里的路灯坏了", time=at(0), location={"address": "清源小区一期北门"})
    )
    assert d.unit_id == "qingyuan"  # a compound of three grids: the community's desk
    w.act("reassign_requested", d.case_id, COMMUNITY_OP, 10, to_unit_id="qy-g02")
    w.act("reassign_requested", d.case_id, COMMUNITY_OP, 20, to_unit_id="qy-g03")
    why = w.refused(w.act("acknowledged", d.case_id, OTHER_GRID_WORKER, 25))
    assert (
        f"the case was forwarded to 清源小区一期第3网格 (qy-g03) at {at(20)} "
        f"(by {COMMUNITY_OP} of 清源社区); it is assigned to qy-g03"
    ) in why
    why = w.refused(w.act("extension_requested", d.case_id, OTHER_GRID_WORKER, 26, extra="1d"))
    assert f"forwarded to 清源小区一期第3网格 (qy-g03) at {at(20)}" in why


def test_a_unit_that_returned_a_case_hears_where_it_went(w: World) -> None:
    case = noise(w)
    w.act("reassign_requested", case, GRID_WORKER, 5)  # 退单: not ours
    why = w.refused(w.act("acknowledged", case, GRID_WORKER, 6))
    assert (
        f"the case was returned to 清源社区 (qingyuan) at {at(5)} (by {GRID_WORKER} of "
        f"清源小区一期第1网格, as outside its remit)"
    ) in why


def test_a_unit_whose_case_a_caller_reopened_above_hears_so(w: World) -> None:
    case = noise(w)
    w.act("acknowledged", case, GRID_WORKER, 5)
    w.act("resolved", case, GRID_WORKER, 30)
    w.act("verified", case, GRID_WORKER, 40)
    w.rate(case, "res-1", "dissatisfied", 60)
    why = w.refused(w.act("acknowledged", case, GRID_WORKER, 65))
    assert (
        f"the case was reopened and sent to 清源社区 (qingyuan) at {at(60)} (the caller was "
        f"dissatisfied); it is assigned to qingyuan"
    ) in why


def test_a_deadline_s_escalation_still_says_escalated(w: World) -> None:
    case = noise(w)
    w.until(121)  # two hours to acknowledge, missed
    why = w.refused(w.act("acknowledged", case, GRID_WORKER, 122))
    assert (
        f"the case was escalated to 清源社区 (qingyuan) at {at(120)} (not acknowledged in time)"
        in why
    )


def test_a_grid_head_deciding_their_own_grid_s_extension_is_told_plainly(w: World) -> None:
    case = noise(w)
    w.act("extension_requested", case, GRID_WORKER, 10, extra="1d")
    why = w.refused(w.act("extension_decided", case, GRID_HEAD, 20, approved=True))
    assert "not under" not in why
    assert "the tier above decides its extensions (清源社区, qingyuan)" in why


def test_a_grid_head_forwarding_their_own_grid_s_case_is_told_plainly(w: World) -> None:
    case = noise(w)
    why = w.refused(w.act("reassign_requested", case, GRID_HEAD, 10, to_unit_id="qy-m002"))
    assert "not under" not in why
    assert "assigned to qy-g01, their own unit" in why and "the unit above it" in why
