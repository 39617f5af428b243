"""The wire contract: exported JSON Schemas are current, and every type's example is valid."""

from __future__ import annotations

import json
import re
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
