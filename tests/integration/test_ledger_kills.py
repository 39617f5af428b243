"""`minhu route --ledger` killed with SIGKILL at a random moment, then run again on the same
input: the same output and the same ledger as a run that was never interrupted — on SQLite
and on PostgreSQL, twenty trials each, none wedged (the rerun fails), none diverged."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from handlers.registry import Registry
from handlers.rules import Rules
from schemas import CloudEvent
from streams.drivers.embedded import EmbeddedRunner
from streams.drivers.ledger import (
    BucketRow,
    Case,
    CaseEvent,
    DeadLetter,
    IntakeRecord,
    RoutingDecision,
)
from streams.simulation.demo import demo_until, run_demo

TRIALS = int(os.environ.get("MINHU_KILL_TRIALS", "20"))
TABLES = (IntakeRecord, Case, RoutingDecision, DeadLetter, CaseEvent, BucketRow)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, rules: Rules, registry: Registry) -> Path:
    """A demo history: intake, the responders' actions and ratings, and broken records."""
    emitted: list[CloudEvent] = []
    fed: list[str] = []
    run_demo(EmbeddedRunner(rules, registry, on_event=emitted.append), emitted, 500, 41, fed)
    path = tmp_path_factory.mktemp("kills") / "history.jsonl"
    path.write_text("\n".join(fed) + "\n", encoding="utf-8")
    return path


def _route_main(args: list[str]) -> None:
    from streams.cli import main

    os._exit(main(args))


def route(history: Path, ledger: str, out: Path) -> multiprocessing.process.BaseProcess:
    """`minhu route` in a forked child: the same code as the command, without paying for a
    fresh interpreter's imports forty times."""
    args = [
        "route",
        "--input",
        str(history),
        "--until",
        demo_until().isoformat(),
        "--ledger",
        ledger,
        "--output",
        str(out),
        "--log",
        os.devnull,
    ]
    proc = multiprocessing.get_context("fork").Process(target=_route_main, args=(args,))
    proc.start()
    return proc


def ledger_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, without the autoincrement sequence, in a stable order."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            out = {}
            for table in TABLES:
                cols = [c for c in table.__table__.columns if c.name != "seq"]
                rows = conn.execute(select(*cols)).all()
                out[table.__tablename__] = sorted(tuple(map(str, r)) for r in rows)
            return out
    finally:
        engine.dispose()


def fresh(ledger_url: str, n: int) -> str:
    """A new empty database for trial n: a file on SQLite, a schema on PostgreSQL."""
    if ledger_url.startswith("sqlite"):
        return ledger_url.replace("ledger.db", f"trial-{n}.db")
    import psycopg

    schema = ledger_url.rsplit("%3D", 1)[1] + f"_{n}"
    with psycopg.connect("host=127.0.0.1 port=5432 dbname=test", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return ledger_url.rsplit("%3D", 1)[0] + "%3D" + schema


def test_a_killed_route_resumes_to_the_same_ledger_and_output(
    ledger_url: str, history: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "reference.jsonl"
    ref_url = fresh(ledger_url, 0)
    done = route(history, ref_url, reference)
    done.join(timeout=300)
    assert done.exitcode == 0
    expected_rows = ledger_rows(ref_url)
    expected_out = reference.read_bytes()
    lines = expected_out.count(b"\n")
    rng = random.Random(7)
    wedged = diverged = 0
    killed_after: list[int] = []
    for n in range(1, TRIALS + 1):
        url = fresh(ledger_url, n)
        out = tmp_path / f"out-{n}.jsonl"
        first = route(history, url, out)
        target = rng.randrange(lines // 20, lines)  # kill after this many output lines
        deadline = time.monotonic() + 120
        while first.is_alive() and time.monotonic() < deadline:
            if out.exists() and out.stat().st_size and _lines(out) >= target:
                break
            time.sleep(0.005)
        if first.is_alive():
            assert first.pid is not None
            os.kill(first.pid, signal.SIGKILL)
        first.join(timeout=30)
        killed_after.append(_lines(out) if out.exists() else 0)
        second = route(history, url, out)
        second.join(timeout=300)
        if second.exitcode != 0:
            wedged += 1
            continue
        if out.read_bytes() != expected_out or ledger_rows(url) != expected_rows:
            diverged += 1
    print(
        f"\n{TRIALS} kills of minhu route ({ledger_url.split(':')[0]}), after "
        f"{sorted(killed_after)} of {lines} output lines: {wedged} wedged, {diverged} diverged"
    )
    assert (wedged, diverged) == (0, 0)


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)
