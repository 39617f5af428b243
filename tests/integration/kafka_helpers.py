"""Starting workers, publishing, and reading and comparing topics in the Kafka tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer

from handlers.registry import Registry
from handlers.rules import Rules
from schemas import Tier
from streams.drivers.embedded import EmbeddedRunner
from streams.drivers.kafka.publisher import Publisher
from streams.drivers.ledger import Ledger
from streams.topics import Record, Topics

MINHU = [sys.executable, "-m", "streams.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Deployment:
    """One test's topics and app id on the shared broker."""

    broker: str
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}.")
    app_id: str = field(default_factory=lambda: f"app-{uuid.uuid4().hex[:8]}")
    partitions: int = 4

    @property
    def topics(self) -> Topics:
        return Topics(self.prefix)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            MINHU_BROKER=self.broker,
            MINHU_TOPIC_PREFIX=self.prefix,
            MINHU_APP_ID=self.app_id,
            MINHU_SESSION_TIMEOUT="6",
            MINHU_HEARTBEAT_INTERVAL="1",
            **extra,
        )
        return env

    def create_topics(self) -> None:
        subprocess.run(
            [*MINHU, "topics", "create", "--partitions", str(self.partitions)],
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def outputs(self) -> list[str]:
        t = self.topics
        return [*(t.dispatch(x) for x in Tier), t.closures, t.ratings, t.district, t.deadletter]


class Worker:
    """A `minhu worker` subprocess with its own metrics port."""

    def __init__(self, dep: Deployment, log_dir: Path, name: str, **extra_env: str) -> None:
        self.port = free_port()
        self.log = log_dir / f"{name}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*MINHU, "worker", "--loglevel", "info"],
                env=dep.env(MINHU_METRICS_PORT=str(self.port), **extra_env),
                cwd=log_dir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError:
            return 0, ""

    def ready(self) -> dict[str, Any] | None:
        status, body = self.get("/ready")
        return json.loads(body) if status == 200 else None

    def metrics(self) -> dict[str, float]:
        status, text = self.get("/metrics")
        out: dict[str, float] = {}
        for line in text.splitlines() if status == 200 else []:
            if line.startswith("minhu_") and "_created" not in line:
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def events_in(self) -> float:
        return sum(v for k, v in self.metrics().items() if k.startswith("minhu_events_in_total"))

    def wait_events_in(self, at_least: float, timeout_s: float = 60) -> float:
        """Wait until the worker has taken `at_least` records (or `timeout_s` has passed, or
        it has stopped taking any for 10 s); return how many it has taken."""
        deadline = time.monotonic() + timeout_s
        seen, moved = 0.0, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - moved < 10:
            n = self.events_in()
            if n >= at_least:
                return n
            if n > seen:
                seen, moved = n, time.monotonic()
            time.sleep(0.05)
        return seen

    def wait_ready(self, timeout_s: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.tail()
            ready = self.ready()
            if ready is not None:
                return ready
            time.sleep(0.3)
        raise AssertionError(f"worker not ready in {timeout_s} s:\n{self.tail()}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def publish(dep: Deployment, rules: Rules, registry: Registry, lines: Iterable[str]) -> list[str]:
    """Publish through the validating publisher; return the lines it sent."""
    sent = []
    with Publisher(dep.broker, rules, registry, dep.topics) as pub:
        for n, line in enumerate(lines, start=1):
            if pub.publish(line, n).ok:
                sent.append(line)
    return sent


Rec = dict[str, Any]  # {"topic": without the prefix, "key": ..., "value": CloudEvent as a dict}


def count_records(broker: str, topic: str, quiet_s: float = 3.0) -> int:
    """How many records a topic holds, read from the start (the test broker's end offsets are
    not to be trusted), until nothing new has come for `quiet_s`."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=int(quiet_s * 1000),
    )
    try:
        return sum(1 for _ in consumer)
    finally:
        consumer.close()


def read(
    dep: Deployment,
    until: Callable[[list[Rec]], bool],
    timeout_s: float = 240,
    grace_s: float = 2.0,
    topics: list[str] | None = None,
) -> list[Rec]:
    """Records of the output topics, read from the start by a fresh group, until `until`
    holds (then `grace_s` more, for anything extra), or nothing new has come for `timeout_s`
    (a loaded machine is slow, not stuck: the wait is for progress, not for a deadline)."""
    consumer = KafkaConsumer(
        *(topics or dep.outputs()),
        bootstrap_servers=dep.broker,
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        enable_auto_commit=False,
        max_poll_records=5000,
    )
    got: list[Rec] = []
    deadline = time.monotonic() + timeout_s
    satisfied_at: float | None = None
    try:
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                deadline = time.monotonic() + timeout_s
                for r in records:
                    got.append(
                        {
                            "topic": r.topic.removeprefix(dep.prefix),
                            "key": r.key.decode() if r.key is not None else None,
                            "value": json.loads(r.value),
                        }
                    )
            if satisfied_at is None and until(got):
                satisfied_at = time.monotonic()
            if satisfied_at is not None and time.monotonic() - satisfied_at >= grace_s:
                break
    finally:
        consumer.close()
    return got


def reference(
    rules: Rules, registry: Registry, lines: list[str], until: datetime | None = None
) -> list[Rec]:
    """What `minhu route --until` gives for the same lines (by default until now)."""
    out: list[Record] = []
    runner = EmbeddedRunner(rules, registry, out.append)
    for n, line in enumerate(lines, start=1):
        runner.feed(line, "reference", n)
    runner.finish(until or datetime.now(UTC))
    return [
        {
            "topic": r.topic.removeprefix("minhu."),
            "key": r.key,
            "value": json.loads(r.to_json_line())["value"],
        }
        for r in out
    ]


def canonical(rec: Rec) -> str:
    """A record as text, without what depends on where it was read (a dead letter's
    `received_from` and `position`: a file and line there, a topic partition and offset here)."""
    value = rec["value"]
    if value.get("type") == "minhu.event.rejected":
        data = {k: v for k, v in value["data"].items() if k not in ("received_from", "position")}
        value = {**value, "data": data}
    return json.dumps({**rec, "value": value}, ensure_ascii=False, sort_keys=True)


def distinct(recs: Iterable[Rec]) -> set[str]:
    return {canonical(r) for r in recs}


def covers(expected: set[str]) -> Callable[[list[Rec]], bool]:
    seen: set[str] = set()
    done = [0]

    def check(got: list[Rec]) -> bool:
        for r in got[done[0] :]:
            seen.add(canonical(r))
        done[0] = len(got)
        return expected <= seen

    return check


def routed_values(recs: Iterable[Rec]) -> dict[str, set[str]]:
    """case id -> the distinct `minhu.case.routed` values seen for it (more than one is a case
    decided twice)."""
    out: dict[str, set[str]] = {}
    for r in recs:
        v = r["value"]
        if v["type"] == "minhu.case.routed":
            out.setdefault(v["data"]["case_id"], set()).add(json.dumps(v, sort_keys=True))
    return out


def types(recs: Iterable[Rec]) -> Counter[str]:
    return Counter(r["value"]["type"] for r in recs)


def embedded_ledger(
    url: str, rules: Rules, registry: Registry, lines: list[str], until: datetime
) -> None:
    runner = EmbeddedRunner(rules, registry, ledger=Ledger(url))
    for n, line in enumerate(lines, start=1):
        runner.feed(line, "reference", n)
    runner.finish(until)
    runner.close()
