"""`minhu worker`: the engine on Kafka, as a Faust app.

One engine per partition. Every input topic is keyed by shard (handlers/ids.py,
partitioning.py), so partition p of every topic holds the same shards, and the worker that holds
p holds everything those shards' cases need: their buckets, in the Faust table `buckets`, whose
changelog partition p is the same partition. A record is decided once, where it belongs — no
re-keying hop, no second parse.

For each partition the worker:

1. **orders** its inputs by event time across the intake, action and rating topics
   (merge.py), as `minhu route` would, except that a live critical alarm (or an appeal on the
   urgent topic) is decided at once, ahead of any backlog, and written on its own: the
   life-safety lane, which also has a consumer of its own (`_read_lane`), so that the alarm
   does not wait behind the appeals Faust fetched before it;
2. **decides** a batch of records with the engine (`handlers/engine.py`), which also fires the
   deadlines their time has passed;
3. **delivers** the batch's outputs and waits for the broker to have them; writes the ledger,
   if any; then writes the buckets the batch changed (one changelog record per bucket) and,
   last, where each input now stands (`~positions.<p>`: the first offset of each input not
   yet decided, and any decided above it); then acknowledges the batch's input records, whose
   offsets Faust commits after flushing.

So a worker killed at any moment either never wrote a record's state — the record is read
again and decided again, the same way, and its outputs are sent again with the same ids — or
wrote it, and skips the record when it reads it again. It never keeps a state change without
its outputs, and never loses an applied action.

What has been decided is known from the state itself, not from the consumer group's committed
offsets: those can lag far behind (Faust counts an offset as committed even when the commit
failed in a rebalance), and a record read again long after it was decided may find its
identity forgotten (`memory.identities`) and be decided a second time. The changelog holds
the positions in the same partition as the buckets, written after them: a worker that takes
a partition seeks each input back to where its state stands, and skips what its state holds.
A record is acknowledged once decided and written (or found decided already), and so is any
copy of it Faust delivered meanwhile, so that the group's committed offsets never pass a
record not yet decided — except for the records let go of in a rebalance, acknowledged so that
the revocation does not wait on them, and read again from the positions in the state.

Time: the engine's clock is the latest event time it has decided. When the worker has read all
there is on a partition, the wall clock drives it instead (`--clock live`, the default): a
deadline fires within a second of the wall clock passing it. A worker behind on its inputs
(after an outage, or replaying history) fires only what its inputs' event time has passed, so
a backlog is decided as `minhu route` decides the same history.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aiokafka
import faust
from aiokafka.errors import KafkaError
from faust.sensors import Sensor
from faust.streams import _current_event
from faust.web import Request, Response, View
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from pydantic import ValidationError

from handlers.engine import Effects, Engine
from handlers.intake import parse_input
from handlers.registry import Registry
from handlers.rules import Rules
from handlers.state import DictStore, Position, dump_bucket, load_bucket
from schemas import AlarmRaised, EventRejected, Severity
from schemas.internal import Forwarded
from streams.drivers.kafka import metrics as m
from streams.drivers.kafka import transport
from streams.drivers.kafka.admin import forwarded_topic
from streams.drivers.kafka.merge import Merge
from streams.drivers.kafka.partitioning import (
    POSITIONS,
    orphans_key,
    partition_of,
    partition_of_bucket,
    positions_key,
)
from streams.drivers.kafka.security import aiokafka_credentials, faust_credentials
from streams.drivers.kafka.settings import WorkerSettings
from streams.drivers.ledger import Ledger
from streams.topics import CE_HEADERS, Topics

log = logging.getLogger("minhu.worker")
auth_log = logging.getLogger("minhu.auth")
RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}
LIVE_LAG = timedelta(seconds=0.5)  # the wall clock a caught-up partition runs on, minus this
# The merge is never bounded by pausing a partition: Faust drops the records of a paused
# partition it has already fetched, and reads on after them when resumed (a test lost 199 of
# 8,165 actions so). What waits is what one input is ahead of another in event time.
IDLE = 2.0  # seconds without a new record after which a caught-up partition is idle
GAP_READ = 2.0  # seconds a record ahead of a missing offset waits before it is read directly
GAP_READ_TIMEOUT = 10.0  # seconds one direct read may take; what it did not get is read again
MERGE_STALL = 10.0  # seconds a merge may hold records without releasing one before it says why
GAP_RESEEK = 2.0  # seconds after which the missing offset is asked for again (sought)
EXIT_BROKER_LOST = 3
EXIT_CRASHED = 4


@dataclass(slots=True)
class Item:
    """One input record waiting to be decided."""

    event: Any  # the Faust event, acknowledged once the record's effects are written
    raw: bytes | str
    position: Position
    # Read outside Faust (no Faust event), by the lane's own consumer or to fill a gap
    # (`_fill_gap`): its topic, offset and timestamp.
    record: tuple[str, int, float] | None = None

    def where(self) -> tuple[str, int]:
        """The Kafka record's topic and offset."""
        if self.record is not None:
            return self.record[0], self.record[1]
        return self.event.message.topic, self.event.message.offset

    def timestamp(self) -> float | None:
        """The Kafka record's timestamp, in seconds (as Faust gives it)."""
        return self.record[2] if self.record is not None else self.event.message.timestamp

    def ack(self) -> None:
        if self.event is not None:
            self.event.ack()


