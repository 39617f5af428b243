"""No personal data in clear on the bus: a property over whole case lives.

Appeals whose texts carry phone numbers (mobile and landline, with spaces, dashes or +86),
PRC resident ID numbers and the caller's own name, and responders' notes and a rating comment
carrying the same, run through the embedded runner; so do appeals whose address (one the
registry cannot resolve: it ends up in the dedup key and the explanation) and room carry them.
No record on a dispatch topic, on `minhu.closures` or on `minhu.ratings` may hold one in clear,
in its key or its value. Dead letters (and the ledger) keep the records as they came.
"""

from __future__ import annotations

import json
import re
from typing import Any

import opencc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.registry import Registry
from handlers.rules import Rules
from streams.drivers.embedded import EmbeddedRunner
from streams.topics import Record
from tests.unit.handlers.test_privacy import _NAMES, _landline, _mobile, _resident_id

_SEPARATORS = re.compile(r"[\s\-()（）+.－—/_]")
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
# Words between the numbers: none of them a digit, so the numbers stay apart.
_WORDS = st.sampled_from(
    [
        "楼下垃圾没人清运，臭味很大，",
        "我家住在5栋，",
        "请联系我，电话",
        "，我的身份证号是",
        "，手机",
        "。谢谢！",
        "，我叫",
        "，居民",
        "家里座机",
        " tel ",
        "，",
    ]
)
_S2T = opencc.OpenCC("s2t")
_NUMBER = st.one_of(_mobile(), _landline(), _resident_id())


def _text(draw: st.DrawFn, name: str) -> tuple[str, list[str]]:
    """A free text with 1-3 numbers and perhaps `name`, and the secrets in it."""
    parts: list[str] = [draw(_WORDS)]
    secrets: list[str] = []
    # The name as registered, or in traditional characters (陈丽 -> 陳麗).
    forms = [name, _S2T.convert(name)] if name else [""]
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            parts += [draw(st.sampled_from(forms)), draw(_WORDS)]
        written, found = draw(_NUMBER)
        parts += [written, draw(_WORDS)]
        secrets += found
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(forms)))
    return "".join(parts)[:4000], secrets


def _env(n: int, type_: str, minute: int, data: dict[str, Any]) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"pii-{n}",
            "source": "/test/pii",
            "type": type_,
            "time": f"2026-11-01T09:{minute:02d}:00+08:00",
            "data": data,
        },
        ensure_ascii=False,
    )


@st.composite
def _lives(
    draw: st.DrawFn, names_in_notes: bool = False, escalation_note: bool = False
) -> tuple[list[str], list[str], str]:
    """An appeal at micro-grid qy-m001 and the actions of its whole life (escalated to the
    grid, acknowledged, resolved, verified, rated), texts full of personal data: the appeal
    has numbers and the caller's name; the notes and the comment have numbers, and the name
    only with `names_in_notes`; the request to escalate has personal data in its note only
    with `escalation_note`."""
    name = draw(_NAMES)
    text, secrets = _text(draw, name)
    case_text = draw(st.sampled_from(["楼下垃圾没人清运，臭味很大", "楼道里垃圾堆放"]))
    appeal = {
        "caller": {"id": "res-pii", "name": name, "phone": "13812345678"},
        "channel": "hotline_12345",
        "text": case_text + text,
        "location": {"micro_grid_id": "qy-m001"},
    }
    lines = [_env(0, "minhu.appeal.reported", 0, appeal)]
    acts = [
        ("minhu.case.acknowledged", "p0007"),
        ("minhu.case.escalation_requested", "p0007"),
        ("minhu.case.acknowledged", "p0015"),
        ("minhu.case.resolved", "p0015"),
        ("minhu.case.verified", "p0015"),
    ]
    in_notes = name if names_in_notes else ""
    for i, (type_, actor) in enumerate(acts, start=1):
        act = {"case_id": "CASE", "actor_id": actor}
        if escalation_note or type_ != "minhu.case.escalation_requested":
            act["note"], more = _text(draw, in_notes)
            secrets += more
        else:
            act["note"] = "微网格无法处置，提请网格协调"
        lines.append(_env(i, type_, i, act))
    comment, more = _text(draw, in_notes)
    secrets += more
    rating = {
        "case_id": "CASE",
        "actor_id": "res-pii",
        "rater_id": "res-pii",
        "verdict": "dissatisfied",
        "comment": comment,
    }
    lines.append(_env(len(acts) + 1, "minhu.rating.submitted", len(acts) + 1, rating))
    return lines, secrets, name


