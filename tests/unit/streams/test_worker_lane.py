"""The worker's life-safety lane reads each record on the alarm and urgent topics before the
engine does: no record may make it raise (a worker that raises exits, and so does every worker
after it on the same record)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from handlers.engine import Engine
from handlers.registry import Registry
from handlers.rules import Rules
from handlers.state import DictStore
from streams.drivers.kafka.merge import Merge
from streams.drivers.kafka.settings import WorkerSettings
from streams.drivers.kafka.worker import MinhuWorker, Part
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


def _part(registry: Registry, rules: Rules) -> Part:
    part = Part(0, Engine(rules, registry, DictStore()), Merge([ALARMS, URGENT]))
    part.next = {ALARMS: 4, URGENT: 0}
    part.decided_ahead = {ALARMS: {7}}
    return part


def _record(offset: int, value: bytes) -> Any:
    return SimpleNamespace(offset=offset, value=value, timestamp=1_700_000_000_000)


def test_the_lanes_own_consumer_takes_live_critical_records_faust_has_not_delivered(
    registry: Registry, rules: Rules
) -> None:
    """What the lane's own consumer reads goes to the lane only when it is a live critical
    alarm (or urgent appeal), not yet delivered by Faust (below `next`), not decided ahead
    already, and not waiting in the lane already."""
    part = _part(registry, rules)
    checker = lane(rules)
    w = SimpleNamespace(
        parts={0: part}, _life_safety=lambda t, raw: MinhuWorker._life_safety(checker, t, raw)
    )
    old = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    fetched = {
        TopicPartition(ALARMS, 0): [
            _record(3, _now(ALARM)),  # delivered by Faust already (next is 4)
            _record(5, _now(ALARM)),  # taken
            _record(6, _now(ALARM, time=old)),  # not live: its turn, through Faust
            _record(7, _now(ALARM)),  # decided ahead already
            _record(8, _now(APPEAL)),  # not an alarm
        ],
        TopicPartition(URGENT, 0): [_record(0, _now(APPEAL))],  # taken
        TopicPartition(ALARMS, 1): [_record(0, _now(ALARM))],  # a partition not held
    }
    assert MinhuWorker._admit_early(w, fetched)
    taken = [item.where() for item in part.urgent]
    assert taken == [(ALARMS, 5), (URGENT, 0)]
    assert all(item.event is None and item.record is not None for item in part.urgent)
    # read again (a seek back), nothing is taken twice
    assert not MinhuWorker._admit_early(w, fetched)
    assert [item.where() for item in part.urgent] == taken


def test_faust_s_copy_of_a_record_decided_early_is_acknowledged_once_it_is_written(
    registry: Registry, rules: Rules, tmp_path: Path
) -> None:
    s = WorkerSettings(data_dir=str(tmp_path), metrics_port=None, live_window=0)
    w = MinhuWorker(s, rules, registry, 4)
    part = _part(registry, rules)
    part.next[ALARMS] = 7
    part.unwritten = {(ALARMS, 7)}
    acked: list[int] = []

    def copy() -> Any:
        message = SimpleNamespace(topic=ALARMS, partition=0, offset=7, timestamp=None)
        return SimpleNamespace(message=message, value=b"{}", ack=lambda: acked.append(7))

    first = copy()
    w._take(part, first, True)
    assert acked == [] and part.copies[(ALARMS, 7)] == [first]  # its batch is not written yet
    assert part.next[ALARMS] == 8 and 7 not in part.decided_ahead[ALARMS]
    assert not part.urgent and not part.merge  # and it is not decided a second time
    part.unwritten.clear()
    part.next[ALARMS] = 7
    part.decided_ahead[ALARMS].add(7)
    w._take(part, copy(), True)
    assert acked == [7]  # written: acknowledged at once
