"""minhu on a real Kafka-protocol broker (Tansu): publish → worker → consume, the same
decisions as `minhu route`, two workers sharing partitions, a worker killed with SIGKILL and
restarted, and the publisher refusing bad events."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from handlers.registry import Registry
from handlers.rules import Rules
from schemas import CaseAttached, EventRejected, Tier
from streams.drivers.kafka.publisher import Publisher
from streams.simulation.synthetic import StreamGenerator
from tests.integration.kafka_helpers import (
    Deployment,
    Worker,
    decisions,
    expected_from_route,
    read_topics,
)

pytestmark = pytest.mark.kafka

Pairs = list[tuple[str, dict[str, Any]]]


def publish(dep: Deployment, rules: Rules, registry: Registry, lines: list[str]) -> list[str]:
    """Publish through the validating publisher; return the lines it sent."""
    sent = []
    with Publisher(dep.broker, rules, registry, dep.topics) as pub:
        for n, line in enumerate(lines, start=1):
            if pub.publish(line, n).ok:
                sent.append(line)
    return sent


def wait_ready(*workers: Worker, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while any(not w.metrics() for w in workers):
        for w in workers:
            assert w.proc.poll() is None, w.log.read_text()
        assert time.monotonic() < deadline, "worker did not start"
        time.sleep(0.5)


def wait_for(check: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def ledger_cases(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("select count(*) from cases")).scalar_one())
    except Exception:  # the worker has not created its tables yet
        return -1
    finally:
        engine.dispose()


def outputs(dep: Deployment) -> list[str]:
    return [*(dep.topics.dispatch(t) for t in Tier), dep.topics.deadletter]


def routed_once_per_case(values: Pairs, dep: Deployment) -> Counter[str]:
    """How many case.routed records each case has on the dispatch topic of its own tier."""
    return Counter(
        v["data"]["case_id"]
        for topic, v in values
        if v["type"] == "minhu.case.routed"
        and topic == dep.topics.dispatch(Tier(v["data"]["tier"]))
    )


def has_all(expected: dict[str, Any]) -> Any:
    return lambda values: set(expected) <= set(decisions(v for _, v in values))


def test_publish_worker_consume_decides_as_route(
    broker: str, rules: Rules, registry: Registry, tmp_path: Path
) -> None:
    dep = Deployment(broker)
    dep.create_topics()
    lines = list(StreamGenerator(registry, seed=21).lines(400))
    ledger = f"sqlite:///{tmp_path / 'worker-ledger.db'}"
    worker = Worker(dep, tmp_path, "w1", MINHU_LEDGER=ledger)
    try:
        wait_ready(worker)
        sent = publish(dep, rules, registry, lines)
        assert len(sent) < len(lines)  # the broken records were refused by the publisher
        reference = expected_from_route(rules, registry, sent)
        expected = decisions(r.value for r in reference)
        values = read_topics(broker, outputs(dep), has_all(expected), timeout_s=150)
        got = decisions(v for _, v in values)
        assert got == expected
        assert set(routed_once_per_case(values, dep).values()) == {1}
        attached = {r.value.id for r in reference if isinstance(r.value, CaseAttached)}
        assert attached and attached <= {v["id"] for _, v in values}
        refused = {
            (r.value.data.event_id, r.value.data.error_kind)
            for r in reference
            if isinstance(r.value, EventRejected)
        }
        assert refused and refused <= {
            (v["data"]["event_id"], v["data"]["error_kind"])
            for _, v in values
            if v["type"] == "minhu.event.rejected"
        }
        m = worker.metrics()
        assert m["minhu_duplicates_total"] >= 1
        # The ledger is written in batches as the worker commits: every case gets there.
        assert wait_for(lambda: ledger_cases(ledger) == len(expected), 60), ledger_cases(ledger)
        assert any(
            k.startswith("minhu_routing_latency_seconds_count") and v > 0 for k, v in m.items()
        )

        # An operations centre follows its tier: readable lines, or JSON for a program.
        follow = subprocess.run(
            [
                sys.executable,
                "-m",
                "streams.cli",
                "consume",
                "--tier",
                "street",
                "--json",
                "--from-beginning",
                "--max",
                "3",
                "--idle-timeout",
                "30",
            ],
            env=dep.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        docs = [json.loads(line) for line in follow.stdout.splitlines()]
        assert len(docs) == 3 and all(d["type"].startswith("minhu.case.") for d in docs)
        unit = subprocess.run(
            [
                sys.executable,
                "-m",
                "streams.cli",
                "consume",
                "--tier",
                "grid",
                "--unit",
                "qy-g01",
                "--from-beginning",
                "--max",
                "1",
                "--idle-timeout",
                "30",
            ],
            env=dep.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert "qy-g01" in unit.stdout or "清源小区一期第1网格" in unit.stdout
    finally:
        worker.stop()


def test_two_workers_share_the_partitions(
    broker: str, rules: Rules, registry: Registry, tmp_path: Path
) -> None:
    dep = Deployment(broker)
    dep.create_topics()
    lines = list(StreamGenerator(registry, seed=22).lines(600))
    workers = [Worker(dep, tmp_path, "a"), Worker(dep, tmp_path, "b")]
    try:
        wait_ready(*workers)
        time.sleep(8)  # let the group settle with both members
        sent = publish(dep, rules, registry, lines)
        expected = decisions(r.value for r in expected_from_route(rules, registry, sent))
        values = read_topics(broker, outputs(dep), has_all(expected), timeout_s=180)
        assert decisions(v for _, v in values) == expected  # nothing lost
        assert set(routed_once_per_case(values, dep).values()) == {1}  # nothing routed twice
        assert all(w.events_in() > 0 for w in workers), "both workers took partitions"
    finally:
        for w in workers:
            w.stop()


def test_a_worker_killed_mid_stream_loses_nothing(
    broker: str, rules: Rules, registry: Registry, tmp_path: Path
) -> None:
    dep = Deployment(broker)
    dep.create_topics()
    lines = list(StreamGenerator(registry, seed=23).lines(600))
    first = Worker(dep, tmp_path, "first")
    second: Worker | None = None
    try:
        wait_ready(first)
        sent = publish(dep, rules, registry, lines[:300])
        values = read_topics(
            broker, outputs(dep), lambda vs: len(decisions(v for _, v in vs)) >= 50, timeout_s=120
        )
        assert len(decisions(v for _, v in values)) >= 50
        first.kill()  # SIGKILL: no goodbye, no final commit
        sent += publish(dep, rules, registry, lines[300:])
        second = Worker(dep, tmp_path, "second")
        expected = decisions(r.value for r in expected_from_route(rules, registry, sent))
        values = read_topics(broker, outputs(dep), has_all(expected), timeout_s=240)
        got = decisions(v for _, v in values)
        missing = sorted(set(expected) - set(got))
        assert not missing, (
            f"{len(missing)} cases lost, e.g. {missing[:3]}; second worker's log ends: "
            + second.log.read_text(errors="replace")[-3000:]
        )
        assert got == expected  # and the same decisions
        counts = routed_once_per_case(values, dep)
        twice = {c: n for c, n in counts.items() if n > 1}
        assert not twice, f"cases routed twice after the restart: {twice}"
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_the_publisher_refuses_bad_events_with_reasons(broker: str, make: Any) -> None:
    dep = Deployment(broker)
    dep.create_topics()
    good = make.alarm("qy-gas-liu", "gw-qy-g01", "gas_leak")
    bad = [
        '{"specversion": "1.0"',
        json.dumps({**json.loads(good), "type": "minhu.x"}),
        make.appeal("长" * 4001),
    ]
    with Publisher(broker, dep.topics, "alarm") as pub:
        results = [pub.publish(line) for line in [good, *bad, make.appeal()]]
    assert [r.ok for r in results] == [True, False, False, False, False]
    assert "malformed JSON" in (results[1].reason or "")
    assert "unknown event type" in (results[2].reason or "")
    assert "4000 characters" in (results[3].reason or "")
    assert "--kind appeal" in (results[4].reason or "")
    assert results[0].key == "qy-gas-liu" and results[0].topic == dep.topics.intake("alarm")
    got = read_topics(
        broker,
        [dep.topics.intake("alarm"), dep.topics.intake("appeal")],
        lambda vs: len(vs) >= 1,
        timeout_s=60,
    )
    assert [v["id"] for _, v in got] == [json.loads(good)["id"]]


def test_replay_reads_kafka_by_time_range_without_a_group(
    broker: str, rules: Rules, registry: Registry, tmp_path: Path
) -> None:
    from datetime import timedelta

    from kafka import KafkaAdminClient

    from streams.analysis import replay as rp

    dep = Deployment(broker)
    dep.create_topics()
    lines = list(StreamGenerator(registry, seed=24).lines(300))
    sent = publish(dep, rules, registry, lines)
    times = sorted(json.loads(line)["time"] for line in sent)
    from datetime import datetime as dt

    since = dt.fromisoformat(times[len(times) // 3])
    until = dt.fromisoformat(times[2 * len(times) // 3])
    admin = KafkaAdminClient(bootstrap_servers=broker)
    groups_before = {g["group_id"] for g in admin.list_groups()}
    got = rp.from_kafka(broker, dep.topics, since, until, idle_s=3)
    expected = [
        line for line in sent if since <= dt.fromisoformat(json.loads(line)["time"]) <= until
    ]
    assert sorted(got) == sorted(x.encode() for x in expected)
    assert {g["group_id"] for g in admin.list_groups()} == groups_before  # no group at all
    admin.close()
    run = rp.run(got, rules, registry, until + timedelta(days=1))
    assert run.tally.cases > 0 and run.tally.balanced
    # …and the report charts it.
    from streams.analysis.report import write_report

    page = write_report(run.events, registry, until, tmp_path / "report", "from Kafka")
    assert page.exists() and len(list((tmp_path / "report").glob("*.png"))) == 7
