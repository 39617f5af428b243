"""One believable record dated long ago must not make the stream refuse what follows it."""

from __future__ import annotations

import json

from handlers.registry import Registry
from handlers.rules import Rules
from streams.drivers.embedded import EmbeddedRunner
from tests.hostile import APPEAL


def test_one_record_from_long_ago_refuses_nothing_after_it(
    rules: Rules, registry: Registry
) -> None:
    first = {**APPEAL, "id": "long-ago", "time": "2000-01-01T00:00:00+00:00"}
    real = [{**APPEAL, "id": f"real-{n}", "time": f"2026-11-02T09:0{n}:00+08:00"} for n in range(5)]
    runner = EmbeddedRunner(rules, registry)
    for n, doc in enumerate([first, *real], start=1):
        runner.feed(json.dumps(doc, ensure_ascii=False), "poison", n)
    assert runner.tally.cases == 1 + len(real), runner.tally
