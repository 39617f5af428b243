"""Issue 11.10: the case id, which a responder acts on, on every line `minhu consume` prints
and in `minhu lives`, refusals included."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console

from streams.analysis.summary import print_lives
from streams.drivers.kafka.consumer import render

CASE = "case-99b3767e01b8-2f729fb75b"


def _routed(subject: bool = True) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": f"{CASE}/routed",
        "type": "minhu.case.routed",
        "time": "2026-11-02T06:40:00+08:00",
        "data": {
            "case_id": CASE,
            "unit_name": "清源小区一期第1网格",
            "tier": "grid",
            "rule_id": "critical-gas-leak",
            "category_name": "燃气安全",
            "severity": "critical",
            "notified": [],
            "summary": "gas_leak alarm",
        },
    }
    if subject:
        value["subject"] = CASE
    return value


def test_consume_prints_the_case_id_on_every_line() -> None:
    for value in (_routed(), _routed(subject=False)):
        line = render(value, as_json=False)
        assert line.startswith(f"2026-11-02T06:40:00+08:00  {CASE}  routed to"), line


def _line(value: dict[str, Any]) -> str:
    return json.dumps({"topic": "t", "key": None, "value": value}, ensure_ascii=False)


def _refused(case_id: str) -> dict[str, Any]:
    payload = {
        "id": "act-1",
        "type": "minhu.case.acknowledged",
        "data": {"case_id": case_id, "actor_id": "p0010"},
    }
    return {
        "id": f"rejected-{case_id}",
        "type": "minhu.event.rejected",
        "time": "2026-11-02T06:41:00+08:00",
        "data": {
            "reason": "p0010 may not acknowledge it",
            "event_type": "minhu.case.acknowledged",
            "event_id": "act-1",
            "payload": json.dumps(payload),
        },
    }


def _lives(only: set[str] | None) -> str:
    out = io.StringIO()
    lines = [_line(_routed()), _line(_refused(CASE)), _line(_refused("case-other"))]
    print_lives(Console(file=out, width=300, color_system=None), lines, only)
    return out.getvalue()


def test_lives_names_the_case_a_refused_action_was_about() -> None:
    text = _lives(None)
    assert CASE in text.splitlines()[0]
    assert f"minhu.case.acknowledged act-1 on {CASE} — p0010 may not" in text
    assert "act-1 on case-other" in text


def test_lives_of_one_case_shows_the_refusals_about_it() -> None:
    text = _lives({CASE})
    assert f"act-1 on {CASE}" in text and "case-other" not in text


def test_the_case_id_in_the_docs_is_derived_as_they_say() -> None:
    from pathlib import Path

    from handlers.ids import bucket_key, case_id_for, shard_token, shard_token_of_case

    docs = (Path(__file__).parents[3] / "docs" / "events.md").read_text(encoding="utf-8")
    bucket = bucket_key("js-g06", "alarm|js-gas-016|gas_leak")
    case_id = case_id_for(bucket, ("/gateway/gw-js-g06", "evt-00008542"))
    assert case_id == "case-b0d653261cf8-593a3eff47" and f'"case_id": "{case_id}"' in docs
    assert shard_token_of_case(case_id) == shard_token("js-g06") == "b0d6"
    assert "case-<bucket: 12 hex>-<identity: 10 hex>" in docs