class _Partition:
    """The shim a table write needs to know its partition (Faust looks at the event being
    processed; the worker writes after a batch is delivered, outside any event)."""

    def __init__(self, partition: int, topic: str) -> None:
        self.partition = partition
        self.topic = topic


class _Shim:
    def __init__(self, partition: int, topic: str) -> None:
        self.message = _Partition(partition, topic)


@dataclass
class Part:
    """One partition: its engine, the order its inputs wait in, and where each input is."""

    partition: int
    engine: Engine
    merge: Merge[Item]
    urgent: list[Item] = field(default_factory=list)
    # Monotonic time of the last record received, or of the partition's taking: a partition
    # just taken has not been idle for `IDLE` (its high watermark may be stale until a fetch).
    arrived: float = field(default_factory=time.monotonic)
    shim: _Shim | None = None
    # Each input is taken in offset order, from where the state says it stands, without
    # gaps: Faust delivers some records twice around a rebalance (fetched before its seek to
    # the committed offsets, and again after it), and a record ahead of the next one expected
    # waits for it.
    next: dict[str, int] = field(default_factory=dict)  # topic -> next offset expected
    # Offsets decided ahead of their input's first undecided one (the life-safety lane takes
    # a live alarm before the backlog of its topic), per topic; skipped when read again.
    decided_ahead: dict[str, set[int]] = field(default_factory=dict)
    # Of those, the ones whose batch is not written yet: a copy Faust delivers meanwhile is
    # acknowledged with it.
    unwritten: set[tuple[str, int]] = field(default_factory=set)
    # Copies of records still waiting, delivered again: acknowledged with the one decided.
    copies: dict[tuple[str, int], list[Any]] = field(default_factory=dict)
    positions_written: bytes = b""
    ahead: dict[str, dict[int, tuple[Any, bool]]] = field(default_factory=dict)
    ahead_since: dict[str, float] = field(default_factory=dict)
    filling: set[str] = field(default_factory=set)  # topics whose gap is being read directly
    stalled_since: float = field(default_factory=time.monotonic)  # merge last released
    blocked_since: dict[str, float] = field(default_factory=dict)  # topic -> waited on since


@dataclass
class Batch:
    steps: list[tuple[Part, Effects, Position | None, Item | None]] = field(default_factory=list)


class ReadinessSensor(Sensor):
    """Marks the worker unready when a rebalance starts, and drops its engines (rebuilt by
    `MinhuWorker._build`); `MinhuWorker._recovered` marks it ready again once the tables of
    its new partitions are recovered."""

    def __init__(self, worker: MinhuWorker) -> None:
        super().__init__()
        self.worker = worker

    def on_rebalance_start(self, app: Any) -> dict[Any, Any]:
        # Called in the consumer's own thread: only a flag is set here (deciding stops at
        # once), and the worker lets go of its engines in its own event loop.
        self.worker.rebalancing = True
        self.worker.app.loop.call_soon_threadsafe(self.worker.let_go)
        return {}


