"""The wire contract: exported JSON Schemas are current, and every type's example is valid."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from schemas import EVENT_MODELS, Location, json_schemas

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", sorted(EVENT_MODELS))
def test_exported_json_schema_is_current(name: str) -> None:
    path = ROOT / "schemas" / "json" / f"{name}.json"
    assert path.exists(), f"{path} missing: run `minhu schemas`"
    current = json.dumps(json_schemas()[name], ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    assert path.read_text(encoding="utf-8") == current, f"{path} is stale: run `minhu schemas`"


def test_every_type_has_a_valid_documented_example() -> None:
    """docs/events.md and docs/lifecycle.md show one example per type; each must validate."""
    text = "".join(
        (ROOT / "docs" / name).read_text(encoding="utf-8") for name in ("events.md", "lifecycle.md")
    )
    examples = re.findall(r"```json\n(.*?)\n```", text, flags=re.S)
    types = set()
    for ex in examples:
        doc = json.loads(ex)
        EVENT_MODELS[doc["type"]].model_validate(doc)
        types.add(doc["type"])
    assert types == set(EVENT_MODELS)


def test_location_needs_one_form() -> None:
    with pytest.raises(ValueError, match="needs a micro_grid_id"):
        Location()
    with pytest.raises(ValueError, match="lat and lon must be given together"):
        Location(lat=30.0)


@pytest.mark.parametrize(
    "time",
    [
        "2026-11-02T09:00:00+08:00",
        "2026-11-02t09:00:00.123456Z",
        "2026-11-02T01:00:00.5z",
        "2026-11-02T09:00:00-03:30",
    ],
)
def test_rfc3339_times_are_accepted(time: str) -> None:
    event = EVENT_MODELS["minhu.appeal.reported"].model_validate({**_APPEAL, "time": time})
    assert event.time.tzinfo is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "time",
    [
        "2026-11-02 09:00+08:00",  # ISO 8601 allows these; RFC 3339 does not
        "2026-11-02 09:00:00+08:00",
        "2026-11-02T09:00+08:00",
        "2026-11-02T09+08:00",
        "2026-11-02T09:00:00",  # no offset
        "2026-11-02",
        "20261102T090000+0800",
        "2026-11-02T09:00:00+0800",
        0,
        1762045200,
        "1762045200",
    ],
)
def test_other_times_are_refused(time: object) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        EVENT_MODELS["minhu.appeal.reported"].model_validate({**_APPEAL, "time": time})


_APPEAL = {
    "specversion": "1.0",
    "id": "t-1",
    "source": "/test",
    "type": "minhu.appeal.reported",
    "time": "2026-11-02T09:00:00+08:00",
    "data": {
        "caller": {"id": "res-1", "name": "王芳", "phone": "13812345678"},
        "channel": "hotline_12345",
        "text": "楼下垃圾没人清运",
        "location": {"micro_grid_id": "qy-m001"},
    },
}


@pytest.mark.parametrize(
    "time", ["2026-11-02T09:00:00+08:00", "2026-11-02T01:00:00.5Z", "2026-11-02T09:00:00-03:30"]
)
def test_parsed_times_share_one_zone_per_offset(time: str) -> None:
    """Times of the same offset share one `datetime.timezone` (comparing them takes the fast
    path: a replay's deadline heap), and keep their instant and their text."""
    model = EVENT_MODELS["minhu.appeal.reported"]
    a, b = (model.model_validate({**_APPEAL, "id": f"t-{n}", "time": time}) for n in (1, 2))
    zone = a.time.tzinfo
    assert type(zone) is timezone
    assert b.time.tzinfo is zone
    given = datetime.fromisoformat(time.replace("Z", "+00:00"))
    assert a.time.isoformat() == given.isoformat()
