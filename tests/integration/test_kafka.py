"""minhu on a real Kafka-protocol broker (Tansu): the workers decide exactly as `minhu route`
does on the same history — every record, not a sample — and keep doing so when killed, when
two share the partitions, and when one of them dies."""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from handlers.registry import Registry
from handlers.rules import Rules
from schemas import CloudEvent
from streams.drivers.embedded import EmbeddedRunner
from streams.drivers.kafka.publisher import Publisher
from streams.drivers.ledger import Case, CaseEvent, DeadLetter, IntakeRecord, RoutingDecision
from streams.simulation.demo import run_demo
from tests.integration.kafka_helpers import (
    MINHU,
    Deployment,
    Rec,
    Worker,
    count_records,
    covers,
    distinct,
    embedded_ledger,
    publish,
    read,
    reference,
    routed_values,
    types,
)

pytestmark = pytest.mark.kafka

EVERY_TYPE = {
    "minhu.case.routed",
    "minhu.case.attached",
    "minhu.case.updated",
    "minhu.case.escalated",
    "minhu.case.closed",
    "minhu.case.reopened",
    "minhu.rating.requested",
    "minhu.rating.recorded",
    "minhu.event.rejected",
}


# Small batches in the kill tests: each costs the worker a few round trips to the broker, so
# the history takes long enough to kill a worker in the middle of it.
SLOW_BATCH = "20"


def demo_history(rules: Rules, registry: Registry, events: int, seed: int) -> list[str]:
    """`minhu demo`'s history: intake, the responders' actions and ratings, in time order."""
    emitted: list[CloudEvent] = []
    fed: list[str] = []
    run_demo(EmbeddedRunner(rules, registry, on_event=emitted.append), emitted, events, seed, fed)
    return fed


@pytest.fixture(scope="module")
def whole_demo(rules: Rules, registry: Registry) -> list[str]:
    return demo_history(rules, registry, 10_000, 7)  # what `minhu demo` runs


@pytest.fixture(scope="module")
def small_demo(rules: Rules, registry: Registry) -> list[str]:
    return demo_history(rules, registry, 1_500, 29)


def assert_same(got: list[Rec], expected: list[Rec]) -> tuple[int, int]:
    """The worker's records are the reference's, each at least once and nothing else; return
    (records read, records re-sent)."""
    want, have = distinct(expected), distinct(got)
    missing, extra = sorted(want - have), sorted(have - want)
    assert not missing and not extra, (
        f"{len(missing)} missing, e.g. {missing[:2]}; {len(extra)} extra, e.g. {extra[:2]}"
    )
    twice = {c: v for c, v in routed_values(got).items() if len(v) > 1}
    assert not twice, f"cases decided twice: {list(twice)[:3]}"
    return len(got), len(got) - len(have)


def test_the_worker_decides_the_whole_demo_history_as_route_does(
    broker: str, rules: Rules, registry: Registry, whole_demo: list[str], tmp_path: Path
) -> None:
    dep = Deployment(broker)
    dep.create_topics()
    sent = publish(dep, rules, registry, whole_demo)
    assert len(whole_demo) - len(sent) >= 7  # the broken records: refused by the publisher
    ledger = f"sqlite:///{tmp_path / 'worker.db'}"
    worker = Worker(dep, tmp_path, "w", MINHU_LEDGER=ledger)
    try:
        expected = reference(rules, registry, sent)
        assert set(types(expected)) >= EVERY_TYPE
        got = read(dep, covers(distinct(expected)), timeout_s=180)
        n, resent = assert_same(got, expected)
        changelog = count_records(broker, f"{dep.app_id}-buckets-changelog")
        print(
            f"\n{len(sent):,} records in, {n:,} out ({resent} re-sent), {changelog:,} changelog "
            f"records: {(n + changelog) / len(sent):.2f} Kafka records per record in; the "
            "records out are minhu route's"
        )
        # The worker's ledger holds the rows the embedded one does, intake records included.
        time.sleep(2)
        own = f"sqlite:///{tmp_path / 'embedded.db'}"
        embedded_ledger(own, rules, registry, sent, datetime.now(UTC))
        assert ledger_rows(ledger) == ledger_rows(own)
        m = worker.metrics()
        assert m["minhu_duplicates_total"] >= 1
        assert any(k.startswith("minhu_open_cases") for k in m)
    finally:
        worker.stop()


