"""The benchmarks run, once each on a tiny input, and print the keys the targets are read from
(smoke only: nothing here is timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def bench(*args: str, cwd: Path, timeout: float = 120) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "bench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)  # one JSON object, nothing else
    return result


def positive(result: dict[str, Any], *keys: str) -> None:
    for key in keys:
        assert isinstance(result.get(key), int | float) and result[key] > 0, (key, result)


def test_core_bench_prints_its_rates_and_ratio(tmp_path: Path) -> None:
    result = bench("--events", "300", "--ledger-events", "100", cwd=tmp_path)
    positive(result, "core_events_per_s", "null_events_per_s", "ratio")
    positive(result, "route_with_sqlite_ledger_records_per_s")
    assert result["events"] == 300


def test_replay_bench_prints_its_rate_memory_and_records(tmp_path: Path) -> None:
    result = bench("replay", "--events", "300", "--days", "45", cwd=tmp_path)
    assert (result["intake_events"], result["days"]) == (300, 45)
    positive(result, "replay_records_per_s", "replay_peak_rss_mb", "records", "cases")
    assert result["records"] > 300  # the intake, and the responders' actions and ratings


KAFKA_KEYS = {
    "records",
    "worker_events_per_s",
    "two_workers_events_per_s",
    "passthrough_events_per_s",
    "aiokafka_events_per_s",
    "ratio",
    "scale_ratio",
    "idle_p50_ms",
    "idle_p99_ms",
    "p50_ms",
    "p99_ms",
    "background_rate_per_s",
    "backlog_records",
    "transit_idle_p99_ms",
    "transit_p50_ms",
    "transit_p99_ms",
}


def test_kafka_bench_prints_every_figure(broker: str, tmp_path: Path) -> None:
    """Against the test broker: every job starts, drains its records and stops."""
    result = bench(
        *("kafka", "--broker", broker, "--events", "300", "--partitions", "2"),
        *("--seconds", "2", "--rate", "300"),
        cwd=tmp_path,
        timeout=600,
    )
    assert result.keys() >= KAFKA_KEYS, KAFKA_KEYS - result.keys()
    sent = result["records"]
    assert sent > 250
    # every job drained what it was given (the worker answers each distinct event once)
    for job in ("passthrough", "aiokafka"):
        assert result[f"{job}_records_out"] == sent, (job, result)
    assert result["worker_records_out"] == result["two_workers_records_out"] > 0, result
    for key in KAFKA_KEYS - {"records", "backlog_records"}:
        assert isinstance(result[key], int | float) and result[key] > 0, (key, result)
    assert result["idle_probes"] > 0 and result["answered"] == result["probes"], result
