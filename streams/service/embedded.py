"""The embedded backend of the service: the engine in this process, over the SQL ledger.

One `EmbeddedRunner`, guarded by a lock: the HTTP handlers run in a thread pool, and the engine
takes one record at a time. Time is the wall clock: a record is decided as of when it came in,
and `tick()` (the service calls it every second) fires the deadlines that fell due meanwhile.
The ledger writes every record at once (`batch_records=1`), so what a reply says is on disk
before the reply is sent, and the Open311 reads see it.

A record's position is one more than the last position the ledger holds (counted on from there
while the service runs), so positions never repeat across restarts of the service, and the
ledger's replay check never mistakes a new record for an old one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast, get_args

from sqlalchemy import func, select

from handlers.engine import Effects
from handlers.intake import rejection
from handlers.privacy import pseudonym
from handlers.registry import Registry
from handlers.rules import Rules
from handlers.state import Position
from schemas import CloudEvent, EventRejected
from schemas.lifecycle import RatingRequested
from schemas.routing import ErrorKind
from streams.drivers.embedded import EmbeddedRunner
from streams.drivers.ledger import CaseEvent, IntakeRecord, Ledger
from streams.service.ports import Verdict


@dataclass(frozen=True, slots=True)
class Decided(Verdict):
    """A verdict of a driver that decides at once: a refusal also names its kind (the dead
    letter's `error_kind`), so a door can answer 403 for `unauthorized`, 404 for
    `unknown_case`, and so on."""

    kind: str | None = None


@dataclass(frozen=True, slots=True)
class RatingDue:
    """A caller asked to rate a closed case: who (their id in clear: for the link only), the
    case, and by when."""

    case_id: str
    rater_id: str
    due_by: datetime


def verdict_of(eff: Effects) -> Decided:
    """What one engine call says about the record fed."""
    ident = eff.intake.identity if eff.intake is not None else None
    event_id = ident[1] if ident else None
    case_id = eff.intake.case_id if eff.intake is not None else None
    if eff.outcome in ("routed", "attached", "applied"):
        return Decided("accepted", event_id, None, case_id)
    if eff.outcome in ("duplicate", "replayed"):
        return Decided("duplicate", event_id, None, case_id)
    dead = next((o for o in eff.outputs if isinstance(o, EventRejected)), None)
    if dead is None:
        return Decided("refused", event_id, "not decided", case_id, "invalid_event")
    return Decided(
        "refused", dead.data.event_id or event_id, dead.data.reason, case_id, dead.data.error_kind
    )


class EmbeddedIntake:
    """`Intake` over an embedded runner and a ledger at `ledger_url`. `on_rating_due` hears of
    every caller asked to rate (outside the lock); `on_outputs` gets what the engine emitted
    for each record and each tick, in order (under the lock: keep it quick), e.g. the board."""

    decides_at_once = True

    def __init__(
        self,
        rules: Rules,
        registry: Registry,
        ledger_url: str,
        on_rating_due: Callable[[RatingDue], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_outputs: Callable[[list[CloudEvent]], None] | None = None,
    ) -> None:
        self.ledger = Ledger(ledger_url, batch_records=1)
        self._seen: list[CloudEvent] = []
        self.clock = clock
        self.runner = EmbeddedRunner(
            rules, registry, ledger=self.ledger, clock=clock, on_event=self._seen.append
        )
        self.on_rating_due = on_rating_due
        self.on_outputs = on_outputs
        self.lock = threading.Lock()
        with self.ledger.engine.connect() as conn:
            last = conn.execute(select(func.max(IntakeRecord.position))).scalar()
        self._last_position = int(last or 0)

    def _position(self) -> int:
        self._last_position += 1
        return self._last_position

    def submit(self, raw: str | bytes, received_from: str) -> Verdict:
        with self.lock:
            eff = self.runner.feed(raw, received_from, self._position())
            due = self._rating_dues()
        self._tell(due)
        return verdict_of(eff)

    def submit_all(self, raws: list[str | bytes], received_from: str) -> list[Verdict]:
        """`submit` each record of a batch in order, writing the ledger once for all of them
        (one transaction, each changed bucket once): the answer still comes after the write."""
        with self.lock:
            self.ledger.batch_records = len(raws) + 1
            try:
                effs = [self.runner.feed(raw, received_from, self._position()) for raw in raws]
                self.ledger.flush()
            finally:
                self.ledger.batch_records = 1
            due = self._rating_dues()
        self._tell(due)
        return [verdict_of(eff) for eff in effs]

    def refuse(self, raw: str | bytes, received_from: str, kind: str, reason: str) -> Verdict:
        payload = raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")
        with self.lock:
            at = Position(received_from, self._position())
            dead = rejection(
                error_kind_of(kind), reason, [], payload, received_from, at.offset, self.clock(),
                None, None,
            )  # fmt: skip
            self.runner.refuse(dead, raw, at)
            self._seen.clear()
        return Decided("refused", None, reason, None, kind)

    def tick(self) -> None:
        """Fire the deadlines due by now."""
        with self.lock:
            self.runner.advance(self.clock())
            due = self._rating_dues()
        self._tell(due)

    def _rating_dues(self) -> list[RatingDue]:
        """Hand the events just emitted on, and say which callers they ask to rate (under the
        lock: the case's state names them in clear, the event only by pseudonym)."""
        seen = list(self._seen)
        self._seen.clear()
        if self.on_outputs is not None and seen:
            self.on_outputs(seen)
        due: list[RatingDue] = []
        for ev in seen:
            if isinstance(ev, RatingRequested) and ev.data.rater_kind == "caller":
                state = self.runner.case(ev.data.case_id)
                for p in state.pending if state else ():
                    if p.rater_kind == "caller" and pseudonym(p.rater_id) == ev.data.rater_id:
                        due.append(RatingDue(ev.data.case_id, p.rater_id, ev.data.due_by))
        return due

    def _tell(self, due: list[RatingDue]) -> None:
        if self.on_rating_due is not None:
            for d in due:
                self.on_rating_due(d)

    def ledger_events(self, case_id: str) -> list[dict[str, Any]]:
        """A case's events as the ledger holds them (CloudEvents as dicts), in order."""
        with self.ledger.engine.connect() as conn:
            rows = conn.execute(
                select(CaseEvent.document)
                .where(CaseEvent.case_id == case_id)
                .order_by(CaseEvent.seq)
            )
            return [json.loads(doc) for (doc,) in rows]

    def close(self) -> None:
        with self.lock:
            self.runner.close()


def error_kind_of(kind: str) -> ErrorKind:
    """A door's kind as a dead letter's `error_kind` (an unknown one reads as invalid)."""
    return cast(ErrorKind, kind) if kind in get_args(ErrorKind) else "invalid_event"
