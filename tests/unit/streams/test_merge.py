"""The worker's merge (streams/drivers/kafka/merge.py): event time across a partition's topics,
and no record's own timestamp can hold the others back."""

from __future__ import annotations

from streams.drivers.kafka.merge import Merge

NOW = 1_796_000_000.0  # when the records below are received (seconds since the epoch)


def test_earliest_head_first_across_sources() -> None:
    merge: Merge[str] = Merge(["alarm", "appeal"])
    merge.add("appeal", NOW - 30, 0, "appeal-1", NOW)
    merge.add("alarm", NOW - 20, 0, "alarm-1", NOW)
    merge.add("appeal", NOW - 10, 1, "appeal-2", NOW)
    assert list(merge.release(lambda source: True)) == ["appeal-1", "alarm-1", "appeal-2"]


def test_a_far_future_timestamp_holds_nothing_back() -> None:
    """An alarm its gateway dated in 2100 is ordered as of when it was received: the alarm
    behind it on its topic is not held back behind every appeal received since."""
    merge: Merge[str] = Merge(["alarm", "appeal"])
    merge.add("alarm", 4_102_444_800.0, 0, "alarm-2100", NOW)  # 2100-01-01
    merge.add("alarm", NOW + 1, 1, "alarm-next", NOW + 1)
    for n in range(1, 50):
        merge.add("appeal", NOW + 1 + n, n, f"appeal-{n}", NOW + 1 + n)
    order = list(merge.release(lambda source: True))
    assert order[:2] == ["alarm-2100", "alarm-next"], order[:5]
    assert len(order) == 51


def test_a_timestamp_that_is_no_number_is_when_it_was_received() -> None:
    merge: Merge[str] = Merge(["alarm", "appeal"])
    merge.add("alarm", float("nan"), 0, "alarm-nan", NOW)
    merge.add("appeal", NOW - 5, 0, "appeal-before", NOW)
    merge.add("appeal", NOW + 5, 1, "appeal-after", NOW + 5)
    assert list(merge.release(lambda source: True)) == [
        "appeal-before",
        "alarm-nan",
        "appeal-after",
    ]


def test_a_history_keeps_its_own_order() -> None:
    """Records read long after they happened are ordered by their own times."""
    merge: Merge[str] = Merge(["alarm", "appeal"])
    merge.add("alarm", NOW - 86400 * 30, 0, "old-alarm", NOW)
    merge.add("appeal", NOW - 86400 * 31, 0, "older-appeal", NOW)
    assert list(merge.release(lambda source: True)) == ["older-appeal", "old-alarm"]
