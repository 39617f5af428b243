"""Faust's aiokafka transport with two changes, named by the broker URL scheme `minhu://`:

1. **The fetch wait** (`fetch_wait_ms`). Faust builds its consumer with a fixed
   `fetch_max_wait_ms=1500`: a fetch of a partition with nothing new may sit at the broker that
   long, and a record that arrives in the meantime on a quiet partition waits for it. (A live
   critical alarm does not: the life-safety lane reads it with a consumer of its own.)
2. **End offsets confirmed by a fetch.** Faust recovers a table by reading its changelog up to
   the end offsets the broker gives in a ListOffsets answer. The test broker (Tansu) answers
   those wrongly after a multi-record batch — it has said "empty" of a changelog partition
   holding 650 records — while the high watermark in its fetch answers is right. So each end
   offset is checked with one fetch from it, and the higher of the two is used. On Apache
   Kafka the two agree and the check costs one fetch per partition per rebalance.

And the consumers outside Faust (`own_consumer`): the life-safety lane's, and `read_offsets`,
with which the worker reads the offsets Faust's delivery skipped over (see
`MinhuWorker._mind_gaps`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import aiokafka
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

FETCH_WAIT_MS = 200


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_WAIT_MS  # read when the consumer starts
        return consumer

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        listed = dict(await super()._highwaters(partitions))
        if not partitions or self.consumer.in_transaction:
            return listed
        probe = self._create_client_consumer(self.transport)  # type: ignore[arg-type]
        await probe.start()
        try:
            probe.assign(list(partitions))
            for tp in partitions:
                probe.seek(tp, max(listed.get(tp) or 0, 0))
            deadline = asyncio.get_running_loop().time() + 10
            while asyncio.get_running_loop().time() < deadline:
                await probe.getmany(timeout_ms=200)
                if all(probe.highwater(tp) is not None for tp in partitions):
                    break
            for tp in partitions:
                high = probe.highwater(tp)
                if high is not None and high > (listed.get(tp) or 0):
                    listed[tp] = high
        finally:
            await probe.stop()
        return listed


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer: ClassVar[Any] = _Consumer


def install(fetch_wait_ms: int) -> str:
    """Register the `minhu://` scheme; return it."""
    global FETCH_WAIT_MS
    FETCH_WAIT_MS = fetch_wait_ms
    drivers.TRANSPORTS.aliases["minhu"] = f"{__name__}:Transport"
    return "minhu"


def own_consumer(
    broker: str, credentials: Mapping[str, Any], **config: Any
) -> aiokafka.AIOKafkaConsumer:
    """A consumer outside Faust and outside any group, committing nothing: it reads
    partitions it is assigned, from where it is sought."""
    return aiokafka.AIOKafkaConsumer(
        bootstrap_servers=broker, group_id=None, enable_auto_commit=False, **credentials, **config
    )


class Read(NamedTuple):
    """A record read outside Faust: its offset, timestamp (seconds) and value."""

    offset: int
    timestamp: float
    value: bytes | None


async def read_offsets(
    broker: str,
    credentials: Mapping[str, Any],
    topic: str,
    partition: int,
    start: int,
    end: int,
    timeout_s: float,
) -> list[Read]:
    """The records of one partition from offset `start` up to and including `end`, read by a
    consumer of its own (no group), in offset order; fewer if `timeout_s` passes first. An
    offset holding no record (a transaction marker, compaction) is not in the answer, and
    offsets already deleted are read from the earliest kept."""
    consumer = own_consumer(broker, credentials, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = aiokafka.TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        out: list[Read] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            fetched = await consumer.getmany(tp, timeout_ms=200)
            for r in fetched.get(tp, ()):
                out.append(Read(r.offset, r.timestamp / 1000, r.value))
                if r.offset >= end:
                    return out
        return out
    finally:
        await consumer.stop()