def ledger_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The ledger's records, without what says where a driver read them."""
    engine = create_engine(url)
    where = {"seq", "id", "received_from", "position", "step", "step_seq"}
    out = {}
    try:
        with engine.connect() as conn:
            for table in (IntakeRecord, Case, RoutingDecision, DeadLetter, CaseEvent):
                # A dead letter's document says where it was read, as its own columns do.
                skip = where | ({"document"} if table is DeadLetter else set())
                cols = [c for c in table.__table__.columns if c.name not in skip]
                if table is DeadLetter:
                    cols.append(DeadLetter.id)  # the same on both drivers: it names the event
                rows = conn.execute(select(*cols)).all()
                out[table.__tablename__] = sorted(tuple(map(str, r)) for r in rows)
    finally:
        engine.dispose()
    return out


def test_a_worker_killed_three_times_loses_nothing_and_decides_nothing_twice(
    broker: str, rules: Rules, registry: Registry, small_demo: list[str], tmp_path: Path
) -> None:
    dep = Deployment(broker)
    dep.create_topics()
    sent = publish(dep, rules, registry, small_demo)
    expected = reference(rules, registry, sent)
    rng = random.Random()
    kills = []
    for k in range(3):  # each killed mid-stream, after a random share of the history
        worker = Worker(dep, tmp_path, f"w{k}", MINHU_BATCH_SIZE=SLOW_BATCH)
        worker.wait_ready()
        took = worker.wait_events_in(rng.uniform(0.05, 0.3) * len(sent))
        kills.append(f"after {took:.0f} records in")
        worker.kill()  # SIGKILL: no goodbye, no last commit
    last = Worker(dep, tmp_path, "last")
    again = None
    try:
        got = read(dep, covers(distinct(expected)), timeout_s=180)
        n, resent = assert_same(got, expected)
        print(
            f"\nkilled {kills}; {n:,} records out, {resent} re-sent, none lost, none decided twice"
        )
        assert sum(int(k.split()[1]) > 0 for k in kills) >= 2, f"killed idle: {kills}"
        # Killed once more after the end: the next worker finds everything decided, a month
        # of history whose early identities the engine has long forgotten, and sends nothing.
        last.kill()
        again = Worker(dep, tmp_path, "again")
        again.wait_ready()
        retaken = again.wait_events_in(float("inf"), timeout_s=60)
        assert_same(read(dep, covers(distinct(expected)), timeout_s=180), expected)
        assert retaken < len(sent) / 10, f"read {retaken:.0f} records again"
    finally:
        last.stop()
        if again is not None:
            again.stop()


def test_two_workers_share_the_partitions_and_one_dies(
    broker: str, rules: Rules, registry: Registry, whole_demo: list[str], tmp_path: Path
) -> None:
    dep = Deployment(broker)
    dep.create_topics()
    # Published first, as a backlog: records published while a worker reads may reach it out
    # of event-time order across topics, where no offline run can be the reference.
    # The whole demo, long enough to outlast the group's settling with both.
    sent = publish(dep, rules, registry, whole_demo)
    expected = reference(rules, registry, sent)
    a, b = Worker(dep, tmp_path, "a"), Worker(dep, tmp_path, "b")
    try:
        deadline = time.monotonic() + 90
        held: list[Any] = [None, None]
        while time.monotonic() < deadline:  # until the group has settled with both
            held = [(w.ready() or {}).get("partitions") for w in (a, b)]
            if all(held) and not set(held[0]) & set(held[1]):
                break
            time.sleep(0.3)
        assert all(held), f"both should hold partitions: {held}\n{a.tail()}\n{b.tail()}"
        b.wait_events_in(b.events_in() + random.uniform(0.05, 0.2) * len(sent))
        took = (a.events_in(), b.events_in())
        b.kill()  # mid-stream: its partitions go to a, which reads what b had not written
        got = read(dep, covers(distinct(expected)), timeout_s=180)
        n, resent = assert_same(got, expected)
        print(
            f"\ntwo workers {held}, {took} records in when b was killed: {n:,} out, {resent} re-sent"
        )
        assert all(took), "both took partitions"
        assert sum(took) < len(sent), f"b was killed after the end: {took} of {len(sent)}"
    finally:
        a.stop()
        b.stop()


