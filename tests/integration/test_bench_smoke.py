"""The benchmarks run, once each on a tiny input, and print the keys the targets are read from
(smoke only: nothing here is timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def bench(*args: str, cwd: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "bench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
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
    result = bench("replay", "--events", "300", cwd=tmp_path)
    positive(result, "replay_records_per_s", "replay_peak_rss_mb", "records", "cases")
    assert result["records"] > 300  # the intake, and the responders' actions and ratings
