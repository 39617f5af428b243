"""The CLI as a user runs it: `minhu demo --events-out`, then `minhu route` on that file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

MINHU = [sys.executable, "-m", "streams.cli"]


def minhu(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MINHU, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )


def test_demo_then_route_is_complete_and_deterministic(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    demo = minhu(
        "demo",
        "--events",
        "3000",
        "--events-out",
        str(events),
        "--ledger",
        f"sqlite:///{tmp_path / 'demo.db'}",
        cwd=tmp_path,
    )
    assert demo.returncode == 0, demo.stderr
    assert "nothing lost" in demo.stdout and "Cases per community and tier" in demo.stdout
    assert (tmp_path / "demo.db").exists()

    first = minhu(
        "route",
        "--input",
        str(events),
        "--output",
        str(tmp_path / "a.jsonl"),
        "--summary",
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    assert "nothing lost" in first.stderr
    again = minhu(
        "route", "--input", str(events), "--output", str(tmp_path / "b.jsonl"), cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    a = (tmp_path / "a.jsonl").read_bytes()
    assert a == (tmp_path / "b.jsonl").read_bytes()
    # stdin to stdout: the same records (dead letters name 'stdin' as where they came from)
    with events.open("rb") as f:
        piped = subprocess.run(
            [*MINHU, "route"], stdin=f, capture_output=True, check=True, cwd=tmp_path, timeout=300
        )
    assert piped.stdout.count(b"\n") == a.count(b"\n")

    records = [json.loads(line) for line in a.decode().splitlines()]
    topics = {r["topic"] for r in records}
    assert {
        "minhu.dispatch.micro_grid",
        "minhu.dispatch.grid",
        "minhu.dispatch.community",
        "minhu.dispatch.street",
        "minhu.deadletter",
    } <= topics
    dead = [r["value"]["data"] for r in records if r["topic"] == "minhu.deadletter"]
    assert len(dead) >= 7 and all(d["reason"] and d["payload"] for d in dead)
    assert {d["error_kind"] for d in dead} >= {
        "malformed_json",
        "invalid_event",
        "unknown_type",
        "unknown_sensor",
    }


def test_bad_rules_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("version: 1\nceilings: {trivial: cosmos}\n", encoding="utf-8")
    r = minhu("rules", "check", "--rules", str(bad), cwd=tmp_path)
    assert r.returncode == 2
    assert "rules.yaml" in r.stderr and "ceilings.trivial" in r.stderr
    ok = minhu("rules", "check", cwd=tmp_path)
    assert ok.returncode == 0 and "ok" in ok.stdout


def test_schemas_check(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    r = minhu("schemas", "--check", "--out", str(root / "schemas" / "json"), cwd=tmp_path)
    assert r.returncode == 0, r.stdout


def test_story_lives_and_report(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    ledger = f"sqlite:///{tmp_path / 'story.db'}"
    routed = minhu(
        "route",
        "--input",
        str(root / "examples" / "story.jsonl"),
        "--until",
        "2026-11-12T00:00:00+08:00",
        "--ledger",
        ledger,
        "--output",
        str(tmp_path / "records.jsonl"),
        cwd=tmp_path,
    )
    assert routed.returncode == 0, routed.stderr
    assert "refused minhu.case.verified" in routed.stderr  # authorization failures are logged
    lives = minhu("lives", str(tmp_path / "records.jsonl"), cwd=tmp_path)
    out = lives.stdout
    assert lives.returncode == 0, lives.stderr
    for words in (
        "critical-gas-leak",
        "alarm attached",
        "escalated (ack_timeout)",
        "escalated (requested)",
        "rated dissatisfied",
        "reopened (opening 2)",
        "一事一评",
        "谁呼谁评",
        "only a grid worker",
    ):
        assert words in out, words
    report = minhu("report", "--ledger", ledger, "--by", "unit", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "响应率" in report.stdout and "qy-g01" in report.stdout and "100.0%" in report.stdout
    bad = minhu("route", "--until", "2026-11-12", cwd=tmp_path)
    assert bad.returncode == 2 and "UTC offset" in bad.stderr
