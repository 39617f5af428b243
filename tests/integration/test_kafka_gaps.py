"""The worker's direct read of the offsets Faust skipped over (`transport.read_offsets`),
against the test broker: what it fills a gap with (tests/unit/streams/test_worker_gaps.py)."""

from __future__ import annotations

import asyncio
import uuid

from kafka import KafkaProducer

from streams.drivers.kafka.admin import TopicPlan, create_topics
from streams.drivers.kafka.transport import Read, read_offsets


def _topic(broker: str) -> str:
    name = f"gaps-{uuid.uuid4().hex[:8]}"
    create_topics(broker, [TopicPlan(name, 2, 3_600_000)])
    return name


def _read(broker: str, topic: str, start: int, end: int, timeout_s: float = 20) -> list[Read]:
    return asyncio.run(read_offsets(broker, {}, topic, 1, start, end, timeout_s))


def test_the_offsets_asked_for_are_read_in_order_from_inside_a_batch(broker: str) -> None:
    topic = _topic(broker)
    producer = KafkaProducer(bootstrap_servers=broker, linger_ms=50)
    for n in range(10):  # one multi-record batch, most likely: offsets 3 to 7 lie inside it
        producer.send(topic, f"r{n}".encode(), partition=1, timestamp_ms=1_700_000_000_000 + n)
    producer.send(topic, b"other", partition=0)
    producer.flush()
    producer.send(topic, None, key=b"k", partition=1)  # a tombstone, at offset 10
    producer.flush()
    producer.close()
    got = _read(broker, topic, 3, 7)
    assert [r.offset for r in got] == [3, 4, 5, 6, 7]
    assert [r.value for r in got] == [b"r3", b"r4", b"r5", b"r6", b"r7"]
    assert got[0].timestamp == 1_700_000_000.003  # seconds, as Faust gives them
    tail = _read(broker, topic, 9, 10)
    assert [(r.offset, r.value) for r in tail] == [(9, b"r9"), (10, None)]


def test_a_read_past_the_end_returns_what_there_is_once_its_time_is_up(broker: str) -> None:
    topic = _topic(broker)
    producer = KafkaProducer(bootstrap_servers=broker)
    for n in range(3):
        producer.send(topic, f"r{n}".encode(), partition=1).get(timeout=30)
    producer.close()
    got = _read(broker, topic, 1, 50, timeout_s=3)
    assert [r.offset for r in got] == [1, 2]