class MinhuWorker:
    """Builds the Faust app for one set of settings, rules and registry."""

    def __init__(
        self, settings: WorkerSettings, rules: Rules, registry: Registry, partitions: int
    ) -> None:
        self.s = settings
        self.rules = rules
        self.registry = registry
        self.partitions = partitions
        self.topics = Topics(settings.topic_prefix)
        self.ledger = Ledger(settings.ledger) if settings.ledger else None
        self.parts: dict[int, Part] = {}
        self.rebuild = True
        self.rebalancing = True
        self.lock = asyncio.Lock()
        self.turn = 0  # the partition whose merge is decided first in the next slice
        # The lane's own consumer reads the alarm and urgent partitions held, from here
        # (set by `_build`); it starts again from these whenever the generation moves on.
        self.lane_from: dict[faust.types.TP, int] = {}
        self.lane_generation = 0
        self.gap_reads: set[asyncio.Task[None]] = set()  # held, or the loop may drop them
        self.broker_seen = time.monotonic()
        datadir = Path(settings.data_dir) / settings.app_id
        datadir.mkdir(parents=True, exist_ok=True)
        scheme = transport.install(settings.fetch_wait_ms)
        web = settings.metrics_port is not None
        self.app = faust.App(
            settings.app_id,
            broker=f"{scheme}://{settings.broker}",
            store=settings.store,
            datadir=str(datadir),
            topic_partitions=partitions,
            topic_allow_declare=False,
            processing_guarantee=settings.guarantee,
            broker_session_timeout=settings.session_timeout,
            broker_heartbeat_interval=settings.heartbeat_interval,
            producer_linger=0.0,
            stream_buffer_maxsize=10 * max(settings.batch_size, 100),
            broker_max_poll_records=max(settings.batch_size, 100),
            web_enabled=web,
            web_port=settings.metrics_port or 6066,
            web_bind=settings.metrics_host,
            web_host=settings.metrics_host,
            table_cleanup_interval=3600.0,
            **faust_credentials(settings),  # SASL login (and TLS) for every Faust client
        )
        self.app.sensors.add(ReadinessSensor(self))
        self.app.on_rebalance_complete.connect(cast(Any, self._recovered))
        t = self.topics
        self.alarm_name = t.intake("alarm")
        self.urgent_name = t.intake("urgent")
        self.forwarded_name = forwarded_topic(t, settings.app_id)
        # The merge's sources, in the order ties are broken: intake before what acts on it.
        self.sources = [
            t.intake("alarm"),
            t.intake("urgent"),
            t.intake("appeal"),
            t.intake("patrol"),
            self.forwarded_name,
            t.intake("action"),
            t.intake("rating"),
        ]
        self.lane_names = (self.alarm_name, self.urgent_name)
        main = [s for s in self.sources if s not in self.lane_names]
        self.main_topic = self.app.topic(*main, **RAW)
        self.lane_topic = self.app.topic(*self.lane_names, **RAW)
        self.table = self.app.Table(  # bytes in, bytes out: keys and values stay raw
            "buckets", partitions=partitions, key_type=bytes, value_type=bytes
        )
        self.app.agent(self.main_topic, name="decide")(self._consume)
        self.app.agent(self.lane_topic, name="life-safety")(self._consume_lane)
        self.app.timer(settings.tick_seconds, name="clock")(self._tick)
        if settings.live_window > 0:
            self.app.task(self._read_lane)
        if web:
            self.app.page("/metrics")(MetricsView)
            self.app.page("/ready")(_ready_view(self))
            REGISTRY.register(OpenCases(self))

    # ---- partitions ---------------------------------------------------------------------------

    def let_go(self) -> None:
        """A rebalance has started: let go of every record waiting to be decided. Faust's
        revocation waits until each record it delivered is acknowledged or gone, and these
        would wait for a merge that no longer runs. So each is acknowledged, and read again
        from where the state says each input stands: the engines are rebuilt and each input
        sought back there (`_build`), since the group's committed offsets may pass them."""
        for part in self.parts.values():
            for queue in part.merge.queues.values():
                for held in queue:
                    held.item.ack()
            for item in part.urgent:
                item.ack()
            for waiting in part.ahead.values():
                for event, _ in waiting.values():
                    event.ack()
            for copies in part.copies.values():
                for event in copies:
                    event.ack()
        self.parts.clear()

    async def _recovered(self, sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Faust has recovered the table of the partitions it now holds (not merely assigned
        them): the engines can be built from it."""
        self.rebalancing = False
        self.rebuild = True

    def _build(self) -> list[tuple[faust.types.TP, int]]:
        """After a rebalance: an engine for each partition now held, from the table, its
        state as written. What the old engines held was let go of (`let_go`), as is anything
        fetched before the rebalance that arrives after it (`_admit`). Returns the seeks to
        make: each input back to where the state says it stands (Faust seeks to the group's
        committed offsets, which may be past it, or behind)."""
        seeks: list[tuple[faust.types.TP, int]] = []
        self.rebuild = False
        self.lane_from = {}
        self.lane_generation += 1
        held = {tp.partition for tp in self.app.consumer.assignment() if tp.topic in self.sources}
        self.parts.clear()
        by_part: dict[int, dict[str, Any]] = {p: {} for p in held}
        if by_part:
            for key, raw in self.table.data.items():
                name = key.decode()
                if name.startswith(POSITIONS):
                    continue
                p = partition_of_bucket(name, self.partitions)
                if p in by_part:
                    by_part[p][name] = load_bucket(raw)
        positions: dict[int, dict[str, list[Any]]] = {}
        for p in by_part:
            raw_pos = self.table.data.get(positions_key(p).encode())
            positions[p] = json.loads(raw_pos) if raw_pos else {}
        for p, buckets in by_part.items():
            engine = Engine(
                self.rules,
                self.registry,
                DictStore(buckets),
                orphans=orphans_key(p),
                holds=self._holder(p),
            )
            part = Part(p, engine, Merge(self.sources), shim=_Shim(p, self.sources[2]))
            for topic in self.sources:
                # Nothing decided here yet: from the start (what is there is all to decide).
                mark, ahead = positions[p].get(topic, (0, []))
                part.next[topic] = mark
                part.decided_ahead[topic] = set(ahead)
                seeks.append((faust.types.TP(topic, p), mark))
            self.parts[p] = part
            self.lane_from.update(
                {tp: o for tp, o in seeks if tp.partition == p and tp.topic in self.lane_names}
            )
            log.info(
                "partition %d: inputs from offsets %s",
                p,
                ", ".join(
                    f"{tp.topic.rsplit('.', 1)[-1]} {o}" for tp, o in seeks if tp.partition == p
                ),
            )
        log.info("holding partitions %s", sorted(self.parts))
        return seeks

    def _reader(self, part: Part) -> Callable[[str], bool | None]:
        return lambda topic: self._caught_up(part, topic)

    def _holder(self, partition: int) -> Callable[[str], bool]:
        return lambda token: partition_of(token, self.partitions) == partition

    def _caught_up(self, part: Part, topic: str) -> bool | None:
        """Whether everything on this topic's partition has reached the engine, as far as the
        broker last said (its high watermark): True, False, or None when it has not said."""
        tp = faust.types.TP(topic, part.partition)
        try:
            high = self.app.consumer.highwater(tp)
        except Exception:  # not assigned yet, or no fetch answered yet
            return None
        if high is None:
            return None
        return part.next.get(topic, 0) >= high

    # ---- receiving ----------------------------------------------------------------------------

    async def _consume(self, stream: faust.StreamT[bytes]) -> None:
        await self._run(stream, lane=False)

    async def _consume_lane(self, stream: faust.StreamT[bytes]) -> None:
        await self._run(stream, lane=True)

    async def _run(self, stream: faust.StreamT[bytes], lane: bool) -> None:
        batches = stream.take_events(self.s.batch_size, within=self.s.batch_seconds)  # type: ignore[attr-defined]
        try:
            async for events in batches:
                async with self.lock:
                    await self._receive(events, lane=lane)
                    more = await self._decide()
                del events  # held here, they would keep a rebalance waiting for them
                await self._decide_on(more)
        except Exception:
            _crash()

    async def _decide_on(self, more: bool) -> None:
        while more:
            # A backlog is decided a slice at a time; in between, the event loop fetches, and
            # the life-safety lane takes the lock before the next slice.
            await asyncio.sleep(0)
            async with self.lock:
                more = await self._decide()

    async def _read_lane(self) -> None:
        """The life-safety lane's own consumer: the alarm and urgent partitions this worker
        holds, read in the worker's event loop, outside Faust. Faust's consumer hands a record
        to its agents only after what it fetched before, so with the intake saturated a gas
        alarm reached the lane's agent p50 90 ms, p99 450 ms after it was published; read
        here, p50 38 ms, p99 270 ms (measured in one run). A live critical alarm read here is
        decided at once, ahead of its turn (`decided_ahead`), and the copy Faust delivers
        later is skipped. A record that is not one goes the usual way, through Faust, only."""
        consumer = transport.own_consumer(
            self.s.broker,
            aiokafka_credentials(self.s),
            fetch_max_wait_ms=self.s.lane_fetch_wait_ms,
        )
        started, generation = False, -1
        held: dict[faust.types.TP, int] = {}
        try:
            while True:
                try:
                    if not started:
                        await consumer.start()
                        started = True
                    if generation != self.lane_generation:
                        held = dict(self.lane_from)
                        consumer.assign([aiokafka.TopicPartition(*tp) for tp in held])
                        for tp, offset in held.items():
                            consumer.seek(aiokafka.TopicPartition(*tp), offset)
                        generation = self.lane_generation
                    if not held:
                        await asyncio.sleep(0.1)
                        continue
                    fetched = await consumer.getmany(timeout_ms=100)
                except KafkaError as exc:
                    # The broker away: Faust's delivery still brings these records, and
                    # `_tick` says when the broker has been gone too long (and exits).
                    log.warning("the life-safety lane's own consumer: %s; trying again", exc)
                    await asyncio.sleep(1.0)
                    continue
                if not fetched:
                    continue
                async with self.lock:
                    if self.rebalancing or self.rebuild or generation != self.lane_generation:
                        continue  # read again from the positions of the engines rebuilt
                    if not self._admit_early(fetched):
                        continue
                    more = await self._decide()
                await self._decide_on(more)
        except Exception:  # not a cancellation (a BaseException): a bug, and loud
            _crash()
        finally:
            await consumer.stop()

    def _admit_early(self, fetched: dict[Any, list[Any]]) -> bool:
        """Records read by the lane's own consumer: each live critical alarm (or urgent
        appeal) that Faust has not delivered yet goes to the lane. Whether any did."""
        took = False
        for tp, records in fetched.items():
            part = self.parts.get(tp.partition)
            if part is None:
                continue
            ahead = part.decided_ahead.setdefault(tp.topic, set())
            for r in records:
                if r.offset < part.next.get(tp.topic, 0) or r.offset in ahead:
                    continue  # delivered by Faust already, or decided
                if any(i.where() == (tp.topic, r.offset) for i in part.urgent):
                    continue
                if r.value is None or not self._life_safety(tp.topic, r.value):
                    continue
                item = Item(
                    None,
                    r.value,
                    Position(f"{tp.topic}/{tp.partition}", r.offset),
                    (tp.topic, r.offset, r.timestamp / 1000),
                )
                part.urgent.append(item)
                took = True
        return took

    async def _receive(self, events: Iterable[Any], lane: bool) -> None:
        arrived = []
        for event in events:
            event.message.incref()  # held until decided (take_events acknowledges once, we too)
            arrived.append((event, lane))
        if self.rebalancing:
            # Delivered before the tables are recovered: let go of (held, they would keep the
            # rebalance waiting), and read again once the engines are built and each input is
            # sought back to where its state stands.
            for event, _ in arrived:
                event.ack()
            return
        await self._ensure_built()
        for event, on_lane in arrived:
            self._admit(event, on_lane)

    async def _ensure_built(self) -> None:
        if self.rebuild:
            for tp, offset in self._build():
                await self.app.consumer.seek(tp, offset)

    def _admit(self, event: Any, lane: bool) -> None:
        msg = event.message
        part = self.parts.get(msg.partition)
        if part is None:
            event.ack()
            return  # not ours (any more): read again where it is now, from its state
        if msg.generation_id not in (None, self.app.consumer_generation_id):
            # Fetched before the last rebalance and delivered after it (Faust's buffers hold
            # such records): the engine was rebuilt and reads the partition again from where
            # its state stands — deciding this one first would decide it ahead of the records
            # before it.
            event.ack()
            return
        expected = part.next.get(msg.topic, msg.offset)
        if msg.offset < expected:
            # Delivered again: this partition has it already. Acknowledged if decided; a copy
            # of one still waiting is acknowledged with it, once it is decided (acknowledged
            # now, it would let the group's committed offset pass a record not yet decided).
            if self._waiting(part, msg.topic, msg.offset):
                part.copies.setdefault((msg.topic, msg.offset), []).append(event)
            else:
                event.ack()
            return
        if msg.offset > expected:
            waiting = part.ahead.setdefault(msg.topic, {})
            if msg.offset in waiting:  # a second copy of one already waiting: as above
                part.copies.setdefault((msg.topic, msg.offset), []).append(event)
                return
            waiting[msg.offset] = (event, lane)
            part.ahead_since.setdefault(msg.topic, time.monotonic())
            return
        self._take(part, event, lane)
        self._take_waiting(part, msg.topic)

    @staticmethod
    def _waiting(part: Part, topic: str, offset: int) -> bool:
        """Whether a record taken at this offset still waits to be decided."""
        queue = part.merge.queues[topic]
        if queue and offset >= queue[0].offset:
            return True
        return any(i.where() == (topic, offset) for i in part.urgent)

    def _take_waiting(self, part: Part, topic: str) -> None:
        """Records held ahead that are next now."""
        waiting = part.ahead.get(topic)
        while waiting and part.next[topic] in waiting:
            self._take(part, *waiting.pop(part.next[topic]))
        if not waiting:
            part.ahead.pop(topic, None)
            part.ahead_since.pop(topic, None)

    def _mind_gaps(self) -> None:
        """Records waiting ahead of a missing offset. Faust drops a record older than the last
        it delivered on its partition, so records fetched before a seek and delivered after it
        can hide the records the seek asked for, for good: sought again, they may be hidden
        again (a test lost a closing action so, once the worker had taken the missing offset
        as never coming). After `GAP_READ` seconds the missing offsets are read from the
        broker directly, outside Faust (`_fill_gap`); an offset is passed over only when the
        broker holds no record there (a transaction marker, compaction, retention)."""
        now = time.monotonic()
        for part in list(self.parts.values()):
            for topic, since in list(part.ahead_since.items()):
                waiting = part.ahead.get(topic)
                if not waiting or topic in part.filling or now - since < GAP_READ:
                    continue
                part.filling.add(topic)
                start, end = part.next[topic], min(waiting)
                task = asyncio.get_running_loop().create_task(
                    self._fill_gap(part, topic, start, end)
                )
                self.gap_reads.add(task)
                task.add_done_callback(self.gap_reads.discard)

    async def _fill_gap(self, part: Part, topic: str, start: int, end: int) -> None:
        """Read offsets `start` to `end` of one input from the broker, and take them."""
        try:
            records = await transport.read_offsets(
                self.s.broker,
                aiokafka_credentials(self.s),
                topic,
                part.partition,
                start,
                end,
                GAP_READ_TIMEOUT,
            )
        except KafkaError as exc:
            log.warning(
                "%s/%d: reading offsets %d to %d: %s", topic, part.partition, start, end, exc
            )
            records = []
        async with self.lock:
            part.filling.discard(topic)
            if part.ahead.get(topic):
                part.ahead_since[topic] = time.monotonic()  # not filled yet: read again later
            if self.parts.get(part.partition) is not part or self.rebalancing or self.rebuild:
                return  # let go of meanwhile: read again from the positions in the state
            self._fill(part, topic, records)
            more = await self._decide()
        await self._decide_on(more)

    def _fill(self, part: Part, topic: str, records: Iterable[transport.Read]) -> None:
        """Records read directly, in offset order, taken until no record waits ahead of a
        missing one. A record Faust delivered meanwhile is not taken twice; an offset the
        broker skipped holds no record, and the input goes on after it."""
        lane = topic in self.lane_names
        for r in records:
            waiting = part.ahead.get(topic)
            if not waiting:
                return
            expected = part.next[topic]
            if r.offset < expected:
                continue
            if r.offset > expected:
                log.warning(
                    "%s/%d: the broker holds no records at offsets %d to %d; going on from %d",
                    topic,
                    part.partition,
                    expected,
                    r.offset - 1,
                    r.offset,
                )
                part.next[topic] = r.offset
            if r.offset not in waiting:
                self._enqueue(part, topic, r.offset, r.timestamp, r.value, None, lane)
            self._take_waiting(part, topic)

    def _take(self, part: Part, event: Any, lane: bool) -> None:
        """The next record of one input, in offset order, as Faust delivered it."""
        msg = event.message
        self._enqueue(part, msg.topic, msg.offset, msg.timestamp, event.value, event, lane)

    def _enqueue(
        self,
        part: Part,
        topic: str,
        offset: int,
        timestamp: float | None,
        value: bytes | None,
        event: Any,
        lane: bool,
    ) -> None:
        """The next record of one input, in offset order: into the merge (or the lane).
        `event` is Faust's, or None for a record read directly (`_fill_gap`), whose
        timestamp (seconds) is kept with it. A record without a value (a tombstone a
        client wrote on an input) is decided as an empty one: dead-lettered, with the reason."""
        value = b"" if value is None else value
        part.next[topic] = offset + 1
        ahead = part.decided_ahead.get(topic)
        if ahead and offset in ahead:
            # Decided by the lane ahead of its turn (read by the lane's own consumer, or before
            # a restart): acknowledged once the state holds it.
            ahead.discard(offset)
            if event is None:
                return  # read directly: nothing to acknowledge
            if (topic, offset) in part.unwritten:
                part.copies.setdefault((topic, offset), []).append(event)
            else:
                event.ack()
            return
        m.EVENTS_IN.labels(topic, "record").inc()
        part.arrived = time.monotonic()
        # The merge orders by the record's timestamp, which its producer set: never later than
        # now, when it is received (merge.py), so that a gateway's 2100 holds nothing back.
        received = time.time()
        record = None if event is not None else (topic, offset, timestamp or 0.0)
        item = Item(event, value, Position(f"{topic}/{part.partition}", offset), record)
        if topic == self.forwarded_name:
            try:
                f = Forwarded.model_validate_json(value)
            except ValidationError:
                # Only workers write this topic; what is not a forwarded record is decided as
                # it is (the engine refuses it with the reason), never a crash.
                part.merge.add(topic, timestamp or 0, offset, item, received)
                return
            item = Item(event, f.payload, Position(f.received_from, f.position), record)
            part.merge.add(topic, f.timestamp, offset, item, received)
            return
        if lane and self._life_safety(topic, value):
            part.urgent.append(item)
        else:
            part.merge.add(topic, timestamp or 0, offset, item, received)

    def _life_safety(self, topic: str, raw: bytes) -> bool:
        """A critical alarm, or anything on the urgent topic, that is happening now. The
        record is read by the wire contract (`parse_input`), which no record makes raise (a
        gateway that writes straight to the alarm topic could send 10 KB of nested brackets,
        on which `json.loads` raises RecursionError: this worker, and each one after it,
        exited on it). A record the contract refuses is not urgent: it goes through the merge
        to the engine, which dead-letters it with the reason."""
        if self.s.live_window <= 0:
            return False
        now = datetime.now(UTC)
        event = parse_input(raw, topic, None, now)
        if isinstance(event, EventRejected):
            return False
        if abs((now - event.time).total_seconds()) > self.s.live_window:
            return False
        if topic == self.urgent_name:
            return True
        if not isinstance(event, AlarmRaised):
            return False
        kind = self.rules.alarm_types.get(event.data.alarm_type)
        return kind is not None and kind[1] is Severity.CRITICAL

    # ---- deciding -----------------------------------------------------------------------------

    async def _decide(self) -> bool:
        """Decide what can be decided, and write it: first the life-safety lane's records of
        every partition, then the merges, for at most `decide_budget_ms` (taking the
        partitions in turn, a different one first each time), then the deadlines of the
        partitions on the wall clock. True when a merge was cut short and holds records that
        can be decided now: the caller decides again, after letting the event loop run."""
        if self.rebalancing:
            return False  # the engines are let go of, and rebuilt once the tables are recovered
        batch = Batch()
        wall = datetime.now(UTC)
        seeks: list[tuple[Any, int]] = []  # inputs asked for again, once the batch is written
        self._mind_gaps()
        parts = list(self.parts.values())
        urgent = Batch()
        for part in parts:
            # Nothing this batch decides is forgotten before the batch is written: a worker
            # killed in between reads it again and must find it (a backlog can run through
            # more than `memory.identities` of event time in one batch).
            part.engine.settled = None
            for item in part.urgent:
                eff = part.engine.feed(item.raw, item.position, advance=False, now=wall)
                self._hold(part, eff)
                topic, offset = item.where()
                m.LIFE_SAFETY.labels("lane" if item.record else "faust").inc()
                part.decided_ahead.setdefault(topic, set()).add(offset)
                part.unwritten.add((topic, offset))
                urgent.steps.append((part, eff, item.position, item))
            part.urgent.clear()
        if urgent.steps:
            # The lane's records are written on their own, ahead of the slice of the backlog:
            # their outputs wait neither for that slice to be decided nor for its writing.
            await self._write(urgent)
            if self.rebalancing or self.rebuild:
                return False  # let go of meanwhile: the engines are rebuilt before any more
            for part in parts:
                part.engine.settled = None
        self.turn = (self.turn + 1) % max(len(parts), 1)
        until = time.monotonic() + self.s.decide_budget_ms / 1000
        cut = False
        for part in parts[self.turn :] + parts[: self.turn]:
            took = cut  # a merge not reached this time is not stalled: it waits its turn
            if not cut:
                for item in part.merge.release(self._reader(part)):
                    took = True
                    eff = part.engine.feed(item.raw, item.position, now=wall)
                    self._hold(part, eff)
                    batch.steps.append((part, eff, item.position, item))
                    if time.monotonic() >= until:
                        cut = True
                        break
            self._watch_merge(part, took, seeks)
            if self._live(part, wall):
                eff = part.engine.advance(wall - LIVE_LAG)
                if eff.outputs or eff.written:
                    batch.steps.append((part, eff, None, None))
        if batch.steps:
            await self._write(batch)
        for tp, offset in seeks:
            await self.app.consumer.seek(tp, offset)
        return cut and not self.rebalancing

    def _watch_merge(self, part: Part, took: bool, seeks: list[tuple[Any, int]]) -> None:
        """A merge holding records waits for inputs with nothing to read that are not caught up
        with the broker. One that has not delivered for `GAP_RESEEK` seconds is sought again at
        its next offset: Faust drops a record older than the last it delivered on its
        partition, so records fetched before a seek and delivered after it (then let go of as
        stale) can hide the records the seek asked for, for good. Every `MERGE_STALL` seconds
        the worker says what its merge waits for. The seeks are added to `seeks`."""
        now = time.monotonic()
        if took or not part.merge:
            part.stalled_since = now
            part.blocked_since.clear()
            return
        waiting = []
        for topic, queue in part.merge.queues.items():
            if queue or part.ahead.get(topic) or self._caught_up(part, topic) is not False:
                part.blocked_since.pop(topic, None)
                continue
            tp = faust.types.TP(topic, part.partition)
            high = self.app.consumer.highwater(tp)
            waiting.append(f"{topic} at {part.next.get(topic)} (high watermark {high})")
            since = part.blocked_since.setdefault(topic, now)
            if now - since >= GAP_RESEEK:
                part.blocked_since[topic] = now
                seeks.append((tp, part.next.get(topic, 0)))
        if now - part.stalled_since >= MERGE_STALL:
            part.stalled_since = now
            log.warning(
                "partition %d: %d records wait in the merge for %s",
                part.partition,
                len(part.merge),
                "; ".join(waiting) or "inputs the broker has not answered for",
            )

    @staticmethod
    def _hold(part: Part, eff: Effects) -> None:
        t = eff.intake.event_time if eff.intake else None
        held = part.engine.settled
        if t is not None and (held is None or t < held):
            part.engine.settled = t

    def _positions(self, part: Part) -> bytes:
        """Where each input stands: its first offset not yet decided (the head of its queue in
        the merge, else the next one to come), and the offsets decided ahead of it."""
        out: dict[str, list[Any]] = {}
        for topic in self.sources:
            queue = part.merge.queues[topic]
            mark = queue[0].offset if queue else part.next.get(topic, 0)
            ahead = part.decided_ahead.get(topic)
            if ahead:
                ahead.difference_update([o for o in ahead if o < mark])
            out[topic] = [mark, sorted(ahead or ())]
        return json.dumps(out).encode()

    def _live(self, part: Part, wall: datetime) -> bool:
        """Whether the partition runs on the wall clock now: it has read everything there is,
        and its events are live (their time is near the wall clock) or have stopped coming for
        `IDLE` — a history still streaming in is decided by its own time."""
        if self.s.clock != "live" or part.merge:
            return False
        if not all(self._caught_up(part, t) is True for t in self.sources):
            return False
        live = wall - part.engine.clock <= timedelta(seconds=self.s.live_window)
        return live or time.monotonic() - part.arrived >= IDLE

    async def _write(self, batch: Batch) -> None:
        """Deliver, record, then store, then acknowledge: see the module's docstring."""
        producer = self.app.producer
        forward = [(eff, item) for _, eff, _, item in batch.steps if eff.forward_to]
        for part, eff, _, item in batch.steps:
            for out in eff.outputs:
                value = out.model_dump_json(exclude_none=True).encode()
                for rec in self.topics.records_for(out):
                    await producer.send(
                        rec.topic,
                        rec.key.encode() if rec.key else None,
                        value,
                        part.partition,
                        None,
                        CE_HEADERS,
                    )
                    m.EVENTS_OUT.labels(rec.topic, out.type).inc()
            self._observe(eff, item)
        for eff, item in forward:
            assert item is not None and eff.forward_to is not None
            doc = Forwarded(
                received_from=item.position.received_from,
                position=item.position.offset or 0,
                timestamp=item.timestamp() or 0,
                payload=item.raw if isinstance(item.raw, str) else item.raw.decode(),
            )
            await producer.send(
                self.forwarded_name,
                eff.forward_to.encode(),
                doc.model_dump_json().encode(),
                None,
                None,
                None,
            )
        await producer.flush()
        self.broker_seen = time.monotonic()
        if self.ledger is not None:
            for _, eff, at, _ in batch.steps:
                if not eff.forward_to:
                    self.ledger.record(eff, at or Position("clock", None))
            await asyncio.to_thread(self.ledger.flush)
        # The state, one changelog record per changed bucket, each waited for: Faust's own
        # buffer can give up flushing under load and let the offsets be committed first.
        sent = []
        for part, writes in _writes_by_part(batch):
            with _writing_to(part):
                # The positions go last, in the same changelog partition: when they are
                # there, so is every bucket written before them.
                pos_key = positions_key(part.partition).encode()
                writes_pos = self._positions(part)
                for key, bucket in writes.items():
                    k = key.encode()
                    if bucket is None:
                        sent.append(
                            self.table.send_changelog(
                                part.partition, k, None, value_serializer="raw"
                            )
                        )
                        if k in self.table.data:
                            del self.table.data[k]
                    else:
                        v = dump_bucket(bucket)
                        sent.append(self.table.send_changelog(part.partition, k, v))
                        self.table.data[k] = v
                if writes_pos != part.positions_written:
                    sent.append(self.table.send_changelog(part.partition, pos_key, writes_pos))
                    self.table.data[pos_key] = writes_pos
                    part.positions_written = writes_pos
        if sent:
            await asyncio.gather(*sent)
        for part, _, _, item in batch.steps:
            if item is not None:
                item.ack()
                where = item.where()
                part.unwritten.discard(where)
                for copy in part.copies.pop(where, ()):
                    copy.ack()

    def _observe(self, eff: Effects, item: Item | None) -> None:
        for out in eff.outputs:
            if out.type == "minhu.event.rejected":
                m.DEAD_LETTERS.labels(out.data.error_kind).inc()  # type: ignore[attr-defined]
            elif out.type == "minhu.case.escalated":
                reason = out.data.reason  # type: ignore[attr-defined]
                m.ESCALATIONS.labels(reason).inc()
                if reason in ("ack_timeout", "resolve_timeout"):
                    m.SLA_BREACHES.labels(reason.removesuffix("_timeout")).inc()
            elif out.type == "minhu.case.routed" and item is not None:
                ts = item.timestamp()
                if ts:
                    m.ROUTING_LATENCY.observe(max(time.time() - ts, 0.0))  # seconds
        if eff.outcome == "duplicate":
            m.DUPLICATES.inc()
        if eff.refusal is not None and eff.refusal.kind == "unauthorized" and eff.intake:
            auth_log.warning(
                "refused %s %s: %s",
                eff.intake.event_type,
                eff.intake.identity[1] if eff.intake.identity else None,
                eff.refusal.reason,
            )

    # ---- the clock, the broker ----------------------------------------------------------------

    async def _tick(self) -> None:
        if not await self._broker_reachable():
            lost = time.monotonic() - self.broker_seen
            if lost > self.s.broker_timeout:
                log.critical(
                    "lost the broker %s for %.0f s: exiting (status %d) so that a supervisor "
                    "restarts this worker",
                    self.s.broker,
                    lost,
                    EXIT_BROKER_LOST,
                )
                logging.shutdown()
                os._exit(EXIT_BROKER_LOST)
            return
        self.broker_seen = time.monotonic()
        if self.rebalancing:
            return
        async with self.lock:
            await self._ensure_built()
            await self._decide()

    async def _broker_reachable(self) -> bool:
        for address in self.s.broker.split(","):
            host, _, port = address.strip().rpartition(":")
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(host or "127.0.0.1", int(port)), timeout=2.0
                )
            except (OSError, TimeoutError, ValueError):
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True
        return False

    def ready(self) -> bool:
        return (
            not self.rebalancing
            and not self.rebuild
            and time.monotonic() - self.broker_seen < max(2 * self.s.tick_seconds, 5.0)
        )


