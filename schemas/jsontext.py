"""JSON text read safely: the one loader for every place that reads a record's JSON apart from
the wire contract (a door's batch or binary-mode body, a refused record's id, the topics the
service and the operations centres read back).

It is the contract's own parser (pydantic's, jiter: `input_adapter.validate_json` reads every
record with it), so that whatever the contract reads as JSON, this reads the same, and no input
makes it raise anything but `NotJson` (a `ValueError`) with the parser's reason: nesting deeper
than 200 levels, broken UTF-8, lone surrogates, `NaN` and `Infinity`, integers of thousands of
digits are all refused (a number beyond a float, `1e400`, reads as infinity, as in the contract,
which refuses it where a finite number is due). Python's `json.loads` raises `RecursionError` on a few thousand nested
brackets, which no `except ValueError` catches: one record could stop whatever read it.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json


class NotJson(ValueError):
    """The text is not JSON; the message says why, as the parser does."""


def loads(raw: str | bytes) -> Any:
    """The JSON value of `raw`, or `NotJson`; never any other exception."""
    try:
        if isinstance(raw, str):
            raw = raw.encode("utf-8")  # a lone surrogate cannot be: UnicodeEncodeError
        return from_json(raw, allow_inf_nan=False)
    except UnicodeEncodeError as err:
        raise NotJson(f"not UTF-8 text: {err.reason}") from None
    except (ValueError, TypeError, RecursionError) as err:
        raise NotJson(str(err)) from None


def object_or_none(raw: str | bytes) -> dict[str, Any] | None:
    """The JSON object of `raw`, or None when it is not JSON or not an object."""
    try:
        doc = loads(raw)
    except NotJson:
        return None
    return doc if isinstance(doc, dict) else None
