"""Analysts' tools: replay with candidate rules, the report with charts, the export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from handlers.rates import three_rates
from handlers.registry import Registry
from handlers.rules import Rules, compile_rules
from schemas import CloudEvent
from streams.analysis import replay as rp
from streams.analysis.export import ledger_tables
from streams.config import default_rules_path, read_yaml
from streams.drivers.embedded import EmbeddedRunner
from streams.drivers.ledger import Ledger, ledger_case_events
from streams.simulation.demo import demo_until, run_demo

UNTIL = demo_until()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, rules: Rules, registry: Registry) -> Path:
    """A demo month (800 intake records plus the responders' answers) as a JSON Lines file."""
    emitted: list[CloudEvent] = []
    fed: list[str] = []
    run_demo(EmbeddedRunner(rules, registry, on_event=emitted.append), emitted, 800, 17, fed)
    path = tmp_path_factory.mktemp("history") / "history.jsonl"
    path.write_text("\n".join(fed) + "\n", encoding="utf-8")
    return path


def candidate_moving_noise(tmp_path: Path) -> Path:
    raw = read_yaml(default_rules_path())
    raw["categories"]["noise"]["tier"] = "community"
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def minhu(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_replay_is_deterministic(history: Path, tmp_path: Path) -> None:
    args = [
        "replay",
        "--from",
        str(history),
        "--compare",
        str(default_rules_path()),
        "--until",
        UNTIL.isoformat(),
    ]
    a = minhu(*args, "--out", str(tmp_path / "a"), cwd=tmp_path)
    b = minhu(*args, "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert a.returncode == 0 and b.returncode == 0, a.stderr
    for name in ("cases.jsonl", "case_diffs.jsonl", "rate_deltas.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "case_diffs.jsonl").read_text() == ""  # same rules: no change
    assert "0 of" in a.stderr and "cases would change" in a.stderr


def test_moving_one_category_changes_exactly_its_cases(
    history: Path, tmp_path: Path, rules: Rules, registry: Registry
) -> None:
    candidate = compile_rules(read_yaml(candidate_moving_noise(tmp_path)), "candidate", registry)
    lines = rp.from_file(history, None, None)
    base = rp.run(lines, rules, registry, UNTIL)
    cand = rp.run(lines, candidate, registry, UNTIL)
    result = rp.compare(cand, base, UNTIL)
    moved = {
        c.case_id
        for c in base.outcomes.values()
        if c.category == "noise" and c.rule_id == "category/noise" and c.tier == "grid"
    }
    assert moved
    assert {d["case_id"] for d in result["diffs"]} == moved
    assert all(d["candidate_tier"] == "community" for d in result["diffs"])
    assert any(r["delta_response_rate_pp"] for r in result["rates"])
    # The CLI writes the same diff, as JSON Lines and CSV.
    out = minhu(
        "replay",
        "--from",
        str(history),
        "--rules",
        str(tmp_path / "candidate.yaml"),
        "--compare",
        str(default_rules_path()),
        "--until",
        UNTIL.isoformat(),
        "--out",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in (tmp_path / "out" / "case_diffs.jsonl").read_text().splitlines()]
    assert {r["case_id"] for r in rows} == moved
    assert (tmp_path / "out" / "case_diffs.csv").read_text().count("\n") == len(moved) + 1
    # The candidate run's events can be charted.
    rep = minhu(
        "report",
        "--from",
        str(tmp_path / "out" / "events.jsonl"),
        "--out",
        str(tmp_path / "report"),
        cwd=tmp_path,
    )
    assert rep.returncode == 0, rep.stderr
    assert (tmp_path / "report" / "index.html").exists()


def _ledger(history: Path, tmp_path: Path, rules: Rules, registry: Registry) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    runner = EmbeddedRunner(rules, registry, lambda r: None, ledger=Ledger(url))
    for n, line in enumerate(history.read_text(encoding="utf-8").splitlines(), start=1):
        runner.feed(line, "history", n)
    runner.advance(UNTIL)
    runner.close()
    return url


def test_report_renders_and_matches_the_ledger(
    history: Path, tmp_path: Path, rules: Rules, registry: Registry
) -> None:
    url = _ledger(history, tmp_path, rules, registry)
    done = minhu("report", "--ledger", url, "--out", str(tmp_path / "report"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    pngs = sorted((tmp_path / "report").glob("*.png"))
    assert len(pngs) == 7
    for png in pngs:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        assert f'src="{png.name}"' in page
    events = ledger_case_events(url)
    as_of = max(e.time for e in events)
    for row in three_rates(events, as_of, "tier"):
        if row.response_rate is not None:
            assert f"{row.response_rate:.1%} ({row.responded}/{row.due_response})" in page
        if row.satisfaction_rate is not None:
            assert f"{row.satisfaction_rate:.1%} ({row.satisfied}/{row.rated})" in page
    # The ledger can also be replayed: the same cases as the file.
    from_ledger = rp.run(rp.from_ledger(url, None, None), rules, registry, UNTIL)
    from_file = rp.run(rp.from_file(history, None, None), rules, registry, UNTIL)
    assert from_ledger.outcomes == from_file.outcomes


def test_export_for_notebooks(
    history: Path, tmp_path: Path, rules: Rules, registry: Registry
) -> None:
    import pyarrow.parquet as pq

    url = _ledger(history, tmp_path, rules, registry)
    done = minhu("export", "--ledger", url, "--out", str(tmp_path / "export"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    tables: dict[str, list[dict[str, Any]]] = ledger_tables(url)
    for name, rows in tables.items():
        assert pq.read_table(tmp_path / "export" / f"{name}.parquet").num_rows == len(rows)
        csv_lines = (tmp_path / "export" / f"{name}.csv").read_text(encoding="utf-8").splitlines()
        assert len(rows) > 0 and len(csv_lines) >= len(rows) + 1
    assert {r["verdict"] for r in tables["ratings"]} <= {
        "satisfied",
        "basically_satisfied",
        "dissatisfied",
    }
