"""Bad input never stops a run and is never lost: routed, dead-lettered with reason, or counted
as a duplicate. Includes a property-based test that throws garbage at the intake."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.registry import Registry
from handlers.rules import Rules
from schemas import EventRejected
from streams.drivers.embedded import EmbeddedRunner
from streams.topics import Record
from tests.conftest import EventFactory


def run(
    rules: Rules, registry: Registry, lines: list[str | bytes]
) -> tuple[EmbeddedRunner, list[Record]]:
    out: list[Record] = []
    runner = EmbeddedRunner(rules, registry, out.append)
    for n, line in enumerate(lines, start=1):
        runner.feed(line, "test.jsonl", n)
    return runner, out


def dead_letters(out: list[Record]) -> list[Any]:
    return [r.value.data for r in out if isinstance(r.value, EventRejected)]


def test_each_kind_of_bad_record(rules: Rules, registry: Registry, make: EventFactory) -> None:
    good = json.loads(make.appeal())
    wrong_type = json.loads(make.appeal())
    wrong_type["data"]["channel"] = 12345
    unknown = json.loads(make.appeal())
    unknown["type"] = "minhu.complaint.filed"
    missing = json.loads(make.appeal())
    del missing["data"]["location"]
    no_time = json.loads(make.appeal())
    del no_time["time"]
    too_long = json.loads(make.appeal("长" * 4001))
    lines: list[str | bytes] = [
        '{"specversion": "1.0", "id": ',
        json.dumps(wrong_type),
        json.dumps(unknown),
        json.dumps(missing),
        json.dumps(no_time),
        json.dumps(too_long, ensure_ascii=False),
        make.alarm("ghost-sensor", "gw-1", "gas_leak"),
        b"\xff\xfe not utf-8",
        "[1, 2, 3]",
        json.dumps(good),
    ]
    runner, out = run(rules, registry, lines)
    dls = dead_letters(out)
    assert runner.tally.received == 10 and runner.tally.cases == 1 and runner.tally.rejected == 9
    assert runner.tally.balanced
    kinds = [d.error_kind for d in dls]
    assert kinds == [
        "malformed_json",
        "invalid_event",
        "unknown_type",
        "invalid_event",
        "invalid_event",
        "invalid_event",
        "unknown_sensor",
        "malformed_json",
        "invalid_event",
    ]
    reasons = [d.reason for d in dls]
    assert "data.channel" in reasons[1]
    assert "minhu.complaint.filed" in reasons[2]
    assert "data.location" in reasons[3] and "is missing" in reasons[3]
    assert "time" in reasons[4]
    assert "4000 characters" in reasons[5]
    assert "ghost-sensor" in reasons[6]
    # The original payload travels with the reason, with where it came from.
    assert dls[0].payload == lines[0] and dls[0].received_from == "test.jsonl"
    assert [d.position for d in dls] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert dls[2].event_id == unknown["id"] and dls[2].event_type == "minhu.complaint.filed"


def test_a_byte_order_mark_is_refused_saying_so(
    rules: Rules, registry: Registry, make: EventFactory
) -> None:
    """A record starting with a UTF-8 BOM (an editor's "UTF-8 with BOM") is refused with a
    reason that names it, not "expected value at line 1 column 1"; its id is still read."""
    line = make.appeal(id_="bom-1")
    runner, out = run(rules, registry, [b"\xef\xbb\xbf" + line.encode(), "\ufeff" + line])
    dls = dead_letters(out)
    assert [d.error_kind for d in dls] == ["malformed_json"] * 2 and runner.tally.balanced
    for d in dls:
        assert "byte-order mark" in d.reason and "without BOM" in d.reason, d.reason
        assert d.event_id == "bom-1" and d.payload.startswith("\ufeff")


def test_a_time_without_t_or_seconds_is_refused(
    rules: Rules, registry: Registry, make: EventFactory
) -> None:
    lines = [make.appeal(time=t) for t in ("2026-11-02 09:00+08:00", "2026-11-02T09:00+08:00")]
    runner, out = run(rules, registry, lines)
    dls = dead_letters(out)
    assert [d.error_kind for d in dls] == ["invalid_event"] * 2 and runner.tally.cases == 0
    assert all("RFC 3339" in d.reason and "time" in d.reason for d in dls)


def test_repeated_event_id_is_a_duplicate(
    rules: Rules, registry: Registry, make: EventFactory
) -> None:
    line = make.appeal("楼上噪音")
    same_id_other_text = make.appeal("完全不同的内容", id_=json.loads(line)["id"])
    runner, out = run(rules, registry, [line, line, same_id_other_text])
    assert (runner.tally.cases, runner.tally.duplicates) == (1, 2) and runner.tally.balanced
    assert len(out) == 1


def test_same_id_from_another_source_is_another_event(
    rules: Rules, registry: Registry, make: EventFactory
) -> None:
    a = json.loads(make.appeal("楼上噪音"))
    b = dict(a, source="/wechat")
    runner, _ = run(rules, registry, [json.dumps(a), json.dumps(b)])
    assert runner.tally.cases == 2


envelope_like = st.fixed_dictionaries(
    {},
    optional={
        "specversion": st.sampled_from(["1.0", "0.3", 1]),
        "id": st.one_of(st.text(max_size=5), st.integers()),
        "source": st.text(max_size=5),
        "type": st.sampled_from(
            ["minhu.appeal.reported", "minhu.alarm.raised", "minhu.patrol.reported", "x"]
        ),
        "time": st.sampled_from(["2026-11-01T09:00:00+08:00", "yesterday", "2026-11-01T09:00:00"]),
        "data": st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "caller",
                            "channel",
                            "text",
                            "location",
                            "id",
                            "sensor_id",
                            "gateway_id",
                            "alarm_type",
                            "micro_grid_id",
                            "address",
                        ]
                    ),
                    children,
                    max_size=5,
                )
            ),
            max_leaves=10,
        ),
    },
)
garbage = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    envelope_like.map(json.dumps),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(garbage, min_size=1, max_size=20), valid_every=st.integers(2, 6))
def test_garbage_never_crashes_and_nothing_is_lost(
    rules: Rules, registry: Registry, records: list[str | bytes], valid_every: int
) -> None:
    make = EventFactory()
    lines: list[str | bytes] = []
    for i, r in enumerate(records):
        lines.append(r)
        if i % valid_every == 0:
            lines.append(make.appeal())
    runner, out = run(rules, registry, lines)
    t = runner.tally
    assert t.received == len(lines)
    assert t.balanced
    assert t.cases >= 1
    assert len(dead_letters(out)) == t.rejected
    assert all(d.reason for d in dead_letters(out))
