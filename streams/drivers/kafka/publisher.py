"""Publishing events to minhu's intake topics, as a sensor gateway or a responders' app does.

    with Publisher("127.0.0.1:9092", rules=rules, registry=registry) as pub:
        result = pub.publish(line)          # validates first; a bad event is not sent
        if not result.ok: print(result.reason)

Every event is validated against the wire contract before it is sent; a bad one is reported
with its reason and never reaches the broker. The producer waits for all in-sync replicas
(`acks=all`) and is idempotent, so a retry cannot duplicate a record.

Keys decide where a record is decided (handlers/ids.py, partitioning.py). An intake event is
keyed by its shard's token — found with the same rules and registry the workers use — and an
appeal or patrol report about life or property goes to the urgent topic, which workers read
ahead of any backlog; an action or a rating is keyed by the shard token in its case id. So
every record of a shard reaches the one partition that holds it, in the order it was
published. The record's timestamp is the event's time: the workers order a partition's topics
by it, and replays select history by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from kafka import KafkaProducer
from kafka.errors import KafkaError

from handlers.ids import shard_token_of_case
from handlers.intake import implausible_time, parse_input
from handlers.registry import Registry
from handlers.routing import assess
from handlers.rules import Rules
from schemas import AlarmRaised, AppealReported, EventRejected, PatrolReported, Severity
from schemas.lifecycle import AnyInput
from streams.topics import CE_HEADERS, Topics

KIND_OF_TYPE = {
    "minhu.appeal.reported": "appeal",
    "minhu.alarm.raised": "alarm",
    "minhu.patrol.reported": "patrol",
    "minhu.case.acknowledged": "action",
    "minhu.case.resolved": "action",
    "minhu.case.verified": "action",
    "minhu.case.escalation_requested": "action",
    "minhu.case.reassign_requested": "action",
    "minhu.case.extension_requested": "action",
    "minhu.case.extension_decided": "action",
    "minhu.rating.submitted": "rating",
}
# The largest record the publisher sends (Kafka's default message.max.bytes is about 1 MB).
MAX_RECORD_BYTES = 512 * 1024


@dataclass(frozen=True)
class PublishResult:
    ok: bool
    topic: str | None = None
    key: str | None = None
    reason: str | None = None


def route_for(event: AnyInput, rules: Rules, registry: Registry) -> tuple[str, str]:
    """(intake kind, key) of an event: where it goes and how it is keyed."""
    kind = KIND_OF_TYPE[event.type]
    if isinstance(event, AppealReported | AlarmRaised | PatrolReported):
        assessed = assess(event, rules, registry)
        if isinstance(assessed, EventRejected):
            return kind, "unknown"  # refused by whichever worker reads it, with the reason
        if kind != "alarm" and assessed.facts.severity is Severity.CRITICAL:
            kind = "urgent"
        return kind, assessed.bucket[:4]
    return kind, shard_token_of_case(event.data.case_id) or event.data.case_id


class Publisher:
    """A validating, idempotent producer for the intake topics. `producer_config`: more
    KafkaProducer settings, such as the login (`**security.kafka_python_config(settings)`)."""

    def __init__(
        self,
        broker: str,
        rules: Rules,
        registry: Registry,
        topics: Topics | None = None,
        kind: str | None = None,
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
            max_request_size=MAX_RECORD_BYTES + 64 * 1024,
            **producer_config,
        )

    def publish(self, raw: str | bytes, position: int | None = None) -> PublishResult:
        value = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
        now = datetime.now(UTC)
        parsed = parse_input(raw, "publisher", position, now)
        if isinstance(parsed, EventRejected):
            return PublishResult(False, reason=parsed.data.reason)
        implausible = implausible_time(parsed.time, now, None, self.rules.time)
        if implausible is not None:  # the workers would refuse it too; its time is no timestamp
            return PublishResult(False, reason=implausible)
        kind, key = route_for(parsed, self.rules, self.registry)
        wanted = "appeal" if kind == "urgent" else kind
        if self.kind is not None and wanted != self.kind and kind != self.kind:
            return PublishResult(
                False,
                reason=f"a {parsed.type} event is not a {self.kind} (publish it with "
                f"--kind {wanted})",
            )
        topic = self.topics.intake(kind)
        try:
            self.producer.send(
                topic,
                key=key.encode(),
                value=value,
                headers=CE_HEADERS,
                timestamp_ms=int(parsed.time.timestamp() * 1000),
            )
        except KafkaError as err:
            return PublishResult(False, reason=f"not sent: {err}")
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
