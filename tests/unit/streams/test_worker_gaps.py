"""A worker takes each input in offset order, without gaps. Faust can hide records from it
for good: it drops a record older than the last one it delivered on its partition, so records
fetched before a seek and delivered after it hide those the seek asked for. The worker used to
seek once more and, after 30 s, take the missing offsets as never coming: a kill test lost a
closing action (and the closure, the rating request and a rating after it) so. Now a missing
offset is read from the broker directly, and passed over only when the broker holds no record
there. (The direct read itself, against the test broker: tests/integration/test_kafka_gaps.py.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from handlers.engine import Engine
from handlers.registry import Registry
from handlers.rules import Rules
from handlers.state import DictStore
from schemas import EventRejected
from streams.drivers.kafka.merge import Merge
from streams.drivers.kafka.settings import WorkerSettings
from streams.drivers.kafka.transport import Read
from streams.drivers.kafka.worker import GAP_READ, MinhuWorker, Part


@pytest.fixture
def worker(tmp_path: Path, rules: Rules, registry: Registry) -> MinhuWorker:
    s = WorkerSettings(data_dir=str(tmp_path), metrics_port=None, live_window=0)
    return MinhuWorker(s, rules, registry, 4)


def _part(w: MinhuWorker, topic: str, nxt: int) -> Part:
    part = Part(0, Engine(w.rules, w.registry, DictStore()), Merge(w.sources))
    part.next = dict.fromkeys(w.sources, 0)
    part.next[topic] = nxt
    return part


def _event(topic: str, offset: int, acked: list[int], value: bytes | None = b"{}") -> Any:
    message = SimpleNamespace(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=1_700_000_000.0 + offset,
        generation_id=None,
    )
    return SimpleNamespace(message=message, value=value, ack=lambda: acked.append(offset))


def _held(part: Part, topic: str) -> list[int]:
    return [h.offset for h in part.merge.queues[topic]]


def test_a_missing_offset_is_read_from_the_broker_never_passed_over_on_time_alone(
    worker: MinhuWorker,
) -> None:
    topic = worker.sources[5]  # the actions
    part = _part(worker, topic, 3)
    worker.parts = {0: part}
    acked: list[int] = []
    worker._admit(_event(topic, 8, acked), False)
    assert part.ahead[topic].keys() == {8} and part.next[topic] == 3  # waits for 3 to 7
    asked: list[tuple[str, int, int]] = []

    async def fill(p: Part, t: str, start: int, end: int) -> None:
        asked.append((t, start, end))

    worker._fill_gap = fill  # type: ignore[method-assign]

    async def mind() -> None:
        worker._mind_gaps()
        assert not asked  # not before GAP_READ
        part.ahead_since[topic] = time.monotonic() - 3600  # an hour, not only GAP_READ
        worker._mind_gaps()
        worker._mind_gaps()  # one read at a time
        await asyncio.gather(*worker.gap_reads)

    asyncio.run(mind())
    assert asked == [(topic, 3, 8)]
    assert part.next[topic] == 3 and part.ahead[topic].keys() == {8}  # nothing passed over
    assert GAP_READ <= 5


def test_the_records_read_directly_fill_the_gap_in_offset_order(worker: MinhuWorker) -> None:
    topic = worker.sources[5]
    part = _part(worker, topic, 3)
    worker.parts = {0: part}
    acked: list[int] = []
    worker._admit(_event(topic, 8, acked), False)
    worker._admit(_event(topic, 9, acked), False)
    # Faust delivers 3 meanwhile; the broker holds no record at 5 (a transaction marker).
    worker._admit(_event(topic, 3, acked), False)
    read = [Read(o, 1_700_000_000.0 + o, b"{}") for o in (3, 4, 6, 7, 8, 9, 10)]
    worker._fill(part, topic, read)
    assert _held(part, topic) == [3, 4, 6, 7, 8, 9]  # 3 once; 10 is Faust's to deliver
    assert part.next[topic] == 10 and not part.ahead.get(topic)
    assert topic not in part.ahead_since
    items = [h.item for h in part.merge.queues[topic]]
    assert [i.event is None for i in items] == [False, True, True, True, False, False]
    assert [i.where() for i in items] == [(topic, o) for o in (3, 4, 6, 7, 8, 9)]
    assert items[1].timestamp() == 1_700_000_004.0
    for item in items:
        item.ack()
    assert acked == [3, 8, 9]  # Faust's own events, each once


def test_a_gap_still_open_after_a_short_read_waits_for_the_next(worker: MinhuWorker) -> None:
    topic = worker.sources[2]  # the appeals
    part = _part(worker, topic, 0)
    worker.parts = {0: part}
    worker._admit(_event(topic, 5, []), False)
    worker._fill(part, topic, [Read(0, 1.0, b"{}"), Read(1, 1.0, b"{}")])  # timed out at 1
    assert _held(part, topic) == [0, 1] and part.next[topic] == 2
    assert part.ahead[topic].keys() == {5}  # 2 to 4 are still asked for


def test_a_record_without_a_value_is_dead_lettered_with_a_reason(worker: MinhuWorker) -> None:
    """A tombstone on an input (value None) would have reached the engine as None and made it
    raise: the worker, and each one after it, exited on it."""
    topic = worker.sources[2]
    part = _part(worker, topic, 0)
    worker.parts = {0: part}
    worker._admit(_event(topic, 0, [], value=None), False)
    worker._fill(part, topic, [])
    (held,) = part.merge.queues[topic]
    eff = part.engine.feed(held.item.raw, held.item.position)
    (out,) = eff.outputs
    assert isinstance(out, EventRejected) and out.data.reason
