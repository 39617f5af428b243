"""`minhu bench`: events per second through the full core and through a null pipeline.

Both run in the same process on the same pre-generated records:

- core: parse and validate, duplicate check, tag, locate, route (with per-key state),
  serialize every output record as the JSON line that would go to Kafka — the routing core
  only, as `handlers/` offers it to a shell;
- null: parse and validate, serialize the event back as a record line; no decision at all.

`ratio` = core / null: how much of the cost is the routing itself. Then the embedded runner
(`minhu route`: routing, the case lifecycle and a SQLite ledger in a temporary directory) is
timed end to end on the demo's history, where simulated responders answer the cases, so the
lifecycle does what it does in a city rather than escalating every unanswered case.

Rates are per CPU second of this process (`time.process_time`), so that other load on a shared
machine does not blur them; one process uses one core. Each figure is the best of `repeat`
runs.
"""

from __future__ import annotations

import gc
import resource
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from handlers.engine import EPOCH, Engine
from handlers.intake import parse_input
from handlers.registry import Registry
from handlers.rules import Rules
from handlers.state import DictStore, Position
from schemas import CloudEvent, EventRejected
from streams.drivers.embedded import EmbeddedRunner
from streams.drivers.ledger import Ledger
from streams.simulation.demo import DAYS, demo_until, run_demo
from streams.simulation.synthetic import StreamGenerator
from streams.topics import Record, Topics


def _core(lines: list[bytes], rules: Rules, registry: Registry) -> float:
    """The engine as a driver runs it, without a clock (no deadlines fire) and without a
    ledger: parse, duplicate check, tag, locate, route, open the case, serialize."""
    out: list[str] = []
    topics = Topics()
    engine = Engine(rules, registry, DictStore())
    started = time.process_time()
    for n, line in enumerate(lines):
        for e in engine.feed(line, Position("bench", n), advance=False).outputs:
            out.extend(rec.to_json_line() for rec in topics.records_for(e))
    return len(lines) / (time.process_time() - started)


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


def _with_ledger(lines: list[str], rules: Rules, registry: Registry) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"sqlite:///{Path(tmp) / 'bench.db'}")
        out: list[str] = []
        runner = EmbeddedRunner(
            rules, registry, lambda r: out.append(r.to_json_line()), ledger=ledger
        )
        started = time.process_time()
        for n, line in enumerate(lines):
            runner.feed(line, "bench", n)
        runner.finish(demo_until())
        runner.close()
        return len(lines) / (time.process_time() - started)


def _demo_history(rules: Rules, registry: Registry, events: int, days: int = DAYS) -> list[str]:
    """The records `minhu demo` feeds: intake plus the responders' actions and ratings."""
    emitted: list[CloudEvent] = []
    fed: list[str] = []
    runner = EmbeddedRunner(rules, registry, on_event=emitted.append)
    run_demo(runner, emitted, events, 7, fed, days=days)
    return fed


def run_bench(
    rules: Rules, registry: Registry, events: int, ledger_events: int, repeat: int = 3
) -> dict[str, Any]:
    lines = [line.encode() for line in StreamGenerator(registry, seed=1, varied=True).lines(events)]
    null = core = 0.0
    for _ in range(repeat):
        gc.collect()
        null = max(null, _null(lines))
        gc.collect()
        core = max(core, _core(lines, rules, registry))
    history = _demo_history(rules, registry, ledger_events) if ledger_events else []
    led = _with_ledger(history, rules, registry) if history else None
    return {
        "events": len(lines),
        "clock": f"process CPU time, best of {repeat} runs",
        "core_events_per_s": round(core),
        "null_events_per_s": round(null),
        "ratio": round(core / null, 3),
        "route_with_sqlite_ledger_intake_events": ledger_events,
        "route_with_sqlite_ledger_records": len(history),
        "route_with_sqlite_ledger_records_per_s": round(led) if led else None,
    }


def replay_file(
    rules: Rules, registry: Registry, path: Path, until: datetime | None
) -> dict[str, Any]:
    """Replay a history file as `minhu replay` does (without writing its results); the records
    read, the cases, the rate and this process's peak memory."""
    from streams.analysis.replay import from_file, run

    started = time.process_time()
    result = run(from_file(path, None, None), rules, registry, until)
    result.rates.rows()
    seconds = time.process_time() - started
    return {
        "records": result.records,
        "cases": result.tally.cases,
        "clock": "process CPU time",
        "replay_records_per_s": round(result.records / seconds),
        "replay_peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> int:
    """This process's peak resident memory. On Linux from /proc (VmHWM): `ru_maxrss` survives
    an exec, so a process started by a large one would report the starter's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    # Linux: kilobytes (macOS: bytes — then this reads 1024 times too high).
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def replay_bench(
    rules: Rules, registry: Registry, intake_events: int, days: int = DAYS
) -> dict[str, Any]:
    """`minhu replay` from a file: the demo history (intake, actions, ratings) read from disk
    and run through the core with its lifecycle, in event time — in a fresh process, so that
    its peak memory (`replay_peak_rss_mb`) is the replay's, not the making of the history.
    `days`: how long the history runs (ending where the demo's month ends), at the density of
    `intake_events` in those days."""
    from streams.analysis.replay import Elsewhere

    history = _demo_history(rules, registry, intake_events, days)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.jsonl"
        path.write_text("\n".join(history) + "\n", encoding="utf-8")
        del history
        job = Elsewhere(replay_file, rules=rules, registry=registry, path=path, until=demo_until())
        result: dict[str, Any] = job.result()
    return {"intake_events": intake_events, "days": days, **result}
