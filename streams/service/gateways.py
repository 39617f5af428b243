"""What a sensor gateway may hand in, checked at the door before anything reaches the engine.

A gateway publishes alarms, of its own sensors only (the registry binds each sensor to its
`gateway`), under its own source (`/gateway/<gateway id>`, so that no gateway can claim another's
event ids and make its alarms read as duplicates). The record must also pass the wire contract
and have a plausible time; whatever fails is refused with its kind and reason, for the door to
answer (HTTP) or dead-letter (MQTT).

The CloudEvents HTTP binding is read here too: structured mode is the record as sent; a batch is
a JSON array of structured events; binary mode carries the attributes in `ce-*` headers and the
data as the body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers.intake import implausible_time, parse_input
from handlers.registry import Registry
from handlers.rules import Rules
from schemas import ALARM_RAISED, AlarmRaised, EventRejected
from schemas.jsontext import NotJson, loads, object_or_none

# What an answer echoes of what it was sent, at most: a refused record's id, and a reason
# (which may quote a field: an unknown `type` of 500 KB is not sent back whole).
ECHOED_ID_CHARS = 64
ECHOED_REASON_CHARS = 1000


@dataclass(frozen=True, slots=True)
class DoorRefusal:
    """Why a door refused a record: a dead letter's `error_kind` and the reason in words."""

    kind: str
    reason: str


def gateway_source(gateway_id: str) -> str:
    return f"/gateway/{gateway_id}"


def gateway_refusal(
    raw: str | bytes, gateway_id: str, registry: Registry, rules: Rules, now: datetime
) -> DoorRefusal | None:
    """None if the gateway `gateway_id` may hand in this record, else why not."""
    parsed = parse_input(raw, f"gateway/{gateway_id}", None, now)
    if isinstance(parsed, EventRejected):
        return DoorRefusal(parsed.data.error_kind, parsed.data.reason)
    if not isinstance(parsed, AlarmRaised):
        return DoorRefusal(
            "unauthorized", f"a gateway publishes {ALARM_RAISED} events only, not {parsed.type}"
        )
    implausible = implausible_time(parsed.time, now, None, rules.time)
    if implausible is not None:
        return DoorRefusal("implausible_time", implausible)
    if parsed.source != gateway_source(gateway_id):
        return DoorRefusal(
            "unauthorized",
            f"the source of gateway {gateway_id}'s events is {gateway_source(gateway_id)!r}, "
            f"not {parsed.source!r}",
        )
    d = parsed.data
    if d.gateway_id != gateway_id:
        return DoorRefusal(
            "unauthorized",
            f"the key is gateway {gateway_id}'s; the alarm names gateway {d.gateway_id}",
        )
    sensor = registry.sensors.get(d.sensor_id)
    if sensor is None:
        return DoorRefusal("unknown_sensor", f"no sensor {d.sensor_id!r} in the registry")
    if sensor.gateway != gateway_id:
        return DoorRefusal(
            "unauthorized",
            f"sensor {d.sensor_id} belongs to gateway {sensor.gateway}, not {gateway_id}",
        )
    return None


def clipped(text: str, limit: int = ECHOED_ID_CHARS) -> str:
    """`text`, or its first `limit` characters and an ellipsis."""
    return text if len(text) <= limit else text[:limit] + "…"


def event_id_of(raw: str | bytes) -> str | None:
    """The `id` of a record that may not parse, for a refusal to name it (clipped)."""
    doc = object_or_none(raw)
    value = doc.get("id") if doc is not None else None
    return clipped(value) if isinstance(value, str) else None


def batch_records(body: bytes) -> list[str] | DoorRefusal:
    """The events of a `application/cloudevents-batch+json` body, each as JSON text."""
    try:
        doc = loads(body)
    except NotJson as err:
        return DoorRefusal("malformed_json", f"the batch is not JSON: {err}")
    if not isinstance(doc, list):
        return DoorRefusal("invalid_event", "a batch is a JSON array of CloudEvents")
    if not doc:
        return DoorRefusal("invalid_event", "the batch is empty")
    return [json.dumps(e, ensure_ascii=False) for e in doc]


def binary_record(headers: Mapping[str, str], content_type: str, body: bytes) -> str | DoorRefusal:
    """A binary-mode event (`ce-*` headers, the data as the JSON body) as structured JSON text.
    Every `ce-*` header becomes an attribute: one the contract does not know is refused by it,
    by name."""
    attrs: dict[str, Any] = {
        k[3:].lower(): v for k, v in headers.items() if k.lower().startswith("ce-")
    }
    missing = [a for a in ("specversion", "id", "source", "type") if a not in attrs]
    if missing:
        return DoorRefusal(
            "invalid_event",
            "not a CloudEvent: give it as application/cloudevents+json, or with the headers "
            + ", ".join(f"ce-{a}" for a in missing),
        )
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json":
        return DoorRefusal(
            "invalid_event",
            f"the data of a binary-mode event is application/json, not {clipped(media)!r}",
        )
    try:
        data = loads(body)
    except NotJson as err:
        return DoorRefusal("malformed_json", f"the body is not JSON: {err}")
    return json.dumps({**attrs, "datacontenttype": media, "data": data}, ensure_ascii=False)
