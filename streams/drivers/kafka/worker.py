"""`minhu worker`: the Faust app that runs the core on Kafka.

Three agents, each keyed so that the state it needs is local to its partition:

1. **admit** (intake appeal, alarm, patrol topics): parse and assess — stateless; dead-letter
   what fails; forward the rest to the routing topic keyed by its dedup key.
2. **route** (routing topic): drop duplicates (table `seen`, by source + id), route with the
   dedup key's state (table `key-states`), publish to the dispatch topics, and forward each
   case to the lifecycle topic keyed by case id.
3. **lifecycle** (lifecycle, action and rating topics, co-partitioned by case id): open cases,
   apply actions and ratings, fire deadlines (table `cases`); publish updates, escalations,
   closures and ratings.

SLA deadlines run on the wall clock: each worker keeps the deadlines of its cases in a heap,
and a timer sends a deadline message through the lifecycle topic when one is due, so that the
case's own partition handles it. The ledger, when configured, is flushed whenever the worker
commits offsets. The decisions are all in `handlers/`: this file only moves them around.
"""

from __future__ import annotations

import heapq
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
from faust.sensors import Sensor
from prometheus_client import start_http_server

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
    state_from_json,
    state_to_json,
)
from handlers.registry import Registry
from handlers.routing import KeyState, assess, route
from handlers.rules import Rules
from schemas import (
    AlarmRaised,
    AppealReported,
    CaseAttached,
    CaseRouted,
    CloudEvent,
    EventRejected,
    PatrolReported,
)
from schemas.lifecycle import CaseEscalated, LifecycleEvent, RatingSubmitted
from streams.drivers.embedded import caller_in_clear
from streams.drivers.kafka import metrics as m
from streams.drivers.kafka.admin import internal_topics
from streams.drivers.kafka.publisher import CE_HEADERS
from streams.drivers.kafka.settings import WorkerSettings
from streams.drivers.ledger import Ledger
from streams.topics import Topics

log = logging.getLogger("minhu.worker")
auth_log = logging.getLogger("minhu.auth")
# Client tuning shared with the benchmark's passthrough, so both are measured alike: a few
# milliseconds of producer linger let sends batch instead of one request per record.
FAUST_TUNING: dict[str, Any] = {"producer_linger": 0.005, "web_enabled": False}
RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def now() -> datetime:
    return datetime.now(UTC)


class LedgerSensor(Sensor):
    """Flushes the ledger when offsets are about to be committed: whatever is committed has
    been recorded. Also asks the deadline heap to be rebuilt after each rebalance."""

    def __init__(self, worker: MinhuWorker) -> None:
        super().__init__()
        self.worker = worker

    def on_commit_initiated(self, consumer: Any) -> Any:
        if self.worker.ledger is not None:
            self.worker.ledger.flush()
        return None

    def on_rebalance_end(self, app: Any, state: Any) -> None:
        self.worker.rebuild = True


