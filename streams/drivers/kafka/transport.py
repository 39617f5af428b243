"""Faust's aiokafka transport with a fetch wait of our choosing (`fetch_wait_ms`).

Faust builds its consumer with a fixed `fetch_max_wait_ms=1500`: a fetch of a partition with
nothing new may sit at the broker that long, and a gas alarm that arrives in the meantime on a
quiet partition waits for it. This transport is Faust's own with that one number changed; the
worker names it with the broker URL scheme `minhu://`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiokafka
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_WAIT_MS = 5


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_WAIT_MS  # read when the consumer starts
        return consumer


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
