"""The Kafka backend of the service: validate, publish to the intake topics, and say so.

`accepted` means the broker has the record (the producer waits for all in-sync replicas on each
one): the workers decide it later, so a verdict names no case, and a duplicate is only known to
them (it is counted there, never routed twice). A record the publisher refuses (the wire
contract, its size, its time) is refused here with the publisher's reason and is not sent.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from kafka.errors import KafkaError

from handlers.intake import rejection
from streams.drivers.kafka.publisher import Publisher
from streams.service.embedded import Decided, error_kind_of
from streams.service.gateways import event_id_of
from streams.service.ports import Verdict
from streams.topics import CE_HEADERS


class KafkaIntake:
    """`Intake` over a `Publisher` (one producer, shared by the handlers' threads)."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher
        self.lock = threading.Lock()  # one flush at a time: each waits for its own record

    def submit(self, raw: str | bytes, received_from: str) -> Verdict:
        event_id = event_id_of(raw)
        with self.lock:
            result = self.publisher.publish(raw)
            if result.ok:
                try:
                    self.publisher.flush(30)
                except KafkaError as err:
                    return Decided("refused", event_id, f"not sent: {err}", None, "not_sent")
        if not result.ok:
            return Decided("refused", event_id, result.reason, None, "invalid_event")
        return Decided("accepted", event_id)

    def refuse(self, raw: str | bytes, received_from: str, kind: str, reason: str) -> Verdict:
        payload = raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")
        dead = rejection(
            error_kind_of(kind), reason, [], payload, received_from, None, datetime.now(UTC),
            event_id_of(raw), None,
        )  # fmt: skip
        topic = self.publisher.topics.deadletter
        with self.lock:
            self.publisher.producer.send(
                topic,
                key=dead.id.encode(),
                value=dead.model_dump_json(exclude_none=True).encode(),
                headers=CE_HEADERS,
            )
            self.publisher.flush(30)
        return Decided("refused", dead.data.event_id, reason, None, kind)

    def tick(self) -> None:
        """Nothing to do: the workers keep the clock."""

    def close(self) -> None:
        self.publisher.close()
