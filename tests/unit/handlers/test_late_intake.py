"""Events that arrive late, and alarms that come back: the clocks of a case start when it can
be seen, and a resolved case whose critical alarm goes off again goes back to work, however
long after the storm's last alarm."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handlers.registry import Registry
from handlers.rules import Rules
from tests.unit.handlers.world import T0, World, at

WJ_WORKER = "p0356"  # grid worker of wj-g05, where sensor wj-gas-020 is


@pytest.fixture()
def w(rules: Rules, registry: Registry) -> World:
    return World(rules, registry)


def test_an_alarm_older_than_its_deadline_starts_its_clocks_on_arrival(w: World) -> None:
    """A gateway flushes a gas alarm of 12:00 at 14:00: its 5-minute acknowledge deadline passed
    before anyone could see the case. It opens, flagged late, with clocks from 14:00; nothing
    escalates at once, and a unit that lets the new deadline pass escalates as usual."""
    w.feed(w.make.appeal("小区门口垃圾堆积", time=at(0)))  # the stream's clock: 14:00
    d = w.opened(w.gas(-120))
    assert d.origin.event_time == T0 - timedelta(hours=2)
    assert (d.acknowledge_by, d.resolve_by) == (T0 + timedelta(minutes=5), T0 + timedelta(hours=2))
    assert "late" in d.tags and "arrived late" in d.explanation and at(-115) in d.explanation
    assert w.feed(
        w.make.appeal("楼道垃圾没人清理", time=at(1), location={"micro_grid_id": "qy-m002"})
    )
    assert w.of("case.escalated", d.case_id) == []  # 14:01: nobody missed anything yet
    w.until(6)
    ups = w.of("case.escalated", d.case_id)
    assert [(e.reason, e.to_tier.value) for e in ups] == [("ack_timeout", "community")]
    assert not any(e.district_handoff for e in ups)


def test_a_late_alarm_can_still_be_acknowledged_in_time(w: World) -> None:
    w.feed(w.make.appeal("小区门口垃圾堆积", time=at(0)))
    d = w.opened(w.gas(-30))
    w.act("acknowledged", d.case_id, WJ_WORKER, 3)
    [ack] = w.of("case.updated", d.case_id)
    assert ack.within_sla is True


def test_an_event_a_little_out_of_order_keeps_its_own_time(w: World) -> None:
    """Within its first deadline, an event is judged by its own time, as always."""
    w.feed(w.make.appeal("小区门口垃圾堆积", time=at(0)))
    d = w.opened(w.gas(-3))  # acknowledge by 14:02, which has not passed at 14:00
    assert d.acknowledge_by == T0 + timedelta(minutes=2)
    assert "late" not in d.tags and "arrived late" not in d.explanation


def test_a_letter_written_days_ago_gets_its_full_time(w: World) -> None:
    """An appeal from the letter box, dated three days before it was read: 4 hours to
    acknowledge and 2 days to resolve, from when it came in."""
    w.feed(w.make.appeal("小区门口垃圾堆积", time=at(0)))
    line = w.make.appeal("垃圾清运不及时", time=at(-3 * 24 * 60), channel="letter_box")
    d = w.opened(line)
    assert (d.acknowledge_by, d.resolve_by) == (T0 + timedelta(hours=4), T0 + timedelta(days=2))
    assert "late" in d.tags


def test_a_late_patrol_closed_on_the_spot_has_no_clocks_to_start(w: World) -> None:
    w.feed(w.make.appeal("小区门口垃圾堆积", time=at(0)))
    d = w.opened(w.make.patrol("sanitation", on_spot=True, time=at(-24 * 60)))
    assert d.status == "closed" and "late" not in d.tags


def test_a_critical_alarm_on_a_resolved_case_after_the_storm_window_sends_it_back(
    w: World,
) -> None:
    """Alarm 14:00, resolved 14:40, the same sensor again at 14:45 (45 minutes after the storm's
    last alarm): the resolution did not hold. The alarm is attached, the case goes back to
    work, and it cannot be verified as if nothing happened."""
    d = w.opened(w.gas(0))
    w.act("acknowledged", d.case_id, WJ_WORKER, 1)
    w.act("resolved", d.case_id, WJ_WORKER, 40)
    got = w.feed(w.gas(45))
    assert [e.type for e in got if e.type == "minhu.case.routed"] == []
    [attached] = w.of("case.attached", d.case_id)
    assert "resolved and not yet verified" in attached.explanation and not attached.late
    [back] = w.of("case.reopened", d.case_id)
    assert (back.reason, back.status, back.resolve_by) == (
        "alarm_recurred",
        "acknowledged",
        T0 + timedelta(minutes=45 + 120),
    )
    assert "not resolved" in w.refused(w.act("verified", d.case_id, WJ_WORKER, 50))
    w.act("resolved", d.case_id, WJ_WORKER, 70)
    w.act("verified", d.case_id, WJ_WORKER, 80)
    assert len(w.of("case.closed", d.case_id)) == 1


def test_a_non_critical_alarm_after_the_window_is_a_case_of_its_own(
    w: World, registry: Registry
) -> None:
    """A water leak (major) on a resolved case, long after the storm: a new case, as before;
    only a critical alarm sends a resolved case back."""
    s = next(
        s
        for s in sorted(registry.sensors.values(), key=lambda s: s.id)
        if "water_leak" in s.alarm_types
    )
    first = w.opened(w.make.alarm(s.id, s.gateway, "water_leak", time=at(0)))
    worker = next(p.id for p in registry.people.values() if p.unit_id == first.unit_id)
    w.act("resolved", first.case_id, worker, 10)  # within its 30 minutes to acknowledge
    state = w.engine.case(first.case_id)
    assert state is not None and state.status == "resolved"
    again = w.opened(w.make.alarm(s.id, s.gateway, "water_leak", time=at(120)))
    assert again.case_id != first.case_id


def test_an_alarm_far_older_than_its_storm_names_the_storm_s_earliest_alarm(w: World) -> None:
    """14:00, then 13:40 (out of order, within the window), then 13:00: the last is more than
    30 minutes before the earliest alarm of the storm, 13:40 — which is not when the case
    opened (14:00): the explanation says which it is."""
    d = w.opened(w.gas(0))
    w.feed(w.gas(-20))
    w.feed(w.gas(-60))
    late = w.of("case.attached", d.case_id)[-1]
    assert late.late
    assert f"before the storm's earliest alarm ({at(-20)})" in late.explanation
    assert "before the case opened" not in late.explanation
