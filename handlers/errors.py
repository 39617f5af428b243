"""Load-time errors for the rules file and the grid registry: every message names the file,
the entry and what is wrong, so a bad file is fixed without reading code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError


class ConfigError(ValueError):
    """A rules file or registry that cannot be used. `problems` holds one line per fault."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n{lines}")


def loc_text(loc: Sequence[int | str]) -> str:
    """('routes', 2, 'match', 'kinds') -> 'routes[2].match.kinds'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def entry_label(raw: Any, loc: Sequence[int | str]) -> str:
    """The nearest named entry above `loc` in the raw document, e.g. "rule 'gas-leak'"."""
    label = ""
    node = raw
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, Mapping) and isinstance(node.get("id"), str):
            label = f"'{node['id']}'"
    return label


# Sections of the rules file whose entries are keyed by id rather than carrying an `id` field.
KEYED_SECTIONS = {"categories": "category", "alarm_types": "alarm type"}


def validation_problems(raw: Any, err: ValidationError, kind: str) -> list[str]:
    """Turn a pydantic error into lines like "rule 'gas-leak' (routes[2].tier): Input should be..."."""
    problems = []
    for e in err.errors():
        loc = e["loc"]
        where = loc_text(loc)
        label, what = entry_label(raw, loc), kind
        if not label and len(loc) > 1 and loc[0] in KEYED_SECTIONS:
            what, label = KEYED_SECTIONS[str(loc[0])], f"'{loc[1]}'"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = f"unknown field '{loc[-1]}'"
        prefix = f"{what} {label} ({where})" if label else where
        problems.append(f"{prefix}: {msg}")
    return problems
