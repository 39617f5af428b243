"""Publishing events to minhu's intake topics, as a sensor gateway or a responders' app does.

    with Publisher("127.0.0.1:9092") as pub:
        result = pub.publish(line)          # validates first; a bad event is not sent
        if not result.ok: print(result.reason)

Every event is validated against the wire contract before it is sent; a bad one is reported
with its reason and never reaches the broker. The producer waits for all in-sync replicas
(`acks=all`) and is idempotent, so a retry cannot duplicate a record.

Keys keep one case's events in order. An action or rating is keyed by its case id. An intake
event is keyed by its dedup key (the place and category of an appeal or patrol, the sensor and
alarm type of an alarm), found with the same rules and registry the workers use: the alarms of
a storm, the repeated appeals about one place, and a duplicate of an event all reach the
worker in the order they were published, so the Kafka workers decide exactly as `minhu route`
does on the same file. Without rules and registry (a minimal gateway), an alarm is keyed by its
sensor, an appeal by its caller and a patrol by its reporter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from kafka import KafkaProducer

from handlers.intake import parse_input
from handlers.registry import Registry
from handlers.routing import assess
from handlers.rules import Rules
from schemas import AlarmRaised, AppealReported, EventRejected, PatrolReported
from schemas.lifecycle import AnyInput
from streams.topics import Topics

KIND_OF_TYPE = {
    "minhu.appeal.reported": "appeal",
    "minhu.alarm.raised": "alarm",
    "minhu.patrol.reported": "patrol",
    "minhu.case.acknowledged": "action",
    "minhu.case.resolved": "action",
    "minhu.case.verified": "action",
    "minhu.case.escalation_requested": "action",
    "minhu.rating.submitted": "rating",
}
CE_HEADERS = [("content-type", b"application/cloudevents+json; charset=utf-8")]


@dataclass(frozen=True)
class PublishResult:
    ok: bool
    topic: str | None = None
    key: str | None = None
    reason: str | None = None


def key_for(event: AnyInput, rules: Rules | None = None, registry: Registry | None = None) -> str:
    if (
        rules is not None
        and registry is not None
        and isinstance(event, AppealReported | AlarmRaised | PatrolReported)
    ):
        assessed = assess(event, rules, registry)
        if not isinstance(assessed, EventRejected):
            return assessed.dedup_key
    if isinstance(event, AlarmRaised):
        return event.data.sensor_id
    if isinstance(event, AppealReported):
        return event.data.caller.id
    if isinstance(event, PatrolReported):
        return event.data.reporter_id
    return event.data.case_id  # an action or a rating


class Publisher:
    """A validating, idempotent producer for the intake topics."""

    def __init__(
        self,
        broker: str,
        topics: Topics | None = None,
        kind: str | None = None,
        rules: Rules | None = None,
        registry: Registry | None = None,
        **producer_config: object,
    ) -> None:
        self.topics = topics or Topics()
        self.kind = kind
        self.rules = rules
        self.registry = registry
        self.producer = KafkaProducer(
            bootstrap_servers=broker,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            **producer_config,
        )

    def publish(self, raw: str | bytes, position: int | None = None) -> PublishResult:
        parsed = parse_input(raw, "publisher", position, datetime.now(UTC))
        if isinstance(parsed, EventRejected):
            return PublishResult(False, reason=parsed.data.reason)
        kind = KIND_OF_TYPE[parsed.type]
        if self.kind is not None and kind != self.kind:
            return PublishResult(
                False,
                reason=f"a {parsed.type} event is not a {self.kind} (publish it with "
                f"--kind {kind})",
            )
        topic, key = self.topics.intake(kind), key_for(parsed, self.rules, self.registry)
        value = raw if isinstance(raw, bytes) else raw.encode()
        # The record's timestamp is the event's time, so replays select history by event time.
        self.producer.send(
            topic,
            key=key.encode(),
            value=value,
            headers=CE_HEADERS,
            timestamp_ms=int(parsed.time.timestamp() * 1000),
        )
        return PublishResult(True, topic, key)

    def flush(self, timeout: float | None = 60) -> None:
        self.producer.flush(timeout)

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
