"""An address that names the compound and the building but not the road and number
(清源小区一期5栋) finds that building; one that names no building of the compound still goes
to the unit covering the compound's grids."""

from __future__ import annotations

import pytest

from handlers.locate import locate
from handlers.registry import Registry
from schemas.common import Location


@pytest.mark.parametrize(
    "address",
    ["清源小区一期5栋", "清源小区一期5栋3单元201", "清源小區一期5棟", "成都清源小区一期 5栋"],
)
def test_compound_and_building_find_the_building(registry: Registry, address: str) -> None:
    at = locate(Location(address=address), registry, 300)
    assert (at.method, at.building_id, at.grid_id) == ("address", "qy-b0005", "qy-g01"), at.note
    assert registry.buildings["qy-b0005"].address == "清源路10号清源小区一期5栋"


@pytest.mark.parametrize("address", ["清源小区一期北门", "清源小区一期99栋", "清源小区一期"])
def test_no_building_of_the_compound_stays_at_the_compound(
    registry: Registry, address: str
) -> None:
    at = locate(Location(address=address), registry, 300)
    assert (at.method, at.building_id, at.community_id) == ("compound", None, "qingyuan"), at.note


def test_a_longer_building_number_is_not_a_shorter_one(registry: Registry) -> None:
    """和美苑1栋 is not 和美苑10栋 (nor the other way round)."""
    one = locate(Location(address="和美苑1栋"), registry, 300).building_id
    ten = locate(Location(address="和美苑10栋"), registry, 300).building_id
    assert one is not None and one != ten
