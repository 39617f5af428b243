"""Publishing events to minhu's intake topics, as a sensor gateway or a responders' app does.

    with Publisher("127.0.0.1:9092", rules=rules, registry=registry) as pub:
        result = pub.publish(line, n)       # validates first; a bad event is not sent
        if not result.ok: print(result.reason)
        ...
        for d in pub.settle():              # what the broker did with each record handed over
            if not d.ok: print(d.position, d.reason)

Every event is validated against the wire contract before it is sent; a bad one is reported
with its reason and never reaches the broker. The producer waits for all in-sync replicas
(`acks=all`) and is idempotent, so a retry cannot duplicate a record.

`publish` hands a record to the producer; only the broker's answer says it was sent. `settle`
waits for every record handed over since it was last called and says, for each, whether the
broker took it or why not (refused by the broker — not authorized, too large, invalid for
the topic — or not answered in time). A broker refuses a whole batch for one invalid record:
the records of such a batch are sent again alone, once, so that only the one at fault is
reported. A producer with a failed delivery is replaced by a fresh one, so that one refused
record cannot fail those after it (kafka-python bumps an idempotent producer's epoch after
such an error, which not every broker honours: the test broker failed every later record of
that producer).

Keys decide where a record is decided (handlers/ids.py, partitioning.py). An intake event is
keyed by its shard's token — found with the same rules and registry the workers use — and an
appeal or patrol report about life or property goes to the urgent topic, which workers read
ahead of any backlog; an action or a rating is keyed by the shard token in its case id. So
every record of a shard reaches the one partition that holds it, in the order it was
published. The record's timestamp is the event's time: the workers order a partition's topics
by it, and replays select history by it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from kafka import KafkaProducer
from kafka.errors import (
    BrokerResponseError,
    CorruptRecordError,
    InvalidRecordError,
    InvalidTimestampError,
    KafkaError,
    KafkaTimeoutError,
)
from kafka.producer.future import FutureRecordMetadata

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
    """Whether a record was handed to the producer (`settle` says whether the broker took
    it), or why not."""

    ok: bool
    topic: str | None = None
    key: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Delivery:
    """What the broker did with one record handed to the producer: `position` is the one
    given to `publish`."""

    position: int | None
    ok: bool
    reason: str | None = None


@dataclass(frozen=True)
class Pending:
    """A record handed to the producer, kept until the broker has answered for it."""

    position: int | None
    future: FutureRecordMetadata
    topic: str
    key: bytes
    value: bytes
    timestamp_ms: int

    def record(self) -> tuple[str, bytes, bytes, int]:
        return self.topic, self.key, self.value, self.timestamp_ms


# Errors a broker answers for a whole batch of records when one of them is at fault (a batch
# too large for it is split by kafka-python itself).
BATCH_REFUSALS = (InvalidRecordError, CorruptRecordError, InvalidTimestampError)


def refusal_reason(err: BaseException | None) -> str:
    """Why a delivery failed, in words: the broker's error and what it means."""
    if err is None:
        return "the broker did not confirm it"
    if isinstance(err, BrokerResponseError):
        said = err.args[0] if err.args and err.args[0] else None
        return f"the broker refused it: {type(err).__name__} ({said or err.description})"
    return str(err)


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
        self.config: dict[str, Any] = {
            "bootstrap_servers": broker,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "max_request_size": MAX_RECORD_BYTES + 64 * 1024,
            **producer_config,
        }
        self.producer = KafkaProducer(**self.config)
        self.pending: list[Pending] = []

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
            sent = self._send(
                position, topic, key.encode(), value, int(parsed.time.timestamp() * 1000)
            )
        except KafkaError as err:
            return PublishResult(False, reason=f"not sent: {err}")
        self.pending.append(sent)
        return PublishResult(True, topic, key)

    @property
    def pending_bytes(self) -> int:
        return sum(len(p.value) for p in self.pending)

    def settle(self, timeout: float | None = None) -> list[Delivery]:
        """What the broker did with each record handed to the producer since the last call,
        in the order they were published. Waits for them all (each is answered or failed
        within the producer's `delivery_timeout_ms`), or `timeout` seconds: one not answered
        by then is reported as not confirmed (it may still arrive).

        A broker refuses a batch of records whole when one of them is invalid: the records
        that failed so are each sent again alone, once, so that only the one at fault is
        reported."""
        pending, self.pending = self.pending, []
        if not pending:
            return []
        errors = self._wait(pending, timeout)
        if any(errors):
            self._renew()
        if len(pending) > 1:
            for i, (p, err) in enumerate(zip(pending, errors, strict=True)):
                if isinstance(err, BATCH_REFUSALS):
                    try:
                        again = self._send(p.position, *p.record())
                    except KafkaError as failed:
                        errors[i] = failed
                        continue
                    errors[i] = self._wait([again], timeout)[0]
                    if errors[i] is not None:
                        self._renew()
        return [
            Delivery(p.position, err is None, None if err is None else refusal_reason(err))
            for p, err in zip(pending, errors, strict=True)
        ]

    def _wait(self, pending: list[Pending], timeout: float | None) -> list[BaseException | None]:
        """Flush, then each record's error: None if the broker has it."""
        with contextlib.suppress(KafkaError):  # a timeout: the futures say which
            self.producer.flush(timeout)
        out: list[BaseException | None] = []
        for p in pending:
            if not p.future.is_done:
                out.append(KafkaTimeoutError(f"not confirmed within {timeout} s"))
            else:
                out.append(None if p.future.succeeded() else p.future.exception)
        return out

    def _send(
        self, position: int | None, topic: str, key: bytes, value: bytes, timestamp_ms: int
    ) -> Pending:
        future = self.producer.send(
            topic, key=key, value=value, headers=CE_HEADERS, timestamp_ms=timestamp_ms
        )
        return Pending(position, future, topic, key, value, timestamp_ms)

    def _renew(self) -> None:
        """A fresh producer (a new producer id) in place of one that failed a delivery."""
        old, self.producer = self.producer, KafkaProducer(**self.config)
        with contextlib.suppress(KafkaError):
            old.close(timeout=5)

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
