"""What the service's reader of the dispatch topics hands on: each event once (an escalation is
on two tiers' topics), a case's opening before what came later although another topic was read
first."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from handlers.registry import Registry
from handlers.rules import Rules
from schemas import CaseRouted, CloudEvent
from streams.drivers.embedded import EmbeddedRunner
from streams.drivers.kafka.consumer import SeenIds
from streams.service.kafka import in_order
from streams.topics import Topics


def test_each_event_once_and_by_time(rules: Rules, registry: Registry) -> None:
    outputs: list[CloudEvent] = []
    times = iter(datetime(2026, 11, 2, 9, m, tzinfo=UTC) for m in range(60))
    runner = EmbeddedRunner(rules, registry, clock=lambda: next(times), on_event=outputs.append)
    alarm = {
        "specversion": "1.0", "id": "al-1", "source": "/gateway/gw-qy-g01",
        "type": "minhu.alarm.raised", "time": "2026-11-02T09:00:00+00:00",
        "data": {"sensor_id": "qy-smoke-001", "gateway_id": "gw-qy-g01", "alarm_type": "smoke",
                 "reading": 40.0, "threshold": 25.0},
    }  # fmt: skip
    runner.feed(json.dumps(alarm), "test", 1)
    routed = next(o for o in outputs if isinstance(o, CaseRouted))
    topics = Topics()
    read = [r.value for r in topics.records_for(routed)] * 2  # two tiers, and a re-send
    # a later record of the case, on a topic read first (e.g. its closure)
    later = routed.model_copy(update={"id": "later-1", "time": routed.time + timedelta(hours=1)})
    seen = SeenIds()
    assert in_order([later, *read], seen) == [routed, later]
    assert in_order([routed, later], seen) == []  # already handed on
