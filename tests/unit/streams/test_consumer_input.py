"""`minhu consume` and the service's dispatch reader read what is on the dispatch topics: no
record there makes them raise (only workers write them; whatever else is there is skipped)."""

from __future__ import annotations

import json

from handlers.registry import Registry
from handlers.rules import Rules
from schemas import CloudEvent
from streams.drivers.embedded import EmbeddedRunner
from streams.drivers.kafka.consumer import concerns, event_or_none
from tests.hostile import ALARM, drawn, hostile_record, nasty_records


def test_only_minhu_events_are_shown(rules: Rules, registry: Registry) -> None:
    out: list[CloudEvent] = []
    EmbeddedRunner(rules, registry, on_event=out.append).feed(json.dumps(ALARM), "t", 1)
    routed = out[0].model_dump_json(exclude_none=True).encode()
    event = event_or_none(routed)
    assert event is not None and event["type"] == "minhu.case.routed"
    assert concerns(event, event["data"]["unit_id"])
    deep = b"[" * 5000 + b"]" * 5000  # json.loads: RecursionError
    assert event_or_none(deep) is None and event_or_none(b'{"type": []}') is None
    for raw in [*nasty_records(), *drawn(hostile_record(), 100)]:
        event_or_none(raw)  # a dict or None, never an exception
    assert not concerns({"data": [1]}, "u") and not concerns({"data": {"notified": 3}}, "u")
