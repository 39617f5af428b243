"""The ledger: every intake record, case, routing decision, case event and dead letter, in SQL.

SQLite file by default, PostgreSQL by URL (`postgresql+psycopg://user@host/db`). The ledger keeps
personal data in clear (callers' names and phones, the raw records); topics never do.

Written at record boundaries: `record(effects)` buffers one record's rows (or one clock step's),
and `flush()` writes whole records only, in one transaction — after `batch_records` records and
at `close()`. A process killed at any moment leaves whole records behind, never part of one.
Every insert is idempotent by a natural id (a record's position and content, a case id, an event
id), so a record written twice — a rerun after a kill, a worker replaying after a restart — is
written once.

It also holds what a run needs to resume: the engine's buckets (handlers/state.py), and the
outputs of each record, so that a rerun of the same input re-emits what was already decided.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    bindparam,
    create_engine,
    delete,
    event,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from handlers.engine import Effects, IntakeRow, Outcome
from handlers.ids import Identity
from handlers.intake import kept
from handlers.state import Bucket, DictStore, Position, dump_bucket, load_bucket
from schemas import EVENT_MODELS, CaseAttached, CaseRouted, CloudEvent, EventRejected


class UtcDateTime(TypeDecorator[datetime]):
    """A time with its offset on every database: stored in UTC, read back aware (SQLite keeps
    no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return (
            value.astimezone(UTC)
            if dialect.name != "sqlite"
            else value.astimezone(UTC).replace(tzinfo=None)
        )

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime}


class IntakeRecord(Base):
    """Every record that came in, with what became of it: nothing is lost."""

    __tablename__ = "intake_records"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)  # position and content digest
    received_from: Mapped[str] = mapped_column(String(500))
    position: Mapped[int | None] = mapped_column(Integer)
    # routed | attached | applied (an action or rating) | rejected | duplicate
    outcome: Mapped[str] = mapped_column(String(20))
    source: Mapped[str | None] = mapped_column(String(500))
    event_id: Mapped[str | None] = mapped_column(String(200))
    event_type: Mapped[str | None] = mapped_column(String(200))
    event_time: Mapped[datetime | None] = mapped_column()
    case_id: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[str] = mapped_column(Text)


class Case(Base):
    """A case as routed; personal data in clear."""

    __tablename__ = "cases"
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(20))
    tier: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[str] = mapped_column(String(128), index=True)
    community_id: Mapped[str | None] = mapped_column(String(128))
    grid_id: Mapped[str | None] = mapped_column(String(128))
    micro_grid_id: Mapped[str | None] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(20))
    rule_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(20))
    acknowledge_by: Mapped[datetime | None] = mapped_column()
    resolve_by: Mapped[datetime | None] = mapped_column()
    dedup_key: Mapped[str] = mapped_column(String(400))
    caller_id: Mapped[str | None] = mapped_column(String(128))
    caller_name: Mapped[str | None] = mapped_column(String(200))
    caller_phone: Mapped[str | None] = mapped_column(String(40))
    summary: Mapped[str] = mapped_column(Text)


class RoutingDecision(Base):
    """Each decision taken on a case: opened by routing, or an alarm attached to it."""

    __tablename__ = "routing_decisions"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(300), unique=True)  # the decision's event id
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    decision: Mapped[str] = mapped_column(String(20))  # routed | attached
    at: Mapped[datetime] = mapped_column()
    event_source: Mapped[str] = mapped_column(String(500))
    event_id: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[str] = mapped_column(String(128))
    rule_id: Mapped[str] = mapped_column(String(128))
    notified: Mapped[str] = mapped_column(Text)  # JSON list of unit ids
    explanation: Mapped[str] = mapped_column(Text)


class DeadLetter(Base):
    """A refused record, with the dead letter as published."""

    __tablename__ = "dead_letters"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    at: Mapped[datetime] = mapped_column()
    error_kind: Mapped[str] = mapped_column(String(40), index=True)
    reason: Mapped[str] = mapped_column(Text)
    received_from: Mapped[str] = mapped_column(String(500))
    position: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)
    step: Mapped[str] = mapped_column(String(600), index=True)
    step_seq: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)


class CaseEvent(Base):
    """Every event of a case's life, in order: routed, attached, updated, escalated, closed,
    rating requested and recorded, reopened. The three rates are computed from these."""

    __tablename__ = "case_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    event_id: Mapped[str] = mapped_column(String(300), unique=True)
    type: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    step: Mapped[str] = mapped_column(String(600), index=True)  # the record that caused it
    step_seq: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)  # the CloudEvent as JSON


class BucketRow(Base):
    """The engine's state, one bucket a row (schemas/state.py), for resuming."""

    __tablename__ = "buckets"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(Text)


Index("ix_cases_tier_category", Case.tier, Case.category)
Index("ix_intake_records_position", IntakeRecord.received_from, IntakeRecord.position)


