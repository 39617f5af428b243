"""Returned and forwarded cases (退单, 转派) and extensions (延期), through the embedded runner on
event time, like tests/unit/streams/test_lifecycle.py."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from handlers.ids import shard_token_of_case
from handlers.registry import Registry
from handlers.rules import Rules
from schemas.lifecycle import extension_duration, input_adapter
from tests.unit.streams.test_lifecycle import (
    COMMUNITY_OP,
    GENERAL_HEAD,
    GRID_HEAD,
    GRID_WORKER,
    MICRO_WORKER,
    OTHER_GRID_WORKER,
    STREET_OP,
    T0,
    World,
)

OTHER_GRID_HEAD = "p0026"  # grid qy-g02
OTHER_COMMUNITY_OP = "p0246"  # community guanghua


@pytest.fixture()
def w(rules: Rules, registry: Registry) -> World:
    return World(rules, registry)


def reassign(w: World, case: str, actor: str, minutes: float, to: str | None = None) -> None:
    data = {"note": "不属于本网格"} if to is None else {"note": "转派", "to_unit_id": to}
    w.act("reassign_requested", case, actor, minutes, **data)


# ---- 转派: a desk forwards a case ----------------------------------------------------------------


def test_desk_forwards_a_case_to_a_named_unit_with_fresh_clocks(w: World) -> None:
    case = w.appeal("楼上噪音扰民")  # noise: grid qy-g01, ack 2h, resolve 3d
    reassign(w, case, COMMUNITY_OP, 30, to="qy-g02")
    [r] = w.of("case.reassigned", case)
    assert (r.kind, r.from_unit_id, r.to_unit_id, r.to_tier.value, r.actor_id) == (
        "forwarded",
        "qy-g01",
        "qy-g02",
        "grid",
        COMMUNITY_OP,
    )
    assert r.acknowledge_by == T0 + timedelta(minutes=30, hours=2)
    assert r.resolve_by == T0 + timedelta(minutes=30, days=3)
    assert w.topics(case, "case.reassigned") == {"minhu.dispatch.grid"}
    assert w.runner.case(case).unit_id == "qy-g02"
    # The old unit may no longer act; the new one may.
    w.act("acknowledged", case, GRID_WORKER, 40)
    assert w.dead()[-1][0] == "unauthorized" and "assigned to qy-g02" in w.dead()[-1][1]
    # The old acknowledge deadline (2h) does not fire; the new one (2h30) does.
    w.runner.advance(T0 + timedelta(minutes=149))
    assert w.of("case.escalated", case) == []
    w.runner.advance(T0 + timedelta(minutes=150))
    [esc] = w.of("case.escalated", case)
    assert (esc.reason, esc.from_unit_id) == ("ack_timeout", "qy-g02")


def test_forwarding_to_another_tier_reaches_both_dispatch_topics(w: World) -> None:
    case = w.appeal("单元门口垃圾没人清运")  # sanitation: micro-grid qy-m004
    reassign(w, case, GRID_HEAD, 5, to="qy-m005")  # the grid above may forward
    reassign(w, case, STREET_OP, 10, to="qingyuan")  # the street desk may, anywhere in it
    got = [(r.from_unit_id, r.to_unit_id) for r in w.of("case.reassigned", case)]
    assert got == [("qy-m004", "qy-m005"), ("qy-m005", "qingyuan")]
    assert w.topics(case, "case.reassigned") == {
        "minhu.dispatch.micro_grid",
        "minhu.dispatch.community",
    }
    assert w.dead() == []


def test_who_may_forward_follows_the_registry(w: World) -> None:
    case = w.appeal("楼上噪音扰民")  # grid qy-g01
    reassign(w, case, MICRO_WORKER, 5, to="qy-g02")  # a micro-grid worker is no desk
    assert w.dead()[-1][0] == "unauthorized"
    reassign(w, case, OTHER_GRID_HEAD, 6, to="qy-g02")  # a grid beside it is not above it
    assert w.dead()[-1][0] == "unauthorized"
    reassign(w, case, OTHER_COMMUNITY_OP, 7, to="gh-g01")  # another community's desk
    kind, reason = w.dead()[-1]
    assert kind == "unauthorized" and "qy-g01" in reason
    reassign(w, case, COMMUNITY_OP, 8, to="gh-g01")  # outside the desk's own community
    kind, reason = w.dead()[-1]
    assert kind == "unauthorized" and "gh-g01" in reason
    reassign(w, case, COMMUNITY_OP, 9, to="nowhere")
    kind, reason = w.dead()[-1]
    assert kind == "invalid_transition" and "nowhere" in reason
    reassign(w, case, COMMUNITY_OP, 10, to="qy-g01")  # where it already is
    assert w.dead()[-1][0] == "invalid_transition"
    reassign(w, case, "nobody", 11, to="qy-g02")
    assert w.dead()[-1][0] == "unauthorized"
    assert w.of("case.reassigned", case) == [] and w.runner.case(case).unit_id == "qy-g01"
    w.act("resolved", case, GRID_WORKER, 20)
    reassign(w, case, COMMUNITY_OP, 30, to="qy-g02")  # resolved: nothing to forward
    assert w.dead()[-1][0] == "invalid_transition"
    assert w.runner.tally.balanced


# ---- 退单: a unit returns a case outside its remit -------------------------------------------


def test_unit_returns_a_routed_case_to_its_desk_and_the_desk_forwards_it(w: World) -> None:
    case = w.appeal("楼上噪音扰民")  # grid qy-g01, routed there by the rules
    reassign(w, case, GRID_WORKER, 10)  # 退单: back to the triage desk of its community
    [r] = w.of("case.reassigned", case)
    assert (r.kind, r.from_unit_id, r.to_unit_id, r.note) == (
        "returned",
        "qy-g01",
        "qingyuan",
        "不属于本网格",
    )
    assert r.acknowledge_by == T0 + timedelta(minutes=10, hours=2)
    assert w.topics(case, "case.reassigned") == {
        "minhu.dispatch.grid",
        "minhu.dispatch.community",
    }
    reassign(w, case, COMMUNITY_OP, 20, to="qy-g02")
    reassign(w, case, OTHER_GRID_WORKER, 30)  # returned to the desk that forwarded it
    reassign(w, case, GENERAL_HEAD, 40)  # the community desk returns it to the street's
    got = [(r.kind, r.from_unit_id, r.to_unit_id) for r in w.of("case.reassigned", case)]
    assert got == [
        ("returned", "qy-g01", "qingyuan"),
        ("forwarded", "qingyuan", "qy-g02"),
        ("returned", "qy-g02", "qingyuan"),
        ("returned", "qingyuan", "guanghua-street"),
    ]
    reassign(w, case, STREET_OP, 50)  # the street is the last desk: nowhere to return it
    kind, reason = w.dead()[-1]
    assert kind == "invalid_transition" and "street" in reason
    assert w.runner.case(case).unit_id == "guanghua-street"


def test_a_street_desk_forward_is_returned_to_the_street(w: World) -> None:
    case = w.appeal("楼上噪音扰民")
    reassign(w, case, STREET_OP, 5, to="qy-g03")
    reassign(w, case, "p0035", 10)  # grid worker of qy-g03
    [_, back] = w.of("case.reassigned", case)
    assert (back.kind, back.to_unit_id) == ("returned", "guanghua-street")


def test_an_escalated_case_cannot_be_returned(w: World) -> None:
    case = w.appeal("单元门口垃圾没人清运")  # micro-grid qy-m004
    w.act("escalation_requested", case, MICRO_WORKER, 5)  # → grid qy-g01
    reassign(w, case, GRID_WORKER, 10)
    kind, reason = w.dead()[-1]
    assert kind == "invalid_transition" and "escalated" in reason
    assert w.of("case.reassigned", case) == []


def test_a_return_naming_another_unit_is_refused(w: World) -> None:
    case = w.appeal("楼上噪音扰民")
    reassign(w, case, GRID_WORKER, 10, to="qy-g02")  # a grid worker is no desk
    assert w.dead()[-1][0] == "unauthorized"
    reassign(w, case, GRID_WORKER, 11, to="qingyuan")  # naming the desk it goes back to: fine
    [r] = w.of("case.reassigned", case)
    assert (r.kind, r.to_unit_id) == ("returned", "qingyuan")


def test_reassign_survives_a_snapshot(w: World, rules: Rules, registry: Registry) -> None:
    from handlers.state import dump_bucket, load_bucket

    case = w.appeal("楼上噪音扰民")
    reassign(w, case, COMMUNITY_OP, 10, to="qy-g02")
    w.act("acknowledged", case, OTHER_GRID_WORKER, 11)
    w.act("extension_requested", case, OTHER_GRID_WORKER, 12, extra="1d", note="等配件")
    for key, bucket in w.runner.engine.store.items():
        again = load_bucket(dump_bucket(bucket))
        assert again.cases == bucket.cases, key


# ---- 延期: extensions -------------------------------------------------------------------------


def test_approved_extension_moves_the_resolve_deadline(w: World) -> None:
    case = w.appeal("楼上噪音扰民")  # grid qy-g01, resolve 3d
    w.act("acknowledged", case, GRID_WORKER, 10)
    w.act("extension_requested", case, GRID_WORKER, 60, extra="2d", note="需协调物业更换设备")
    [ask] = w.of("case.extension_asked", case)
    assert (ask.unit_id, ask.extra, ask.decider_unit_id, ask.actor_id) == (
        "qy-g01",
        "2d",
        "qingyuan",
        GRID_WORKER,
    )
    assert ask.resolve_by == T0 + timedelta(days=3)
    assert ask.requested_resolve_by == T0 + timedelta(days=5)
    assert w.topics(case, "case.extension_asked") == {
        "minhu.dispatch.grid",
        "minhu.dispatch.community",
    }
    w.act("extension_decided", case, GRID_HEAD, 90, approved=True)  # not the tier above
    assert w.dead()[-1][0] == "unauthorized"
    w.act("extension_decided", case, GENERAL_HEAD, 120, approved=True, note="同意")
    [ans] = w.of("case.extension_answered", case)
    assert (ans.approved, ans.actor_id, ans.resolve_by, ans.previous_resolve_by) == (
        True,
        GENERAL_HEAD,
        T0 + timedelta(days=5),
        T0 + timedelta(days=3),
    )
    assert w.topics(case, "case.extension_answered") == {
        "minhu.dispatch.grid",
        "minhu.dispatch.community",
    }
    assert w.runner.case(case).resolve_by == T0 + timedelta(days=5)
    w.runner.advance(T0 + timedelta(days=4))
    assert w.of("case.escalated", case) == []
    w.act("extension_requested", case, GRID_WORKER, 4 * 1440 + 1, extra="1d", note="再等等")
    kind, reason = w.dead()[-1]
    assert kind == "invalid_transition" and "once" in reason
    w.act("resolved", case, GRID_WORKER, 4 * 1440 + 2)
    [u] = [u for u in w.of("case.updated", case) if u.status == "resolved"]
    assert u.within_sla  # within the extended deadline


def test_refused_extension_keeps_the_deadline_and_uses_the_one_request(w: World) -> None:
    case = w.appeal("楼上噪音扰民")
    w.act("extension_requested", case, GRID_WORKER, 60, extra="P1DT12H", note="需要时间")
    [ask] = w.of("case.extension_asked", case)
    assert ask.requested_resolve_by == T0 + timedelta(days=4, hours=12)
    w.act("extension_decided", case, COMMUNITY_OP, 70, approved=False, note="三天内办结")
    [ans] = w.of("case.extension_answered", case)
    assert (ans.approved, ans.resolve_by) == (False, T0 + timedelta(days=3))
    w.act("extension_decided", case, COMMUNITY_OP, 80, approved=True)  # nothing pending
    assert w.dead()[-1][0] == "invalid_transition"
    w.act("extension_requested", case, GRID_WORKER, 90, extra="1d", note="再申请")
    assert w.dead()[-1][0] == "invalid_transition"
    w.act("acknowledged", case, GRID_WORKER, 100)
    w.runner.advance(T0 + timedelta(days=3))
    [esc] = w.of("case.escalated", case)
    assert esc.reason == "resolve_timeout"


def test_who_may_ask_and_how_much(w: World) -> None:
    case = w.appeal("楼上噪音扰民")
    w.act("extension_requested", case, OTHER_GRID_WORKER, 10, extra="1d", note="x")
    assert w.dead()[-1][0] == "unauthorized"
    w.act("extension_requested", case, GRID_WORKER, 11, extra="30d", note="x")
    kind, reason = w.dead()[-1]
    assert kind == "invalid_transition" and "max_extension" in reason
    w.act("extension_requested", case, GRID_WORKER, 12, extra="two days", note="x")
    assert w.dead()[-1][0] == "invalid_event"
    w.act("extension_decided", case, GENERAL_HEAD, 13, approved=True)  # nothing asked
    assert w.dead()[-1][0] == "invalid_transition"
    assert w.of("case.extension_asked", case) == []
    w.act("extension_requested", case, GRID_HEAD, 14, extra="1d", note="x")  # still may ask
    assert len(w.of("case.extension_asked", case)) == 1


def test_a_pending_request_lapses_when_the_case_moves(w: World) -> None:
    case = w.appeal("楼上噪音扰民")
    w.act("acknowledged", case, GRID_WORKER, 10)
    w.act("extension_requested", case, GRID_WORKER, 20, extra="1d", note="x")
    w.act("escalation_requested", case, GRID_WORKER, 30, note="解决不了")  # → qingyuan
    w.act("extension_decided", case, STREET_OP, 40, approved=True)
    kind, reason = w.dead()[-1]
    assert kind == "invalid_transition" and "no extension" in reason
    w.act("extension_requested", case, COMMUNITY_OP, 50, extra="1d", note="x")  # once an opening
    assert w.dead()[-1][0] == "invalid_transition"


def test_a_street_case_is_extended_by_the_street_itself(w: World) -> None:
    case = w.appeal("我们单元停水了")  # water_power: community qingyuan
    w.act("escalation_requested", case, COMMUNITY_OP, 5, note="需街道协调")
    w.act("extension_requested", case, STREET_OP, 10, extra="12h", note="等水务")
    [ask] = w.of("case.extension_asked", case)
    assert ask.decider_unit_id == "guanghua-street"
    w.act("extension_decided", case, "p0002", 20, approved=True)
    [ans] = w.of("case.extension_answered", case)
    assert ans.approved and w.topics(case, "case.extension_answered") == {"minhu.dispatch.street"}


def test_a_reopened_case_may_ask_again(w: World) -> None:
    case = w.appeal("楼上噪音扰民")
    w.act("extension_requested", case, GRID_WORKER, 10, extra="1d", note="x")
    w.act("extension_decided", case, GENERAL_HEAD, 11, approved=True)
    w.act("resolved", case, GRID_WORKER, 20)
    w.act("verified", case, GRID_WORKER, 30)
    w.rate(case, "res-1", "dissatisfied", 40)  # reopened at qingyuan, opening 2
    w.act("extension_requested", case, COMMUNITY_OP, 50, extra="1d", note="x")
    assert [a.opening for a in w.of("case.extension_asked", case)] == [1, 2]


# ---- the wire --------------------------------------------------------------------------------


def test_extension_durations() -> None:
    assert extension_duration("2d") == timedelta(days=2)
    assert extension_duration("1d12h") == timedelta(days=1, hours=12)
    assert extension_duration("P2D") == timedelta(days=2)
    assert extension_duration("PT36H") == timedelta(hours=36)
    assert extension_duration("P1W") == timedelta(days=7)
    for bad in ("", "0d", "PT0S", "P1M", "P1Y", "2 days", "P", "PT", "-1d"):
        with pytest.raises(ValueError):
            extension_duration(bad)


@pytest.mark.parametrize(
    "type_", ["reassign_requested", "extension_requested", "extension_decided"]
)
def test_the_publisher_routes_the_new_actions_to_the_action_topic(
    type_: str, rules: Rules, registry: Registry
) -> None:
    from streams.drivers.kafka.publisher import route_for

    case = "case-0a1b2c3d4e5f-0123456789"
    data = {
        "reassign_requested": {"note": "转派", "to_unit_id": "qy-g02"},
        "extension_requested": {"extra": "2d", "note": "x"},
        "extension_decided": {"approved": True},
    }[type_]
    event = input_adapter.validate_json(
        json.dumps(
            {
                "specversion": "1.0",
                "id": "x-1",
                "source": "/app",
                "time": T0.isoformat(),
                "type": f"minhu.case.{type_}",
                "data": {"case_id": case, "actor_id": GRID_WORKER, **data},
            }
        )
    )
    assert route_for(event, rules, registry) == ("action", "0a1b")
    assert shard_token_of_case(case) == "0a1b"