_WATCHED = ("minhu.closures", "minhu.ratings")


def _doc(record: Record) -> Any:
    return json.loads(record.to_json_line())


def _clear(value: Any) -> str:
    """A record's value as JSON, with separators dropped and digits in ASCII."""
    text = json.dumps(value, ensure_ascii=False)
    return _SEPARATORS.sub("", text.translate(_FULL_WIDTH_DIGITS))


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_lives())
def test_no_dispatch_closure_or_rating_record_carries_personal_data(
    rules: Rules, registry: Registry, life: tuple[list[str], list[str], str]
) -> None:
    _check_life(rules, registry, *life)


# Two leaks found by this property, both in handlers/lifecycle.py (reported, not fixed here):
# a responder's note and a rating comment are masked without the caller's name (the case
# state does not keep it), and the note of a request to escalate goes into the escalation's
# `explanation` unmasked.
@_SETTINGS
@given(_lives(names_in_notes=True))
def test_the_callers_name_in_a_responders_note(
    rules: Rules, registry: Registry, life: tuple[list[str], list[str], str]
) -> None:
    _check_life(rules, registry, *life)


@_SETTINGS
@given(_lives(escalation_note=True))
def test_numbers_in_a_request_to_escalate(
    rules: Rules, registry: Registry, life: tuple[list[str], list[str], str]
) -> None:
    _check_life(rules, registry, *life)


@st.composite
def _unresolvable(draw: st.DrawFn) -> tuple[list[str], list[str], str]:
    """Two appeals from the same address, one the registry cannot resolve, full of numbers and
    perhaps the caller's name, and perhaps a room written the same way."""
    name = draw(_NAMES)
    address, secrets = _text(draw, name)
    location = {"address": address[:200]}
    if draw(st.booleans()):
        room, more = _text(draw, name)
        location["household"] = room[:200]
        secrets += more
    lines = []
    for n in range(2):
        appeal = {
            "caller": {"id": "res-pii", "name": name, "phone": "13812345678"},
            "channel": "hotline_12345",
            "text": "楼道里垃圾堆放",
            "location": location,
        }
        lines.append(_env(n, "minhu.appeal.reported", n, appeal))
    return lines, secrets, name


@_SETTINGS
@given(_unresolvable())
def test_numbers_in_an_unresolvable_address(
    rules: Rules, registry: Registry, appeals: tuple[list[str], list[str], str]
) -> None:
    lines, secrets, name = appeals
    out: list[Record] = []
    runner = EmbeddedRunner(rules, registry, out.append)
    for n, line in enumerate(lines):
        runner.feed(line, "pii", n)
    routed = [d["value"] for d in map(_doc, out) if d["value"]["type"] == "minhu.case.routed"]
    assert len(routed) == 2, [_doc(r) for r in out]
    assert "triage" in routed[0]["data"]["tags"]  # unresolved: the address is quoted
    assert routed[0]["data"]["dedup_key"] == routed[1]["data"]["dedup_key"]  # still grouped
    _check_records(out, secrets, name)


def _check_life(
    rules: Rules, registry: Registry, lines: list[str], secrets: list[str], name: str
) -> None:
    out: list[Record] = []
    runner = EmbeddedRunner(rules, registry, out.append)
    case_id = None
    for n, line in enumerate(lines):
        if case_id is not None:
            line = line.replace('"CASE"', json.dumps(case_id))
        runner.feed(line, "pii", n)
        if case_id is None:
            routed = [d for d in map(_doc, out) if d["value"]["type"] == "minhu.case.routed"]
            assert routed, [_doc(r) for r in out]
            case_id = routed[0]["value"]["data"]["case_id"]
    topics = {r.topic for r in out}
    assert "minhu.closures" in topics and "minhu.ratings" in topics, topics
    _check_records(out, secrets, name)


def _check_records(out: list[Record], secrets: list[str], name: str) -> None:
    for doc in map(_doc, out):
        topic, value = doc["topic"], doc["value"]
        if not topic.startswith("minhu.dispatch.") and topic not in _WATCHED:
            continue
        keyed = {"key": doc["key"], "value": value}
        clear = _clear(keyed)
        for secret in secrets:
            assert secret not in clear, (topic, value["type"], secret, keyed)
        text = json.dumps(keyed, ensure_ascii=False)
        for form in (name, _S2T.convert(name)):
            assert form not in text, (topic, form, keyed)
