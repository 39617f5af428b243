"""An event dated a little ahead of the wall clock (within `time.max_ahead`: a phone or sensor
clock that drifts) is decided at its own time, but moves the stream's clock no further than
when it was read: it fires no deadline that is not due yet."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from handlers.engine import Engine
from handlers.registry import Registry
from handlers.rules import Rules
from handlers.state import DictStore, Position
from schemas import CloudEvent
from streams.drivers.embedded import EmbeddedRunner
from streams.drivers.ledger import Ledger
from tests.hostile import ALARM, APPEAL


def _gas(t: datetime) -> bytes:
    return json.dumps({**ALARM, "id": "gas-now", "time": t.isoformat()}).encode()


def _appeal(t: datetime) -> bytes:
    data = {**APPEAL["data"], "location": {"micro_grid_id": "qy-m020"}}
    doc = {**APPEAL, "id": "skewed", "time": t.isoformat(), "data": data}
    return json.dumps(doc, ensure_ascii=False).encode()


def test_an_event_dated_ahead_fires_no_deadline_before_it_is_due(
    rules: Rules, registry: Registry
) -> None:
    """A gas alarm read a minute after it went off, then an appeal dated 55 minutes ahead
    (allowed: max_ahead is 1h): the gas case's 10-minute acknowledge clock has not run out, so
    nothing escalates; the appeal is routed at its own time."""
    now = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    assert rules.time.max_ahead > timedelta(minutes=55)
    engine = Engine(rules, registry, DictStore())
    first = engine.feed(_gas(now - timedelta(minutes=1)), Position("in", 1), now=now)
    assert first.outcome == "routed"
    later = engine.feed(_appeal(now + timedelta(minutes=55)), Position("in", 2), now=now)
    assert later.outcome == "routed"
    assert [e.type for e in later.outputs if e.type != "minhu.case.routed"] == []
    routed = [e for e in later.outputs if e.type == "minhu.case.routed"]
    assert routed and all(e.time == now + timedelta(minutes=55) for e in routed)
    assert engine.clock == now and engine.watermark == now
    # As the wall clock moves on, the gas case's deadlines fire when they are due.
    fired = engine.advance(now + timedelta(minutes=10))
    assert [e.type for e in fired.outputs] == ["minhu.case.escalated"] * 2
    assert all(e.time <= now + timedelta(minutes=10) for e in fired.outputs)


def test_a_history_moves_the_clock_to_each_event(rules: Rules, registry: Registry) -> None:
    """Events dated before they are read (a history, a backlog) move the clock to their time,
    as before."""
    now = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    engine = Engine(rules, registry, DictStore())
    engine.feed(_gas(now - timedelta(hours=3)), Position("in", 1), now=now)
    eff = engine.feed(_appeal(now - timedelta(hours=1)), Position("in", 2), now=now)
    assert engine.clock == now - timedelta(hours=1)
    assert "minhu.case.escalated" in [e.type for e in eff.outputs]


def test_the_live_lane_and_a_rerun_go_by_the_same_rule(
    rules: Rules, registry: Registry, tmp_path: Path
) -> None:
    """Through the embedded driver with the real wall clock, and again on a rerun from its
    ledger (which moves the clock by what it reads again): no escalation either time."""
    now = datetime.now(UTC)
    lines = [_gas(now - timedelta(minutes=1)), _appeal(now + timedelta(minutes=55))]
    url = f"sqlite:///{tmp_path / 'l.db'}"
    for _ in range(2):
        seen: list[CloudEvent] = []
        runner = EmbeddedRunner(rules, registry, ledger=Ledger(url), on_event=seen.append)
        for n, line in enumerate(lines, start=1):
            runner.feed(line, "skew", n)
        runner.close()
        assert [e.type for e in seen] == ["minhu.case.routed"] * 2, [e.type for e in seen]
        assert runner.engine.clock <= datetime.now(UTC)
