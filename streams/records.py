"""Reading files of records, as `minhu route` writes them: one `{"topic", "key", "value"}` a
line. An event published on several topics (an escalation reaches two tiers) is on several
lines, and a rerun or a restarted worker may write one again: each event is read once, by id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from schemas import EVENT_MODELS, CloudEvent


def values(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Each CloudEvent once (as a dict), in the order first seen; blank lines skipped."""
    seen: set[str] = set()
    for line in lines:
        if not line.strip():
            continue
        value = json.loads(line)["value"]
        if value["id"] in seen:
            continue
        seen.add(value["id"])
        yield value


def case_events(
    path: Path, since: datetime | None = None, until: datetime | None = None
) -> list[CloudEvent]:
    """The case events of a records file (dead letters left out), as wire models."""
    out: list[CloudEvent] = []
    with path.open(encoding="utf-8") as f:
        for value in values(f):
            if value["type"] == "minhu.event.rejected":
                continue
            ev = EVENT_MODELS[value["type"]].model_validate(value)
            if (since is None or ev.time >= since) and (until is None or ev.time <= until):
                out.append(ev)
    return out
