"""A longer demo history (`minhu bench replay --days`) runs at the same density over more days,
ending where the demo's month ends — a year of a city's appeals, not a busier month — and
before today, so that no event of it is dated ahead of the clock."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from handlers.registry import Registry
from handlers.rules import Rules
from streams.bench.core import _demo_history
from streams.simulation.demo import DAYS
from streams.simulation.synthetic import DEFAULT_START

INTAKE = ("minhu.appeal.reported", "minhu.patrol.reported", "minhu.alarm.raised")


def intake_times(lines: list[str]) -> list[datetime]:
    out = []
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue  # the demo's hostile records
        if isinstance(doc, dict) and doc.get("type") in INTAKE:
            out.append(datetime.fromisoformat(doc["time"]))
    return out


def test_a_longer_history_starts_earlier_and_ends_with_the_month(
    rules: Rules, registry: Registry
) -> None:
    month_end = DEFAULT_START + timedelta(days=DAYS)
    for days in (DAYS, 120):
        times = intake_times(_demo_history(rules, registry, 200, days))
        assert len(times) > 150
        assert min(times) >= month_end - timedelta(days=days)
        assert max(times) <= month_end + timedelta(days=2)  # a caller's late follow-up
        assert max(times) - min(times) > timedelta(days=days * 0.8)
