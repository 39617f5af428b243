"""Hostile input through the embedded driver: no record crashes a run, bends the clock or goes
missing; every refusal says why."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.registry import Registry
from handlers.rules import Rules
from schemas import CloudEvent
from streams.drivers.embedded import EmbeddedRunner
from streams.topics import Record
from tests.conftest import EventFactory
from tests.hostile import APPEAL, hostile_record, nasty_records, times

NOW = datetime(2026, 11, 3, tzinfo=UTC)


def run(
    rules: Rules, registry: Registry, lines: list[bytes]
) -> tuple[EmbeddedRunner, list[CloudEvent], list[Record]]:
    events: list[CloudEvent] = []
    records: list[Record] = []
    runner = EmbeddedRunner(rules, registry, records.append, on_event=events.append)
    for n, line in enumerate(lines, start=1):
        runner.feed(line, "hostile", n)
    return runner, events, records


def check(runner: EmbeddedRunner, events: list[CloudEvent], records: list[Record]) -> None:
    assert runner.tally.balanced, runner.tally
    for e in events:
        if e.type == "minhu.event.rejected":
            assert e.data.reason.strip(), e  # type: ignore[attr-defined]
    for r in records:
        line = r.to_json_line()
        json.loads(line)  # every record out is JSON any consumer can read
        line.encode("utf-8")  # and UTF-8 (no lone surrogate escaped the boundary)
        assert "\x00" not in line


def test_the_file_of_nasty_records(rules: Rules, registry: Registry) -> None:
    lines = nasty_records()
    runner, events, records = run(rules, registry, lines)
    check(runner, events, records)
    t = runner.tally
    assert t.received == len(lines)
    assert t.duplicates >= 1
    kinds = t.by_rejection
    for kind in ("malformed_json", "invalid_event", "too_large", "implausible_time"):
        assert kinds[kind] >= 1, kinds
    assert kinds["implausible_reading"] >= 2  # below its threshold; beyond what it measures
    # Nothing routed is dated where no clock should go.
    for e in events:
        assert e.time < datetime(2027, 1, 1, tzinfo=UTC), e


def _appeal_at(when: object, n: int) -> bytes:
    return json.dumps({**APPEAL, "id": f"t-{n}", "time": when}, ensure_ascii=False).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile_record(), min_size=1, max_size=12))
def test_any_hostile_record(rules: Rules, registry: Registry, lines: list[bytes]) -> None:
    check(*run(rules, registry, lines))


@settings(max_examples=200, deadline=None)
@given(st.lists(times, min_size=1, max_size=8))
def test_any_timestamp(rules: Rules, registry: Registry, stamps: list[object]) -> None:
    """Arbitrary times: each is refused or believed, and a believed one is within the bounds
    of escalation_rules.yaml, so no clock is ever moved beyond them."""
    lines = [_appeal_at(s, n) for n, s in enumerate(stamps)]
    runner, events, records = run(rules, registry, lines)
    check(runner, events, records)
    wall = datetime.now(UTC)
    assert runner.engine.clock <= wall + rules.time.max_ahead
    for e in events:
        if e.type == "minhu.case.routed":
            assert rules.time.earliest <= e.time <= wall + rules.time.max_ahead


def test_one_appeal_from_the_future_moves_no_clock(
    rules: Rules, registry: Registry, make: EventFactory
) -> None:
    """One appeal dated 2100 among 300 real ones escalates nothing: without it and with it,
    the same records come out, but for its dead letter."""
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    real = [
        make.appeal(time=(start + timedelta(minutes=n)).isoformat()).encode() for n in range(300)
    ]
    future = _appeal_at("2100-01-01T00:00:00+08:00", 9999)
    _, without, _ = run(rules, registry, real)
    runner, with_it, _ = run(rules, registry, [*real[:150], future, *real[150:]])
    dead = [e for e in with_it if e.type == "minhu.event.rejected"]
    assert [d.data.error_kind for d in dead] == ["implausible_time"]  # type: ignore[attr-defined]
    assert "2100" in dead[0].data.reason  # type: ignore[attr-defined]
    assert [e for e in with_it if e not in dead] == without
    assert runner.engine.clock < datetime(2027, 1, 1, tzinfo=UTC)


def test_far_ahead_of_the_stream_is_refused(rules: Rules, registry: Registry) -> None:
    """An event more than `time.max_jump` after the stream's latest is refused, even when the
    wall clock would allow it (a history replayed years later), once the clock rests on more
    than one event."""
    lines = [
        _appeal_at("2020-01-01T09:00:00+08:00", 1),
        _appeal_at("2020-01-01T10:00:00+08:00", 4),
        _appeal_at("2020-03-01T09:00:00+08:00", 2),  # 60 days later
        _appeal_at("2020-01-02T09:00:00+08:00", 3),
    ]
    runner, events, _ = run(rules, registry, lines)
    kinds = [e.data.error_kind for e in events if e.type == "minhu.event.rejected"]  # type: ignore[attr-defined]
    assert kinds == ["implausible_time"]
    assert runner.tally.cases == 3


def test_readings(rules: Rules, registry: Registry) -> None:
    from tests.hostile import ALARM

    def alarm(n: int, **data: object) -> bytes:
        doc = {**ALARM, "id": f"a-{n}", "data": {**ALARM["data"], **data}}
        return json.dumps(doc).encode()

    lines = [
        alarm(1, reading="NaN"),
        alarm(2, reading=True),
        alarm(3, reading=float("inf")),  # written Infinity
        alarm(4, reading=3.0),  # gas below its threshold: refused
        alarm(5, reading=500.0),  # beyond 100 %LEL: refused
        alarm(6, reading=42.0),  # a real one
    ]
    runner, events, _ = run(rules, registry, lines)
    dead = {e.subject: e.data for e in events if e.type == "minhu.event.rejected"}  # type: ignore[attr-defined]
    assert dead["a-1"].error_kind == "invalid_event" and "reading" in dead["a-1"].reason
    assert dead["a-2"].error_kind == "invalid_event"
    assert dead["a-3"].error_kind in ("invalid_event", "malformed_json")
    assert dead["a-4"].error_kind == "implausible_reading" and "below" in dead["a-4"].reason
    assert dead["a-5"].error_kind == "implausible_reading"
    assert runner.tally.cases == 1


def test_a_dead_letter_before_any_valid_event_carries_when_it_was_read(
    rules: Rules, registry: Registry
) -> None:
    before = datetime.now(UTC)
    _, events, _ = run(rules, registry, [b"not json", _appeal_at("2026-11-02T09:00:00+08:00", 1)])
    dead = events[0]
    assert dead.type == "minhu.event.rejected"
    assert dead.time >= before - timedelta(seconds=1)  # not 1970-01-01
