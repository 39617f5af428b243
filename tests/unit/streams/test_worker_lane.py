"""The worker's life-safety lane reads each record on the alarm and urgent topics before the
engine does: no record may make it raise (a worker that raises exits, and so does every worker
after it on the same record)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from handlers.rules import Rules
from streams.drivers.kafka.worker import MinhuWorker
from tests.hostile import ALARM, APPEAL, drawn, hostile_record, nasty_records

ALARMS, URGENT = "minhu.intake.alarm", "minhu.intake.urgent"


def lane(rules: Rules) -> Any:
    """What `_life_safety` uses of a worker."""
    return SimpleNamespace(s=SimpleNamespace(live_window=300.0), urgent_name=URGENT, rules=rules)


def _now(doc: dict[str, Any], **over: Any) -> bytes:
    return json.dumps({**doc, "time": datetime.now(UTC).isoformat(), **over}).encode()


def test_a_live_critical_alarm_takes_the_lane_and_nothing_else_does(rules: Rules) -> None:
    w = lane(rules)
    assert MinhuWorker._life_safety(w, ALARMS, _now(ALARM))  # gas leak: critical
    old = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert not MinhuWorker._life_safety(w, ALARMS, _now(ALARM, time=old))
    assert MinhuWorker._life_safety(w, URGENT, _now(APPEAL))
    assert not MinhuWorker._life_safety(w, ALARMS, _now(APPEAL))  # not an alarm


def test_no_record_raises_in_the_lane(rules: Rules) -> None:
    w = lane(rules)
    deep = b"[" * 5000 + b"]" * 5000  # json.loads raises RecursionError on it
    inside = _now(ALARM).replace(b'"gas_leak"', b"[" * 5000 + b"]" * 5000)
    records = [deep, inside, *nasty_records(), *drawn(hostile_record(), 200)]
    for raw in records:
        for topic in (ALARMS, URGENT):
            assert MinhuWorker._life_safety(w, topic, raw) in (True, False)
