"""Every routing rule, through the engine (parse → assess → route), with no I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.engine import Engine
from handlers.registry import Registry
from handlers.rules import Rules, compile_rules
from handlers.state import DictStore, Position, dump_bucket, load_bucket
from schemas import AlarmType, CaseAttached, CaseRouted, CloudEvent, EventRejected
from tests.conftest import EventFactory

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class Core:
    """The engine with its buckets in a dict and no clock (no deadline fires): each call
    returns the record's routing decision, or its dead letter."""

    def __init__(self, rules: Rules, registry: Registry) -> None:
        self.store = DictStore()
        self.engine = Engine(rules, registry, self.store)
        self.n = 0

    def __call__(self, line: str) -> CloudEvent:
        self.n += 1
        out = self.engine.feed(line, Position("test", self.n), read_at=T0, advance=False)
        return out.outputs[0]


@pytest.fixture()
def core(rules: Rules, registry: Registry) -> Core:
    return Core(rules, registry)


def routed(ev: CloudEvent) -> Any:
    assert isinstance(ev, CaseRouted), ev
    return ev.data


def sensor_of(registry: Registry, alarm_type: str) -> tuple[str, str]:
    s = next(
        s
        for s in sorted(registry.sensors.values(), key=lambda s: s.id)
        if AlarmType(alarm_type) in s.alarm_types
    )
    return s.id, s.gateway


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def test_category_starts_at_its_tier(core: Core, make: EventFactory) -> None:
    d = routed(core(make.appeal("楼上装修声太吵，噪音扰民")))
    assert (d.category, d.tier.value, d.unit_id, d.rule_id) == (
        "noise",
        "grid",
        "qy-g01",
        "category/noise",
    )
    assert "keywords" in d.explanation and "噪音" in d.explanation
    d = routed(core(make.appeal("垃圾没人清运")))
    assert (d.tier.value, d.unit_id, d.severity.value) == ("micro_grid", "qy-m001", "trivial")
    d = routed(core(make.appeal("我们单元停水了")))
    assert (d.tier.value, d.unit_id) == ("community", "qingyuan")


def test_given_category_wins_and_unknown_one_is_derived(core: Core, make: EventFactory) -> None:
    assert routed(core(make.appeal("随便说说", category="parking"))).category == "parking"
    d = routed(core(make.appeal("垃圾成堆", category="karaoke")))
    assert d.category == "sanitation" and "given category 'karaoke' is unknown" in d.explanation


def test_sla_deadlines_per_rule(core: Core, make: EventFactory) -> None:
    d = routed(core(make.appeal("楼上噪音", time="2026-11-01T09:00:00+08:00")))
    assert d.acknowledge_by - d.origin.event_time == timedelta(hours=2)
    assert d.resolve_by - d.origin.event_time == timedelta(days=3)
    d = routed(core(make.appeal("今天天气不错")))  # 'other' has no SLA: the defaults apply
    assert d.resolve_by - d.origin.event_time == timedelta(days=7)


def test_patrol_handled_on_spot_is_closed_at_its_micro_grid(core: Core, make: EventFactory) -> None:
    d = routed(core(make.patrol("sanitation", on_spot=True, micro_grid="qy-m007")))
    assert (d.tier.value, d.unit_id, d.status, d.rule_id) == (
        "micro_grid",
        "qy-m007",
        "closed",
        "patrol-handled-on-spot",
    )
    assert d.acknowledge_by is None and d.resolve_by is None
    d = routed(core(make.patrol("fire_safety", on_spot=False, micro_grid="qy-m007")))
    assert (d.tier.value, d.status) == ("grid", "open")


