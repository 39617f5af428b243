"""Parsing and validating raw records: each becomes an event or a dead letter with a reason a
person can act on.

A dead letter keeps the record as it came (its `payload`), with two exceptions that every
store needs: characters no database can hold (NUL, other C0 controls, lone surrogates) are
written as `\\uXXXX` escapes, and a record over `MAX_RECORD_BYTES` keeps its first
`KEPT_OF_LARGE` bytes and says how long it was.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from handlers.errors import loc_text
from handlers.ids import Identity, identity_text
from handlers.rules import TimeSpec
from schemas import (
    EVENT_REJECTED,
    EventRejected,
    EventRejectedData,
    FieldError,
)
from schemas.common import KEPT_OF_LARGE, MAX_RECORD_BYTES, UNSAFE_CHARS
from schemas.lifecycle import InputEvent, input_adapter
from schemas.routing import ErrorKind

REJECTION_SOURCE = "minhu/router"
MAX_ERRORS_LISTED = 10
# The longest reason, field name or message a dead letter quotes (an unknown type is quoted).
MAX_REASON_CHARS = 1000
EVENT_TYPES = (
    "minhu.appeal.reported, minhu.alarm.raised, minhu.patrol.reported, "
    "minhu.case.acknowledged, minhu.case.resolved, minhu.case.verified, "
    "minhu.case.escalation_requested, minhu.case.reassign_requested, "
    "minhu.case.extension_requested, minhu.case.extension_decided, minhu.rating.submitted"
)


# No event is believed after this, whatever the rules say: every deadline computed from an
# event's time stays far inside what a datetime can hold.
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def implausible_time(
    t: datetime, now: datetime | None, clock: datetime | None, spec: TimeSpec
) -> str | None:
    """Why an event's time cannot be believed, or None: the one place event time is bounded
    (escalation_rules.yaml, `time:`). `now` is the wall clock when the record was read, `clock`
    the stream's (the latest event time decided), either unknown (None)."""
    if t < spec.earliest:
        return f"dated {t.isoformat()}, before {spec.earliest.isoformat()}"
    if now is not None and t > now + spec.max_ahead:
        return (
            f"dated {t.isoformat()}, {_span(t - now)} ahead of when it was read "
            f"({now.isoformat()}): more than {_span(spec.max_ahead)} ahead is refused"
        )
    if clock is not None and t > clock + spec.max_jump:
        return (
            f"dated {t.isoformat()}, {_span(t - clock)} after the stream's latest event "
            f"({clock.isoformat()}): more than {_span(spec.max_jump)} is refused"
        )
    if t > LATEST:
        return f"dated {t.isoformat()}, after {LATEST.isoformat()}"
    return None


