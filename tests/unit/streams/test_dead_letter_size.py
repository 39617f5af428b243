"""Every record the engine sends is small enough for a worker to send: a worker whose producer
refuses a record (aiokafka: MessageSizeTooLargeError, over Faust's `producer_max_request_size`,
1,000,000 bytes by default, and under most brokers' `message.max.bytes`) exits, and so does
each worker after it on the same record."""

from __future__ import annotations

import json

from handlers.registry import Registry
from handlers.rules import Rules
from streams.drivers.embedded import EmbeddedRunner
from streams.topics import Record
from tests.hostile import APPEAL

WORKER_LIMIT = 1_000_000  # bytes: Faust's producer_max_request_size


def test_no_dead_letter_is_too_large_for_a_worker_to_send(rules: Rules, registry: Registry) -> None:
    records = [
        b"\x01" * 300_000,
        b"\x00" * 300_000,
        b"\xff" * 500_000,
        json.dumps({**APPEAL, "type": "minhu." + "x" * 500_000}).encode(),
    ]
    out: list[Record] = []
    runner = EmbeddedRunner(rules, registry, out.append)
    for n, raw in enumerate(records, start=1):
        runner.feed(raw, "hostile", n)
    sizes = [len(r.value_json().encode()) for r in out]
    assert len(out) == len(records) and max(sizes) <= WORKER_LIMIT, sizes
