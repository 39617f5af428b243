"""When a worker's partition runs on the wall clock: only once it has read everything there is
and its events are live, or have stopped coming for `IDLE` seconds. A partition just taken (a
rebalance, a restart) has seen no record yet: that is not the same as none for `IDLE`, and on a
broker whose high watermark is stale or low right after the rebalance, the wall clock would
fire the deadlines of a history still streaming in."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from handlers.engine import Engine
from handlers.registry import Registry
from handlers.rules import Rules
from handlers.state import DictStore
from streams.drivers.kafka.merge import Merge
from streams.drivers.kafka.worker import IDLE, MinhuWorker, Part

SOURCES = ["minhu.intake.appeal", "minhu.actions"]


def worker(caught_up: bool = True) -> Any:
    """What `_live` uses of a worker: every input read up to the broker's high watermark."""
    return SimpleNamespace(
        s=SimpleNamespace(clock="live", live_window=300.0),
        sources=SOURCES,
        _caught_up=lambda part, topic: caught_up,
    )


def history_part(registry: Registry, rules: Rules) -> Part:
    """A partition whose engine stands in a history a year old."""
    part = Part(0, Engine(rules, registry, DictStore()), Merge(SOURCES))
    part.engine.clock = datetime(2025, 11, 1, tzinfo=UTC)
    return part


def test_a_partition_just_taken_is_not_idle_yet(registry: Registry, rules: Rules) -> None:
    part = history_part(registry, rules)
    assert not MinhuWorker._live(worker(), part, datetime.now(UTC))


def test_a_partition_caught_up_with_nothing_new_for_idle_runs_on_the_wall_clock(
    registry: Registry, rules: Rules
) -> None:
    part = history_part(registry, rules)
    w, wall = worker(), datetime.now(UTC)
    part.arrived = time.monotonic() - IDLE / 2
    assert not MinhuWorker._live(w, part, wall)  # records came in lately: history, its own time
    part.arrived = time.monotonic() - IDLE
    assert MinhuWorker._live(w, part, wall)
    assert not MinhuWorker._live(worker(caught_up=False), part, wall)  # more to read


def test_live_events_run_on_the_wall_clock_at_once(registry: Registry, rules: Rules) -> None:
    part = history_part(registry, rules)
    wall = datetime.now(UTC)
    part.engine.clock = wall
    assert MinhuWorker._live(worker(), part, wall)
