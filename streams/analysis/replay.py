"""`minhu replay`: run recorded history through the core with candidate rules, and compare.

Sources, all read-only:
- a JSON Lines file (intake events, actions and ratings, as `minhu demo --events-out` writes);
- the ledger (`intake_records`: every record that came in, in arrival order);
- Kafka: the intake, action and rating topics by time range, with a consumer that belongs to
  no group (partitions assigned by hand, offsets found by timestamp), so a replay never commits
  offsets for anyone and never writes to a topic.

The history runs through the embedded runner in event time (deterministic), once with the
candidate rules and, with a baseline, once more; `handlers/whatif.py` compares the outcomes.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from handlers.rates import three_rates
from handlers.registry import Registry
from handlers.rules import Rules
from handlers.whatif import (
    CaseOutcome,
    case_diffs,
    outcome_rows,
    outcomes,
    rate_deltas,
    rule_rows,
)
from schemas import CloudEvent
from streams.analysis.export import write_csv
from streams.drivers.embedded import EmbeddedRunner, Tally
from streams.topics import INTAKE_KINDS, Topics


def _event_time(line: str | bytes) -> datetime | None:
    try:
        t = json.loads(line).get("time")
        return datetime.fromisoformat(t) if isinstance(t, str) else None
    except (ValueError, AttributeError):
        return None


def _in_range(
    lines: Iterable[str | bytes], since: datetime | None, until: datetime | None
) -> list[str | bytes]:
    if since is None and until is None:
        return list(lines)
    out = []
    for line in lines:
        t = _event_time(line)
        if t is None or ((since is None or t >= since) and (until is None or t <= until)):
            out.append(line)  # unparseable records are kept: they are part of the history
    return out


def from_file(path: Path, since: datetime | None, until: datetime | None) -> list[str | bytes]:
    with path.open("rb") as f:
        return _in_range((line.rstrip(b"\r\n") for line in f if line.strip()), since, until)


def from_ledger(url: str, since: datetime | None, until: datetime | None) -> list[str | bytes]:
    from sqlalchemy import select

    from streams.drivers.ledger import IntakeRecord, make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(IntakeRecord.payload)
                .where(IntakeRecord.outcome != "duplicate")
                .order_by(IntakeRecord.seq)
            )
            return _in_range((r[0] for r in rows), since, until)
    finally:
        engine.dispose()


def from_kafka(
    broker: str,
    topics: Topics,
    since: datetime | None,
    until: datetime | None,
    idle_s: float = 5.0,
    **client_config: Any,
) -> list[str | bytes]:
    """Records of the intake, action and rating topics whose broker timestamp lies in
    [since, until], in timestamp order. No consumer group: nothing is ever committed.
    `client_config`: more KafkaConsumer settings (the login: security.kafka_python_config)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=broker,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **client_config,
    )
    try:
        parts = [
            TopicPartition(t, p)
            for t in (topics.intake(k) for k in INTAKE_KINDS)
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(parts)
        if since is not None:
            found = consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in parts})
            for tp in parts:
                if found.get(tp) is not None:
                    consumer.seek(tp, found[tp].offset)
                else:
                    consumer.seek_to_end(tp)
        else:
            consumer.seek_to_beginning(*parts)
        low = int(since.timestamp() * 1000) if since is not None else None
        limit = int(until.timestamp() * 1000) if until is not None else None
        got: list[tuple[int, str, int, int, bytes]] = []
        last = time.monotonic()
        while time.monotonic() - last < idle_s:
            batch = consumer.poll(timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    last = time.monotonic()
                    # The seek found the first record at or after `since`; later ones may still
                    # be older (timestamps are the publishers' event times), so filter both ends.
                    if (low is None or r.timestamp >= low) and (
                        limit is None or r.timestamp <= limit
                    ):
                        got.append((r.timestamp, tp.topic, tp.partition, r.offset, r.value))
    finally:
        consumer.close()
    got.sort()
    return [g[4] for g in got]


@dataclass
class Run:
    tally: Tally
    events: list[CloudEvent]
    outcomes: dict[str, CaseOutcome]
    seconds: float


def run(
    lines: list[str | bytes],
    rules: Rules,
    registry: Registry,
    until: datetime | None,
    progress: Callable[[int], None] | None = None,
) -> Run:
    """The history through the embedded runner (event time), without a ledger."""
    events: list[CloudEvent] = []
    runner = EmbeddedRunner(rules, registry, on_event=events.append)
    started = time.process_time()
    for n, line in enumerate(lines, start=1):
        runner.feed(line, "replay", n)
        if progress and n % 1000 == 0:
            progress(1000)
    if until is not None:
        runner.finish(until)
    if progress:
        progress(len(lines) % 1000)
    return Run(runner.tally, events, outcomes(events), time.process_time() - started)


def write_rows(out: Path, name: str, rows: list[dict[str, Any]]) -> None:
    """`name.jsonl` and `name.csv` in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"{name}.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    write_csv(out / f"{name}.csv", rows)


def compare(candidate: Run, baseline: Run | None, as_of: datetime) -> dict[str, Any]:
    """The diff rows, the per-unit rate deltas (or the candidate's rates alone), and per rule
    its cases and how often they were returned or forwarded (`rules`)."""
    cand_rates = three_rates(candidate.events, as_of, "unit")
    if baseline is None:
        return {
            "cases": outcome_rows(candidate.outcomes),
            "rates": rate_deltas(cand_rates, cand_rates),
            "diffs": [],
            "rules": rule_rows(None, candidate.outcomes),
        }
    base_rates = three_rates(baseline.events, as_of, "unit")
    return {
        "cases": outcome_rows(candidate.outcomes),
        "diffs": case_diffs(baseline.outcomes, candidate.outcomes),
        "rates": rate_deltas(base_rates, cand_rates),
        "rules": rule_rows(baseline.outcomes, candidate.outcomes),
    }


def changed_counts(diffs: list[dict[str, Any]]) -> Counter[str]:
    c: Counter[str] = Counter()
    for d in diffs:
        c.update(d["changed"].split(","))
    return c