def test_a_repeated_source_and_id_is_a_duplicate_whatever_it_says(
    broker: str, rules: Rules, registry: Registry, make: Any, tmp_path: Path
) -> None:
    dep = Deployment(broker)
    dep.create_topics()
    first = make.appeal("楼上装修噪音太吵", id_="same-1")
    other_text = make.appeal("楼道里的垃圾三天没人清运", id_="same-1")  # another category
    other_source = json.dumps({**json.loads(first), "source": "/wechat"})
    sent = publish(dep, rules, registry, [first, other_text, other_source])
    worker = Worker(dep, tmp_path, "w")
    try:
        expected = reference(rules, registry, sent)
        got = read(dep, covers(distinct(expected)), timeout_s=120)
        assert_same(got, expected)
        assert len(routed_values(got)) == 2  # the first, and the one from another source
        time.sleep(1)
        assert worker.metrics()["minhu_duplicates_total"] == 1
    finally:
        worker.stop()


def test_a_worker_refuses_topics_that_do_not_fit(broker: str, tmp_path: Path) -> None:
    dep = Deployment(broker)
    missing = subprocess.run(
        [*MINHU, "worker"],
        env=dep.env(MINHU_METRICS_PORT=""),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0 and "topics missing" in missing.stderr
    dep.create_topics()  # 4 partitions
    wrong = subprocess.run(
        [*MINHU, "worker", "--partitions", "8"],
        env=dep.env(MINHU_METRICS_PORT=""),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode != 0
    assert wrong.stderr.strip().splitlines()[-1] == (
        "minhu worker: --partitions 8, but the topics have 4"
    )


def test_a_worker_that_loses_its_broker_says_so_and_exits(
    tmp_path: Path, rules: Rules, registry: Registry
) -> None:
    from tests.integration.conftest import start_tansu

    with start_tansu(tmp_path) as own:
        dep = Deployment(own.address, partitions=2)
        dep.create_topics()
        worker = Worker(dep, tmp_path, "w", MINHU_BROKER_TIMEOUT="4", MINHU_TICK_SECONDS="0.2")
        worker.wait_ready()
        own.proc.kill()
        own.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and worker.get("/ready")[0] != 503:
            time.sleep(0.2)
        assert worker.get("/ready")[0] in (503, 0), "not ready while the broker is away"
        assert worker.proc.wait(timeout=60) == 3
        assert "lost the broker" in worker.tail()


def test_the_publisher_refuses_bad_events_with_reasons(
    broker: str, rules: Rules, registry: Registry, make: Any
) -> None:
    dep = Deployment(broker)
    dep.create_topics()
    good = make.alarm("qy-gas-liu", "gw-qy-g01", "gas_leak")
    bad = [
        '{"specversion": "1.0"',
        json.dumps({**json.loads(good), "type": "minhu.x"}),
        make.appeal("长" * 4001),
        make.appeal("x" * 200, location={"address": "y" * 200}) + " " * 600_000,
    ]
    with Publisher(broker, rules, registry, dep.topics, "alarm") as pub:
        results = [pub.publish(line) for line in [good, *bad, make.appeal()]]
    assert [r.ok for r in results] == [True, False, False, False, False, False]
    assert "malformed JSON" in (results[1].reason or "")
    assert "unknown event type" in (results[2].reason or "")
    assert "4000 characters" in (results[3].reason or "")
    assert "the limit is" in (results[4].reason or "")
    assert "--kind appeal" in (results[5].reason or "")
    assert results[0].topic == dep.topics.intake("alarm") and results[0].key is not None
    got = read(
        dep,
        lambda vs: len(vs) >= 1,
        timeout_s=60,
        topics=[dep.topics.intake("alarm"), dep.topics.intake("appeal")],
    )
    assert [r["value"]["id"] for r in got] == [json.loads(good)["id"]]


def test_publish_counts_a_record_sent_only_once_the_broker_has_it(
    rules: Rules, registry: Registry, make: Any, tmp_path: Path
) -> None:
    """A record the broker refuses is not counted as sent: `minhu publish` reports it with the
    broker's reason, and goes on with the rest. The refusal is real: a broker of its own that
    checks the appeal topic's records against a JSON schema refusing two ids (INVALID_RECORD,
    for the whole batch each was in: the others are sent again, alone, and taken)."""
    from kafka import KafkaConsumer

    from tests.integration.conftest import start_tansu

    refused = ["appeal-04", "appeal-09"]
    now = datetime.now(UTC).isoformat()
    lines = [make.appeal(time=now, id_=f"appeal-{n:02d}") for n in range(1, 13)]
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    with start_tansu(tmp_path, schema_registry=schemas) as tansu:
        dep = Deployment(tansu.address, partitions=1)
        not_these = {"properties": {"id": {"not": {"enum": refused}}}}
        for topic in (dep.topics.intake("appeal"), dep.topics.intake("urgent")):
            schema = {"type": "object", "properties": {"value": not_these}}
            (schemas / f"{topic}.json").write_text(json.dumps(schema))
        dep.create_topics()
        file = tmp_path / "appeals.jsonl"
        file.write_text("".join(line + "\n" for line in lines))
        published = subprocess.run(
            [*MINHU, "publish", "--input", str(file)],
            env=dep.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        said = published.stderr.strip().splitlines()
        assert said[-1] == "10 sent, 0 refused, 2 not delivered", published.stderr
        assert published.returncode == 1
        for n in (4, 9):
            [line] = [s for s in said if s.startswith(f"line {n}: ")]
            assert "not delivered: the broker refused it: InvalidRecordError" in line, line
        consumer = KafkaConsumer(
            dep.topics.intake("appeal"),
            dep.topics.intake("urgent"),
            bootstrap_servers=tansu.address,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=3000,
        )
        on_topics = sorted(json.loads(m.value)["id"] for m in consumer)
        consumer.close()
    assert on_topics == [f"appeal-{n:02d}" for n in range(1, 13) if n not in (4, 9)]


def test_operations_centres_follow_their_tier(
    broker: str, rules: Rules, registry: Registry, small_demo: list[str], tmp_path: Path
) -> None:
    dep = Deployment(broker)
    dep.create_topics()
    sent = publish(dep, rules, registry, small_demo[:400])
    worker = Worker(dep, tmp_path, "w")
    try:
        follow = subprocess.run(
            [
                *MINHU,
                "consume",
                "--tier",
                "street",
                "--json",
                "--from-beginning",
                "--max",
                "3",
                "--idle-timeout",
                "60",
            ],
            env=dep.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        docs = [json.loads(line) for line in follow.stdout.splitlines()]
        assert len(docs) == 3 and all(d["type"].startswith("minhu.case.") for d in docs)
        assert len({d["id"] for d in docs}) == 3
        unit = subprocess.run(
            [
                *MINHU,
                "consume",
                "--tier",
                "grid",
                "--unit",
                "qy-g01",
                "--from-beginning",
                "--max",
                "1",
                "--idle-timeout",
                "60",
            ],
            env=dep.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert "qy-g01" in unit.stdout or "清源小区一期第1网格" in unit.stdout
        assert "case-" in unit.stdout  # the case id, to act on
        assert sent
    finally:
        worker.stop()


def test_replay_reads_kafka_by_time_range_without_a_group(
    broker: str, rules: Rules, registry: Registry, small_demo: list[str], tmp_path: Path
) -> None:
    from datetime import timedelta

    from kafka import KafkaAdminClient

    from streams.analysis import replay as rp

    dep = Deployment(broker)
    dep.create_topics()
    sent = publish(dep, rules, registry, small_demo[:1500])
    times = sorted(json.loads(line)["time"] for line in sent)
    since = datetime.fromisoformat(times[len(times) // 3])
    until = datetime.fromisoformat(times[2 * len(times) // 3])
    admin = KafkaAdminClient(bootstrap_servers=broker)
    groups_before = {g["group_id"] for g in admin.list_groups()}
    got = rp.from_kafka(broker, dep.topics, since, until, idle_s=3)
    expected = [
        line for line in sent if since <= datetime.fromisoformat(json.loads(line)["time"]) <= until
    ]
    assert sorted(got) == sorted(x.encode() for x in expected)
    assert {g["group_id"] for g in admin.list_groups()} == groups_before  # no group at all
    admin.close()
    events: list[CloudEvent] = []  # a replay keeps none: the report is given them as they come
    run = rp.run(got, rules, registry, until + timedelta(days=1), on_event=events.append)
    assert run.tally.cases > 0 and run.tally.balanced
    from streams.analysis.report import write_report

    page = write_report(events, registry, until, tmp_path / "report", "from Kafka")
    assert page.exists() and len(list((tmp_path / "report").glob("*.png"))) == 7


def killers() -> list[bytes]:
    """Records that stop a driver which reads them naively: nesting deeper than `json.loads`
    follows (RecursionError), alone and inside a live critical alarm (the life-safety lane reads
    those first) and a critical appeal, and records over the size limit."""
    from tests.hostile import ALARM, APPEAL

    deep = b"[" * 5000 + b"]" * 5000
    now = datetime.now(UTC).isoformat()
    alarm = json.dumps({**ALARM, "id": "k-alarm", "time": now})
    appeal = json.dumps({**APPEAL, "id": "k-appeal", "time": now})
    big_alarm = {
        **ALARM,
        "id": "k-big",
        "time": now,
        "data": {**ALARM["data"], "unit": "x" * 600_000},
    }
    return [
        deep,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        alarm.replace('"gas_leak"', deep.decode()).encode(),
        alarm.replace('"minhu.alarm.raised"', deep.decode()).encode(),
        appeal.replace('"hotline_12345"', deep.decode()).encode(),
        json.dumps(big_alarm).encode(),
        b"{" + b" " * 600_000 + b"}",
    ]


def test_hostile_records_are_each_accounted_for_and_kill_nothing(
    broker: str, rules: Rules, registry: Registry, tmp_path: Path
) -> None:
    """The file of nasty records, a fixed sample of the hostile strategies (tests/hostile.py)
    and the records that kill naive readers: through `minhu publish`, and the same bytes
    straight onto every intake topic, the life-safety lane's included, and the workers'
    forwarded topic (a gateway that skips the publisher; some dated 2100 by their Kafka
    timestamp). The publisher refuses what it must and goes on; the worker stays up
    throughout, and writes each record to its ledger once, as routed, attached, applied,
    refused with a reason, or a duplicate."""
    from kafka import KafkaProducer

    from streams.drivers.kafka.admin import forwarded_topic
    from tests.hostile import drawn, hostile_record, nasty_records

    dep = Deployment(broker)
    dep.create_topics()
    sample = drawn(hostile_record(), 200)
    lines = [line for line in [*nasty_records(), *sample, *killers()] if line.strip()]
    file = tmp_path / "hostile.jsonl"
    file.write_bytes(b"".join(line + b"\n" for line in lines))
    published = subprocess.run(
        [*MINHU, "publish", "--input", str(file)],
        env=dep.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    summary = published.stderr.strip().splitlines()[-1]
    sent, refused, lost = (int(w) for w in summary.replace(",", "").split()[::2][:3])
    assert published.returncode == 1 and sent + refused == len(lines) and lost == 0, summary
    assert sent >= 100 and refused >= len(lines) // 2
    t = dep.topics
    topics = [t.intake(k) for k in ("alarm", "urgent", "appeal", "patrol", "action", "rating")]
    topics.append(forwarded_topic(t, dep.app_id))
    raw = [line for line in lines if len(line) < 900_000]  # the broker's record limit is 1 MB
    producer = KafkaProducer(bootstrap_servers=broker, max_request_size=1_048_576)
    sends = [(topics[n % len(topics)], line, n) for n, line in enumerate(raw)]
    sends += [(topic, line, n) for topic in topics for n, line in enumerate(killers())]
    in_2100 = 4_102_444_800_000  # a Kafka timestamp its writer set far ahead (ms)
    for n, (topic, line, k) in enumerate(sends):
        stamp = in_2100 if n % 5 == 0 else None
        producer.send(topic, line, partition=k % dep.partitions, timestamp_ms=stamp)
    producer.flush()
    producer.close()
    ledger = f"sqlite:///{tmp_path / 'worker.db'}"
    worker = Worker(dep, tmp_path, "w", MINHU_LEDGER=ledger)
    try:
        total = sent + len(sends)
        deadline = time.monotonic() + 240
        rows: dict[str, int] = {}
        while time.monotonic() < deadline:
            assert worker.proc.poll() is None, worker.tail()
            rows = intake_outcomes(ledger)
            if sum(rows.values()) >= total:
                break
            time.sleep(1)
        assert sum(rows.values()) == total, (rows, total)
        assert set(rows) <= {"routed", "attached", "applied", "rejected", "duplicate"}
        assert rows["rejected"] >= len(raw) // 2
        assert worker.wait_ready()["ready"] and worker.proc.poll() is None
        engine = create_engine(ledger)
        with engine.connect() as conn:
            reasons = conn.execute(select(DeadLetter.reason)).scalars().all()
        engine.dispose()
        # One dead letter per refused identity (the same refusal read twice is one row).
        assert 0 < len(reasons) <= rows["rejected"] and all(r.strip() for r in reasons)
        assert "deciding failed" not in worker.tail(10**7)
    finally:
        worker.stop()


def test_any_timestamp_on_the_kafka_driver(
    broker: str, rules: Rules, registry: Registry, tmp_path: Path
) -> None:
    """Arbitrary times (the strategy `times` of tests/hostile.py, which the embedded driver's
    test_any_timestamp uses too) on valid alarms and appeals, straight onto the intake topics,
    after twenty real ones of now, and read by one worker: each is routed or refused for its
    time with the reason, the worker stays up, and no time moves a clock — no real case
    escalates, and nothing the worker writes is dated beyond the bounds of
    escalation_rules.yaml."""
    from kafka import KafkaProducer

    from tests.hostile import ALARM, APPEAL, drawn, times

    dep = Deployment(broker)
    dep.create_topics()
    now = datetime.now(UTC)
    real = [
        json.dumps({**base, "id": f"real-{kind}-{n:02d}", "time": now.isoformat()})
        for n in range(10)
        for kind, base in (("appeal", APPEAL), ("alarm", ALARM))
    ]
    assert len(publish(dep, rules, registry, real)) == len(real)
    stamps = drawn(times, 150)
    bodies = [
        ({**(ALARM if n % 2 else APPEAL), "id": f"ts-{n:03d}", "time": at}, n)
        for n, at in enumerate(stamps)
    ]
    producer = KafkaProducer(bootstrap_servers=broker)
    later = int(now.timestamp() * 1000) + 1000  # after the real ones, in the merge
    for doc, n in bodies:
        topic = dep.topics.intake("alarm" if n % 2 else "appeal")
        value = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
        producer.send(topic, value, partition=n % dep.partitions, timestamp_ms=later)
    producer.flush()
    producer.close()
    ledger = f"sqlite:///{tmp_path / 'worker.db'}"
    worker = Worker(dep, tmp_path, "w", MINHU_LEDGER=ledger, MINHU_BATCH_SIZE="1000")
    try:
        total = len(real) + len(bodies)
        deadline = time.monotonic() + 120
        rows: dict[str, int] = {}
        while time.monotonic() < deadline and sum(rows.values()) < total:
            assert worker.proc.poll() is None, worker.tail()
            time.sleep(1)
            rows = intake_outcomes(ledger)
        assert sum(rows.values()) == total, (rows, total)
        assert worker.wait_ready()["ready"] and worker.proc.poll() is None
        wall = datetime.now(UTC)
        engine = create_engine(ledger)
        with engine.connect() as conn:
            intake = conn.execute(
                select(IntakeRecord.event_id, IntakeRecord.outcome, IntakeRecord.case_id)
            ).all()
            dead = conn.execute(
                select(DeadLetter.error_kind, DeadLetter.reason, DeadLetter.payload)
            ).all()
            events = conn.execute(
                select(CaseEvent.case_id, CaseEvent.type, CaseEvent.at, CaseEvent.document)
            ).all()
        engine.dispose()
        decided = {e: (o, c) for e, o, c in intake if e is not None}
        real_cases = {decided[json.loads(r)["id"]][1] for r in real}
        outcomes = {decided[json.loads(r)["id"]][0] for r in real}
        assert outcomes <= {"routed", "attached"}, outcomes
        refused: dict[str, tuple[str, str]] = {}
        for kind, reason, payload in dead:
            assert reason.strip(), payload[:200]
            with contextlib.suppress(ValueError, TypeError):
                refused[json.loads(payload)["id"]] = (kind, reason)
        for doc, _ in bodies:
            if doc["id"] in refused:
                kind, reason = refused[doc["id"]]
                assert kind == "implausible_time" or "'time'" in reason, (doc["time"], reason)
            else:
                assert decided[doc["id"]][0] in ("routed", "attached", "duplicate"), doc
        late = {  # escalated by a deadline (not for repeated appeals, a routing decision)
            c
            for c, t, _, doc in events
            if t == "minhu.case.escalated"
            and json.loads(doc)["data"]["reason"].endswith("_timeout")
        }
        assert not late & real_cases, "a time moved the clock: real cases escalated"
        beyond = [(c, t, at) for c, t, at, _ in events if at > wall + rules.time.max_ahead]
        assert not beyond, beyond[:3]
        assert "deciding failed" not in worker.tail(10**7)
    finally:
        worker.stop()


def intake_outcomes(url: str) -> dict[str, int]:
    from sqlalchemy import func
    from sqlalchemy.exc import OperationalError

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(IntakeRecord.outcome, func.count()).group_by(IntakeRecord.outcome)
            ).all()
    except OperationalError:  # not created yet
        return {}
    finally:
        engine.dispose()
    return {o: n for o, n in rows}


def test_live_critical_alarms_behind_a_backlog_take_the_lane_once(
    broker: str, rules: Rules, registry: Registry, tmp_path: Path
) -> None:
    """Gas alarms published behind a backlog of appeals: the lane's own consumer reads them
    ahead of Faust's delivery (which hands them out only after the appeals fetched before
    them), and each is decided once: one routed or attached record each, however the two
    readers raced for it."""
    from schemas import AlarmType
    from streams.bench.kafka import gas_alarm
    from streams.simulation.synthetic import StreamGenerator

    dep = Deployment(broker)
    dep.create_topics()
    worker = Worker(dep, tmp_path, "w")
    try:
        worker.wait_ready()
        now = datetime.now(UTC)
        gen = StreamGenerator(registry, seed=11, varied=True)
        backlog = [json.dumps(gen.appeal(now), ensure_ascii=False) for _ in range(3000)]
        gas = sorted(s.id for s in registry.sensors.values() if AlarmType.GAS_LEAK in s.alarm_types)
        alarms = [
            gas_alarm(registry.sensors[gas[n % len(gas)]], f"lane-{n}", 40.0 + n) for n in range(12)
        ]
        assert len(publish(dep, rules, registry, backlog)) == len(backlog)
        assert len(publish(dep, rules, registry, [json.dumps(a) for a in alarms])) == 12
        ids = {a["id"] for a in alarms}
        answers = ("minhu.case.routed", "minhu.case.attached")

        def answered(got: list[Rec]) -> dict[str, set[str]]:
            out: dict[str, set[str]] = {}
            for r in got:
                v = r["value"]
                origin = v["data"].get("origin") or {}
                if v["type"] in answers and origin.get("event_id") in ids:
                    out.setdefault(origin["event_id"], set()).add(json.dumps(v, sort_keys=True))
            return out

        got = read(dep, lambda got: answered(got).keys() == ids)
        each = answered(got)
        assert each.keys() == ids, ids - each.keys()
        assert all(len(v) == 1 for v in each.values()), each
        refused = [
            r
            for r in got
            if r["value"]["type"] == "minhu.event.rejected"
            and r["value"]["data"].get("event_id") in ids
        ]
        assert not refused, refused
        m = worker.metrics()
        assert m.get('minhu_life_safety_total{read_by="lane"}', 0) >= 1, m
    finally:
        worker.stop()
