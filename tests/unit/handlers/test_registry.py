"""The grid registry: the sample street's shape, locating in every form, and bad files."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from handlers.errors import ConfigError
from handlers.locate import locate
from handlers.registry import Registry, Role, compile_registry
from schemas import Location, Tier
from streams.config import default_registry_path, read_yaml


def test_qingyuan_is_sized_like_its_namesake(registry: Registry) -> None:
    units = [u for u in registry.units.values() if u.community_id == "qingyuan"]
    general = [u for u in units if u.tier is Tier.GRID and u.grid_kind == "general"]
    dedicated = {u.grid_kind for u in units if u.tier is Tier.GRID and u.grid_kind != "general"}
    micro = [u for u in units if u.tier is Tier.MICRO_GRID]
    compounds = {registry.units[g.id].name.split("第")[0] for g in general}
    assert len(general) == 23 and len(micro) == 187 and len(compounds) == 10
    assert dedicated == {"school", "market", "construction_site"}
    communities = [u for u in registry.units.values() if u.tier is Tier.COMMUNITY]
    assert len(communities) >= 3


def test_every_unit_has_its_people(registry: Registry) -> None:
    staffed = {p.unit_id for p in registry.people.values()}
    assert all(u in staffed for u in registry.units)
    roles = {p.role for p in registry.people.values()}
    assert roles == set(Role)


def test_sensors_are_bound_to_buildings(registry: Registry) -> None:
    elderly = [
        s for s in registry.sensors.values() if s.resident_note and "独居" in s.resident_note
    ]
    assert elderly and all(s.building_id in registry.buildings for s in registry.sensors.values())


@pytest.mark.parametrize(
    ("location", "method", "micro_grid"),
    [
        ({"micro_grid_id": "qy-m005"}, "micro_grid_id", "qy-m005"),
        ({"building_id": "qy-b0001"}, "building_id", "qy-m001"),
        ({"address": "清源路10号清源小区一期1栋"}, "address", "qy-m001"),
        ({"address": "清源路１０号 清源小区一期1栋 2单元502"}, "address", "qy-m001"),  # full-width
        ({"micro_grid_id": "nope", "building_id": "qy-b0001"}, "building_id", "qy-m001"),
    ],
)
def test_locate_precise_forms(
    registry: Registry, location: dict[str, Any], method: str, micro_grid: str
) -> None:
    got = locate(Location(**location), registry, 300)
    assert (got.method, got.micro_grid_id, got.community_id) == (method, micro_grid, "qingyuan")


def test_locate_by_lat_lon(registry: Registry) -> None:
    lat, lon, mid = registry.micro_grid_points[10]
    got = locate(Location(lat=lat + 0.0001, lon=lon), registry, 300)
    assert got.method == "lat_lon" and got.micro_grid_id is not None
    assert got.community_id == registry.units[mid].community_id
    far = locate(Location(lat=39.9, lon=116.4), registry, 300)
    assert far.method == "none" and "over 300 m" in far.note


def test_locate_coarse_and_unresolved(registry: Registry) -> None:
    compound = locate(Location(address="金沙人家门口"), registry, 300)
    assert compound.method == "compound" and compound.grid_id and compound.micro_grid_id is None
    community = locate(Location(address="清源社区附近的路口"), registry, 300)
    assert (community.method, community.community_id, community.grid_id) == (
        "community",
        "qingyuan",
        None,
    )
    lost = locate(Location(address="人民南路三段", building_id="b-404"), registry, 300)
    assert lost.method == "none" and lost.community_id is None
    assert "unknown building 'b-404'" in lost.note and "人民南路三段" in lost.note


@pytest.fixture()
def raw_registry() -> Any:
    return copy.deepcopy(read_yaml(default_registry_path()))


def _fails(raw: Any, *words: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_registry(raw, "reg.yaml")
    for w in words:
        assert w in str(info.value), str(info.value)


def test_duplicate_ids(raw_registry: Any) -> None:
    raw_registry["communities"][1]["grids"][0]["id"] = "qy-g01"
    _fails(raw_registry, "reg.yaml", "duplicate id 'qy-g01'", "communities[0]")


def test_person_of_unknown_unit_and_wrong_role(raw_registry: Any) -> None:
    raw_registry["people"][0]["unit"] = "nowhere"
    raw_registry["people"][1]["role"] = "grid_head"  # a street operator's unit is the street
    _fails(raw_registry, "unknown unit 'nowhere'", "role grid_head belongs to a grid unit")


def test_sensor_of_unknown_building(raw_registry: Any) -> None:
    raw_registry["sensors"][0]["building"] = "b-999"
    _fails(
        raw_registry, f"sensors[0] '{raw_registry['sensors'][0]['id']}'", "unknown building 'b-999'"
    )


def test_unknown_field_and_bad_alarm_type(raw_registry: Any) -> None:
    raw_registry["communities"][0]["grids"][0]["colour"] = "red"
    raw_registry["sensors"][0]["alarm_types"] = ["earthquake"]
    _fails(raw_registry, "unknown field 'colour'", "sensors[0].alarm_types[0]")


def test_empty_grid(raw_registry: Any) -> None:
    raw_registry["communities"][0]["grids"][0]["micro_grids"] = []
    _fails(raw_registry, "a grid needs micro_grids or buildings")


def test_a_compound_shared_by_several_grids_locates_to_their_community(
    registry: Registry,
) -> None:
    got = locate(Location(address="清源小区一期北门"), registry, 300)
    assert (got.method, got.community_id, got.grid_id, got.micro_grid_id) == (
        "compound",
        "qingyuan",
        None,
        None,
    )
    assert "shared by grids qy-g01, qy-g02, qy-g03" in got.note and "清源社区" in got.note
    one = locate(Location(address="金沙人家门口"), registry, 300)
    assert one.grid_id is not None and "shared" not in one.note


def test_traditional_and_full_width_addresses(registry: Registry) -> None:
    for written in (
        "文家路34號和美苑1棟",
        "文家路３４號和美苑１棟3单元502",
        "文家路34号 和美苑1栋",
    ):
        got = locate(Location(address=written), registry, 300)
        assert got.method == "address" and got.building_id is not None, (written, got)
    assert locate(Location(address="清源社區附近"), registry, 300).community_id == "qingyuan"
