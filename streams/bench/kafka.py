"""`minhu bench kafka`: the worker against plain consume → produce jobs on the same broker,
and the latency of a gas alarm, idle and while the appeal intake is saturated.

Prints one JSON object (all figures from the same run, on the same broker):

1. **Throughput.** The same intake records are published to fresh sets of topics, one set per
   job; each job then drains its set. A job's rate is records in divided by the span between
   its first and last output record's broker timestamps, so start-up and group joins do not
   count. The jobs: `worker` (one `minhu worker`), `two_workers` (two in one group, same
   partitions), `passthrough` (a Faust agent copying bytes, the same client library as the
   worker) and `aiokafka` (a hand-written aiokafka loop copying batches). `ratio` = worker /
   passthrough; `scale_ratio` = two workers / one.
2. **Latency.** A probe publishes a gas alarm every 100 ms and waits for its record on the
   grid dispatch topic; publish → arrival at a consumer. First with nothing else flowing
   (`idle_p50_ms`, `idle_p99_ms`), then while a background producer publishes appeals and
   patrol reports at `rate` per second, faster than the worker routes them (`p50_ms`,
   `p99_ms`, with `background_rate_per_s`, `background_routed_per_s` and the backlog reached,
   `backlog_records`: published but not yet routed when the probing stopped).
3. **The floor.** The same probes, read off the alarm topic by a plain aiokafka consumer in a
   process of its own (`transit_idle_p99_ms`, `transit_p50_ms`, `transit_p99_ms`): publish →
   broker → a client that decides nothing, under the same load. What the worker adds is the
   difference: the alarm's wait inside the worker's one process, whose event loop and
   interpreter lock also serve the backlog.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer

from handlers.registry import Registry
from handlers.rules import Rules
from schemas import AlarmType, Tier
from streams.drivers.kafka.admin import TopicPlan, create_topics, plan
from streams.drivers.kafka.publisher import Publisher
from streams.simulation.synthetic import StreamGenerator
from streams.topics import INTAKE_KINDS, Topics

PASSTHROUGH_OUT = "passthrough.out"


def _env(broker: str, prefix: str, app_id: str, partitions: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MINHU_BROKER=broker,
        MINHU_TOPIC_PREFIX=prefix,
        MINHU_APP_ID=app_id,
        MINHU_PARTITIONS=str(partitions),
        MINHU_SESSION_TIMEOUT="6",
        MINHU_HEARTBEAT_INTERVAL="1",
        MINHU_METRICS_PORT="",
    )
    return env


def _reader(broker: str, topics: Iterable[str], group: str, **config: Any) -> KafkaConsumer:
    """A consumer of `topics` from their start, in a group of its own, committing nothing."""
    return KafkaConsumer(
        *topics,
        bootstrap_servers=broker,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        **config,
    )


def _answers(topics: Topics) -> list[str]:
    """Where a worker answers: the dispatch topics of every tier, and the dead letters."""
    return [*(topics.dispatch(t) for t in Tier), topics.deadletter]


def _outputs_span(
    broker: str, topics: Iterable[str], expected: int, timeout_s: float, count: Any
) -> tuple[int, float]:
    """Read `topics` from the start until `count(values)` reaches `expected`; return the
    records counted and the span of their broker timestamps (seconds)."""
    consumer = _reader(broker, topics, f"bench-{uuid.uuid4().hex[:8]}")
    stamps: list[int] = []
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(seen) < expected:
            for records in consumer.poll(timeout_ms=1000).values():
                for r in records:
                    key = count(r)
                    if key is not None and key not in seen:
                        seen.add(key)
                        stamps.append(r.timestamp)
    finally:
        consumer.close()
    return len(seen), (max(stamps) - min(stamps)) / 1000 if len(stamps) > 1 else float("nan")


def _origin(record: Any) -> str | None:
    doc = json.loads(record.value)
    origin = doc.get("data", {}).get("origin")
    if origin is None:
        event_id = doc.get("data", {}).get("event_id")  # a dead letter
        return None if event_id is None else str(event_id)
    return str(origin["event_id"])


def _loads(line: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _publish_all(
    broker: str, topics: Topics, lines: list[str], rules: Rules, registry: Registry
) -> list[str]:
    """Publish through the validating publisher; the lines it sent."""
    with Publisher(broker, rules, registry, topics) as pub:
        return [line for n, line in enumerate(lines) if pub.publish(line, n).ok]


WORKER_CMD = [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "warning"]
JOBS = ("worker", "two_workers", "passthrough", "aiokafka")


def _start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    procs = list(procs)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def throughput(
    broker: str, rules: Rules, registry: Registry, events: int, partitions: int
) -> dict[str, Any]:
    lines = [
        line
        for line in StreamGenerator(registry, seed=3, varied=True).lines(events)
        if '"minhu.' in line
    ]
    run = uuid.uuid4().hex[:6]
    results: dict[str, Any] = {}
    for job in JOBS:
        topics, app = Topics(f"b{job[:2]}{run}."), f"bench-{job}-{run}"
        create_topics(broker, plan(topics, app, partitions, 3_600_000, 3_600_000))
        if job in ("passthrough", "aiokafka"):
            out = topics.prefix + PASSTHROUGH_OUT
            create_topics(broker, [TopicPlan(out, partitions, 3_600_000)])
            cmds = [[sys.executable, "-m", "streams.bench.kafka", job]]
            outs: list[str] = [out]
            count: Callable[[Any], str | None] = _position
        else:
            cmds = [WORKER_CMD] * (2 if job == "two_workers" else 1)
            outs = _answers(topics)
            count = _origin
        sent_lines = _publish_all(broker, topics, lines, rules, registry)
        if job in ("worker", "two_workers"):
            # the worker answers each distinct event once (duplicates are dropped)
            expected = len({(d.get("source"), d.get("id")) for d in map(_loads, sent_lines) if d})
        else:
            expected = len(sent_lines)
        results.setdefault("records", len(sent_lines))
        procs = [_start(cmd, _env(broker, topics.prefix, app, partitions)) for cmd in cmds]
        try:
            n, span = _outputs_span(broker, outs, expected, 600, count)
        finally:
            _stop(procs)
        results[f"{job}_records_out"] = n
        results[f"{job}_events_per_s"] = round(n / span) if span and span > 0 else None

    def over(a: str, b: str) -> float | None:
        x, y = results.get(f"{a}_events_per_s"), results.get(f"{b}_events_per_s")
        return round(x / y, 3) if x and y else None

    results["ratio"] = over("worker", "passthrough")
    results["ratio_vs_aiokafka"] = over("worker", "aiokafka")
    results["scale_ratio"] = over("two_workers", "worker")
    return results


def _position(record: Any) -> str:
    return f"{record.partition}:{record.offset}"


class _Routed(threading.Thread):
    """Counts the distinct events the worker has answered on its output topics, by origin."""

    def __init__(self, broker: str, topics: Topics) -> None:
        super().__init__(daemon=True)
        self.consumer = _reader(broker, _answers(topics), f"routed-{uuid.uuid4().hex[:8]}")
        self.seen: set[str] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                for records in self.consumer.poll(timeout_ms=200).values():
                    for r in records:
                        origin = _origin(r)
                        if origin is not None and not origin.startswith("probe-"):
                            self.seen.add(origin)
        finally:
            self.consumer.close()


def latency(
    broker: str, rules: Rules, registry: Registry, rate: int, seconds: float, partitions: int
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    topics, app = Topics(f"bl{run}."), f"bench-l-{run}"
    create_topics(broker, plan(topics, app, partitions, 3_600_000, 3_600_000))
    proc = _start(WORKER_CMD, _env(broker, topics.prefix, app, partitions))
    # an operations room's client, waiting for the next dispatch: a 5 ms fetch wait
    consumer = _reader(broker, [topics.dispatch(Tier.GRID)], f"probe-{run}", fetch_max_wait_ms=5)
    gas = sorted(
        (s for s in registry.sensors.values() if AlarmType.GAS_LEAK in s.alarm_types),
        key=lambda s: s.id,
    )
    stop = threading.Event()
    background = StreamGenerator(registry, seed=5, varied=True)
    sent_bg = [0]
    flow_span = [0.0, 0.0]  # when the background flow started and stopped (monotonic)

    def flow() -> None:
        flow_span[0] = time.monotonic()
        with Publisher(broker, rules, registry, topics) as pub:
            while not stop.is_set():
                started = time.monotonic()
                for _ in range(max(1, rate // 10)):
                    doc = (
                        background.appeal(datetime.now(UTC))
                        if sent_bg[0] % 5
                        else background.patrol(datetime.now(UTC))
                    )
                    if pub.publish(json.dumps(doc, ensure_ascii=False)).ok:
                        sent_bg[0] += 1
                pub.flush()
                time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
        flow_span[1] = time.monotonic()

    transit = Transit(broker, topics.intake("alarm"))
    probe = Publisher(broker, rules, registry, topics)
    idle: list[float] = []
    busy: list[float] = []
    pending: dict[str, float] = {}
    routed = _Routed(broker, topics)
    load = threading.Thread(target=flow, daemon=True)
    probes = [0]

    def probing(samples: list[float], span: float) -> None:
        t_end = time.monotonic() + span
        while time.monotonic() < t_end:
            _probe(probe, gas[probes[0] % len(gas)], pending, f"{run}-{probes[0]}")
            probes[0] += 1
            _collect(consumer, pending, samples, 0.1)
        _collect(consumer, pending, samples, 10)

    try:
        # Wait until the worker answers one alarm before measuring.
        _probe(probe, gas[0], pending, "warm-up")
        _collect(consumer, pending, [], 120)
        probing(idle, seconds)
        idle_tags = set(transit.seen)
        routed.start()
        load.start()
        time.sleep(2)
        probing(busy, seconds)
        stop.set()
        load.join(timeout=30)
        backlog = sent_bg[0] - len(routed.seen)
        routed_bg = len(routed.seen)
    finally:
        stop.set()
        routed.stop.set()
        consumer.close()
        probe.close()
        _stop([proc])
        floor = transit.stop()
    transit_idle = [t for tag, t in floor.items() if tag in idle_tags and tag != "probe-warm-up"]
    transit_busy = [t for tag, t in floor.items() if tag not in idle_tags]
    busy_s = max(flow_span[1] - flow_span[0], 1e-9)
    return {
        "idle_probes": len(idle),
        "idle_p50_ms": _pct(idle, 0.5),
        "idle_p99_ms": _pct(idle, 0.99),
        "probes": probes[0],
        "answered": len(idle) + len(busy),
        "p50_ms": _pct(busy, 0.5),
        "p99_ms": _pct(busy, 0.99),
        "background_rate_per_s": round(sent_bg[0] / busy_s),
        "background_routed_per_s": round(routed_bg / busy_s),
        "backlog_records": backlog,
        "transit_idle_p99_ms": _pct(transit_idle, 0.99),
        "transit_p50_ms": _pct(transit_busy, 0.5),
        "transit_p99_ms": _pct(transit_busy, 0.99),
    }


class Transit:
    """The probes' transit alone: a plain consumer of the alarm topic, in a process of its own
    (`transit_main`), says how long after its publication each probe reached it."""

    def __init__(self, broker: str, topic: str) -> None:
        cmd = [sys.executable, "-m", "streams.bench.kafka", "transit", broker, topic]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.seen: dict[str, float] = {}
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            tag, _, seconds = line.decode().partition(" ")
            self.seen[tag] = float(seconds)

    def stop(self) -> dict[str, float]:
        time.sleep(0.5)  # the last probes' transit, already read, still on its way here
        _stop([self.proc])
        self.reader.join(timeout=10)
        return dict(self.seen)


def transit_main(broker: str, topic: str) -> None:
    """Print `<probe id> <seconds from its publication>` for each probe on `topic`."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    async def loop() -> None:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=5,
        )
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                now = time.time()
                for records in batch.values():
                    for r in records:
                        tag = (_loads(r.value.decode()) or {}).get("id") if r.value else None
                        if isinstance(tag, str) and tag.startswith("probe-"):
                            print(tag, f"{now - r.timestamp / 1000:.6f}", flush=True)
        finally:
            await consumer.stop()

    asyncio.run(loop())


