"""`minhu demo`: a synthetic month for the sample street, with people answering the cases.

Intake events come from `StreamGenerator`; as minhu dispatches cases, `Responders` answer them
(acknowledge, resolve, ask to escalate, or let a deadline pass; verify; rate), and their
actions are fed back in time order. Everything fed is kept, so `--events-out` writes a history
that `minhu route --until` replays to the very same records.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime, timedelta

from schemas import CloudEvent
from streams.drivers.embedded import EmbeddedRunner
from streams.simulation.synthetic import DEFAULT_START, Responders, StreamGenerator

DAYS = 30
SETTLE = timedelta(days=10)  # after the last intake event, time for every deadline to play out


def demo_until(days: int = DAYS) -> datetime:
    return DEFAULT_START + timedelta(days=days) + SETTLE


def run_demo(
    runner: EmbeddedRunner,
    emitted: list[CloudEvent],
    events: int,
    seed: int,
    fed: list[str],
    progress: Callable[[int, int], None] | None = None,
    days: int = DAYS,
) -> datetime:
    """Feed the synthetic month and the responders' answers; return the end of the run.
    `emitted` is the list the runner's `on_event` appends each output event to. A longer
    history (`days`) starts earlier and ends where the month ends."""
    start = DEFAULT_START + timedelta(days=DAYS - days)
    intake = StreamGenerator(runner.registry, seed=seed, start=start, days=days).events(events)
    responders = Responders(runner.registry, seed=seed)
    until = demo_until()
    queue: list[tuple[datetime, int, str]] = [(t, i, line) for i, (t, line) in enumerate(intake)]
    heapq.heapify(queue)
    seq = len(queue)
    done = 0

    def react(start: int, seen: datetime) -> None:
        nonlocal seq
        for event in emitted[start:]:
            for at, line in responders.react(event, seen):
                if at <= until:
                    heapq.heappush(queue, (at, seq, line))
                    seq += 1

    while True:
        while queue:
            at, _, line = heapq.heappop(queue)
            before = len(emitted)
            fed.append(line)
            runner.feed(line, "demo", len(fed))
            react(before, at)
            done += 1
            if progress and done % 500 == 0:
                progress(done, done + len(queue))
        before = len(emitted)
        runner.advance(until)
        react(before, until)
        if not queue:
            break
    if progress:
        progress(done, done)
    return until
