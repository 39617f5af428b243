"""The replay streams: the rates and outcomes are folded one event at a time, the history is
read as the run goes, and nothing of either is kept — with the very results of the whole list."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from handlers.rates import Assignment, GroupBy, RateFold, RateRow, Rating, assignments_and_ratings
from handlers.registry import Registry
from handlers.rules import Rules
from handlers.whatif import outcomes
from schemas import CloudEvent
from streams.analysis import replay as rp
from streams.drivers.embedded import EmbeddedRunner
from streams.simulation.demo import demo_until, run_demo

UNTIL = demo_until()


@pytest.fixture(scope="module")
def demo(rules: Rules, registry: Registry) -> tuple[list[str], list[CloudEvent]]:
    """A small demo month: the records fed, and every event the run put out (in order)."""
    emitted: list[CloudEvent] = []
    fed: list[str] = []
    runner = EmbeddedRunner(rules, registry, on_event=emitted.append)
    run_demo(runner, emitted, 300, 11, fed)
    return fed, emitted


def reference_rates(events: list[CloudEvent], as_of: datetime, by: GroupBy) -> list[RateRow]:
    """The rates counted as they were before the fold: every assignment and rating kept, then
    judged at `as_of`."""
    assignments: list[Assignment]
    ratings: list[Rating]
    assignments, ratings = assignments_and_ratings(events)

    def key(unit: str, tier: str, category: str, at: datetime) -> str:
        return {"unit": unit, "tier": tier, "category": category, "period": at.strftime("%Y-%m")}[
            by
        ]

    acc: dict[str, list[int]] = {}
    for a in assignments:
        if a.assigned_at > as_of or a.reassigned:
            continue
        row = acc.setdefault(key(a.unit_id, a.tier, a.category, a.assigned_at), [0] * 6)
        if a.acknowledged or a.ended or (a.ack_by is not None and a.ack_by <= as_of):
            row[0] += 1
            row[1] += a.acknowledged_in_time
        if a.resolved or a.ended or (a.resolve_by is not None and a.resolve_by <= as_of):
            row[2] += 1
            row[3] += a.resolved
    for r in ratings:
        if r.at > as_of:
            continue
        row = acc.setdefault(key(r.unit_id, r.tier, r.category, r.at), [0] * 6)
        row[4] += 1
        row[5] += r.verdict in ("satisfied", "basically_satisfied")
    return [RateRow(g, *acc[g]) for g in sorted(acc)]


@pytest.mark.parametrize("by", ["unit", "tier", "category", "period"])
def test_the_fold_counts_what_the_whole_list_counts(
    demo: tuple[list[str], list[CloudEvent]], by: GroupBy
) -> None:
    _, events = demo
    times = sorted(e.time for e in events)
    latest = times[-1]
    # As of the last event (the fold counts ended assignments as they end), and as of moments
    # in the middle of the run (events after them must be left out, open ones judged then).
    fold = RateFold(by)
    for ev in events:
        fold.add(ev)
    assert fold.as_of == latest
    assert fold.rows() == reference_rates(events, latest, by)
    for as_of in (times[len(times) // 3], times[len(times) // 2], UNTIL):
        judged = RateFold(by, as_of)
        for ev in events:
            judged.add(ev)
        expected = reference_rates(events, as_of, by)
        assert any(r.due_response for r in expected)
        assert judged.rows() == expected, as_of


def test_a_replay_reads_as_it_goes_and_matches_the_list_based_analysis(
    demo: tuple[list[str], list[CloudEvent]],
    rules: Rules,
    registry: Registry,
    tmp_path: Path,
) -> None:
    fed, _ = demo
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(fed) + "\n", encoding="utf-8")
    history = rp.from_file(path, None, None)
    read = 0

    def counted() -> Iterator[str | bytes]:
        nonlocal read
        for line in history:
            read += 1
            yield line

    seen: list[CloudEvent] = []
    read_at_first_event: list[int] = []

    def on_event(ev: CloudEvent) -> None:
        if not seen:
            read_at_first_event.append(read)
        seen.append(ev)

    result = rp.run(rp.History(counted), rules, registry, UNTIL, on_event=on_event)
    assert result.records == read == len(fed)
    assert read_at_first_event == [1]  # the first record is decided before the second is read
    # The same as holding every event and analysing the list, as the replay did before.
    events: list[CloudEvent] = []
    runner = EmbeddedRunner(rules, registry, on_event=events.append)
    for n, line in enumerate(fed, start=1):
        runner.feed(line, "replay", n)
    runner.finish(UNTIL)
    assert [e.id for e in seen] == [e.id for e in events]
    assert result.outcomes == outcomes(events)
    assert result.rates.rows() == reference_rates(events, UNTIL, "unit")
    # A history file is read again from its start for a second run (a comparison).
    again = rp.run(history, rules, registry, UNTIL)
    assert again.records == len(fed) and again.outcomes == result.outcomes


def test_rates_folded_by_the_latest_event_can_be_judged_then_or_later_only(
    demo: tuple[list[str], list[CloudEvent]],
) -> None:
    _, events = demo
    fold = RateFold("unit")
    for ev in events:
        fold.add(ev)
    assert fold.latest is not None
    assert fold.judges(fold.latest) and fold.judges(UNTIL)
    assert fold.rows(UNTIL) == reference_rates(events, UNTIL, "unit")
    earlier = min(e.time for e in events)
    assert not fold.judges(earlier)  # assignments already counted may come after it
    with pytest.raises(ValueError, match="cannot be judged"):
        fold.rows(earlier)
    told = RateFold("unit", UNTIL)
    assert told.judges(UNTIL) and not told.judges(fold.latest)


def test_a_run_in_a_second_process_is_the_same_run(
    demo: tuple[list[str], list[CloudEvent]],
    rules: Rules,
    registry: Registry,
    tmp_path: Path,
) -> None:
    fed, _ = demo
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(fed) + "\n", encoding="utf-8")
    history = rp.from_file(path, None, None)
    job = rp.Elsewhere(rp.run, lines=history, rules=rules, registry=registry, until=UNTIL)
    here = rp.run(history, rules, registry, UNTIL)
    there = job.result()
    assert isinstance(there, rp.Run)
    assert there.records == here.records == len(fed)
    assert there.outcomes == here.outcomes
    assert there.rates.rows() == here.rates.rows()
    assert there.tally == here.tally
    # A failure there is an error here, with what the other process said.
    broken = rp.Elsewhere(
        rp.run, lines=rp.History(missing), rules=rules, registry=registry, until=UNTIL
    )
    with pytest.raises(RuntimeError, match="no such history"):
        broken.result()


def missing() -> Iterator[str]:
    raise FileNotFoundError("no such history")
