"""`minhu replay`: run recorded history through the core with candidate rules, and compare.

Sources, all read-only:
- a JSON Lines file (intake events, actions and ratings, as `minhu demo --events-out` writes);
- the ledger (`intake_records`: every record that came in, in arrival order);
- Kafka: the intake, action and rating topics by time range, with a consumer that belongs to
  no group (partitions assigned by hand, offsets found by timestamp), so a replay never commits
  offsets for anyone and never writes to a topic.

The history runs through the embedded runner in event time (deterministic), once with the
candidate rules and, with a baseline, once more; `handlers/whatif.py` compares the outcomes.

A replay holds neither the history nor its output: a file or the ledger is read as the run goes
(`History`, read again for a second run), each output event is folded into the case outcomes
and the three rates (`OutcomeFold`, `RateFold`) and handed on (the CLI writes the candidate's to
`events.jsonl` there and then), and is gone. What grows with the history is one outcome and one
current assignment per case, and the engine's own state, which it forgets by event time.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from handlers.rates import RateFold
from handlers.registry import Registry
from handlers.rules import Rules
from handlers.whatif import (
    CaseOutcome,
    OutcomeFold,
    case_diffs,
    outcome_rows,
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
) -> Iterator[str | bytes]:
    if since is None and until is None:
        yield from lines
        return
    for line in lines:
        t = _event_time(line)
        if t is None or ((since is None or t >= since) and (until is None or t <= until)):
            yield line  # unparseable records are kept: they are part of the history


class History:
    """A history read as it is replayed, from its start each time it is iterated (a comparison
    runs it twice), so that it is never held whole in memory. `read` is pickled to run it in
    another process (`Elsewhere`): a module-level function, or a `partial` of one."""

    def __init__(self, read: Callable[[], Iterator[str | bytes]]) -> None:
        self._read = read

    def __iter__(self) -> Iterator[str | bytes]:
        return self._read()


def _read(
    lines: Callable[[Any], Iterator[str | bytes]],
    source: Any,
    since: datetime | None,
    until: datetime | None,
) -> Iterator[str | bytes]:
    return _in_range(lines(source), since, until)


def _file_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                yield line.rstrip(b"\r\n")


def from_file(path: Path, since: datetime | None, until: datetime | None) -> History:
    with path.open("rb"):
        pass  # a missing file is an error now, not when the replay starts reading
    return History(partial(_read, _file_lines, path, since, until))


def _ledger_lines(url: str) -> Iterator[str]:
    from sqlalchemy import select

    from streams.drivers.ledger import IntakeRecord, make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execution_options(stream_results=True, yield_per=1000).execute(
                select(IntakeRecord.payload)
                .where(IntakeRecord.outcome != "duplicate")
                .order_by(IntakeRecord.seq)
            )
            for r in rows:
                yield r[0]
    finally:
        engine.dispose()


def from_ledger(url: str, since: datetime | None, until: datetime | None) -> History:
    return History(partial(_read, _ledger_lines, url, since, until))


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
    outcomes: dict[str, CaseOutcome]
    rates: RateFold  # per unit
    records: int  # records read from the history
    seconds: float


def run(
    lines: Iterable[str | bytes],
    rules: Rules,
    registry: Registry,
    until: datetime | None,
    progress: Callable[[int], None] | None = None,
    on_event: Callable[[CloudEvent], None] | None = None,
    as_of: datetime | None = None,
) -> Run:
    """The history through the embedded runner (event time), without a ledger. Each output
    event is folded into the outcomes and rates, then given to `on_event`; none is kept.
    Rates are judged `as_of` (default `until`; without either, at the last event's time)."""
    fold = OutcomeFold()
    rates = RateFold("unit", as_of or until)

    def seen(ev: CloudEvent) -> None:
        fold.add(ev)
        rates.add(ev)
        if on_event is not None:
            on_event(ev)

    runner = EmbeddedRunner(rules, registry, on_event=seen)
    started = time.process_time()
    n = 0
    for n, line in enumerate(lines, start=1):
        runner.feed(line, "replay", n)
        if progress and n % 1000 == 0:
            progress(1000)
    if until is not None:
        runner.finish(until)
    if progress:
        progress(n % 1000)
    return Run(runner.tally, fold.outcomes, rates, n, time.process_time() - started)


# The child finds minhu where its parent did, then unpickles the call (rules, registry…).
_CHILD = (
    "import logging, pickle, sys\n"
    "where, blob = pickle.load(sys.stdin.buffer)\n"
    "sys.path[:0] = where\n"
    "logging.getLogger('minhu.auth').disabled = True\n"
    "out, sys.stdout = sys.stdout.buffer, sys.stderr\n"  # stdout carries the result alone
    "fn, kwargs = pickle.loads(blob)\n"
    "out.write(pickle.dumps(fn(**kwargs)))\n"
)


class Elsewhere:
    """`fn(**kwargs)` in a fresh Python process of its own — the other core, while this one
    works — whose result `result()` waits for. `fn` and the arguments are pickled: a
    module-level function, rules, a registry, a `History` or a list of records."""

    def __init__(self, fn: Callable[..., Any], **kwargs: Any) -> None:
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by result or stop)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
        )
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(pickle.dumps((sys.path, pickle.dumps((fn, kwargs)))))
            self._proc.stdin.close()
        except BaseException:
            self.stop()
            raise

    def result(self) -> Any:
        try:
            assert self._proc.stdout is not None
            out = self._proc.stdout.read()
            self._proc.stdout.close()
            self._proc.wait()
            if self._proc.returncode != 0:
                self._errors.seek(0)
                said = self._errors.read().decode("utf-8", "replace").strip()
                raise RuntimeError(f"the replay's second process failed: {said}")
            return pickle.loads(out)
        finally:
            self._errors.close()

    def stop(self) -> None:
        """Stop it (this run is ending some other way)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._errors.close()


def write_rows(out: Path, name: str, rows: list[dict[str, Any]]) -> None:
    """`name.jsonl` and `name.csv` in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"{name}.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    write_csv(out / f"{name}.csv", rows)


def compare(candidate: Run, baseline: Run | None, as_of: datetime | None = None) -> dict[str, Any]:
    """The diff rows, the per-unit rate deltas (or the candidate's rates alone), and per rule
    its cases and how often they were returned or forwarded (`rules`). Both runs' rates are
    judged `as_of` (default: the candidate's; `RateFold.judges` says whether a run can be)."""
    as_of = as_of or candidate.rates.as_of
    cand_rates = candidate.rates.rows(as_of)
    if baseline is None:
        return {
            "cases": outcome_rows(candidate.outcomes),
            "rates": rate_deltas(cand_rates, cand_rates),
            "diffs": [],
            "rules": rule_rows(None, candidate.outcomes),
        }
    base_rates = baseline.rates.rows(as_of)
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