def test_gas_leak_goes_to_the_grid_and_tells_the_community(
    core: Core, make: EventFactory, registry: Registry
) -> None:
    sid, gw = sensor_of(registry, "gas_leak")
    d = routed(core(make.alarm(sid, gw, "gas_leak")))
    building = registry.buildings[registry.sensors[sid].building_id]
    assert (d.tier.value, d.unit_id, d.severity.value, d.rule_id) == (
        "grid",
        building.grid_id,
        "critical",
        "critical-gas-leak",
    )
    assert [(n.unit_id, n.tier.value) for n in d.notified] == [(building.community_id, "community")]
    assert d.acknowledge_by - d.origin.event_time == timedelta(minutes=5)
    assert d.caller is not None and "*" in (d.caller.phone or "*")


def test_repeated_appeals_raise_the_tier(core: Core, make: EventFactory) -> None:
    tiers = [
        routed(core(make.appeal("楼上噪音扰民", time=at(h * 60)))).tier.value
        for h in (0, 24, 48, 72)
    ]
    assert tiers == ["grid", "grid", "community", "community"]
    # Outside the 7-day window the count starts again.
    assert routed(core(make.appeal("楼上噪音扰民", time=at(60 * 24 * 30)))).tier.value == "grid"
    # Another place is another key.
    other = make.appeal("楼上噪音扰民", location={"micro_grid_id": "qy-m002"}, time=at(73 * 60))
    assert routed(core(other)).tier.value == "grid"


def test_ceilings_cap_trivial_and_minor_matters(
    raw_rules: Any, registry: Registry, make: EventFactory
) -> None:
    """琐事不出网格: a trivial matter that starts at the grid, raised by repeats, stays there
    (with the ceiling lifted, the same appeals climb to the community)."""
    raw_rules["categories"]["sanitation"]["tier"] = "grid"

    def tiers(ceilings: dict[str, str]) -> list[str]:
        raw_rules["ceilings"].update(ceilings)
        core = Core(compile_rules(raw_rules, "test", registry), registry)
        texts = [make.appeal("垃圾没人清运", time=at(h * 60)) for h in range(4)]
        return [routed(core(t)).tier.value for t in texts]

    assert tiers({}) == ["grid", "grid", "grid", "grid"]
    assert tiers({"trivial": "street", "minor": "street"}) == [
        "grid",
        "grid",
        "community",
        "community",
    ]


def test_minor_matter_at_ceiling_is_flagged(
    rules: Rules, registry: Registry, make: EventFactory
) -> None:
    core = Core(rules, registry)
    # 施工扰民 starts at community (minor); a third appeal would raise it to street.
    tiers = [routed(core(make.appeal("工地夜间作业打桩", time=at(h * 60)))) for h in range(3)]
    assert [d.tier.value for d in tiers] == ["community", "community", "community"]
    assert "at-ceiling" in tiers[2].tags and "ceiling of minor" in tiers[2].explanation


def test_major_matter_may_climb_to_the_street(core: Core, make: EventFactory) -> None:
    tiers = [
        routed(core(make.appeal("我们单元停水了", time=at(h * 60)))).tier.value for h in range(3)
    ]
    assert tiers == ["community", "community", "street"]


def test_alarm_storm_is_one_case(core: Core, make: EventFactory, registry: Registry) -> None:
    sid, gw = sensor_of(registry, "smoke")
    first = routed(core(make.alarm(sid, gw, "smoke", time=at(0))))
    later = [core(make.alarm(sid, gw, "smoke", time=at(m))) for m in (1, 5, 20, 45)]
    assert all(isinstance(e, CaseAttached) for e in later)
    assert {e.data.case_id for e in later if isinstance(e, CaseAttached)} == {first.case_id}
    assert [e.data.occurrence for e in later if isinstance(e, CaseAttached)] == [2, 3, 4, 5]
    # 30 minutes of quiet after the last alarm (at 45) ends the storm: a new case.
    again = routed(core(make.alarm(sid, gw, "smoke", time=at(45 + 31))))
    assert again.case_id != first.case_id