class MetricsView(View):
    """/metrics: Prometheus' text format."""

    async def get(self, request: Request) -> Response:
        return self.bytes(generate_latest(REGISTRY), content_type="text/plain; version=0.0.4")


def _crash() -> None:
    # Faust would leave a crashed agent dead and the worker up, deciding nothing. Exit
    # instead: the supervisor restarts the worker, which reads again what it had not
    # acknowledged (the engine refuses bad records; this is a bug, and it is loud).
    log.critical("deciding failed: exiting (status %d)", EXIT_CRASHED, exc_info=True)
    logging.shutdown()
    os._exit(EXIT_CRASHED)


def _ready_view(worker: MinhuWorker) -> type[View]:
    class ReadyView(View):
        """/ready: 200 when the worker holds its partitions and reaches its broker."""

        async def get(self, request: Request) -> Response:
            ok = worker.ready()
            body = {"ready": ok, "partitions": sorted(worker.parts)}
            return self.json(body, status=200 if ok else 503)

    return ReadyView


class OpenCases:
    """`minhu_open_cases{tier}`: counted from the engines' buckets at each scrape."""

    def __init__(self, worker: MinhuWorker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily(
            "minhu_open_cases", "Open cases held by this worker's partitions", labels=["tier"]
        )
        counts: dict[str, int] = {}
        for part in list(self.worker.parts.values()):
            store = part.engine.store
            assert isinstance(store, DictStore)
            for bucket in list(store.buckets.values()):
                for case in bucket.cases.values():
                    if case.status != "closed":
                        counts[case.tier.value] = counts.get(case.tier.value, 0) + 1
        for tier, n in sorted(counts.items()):
            g.add_metric([tier], n)
        yield g


def _writes_by_part(batch: Batch) -> Iterator[tuple[Part, dict[str, Any]]]:
    writes: dict[int, tuple[Part, dict[str, Any]]] = {}
    for part, eff, _, _ in batch.steps:
        writes.setdefault(part.partition, (part, {}))[1].update(eff.written)
    yield from writes.values()


@contextlib.contextmanager
def _writing_to(part: Part) -> Iterator[None]:
    """Table writes outside an event go to this partition (RocksDB's store asks the event
    being processed which partition a key is in)."""
    assert part.shim is not None
    token = _current_event.set(weakref.ref(part.shim))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


def run_worker(
    settings: WorkerSettings, rules: Rules, registry: Registry, loglevel: str = "info"
) -> None:
    """Start a worker in this process; returns when it is stopped (SIGTERM or Ctrl-C)."""
    from streams.drivers.kafka.admin import partitions_to_use

    partitions = partitions_to_use(settings)
    worker = MinhuWorker(settings, rules, registry, partitions)
    runner = faust.Worker(worker.app, loglevel=loglevel, quiet=True)
    # Faust's terminal spinner turns every logger up to DEBUG (to spin on each message) when
    # the level is WARN or above: a tenth of the worker's time went into aiokafka's debug lines.
    runner.spinner = None
    runner.execute_from_commandline()


__all__ = ["MinhuWorker", "run_worker"]
