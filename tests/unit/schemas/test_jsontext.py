"""The safe JSON loader: any input is a value or `NotJson`, never another exception."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.jsontext import NotJson, loads, object_or_none


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 5000 + b"]" * 5000,  # json.loads: RecursionError
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        '"\ud800"',  # a lone surrogate in a str
        b'["\\udc00"]',  # and escaped
        b"\xff\xfe",
        b"[NaN]",
        b"Infinity",
        b"1" * 5000,
        b"",
        b"\x00",
    ],
)
def test_hostile_text_is_not_json(raw: str | bytes) -> None:
    with pytest.raises(NotJson) as err:
        loads(raw)
    assert str(err.value)
    assert object_or_none(raw) is None


def test_json_reads_as_json() -> None:
    assert loads(b'{"id": "a", "n": [1, 2.5, null, true]}') == {
        "id": "a",
        "n": [1, 2.5, None, True],
    }
    assert object_or_none("[1]") is None and object_or_none('{"a": 1}') == {"a": 1}


@given(st.binary(max_size=200) | st.text(max_size=200))
def test_anything_is_a_value_or_not_json(raw: str | bytes) -> None:
    with contextlib.suppress(NotJson):
        loads(raw)