def test_critical_words_make_an_appeal_an_emergency(core: Core, make: EventFactory) -> None:
    d = routed(core(make.appeal("楼道杂物着火了，快来人")))
    assert (d.severity.value, d.rule_id, d.tier.value) == ("critical", "critical-appeal", "grid")
    assert [n.tier.value for n in d.notified] == ["community"]


def test_dedicated_grid(core: Core, make: EventFactory, registry: Registry) -> None:
    school = next(
        b for b in registry.buildings.values() if registry.units[b.grid_id].grid_kind == "school"
    )
    d = routed(core(make.appeal("门口垃圾没人清运", location={"building_id": school.id})))
    assert (d.tier.value, d.unit_id, d.rule_id) == ("grid", school.grid_id, "dedicated-grid")


def test_unlocated_goes_to_triage(core: Core, make: EventFactory) -> None:
    d = routed(core(make.appeal("垃圾没人清运", location={"address": "清源社区附近"})))
    assert (d.tier.value, d.unit_id) == ("community", "qingyuan")
    assert "coarse-location" in d.tags
    d = routed(core(make.appeal("垃圾没人清运", location={"address": "火星基地"})))
    assert (d.tier.value, d.unit_id) == ("street", "guanghua-street")
    assert "triage" in d.tags and "火星基地" in d.explanation and "triage desk" in d.explanation


def test_unknown_sensor_and_wrong_gateway(
    core: Core, make: EventFactory, registry: Registry
) -> None:
    rej = core(make.alarm("ghost-1", "gw-x", "gas_leak"))
    assert isinstance(rej, EventRejected) and rej.data.error_kind == "unknown_sensor"
    assert "ghost-1" in rej.data.reason and '"ghost-1"' in rej.data.payload
    sid, _ = sensor_of(registry, "gas_leak")
    rej = core(make.alarm(sid, "gw-other", "gas_leak"))
    assert isinstance(rej, EventRejected) and "bound to gateway" in rej.data.reason
    rej = core(make.alarm(sid, registry.sensors[sid].gateway, "elevator_trapped"))
    assert isinstance(rej, EventRejected) and "does not report elevator_trapped" in rej.data.reason


def test_dispatch_records_mask_personal_data(core: Core, make: EventFactory) -> None:
    ev = core(make.appeal("楼上噪音"))
    text = ev.model_dump_json()
    assert "13812345678" not in text and "王芳" not in text
    assert "138****5678" in text and "王*" in text


def test_buckets_round_trip(core: Core, make: EventFactory, registry: Registry) -> None:
    sid, gw = sensor_of(registry, "gas_leak")
    core(make.alarm(sid, gw, "gas_leak"))
    core(make.appeal("楼上噪音扰民"))
    assert len(core.store.buckets) == 2
    for bucket in core.store.buckets.values():
        assert load_bucket(dump_bucket(bucket)) == bucket


# --- issue 11.5: a compound several grids share ------------------------------------------------


def test_a_compound_shared_by_grids_goes_to_the_unit_covering_them_all(
    core: Core, make: EventFactory, registry: Registry
) -> None:
    grids = sorted(g for g, u in registry.units.items() if u.tier.value == "grid")
    sharing = [g for g in grids if registry.units[g].name.startswith("清源小区一期第")]
    assert sharing == ["qy-g01", "qy-g02", "qy-g03"]
    d = routed(core(make.appeal("门口垃圾没人清运", location={"address": "清源小区一期北门"})))
    assert (d.tier.value, d.unit_id, d.grid_id, d.community_id) == (
        "community",
        "qingyuan",
        None,
        "qingyuan",
    )
    assert "shared by grids qy-g01, qy-g02, qy-g03" in d.explanation
    assert "清源社区" in d.explanation and "coarse-location" in d.tags
    # a compound of one grid still goes to that grid
    d = routed(core(make.appeal("门口垃圾没人清运", location={"address": "金沙人家北门"})))
    assert d.grid_id is not None and d.unit_id == d.grid_id and "shared" not in d.explanation


# --- issue 11.6: traditional characters and English ---------------------------------------------


