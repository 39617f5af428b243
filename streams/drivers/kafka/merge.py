"""The order a worker decides a partition's records in: event time across its input topics.

A partition's inputs come from several topics (appeals, alarms, patrol reports, actions,
ratings, and records forwarded from other partitions), fetched independently, so they arrive
interleaved in no particular order. The worker decides them in the order `minhu route` would:
by event time. Like Kafka Streams' timestamp synchronisation, `Merge` holds each source's
records in offset order and releases the earliest head across sources — but only once every
other source has a record waiting or has nothing left to read (it is caught up with the
broker): a source that is behind may still hold something earlier.

Record timestamps are the events' times (`minhu publish` sets them so). Ties go to the source
listed first, then to the lower offset.

A record's timestamp is whatever its producer set, though: a gateway that writes straight to
its topic can date a record in 2100, and a record at the head of its source waits until every
other source's head is later — a far-future head would hold back every record behind it on
its topic for as long as the other topics have anything. So a record is ordered by its
timestamp or by when it was received, whichever is earlier (no event happens after it is
received; a producer's clock ahead of ours is taken back to ours), and a timestamp that is
not a number (NaN) is taken as when it was received. A history read long after it happened
keeps its own order; what the engine then refuses for its time (escalation_rules.yaml,
`time:`) it refuses whatever its place in the merge.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(order=True, slots=True)
class Held(Generic[T]):
    timestamp: float  # seconds since the epoch (Faust's unit): the event's time
    rank: int  # the source's place in the list
    offset: int
    item: T = field(compare=False)


class Merge(Generic[T]):
    def __init__(self, sources: list[str]) -> None:
        self.sources = sources
        self.rank = {s: i for i, s in enumerate(sources)}
        self.queues: dict[str, deque[Held[T]]] = {s: deque() for s in sources}

    def __len__(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def add(self, source: str, timestamp: float, offset: int, item: T, received: float) -> None:
        """Hold `item`, ordered by its `timestamp` taken back to `received` (both seconds since
        the epoch) when it is later, or not a number."""
        at = timestamp if timestamp <= received else received  # NaN <= x is False
        self.queues[source].append(Held(at, self.rank[source], offset, item))

    def release(self, caught_up: Callable[[str], bool | None]) -> Iterator[T]:
        """The records that can be decided now, earliest first. `caught_up(source)` says True
        (nothing left to read), False (more to read) or None (the broker has not said yet):
        a record waits for every other source that is not known to be caught up."""
        while True:
            heads = [q[0] for q in self.queues.values() if q]
            if not heads:
                return
            first = min(heads)
            for source, q in self.queues.items():
                if not q and caught_up(source) is not True:
                    return
            self.queues[self.sources[first.rank]].popleft()
            yield first.item
