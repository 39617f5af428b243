"""Issue 11.10: every validation error a record can have becomes a plain reason naming the
field, never pydantic's own phrasing ("Unable to extract tag using discriminator 'type'",
"String should match pattern '^...$'", "Input should be a valid number")."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from handlers.intake import parse_input
from schemas import EventRejected

_APPEAL: dict[str, Any] = {
    "specversion": "1.0",
    "id": "x1",
    "source": "/t",
    "type": "minhu.appeal.reported",
    "time": "2026-11-01T09:00:00+08:00",
    "data": {
        "caller": {"id": "r1", "name": "王芳", "phone": "13812345678"},
        "channel": "wechat",
        "text": "垃圾",
        "location": {"micro_grid_id": "qy-m001"},
    },
}
_ALARM: dict[str, Any] = {
    "specversion": "1.0",
    "id": "a1",
    "source": "/g",
    "type": "minhu.alarm.raised",
    "time": "2026-11-01T09:00:00+08:00",
    "data": {
        "sensor_id": "s",
        "gateway_id": "g",
        "alarm_type": "gas_leak",
        "reading": 40.0,
        "threshold": 25.0,
    },
}
_RATING: dict[str, Any] = {
    "specversion": "1.0",
    "id": "b1",
    "source": "/r",
    "type": "minhu.rating.submitted",
    "time": "2026-11-01T09:00:00+08:00",
    "data": {"case_id": "c", "actor_id": "a", "rater_id": "a", "verdict": "satisfied"},
}
_PATROL: dict[str, Any] = {
    "specversion": "1.0",
    "id": "p1",
    "source": "/p",
    "type": "minhu.patrol.reported",
    "time": "2026-11-01T09:00:00+08:00",
    "data": {
        "reporter_id": "p",
        "category": "sanitation",
        "text": "t",
        "location": {"micro_grid_id": "qy-m001"},
    },
}


def _with(base: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> str:
    doc = json.loads(json.dumps(base))
    change(doc)
    return json.dumps(doc, ensure_ascii=False)


def _reason(raw: str) -> tuple[str, str]:
    out = parse_input(raw, "test", 1, datetime(2026, 11, 1, tzinfo=UTC))
    assert isinstance(out, EventRejected), out
    return out.data.error_kind, out.data.reason


_CASES = [
    # (the record, its error kind, what the reason says)
    (_with(_APPEAL, lambda d: d.pop("type")), "unknown_type", "the field 'type' is missing"),
    (_with(_APPEAL, lambda d: d.update(type="minhu.foo")), "unknown_type", "'minhu.foo' is not"),
    (
        _with(_APPEAL, lambda d: d["data"].pop("text")),
        "invalid_event",
        "the field 'data.text' is missing",
    ),
    (
        _with(_APPEAL, lambda d: d["data"].update(foo=1)),
        "invalid_event",
        "the field 'data.foo' is not part of a minhu.appeal.reported",
    ),
    (
        _with(_APPEAL, lambda d: d["data"].update(text="x" * 4001)),
        "invalid_event",
        "the field 'data.text' is too long: at most 4000 characters",
    ),
    (
        _with(_APPEAL, lambda d: d["data"].update(text="")),
        "invalid_event",
        "the field 'data.text' is empty",
    ),
    (
        _with(_APPEAL, lambda d: d["data"].update(channel="fax")),
        "invalid_event",
        "the field 'data.channel' must be one of 'hotline_12345', 'wechat'",
    ),
    (
        _with(_APPEAL, lambda d: d.update(specversion="0.3")),
        "invalid_event",
        "the field 'specversion' must be '1.0'",
    ),
    (
        _with(_APPEAL, lambda d: d.update(time=0)),
        "invalid_event",
        "the field 'time' must be a date and time with its UTC offset",
    ),
    (
        _with(_APPEAL, lambda d: d.update(time="2026-13-45T09:00:00+08:00")),
        "invalid_event",
        "the field 'time' is not a date and time: month value is outside",
    ),
    (
        _with(_APPEAL, lambda d: d["data"]["location"].update(lat="abc", lon=1)),
        "invalid_event",
        "the field 'data.location.lat' must be a number",
    ),
    (
        _with(_APPEAL, lambda d: d["data"]["location"].update(lat=100, lon=1)),
        "invalid_event",
        "the field 'data.location.lat' must be at most 90",
    ),
    (
        _with(_APPEAL, lambda d: d["data"]["location"].update(lat=30)),
        "invalid_event",
        "the field 'data.location': lat and lon must be given together",
    ),
    (
        _with(_APPEAL, lambda d: d["data"]["caller"].update(phone="abc")),
        "invalid_event",
        "the field 'data.caller.phone' must be a phone number",
    ),
    (
        _with(_APPEAL, lambda d: d["data"]["caller"].update(id="!!")),
        "invalid_event",
        "the field 'data.caller.id' must be an id",
    ),
    (
        _with(_APPEAL, lambda d: d["data"].update(text=5)),
        "invalid_event",
        "the field 'data.text' must be text",
    ),
    (
        _with(_APPEAL, lambda d: d["data"].update(caller="me")),
        "invalid_event",
        "the field 'data.caller' must be an object",
    ),
    (
        _with(_APPEAL, lambda d: d["data"].update(text="a\u0000b")),
        "invalid_event",
        "the field 'data.text' contains the control character U+0000",
    ),
    ("[1, 2]", "invalid_event", "the record must be a JSON object"),
    ('"hello"', "invalid_event", "the record must be a JSON object"),
    ("{not json", "malformed_json", "malformed JSON: key must be a string"),
    ("", "malformed_json", "malformed JSON: EOF while parsing"),
    (
        _with(_ALARM, lambda d: d["data"].update(reading="42")),
        "invalid_event",
        "the field 'data.reading' must be a number",
    ),
    (
        _with(_ALARM, lambda d: d["data"].update(reading=True)),
        "invalid_event",
        "the field 'data.reading' must be a number",
    ),
    (
        _with(_ALARM, lambda d: d["data"].update(reading=1e999)),
        "invalid_event",
        "the field 'data.reading' must be a finite number",
    ),
    (
        _with(_ALARM, lambda d: d["data"].update(alarm_type="ufo")),
        "invalid_event",
        "the field 'data.alarm_type' must be one of 'gas_leak'",
    ),
    (
        _with(_RATING, lambda d: d["data"].update(score=9)),
        "invalid_event",
        "the field 'data.score' must be at most 5",
    ),
    (
        _with(_RATING, lambda d: d["data"].update(score="five")),
        "invalid_event",
        "the field 'data.score' must be a whole number",
    ),
    (
        _with(_RATING, lambda d: d["data"].update(score=2.5)),
        "invalid_event",
        "the field 'data.score' must be a whole number",
    ),
    (
        _with(_PATROL, lambda d: d["data"].update(handled_on_spot="maybe")),
        "invalid_event",
        "the field 'data.handled_on_spot' must be true or false",
    ),
    (
        _with(_PATROL, lambda d: d["data"].update(photo_urls=["ftp://x"])),
        "invalid_event",
        "the field 'data.photo_urls[0]' must be a web address",
    ),
    (
        _with(_PATROL, lambda d: d["data"].update(photo_urls="https://x")),
        "invalid_event",
        "the field 'data.photo_urls' must be a list",
    ),
    (
        _with(_PATROL, lambda d: d["data"].update(photo_urls=["https://x"] * 21)),
        "invalid_event",
        "the field 'data.photo_urls' has too many items: at most 20",
    ),
]


@pytest.mark.parametrize(("raw", "kind", "says"), _CASES)
def test_every_validation_error_in_plain_words(raw: str, kind: str, says: str) -> None:
    got_kind, reason = _reason(raw)
    assert got_kind == kind
    assert says in reason, reason
    for jargon in ("Input should", "String should", "Unable to extract", "pattern '", "Field "):
        assert jargon not in reason, reason
