"""The embedded runner: the whole pipeline in one process, with an optional SQL ledger.

It is the shell that `minhu route` and `minhu demo` use, and the reference the Kafka workers
are compared against. For each raw record:

    parse (wire contract) → duplicate? (identity seen) → assess (tag, locate) → route (per key)
    → records for topics → ledger

Every record ends in exactly one of: a new case, attached to an open case, a dead letter, or a
duplicate — `Tally` counts them, and `Tally.balanced` checks that nothing was lost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from handlers.intake import identity, parse_intake
from handlers.registry import Registry
from handlers.routing import Assessment, KeyState, assess, route
from handlers.rules import Rules
from schemas import AlarmRaised, AppealReported, CaseAttached, CaseRouted, EventRejected
from streams.ledger import Ledger
from streams.topics import Record, Topics

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Tally:
    received: int = 0
    cases: int = 0
    attached: int = 0
    rejected: int = 0
    duplicates: int = 0
    records_out: int = 0
    by_tier: Counter[str] = field(default_factory=Counter)
    by_topic: Counter[str] = field(default_factory=Counter)
    by_rejection: Counter[str] = field(default_factory=Counter)

    @property
    def balanced(self) -> bool:
        """events in = new cases + attached + dead letters + duplicates."""
        return self.received == self.cases + self.attached + self.rejected + self.duplicates


class EmbeddedRunner:
    """Feed raw records with `feed()`; records go to `sink`, outcomes to the ledger if any.

    Time: dead letters of unparseable records are stamped with `clock()` when one is given
    (live runs), else with the latest event time seen so far (replays stay deterministic).
    """

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
        self.watermark = EPOCH

    def feed(self, raw: str | bytes, received_from: str, position: int | None = None) -> None:
        t = self.tally
        t.received += 1
        now = self.clock() if self.clock else self.watermark
        parsed = parse_intake(raw, received_from, position, now)
        if isinstance(parsed, EventRejected):
            self._reject(parsed, received_from, position)
            return
        event = parsed
        if event.time > self.watermark:
            self.watermark = event.time
        ident = identity(event.source, event.id)
        payload = _text(raw)
        if ident in self.seen:
            t.duplicates += 1
            if self.ledger:
                self.ledger.record_intake(
                    received_from, position, "duplicate", payload, event, ident
                )
            return
        self.seen.add(ident)
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
                        out, assessed.kind, ident, _caller(assessed, self.registry)
                    )
                    self.ledger.record_intake(
                        received_from, position, "routed", payload, event, ident, out.data.case_id
                    )
            elif isinstance(out, CaseAttached):
                t.attached += 1
                if self.ledger:
                    self.ledger.record_attached(out, ident)
                    self.ledger.record_intake(
                        received_from, position, "attached", payload, event, ident, out.data.case_id
                    )
        if self.ledger:
            self.ledger.record_state(key, self.states[key])

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

    def _publish(self, event: CaseRouted | CaseAttached | EventRejected) -> None:
        for rec in self.topics.records_for(event):
            self.tally.records_out += 1
            self.tally.by_topic[rec.topic] += 1
            self.sink(rec)

    def close(self) -> None:
        if self.ledger:
            self.ledger.close()


def _text(raw: str | bytes) -> str:
    return raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")


def _caller(a: Assessment, registry: Registry) -> tuple[str | None, str | None, str | None]:
    """The caller in clear, for the ledger only."""
    ev = a.event
    if isinstance(ev, AppealReported):
        c = ev.data.caller
        return c.id, c.name, c.phone
    if isinstance(ev, AlarmRaised):
        s = registry.sensors[ev.data.sensor_id]
        return s.resident_id, s.resident_name, s.resident_phone
    return (a.caller["id"] if a.caller else None), None, None
