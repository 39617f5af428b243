"""The embedded runner over a synthetic stream: topics, determinism, and the tally."""

from __future__ import annotations

import json
import re

from handlers.registry import Registry
from handlers.rules import Rules
from streams.drivers.embedded import EmbeddedRunner
from streams.simulation.synthetic import StreamGenerator
from streams.topics import Record, Topics


def route_lines(
    rules: Rules, registry: Registry, lines: list[str], prefix: str = "minhu."
) -> tuple[EmbeddedRunner, list[str]]:
    out: list[Record] = []
    runner = EmbeddedRunner(rules, registry, out.append, Topics(prefix))
    for n, line in enumerate(lines, start=1):
        runner.feed(line, "stream", n)
    return runner, [r.to_json_line() for r in out]


def test_synthetic_month_reaches_every_tier_and_balances(rules: Rules, registry: Registry) -> None:
    lines = list(StreamGenerator(registry, seed=3).lines(3000))
    runner, out = route_lines(rules, registry, lines)
    t = runner.tally
    assert t.balanced and t.received == 3000
    assert t.rejected >= 7 and t.duplicates >= 1 and t.attached >= 1
    assert set(t.by_tier) == {"micro_grid", "grid", "community", "street"}
    topics = {json.loads(line)["topic"] for line in out}
    dispatch = {f"minhu.dispatch.{t}" for t in ("micro_grid", "grid", "community", "street")}
    assert dispatch | {"minhu.deadletter"} <= topics <= set(Topics().all())


def test_output_is_byte_identical_for_the_same_input(rules: Rules, registry: Registry) -> None:
    lines = list(StreamGenerator(registry, seed=5).lines(1500))
    _, first = route_lines(rules, registry, lines)
    _, second = route_lines(rules, registry, lines)
    assert first == second


def test_topic_prefix_and_keys(rules: Rules, registry: Registry) -> None:
    lines = list(StreamGenerator(registry, seed=9).lines(300))
    _, out = route_lines(rules, registry, lines, prefix="chengdu.qy.")
    docs = [json.loads(line) for line in out]
    assert all(d["topic"].startswith("chengdu.qy.") for d in docs)
    for d in docs:
        if d["value"]["type"] == "minhu.case.routed":
            assert d["key"] == d["value"]["data"]["case_id"]
            assert d["topic"].endswith(d["value"]["data"]["tier"]) or d["value"]["data"]["notified"]


def test_a_dead_letter_is_keyed_by_a_digest(rules: Rules, registry: Registry) -> None:
    """Issue 13: a refused record's `id` may be any text, personal data included; the dead
    letter's key is its own id (a digest), and its value keeps the record as it came."""
    said = "王建华 13980012345 清源路10号"
    bad = {"id": said, "type": "minhu.appeal.reported", "time": "2026-11-02T09:00:00+08:00"}
    unknown = {
        "specversion": "1.0",
        "id": "王建华13980012345",
        "source": "/test",
        "type": "minhu.case.acknowledged",
        "time": "2026-11-02T09:00:00+08:00",
        "data": {"case_id": "case-000000000000-0000000000", "actor_id": "p0007"},
    }
    lines = [json.dumps(bad, ensure_ascii=False), json.dumps(unknown, ensure_ascii=False)]
    _, out = route_lines(rules, registry, lines)
    docs = [json.loads(line) for line in out]
    assert [d["topic"] for d in docs] == ["minhu.deadletter"] * 2
    for d in docs:
        assert d["key"] == d["value"]["id"] and re.fullmatch(r"rejected-[0-9a-f]{20}", d["key"])
        assert "13980012345" in d["value"]["data"]["payload"]
    assert docs[0]["value"]["subject"] == said  # the value may: the topic is the auditor's
