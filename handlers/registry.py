"""The grid registry: the administrative geography of one street, compiled once.

street → communities → grids (general or dedicated 专属网格) → micro-grids → buildings, plus the
people of each unit with their roles, and the sensors bound to the household or building they
watch. `compile_registry(raw, source)` validates a parsed document (YAML or JSON) and returns an
immutable `Registry` with the look-ups routing needs; it raises `ConfigError` listing every
fault with its place in the file.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handlers.errors import ConfigError, validation_problems
from handlers.text import fold
from schemas.common import AlarmType, Tier


class Role(StrEnum):
    """People's roles, each belonging to units of one tier."""

    MICRO_GRID_WORKER = "micro_grid_worker"  # 微网格员 (often a building head 楼栋长)
    GRID_WORKER = "grid_worker"  # 专职网格员
    GRID_HEAD = "grid_head"  # 网格长
    GENERAL_GRID_HEAD = "general_grid_head"  # 总网格长 (community)
    COMMUNITY_OPERATOR = "community_operator"  # 社区微网实格指挥室值班员
    STREET_OPERATOR = "street_operator"  # 街道综合运行中心


ROLE_TIER: dict[Role, Tier] = {
    Role.MICRO_GRID_WORKER: Tier.MICRO_GRID,
    Role.GRID_WORKER: Tier.GRID,
    Role.GRID_HEAD: Tier.GRID,
    Role.GENERAL_GRID_HEAD: Tier.COMMUNITY,
    Role.COMMUNITY_OPERATOR: Tier.COMMUNITY,
    Role.STREET_OPERATOR: Tier.STREET,
}

GridKind = Literal["general", "school", "hospital", "market", "construction_site"]


# ---- the file format -------------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BuildingSpec(_Spec):
    id: str
    address: str = Field(min_length=1)


class MicroGridSpec(_Spec):
    id: str
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    households: int = Field(default=0, ge=0)
    buildings: list[BuildingSpec] = []


class GridSpec(_Spec):
    id: str
    name: str
    kind: GridKind = "general"
    compound: str | None = Field(default=None, description="小区/院落 name, matched in addresses")
    micro_grids: list[MicroGridSpec] = []
    buildings: list[BuildingSpec] = Field(
        default=[], description="Buildings of a dedicated grid that has no micro-grids"
    )


class CommunitySpec(_Spec):
    id: str
    name: str
    grids: list[GridSpec] = Field(min_length=1)


class StreetSpec(_Spec):
    id: str
    name: str
    district: str | None = None


class PersonSpec(_Spec):
    id: str
    name: str
    role: Role
    unit: str
    phone: str | None = None


class ResidentSpec(_Spec):
    """Who lives where a sensor watches: the caller of its alarms, and so its rater."""

    id: str
    name: str | None = None
    phone: str | None = None
    note: str | None = None


class SensorSpec(_Spec):
    id: str
    gateway: str
    alarm_types: list[AlarmType] = Field(min_length=1)
    building: str
    household: str | None = None
    resident: ResidentSpec | None = None


class RegistrySpec(_Spec):
    street: StreetSpec
    communities: list[CommunitySpec] = Field(min_length=1)
    people: list[PersonSpec] = []
    sensors: list[SensorSpec] = []


# ---- the compiled registry ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unit:
    """A responsible unit: the street, a community, a grid or a micro-grid."""

    id: str
    name: str
    tier: Tier
    parent_id: str | None
    community_id: str | None
    grid_id: str | None
    grid_kind: GridKind | None = None


@dataclass(frozen=True, slots=True)
class Building:
    id: str
    address: str
    community_id: str
    grid_id: str
    micro_grid_id: str | None


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    role: Role
    unit_id: str


@dataclass(frozen=True, slots=True)
class Sensor:
    id: str
    gateway: str
    alarm_types: frozenset[AlarmType]
    building_id: str
    household: str | None
    resident_id: str | None
    resident_name: str | None
    resident_phone: str | None
    resident_note: str | None


def normalise_address(text: str) -> str:
    """The form addresses are compared in, the registry's and a caller's alike: full-width
    characters folded (NFKC), traditional characters simplified and letters in lower case
    (`handlers.text.fold`), white space dropped, so '文家路３４號 和美苑1棟' ==
    '文家路34号和美苑1栋'."""
    return "".join(fold(unicodedata.normalize("NFKC", text)).split())