def make_engine(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


def step_key(position: Position) -> str:
    """The name of a step: the record at a position (`file:12`, `topic/3:4711`)."""
    return f"{position.received_from}:{position.offset}"


def clock_step(now: datetime) -> Position:
    """The position of a clock step (`minhu route --until`)."""
    return Position("clock", int(now.timestamp() * 1_000_000))


def intake_id(row_position: Position, payload: str) -> str:
    digest = hashlib.blake2b(
        f"{row_position.received_from}\x1f{row_position.offset}\x1f{payload}".encode(
            "utf-8", "backslashreplace"
        ),
        digest_size=16,
    )
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class _Written:
    id: str
    outcome: Outcome
    event_time: datetime | None


@dataclass(frozen=True, slots=True)
class Replay:
    """What a committed record became, for re-emitting it on a rerun."""

    outcome: Outcome
    event_time: datetime | None
    outputs: list[CloudEvent]


class Ledger:
    """Buffered, transactional, idempotent writer. `record()` per engine call; `flush()` writes
    whole records."""

    def __init__(self, url: str, batch_records: int = 1000, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        self.batch_records = batch_records
        Base.metadata.create_all(self.engine)
        self._rows: dict[type[Base], list[dict[str, Any]]] = {
            t: [] for t in (IntakeRecord, Case, RoutingDecision, DeadLetter, CaseEvent)
        }
        self._buckets: dict[str, Bucket | None] = {}
        self._records = 0
        self._insert = (
            postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        )
        self._positions: dict[str, dict[int | None, _Written]] = {}
        self._docs: dict[str, list[tuple[int, str]]] = {}

    # ---- resuming ----

    def load_store(self) -> DictStore:
        """The engine's buckets as last written."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(BucketRow.key, BucketRow.state))
            return DictStore({k: load_bucket(s) for k, s in rows})

    def replay(self, position: Position, payload: str) -> Replay | None:
        """If the record at `position` with this content was written, what it became."""
        known = self._positions.get(position.received_from)
        if known is None:
            known = self._positions[position.received_from] = self._written(position.received_from)
        hit = known.get(position.offset)
        if hit is None or hit.id != intake_id(position, payload):
            return None
        return Replay(hit.outcome, hit.event_time, self._outputs(step_key(position)))

    def replay_clock(self, now: datetime) -> list[CloudEvent]:
        """The outputs of a clock step (`--until`) already written."""
        return self._outputs(step_key(clock_step(now)))

    def _written(self, received_from: str) -> dict[int | None, _Written]:
        """What was written of one input: each position's record, and every step's outputs
        (read once, in bulk, when a rerun first asks)."""
        prefix = f"{received_from}:"
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    IntakeRecord.position,
                    IntakeRecord.id,
                    IntakeRecord.outcome,
                    IntakeRecord.event_time,
                ).where(IntakeRecord.received_from == received_from)
            )
            known = {p: _Written(i, o, t) for p, i, o, t in rows}  # type: ignore[arg-type]
            if known:
                for table in (CaseEvent, DeadLetter):
                    stmt = select(table.step, table.step_seq, table.document).where(
                        table.step.startswith(prefix, autoescape=True)
                    )
                    for step, n, doc in conn.execute(stmt):
                        self._docs.setdefault(step, []).append((n, doc))
        return known

    def _outputs(self, step: str) -> list[CloudEvent]:
        docs = self._docs.pop(step, None)
        if docs is None:
            with self.engine.connect() as conn:
                docs = [
                    *conn.execute(
                        select(CaseEvent.step_seq, CaseEvent.document).where(CaseEvent.step == step)
                    ),
                    *conn.execute(
                        select(DeadLetter.step_seq, DeadLetter.document).where(
                            DeadLetter.step == step
                        )
                    ),
                ]
        out: list[CloudEvent] = []
        for _, doc in sorted(docs, key=lambda d: int(d[0])):
            out.append(EVENT_MODELS[json.loads(doc)["type"]].model_validate_json(doc))
        return out

    # ---- writing ----

    def record(self, eff: Effects, position: Position) -> None:
        """Buffer one engine call's rows (the record at `position`, or a clock step)."""
        step = step_key(position)
        if eff.intake is not None:
            self._intake(eff.intake)
        callers = {c.case_id: c for c in eff.callers}
        for n, out in enumerate(eff.outputs):
            if isinstance(out, EventRejected):
                self._dead_letter(out, step, n)
                continue
            self._case_event(out, step, n)
            if isinstance(out, CaseRouted):
                self._case(out, callers.get(out.data.case_id))
                self._decision(out, "routed", callers.get(out.data.case_id))
            elif isinstance(out, CaseAttached):
                self._decision(out, "attached", None, eff.intake)
        self._buckets.update(eff.written)
        self._records += 1
        if self._records >= self.batch_records:
            self.flush()

    def _intake(self, row: IntakeRow) -> None:
        ident: Identity | None = row.identity
        self._rows[IntakeRecord].append(
            {
                "id": intake_id(row.position, row.payload),
                "received_from": row.position.received_from,
                "position": row.position.offset,
                "outcome": row.outcome,
                "source": ident[0] if ident else None,
                "event_id": ident[1] if ident else None,
                "event_type": row.event_type,
                "event_time": row.event_time,
                "case_id": row.case_id,
                "payload": kept(row.payload),
            }
        )

    def _case(self, routed: CaseRouted, caller: Any) -> None:
        d = routed.data
        self._rows[Case].append(
            {
                "case_id": d.case_id,
                "opened_at": routed.time,
                "kind": caller.kind if caller else d.origin.event_type.split(".")[1],
                "tier": d.tier.value,
                "unit_id": d.unit_id,
                "community_id": d.community_id,
                "grid_id": d.grid_id,
                "micro_grid_id": d.micro_grid_id,
                "category": d.category,
                "severity": d.severity.value,
                "rule_id": d.rule_id,
                "status": d.status,
                "acknowledge_by": d.acknowledge_by,
                "resolve_by": d.resolve_by,
                "dedup_key": d.dedup_key,
                "caller_id": caller.caller_id if caller else None,
                "caller_name": caller.name if caller else None,
                "caller_phone": caller.phone if caller else None,
                "summary": d.summary,
            }
        )

    def _decision(
        self,
        out: CaseRouted | CaseAttached,
        decision: str,
        caller: Any,
        intake: IntakeRow | None = None,
    ) -> None:
        d = out.data
        notified = [n.unit_id for n in out.data.notified] if isinstance(out, CaseRouted) else []
        self._rows[RoutingDecision].append(
            {
                "id": out.id,
                "case_id": d.case_id,
                "decision": decision,
                "at": out.time,
                "event_source": d.origin.event_source,
                "event_id": d.origin.event_id,
                "tier": d.tier.value,
                "unit_id": d.unit_id,
                "rule_id": d.rule_id,
                "notified": json.dumps(notified),
                "explanation": d.explanation,
            }
        )

    def _dead_letter(self, rejected: EventRejected, step: str, n: int) -> None:
        d = rejected.data
        self._rows[DeadLetter].append(
            {
                "id": rejected.id,
                "at": rejected.time,
                "error_kind": d.error_kind,
                "reason": d.reason,
                "received_from": d.received_from,
                "position": d.position,
                "payload": d.payload,
                "step": step,
                "step_seq": n,
                "document": rejected.model_dump_json(exclude_none=True),
            }
        )

    def _case_event(self, event: CloudEvent, step: str, n: int) -> None:
        self._rows[CaseEvent].append(
            {
                "case_id": event.subject,
                "event_id": event.id,
                "type": event.type,
                "at": event.time,
                "step": step,
                "step_seq": n,
                "document": event.model_dump_json(exclude_none=True),
            }
        )

    def flush(self) -> None:
        """Write every buffered record in one transaction."""
        if not self._records and not self._buckets:
            return
        with self.engine.begin() as conn:
            for table, rows in self._rows.items():
                if rows:
                    conn.execute(self._insert(table).on_conflict_do_nothing(), rows)
                    rows.clear()
            if self._buckets:
                gone = [k for k, b in self._buckets.items() if b is None]
                kept = {k: b for k, b in self._buckets.items() if b is not None}
                if gone:
                    conn.execute(delete(BucketRow).where(BucketRow.key.in_(gone)))
                if kept:
                    stmt = self._insert(BucketRow)
                    conn.execute(
                        stmt.on_conflict_do_update(
                            index_elements=["key"], set_={"state": stmt.excluded.state}
                        ),
                        [{"key": k, "state": dump_bucket(b).decode()} for k, b in kept.items()],
                    )
                    statuses = [
                        {"b_case": cid, "b_status": c.status}
                        for b in kept.values()
                        for cid, c in b.cases.items()
                    ]
                    if statuses:
                        conn.execute(
                            update(Case)
                            .where(Case.case_id == bindparam("b_case"))
                            .values(status=bindparam("b_status")),
                            statuses,
                        )
                self._buckets.clear()
        self._records = 0

    def close(self) -> None:
        self.flush()
        self.engine.dispose()


def ledger_case_events(
    url: str, since: datetime | None = None, until: datetime | None = None
) -> list[CloudEvent]:
    """The case events in the ledger, in the order they happened, as wire models."""
    return list(iter_case_events(url, since, until))


def iter_case_events(
    url: str, since: datetime | None = None, until: datetime | None = None
) -> Iterator[CloudEvent]:
    engine = make_engine(url)
    stmt = select(CaseEvent.type, CaseEvent.document).order_by(CaseEvent.seq)
    if since is not None:
        stmt = stmt.where(CaseEvent.at >= since)
    if until is not None:
        stmt = stmt.where(CaseEvent.at <= until)
    try:
        with engine.connect() as conn:
            for t, doc in conn.execute(stmt):
                yield EVENT_MODELS[t].model_validate_json(doc)
    finally:
        engine.dispose()
