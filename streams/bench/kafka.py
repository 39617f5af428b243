"""`minhu bench kafka`: one worker against a raw passthrough on the same broker, and the
latency of a gas alarm while other traffic flows.

1. **Throughput.** The same intake records are published to two fresh sets of topics. One
   `minhu worker` routes the first set; a passthrough app (Faust, the same client library,
   consume → produce, no decisions) copies the second. Each rate is records in divided by the
   span between the first and the last output record's broker timestamps, so start-up and
   group joins do not count. `ratio` = worker / passthrough.
2. **Latency.** While a background producer publishes about `rate` intake records per second,
   a probe publishes a gas alarm every 100 ms and waits for its record on the grid dispatch
   topic; p50 and p99 of publish → arrival at a consumer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

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


def _outputs_span(
    broker: str, topics: Iterable[str], expected: int, timeout_s: float, count: Any
) -> tuple[int, float]:
    """Read `topics` from the start until `count(values)` reaches `expected`; return the
    records counted and the span of their broker timestamps (seconds)."""
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=broker,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
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


def throughput(
    broker: str, rules: Rules, registry: Registry, events: int, partitions: int
) -> dict[str, Any]:
    lines = [line for line in StreamGenerator(registry, seed=3).lines(events) if '"minhu.' in line]
    run = uuid.uuid4().hex[:6]
    worker_t, pass_t = Topics(f"bw{run}."), Topics(f"bp{run}.")
    for t, app in ((worker_t, f"bench-w-{run}"), (pass_t, f"bench-p-{run}")):
        create_topics(broker, plan(t, app, partitions, 3_600_000, 3_600_000))
    create_topics(broker, [TopicPlan(pass_t.prefix + PASSTHROUGH_OUT, partitions, 3_600_000)])
    sent_lines = _publish_all(broker, worker_t, lines, rules, registry)
    _publish_all(broker, pass_t, lines, rules, registry)
    sent = len(sent_lines)
    distinct = len({(d.get("source"), d.get("id")) for d in map(_loads, sent_lines) if d})

    results: dict[str, Any] = {"records": sent}
    for name, topics, app, cmd, outs in (
        (
            "worker",
            worker_t,
            f"bench-w-{run}",
            [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "warning"],
            [*(worker_t.dispatch(t) for t in Tier), worker_t.deadletter],
        ),
        (
            "passthrough",
            pass_t,
            f"bench-p-{run}",
            [sys.executable, "-m", "streams.bench.kafka", "passthrough"],
            [pass_t.prefix + PASSTHROUGH_OUT],
        ),
    ):
        proc = subprocess.Popen(
            cmd,
            env=_env(broker, topics.prefix, app, partitions),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            count = _origin if name == "worker" else (lambda r: f"{r.partition}:{r.offset}")
            # the worker answers each distinct event once (duplicates are dropped)
            n, span = _outputs_span(
                broker, outs, distinct if name == "worker" else sent, 600, count
            )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        results[f"{name}_records_out"] = n
        results[f"{name}_events_per_s"] = round(n / span) if span and span > 0 else None
    w, p = results["worker_events_per_s"], results["passthrough_events_per_s"]
    results["ratio"] = round(w / p, 3) if w and p else None
    return results


def latency(
    broker: str, rules: Rules, registry: Registry, rate: int, seconds: float, partitions: int
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    topics, app = Topics(f"bl{run}."), f"bench-l-{run}"
    create_topics(broker, plan(topics, app, partitions, 3_600_000, 3_600_000))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "warning"],
        env=_env(broker, topics.prefix, app, partitions),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    consumer = KafkaConsumer(
        topics.dispatch(Tier.GRID),
        bootstrap_servers=broker,
        group_id=f"probe-{run}",
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    gas = sorted(
        (s for s in registry.sensors.values() if AlarmType.GAS_LEAK in s.alarm_types),
        key=lambda s: s.id,
    )
    stop = threading.Event()
    background = StreamGenerator(registry, seed=5)
    sent_bg = [0]
    flow_span = [0.0, 0.0]  # when the background flow started and stopped (monotonic)

    def flow() -> None:
        flow_span[0] = time.monotonic()
        with Publisher(broker, rules, registry, topics) as pub:
            while not stop.is_set():
                started = time.monotonic()
                for _ in range(rate // 10):
                    doc = (
                        background.appeal(datetime.now(UTC))
                        if sent_bg[0] % 5
                        else background.patrol(datetime.now(UTC))
                    )
                    pub.publish(json.dumps(doc, ensure_ascii=False))
                    sent_bg[0] += 1
                pub.flush()
                time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
        flow_span[1] = time.monotonic()

    probe = KafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=0)
    samples: list[float] = []
    pending: dict[str, float] = {}
    warm = threading.Thread(target=flow, daemon=True)
    try:
        # Wait until the worker answers one alarm before measuring.
        _probe(probe, topics, gas[0], pending, "warm-up")
        _collect(consumer, pending, [], 120)
        warm.start()
        time.sleep(2)
        t_end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < t_end:
            _probe(probe, topics, gas[i % len(gas)], pending, f"{run}-{i}")
            i += 1
            _collect(consumer, pending, samples, 0.1)
        _collect(consumer, pending, samples, 10)
    finally:
        stop.set()
        if warm.is_alive():
            warm.join(timeout=30)
        consumer.close()
        probe.close()
        proc.terminate()
        proc.wait(timeout=30)
    samples.sort()

    def pct(q: float) -> float | None:
        return (
            round(samples[min(len(samples) - 1, int(q * len(samples)))] * 1000, 1)
            if samples
            else None
        )

    return {
        "background_rate_per_s": round(sent_bg[0] / max(flow_span[1] - flow_span[0], 1e-9)),
        "probes": i,
        "answered": len(samples),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
    }


def _probe(
    producer: KafkaProducer, topics: Topics, sensor: Any, pending: dict[str, float], tag: str
) -> None:
    event_id = f"probe-{tag}"
    doc = {
        "specversion": "1.0",
        "id": event_id,
        "source": f"/gateway/{sensor.gateway}",
        "type": "minhu.alarm.raised",
        "time": datetime.now(UTC).isoformat(),
        "data": {
            "sensor_id": sensor.id,
            "gateway_id": sensor.gateway,
            "alarm_type": "gas_leak",
            "reading": 40.0,
            "threshold": 25.0,
        },
    }
    pending[event_id] = time.monotonic()
    producer.send(
        topics.intake("alarm"),
        key=f"alarm|{sensor.id}|gas_leak".encode(),
        value=json.dumps(doc).encode(),
    )
    producer.flush()


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


if __name__ == "__main__" and sys.argv[1:] == ["passthrough"]:
    passthrough_main()