@dataclass(frozen=True)
class Registry:
    street: Unit
    units: Mapping[str, Unit]
    buildings: Mapping[str, Building]
    addresses: Mapping[str, str]  # normalised address -> building id
    address_lengths: tuple[int, ...]  # distinct lengths of normalised addresses, longest first
    # normalised compound name -> the grids it spans, in registry order (most have one)
    compounds: Mapping[str, tuple[str, ...]]
    compound_re: re.Pattern[str] | None
    community_names: Mapping[str, str]  # normalised community name -> community id
    community_re: re.Pattern[str]
    people: Mapping[str, Person]
    sensors: Mapping[str, Sensor]
    micro_grid_points: tuple[tuple[float, float, str], ...]
    _cells: Mapping[tuple[int, int], tuple[int, ...]] = field(repr=False)

    CELL_DEG = 0.002  # about 220 m north-south: the bucket size of the lat/lon index

    def unit_id_at(
        self, tier: Tier, micro_grid_id: str | None, grid_id: str | None, community_id: str | None
    ) -> str | None:
        """The unit of `tier` at a place known down to these ids (None if not known that far)."""
        return {
            Tier.MICRO_GRID: micro_grid_id,
            Tier.GRID: grid_id,
            Tier.COMMUNITY: community_id,
            Tier.STREET: self.street.id,
        }[tier]

    def covering(self, unit_ids: tuple[str, ...]) -> Unit:
        """The smallest unit that contains every one of these units (a grid, a community, or
        the street)."""
        chains = []
        for uid in unit_ids:
            chain, node = [], self.units[uid]
            while True:
                chain.append(node.id)
                if node.parent_id is None:
                    break
                node = self.units[node.parent_id]
            chains.append(chain)
        first, *rest = chains
        return self.units[next(u for u in first if all(u in c for c in rest))]

    def ancestor(self, unit: Unit, tier: Tier) -> Unit:
        """The unit of `tier` that contains `unit` (itself if it is of that tier)."""
        node = unit
        while node.tier.rank < tier.rank and node.parent_id is not None:
            node = self.units[node.parent_id]
        return node

    def nearest_micro_grid(self, lat: float, lon: float, max_distance_m: float) -> str | None:
        """The micro-grid whose centre is nearest to (lat, lon), if within max_distance_m.

        Scans only the index cells within reach, comparing squared distances in degrees
        (equirectangular: exact enough within a street)."""
        ci, cj = _cell(lat, lon)
        coslat = math.cos(math.radians(lat))
        reach_deg = max_distance_m / METRES_PER_DEGREE
        ri = math.ceil(reach_deg / self.CELL_DEG)
        rj = math.ceil(reach_deg / coslat / self.CELL_DEG)
        best_d2, best = reach_deg * reach_deg, None
        points = self.micro_grid_points
        cells = self._cells
        for di in range(-ri, ri + 1):
            for dj in range(-rj, rj + 1):
                for idx in cells.get((ci + di, cj + dj), ()):
                    plat, plon, mid = points[idx]
                    dy, dx = plat - lat, (plon - lon) * coslat
                    d2 = dy * dy + dx * dx
                    if d2 <= best_d2:
                        best_d2, best = d2, mid
        return best


def _cell(lat: float, lon: float) -> tuple[int, int]:
    return (math.floor(lat / Registry.CELL_DEG), math.floor(lon / Registry.CELL_DEG))


METRES_PER_DEGREE = 111_195.0  # along a meridian, on a sphere of radius 6,371 km


def alternation(words: list[str]) -> re.Pattern[str] | None:
    """One regex for many literal words; the longest alternative is tried first."""
    if not words:
        return None
    return re.compile("|".join(re.escape(w) for w in sorted(set(words), key=lambda w: -len(w))))


