"""The Kafka backend of the service: publish to the intake topics, read the dispatch topics.

`KafkaIntake` is the one intake of every door on Kafka (`minhu serve --broker` and `minhu
mqtt-bridge`). A record is checked as the workers will check it (the wire contract, its time):
a refused one is dead-lettered with the reason, as the engine does with what it refuses on the
embedded backend, and is not published. A good one is published to its intake topic, keyed by
shard (`Publisher`), and flushed before `submit` returns: `accepted` means the broker has it
(acks=all). The workers decide it later, so a verdict names no case, and a duplicate is only
known to them (it is counted there, never routed twice). A broker that does not take the
record raises `NotSent`: nothing was decided (HTTP answers 503; the bridge leaves the message
unacknowledged, and the MQTT broker delivers it again).

`DispatchReader` is what the service reads back: the dispatch topics of every tier, closures
and ratings, from the earliest retained record, then live. It has no consumer group (each
service reads every partition itself, and no group join delays its start) and commits nothing:
each start rebuilds the board and the case views from the topics' retention. Each event is
handed on once (an escalation is on two tiers' topics), and the history is handed on in one
batch once the reader has reached the end of every partition, sorted by the events' times, so
a case's opening comes before its closure although they are on different topics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from handlers.intake import implausible_time, kept, parse_input, rejection
from handlers.rules import Rules
from schemas import EVENT_MODELS, CloudEvent, EventRejected, Tier
from schemas.jsontext import loads
from streams.drivers.kafka.consumer import SeenIds
from streams.drivers.kafka.publisher import Publisher, refusal_reason
from streams.service.embedded import Decided, error_kind_of
from streams.service.ports import NotSent, Verdict
from streams.topics import CE_HEADERS, Topics

log = logging.getLogger("minhu.service.kafka")


class KafkaIntake:
    """`Intake` over a `Publisher` (one producer, shared by the doors' threads)."""

    decides_at_once = False

    def __init__(self, publisher: Publisher, rules: Rules, flush_timeout: float = 30) -> None:
        self.publisher = publisher
        self.rules = rules
        self.flush_timeout = flush_timeout
        self.lock = threading.Lock()  # one flush at a time: each waits for its own record

    def submit(self, raw: str | bytes, received_from: str) -> Verdict:
        now = datetime.now(UTC)
        parsed = parse_input(raw, received_from, None, now)
        if isinstance(parsed, EventRejected):
            return self.refuse(raw, received_from, parsed.data.error_kind, parsed.data.reason)
        implausible = implausible_time(parsed.time, now, None, self.rules.time)
        if implausible is not None:
            return self.refuse(raw, received_from, "implausible_time", implausible)
        with self.lock:
            result = self.publisher.publish(raw)
            if not result.ok:
                raise NotSent(result.reason or "the producer refused it")
            failed = [d for d in self.publisher.settle(self.flush_timeout) if not d.ok]
            if failed:  # accepted only once the broker has it
                raise NotSent(failed[0].reason or "the broker did not take it")
        return Decided("accepted", parsed.id)

    def refuse(self, raw: str | bytes, received_from: str, kind: str, reason: str) -> Verdict:
        """Dead-letter `raw` with the reason, on the dead-letter topic."""
        dead = rejection(
            error_kind_of(kind), reason, [], kept(raw), received_from, None, datetime.now(UTC),
            None, None,
        )  # fmt: skip
        with self.lock:
            sent = []
            for rec in self.publisher.topics.records_for(dead):
                try:
                    sent.append(
                        self.publisher.producer.send(
                            rec.topic,
                            key=rec.key.encode() if rec.key else None,
                            value=dead.model_dump_json(exclude_none=True).encode(),
                            headers=CE_HEADERS,
                        )
                    )
                except KafkaError as err:
                    raise NotSent(str(err)) from err
            self._flush()
            for future in sent:  # dead-lettered only once the broker has it
                if not (future.is_done and future.succeeded()):
                    raise NotSent(refusal_reason(future.exception if future.is_done else None))
        return Decided("refused", dead.data.event_id, reason, None, kind)

    def _flush(self) -> None:
        try:
            self.publisher.flush(self.flush_timeout)
        except KafkaError as err:
            raise NotSent(str(err)) from err

    def tick(self) -> None:
        """Nothing to do: the workers keep the clock."""

    def close(self) -> None:
        self.publisher.close()


def read_topics(topics: Topics) -> list[str]:
    """What the service reads back: every tier's dispatch topic, closures and ratings."""
    return [*(topics.dispatch(t) for t in Tier), topics.closures, topics.ratings]


class DispatchReader:
    """A thread that hands the engine's outputs, as the topics carry them, to `takers` (the
    board's and the case views' `take`), each event once, in batches (see the module's
    docstring). `caught_up` is set once the history has been handed on."""

    def __init__(
        self,
        broker: str,
        topics: Topics,
        takers: Sequence[Callable[[list[CloudEvent]], None]],
        poll_ms: int = 500,
        **client_config: Any,
    ) -> None:
        self.names = read_topics(topics)
        self.takers = list(takers)
        self.poll_ms = poll_ms
        self.caught_up = threading.Event()
        self._stopping = threading.Event()
        self._seen = SeenIds()
        self.consumer = KafkaConsumer(
            bootstrap_servers=broker,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **client_config,
        )
        self._thread = threading.Thread(target=self._run, name="minhu-dispatch-reader", daemon=True)

    def start(self) -> DispatchReader:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            parts = self._assign()
            history: list[CloudEvent] = []
            while parts and not self._stopping.is_set():
                events = self._events(self.consumer.poll(timeout_ms=self.poll_ms))
                if self.caught_up.is_set():
                    self._hand_on(events)
                    continue
                history.extend(events)
                if self._at_end(parts):
                    self._hand_on(history)
                    history = []
                    self.caught_up.set()
                    log.info("read the history of %s", ", ".join(self.names))
        except Exception:
            log.exception("the dispatch reader stopped: the board and the case views are stale")
            raise
        finally:
            self.consumer.close()

    def _assign(self) -> list[TopicPartition]:
        """Every partition of the topics read, from the earliest; waits for missing topics."""
        while not self._stopping.is_set():
            counts = {n: self.consumer.partitions_for_topic(n) for n in self.names}
            missing = [n for n, ps in counts.items() if not ps]
            if not missing:
                parts = [TopicPartition(n, p) for n, ps in counts.items() for p in sorted(ps)]
                self.consumer.assign(parts)
                self.consumer.seek_to_beginning(*parts)
                return parts
            log.warning("waiting for topics %s (minhu topics create)", ", ".join(missing))
            self._stopping.wait(2)
        return []

    def _at_end(self, parts: list[TopicPartition]) -> bool:
        """Whether every partition has been read up to its high watermark, as the broker
        last said in a fetch answer."""
        for tp in parts:
            high = self.consumer.highwater(tp)
            if high is None or self.consumer.position(tp) < high:
                return False
        return True

    def _events(self, batch: dict[TopicPartition, list[Any]]) -> list[CloudEvent]:
        out: list[CloudEvent] = []
        for messages in batch.values():
            for m in messages:
                try:
                    doc = loads(m.value)  # NotJson, a ValueError, whatever the record
                    model = EVENT_MODELS[doc["type"]]
                    event = model.model_validate(doc)
                except (ValueError, KeyError, TypeError) as err:
                    log.warning("skipped a record at %s:%d:%d: %s", m.topic, m.partition,
                                m.offset, err)  # fmt: skip
                    continue
                out.append(event)
        return out

    def _hand_on(self, events: list[CloudEvent]) -> None:
        fresh = in_order(events, self._seen)
        if fresh:
            for take in self.takers:
                take(fresh)


def in_order(events: list[CloudEvent], seen: SeenIds) -> list[CloudEvent]:
    """The events not seen before, each once, by time: one record's outputs share a time and
    keep the order they were read in (one case's records are on one partition of a topic)."""
    fresh = [e for e in events if seen.first(e.id)]
    return sorted(fresh, key=lambda e: e.time)
