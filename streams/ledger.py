"""The ledger: every intake record, case, routing decision and dead letter, in SQL.

SQLite file by default, PostgreSQL by URL (`postgresql+psycopg://user@host/db`). Writes are
buffered and flushed in batches (`batch_size` records, and at `flush()`/`close()`), each batch
in one transaction. The ledger keeps personal data in clear; dispatch topics never do.

It also holds what the embedded runner needs to resume: the identities of the events it has
seen (duplicates stay duplicates across runs) and the routing state per dedup key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Text,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from handlers.lifecycle import CaseState, state_from_json, state_to_json
from handlers.routing import KeyState
from schemas import CaseAttached, CaseRouted, CloudEvent, EventRejected
from schemas.lifecycle import InputEvent


class Base(DeclarativeBase):
    pass


class IntakeRecord(Base):
    """Every record that came in, with what became of it: nothing is lost."""

    __tablename__ = "intake_records"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_from: Mapped[str] = mapped_column(String(500))
    position: Mapped[int | None] = mapped_column(Integer)
    # routed | attached | applied (an action or rating) | rejected | duplicate
    outcome: Mapped[str] = mapped_column(String(20))
    identity: Mapped[str | None] = mapped_column(String(800), index=True)
    event_type: Mapped[str | None] = mapped_column(String(200))
    event_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    case_id: Mapped[str | None] = mapped_column(String(40), index=True)
    payload: Mapped[str] = mapped_column(Text)


class Case(Base):
    """A case as routed; personal data in clear."""

    __tablename__ = "cases"
    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
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
    acknowledge_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolve_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dedup_key: Mapped[str] = mapped_column(String(400))
    caller_id: Mapped[str | None] = mapped_column(String(128))
    caller_name: Mapped[str | None] = mapped_column(String(200))
    caller_phone: Mapped[str | None] = mapped_column(String(40))
    summary: Mapped[str] = mapped_column(Text)


class RoutingDecision(Base):
    """Each decision taken on a case: opened by routing, or an alarm attached to it."""

    __tablename__ = "routing_decisions"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    decision: Mapped[str] = mapped_column(String(20))  # routed | attached
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_identity: Mapped[str] = mapped_column(String(800))
    tier: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[str] = mapped_column(String(128))
    rule_id: Mapped[str] = mapped_column(String(128))
    notified: Mapped[str] = mapped_column(Text)  # JSON list of unit ids
    explanation: Mapped[str] = mapped_column(Text)


class DeadLetter(Base):
    """A refused record. The same bad record fed twice is refused twice: two rows, one id."""

    __tablename__ = "dead_letters"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    error_kind: Mapped[str] = mapped_column(String(40), index=True)
    reason: Mapped[str] = mapped_column(Text)
    received_from: Mapped[str] = mapped_column(String(500))
    position: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)


class CaseEvent(Base):
    """Every event of a case's life, in order: routed, attached, updated, escalated, closed,
    rating requested and recorded, reopened. The three rates are computed from these."""

    __tablename__ = "case_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    event_id: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    document: Mapped[str] = mapped_column(Text)  # the CloudEvent as JSON


class CaseStateRow(Base):
    """The lifecycle state of one case, for resuming."""

    __tablename__ = "case_states"
    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    state: Mapped[str] = mapped_column(Text)


class KeyStateRow(Base):
    """The routing state of one dedup key (repeat window, open storm), for resuming."""

    __tablename__ = "key_states"
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    state: Mapped[str] = mapped_column(Text)


Index("ix_cases_tier_category", Case.tier, Case.category)

_TABLES = (IntakeRecord, Case, RoutingDecision, DeadLetter, CaseEvent)


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


class Ledger:
    """Buffered writer. Call `record_*` per outcome; batches go to the database together."""

    def __init__(self, url: str, batch_size: int = 5000, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        self.batch_size = batch_size
        Base.metadata.create_all(self.engine)
        self._rows: dict[type[Base], list[dict[str, Any]]] = {t: [] for t in _TABLES}
        self._states: dict[str, KeyState] = {}
        self._case_states: dict[str, CaseState] = {}
        self._pending = 0

    # ---- resuming ----

    def seen_identities(self) -> set[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(IntakeRecord.identity).where(
                    IntakeRecord.identity.is_not(None), IntakeRecord.outcome != "duplicate"
                )
            )
            return {r[0] for r in rows if r[0] is not None}

    def case_states(self) -> dict[str, CaseState]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(CaseStateRow.case_id, CaseStateRow.state))
            return {k: state_from_json(json.loads(s)) for k, s in rows}

    def key_states(self) -> dict[str, KeyState]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(KeyStateRow.key, KeyStateRow.state))
            return {k: KeyState.from_json(json.loads(s)) for k, s in rows}

    # ---- writing ----

    def record_intake(
        self,
        received_from: str,
        position: int | None,
        outcome: str,
        payload: str,
        event: InputEvent | None = None,
        identity: str | None = None,
        case_id: str | None = None,
    ) -> None:
        self._add(
            IntakeRecord,
            {
                "received_from": received_from,
                "position": position,
                "outcome": outcome,
                "identity": identity,
                "event_type": event.type if event is not None else None,
                "event_time": event.time if event is not None else None,
                "case_id": case_id,
                "payload": payload,
            },
        )

    def record_case(
        self,
        routed: CaseRouted,
        kind: str,
        identity: str,
        caller: tuple[str | None, str | None, str | None],
    ) -> None:
        self.record_case_event(routed)
        d = routed.data
        self._add(
            Case,
            {
                "case_id": d.case_id,
                "opened_at": routed.time,
                "kind": kind,
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
                "caller_id": caller[0],
                "caller_name": caller[1],
                "caller_phone": caller[2],
                "summary": d.summary,
            },
        )
        self._decision(
            d.case_id,
            "routed",
            routed.time,
            identity,
            d.tier.value,
            d.unit_id,
            d.rule_id,
            [n.unit_id for n in d.notified],
            d.explanation,
        )

    def record_attached(self, attached: CaseAttached, identity: str) -> None:
        self.record_case_event(attached)
        d = attached.data
        self._decision(
            d.case_id,
            "attached",
            attached.time,
            identity,
            d.tier.value,
            d.unit_id,
            d.rule_id,
            [],
            d.explanation,
        )

    def record_dead_letter(self, rejected: EventRejected) -> None:
        d = rejected.data
        self._add(
            DeadLetter,
            {
                "id": rejected.id,
                "at": rejected.time,
                "error_kind": d.error_kind,
                "reason": d.reason,
                "received_from": d.received_from,
                "position": d.position,
                "payload": d.payload,
            },
        )

    def record_state(self, key: str, state: KeyState) -> None:
        self._states[key] = state

    def record_case_state(self, state: CaseState) -> None:
        self._case_states[state.case_id] = state

    def record_case_event(self, event: CloudEvent) -> None:
        self._add(
            CaseEvent,
            {
                "case_id": event.subject,
                "event_id": event.id,
                "type": event.type,
                "at": event.time,
                "document": event.model_dump_json(exclude_none=True),
            },
        )

    def _decision(
        self,
        case_id: str,
        decision: str,
        at: datetime,
        identity: str,
        tier: str,
        unit_id: str,
        rule_id: str,
        notified: Iterable[str],
        explanation: str,
    ) -> None:
        self._add(
            RoutingDecision,
            {
                "case_id": case_id,
                "decision": decision,
                "at": at,
                "event_identity": identity,
                "tier": tier,
                "unit_id": unit_id,
                "rule_id": rule_id,
                "notified": json.dumps(list(notified)),
                "explanation": explanation,
            },
        )

    def _add(self, table: type[Base], row: dict[str, Any]) -> None:
        self._rows[table].append(row)
        self._pending += 1
        if self._pending >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered in one transaction."""
        if not self._pending and not self._states and not self._case_states:
            return
        with self.engine.begin() as conn:
            for table, rows in self._rows.items():
                if rows:
                    conn.execute(insert(table), rows)
                    rows.clear()
            if self._states:
                rows = [
                    {"key": k, "state": json.dumps(v.to_json())} for k, v in self._states.items()
                ]
                self._upsert(conn, KeyStateRow, "key", "state", rows)
                self._states.clear()
            if self._case_states:
                states = list(self._case_states.values())
                rows = [
                    {"case_id": c.case_id, "state": json.dumps(state_to_json(c))} for c in states
                ]
                self._upsert(conn, CaseStateRow, "case_id", "state", rows)
                conn.execute(
                    update(Case)
                    .where(Case.case_id == bindparam("b_case"))
                    .values(status=bindparam("b_status")),
                    [{"b_case": c.case_id, "b_status": c.status} for c in states],
                )
                self._case_states.clear()
        self._pending = 0

    def _upsert(
        self, conn: Any, table: type[Base], key: str, value: str, rows: list[dict[str, Any]]
    ) -> None:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table)
        conn.execute(
            stmt.on_conflict_do_update(index_elements=[key], set_={value: stmt.excluded[value]}),
            rows,
        )

    def close(self) -> None:
        self.flush()
        self.engine.dispose()


def ledger_case_events(
    url: str, since: datetime | None = None, until: datetime | None = None
) -> list[CloudEvent]:
    """The case events in the ledger, in the order they happened, as wire models."""
    from schemas import EVENT_MODELS

    engine = make_engine(url)
    stmt = select(CaseEvent.type, CaseEvent.document).order_by(CaseEvent.seq)
    if since is not None:
        stmt = stmt.where(CaseEvent.at >= since)
    if until is not None:
        stmt = stmt.where(CaseEvent.at <= until)
    try:
        with engine.connect() as conn:
            return [EVENT_MODELS[t].model_validate_json(doc) for t, doc in conn.execute(stmt)]
    finally:
        engine.dispose()
