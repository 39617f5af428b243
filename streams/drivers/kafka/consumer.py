"""`minhu consume`: an operations centre following the dispatch topic of its tier.

A kafka-python consumer group: several screens of one centre can share a group (each sees
part), or take their own group (each sees all). `--unit` keeps only what concerns one unit:
cases it owns, is told about, or that leave or reach it.

Idempotent by id: a worker that restarts after a kill may send a batch's records again (same
CloudEvent ids), and an escalation goes to two tiers' topics; each event is shown once.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from kafka import KafkaConsumer
from pydantic import ValidationError

from schemas import EVENT_MODELS, Tier
from schemas.jsontext import object_or_none
from streams.analysis.summary import describe
from streams.topics import Topics


def concerns(value: dict[str, Any], unit: str) -> bool:
    d = value.get("data")
    if not isinstance(d, dict):
        return False
    units = {d.get("unit_id"), d.get("to_unit_id"), d.get("from_unit_id")}
    notified = d.get("notified")
    if isinstance(notified, list):
        units.update(n.get("unit_id") for n in notified if isinstance(n, dict))
    return unit in units


def follow(
    broker: str,
    tier: Tier,
    topics: Topics,
    group: str,
    unit: str | None = None,
    from_beginning: bool = False,
    idle_timeout_s: float | None = None,
    session_timeout_ms: int = 10_000,
    heartbeat_interval_ms: int = 3_000,
    **client_config: Any,
) -> Iterator[dict[str, Any]]:
    """Yield each CloudEvent (as a dict) of the tier's dispatch topic that concerns `unit`.
    `client_config`: more KafkaConsumer settings (the login: security.kafka_python_config)."""
    consumer = KafkaConsumer(
        topics.dispatch(tier),
        bootstrap_servers=broker,
        group_id=group,
        auto_offset_reset="earliest" if from_beginning else "latest",
        consumer_timeout_ms=int(idle_timeout_s * 1000) if idle_timeout_s else float("inf"),
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=heartbeat_interval_ms,
        **client_config,
    )
    seen = SeenIds()
    try:
        for message in consumer:
            value = event_or_none(message.value)
            if value is None:
                continue  # not one of minhu's events: nothing a centre can be shown
            if seen.first(value.get("id")) and (unit is None or concerns(value, unit)):
                yield value
    finally:
        consumer.close()


def event_or_none(raw: bytes) -> dict[str, Any] | None:
    """A dispatch record as a dict, if it is one of minhu's events (only workers write these
    topics; whatever else is there is skipped, and no record makes this raise)."""
    doc = object_or_none(raw)
    kind = doc.get("type") if doc is not None else None
    model = EVENT_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return None
    try:
        model.model_validate(doc)
    except ValidationError:
        return None
    return doc


class SeenIds:
    """The ids seen lately (the last `size`): enough to drop the copies a restarted worker
    re-sends, which follow their originals closely."""

    def __init__(self, size: int = 200_000) -> None:
        self.size = size
        self.ids: OrderedDict[str, None] = OrderedDict()

    def first(self, event_id: object) -> bool:
        if not isinstance(event_id, str):
            return True
        if event_id in self.ids:
            return False
        self.ids[event_id] = None
        if len(self.ids) > self.size:
            self.ids.popitem(last=False)
        return True


def render(value: dict[str, Any], as_json: bool) -> str:
    """One line per event: its time, the case id a responder acts on (`data.case_id` of an
    action or rating), and what happened."""
    if as_json:
        return json.dumps(value, ensure_ascii=False)
    data = value.get("data") or {}
    case_id = data.get("case_id") or value.get("subject") or "?"
    return f"{value['time']}  {case_id}  {describe(value)}"


def run(
    write: Callable[[str], None], stream: Iterator[dict[str, Any]], as_json: bool, limit: int | None
) -> int:
    n = 0
    for value in stream:
        write(render(value, as_json))
        n += 1
        if limit is not None and n >= limit:
            break
    return n
