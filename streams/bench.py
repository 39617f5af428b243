"""`minhu bench`: events per second through the full core and through a null pipeline.

Both run in the same process on the same pre-generated records:

- core: parse and validate, duplicate check, tag, locate, route (with per-key state),
  serialize every output record as the JSON line that would go to Kafka;
- null: parse and validate, serialize the event back as a record line; no decision at all.

`ratio` = core / null: how much of the cost is the routing itself. Then the embedded runner is
timed end to end with a SQLite ledger in a temporary directory (`route_with_sqlite_ledger`).

Rates are per CPU second of this process (`time.process_time`), so that other load on a shared
machine does not blur them; one process uses one core. Each figure is the best of `repeat`
runs.
"""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path
from typing import Any

from handlers.intake import parse_input
from handlers.registry import Registry
from handlers.rules import Rules
from schemas import EventRejected
from streams.embedded import EPOCH, EmbeddedRunner
from streams.ledger import Ledger
from streams.synthetic import StreamGenerator
from streams.topics import Record, Topics


def _core(lines: list[bytes], rules: Rules, registry: Registry) -> float:
    out: list[str] = []

    def sink(rec: Record) -> None:
        out.append(rec.to_json_line())

    runner = EmbeddedRunner(rules, registry, sink)
    started = time.process_time()
    for n, line in enumerate(lines):
        runner.feed(line, "bench", n)
    elapsed = time.process_time() - started
    assert runner.tally.balanced
    return len(lines) / elapsed


def _null(lines: list[bytes]) -> float:
    out: list[str] = []
    topics = Topics()
    started = time.process_time()
    for n, line in enumerate(lines):
        ev = parse_input(line, "bench", n, EPOCH)
        topic = topics.deadletter if isinstance(ev, EventRejected) else topics.intake("x")
        out.append(Record(topic, ev.id, ev).to_json_line())
    elapsed = time.process_time() - started
    return len(lines) / elapsed


def _with_ledger(lines: list[bytes], rules: Rules, registry: Registry) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"sqlite:///{Path(tmp) / 'bench.db'}")
        out: list[str] = []
        runner = EmbeddedRunner(
            rules, registry, lambda r: out.append(r.to_json_line()), ledger=ledger
        )
        started = time.process_time()
        for n, line in enumerate(lines):
            runner.feed(line, "bench", n)
        runner.close()
        return len(lines) / (time.process_time() - started)


def run_bench(
    rules: Rules, registry: Registry, events: int, ledger_events: int, repeat: int = 3
) -> dict[str, Any]:
    lines = [line.encode() for line in StreamGenerator(registry, seed=1).lines(events)]
    null = core = 0.0
    for _ in range(repeat):
        gc.collect()
        null = max(null, _null(lines))
        gc.collect()
        core = max(core, _core(lines, rules, registry))
    led = _with_ledger(lines[:ledger_events], rules, registry) if ledger_events else None
    return {
        "events": len(lines),
        "clock": f"process CPU time, best of {repeat} runs",
        "core_events_per_s": round(core),
        "null_events_per_s": round(null),
        "ratio": round(core / null, 3),
        "route_with_sqlite_ledger_events": min(ledger_events, len(lines)),
        "route_with_sqlite_ledger_events_per_s": round(led) if led else None,
    }
