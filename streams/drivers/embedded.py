"""The embedded driver: the engine in one process, with an optional SQL ledger.

It is what `minhu route`, `minhu demo`, `minhu replay` and the tests run, and the reference the
Kafka workers are compared against. For each raw record it asks the engine
(`handlers/engine.py`) what to do, publishes the records to the sink, and gives the rows and
the changed buckets to the ledger, which writes them at record boundaries.

Time is event time by default: the engine fires every deadline before an event's time before
it handles the event. A live run passes `clock` and calls `advance(clock())` as time goes by.

With a ledger the run resumes where the last one stopped: the engine's buckets come back from
it, and a record already written at the same position with the same content is a replay — its
outputs are emitted again as they were, and nothing is decided twice. So a run killed at any
moment and started again on the same input gives the same output and the same ledger as a run
that was never interrupted.

Every record ends in exactly one of: a new case, attached to an open case, an action or rating
applied, a dead letter, or a duplicate — `Tally` counts them, and `Tally.balanced` checks that
nothing was lost.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from handlers.engine import Effects, Engine, IntakeRow, Outcome
from handlers.lifecycle import CaseState
from handlers.registry import Registry
from handlers.rules import Rules
from handlers.state import DictStore, Position
from schemas import CaseRouted, CloudEvent, EventRejected
from streams.drivers.ledger import Ledger, clock_step
from streams.topics import Record, Topics

log = logging.getLogger("minhu.auth")


@dataclass
class Tally:
    received: int = 0
    cases: int = 0
    attached: int = 0
    applied: int = 0  # actions and ratings applied to a case
    rejected: int = 0
    duplicates: int = 0
    escalations: int = 0  # emitted, including those fired by deadlines
    closures: int = 0
    records_out: int = 0
    by_tier: Counter[str] = field(default_factory=Counter)
    by_rejection: Counter[str] = field(default_factory=Counter)

    @property
    def balanced(self) -> bool:
        """events in = new cases + attached + applied + dead letters + duplicates."""
        return self.received == (
            self.cases + self.attached + self.applied + self.rejected + self.duplicates
        )

    def count(self, outcome: Outcome | None) -> None:
        if outcome == "routed":
            self.cases += 1
        elif outcome == "attached":
            self.attached += 1
        elif outcome == "applied":
            self.applied += 1
        elif outcome == "rejected":
            self.rejected += 1
        elif outcome in ("duplicate", "replayed"):
            self.duplicates += 1  # a replay in a run without a ledger: the same record again


class EmbeddedRunner:
    """Feed raw records with `feed()`. Each output event goes once to `on_event`, and as one
    record per topic it is published on to `sink`; rows go to the ledger if any."""

    def __init__(
        self,
        rules: Rules,
        registry: Registry,
        sink: Callable[[Record], None] | None = None,
        topics: Topics | None = None,
        ledger: Ledger | None = None,
        clock: Callable[[], datetime] | None = None,
        on_event: Callable[[CloudEvent], None] | None = None,
    ) -> None:
        self.rules = rules
        self.registry = registry
        self.sink = sink
        self.topics = topics or Topics()
        self.ledger = ledger
        self.clock = clock
        self.on_event = on_event
        self.tally = Tally()
        self.engine = Engine(rules, registry, ledger.load_store() if ledger else DictStore())

    def case(self, case_id: str) -> CaseState | None:
        return self.engine.case(case_id)

    # ---- time ----

    def advance(self, now: datetime, inclusive: bool = True) -> None:
        """Fire every deadline due by `now` (strictly before it when not `inclusive`)."""
        self._apply(self.engine.advance(now, inclusive), None)

    def finish(self, until: datetime) -> None:
        """The end of a run (`minhu route --until`): the clock moves on to `until`. On a rerun
        whose first run got this far, what that step emitted is emitted again."""
        if self.ledger is not None:
            for out in self.ledger.replay_clock(until):
                self._publish(out)
        self._apply(self.engine.advance(until), clock_step(until))

    # ---- records ----

    def feed(self, raw: str | bytes, received_from: str, position: int | None = None) -> Effects:
        """Decide one record; the returned `Effects` say what became of it (a replay's hold
        only its outcome and the outputs emitted again)."""
        at = Position(received_from, position)
        self.tally.received += 1
        if self.ledger is not None:
            payload = raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")
            replay = self.ledger.replay(at, payload)
            if replay is not None:
                if replay.event_time is not None and self.clock is None:
                    t = self.engine.reached(replay.event_time, datetime.now(UTC))
                    self._apply(self.engine.advance(t, inclusive=False), None)
                for out in replay.outputs:
                    self._publish(out)
                self.tally.count(replay.outcome)
                return Effects(outputs=list(replay.outputs), outcome=replay.outcome)
        now = self.clock() if self.clock else None
        eff = self.engine.feed(
            raw, at, read_at=now, advance=self.clock is None, now=now or datetime.now(UTC)
        )
        if eff.refusal is not None and eff.refusal.kind == "unauthorized" and eff.intake:
            log.warning(
                "refused %s %s: %s",
                eff.intake.event_type,
                eff.intake.identity[1] if eff.intake.identity else None,
                eff.refusal.reason,
            )
        self.tally.count(eff.outcome)
        self._apply(eff, at)
        return eff

    def refuse(self, dead: EventRejected, raw: str | bytes, at: Position) -> None:
        """Record a dead letter a door refused by itself (the record never reached the
        engine): it is published and written like any other, so nothing is lost silently."""
        payload = raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")
        self.tally.received += 1
        self.tally.count("rejected")
        row = IntakeRow(at, "rejected", None, dead.data.event_type, None, None, payload)
        self._apply(Effects(outputs=[dead], intake=row, outcome="rejected"), at)

    def _apply(self, eff: Effects, at: Position | None) -> None:
        for out in eff.outputs:
            self._publish(out)
        if self.ledger is not None and (eff.outputs or eff.written or eff.intake):
            self.ledger.record(eff, at or Position("clock", None))

    def _publish(self, event: CloudEvent) -> None:
        t = self.tally
        if event.type == "minhu.case.escalated":
            t.escalations += 1
        elif event.type == "minhu.case.closed":
            t.closures += 1
        elif event.type == "minhu.event.rejected":
            t.by_rejection[event.data.error_kind] += 1  # type: ignore[attr-defined]
        elif isinstance(event, CaseRouted):
            t.by_tier[event.data.tier.value] += 1
        if self.on_event is not None:
            self.on_event(event)
        for rec in self.topics.records_for(event):
            t.records_out += 1
            if self.sink is not None:
                self.sink(rec)

    def close(self) -> None:
        if self.ledger:
            self.ledger.close()
