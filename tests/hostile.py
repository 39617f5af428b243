"""Hostile input: the nastiest records we know of, and hypothesis strategies for each field.

`nasty_records()` is the file of cases (tests/data/hostile.jsonl, written by `python -m
tests.hostile`) plus the ones too big to keep in git. Each record is bytes, as a driver reads it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

HOSTILE_FILE = Path(__file__).parent / "data" / "hostile.jsonl"
T = "2026-11-02T09:00:00+08:00"
CASE = "case-99b3767e01b8-2f729fb75b"

APPEAL: dict[str, Any] = {
    "specversion": "1.0",
    "id": "h-appeal",
    "source": "/12345/hotline",
    "type": "minhu.appeal.reported",
    "time": T,
    "data": {
        "caller": {"id": "res-h", "name": "王建华", "phone": "13980012345"},
        "channel": "hotline_12345",
        "text": "地下车库积水很深，车都开不出去，已经两天了。",
        "location": {"address": "清源路10号清源小区一期13栋"},
    },
}
ALARM: dict[str, Any] = {
    "specversion": "1.0",
    "id": "h-alarm",
    "source": "/gateway/gw-qy-g01",
    "type": "minhu.alarm.raised",
    "time": T,
    "data": {
        "sensor_id": "qy-gas-liu",
        "gateway_id": "gw-qy-g01",
        "alarm_type": "gas_leak",
        "reading": 42.5,
        "threshold": 25.0,
        "unit": "%LEL",
    },
}
ACTION: dict[str, Any] = {
    "specversion": "1.0",
    "id": "h-act",
    "source": "/responder-app",
    "type": "minhu.case.resolved",
    "time": T,
    "data": {"case_id": CASE, "actor_id": "p0015", "note": "已处置"},
}
RATING: dict[str, Any] = {
    "specversion": "1.0",
    "id": "h-rate",
    "source": "/rating/12345-callback",
    "type": "minhu.rating.submitted",
    "time": T,
    "data": {
        "case_id": CASE,
        "actor_id": "r-qy-liu",
        "rater_id": "r-qy-liu",
        "verdict": "satisfied",
    },
}
BASES = {"appeal": APPEAL, "alarm": ALARM, "action": ACTION, "rating": RATING}

# Values that must never be believed as times.
BAD_TIMES: list[Any] = [
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999+00:00",
    "2100-01-01T00:00:00+08:00",
    "0001-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "2026-11-02T09:00:00",  # no offset
    "2026-11-02",
    "1700000000",
    "",
    "now",
    0,
    -1,
    1.5,
    1700000000,
    True,
    None,
    [],
    {},
]
# Strings that have hurt someone, somewhere.
NASTY_TEXT = [
    "'; DROP TABLE cases; --",
    '" OR 1=1 --',
    "../../../../etc/passwd",
    "..\\..\\windows\\system32",
    "%00",
    "\x00",
    "before\x00after",
    "\x1b[31mred\x1b[0m",
    "\x7f",
    "\ud800",
    "\udfff lone",
    "\u202eRTL override",
    "\ufeffBOM",
    "𠮷" * 50,
    "Ａ" * 201,
    " ",
    "",
    "{{7*7}}",
    "${jndi:ldap://x}",
    "<script>alert(1)</script>",
]


def _with(base: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(base))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


def _line(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _fields(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in doc.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out.extend(_fields(value, (*prefix, key)))
    return out


def kept_cases() -> list[bytes]:
    """The cases small enough to keep in the file."""
    out: list[bytes] = []
    n = 0

    def add(doc: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        if isinstance(doc.get("id"), str) and doc["id"].startswith("h-"):
            doc["id"] = f"{doc['id']}-{n:04d}"
        out.append(_line(doc))

    for name, base in BASES.items():
        for path in _fields(base):
            for wrong in (None, 0, -1, 1e308, True, "", [], {"a": 1}):
                add(_with(base, path, wrong))
            for text in NASTY_TEXT:
                add(_with(base, path, text))
        for when in BAD_TIMES:
            add(_with(base, ("time",), when))
        del name
    for reading in ("NaN", "Infinity", "-Infinity", "nan", True, False, "42", None, -5.0, 1e309):
        add(_with(ALARM, ("data", "reading"), reading))
        add(_with(ALARM, ("data", "threshold"), reading))
    add(_with(ALARM, ("data", "reading"), 3.0))  # below its threshold
    add(_with(ALARM, ("data", "reading"), 5000.0))  # outside what a gas sensor measures
    add(_with(ALARM, ("data", "alarm_type"), "fall"))
    # Raw bytes: NUL, broken UTF-8, truncated records, other shapes.
    out += [
        b"\x00",
        b'{"specversion": "1.0", "id": "h-nul\x00", "type": "minhu.appeal.reported"}',
        _line(APPEAL)[:-7] + b"\xff\xfe\xc3\x28" + _line(APPEAL)[-7:],
        _line(APPEAL)[:40],
        b"\xef\xbb\xbf" + _line(APPEAL),
        b"null",
        b"[]",
        b"42",
        b'"a string"',
        b"{}",
        b"{" * 50 + b"}" * 50,
        b'{"specversion": "1.0", "specversion": "2.0"}',
        _line({**APPEAL, "id": "h-extra", "extra": {"nested": [1, 2, 3]}}),
        _line({**APPEAL, "data": {**APPEAL["data"], "text": "煤气\u0000泄漏"}, "id": "h-nul-text"}),
        _line(
            {
                **APPEAL,
                "data": {
                    **APPEAL["data"],
                    "caller": {"id": "r", "name": "王\u0000五", "phone": "139\u00008001"},
                },
                "id": "h-nul-name",
            }
        ),
        _line({**APPEAL, "id": "h-dup"}),
        _line({**APPEAL, "id": "h-dup"}),  # the same record twice: a duplicate
    ]
    return out


def big_cases() -> list[bytes]:
    """Cases too big for git: generated each time."""
    deep = b"[" * 100_000 + b"]" * 100_000
    long_text = _with(APPEAL, ("data", "text"), "积水" * 50_000)
    long_text["id"] = "h-long-text"
    padded = _with(APPEAL, ("data", "location", "address"), "清" * 700_000)
    padded["id"] = "h-2mb"
    return [deep, _line(long_text), _line(padded), b"x" * 3_000_000]


def nasty_records() -> list[bytes]:
    return HOSTILE_FILE.read_bytes().split(b"\n")[:-1] + big_cases()


# ---- hypothesis: a strategy for each field ------------------------------------------------------

any_json: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
times = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),  # naive
    st.integers(),
    st.floats(),
    st.text(max_size=40),
    st.sampled_from(BAD_TIMES[:8]),
)
texts = st.text(max_size=300) | st.sampled_from(NASTY_TEXT)


@st.composite
def hostile_record(draw: st.DrawFn) -> bytes:
    """A record of any kind with one field replaced by something hostile."""
    base = BASES[draw(st.sampled_from(sorted(BASES)))]
    path = draw(st.sampled_from(_fields(base)))
    value = draw(st.one_of(any_json, texts, times) if path != ("time",) else times)
    doc = _with(base, path, value)
    doc["id"] = draw(st.text(min_size=1, max_size=20)) if draw(st.booleans()) else doc["id"]
    return _line(doc)


def drawn(strategy: st.SearchStrategy[Any], examples: int) -> list[Any]:
    """A fixed sample of `strategy`: its first `examples` examples, drawn the same way at every
    run (derandomized, no example database), for a test that cannot run once per example (a
    worker on the test broker)."""
    out: list[Any] = []

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def draw(value: Any) -> None:
        out.append(value)

    draw()
    return out


if __name__ == "__main__":
    HOSTILE_FILE.parent.mkdir(exist_ok=True)
    HOSTILE_FILE.write_bytes(b"".join(line.replace(b"\n", b"") + b"\n" for line in kept_cases()))
    print(f"{HOSTILE_FILE}: {len(kept_cases())} records", file=sys.stderr)
