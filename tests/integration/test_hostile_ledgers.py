"""Hostile input through `minhu route` into both ledgers: no record poisons a ledger, every
record is in it once, and a rerun of the same file changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, func, select

from streams.drivers.ledger import DeadLetter, IntakeRecord
from tests.hostile import nasty_records

MINHU = [sys.executable, "-m", "streams.cli"]


def route(file: Path, ledger: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *MINHU,
            "route",
            "--input",
            str(file),
            "--ledger",
            ledger,
            "--summary",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def counts(url: str) -> tuple[int, int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            intake = conn.execute(select(func.count()).select_from(IntakeRecord)).scalar_one()
            dead = conn.execute(select(func.count()).select_from(DeadLetter)).scalar_one()
            reasonless = conn.execute(
                select(func.count()).select_from(DeadLetter).where(DeadLetter.reason == "")
            ).scalar_one()
    finally:
        engine.dispose()
    return intake, dead, reasonless


def test_nasty_records_into_the_ledger(ledger_url: str, tmp_path: Path) -> None:
    lines = [line for line in nasty_records() if line.strip()]
    file = tmp_path / "hostile.jsonl"
    file.write_bytes(b"".join(line + b"\n" for line in lines))
    first = route(file, ledger_url, tmp_path / "one.jsonl")
    assert first.returncode == 0, first.stderr[-3000:]
    intake, dead, reasonless = counts(ledger_url)
    assert intake == len(lines)  # every record, refused ones included
    assert dead >= len(lines) // 2 and reasonless == 0
    again = route(file, ledger_url, tmp_path / "two.jsonl")
    assert again.returncode == 0, again.stderr[-3000:]
    assert counts(ledger_url) == (intake, dead, reasonless)
    assert ids(tmp_path / "one.jsonl") == ids(tmp_path / "two.jsonl")  # the same, re-emitted


def ids(out: Path) -> list[tuple[str, str, str]]:
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    return [(r["topic"], r["key"], r["value"]["id"]) for r in recs]
