"""Every kind of dead letter the code can write is listed in docs/events.md, by its literal
name: a responder or an operator who meets one can look it up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from schemas.routing import ErrorKind

DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"


def test_docs_events_lists_every_error_kind() -> None:
    kinds = get_args(ErrorKind)
    assert "unknown_case" in kinds and len(kinds) >= 10  # the Literal, read as it is
    named = set(re.findall(r"`([a-z_]+)`", DOC.read_text(encoding="utf-8")))
    missing = [k for k in kinds if k not in named]
    assert not missing, f"docs/events.md does not list the error kinds {missing}"