class MinhuWorker:
    """Builds the Faust app for one set of settings, rules and registry."""

    def __init__(self, settings: WorkerSettings, rules: Rules, registry: Registry) -> None:
        self.s = settings
        self.rules = rules
        self.registry = registry
        self.topics = Topics(settings.topic_prefix)
        self.ledger = Ledger(settings.ledger) if settings.ledger else None
        self.deadlines: list[tuple[datetime, str]] = []
        self.rebuild = True
        datadir = Path(settings.data_dir) / settings.app_id
        datadir.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(
            settings.app_id,
            broker=f"kafka://{settings.broker}",
            store=settings.store,
            datadir=str(datadir),
            topic_partitions=settings.partitions,
            broker_session_timeout=settings.session_timeout,
            broker_heartbeat_interval=settings.heartbeat_interval,
            **FAUST_TUNING,
            table_cleanup_interval=3600.0,
        )
        self.app.sensors.add(LedgerSensor(self))
        self._out: dict[str, faust.TopicT] = {}
        routing_name, lifecycle_name = internal_topics(self.topics, settings.app_id)
        self.intake = self.app.topic(
            *(self.topics.intake(k) for k in ("appeal", "alarm", "patrol")), **RAW
        )
        self.routing = self.app.topic(routing_name, partitions=settings.partitions, **RAW)
        self.lifecycle_topic_name = lifecycle_name
        self.lifecycle = self.app.topic(lifecycle_name, partitions=settings.partitions, **RAW)
        self.case_inputs = self.app.topic(
            lifecycle_name, self.topics.intake("action"), self.topics.intake("rating"), **RAW
        )
        self.seen = self.app.Table("seen", default=bool, partitions=settings.partitions)
        self.key_states = self.app.Table("key-states", partitions=settings.partitions)
        self.cases = self.app.Table("cases", partitions=settings.partitions)
        self.seen_inputs = self.app.Table(
            "seen-inputs", default=bool, partitions=settings.partitions
        )
        self.app.agent(self.intake, name="admit")(self._admit)
        self.app.agent(self.routing, name="route")(self._route)
        self.app.agent(self.case_inputs, name="lifecycle")(self._lifecycle)
        self.app.timer(settings.tick_seconds, name="deadlines")(self._tick)
        if settings.metrics_port is not None:
            self.app.task(self._serve_metrics)

    async def _serve_metrics(self) -> None:
        if self.s.metrics_port is not None:
            start_http_server(self.s.metrics_port)

    # ---- publishing ----

    def _topic(self, name: str) -> faust.TopicT:
        t = self._out.get(name)
        if t is None:
            t = self._out[name] = self.app.topic(name, **RAW)
        return t

    async def publish(self, event: CloudEvent) -> None:
        value = event.model_dump_json(exclude_none=True).encode()
        for rec in self.topics.records_for(event):
            await self._topic(rec.topic).send(
                key=rec.key.encode() if rec.key else None, value=value, headers=CE_HEADERS
            )
            m.EVENTS_OUT.labels(rec.topic, event.type).inc()
        if isinstance(event, EventRejected):
            m.DEAD_LETTERS.labels(event.data.error_kind).inc()
            if self.ledger is not None:
                self.ledger.record_dead_letter(event)

    # ---- 1. admit: parse and assess (stateless) ----

    async def _admit(self, stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            msg = event.message
            m.EVENTS_IN.labels(msg.topic, "raw").inc()
            raw: bytes = event.value
            parsed = parse_input(raw, msg.topic, msg.offset, now())
            if isinstance(parsed, EventRejected):
                await self.publish(parsed)
                continue
            if not isinstance(parsed, AppealReported | AlarmRaised | PatrolReported):
                # An action or rating on an intake topic: pass it to its case.
                await self.lifecycle.send(
                    key=parsed.data.case_id.encode(),
                    value=json.dumps(
                        {"kind": "input", "raw": raw.decode("utf-8", "backslashreplace")}
                    ).encode(),
                )
                continue
            assessed = assess(
                parsed,
                self.rules,
                self.registry,
                msg.topic,
                msg.offset,
                raw.decode("utf-8", "backslashreplace"),
            )
            if isinstance(assessed, EventRejected):
                await self.publish(assessed)
                continue
            envelope = {
                "raw": raw.decode("utf-8", "backslashreplace"),
                "from": msg.topic,
                "pos": msg.offset,
                "ts": msg.timestamp,
            }
            await self.routing.send(
                key=assessed.dedup_key.encode(),
                value=json.dumps(envelope, ensure_ascii=False).encode(),
            )

    # ---- 2. route: duplicates and per-key state ----

    async def _route(self, stream: faust.StreamT[bytes]) -> None:
        async for key, value in stream.items():
            doc = json.loads(value)
            event = parse_input(doc["raw"], doc["from"], doc["pos"], now())
            if not isinstance(event, AppealReported | AlarmRaised | PatrolReported):
                continue  # validated by admit: cannot happen
            ident = identity(event.source, event.id)
            if self.seen[ident]:
                m.DUPLICATES.inc()
                continue
            assessed = assess(event, self.rules, self.registry, doc["from"], doc["pos"])
            if isinstance(assessed, EventRejected):
                continue  # assess is pure: admit already let this through
            dkey = key.decode()
            stored = self.key_states.get(dkey)
            emits, state = route(
                assessed, KeyState.from_json(stored) if stored else None, self.rules, self.registry
            )
            # Outputs first, state after: a worker killed in between replays this record with
            # the old state and sends the very same records again (same ids) rather than
            # finding it already "seen" and losing its outputs.
            for out in emits:
                await self.publish(out)
                if isinstance(out, CaseRouted):
                    if doc.get("ts"):
                        m.ROUTING_LATENCY.observe(max(time.time() - doc["ts"] / 1000, 0.0))
                    if self.ledger is not None:
                        self.ledger.record_case(
                            out, assessed.kind, ident, caller_in_clear(assessed, self.registry)
                        )
                    kind = "routed"
                else:
                    if self.ledger is not None:
                        self.ledger.record_attached(out, ident)
                    kind = "attached"
                await self.lifecycle.send(
                    key=out.data.case_id.encode(),
                    value=json.dumps({"kind": kind, "event": out.model_dump_json()}).encode(),
                )
            self.key_states[dkey] = state.to_json()
            self.seen[ident] = True

    # ---- 3. lifecycle: per case ----

    async def _lifecycle(self, stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            msg = event.message
            if msg.topic == self.lifecycle_topic_name:
                doc = json.loads(event.value)
                await self._internal(doc, msg.offset)
            else:
                await self._case_input(event.value, msg.topic, msg.offset)

    async def _internal(self, doc: dict[str, Any], offset: int) -> None:
        kind = doc["kind"]
        if kind == "input":
            await self._case_input(doc["raw"].encode(), self.lifecycle_topic_name, offset)
            return
        if kind == "routed":
            routed = CaseRouted.model_validate_json(doc["event"])
            emits, state = open_case(routed, self.registry)
            m.OPEN_CASES.labels(state.tier.value).inc(state.status != "closed")
            await self._apply(emits, state, None)
        elif kind == "attached":
            attached = CaseAttached.model_validate_json(doc["event"])
            stored = self.cases.get(attached.data.case_id)
            if stored is not None:
                before = state_from_json(stored)
                await self._apply(*attach(attached, before, self.registry), before)
        elif kind == "deadline":
            stored = self.cases.get(doc["case_id"])
            due = datetime.fromisoformat(doc["due"])
            if stored is not None:
                before = state_from_json(stored)
                if next_deadline(before) == due:
                    emits, state = on_deadline(before, due, self.registry)
                    for e in emits:
                        if isinstance(e, CaseEscalated):
                            m.SLA_BREACHES.labels(e.data.reason).inc()
                    await self._apply(emits, state, before)

    async def _case_input(self, raw: bytes, topic: str, offset: int) -> None:
        m.EVENTS_IN.labels(topic, "raw").inc()
        parsed = parse_input(raw, topic, offset, now())
        if isinstance(parsed, EventRejected):
            await self.publish(parsed)
            return
        if isinstance(parsed, AppealReported | AlarmRaised | PatrolReported):
            payload = raw.decode("utf-8", "backslashreplace")
            await self.publish(
                rejection(
                    "invalid_event",
                    f"an intake event ({parsed.type}) on {topic}: publish it on its intake topic",
                    [],
                    payload,
                    topic,
                    offset,
                    now(),
                    parsed.id,
                    parsed.type,
                )
            )
            return
        ident = identity(parsed.source, parsed.id)
        if self.seen_inputs[ident]:
            m.DUPLICATES.inc()
            return
        self.seen_inputs[ident] = True
        case_id = parsed.data.case_id
        stored = self.cases.get(case_id)
        before = state_from_json(stored) if stored is not None else None
        outcome: tuple[list[LifecycleEvent], CaseState] | Refusal
        if before is None:
            outcome = Refusal("unknown_case", f"unknown case '{case_id}'")
        elif isinstance(parsed, RatingSubmitted):
            outcome = rate(parsed, before, self.registry)
        else:
            outcome = apply_action(parsed, before, self.registry, self.rules)
        if isinstance(outcome, Refusal):
            if outcome.kind == "unauthorized":
                auth_log.warning("refused %s %s: %s", parsed.type, parsed.id, outcome.reason)
            await self.publish(
                rejection(
                    outcome.kind,
                    outcome.reason,
                    [],
                    raw.decode("utf-8", "backslashreplace"),
                    topic,
                    offset,
                    parsed.time,
                    parsed.id,
                    parsed.type,
                )
            )
            return
        await self._apply(*outcome, before)

    async def _apply(
        self, emits: list[LifecycleEvent], state: CaseState, before: CaseState | None
    ) -> None:
        for e in emits:
            await self.publish(e)
            if isinstance(e, CaseEscalated):
                m.ESCALATIONS.labels(e.data.reason).inc()
            if self.ledger is not None:
                self.ledger.record_case_event(e)
        if before is not None and (before.tier, before.status) != (state.tier, state.status):
            m.OPEN_CASES.labels(before.tier.value).dec(before.status != "closed")
            m.OPEN_CASES.labels(state.tier.value).inc(state.status != "closed")
        self.cases[state.case_id] = state_to_json(state)
        if self.ledger is not None:
            self.ledger.record_case_state(state)
        due = next_deadline(state)
        if due is not None:
            heapq.heappush(self.deadlines, (due, state.case_id))

    # ---- the clock ----

    async def _tick(self) -> None:
        if self.rebuild:
            self._rebuild()
        t = now()
        while self.deadlines and self.deadlines[0][0] <= t:
            due, case_id = heapq.heappop(self.deadlines)
            await self.lifecycle.send(
                key=case_id.encode(),
                value=json.dumps(
                    {"kind": "deadline", "case_id": case_id, "due": due.isoformat()}
                ).encode(),
            )

    def _rebuild(self) -> None:
        """After a rebalance: the deadlines and open-case counts of the cases now held here."""
        self.rebuild = False
        self.deadlines.clear()
        m.OPEN_CASES.clear()
        for case_id, stored in self.cases.items():
            state = state_from_json(stored)
            if state.status != "closed":
                m.OPEN_CASES.labels(state.tier.value).inc()
            due = next_deadline(state)
            if due is not None:
                self.deadlines.append((due, case_id))
        heapq.heapify(self.deadlines)


def run_worker(
    settings: WorkerSettings, rules: Rules, registry: Registry, loglevel: str = "info"
) -> None:
    """Start a worker in this process; returns when it is stopped (SIGTERM or Ctrl-C)."""
    worker = MinhuWorker(settings, rules, registry)
    faust.Worker(worker.app, loglevel=loglevel, quiet=True).execute_from_commandline()


__all__ = ["MinhuWorker", "run_worker"]