def _span(d: timedelta) -> str:
    """A span the way a person writes it: 3d 4h, 2h 5m, 40s."""
    secs = int(d.total_seconds())
    days, rest = divmod(secs, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return " ".join(parts[:2]) or f"{seconds}s"


def storable(payload: str) -> str:
    """The payload with what no store can hold written as \\uXXXX escapes."""
    if UNSAFE_CHARS.search(payload) is None:
        return payload
    return UNSAFE_CHARS.sub(lambda m: f"\\u{ord(m.group()):04x}", payload)


def kept(payload: str | bytes) -> str:
    """What a store keeps of a record: all of it, its unstorable characters escaped, or of a
    record over `MAX_RECORD_BYTES` its first `KEPT_OF_LARGE` bytes and its length."""
    data = payload if isinstance(payload, bytes) else payload.encode("utf-8", "surrogatepass")
    if len(data) > MAX_RECORD_BYTES:
        return storable(f"{as_text(data[:KEPT_OF_LARGE])}…({len(data):,} bytes in all)")
    return storable(as_text(payload))


def as_text(raw: str | bytes) -> str:
    return raw if isinstance(raw, str) else raw.decode("utf-8", errors="backslashreplace")


def parse_input(
    raw: str | bytes, received_from: str, position: int | None, received_at: datetime
) -> InputEvent | EventRejected:
    """Validate one record (intake, action or rating) against the wire contract; a record that
    fails becomes a dead letter.

    `received_from` (a topic or file name) and `position` (offset or line number) say where it
    came from; `received_at` stamps the dead letter.
    """
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_RECORD_BYTES:
        reason = f"record of {size:,} bytes: the limit is {MAX_RECORD_BYTES:,} bytes"
        return rejection(
            "too_large", reason, [], kept(raw), received_from, position, received_at, None, None
        )
    if raw.startswith(b"\xef\xbb\xbf") if isinstance(raw, bytes) else raw.startswith("\ufeff"):
        return _reject_bom(raw, received_from, position, received_at)
    try:
        return input_adapter.validate_json(raw)
    except ValidationError as err:
        return reject_invalid(raw, err, received_from, position, received_at)


def _reject_bom(
    raw: str | bytes, received_from: str, position: int | None, received_at: datetime
) -> EventRejected:
    """A record that starts with a byte-order mark is refused, saying so (JSON parsers see
    only "expected value at line 1 column 1"): a record is UTF-8 without one (RFC 8259), and
    an editor that adds one to the start of a file is told how to save it."""
    payload = as_text(raw)
    msg = (
        "starts with a byte-order mark (U+FEFF, bytes EF BB BF): a record is UTF-8 without "
        "one; save the file as UTF-8 without BOM"
    )
    event_id, event_type = _peek(payload[1:])
    return rejection(
        "malformed_json",
        f"malformed JSON: the record {msg}",
        [FieldError(loc="(record)", msg=f"the record {msg}")],
        payload,
        received_from,
        position,
        received_at,
        event_id,
        event_type,
    )


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
    elif first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        kind = "unknown_type"
    payload = as_text(raw)
    event_id, event_type = _peek(payload)
    listed = [_plainly(e, event_type) for e in errors]
    reason = _reason(kind, listed, len(errors), event_type)
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


def _plainly(error: Any, event_type: str | None) -> FieldError:
    """One validation error in words: the field as a path inside the event, and what is
    wrong with it, as "the field 'data.text' is too long: at most 4000 characters" (never
    pydantic's own phrasing, "String should have at most 4000 characters")."""
    loc = list(error["loc"])
    if loc and event_type is not None and loc[0] == event_type:
        loc = loc[1:]  # the discriminated union's tag: the event type, not a field
    where = loc_text(loc) or "(record)"
    kind, msg = error["type"], error["msg"]
    ctx = {k: _number(v) for k, v in (error.get("ctx") or {}).items()}
    if kind == "union_tag_not_found":
        return FieldError(loc="type", msg="the field 'type' is missing: it names the kind of event")
    if kind == "union_tag_invalid":
        tag = ctx.get("tag", event_type)
        return FieldError(
            loc="type", msg=f"'{tag}' is not an event minhu knows (it knows {EVENT_TYPES})"
        )
    if kind in ("json_invalid", "json_type"):
        return FieldError(loc=where, msg=msg.removeprefix("Invalid JSON: "))
    if kind == "extra_forbidden":
        what = f"is not part of a {event_type or 'minhu event'}"
    elif kind == "value_error":  # the contract's own words (schemas/common.py)
        what = msg.removeprefix("Value error, ")
        if not what.startswith(("must ", "contains ")):  # a sentence of its own
            return FieldError(loc=where, msg=f"the field '{where}': {what}")
    elif kind == "string_too_short" and ctx.get("min_length", 1) > 1:
        what = "is too short: at least {min_length} characters".format(**ctx)
    else:
        what = _WORDS.get(kind, "").format(**ctx) or _other(kind, msg, ctx)
    if where == "(record)":
        return FieldError(loc=where, msg=f"the record {_RECORD.get(kind, what)}")
    return FieldError(loc=where, msg=f"the field '{where}' {what}")


# What a field has wrong, by pydantic error type (the `ctx` values fill the braces).
_WORDS = {
    "missing": "is missing",
    "string_too_long": "is too long: at most {max_length} characters",
    "string_too_short": "is empty",
    "string_type": "must be text",
    "literal_error": "must be {expected}",
    "enum": "must be one of {expected}",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number (not text, true or false)",
    "float_parsing": "must be a number (not text, true or false)",
    "finite_number": "must be a finite number (not NaN or Infinity)",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "greater_than": "must be more than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "too_short": "has too few items: at least {min_length}",
    "too_long": "has too many items: at most {max_length}",
    "datetime_type": "must be a date and time with its UTC offset (RFC 3339)",
    "datetime_parsing": "is not a date and time: {error}",
    "datetime_from_date_parsing": "is not a date and time: {error}",
    "timezone_aware": "must carry its UTC offset (RFC 3339, like 2026-11-01T09:00:00+08:00)",
}
# The same for the record as a whole.
_RECORD = {
    "model_type": "must be a JSON object: an event",
    "model_attributes_type": "must be a JSON object: an event",
    "dict_type": "must be a JSON object: an event",
}
# What the wire contract's patterns ask for (schemas/common.py, schemas/intake.py).
_PATTERNS = {
    r"^[A-Za-z0-9][\w.:\-]*$": (
        "must be an id: letters, digits and . _ : -, starting with a letter or digit"
    ),
    r"^\+?[0-9][0-9\- ]{4,19}$": (
        "must be a phone number: 5 to 20 digits, spaces and dashes, perhaps a leading +"
    ),
    r"^https?://\S+$": "must be a web address (http or https), without spaces",
}


def _number(value: Any) -> Any:
    """90.0 as 90: a bound in the contract written the way a person writes it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _other(kind: str, msg: str, ctx: dict[str, Any]) -> str:
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return _PATTERNS.get(pattern, f"does not have the form it needs ({pattern})")
    # A type no record has shown yet: pydantic's words, after the field's name.
    return "is wrong: " + msg[:1].lower() + msg[1:]


def _reason(kind: ErrorKind, errors: list[FieldError], count: int, event_type: str | None) -> str:
    first = errors[0]
    if kind == "malformed_json":
        return f"malformed JSON: {first.msg}"
    if kind == "unknown_type":
        return f"unknown event type: {first.msg}"
    more = f" (and {count - 1} more)" if count > 1 else ""
    what = event_type or "event"
    if first.msg.startswith(("the field ", "the record ")):
        return f"invalid {what}: {first.msg}{more}"
    return f"invalid {what}: {first.loc}: {first.msg}{more}"


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
        storable(event_id)[:200] if isinstance(event_id, str) else None,
        storable(event_type)[:200] if isinstance(event_type, str) else None,
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
            reason=_clip(storable(reason), MAX_REASON_CHARS),
            error_kind=kind,
            errors=[
                FieldError(
                    loc=_clip(storable(e.loc), MAX_REASON_CHARS),
                    msg=_clip(storable(e.msg), MAX_REASON_CHARS),
                )
                for e in errors
            ],
            received_from=received_from,
            position=position,
            event_id=event_id,
            event_type=event_type,
            payload=_bounded(storable(payload)),
        ),
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}…({len(text):,} characters in all)"


def _bounded(payload: str) -> str:
    """A dead letter's payload, escaped, as a JSON string no larger than `MAX_RECORD_BYTES`:
    escaping can make a record of control characters six times as long (\\u0001), and JSON
    doubles a backslash, so a record under the limit could make a dead letter no producer
    sends (a worker that cannot send a dead letter stops, and so does the next one on the same
    record). Over it, the payload's first `KEPT_OF_LARGE` characters and its size are kept."""
    if len(payload) * 6 <= MAX_RECORD_BYTES:  # no escaping can take it over: skip the count
        return payload
    size = len(json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size <= MAX_RECORD_BYTES:
        return payload
    return f"{payload[:KEPT_OF_LARGE]}…({size:,} bytes in all, escaped)"
