"""Issue 11: what an open case's records say and where they go once the case has moved (storms
follow their case), out-of-order alarms, a danger that recurs after "resolved", the severity
ceilings under deadline breaches (督办), and what a refused late action says."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handlers.registry import Registry
from handlers.rules import Rules
from tests.unit.streams.test_lifecycle import (
    COMMUNITY_OP,
    GRID_HEAD,
    GRID_WORKER,
    MICRO_WORKER,
    T0,
    World,
    at,
)

GAS = "qy-gas-liu"  # a gas detector in building qy-b0005, grid qy-g01 (community qingyuan)


@pytest.fixture()
def w(rules: Rules, registry: Registry) -> World:
    return World(rules, registry)


def gas(w: World, registry: Registry, minutes: float) -> None:
    sensor = registry.sensors[GAS]
    w.feed(w.make.alarm(sensor.id, sensor.gateway, "gas_leak", time=at(minutes)))


def only_case(w: World) -> str:
    [routed] = w.of("case.routed")
    return str(routed.case_id)


# ---- 2. a storm follows its case ---------------------------------------------------------------


def test_attached_alarms_go_to_the_current_owner_and_the_notified(
    w: World, registry: Registry
) -> None:
    gas(w, registry, 0)  # grid qy-g01, the community ops room told; acknowledge within 5m
    case = only_case(w)
    gas(w, registry, 1)
    first = w.of("case.attached", case)[-1]
    assert (first.tier.value, first.unit_id) == ("grid", "qy-g01")
    assert w.topics(case, "case.attached") == {"minhu.dispatch.grid", "minhu.dispatch.community"}

    w.runner.advance(T0 + timedelta(minutes=5))  # nobody acknowledged: to the community
    [esc] = w.of("case.escalated", case)
    assert (esc.reason, esc.to_unit_id) == ("ack_timeout", "qingyuan")
    w.records.clear()
    gas(w, registry, 7)  # the same sensor again, two minutes later
    [again] = w.of("case.attached", case)
    assert (again.tier.value, again.unit_id) == ("community", "qingyuan")
    assert w.topics(case, "case.attached") == {"minhu.dispatch.community"}

    w.act("acknowledged", case, COMMUNITY_OP, 8)  # an update goes where the case is, too
    assert w.topics(case, "case.updated") == {"minhu.dispatch.community"}
    w.runner.advance(T0 + timedelta(minutes=5 + 120))  # not resolved in 2h: to the street
    w.records.clear()
    gas(w, registry, 126)  # (a new storm: more than 30 minutes after the last alarm)
    gas(w, registry, 127)
    [attached] = w.of("case.attached")
    assert attached.case_id != case  # the street's case is not this storm's
    w.records.clear()
    w.act("resolved", case, "p0001", 130)  # the street resolves; the community was notified
    assert w.topics(case, "case.updated") == {"minhu.dispatch.street", "minhu.dispatch.community"}


# ---- 3. out-of-order alarms --------------------------------------------------------------------


def test_out_of_order_alarms_are_one_storm(w: World, registry: Registry) -> None:
    """A buffering gateway sends 14:00, 14:20, 14:10, then 13:40 (here: 0, 20, 10, -20)."""
    for m in (0, 20, 10, -20):
        gas(w, registry, m)
    case = only_case(w)
    attached = w.of("case.attached", case)
    assert [a.occurrence for a in attached] == [2, 3, 4]
    assert [a.late for a in attached] == [None, True, True]
    assert "arrived late" in attached[-1].explanation
    # Only the case's own clocks ran (no second case with backdated deadlines).
    w.runner.advance(T0 + timedelta(minutes=30))
    assert {e.case_id for e in w.of("case.escalated")} == {case}


def test_an_alarm_far_older_than_its_case_is_attached_late(w: World, registry: Registry) -> None:
    gas(w, registry, 60)
    gas(w, registry, 62)
    gas(w, registry, -120)  # three hours older than the case: never a case of its own
    case = only_case(w)
    late = w.of("case.attached", case)[-1]
    assert late.late is True and late.occurrence == 3
    assert "before" in late.explanation
    w.runner.advance(T0 + timedelta(minutes=64))
    assert w.of("case.escalated") == []  # no backdated deadline fired
    assert w.runner.case(case).ack_by == T0 + timedelta(minutes=65)


# ---- 4. recurrence after "resolved" -------------------------------------------------------------


def test_critical_alarm_after_resolved_sends_the_case_back_to_work(
    w: World, registry: Registry
) -> None:
    gas(w, registry, 0)
    case = only_case(w)
    w.act("acknowledged", case, GRID_WORKER, 2)
    w.act("resolved", case, GRID_WORKER, 5)
    w.records.clear()
    gas(w, registry, 12)  # the detector fires again before anyone verified on site
    state = w.runner.case(case)
    assert state.status == "acknowledged" and state.resolved_by is None
    assert state.resolve_by == T0 + timedelta(minutes=12, hours=2)  # the resolve clock restarts
    [back] = w.of("case.reopened", case)
    assert (back.reason, back.status, back.opening, back.unit_id) == (
        "alarm_recurred",
        "acknowledged",
        1,
        "qy-g01",
    )
    assert back.acknowledge_by is None and back.resolve_by == state.resolve_by
    assert "minhu.dispatch.grid" in w.topics(case, "case.reopened")
    w.act("verified", case, GRID_WORKER, 14)  # not "as if nothing happened"
    assert w.dead()[-1][0] == "invalid_transition"
    w.act("resolved", case, GRID_WORKER, 30)
    w.act("verified", case, GRID_WORKER, 40)
    assert w.runner.case(case).status == "closed"


def test_an_alarm_dated_before_the_resolution_does_not_reopen(w: World, registry: Registry) -> None:
    gas(w, registry, 0)
    case = only_case(w)
    w.act("resolved", case, GRID_WORKER, 5)
    gas(w, registry, 3)  # buffered by the gateway: it went off before the fix
    assert w.runner.case(case).status == "resolved"
    assert w.of("case.reopened", case) == []


# ---- 9. ceilings and 督办 -----------------------------------------------------------------------


def test_trivial_case_never_leaves_the_grid_on_deadlines(w: World) -> None:
    case = w.appeal("单元门口垃圾没人清运")  # sanitation, trivial: micro-grid, ack 4h; ceiling grid
    w.runner.advance(T0 + timedelta(hours=4))
    [esc] = w.of("case.escalated", case)
    assert (esc.reason, esc.to_unit_id) == ("ack_timeout", "qy-g01")  # within the ceiling
    w.records.clear()
    w.runner.advance(T0 + timedelta(hours=8))  # the grid breaches at the ceiling: 督办
    [sup] = w.of("case.escalated", case)
    assert (sup.reason, sup.from_unit_id, sup.to_unit_id, sup.district_handoff) == (
        "supervised",
        "qy-g01",
        "qy-g01",
        False,
    )
    assert sup.supervisor.unit_id == "qingyuan"
    assert GRID_HEAD in sup.explanation  # the grid's head is named
    assert sup.acknowledge_by == T0 + timedelta(hours=12)  # fresh clocks
    assert w.topics(case, "case.escalated") == {
        "minhu.dispatch.grid",
        "minhu.dispatch.community",
    }
    w.runner.advance(T0 + timedelta(days=3))
    everything = w.of("case.escalated", case)
    assert {e.to_unit_id for e in everything} == {"qy-g01"}
    assert not any(e.district_handoff for e in everything)
    state = w.runner.case(case)
    assert (state.tier.value, state.unit_id) == ("grid", "qy-g01")
    # The grid may still acknowledge (the case is its own), and only its own request moves the
    # case past the ceiling.
    w.act("acknowledged", case, GRID_WORKER, 3 * 24 * 60 + 1)
    w.act("escalation_requested", case, GRID_WORKER, 3 * 24 * 60 + 2)
    assert w.runner.case(case).unit_id == "qingyuan"


def test_resolve_breach_at_the_ceiling_is_supervised(w: World) -> None:
    case = w.appeal("楼上噪音扰民")  # noise, minor: grid, resolve 3d; ceiling community
    w.act("acknowledged", case, GRID_WORKER, 10)
    w.runner.advance(T0 + timedelta(days=3))
    w.act("acknowledged", case, COMMUNITY_OP, 3 * 24 * 60 + 10)
    w.runner.advance(T0 + timedelta(days=6, minutes=10))  # the community breaches: 督办
    sup = w.of("case.escalated", case)[-1]
    assert (sup.reason, sup.to_unit_id, sup.supervisor.unit_id) == (
        "supervised",
        "qingyuan",
        "guanghua-street",
    )
    assert "not resolved in time" in sup.explanation
    assert w.runner.case(case).unit_id == "qingyuan"


def test_a_ceiling_case_a_unit_sent_up_still_climbs_no_further_on_deadlines(w: World) -> None:
    case = w.appeal("单元门口垃圾没人清运")  # trivial
    w.act("escalation_requested", case, MICRO_WORKER, 5)  # to the grid
    w.act("escalation_requested", case, GRID_WORKER, 10)  # past the ceiling: the community
    w.runner.advance(T0 + timedelta(minutes=10, hours=4))
    last = w.of("case.escalated", case)[-1]
    assert (last.reason, last.to_unit_id) == ("supervised", "qingyuan")


# ---- 10. refused late actions, masked explanations ----------------------------------------------


def test_late_acknowledgement_says_the_case_was_escalated(w: World) -> None:
    case = w.appeal("楼上噪音扰民")  # grid, ack within 2h
    w.runner.advance(T0 + timedelta(minutes=120))
    w.act("acknowledged", case, GRID_WORKER, 130)
    kind, reason = w.dead()[-1]
    assert kind == "unauthorized"
    assert "the case was escalated to 清源社区 (qingyuan) at 2026-11-01T11:00:00+08:00" in reason, (
        reason
    )
    assert "not acknowledged in time" in reason


def test_escalation_explanation_masks_phone_and_id_numbers(w: World) -> None:
    case = w.appeal("单元门口垃圾没人清运")
    note = "请联系业主13812345678，身份证110101199003077777"
    w.act("escalation_requested", case, MICRO_WORKER, 5, note=note)
    [esc] = w.of("case.escalated", case)
    assert "13812345678" not in esc.explanation
    assert "110101199003077777" not in esc.explanation
    assert "138****5678" in esc.explanation


def test_an_unattended_case_is_supervised_twice_then_its_clocks_stop(w: World) -> None:
    """督办 is not a siren: supervised once, fresh clocks; supervised again, the clocks stop
    (the supervisor follows the case up), however long nobody acts."""
    case = w.appeal("单元门口垃圾没人清运")  # trivial: ceiling grid
    w.runner.advance(T0 + timedelta(days=30))
    sup = [e for e in w.of("case.escalated", case) if e.reason == "supervised"]
    assert len(sup) == 2
    # the second carries the deadlines that stay, to judge by: they no longer fire
    assert sup[1].acknowledge_by == sup[0].acknowledge_by  # the moment it was breached again
    assert "clocks stop" in sup[1].explanation
    state = w.runner.case(case)
    assert state.stopped and state.unit_id == "qy-g01"
