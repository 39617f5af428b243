"""What-if analysis: each case's outcome from a replay, and what a candidate rules file would
have changed against a baseline. Pure: it reads events, it does not run anything."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from handlers.rates import RateRow
from schemas import CaseRouted, CloudEvent
from schemas.lifecycle import CaseClosed, CaseEscalated, CaseReassigned, CaseReopened


@dataclass(slots=True)
class CaseOutcome:
    case_id: str
    category: str
    community_id: str | None
    tier: str  # where routing sent it
    unit_id: str
    rule_id: str
    final_tier: str  # where it ended up
    final_unit_id: str
    escalations: int
    district_handoff: bool
    closures: int
    reopenings: int
    forwards: int = 0  # 转派: a desk sent it to a named unit
    returns: int = 0  # 退单: a unit gave it back as outside its remit (the routing's fault)


FIELDS = (
    "tier",
    "unit_id",
    "rule_id",
    "final_tier",
    "final_unit_id",
    "escalations",
    "district_handoff",
    "closures",
    "reopenings",
    "forwards",
    "returns",
)


class OutcomeFold:
    """Each case's outcome, folded from a replay's output events one at a time (in order):
    `outcomes` maps case id -> outcome."""

    def __init__(self) -> None:
        self.outcomes: dict[str, CaseOutcome] = {}

    def add(self, ev: CloudEvent) -> None:
        out = self.outcomes
        if isinstance(ev, CaseRouted):
            d = ev.data
            out[d.case_id] = CaseOutcome(
                d.case_id,
                d.category,
                d.community_id,
                d.tier.value,
                d.unit_id,
                d.rule_id,
                d.tier.value,
                d.unit_id,
                0,
                False,
                1 if d.status == "closed" else 0,
                0,
            )
            return
        c = out.get(ev.subject or "")
        if c is None:
            return
        if isinstance(ev, CaseEscalated) and ev.data.reason != "repeated_appeals":
            c.escalations += 1
            c.final_tier, c.final_unit_id = ev.data.to_tier.value, ev.data.to_unit_id
            c.district_handoff = c.district_handoff or ev.data.district_handoff
        elif isinstance(ev, CaseReopened):
            c.reopenings += 1
            c.final_tier, c.final_unit_id = ev.data.tier.value, ev.data.unit_id
        elif isinstance(ev, CaseClosed):
            c.closures += 1
        elif isinstance(ev, CaseReassigned):
            if ev.data.kind == "returned":
                c.returns += 1
            else:
                c.forwards += 1
            c.final_tier, c.final_unit_id = ev.data.to_tier.value, ev.data.to_unit_id


def outcomes(events: Iterable[CloudEvent]) -> dict[str, CaseOutcome]:
    """Case id -> outcome, from a replay's output events in order."""
    fold = OutcomeFold()
    for ev in events:
        fold.add(ev)
    return fold.outcomes


def case_diffs(
    baseline: dict[str, CaseOutcome], candidate: dict[str, CaseOutcome]
) -> list[dict[str, Any]]:
    """One row per case whose outcome differs (or that only one side has), in case id order."""
    rows = []
    for cid in sorted(set(baseline) | set(candidate)):
        b, c = baseline.get(cid), candidate.get(cid)
        changed = [f for f in FIELDS if b is None or c is None or getattr(b, f) != getattr(c, f)]
        if not changed:
            continue
        ref = c or b
        assert ref is not None
        row: dict[str, Any] = {
            "case_id": cid,
            "category": ref.category,
            "community_id": ref.community_id,
            "changed": ",".join(changed),
        }
        for f in FIELDS:
            row[f"baseline_{f}"] = getattr(b, f) if b else None
            row[f"candidate_{f}"] = getattr(c, f) if c else None
        rows.append(row)
    return rows


def rate_deltas(baseline: list[RateRow], candidate: list[RateRow]) -> list[dict[str, Any]]:
    """Per group (unit, tier…): each rate in both runs and the change, in percentage points."""
    b = {r.group: r for r in baseline}
    c = {r.group: r for r in candidate}
    rows = []
    for g in sorted(set(b) | set(c)):
        row: dict[str, Any] = {"group": g}
        for name in ("response_rate", "resolution_rate", "satisfaction_rate"):
            vb = getattr(b[g], name) if g in b else None
            vc = getattr(c[g], name) if g in c else None
            row[f"baseline_{name}"] = None if vb is None else round(vb, 4)
            row[f"candidate_{name}"] = None if vc is None else round(vc, 4)
            row[f"delta_{name}_pp"] = (
                None if vb is None or vc is None else round((vc - vb) * 100, 2)
            )
        rows.append(row)
    return rows


RULE_COUNTS = ("cases", "returns", "cases_returned", "forwards", "cases_forwarded")


def _per_rule(out: dict[str, CaseOutcome]) -> dict[str, dict[str, int]]:
    acc: dict[str, dict[str, int]] = {}
    for o in out.values():
        row = acc.setdefault(o.rule_id, dict.fromkeys(RULE_COUNTS, 0))
        row["cases"] += 1
        row["returns"] += o.returns
        row["cases_returned"] += o.returns > 0
        row["forwards"] += o.forwards
        row["cases_forwarded"] += o.forwards > 0
    return acc


def rule_rows(
    baseline: dict[str, CaseOutcome] | None, candidate: dict[str, CaseOutcome]
) -> list[dict[str, Any]]:
    """Per rule: its cases, and how often they were returned (退单) or forwarded (转派), in both
    runs — a rule whose cases are often returned is a rule to fix. In rule id order; without a
    baseline its columns are None."""
    base = _per_rule(baseline) if baseline is not None else None
    cand = _per_rule(candidate)
    runs = {"baseline": base, "candidate": cand}
    rules = sorted(set(cand) | set(base or {}))
    rows = []
    for rule in rules:
        row: dict[str, Any] = {"rule_id": rule}
        for side, acc in runs.items():
            counts = None if acc is None else acc.get(rule, dict.fromkeys(RULE_COUNTS, 0))
            for name in RULE_COUNTS:
                row[f"{side}_{name}"] = None if counts is None else counts[name]
            row[f"{side}_return_rate"] = (
                round(counts["cases_returned"] / counts["cases"], 4)
                if counts and counts["cases"]
                else None
            )
        rows.append(row)
    return rows


def outcome_rows(out: dict[str, CaseOutcome]) -> list[dict[str, Any]]:
    return [asdict(o) for _, o in sorted(out.items())]
