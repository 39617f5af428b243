"""Parsing and validating raw intake records: each becomes an event or a dead letter."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from pydantic import ValidationError

from handlers.errors import loc_text
from handlers.ids import Identity, identity_text
from schemas import (
    EVENT_REJECTED,
    EventRejected,
    EventRejectedData,
    FieldError,
)
from schemas.lifecycle import InputEvent, input_adapter
from schemas.routing import ErrorKind

REJECTION_SOURCE = "minhu/router"
MAX_ERRORS_LISTED = 10


def parse_input(
    raw: str | bytes, received_from: str, position: int | None, received_at: datetime
) -> InputEvent | EventRejected:
    """Validate one record (intake, action or rating) against the wire contract; a record that
    fails becomes a dead letter.

    `received_from` (a topic or file name) and `position` (offset or line number) say where it
    came from; `received_at` stamps the dead letter (the shell's clock: event time in replays).
    """
    try:
        return input_adapter.validate_json(raw)
    except ValidationError as err:
        return reject_invalid(raw, err, received_from, position, received_at)


def reject_invalid(
    raw: str | bytes,
    err: ValidationError,
    received_from: str,
    position: int | None,
    received_at: datetime,
) -> EventRejected:
    errors = err.errors(include_url=False, include_input=False)
    first = errors[0]
    kind: ErrorKind = "invalid_event"
    if first["type"] == "json_invalid":
        kind = "malformed_json"
    elif first["type"] == "union_tag_invalid":
        kind = "unknown_type"
    listed = [FieldError(loc=loc_text(e["loc"]) or "(record)", msg=e["msg"]) for e in errors]
    reason = _reason(kind, listed, len(errors))
    payload = raw if isinstance(raw, str) else raw.decode("utf-8", errors="backslashreplace")
    event_id, event_type = _peek(payload)
    return rejection(
        kind,
        reason,
        listed[:MAX_ERRORS_LISTED],
        payload,
        received_from,
        position,
        received_at,
        event_id,
        event_type,
    )


def _reason(kind: ErrorKind, errors: list[FieldError], count: int) -> str:
    first = errors[0]
    if kind == "malformed_json":
        return f"malformed JSON: {first.msg}"
    if kind == "unknown_type":
        return f"unknown event type: {first.msg}"
    more = f" (and {count - 1} more)" if count > 1 else ""
    return f"invalid event: {first.loc}: {first.msg}{more}"


def _peek(payload: str) -> tuple[str | None, str | None]:
    """The id and type of a record that failed validation, if it is JSON that has them."""
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    event_id, event_type = doc.get("id"), doc.get("type")
    return (
        event_id if isinstance(event_id, str) else None,
        event_type if isinstance(event_type, str) else None,
    )


def rejection(
    kind: ErrorKind,
    reason: str,
    errors: list[FieldError],
    payload: str,
    received_from: str,
    position: int | None,
    received_at: datetime,
    event_id: str | None,
    event_type: str | None,
    identity: Identity | None = None,
) -> EventRejected:
    """A dead letter. Its id digests the refused event's identity when it has one (a refused
    action, an unknown sensor: the same id whichever driver read it, and wherever), else where
    the record was read and what it said (a record that did not parse)."""
    seed = (
        f"{identity_text(identity)}"
        if identity is not None
        else f"{received_from}\x1f{position}\x1f{payload}"
    )
    digest = hashlib.blake2b(seed.encode("utf-8", "backslashreplace"), digest_size=10).hexdigest()
    return EventRejected.model_construct(
        specversion="1.0",
        id=f"rejected-{digest}",
        source=REJECTION_SOURCE,
        type=EVENT_REJECTED,
        time=received_at,
        subject=event_id,
        datacontenttype="application/json",
        data=EventRejectedData.model_construct(
            reason=reason,
            error_kind=kind,
            errors=errors,
            received_from=received_from,
            position=position,
            event_id=event_id,
            event_type=event_type,
            payload=payload,
        ),
    )