def _grids_of(compounds: list[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """Compound name -> every grid that names it (清源小区一期 spans three)."""
    grids: dict[str, tuple[str, ...]] = {}
    for name, gid in compounds:
        grids[name] = (*grids.get(name, ()), gid)
    return grids


def compile_registry(raw: Any, source: str = "registry") -> Registry:
    """Validate a parsed registry document and build the look-ups; raise ConfigError."""
    try:
        spec = RegistrySpec.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(source, validation_problems(raw, err, "entry")) from None

    problems: list[str] = []
    units: dict[str, Unit] = {}
    where: dict[str, str] = {}

    def add_unit(u: Unit, loc: str) -> None:
        if u.id in units or u.id in buildings:
            problems.append(f"{loc}: duplicate id '{u.id}' (first defined at {where[u.id]})")
            return
        units[u.id] = u
        where[u.id] = loc

    buildings: dict[str, Building] = {}
    addresses: dict[str, str] = {}

    def add_building(b: BuildingSpec, loc: str, c: str, g: str, m: str | None) -> None:
        if b.id in buildings or b.id in units:
            problems.append(f"{loc}: duplicate id '{b.id}' (first defined at {where[b.id]})")
            return
        buildings[b.id] = Building(b.id, b.address, c, g, m)
        where[b.id] = loc
        key = normalise_address(b.address)
        if key in addresses:
            problems.append(
                f"{loc}: building '{b.id}' has the address of building '{addresses[key]}'"
            )
        addresses[key] = b.id

    street = Unit(spec.street.id, spec.street.name, Tier.STREET, None, None, None)
    add_unit(street, "street")
    compounds: list[tuple[str, str]] = []
    points: list[tuple[float, float, str]] = []
    for ci, c in enumerate(spec.communities):
        cloc = f"communities[{ci}] '{c.id}'"
        add_unit(Unit(c.id, c.name, Tier.COMMUNITY, street.id, c.id, None), cloc)
        for gi, g in enumerate(c.grids):
            gloc = f"{cloc}.grids[{gi}] '{g.id}'"
            add_unit(Unit(g.id, g.name, Tier.GRID, c.id, c.id, g.id, g.kind), gloc)
            if g.compound:
                compounds.append((normalise_address(g.compound), g.id))
            if not g.micro_grids and not g.buildings:
                problems.append(f"{gloc}: a grid needs micro_grids or buildings")
            for bi, b in enumerate(g.buildings):
                add_building(b, f"{gloc}.buildings[{bi}]", c.id, g.id, None)
            for mi, m in enumerate(g.micro_grids):
                mloc = f"{gloc}.micro_grids[{mi}] '{m.id}'"
                add_unit(Unit(m.id, m.name, Tier.MICRO_GRID, g.id, c.id, g.id, g.kind), mloc)
                points.append((m.lat, m.lon, m.id))
                for bi, b in enumerate(m.buildings):
                    add_building(b, f"{mloc}.buildings[{bi}]", c.id, g.id, m.id)

    people: dict[str, Person] = {}
    for pi, p in enumerate(spec.people):
        ploc = f"people[{pi}] '{p.id}'"
        if p.id in people:
            problems.append(f"{ploc}: duplicate person id")
        unit = units.get(p.unit)
        if unit is None:
            problems.append(f"{ploc}: unknown unit '{p.unit}'")
        elif unit.tier is not ROLE_TIER[p.role]:
            problems.append(
                f"{ploc}: role {p.role.value} belongs to a {ROLE_TIER[p.role].value} unit, "
                f"but '{p.unit}' is a {unit.tier.value}"
            )
        people[p.id] = Person(p.id, p.name, p.role, p.unit)

    sensors: dict[str, Sensor] = {}
    for si, s in enumerate(spec.sensors):
        sloc = f"sensors[{si}] '{s.id}'"
        if s.id in sensors:
            problems.append(f"{sloc}: duplicate sensor id")
        if s.building not in buildings:
            problems.append(f"{sloc}: unknown building '{s.building}'")
        sensors[s.id] = Sensor(
            s.id,
            s.gateway,
            frozenset(s.alarm_types),
            s.building,
            s.household,
            s.resident.id if s.resident else None,
            s.resident.name if s.resident else None,
            s.resident.phone if s.resident else None,
            s.resident.note if s.resident else None,
        )

    if problems:
        raise ConfigError(source, problems)

    community_names = {normalise_address(c.name): c.id for c in spec.communities}
    cells: dict[tuple[int, int], list[int]] = {}
    for idx, (lat, lon, _) in enumerate(points):
        cells.setdefault(_cell(lat, lon), []).append(idx)
    return Registry(
        street=street,
        units=units,
        buildings=buildings,
        addresses=addresses,
        address_lengths=tuple(sorted({len(a) for a in addresses}, reverse=True)),
        compounds=_grids_of(compounds),
        compound_re=alternation([name for name, _ in compounds]),
        community_names=community_names,
        community_re=alternation(list(community_names)) or re.compile(r"(?!)"),
        people=people,
        sensors=sensors,
        micro_grid_points=tuple(points),
        _cells={k: tuple(v) for k, v in cells.items()},
    )
