"""The embedded runner: the whole pipeline in one process, with an optional SQL ledger.

It is the shell that `minhu route` and `minhu demo` use, and the reference the Kafka workers
are compared against. For each raw record:

    parse (wire contract) → duplicate? (source + id seen) →
      intake:  assess (tag, locate) → route (state per dedup key) → open the case's lifecycle
      action:  apply to the case (state per case id)
      rating:  record it (state per case id)
    → records for topics → ledger

Time runs on event time by default: before an event at time t is handled, every SLA deadline
before t fires (`advance`), from an index ordered by time — never a sweep of all cases. A live
run passes `clock` and calls `advance(clock())` as time goes by.

Every record ends in exactly one of: a new case, attached to an open case, an action or rating
applied, a dead letter, or a duplicate — `Tally` counts them, and `Tally.balanced` checks that
nothing was lost.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from handlers.intake import identity, parse_input, rejection
from handlers.lifecycle import (
    CaseState,
    Refusal,
    apply_action,
    attach,
    next_deadline,
    on_deadline,
    open_case,
    rate,
)
from handlers.registry import Registry
from handlers.routing import Assessment, KeyState, assess, route
from handlers.rules import Rules
from schemas import (
    AlarmRaised,
    AppealReported,
    CaseRouted,
    CloudEvent,
    EventRejected,
    IntakeEvent,
    PatrolReported,
)
from schemas.lifecycle import CaseAction, LifecycleEvent, RatingSubmitted
from streams.ledger import Ledger
from streams.topics import Record, Topics

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
    by_topic: Counter[str] = field(default_factory=Counter)
    by_rejection: Counter[str] = field(default_factory=Counter)

    @property
    def balanced(self) -> bool:
        """events in = new cases + attached + applied + dead letters + duplicates."""
        return self.received == (
            self.cases + self.attached + self.applied + self.rejected + self.duplicates
        )


class EmbeddedRunner:
    """Feed raw records with `feed()`; records go to `sink`, outcomes to the ledger if any."""

    def __init__(
        self,
        rules: Rules,
        registry: Registry,
        sink: Callable[[Record], None],
        topics: Topics | None = None,
        ledger: Ledger | None = None,
        clock: Callable[[], datetime] | None = None,
        on_case: Callable[[CaseRouted, Assessment], None] | None = None,
    ) -> None:
        self.rules = rules
        self.registry = registry
        self.sink = sink
        self.topics = topics or Topics()
        self.ledger = ledger
        self.clock = clock
        self.on_case = on_case
        self.tally = Tally()
        self.seen: set[str] = ledger.seen_identities() if ledger else set()
        self.states: dict[str, KeyState] = ledger.key_states() if ledger else {}
        self.cases: dict[str, CaseState] = ledger.case_states() if ledger else {}
        self.deadlines: list[tuple[datetime, str]] = []
        for cid, st in self.cases.items():
            self._schedule(cid, st)
        self.watermark = EPOCH

    # ---- time ----

    def advance(self, now: datetime, inclusive: bool = True) -> None:
        """Fire every deadline due by `now` (strictly before it when not `inclusive`)."""
        while self.deadlines and (
            self.deadlines[0][0] <= now if inclusive else self.deadlines[0][0] < now
        ):
            due, cid = heapq.heappop(self.deadlines)
            state = self.cases.get(cid)
            if state is None or next_deadline(state) != due:
                continue  # stale entry: the case moved on since it was scheduled
            emits, state = on_deadline(state, due, self.registry)
            self._lifecycle(emits, state)

    def _schedule(self, cid: str, state: CaseState) -> None:
        due = next_deadline(state)
        if due is not None:
            heapq.heappush(self.deadlines, (due, cid))

    # ---- records ----

    def feed(self, raw: str | bytes, received_from: str, position: int | None = None) -> None:
        t = self.tally
        t.received += 1
        now = self.clock() if self.clock else self.watermark
        parsed = parse_input(raw, received_from, position, now)
        if isinstance(parsed, EventRejected):
            self._reject(parsed, received_from, position)
            return
        event = parsed
        if self.clock is None:
            if event.time > self.watermark:
                self.watermark = event.time
            self.advance(event.time, inclusive=False)
        ident = identity(event.source, event.id)
        payload = raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")
        if ident in self.seen:
            t.duplicates += 1
            if self.ledger:
                self.ledger.record_intake(
                    received_from, position, "duplicate", payload, event, ident
                )
            return
        self.seen.add(ident)
        if isinstance(event, AppealReported | AlarmRaised | PatrolReported):
            self._intake(event, ident, payload, received_from, position)
        else:
            self._case_input(event, ident, payload, received_from, position)

    def _intake(
        self, event: IntakeEvent, ident: str, payload: str, received_from: str, position: int | None
    ) -> None:
        t = self.tally
        assessed = assess(event, self.rules, self.registry, received_from, position, payload)
        if isinstance(assessed, EventRejected):
            self._reject(assessed, received_from, position, ident)
            return
        key = assessed.dedup_key
        emits, self.states[key] = route(assessed, self.states.get(key), self.rules, self.registry)
        for out in emits:
            self._publish(out)
            if isinstance(out, CaseRouted):
                t.cases += 1
                t.by_tier[out.data.tier.value] += 1
                if self.on_case:
                    self.on_case(out, assessed)
                if self.ledger:
                    self.ledger.record_case(
                        out, assessed.kind, ident, caller_in_clear(assessed, self.registry)
                    )
                    self.ledger.record_intake(
                        received_from, position, "routed", payload, event, ident, out.data.case_id
                    )
                lifecycle, state = open_case(out, self.registry)
                self._lifecycle(lifecycle, state)
            else:
                t.attached += 1
                if self.ledger:
                    self.ledger.record_attached(out, ident)
                    self.ledger.record_intake(
                        received_from, position, "attached", payload, event, ident, out.data.case_id
                    )
                open_state = self.cases.get(out.data.case_id)
                if open_state is not None:
                    self._lifecycle(*attach(out, open_state, self.registry))
        if self.ledger:
            self.ledger.record_state(key, self.states[key])

    def _case_input(
        self,
        event: CaseAction | RatingSubmitted,
        ident: str,
        payload: str,
        received_from: str,
        position: int | None,
    ) -> None:
        case_id = event.data.case_id
        state = self.cases.get(case_id)
        if state is None:
            outcome: tuple[list[LifecycleEvent], CaseState] | Refusal = Refusal(
                "unknown_case", f"unknown case '{case_id}'"
            )
        elif isinstance(event, RatingSubmitted):
            outcome = rate(event, state, self.registry)
        else:
            outcome = apply_action(event, state, self.registry, self.rules)
        if isinstance(outcome, Refusal):
            if outcome.kind == "unauthorized":
                log.warning("refused %s %s: %s", event.type, event.id, outcome.reason)
            dead = rejection(
                outcome.kind,
                outcome.reason,
                [],
                payload,
                received_from,
                position,
                event.time,
                event.id,
                event.type,
            )
            self._reject(dead, received_from, position, ident)
            return
        self.tally.applied += 1
        if self.ledger:
            self.ledger.record_intake(
                received_from, position, "applied", payload, event, ident, case_id
            )
        self._lifecycle(*outcome)

    def _lifecycle(self, emits: list[LifecycleEvent], state: CaseState) -> None:
        for out in emits:
            self._publish(out)
            if out.type == "minhu.case.escalated":
                self.tally.escalations += 1
            elif out.type == "minhu.case.closed":
                self.tally.closures += 1
            if self.ledger:
                self.ledger.record_case_event(out)
        self.cases[state.case_id] = state
        self._schedule(state.case_id, state)
        if self.ledger:
            self.ledger.record_case_state(state)

    def _reject(
        self,
        rejected: EventRejected,
        received_from: str,
        position: int | None,
        ident: str | None = None,
    ) -> None:
        self.tally.rejected += 1
        self.tally.by_rejection[rejected.data.error_kind] += 1
        self._publish(rejected)
        if self.ledger:
            self.ledger.record_dead_letter(rejected)
            self.ledger.record_intake(
                received_from, position, "rejected", rejected.data.payload, None, ident
            )

    def _publish(self, event: CloudEvent) -> None:
        for rec in self.topics.records_for(event):
            self.tally.records_out += 1
            self.tally.by_topic[rec.topic] += 1
            self.sink(rec)

    def close(self) -> None:
        if self.ledger:
            self.ledger.close()


def caller_in_clear(a: Assessment, registry: Registry) -> tuple[str | None, str | None, str | None]:
    """The caller in clear, for the ledger only."""
    ev = a.event
    if isinstance(ev, AppealReported):
        c = ev.data.caller
        return c.id, c.name, c.phone
    if isinstance(ev, AlarmRaised):
        s = registry.sensors[ev.data.sensor_id]
        return s.resident_id, s.resident_name, s.resident_phone
    return (a.caller["id"] if a.caller else None), None, None