def _pct(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def gas_alarm(sensor: Any, event_id: str, reading: float = 40.0) -> dict[str, Any]:
    """A live gas alarm of `sensor` (a critical one: it takes the life-safety lane)."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": f"/gateway/{sensor.gateway}",
        "type": "minhu.alarm.raised",
        "time": datetime.now(UTC).isoformat(),
        "data": {
            "sensor_id": sensor.id,
            "gateway_id": sensor.gateway,
            "alarm_type": "gas_leak",
            "reading": reading,
            "threshold": 25.0,
        },
    }


def _probe(publisher: Publisher, sensor: Any, pending: dict[str, float], tag: str) -> None:
    event_id = f"probe-{tag}"
    doc = gas_alarm(sensor, event_id)
    pending[event_id] = time.monotonic()
    publisher.publish(json.dumps(doc))
    publisher.flush()


def _collect(
    consumer: KafkaConsumer, pending: dict[str, float], samples: list[float], seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    while pending and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=50).values():
            arrived = time.monotonic()
            for r in records:
                origin = _origin(r)
                if origin in pending:
                    samples.append(arrived - pending.pop(origin))


def passthrough_main() -> None:
    """The passthrough app: intake topics → one output topic, bytes untouched."""
    import faust

    prefix = os.environ["MINHU_TOPIC_PREFIX"]
    topics = Topics(prefix)
    FAUST_TUNING: dict[str, Any] = {"producer_linger": 0.0, "web_enabled": False}

    app = faust.App(
        os.environ["MINHU_APP_ID"],
        broker=f"kafka://{os.environ['MINHU_BROKER']}",
        store="memory://",
        **FAUST_TUNING,
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        topic_partitions=int(os.environ["MINHU_PARTITIONS"]),
    )
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    source = app.topic(*(topics.intake(k) for k in INTAKE_KINDS), **raw)
    out = app.topic(prefix + PASSTHROUGH_OUT, **raw)

    async def copy(stream: Any) -> None:
        async for key, value in stream.items():
            await out.send(key=key, value=value)

    app.agent(source, name="copy")(copy)
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def aiokafka_main() -> None:
    """The hand-written loop: aiokafka, intake topics → one output topic, a batch at a time,
    bytes untouched, offsets committed after each batch is acknowledged."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    prefix = os.environ["MINHU_TOPIC_PREFIX"]
    topics = Topics(prefix)
    broker = os.environ["MINHU_BROKER"]

    async def loop() -> None:
        consumer = AIOKafkaConsumer(
            *(topics.intake(k) for k in INTAKE_KINDS),
            bootstrap_servers=broker,
            group_id=os.environ["MINHU_APP_ID"],
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=5)
        await consumer.start()
        await producer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=2000)
                sent = [
                    await producer.send(prefix + PASSTHROUGH_OUT, value=r.value, key=r.key)
                    for records in batch.values()
                    for r in records
                ]
                if sent:
                    await asyncio.gather(*sent)
                    await consumer.commit()
        finally:
            await producer.stop()
            await consumer.stop()

    asyncio.run(loop())


if __name__ == "__main__" and sys.argv[1:] == ["passthrough"]:
    passthrough_main()
elif __name__ == "__main__" and sys.argv[1:] == ["aiokafka"]:
    aiokafka_main()
elif __name__ == "__main__" and sys.argv[1:2] == ["transit"]:
    transit_main(sys.argv[2], sys.argv[3])
