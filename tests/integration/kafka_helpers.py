"""Starting workers and reading topics in the Kafka integration tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer

from handlers.registry import Registry
from handlers.rules import Rules
from streams.drivers.embedded import EmbeddedRunner
from streams.topics import Record, Topics


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
            MINHU_PARTITIONS=str(self.partitions),
            MINHU_SESSION_TIMEOUT="6",
            MINHU_HEARTBEAT_INTERVAL="1",
            **extra,
        )
        return env

    def create_topics(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "streams.cli", "topics", "create"],
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=120,
        )


class Worker:
    """A `minhu worker` subprocess with its own metrics port."""

    def __init__(self, dep: Deployment, log_dir: Path, name: str, **extra_env: str) -> None:
        self.port = free_port()
        self.log = log_dir / f"{name}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "info"],
                env=dep.env(MINHU_METRICS_PORT=str(self.port), **extra_env),
                cwd=log_dir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def metrics(self) -> dict[str, float]:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2)
        except OSError:
            return {}
        out: dict[str, float] = {}
        for line in text.read().decode().splitlines():
            if line.startswith("minhu_") and "_created" not in line:
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def events_in(self) -> float:
        return sum(v for k, v in self.metrics().items() if k.startswith("minhu_events_in_total"))

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


def read_topics(
    broker: str,
    topics: Iterable[str],
    until: Callable[[list[tuple[str, dict[str, Any]]]], bool],
    timeout_s: float = 120,
) -> list[tuple[str, dict[str, Any]]]:
    """(topic, CloudEvent) pairs from `topics`, read from the start by a fresh group, until
    `until(values)` holds or `timeout_s` passes."""
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=broker,
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        enable_auto_commit=False,
    )
    values: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not until(values):
            for records in consumer.poll(timeout_ms=1000).values():
                values.extend((r.topic, json.loads(r.value)) for r in records)
    finally:
        consumer.close()
    return values


def expected_from_route(rules: Rules, registry: Registry, lines: list[str]) -> list[Record]:
    """What `minhu route` produces for the same lines (the reference)."""
    out: list[Record] = []
    runner = EmbeddedRunner(rules, registry, out.append)
    for n, line in enumerate(lines, start=1):
        runner.feed(line, "reference", n)
    return out


def decisions(values: Iterable[Any]) -> dict[str, tuple[str, str, str, str]]:
    """case id -> (tier, unit, rule, category) of every case.routed (dicts or models)."""
    out = {}
    for v in values:
        d = v if isinstance(v, dict) else json.loads(v.model_dump_json())
        if d["type"] == "minhu.case.routed":
            data = d["data"]
            out[data["case_id"]] = (
                data["tier"],
                data["unit_id"],
                data["rule_id"],
                data["category"],
            )
    return out
