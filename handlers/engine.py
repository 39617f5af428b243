"""The engine: the whole per-record sequence, in one place, for every driver.

    record ─▶ parse (wire contract) ─▶ the clock moves to its time: due deadlines fire
           ─▶ replay? (its identity applied at this very position) ─▶ nothing again
           ─▶ duplicate? (its identity applied elsewhere, within `memory.identities`)
           ─▶ intake:   assess (tag, locate) ─▶ route in its bucket ─▶ open a case, or
                        attach to the storm's case
              action:   the case's bucket ─▶ the lifecycle ─▶ applied, or refused
              rating:   likewise
           ─▶ Effects: records to publish, rows for the ledger, buckets written

`Engine.feed()` handles one record, `Engine.advance(now)` moves the clock (deadlines fire,
forgotten state is dropped); both return `Effects`. The engine is pure: no broker, database,
file or clock; the driver passes time in and persists what the engine wrote (bytewax's
`StatefulLogic`: `on_item` is `feed`, `on_notify` is `advance`, `notify_at` is `next_due`).

Every record changes at most one bucket (handlers/state.py): its own bucket (intake), its case's
bucket (actions, ratings), or the engine's `orphans` bucket (records that belong to no case, kept
so that their identity is remembered). A deadline or a clean-up changes one bucket too.

Time is event time: before a record at time t is handled, every deadline before t fires. The
engine's clock is the latest event time it has seen (its watermark), but never later than the
wall clock when that record was read (an event dated a few minutes ahead, by a clock that
drifts, fires no deadline before it is due); a driver that runs live
calls `advance(wall clock)` when nothing is coming in. What the engine forgets, it forgets by
time — closed cases `lifecycle.rating_due` after they closed, identities after
`memory.identities`, repeat and storm windows when they expire — by the latest event time it
has seen (never the wall clock), and it checks the same limits against each event's own time, so
that when a driver sweeps makes no difference to a decision.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from handlers.desks import DeskAction, apply_desk_action
from handlers.ids import SHARD_HEX, Identity, bucket_of_case, case_id_for
from handlers.intake import implausible_time, parse_input, rejection
from handlers.lifecycle import (
    CaseState,
    Refusal,
    apply_action,
    attach,
    forgettable,
    next_deadline,
    on_deadline,
    open_case,
    rate,
)
from handlers.registry import Registry
from handlers.routing import Assessment, KeyState, StormAlarm, assess, route
from handlers.rules import Rules
from handlers.state import Applied, Bucket, Position, Store
from schemas import (
    AlarmRaised,
    AppealReported,
    CaseRouted,
    CloudEvent,
    EventRejected,
    PatrolReported,
)
from schemas.lifecycle import LifecycleEvent, RatingSubmitted

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Outcome = Literal["routed", "attached", "applied", "rejected", "duplicate", "replayed"]


@dataclass(frozen=True, slots=True)
class IntakeRow:
    """Every record that came in, and what became of it (the ledger's `intake_records`)."""

    position: Position
    outcome: Outcome
    identity: Identity | None
    event_type: str | None
    event_time: datetime | None
    case_id: str | None
    payload: str  # the record as read (a store keeps `handlers.intake.kept(payload)`)


@dataclass(frozen=True, slots=True)
class CallerRow:
    """A routed case's caller in clear: for the ledger only, never for a topic."""

    case_id: str
    kind: str
    identity: Identity
    caller_id: str | None
    name: str | None
    phone: str | None


@dataclass(slots=True)
class Effects:
    """What one call of the engine asks the driver to do."""

    outputs: list[CloudEvent] = field(default_factory=list)  # to publish, in this order
    intake: IntakeRow | None = None
    callers: list[CallerRow] = field(default_factory=list)
    written: dict[str, Bucket | None] = field(default_factory=dict)  # None: deleted
    outcome: Outcome | None = None  # of the record fed; None for a clock step
    refusal: Refusal | None = None  # why an action or rating was refused
    forward_to: str | None = None  # the shard token of a record this engine does not hold

    def extend(self, other: Effects) -> None:
        self.outputs.extend(other.outputs)
        self.written.update(other.written)


class Engine:
    """One engine per shard set: all of `minhu route`, one partition of a worker."""

    def __init__(
        self,
        rules: Rules,
        registry: Registry,
        store: Store,
        orphans: str = "orphans",
        holds: Callable[[str], bool] | None = None,
    ) -> None:
        """`holds(shard token)` says whether this engine holds a shard (one partition of a
        worker holds some); a record of another shard is handed back with `forward_to` set,
        undecided. `orphans` names the bucket of records that belong to no case."""
        self.rules = rules
        self.registry = registry
        self.store = store
        self.orphans = orphans
        self.holds = holds
        self.clock = EPOCH  # what deadlines fire by: event time, or a live driver's wall clock
        self.watermark = EPOCH  # the latest event time fed: what forgetting goes by
        # How many decided events the clock rests on (dated within `time.max_jump` before it):
        # a jump past it is refused only when more than one does, so that the stream's first
        # event, or a lone one after a long silence, cannot make it refuse all that follows.
        self._clock_support = 0
        # The time of the oldest record decided but not yet durable (a driver writes a batch
        # at a time): nothing newer than this is forgotten, so that a driver killed before it
        # wrote the batch finds, reading it again, what it needs. None: all is durable.
        self.settled: datetime | None = None
        self._claims: dict[Identity, Applied] = {}
        self._deadlines: list[tuple[datetime, str]] = []
        self._expiry: list[tuple[datetime, str]] = []
        self._expiry_of: dict[str, datetime] = {}
        self.load()

    # ---- state ------------------------------------------------------------------------------

    def load(self) -> None:
        """Rebuild the indexes (identities, deadlines, clean-ups) from the store's buckets."""
        self._claims.clear()
        self._deadlines.clear()
        self._expiry.clear()
        self._expiry_of.clear()
        for key, bucket in self.store.items():
            self._claims.update(bucket.applied)
            for cid, case in bucket.cases.items():
                self._schedule(cid, case)
            self._schedule_expiry(key, bucket)
        heapq.heapify(self._deadlines)

    def case(self, case_id: str) -> CaseState | None:
        key = bucket_of_case(case_id)
        bucket = self.store.get(key) if key else None
        return bucket.cases.get(case_id) if bucket else None

    def next_due(self) -> datetime | None:
        """When the engine next needs waking (the earliest deadline or clean-up)."""
        heads = [q[0][0] for q in (self._deadlines, self._expiry) if q]
        return min(heads) if heads else None

    def _write(self, eff: Effects, key: str, bucket: Bucket) -> None:
        if bucket.empty():
            self.store.put(key, None)
            eff.written[key] = None
            self._expiry_of.pop(key, None)
            return
        self.store.put(key, bucket)
        eff.written[key] = bucket
        self._schedule_expiry(key, bucket)

    def _schedule(self, case_id: str, state: CaseState) -> None:
        due = next_deadline(state)
        if due is not None:
            heapq.heappush(self._deadlines, (due, case_id))

    def _schedule_expiry(self, key: str, bucket: Bucket) -> None:
        at = self._expires_at(bucket)
        if at is None:
            return
        current = self._expiry_of.get(key)
        if current is None or at < current:
            self._expiry_of[key] = at
            heapq.heappush(self._expiry, (at, key))

    # ---- forgetting ---------------------------------------------------------------------------

    def _key_expires_at(self, state: KeyState, bucket: Bucket) -> datetime | None:
        """When a key's windows have all expired; never while its storm's case is not closed
        (an alarm of the storm that arrives late still finds its case)."""
        times = []
        if state.recent:
            times.append(max(state.recent) + self.rules.longest_repeat_window)
        if state.storm is not None:
            case = bucket.cases.get(state.storm.case_id)
            if case is not None and case.status != "closed":
                return None
            times.append(state.storm.last + self.rules.longest_storm_window)
        return max(times) if times else None

    def _expires_at(self, bucket: Bucket) -> datetime | None:
        """When something in the bucket can next be forgotten."""
        times: list[datetime] = []
        for c in bucket.cases.values():
            if c.status == "closed" and c.closed_at is not None:
                times.append(c.closed_at + self.rules.rating_due)
        for k in bucket.keys.values():
            t = self._key_expires_at(k, bucket)
            if t is not None:
                times.append(t)
        if bucket.applied:
            oldest = next(iter(bucket.applied.values()))
            times.append(oldest.at + self.rules.identity_memory)
        return min(times) if times else None

    def _forget(self, bucket: Bucket, now: datetime) -> bool:
        """Drop what has expired by `now`; say whether anything was dropped."""
        dropped = False
        for cid in [c for c, s in bucket.cases.items() if forgettable(s, now, self.rules)]:
            del bucket.cases[cid]
            dropped = True
        for k in list(bucket.keys):
            state = bucket.keys[k]
            t = self._key_expires_at(state, bucket)
            if t is None and (state.recent or state.storm is not None):
                continue  # held by its storm's open case
            if t is None or t < now:
                del bucket.keys[k]
                dropped = True
        limit = self.rules.identity_memory
        while bucket.applied:
            ident, a = next(iter(bucket.applied.items()))
            if a.at + limit >= now:
                break
            del bucket.applied[ident]
            if self._claims.get(ident) is a:
                del self._claims[ident]
            dropped = True
        return dropped

    def _forget_until(self, now: datetime) -> datetime:
        """Forget by the events' own time, never the wall clock, and nothing not yet durable:
        a record read again after a restart must find that it was applied, however far event
        time raced ahead in its batch (a backlog runs days in seconds)."""
        bound = min(now, self.watermark)
        return bound if self.settled is None else min(bound, self.settled)

    def _bucket(self, key: str, now: datetime) -> Bucket:
        """A copy of the bucket to change, with what has expired by `now` already dropped."""
        stored = self.store.get(key)
        bucket = stored.copy() if stored is not None else Bucket()
        self._forget(bucket, self._forget_until(now))
        return bucket

    # ---- the clock ----------------------------------------------------------------------------

    def advance(self, now: datetime, inclusive: bool = True) -> Effects:
        """Fire every deadline due by `now` (strictly before it when not `inclusive`), and
        forget what has expired."""
        eff = Effects()
        if now > self.clock:
            self.clock = now
        self._fire(eff, now, inclusive)
        return eff

    @staticmethod
    def reached(t: datetime, now: datetime | None) -> datetime:
        """How far an event dated `t`, read at `now` (the wall clock), moves the stream's clock
        and watermark: to its time, but never past when it was read. An event dated a little
        ahead (within `time.max_ahead`: a clock that drifts) is decided at its own time, and
        fires no deadline that is not due yet by the wall clock. A driver that reads a record
        again from its ledger moves the clock by this too."""
        return t if now is None or t <= now else now

    def _fire(self, eff: Effects, now: datetime, inclusive: bool) -> None:
        dl = self._deadlines
        while dl and (dl[0][0] <= now if inclusive else dl[0][0] < now):
            due, cid = heapq.heappop(dl)
            key = bucket_of_case(cid)
            stored = self.store.get(key) if key else None
            state = stored.cases.get(cid) if stored else None
            if key is None or state is None or next_deadline(state) != due:
                continue  # stale: the case moved on since this deadline was set
            events, state = on_deadline(state, due, self.registry)
            bucket = self._bucket(key, due)
            bucket.cases[cid] = state
            eff.outputs.extend(events)
            self._write(eff, key, bucket)
            self._schedule(cid, state)
        now = self._forget_until(now)
        ex = self._expiry
        while ex and ex[0][0] < now:
            at, key = heapq.heappop(ex)
            if self._expiry_of.get(key) != at:
                continue
            del self._expiry_of[key]
            stored = self.store.get(key)
            if stored is None:
                continue
            bucket = stored.copy()
            if self._forget(bucket, now):
                self._write(eff, key, bucket)
            else:
                self._schedule_expiry(key, bucket)

    # ---- records ------------------------------------------------------------------------------

    def feed(
        self,
        raw: str | bytes,
        at: Position,
        read_at: datetime | None = None,
        advance: bool = True,
        now: datetime | None = None,
    ) -> Effects:
        """Handle one record read at `at`. `read_at` stamps a dead letter that has no event time
        of its own (default: the engine's clock); `advance=False` leaves the clock alone (a
        live driver that advances it by the wall clock, or the life-safety lane). `now` is the
        wall clock when the record was read: an event dated further ahead of it than
        `rules.time.max_ahead` is refused, and one dated ahead of it by less moves the clock
        only up to `now` (`reached`; the drivers always pass it)."""
        eff = Effects()
        # What stamps a dead letter with no time of its own: when it was read, else the
        # stream's clock, else (nothing valid decided yet) the wall clock — never 1970.
        stamp = read_at or (self.clock if self.clock > EPOCH else now) or self.clock
        parsed = parse_input(raw, at.received_from, at.offset, stamp)
        payload = raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")
        if isinstance(parsed, EventRejected):
            eff.outputs.append(parsed)
            eff.outcome = "rejected"
            eff.intake = IntakeRow(at, "rejected", None, None, None, None, payload)
            return eff
        event = parsed
        known = self.clock if self.clock > EPOCH and self._clock_support > 1 else None
        implausible = implausible_time(event.time, now, known, self.rules.time)
        if implausible is not None:
            dead = rejection(
                "implausible_time",
                implausible,
                [],
                payload,
                at.received_from,
                at.offset,
                stamp,
                event.id,
                event.type,
                (event.source, event.id),
            )
            eff.outputs.append(dead)
            eff.outcome = "rejected"
            eff.intake = IntakeRow(at, "rejected", None, event.type, None, None, payload)
            return eff
        reached = self.reached(event.time, now)
        jump = self.rules.time.max_jump
        if advance and (self.clock == EPOCH or reached > self.clock + jump):
            self._clock_support = 1  # the clock, if it follows, rests on this event alone
        elif reached >= self.clock - jump:
            self._clock_support += 1
        if reached > self.watermark:
            self.watermark = reached
        if advance:
            if reached > self.clock:
                self.clock = reached
            self._fire(eff, reached, inclusive=False)
        ident: Identity = (event.source, event.id)
        claim = self._claims.get(ident)
        if claim is not None and claim.at + self.rules.identity_memory >= event.time:
            outcome: Outcome = "replayed" if claim.position == at else "duplicate"
            eff.outcome = outcome
            if outcome == "duplicate":
                eff.intake = IntakeRow(
                    at, "duplicate", ident, event.type, event.time, None, payload
                )
            return eff
        if isinstance(event, AppealReported | AlarmRaised | PatrolReported):
            assessed = assess(
                event, self.rules, self.registry, at.received_from, at.offset, payload
            )
            if isinstance(assessed, EventRejected):
                self._refused(eff, assessed, self.orphans, ident, at, event.time, None, payload)
            elif not self._holds(assessed.bucket):
                eff.forward_to = assessed.bucket[:SHARD_HEX]
            else:
                self._route(eff, assessed, ident, at, payload)
        else:
            key = bucket_of_case(event.data.case_id)
            if key is not None and not self._holds(key):
                eff.forward_to = key[:SHARD_HEX]
            else:
                self._case_input(eff, event, ident, at, payload)
        return eff

    def _holds(self, bucket: str) -> bool:
        return self.holds is None or self.holds(bucket[:SHARD_HEX])

    def _applied(self, bucket: Bucket, ident: Identity, at: Position, t: datetime) -> None:
        applied = Applied(at, t)
        bucket.applied.pop(ident, None)  # re-insert at the end: applied stays in time order
        bucket.applied[ident] = applied
        self._claims[ident] = applied

    def _refused(
        self,
        eff: Effects,
        dead: EventRejected,
        key: str,
        ident: Identity,
        at: Position,
        t: datetime,
        case_id: str | None,
        payload: str,
    ) -> None:
        eff.outputs.append(dead)
        eff.outcome = "rejected"
        eff.intake = IntakeRow(at, "rejected", ident, dead.data.event_type, t, case_id, payload)
        bucket = self._bucket(key, t)
        self._applied(bucket, ident, at, t)
        self._write(eff, key, bucket)

    def _route(
        self, eff: Effects, a: Assessment, ident: Identity, at: Position, payload: str
    ) -> None:
        event = a.event
        key = a.bucket
        bucket = self._bucket(key, event.time)
        attempt = 0
        cid = case_id_for(key, ident)
        while cid in bucket.cases:
            attempt += 1
            cid = case_id_for(key, ident, attempt)
        keyed = bucket.keys.get(a.dedup_key)
        if (
            keyed is not None
            and keyed.storm is not None
            and keyed.storm.case_id not in bucket.cases
        ):
            keyed = replace(keyed, storm=None)  # its case is forgotten: the storm is over
        held = bucket.cases.get(keyed.storm.case_id) if keyed and keyed.storm else None
        resolved = held is not None and held.status == "resolved"
        out, bucket.keys[a.dedup_key] = route(
            a, keyed, self.rules, self.registry, cid, self.clock, resolved
        )
        if isinstance(out, CaseRouted):
            eff.outcome = "routed"
            eff.outputs.append(out)
            caller = self._caller(a)
            events, state = open_case(out, self.registry, self.rules, caller[1])
            eff.outputs.extend(events)
            eff.callers.append(CallerRow(out.data.case_id, a.kind, ident, *caller))
        else:
            assert isinstance(out, StormAlarm)
            eff.outcome = "attached"
            said, state = attach(out, bucket.cases[out.case_id], self.registry)
            eff.outputs.extend(said)
        bucket.cases[state.case_id] = state
        self._schedule(state.case_id, state)
        eff.intake = IntakeRow(
            at, eff.outcome, ident, event.type, event.time, state.case_id, payload
        )
        self._applied(bucket, ident, at, event.time)
        self._write(eff, key, bucket)

    def _case_input(
        self,
        eff: Effects,
        event: CloudEvent,
        ident: Identity,
        at: Position,
        payload: str,
    ) -> None:
        assert not isinstance(event, AppealReported | AlarmRaised | PatrolReported)
        case_id: str = event.data.case_id  # type: ignore[attr-defined]
        key = bucket_of_case(case_id)
        stored = self.store.get(key) if key else None
        state = stored.cases.get(case_id) if stored else None
        if state is not None and forgettable(state, event.time, self.rules):
            state = None  # past its rating window: forgotten, whether swept yet or not
        outcome: tuple[list[LifecycleEvent], CaseState] | Refusal
        if state is None:
            outcome = Refusal(
                "unknown_case",
                f"unknown case '{case_id}': no such case, or it closed more than "
                f"{_days(self.rules.rating_due)} ago and is in the ledger only",
            )
        elif isinstance(event, RatingSubmitted):
            outcome = rate(event, state, self.registry)
        elif isinstance(event, DeskAction):
            outcome = apply_desk_action(event, state, self.registry, self.rules)
        else:
            outcome = apply_action(event, state, self.registry, self.rules)  # type: ignore[arg-type]
        if isinstance(outcome, Refusal):
            eff.refusal = outcome
            dead = rejection(
                outcome.kind,
                outcome.reason,
                [],
                payload,
                at.received_from,
                at.offset,
                event.time,
                event.id,
                event.type,
                ident,
            )
            home = key if key is not None and stored is not None else self.orphans
            self._refused(eff, dead, home, ident, at, event.time, case_id, payload)
            return
        assert key is not None
        events, new = outcome
        bucket = self._bucket(key, event.time)
        bucket.cases[case_id] = new
        eff.outputs.extend(events)
        eff.outcome = "applied"
        eff.intake = IntakeRow(at, "applied", ident, event.type, event.time, case_id, payload)
        self._applied(bucket, ident, at, event.time)
        self._schedule(case_id, new)
        self._write(eff, key, bucket)

    def _caller(self, a: Assessment) -> tuple[str | None, str | None, str | None]:
        """The caller in clear, for the ledger only."""
        ev = a.event
        if isinstance(ev, AppealReported):
            c = ev.data.caller
            return c.id, c.name, c.phone
        if isinstance(ev, AlarmRaised):
            s = self.registry.sensors[ev.data.sensor_id]
            return s.resident_id, s.resident_name, s.resident_phone
        return (a.caller["id"] if a.caller else None), None, None


def _days(td: timedelta) -> str:
    days = td.total_seconds() / 86400
    return f"{days:g} days" if days >= 1 else f"{td.total_seconds() / 3600:g} hours"