def test_traditional_text_is_tagged_as_its_simplified_twin(core: Core, make: EventFactory) -> None:
    twin = routed(core(make.appeal("厨房里煤气味很重，家里只有老人")))
    d = routed(core(make.appeal("廚房裡煤氣味很重，家裡只有老人")))
    assert (twin.category, twin.severity.value) == ("gas_safety", "critical")
    assert (d.category, d.severity.value, d.rule_id) == (
        twin.category,
        twin.severity.value,
        twin.rule_id,
    )
    assert d.summary.startswith("廚房裡")  # the responder reads what the caller wrote


def test_a_traditional_address_finds_its_building(core: Core, make: EventFactory) -> None:
    twin = routed(core(make.appeal("垃圾没人清运", location={"address": "文家路34号和美苑1栋"})))
    d = routed(core(make.appeal("垃圾没人清运", location={"address": "文家路34號和美苑1棟"})))
    assert (d.unit_id, d.micro_grid_id) == (twin.unit_id, twin.micro_grid_id)
    assert d.micro_grid_id is not None and "matched building" in d.explanation


@pytest.mark.parametrize(
    ("text", "category", "severity"),
    [
        ("Strong smell of gas in the stairwell", "gas_safety", "critical"),
        ("STRONG SMELL OF GAS in the stairwell", "gas_safety", "critical"),
        ("The lift is broken, someone is trapped inside", "elevator", "critical"),
        ("Rubbish piling up by the gate", "sanitation", "trivial"),
        ("Loud noise from the flat upstairs every night", "noise", "minor"),
        ("Fire! Help!", "fire_safety", "critical"),
        ("No water since this morning", "water_power", "major"),
        # word boundaries: 'gas' is not in 'Vegas', 'fire' not in 'firefly', 'lift' not in 'shoplifting'
        ("Photos of Las Vegas and a firefly; shoplifting", "other", "minor"),
    ],
)
def test_english_keywords_and_severity_words(
    core: Core, make: EventFactory, text: str, category: str, severity: str
) -> None:
    d = routed(core(make.appeal(text)))
    assert (d.category, d.severity.value) == (category, severity), d.explanation


def test_a_routed_case_holds_to_the_wire_contract(
    core: Core, make: EventFactory, registry: Registry
) -> None:
    """Each routed case is what the contract accepts, and reads back as the same case."""
    sid, gw = sensor_of(registry, "gas_leak")
    lines = [
        make.appeal("楼上噪音，电话13812345678"),
        make.appeal("今天天气不错", location={"address": "火星路1号"}),
        make.appeal("垃圾", category="no-such-category"),
        *(make.appeal("楼下垃圾没人清运", time=at(m)) for m in range(3)),
        make.alarm(sid, gw, "gas_leak"),
        make.patrol(on_spot=True),
        make.patrol(category="no-such-category"),
    ]
    for line in lines:
        ev = core(line)
        assert isinstance(ev, CaseRouted), ev
        text = ev.model_dump_json(exclude_none=True)
        again = CaseRouted.model_validate_json(text)
        assert again == ev
        assert again.model_dump_json(exclude_none=True) == text


@pytest.mark.parametrize("alarm_type", [a.value for a in AlarmType])
def test_every_alarm_type_bounds_its_readings(
    core: Core, make: EventFactory, registry: Registry, alarm_type: str
) -> None:
    """Issue 13: a reading of -1e300 against a threshold of -1e301 is no alarm of any type,
    including those whose low readings are only flagged (a fall detector, a trapped lift)."""
    sid, gw = sensor_of(registry, alarm_type)
    doc = json.loads(make.alarm(sid, gw, alarm_type))
    doc["data"].update(reading=-1e300, threshold=-1e301)
    doc["data"].pop("unit")
    rej = core(json.dumps(doc))
    assert isinstance(rej, EventRejected), rej
    assert rej.data.error_kind == "implausible_reading" and "outside the range" in rej.data.reason
