"""`minhu bench kafka` runs once, on a tiny input, against the test broker: every job starts,
drains its records and stops, and the one JSON object it prints holds every figure the speed
targets are read from. A smoke test: the figures themselves are not judged here (a shared
2-core machine gives no stable timings); `minhu bench kafka` prints them."""

from __future__ import annotations

import json
import subprocess
import sys

KEYS = {
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
}


def test_bench_kafka_prints_every_figure(broker: str) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "streams.cli", "bench", "kafka", "--broker", broker),
            *("--events", "300", "--partitions", "2", "--seconds", "2", "--rate", "300"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result.keys() >= KEYS, KEYS - result.keys()
    sent = result["records"]
    assert sent > 250
    # every job drained what it was given (the worker answers each distinct event once)
    for job in ("passthrough", "aiokafka"):
        assert result[f"{job}_records_out"] == sent, (job, result)
    assert result["worker_records_out"] == result["two_workers_records_out"] > 0, result
    for key in KEYS - {"records", "backlog_records"}:
        assert isinstance(result[key], int | float) and result[key] > 0, (key, result)
    assert result["idle_probes"] > 0 and result["answered"] == result["probes"], result
