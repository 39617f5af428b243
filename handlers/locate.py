"""Resolving where a matter is: a micro-grid id, a building, an address text, lat/lon or the
sensor's registry binding, down to the smallest unit the registry knows."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.privacy import mask_caller_in, place_digest
from handlers.registry import Registry, normalise_address
from schemas.common import Location, Tier


@dataclass(frozen=True, slots=True)
class Located:
    """The units containing a place; any may be None when only a coarser one is known."""

    community_id: str | None
    grid_id: str | None
    micro_grid_id: str | None
    building_id: str | None
    method: str  # micro_grid_id | building_id | address | compound | community | lat_lon | sensor | none
    note: str

    place: str  # the smallest known place: two appeals about it are "about the same place"


def at_building(registry: Registry, building_id: str, method: str, note: str) -> Located:
    b = registry.buildings[building_id]
    return Located(
        b.community_id, b.grid_id, b.micro_grid_id, b.id, method, note, b.micro_grid_id or b.id
    )


def locate(
    location: Location, registry: Registry, max_distance_m: float, caller_name: str | None = None
) -> Located:
    """Try the given forms from the most precise to the least; say what failed on the way.
    What the sender wrote is quoted in the note with its phone and ID numbers and the caller's
    name masked (the note goes into the case's `explanation`, on the dispatch topics)."""
    misses: list[str] = []

    def quoted(text: str) -> str:
        return mask_caller_in(text, caller_name)

    if location.micro_grid_id is not None:
        unit = registry.units.get(location.micro_grid_id)
        if unit is not None and unit.tier.value == "micro_grid":
            return Located(
                unit.community_id,
                unit.grid_id,
                unit.id,
                location.building_id,
                "micro_grid_id",
                f"micro-grid {unit.id} as given",
                unit.id,
            )
        misses.append(f"unknown micro-grid '{quoted(location.micro_grid_id)}'")
    if location.building_id is not None:
        if location.building_id in registry.buildings:
            return at_building(
                registry,
                location.building_id,
                "building_id",
                f"building {location.building_id} as given",
            )
        misses.append(f"unknown building '{quoted(location.building_id)}'")
    if location.address is not None:
        found = _by_address(location.address, registry)
        if found is not None:
            return found
        misses.append(
            f"address '{quoted(location.address)}' matches no building, compound or community"
        )
    if location.lat is not None and location.lon is not None:
        mid = registry.nearest_micro_grid(location.lat, location.lon, max_distance_m)
        if mid is not None:
            unit = registry.units[mid]
            return Located(
                unit.community_id,
                unit.grid_id,
                mid,
                None,
                "lat_lon",
                f"({location.lat:.5f}, {location.lon:.5f}) is nearest to micro-grid {mid}",
                mid,
            )
        misses.append(
            f"({location.lat:.5f}, {location.lon:.5f}) is over {max_distance_m:.0f} m "
            "from every micro-grid"
        )
    # Unlocated: the place is what the caller said, so that repeats about it still group — as
    # a digest: the dedup key goes into record keys, state and the dispatch topics.
    if location.address is not None:
        place = "address:" + place_digest(normalise_address(location.address))
    elif location.lat is not None:
        place = f"latlon:{location.lat:.4f},{location.lon:.4f}"
    else:
        place = "unknown:" + place_digest(f"{location.micro_grid_id or location.building_id}")
    return Located(None, None, None, None, "none", "; ".join(misses), place)


def _by_address(address: str, registry: Registry) -> Located | None:
    norm = normalise_address(address)
    # A building's address, possibly followed by a unit and flat: '...3栋2单元502'.
    for n in registry.address_lengths:
        if n <= len(norm):
            bid = registry.addresses.get(norm[:n])
            if bid is not None:
                return at_building(registry, bid, "address", f"address matched building {bid}")
    if registry.compound_re is not None:
        m = registry.compound_re.search(norm)
        if m is not None:
            bid = _building_of_compound(norm[m.start() :], m.group(), registry)
            if bid is not None:
                note = f"address matched building {bid} by its compound {m.group()}, no road named"
                return at_building(registry, bid, "address", note)
            return _at_compound(m.group(), registry)
    m = registry.community_re.search(norm)
    if m is not None:
        cid = registry.community_names[m.group()]
        return Located(
            cid,
            None,
            None,
            None,
            "community",
            f"address names community {m.group()}; no compound or building matched",
            cid,
        )
    return None


def _building_of_compound(text: str, compound: str, registry: Registry) -> str | None:
    """The building an address names by its compound and building without the road and number
    ('清源小区一期5栋2单元' for '清源路10号清源小区一期5栋'): the one building whose address,
    from the compound's name on, begins `text` — the longest such, and only if no other
    building's is as long. None if none or several."""
    best: list[str] = []
    size = len(compound)
    for address, bid in registry.addresses.items():
        i = address.find(compound)
        tail = address[i:] if i >= 0 else ""
        if len(tail) > len(compound) and text.startswith(tail):
            if len(tail) > size:
                best, size = [bid], len(tail)
            elif len(tail) == size:
                best.append(bid)
    return best[0] if len(best) == 1 else None


def _at_compound(name: str, registry: Registry) -> Located:
    """A compound named without a building: its grid, or, for a compound several grids share,
    the smallest unit that covers them all (their community, else the street): which of its
    grids the matter is in is not known."""
    grids = registry.compounds[name]
    if len(grids) == 1:
        grid = registry.units[grids[0]]
        note = f"address names compound {name} (grid {grid.id}); no building matched"
        return Located(grid.community_id, grid.id, None, None, "compound", note, grid.id)
    unit = registry.covering(grids)
    note = (
        f"address names compound {name}, shared by grids {', '.join(grids)}; no building "
        f"matched: located at {unit.name} ({unit.tier.value}), the smallest unit covering them"
    )
    community = unit.id if unit.tier is Tier.COMMUNITY else None
    return Located(community, None, None, None, "compound", note, f"compound:{name}")
