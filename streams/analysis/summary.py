"""The readable summary `minhu demo` and `minhu route --summary` print."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from handlers.rates import GroupBy, three_rates
from handlers.registry import Registry
from schemas import TIER_ORDER, CaseRouted, CloudEvent
from streams import records
from streams.drivers.embedded import Tally

TIER_ZH = {"micro_grid": "微网格", "grid": "网格", "community": "社区", "street": "街道"}


class CaseStats:
    """Counts per tier and community, gathered as cases are routed (EmbeddedRunner.on_event)."""

    def __init__(self) -> None:
        self.tier_by_community: dict[str, Counter[str]] = defaultdict(Counter)
        self.categories_by_community: dict[str, Counter[str]] = defaultdict(Counter)
        self.rules: Counter[str] = Counter()
        self.tags: Counter[str] = Counter()
        self.closed = 0

    def __call__(self, event: CloudEvent) -> None:
        if not isinstance(event, CaseRouted):
            return
        d = event.data
        community = d.community_id or "(street triage)"
        self.tier_by_community[community][d.tier.value] += 1
        self.categories_by_community[community][d.category_name] += 1
        self.rules[d.rule_id] += 1
        self.tags.update(
            t
            for t in d.tags
            if t in ("repeated", "triage", "at-ceiling", "emergency", "coarse-location", "late")
        )
        if d.status == "closed":
            self.closed += 1


def print_summary(
    console: Console, tally: Tally, stats: CaseStats, registry: Registry, seconds: float
) -> None:
    rate = tally.received / seconds if seconds > 0 else 0.0
    ok = "✓ nothing lost" if tally.balanced else "✗ COUNTS DO NOT BALANCE"
    console.print(
        f"\n[bold]{tally.received:,}[/] records in = [green]{tally.cases:,}[/] new cases + "
        f"[cyan]{tally.attached:,}[/] attached to open cases + [blue]{tally.applied:,}[/] "
        f"actions and ratings applied + [red]{tally.rejected:,}[/] dead letters + "
        f"[yellow]{tally.duplicates:,}[/] duplicates   {ok}   ({seconds:.1f} s, "
        f"{rate:,.0f} records/s)"
    )
    if tally.escalations or tally.closures:
        console.print(
            f"Lifecycle: {tally.escalations:,} escalations, {tally.closures:,} "
            "closures (verified on site)"
        )

    t = Table(title="Cases per community and tier", title_justify="left")
    t.add_column("community")
    for tier in TIER_ORDER:
        t.add_column(f"{TIER_ZH[tier.value]}\n{tier.value}", justify="right")
    t.add_column("total", justify="right")
    top = Table(title="Top categories per community", title_justify="left")
    top.add_column("community")
    top.add_column("categories (cases)")
    totals: Counter[str] = Counter()
    for cid in sorted(stats.tier_by_community):
        row = stats.tier_by_community[cid]
        totals.update(row)
        name = registry.units[cid].name if cid in registry.units else cid
        cats = stats.categories_by_community[cid].most_common(3)
        top.add_row(name, "、".join(f"{c} {n:,}" for c, n in cats))
        t.add_row(name, *(f"{row[x.value]:,}" for x in TIER_ORDER), f"{sum(row.values()):,}")
    t.add_row(
        "[bold]all",
        *(f"[bold]{totals[x.value]:,}" for x in TIER_ORDER),
        f"[bold]{sum(totals.values()):,}",
    )
    console.print(t)
    console.print(top)

    r = Table(title="Most used rules", title_justify="left")
    r.add_column("rule")
    r.add_column("cases", justify="right")
    for rule, n in stats.rules.most_common(8):
        r.add_row(rule, f"{n:,}")
    console.print(r)
    flags = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.tags.items()))
    console.print(f"Flags: {flags}; closed on the spot: {stats.closed:,}")

    if tally.by_rejection:
        d = Table(title="Dead letters", title_justify="left")
        d.add_column("reason")
        d.add_column("records", justify="right")
        for kind, n in tally.by_rejection.most_common():
            d.add_row(kind, f"{n:,}")
        console.print(d)


def print_rates(console: Console, events: list[CloudEvent], as_of: datetime, by: GroupBy) -> None:
    """The three rates as a table (formulas: handlers/rates.py and docs/lifecycle.md)."""
    rows = three_rates(events, as_of, by)
    t = Table(title=f"Three rates per {by} (as of {as_of.isoformat()})", title_justify="left")
    t.add_column(by)
    for name in ("响应率 response", "解决率 resolution", "满意率 satisfaction"):
        t.add_column(name, justify="right")
    for r in rows:
        t.add_row(r.group, *r.cells())
    console.print(t)


def print_lives(console: Console, lines: Iterable[str], only: set[str] | None) -> None:
    """Each case's whole life, from the records `minhu route` wrote, one block per case under
    its case id (what a responder's action or rating names), then the dead letters, each
    refused action or rating with the case id it named. With `only`, those cases and the
    refusals about them."""
    lives: dict[str, list[dict[str, Any]]] = defaultdict(list)
    dead: list[tuple[dict[str, Any], str | None]] = []
    for value in records.values(lines):
        if value["type"] == "minhu.event.rejected":
            about = refused_case(value["data"])
            if only is None or about in only:
                dead.append((value, about))
        elif only is None or value["subject"] in only:
            lives[value["subject"]].append(value)
    for case_id, story in lives.items():
        console.print(f"[bold]{case_id}[/]")
        for ev in story:
            console.print(f"  {ev['time']}  {describe(ev)}")
    if dead:
        console.print(f"[bold]dead letters ({len(dead)})[/]")
        for ev, about in dead:
            d = ev["data"]
            on = f" on {about}" if about else ""
            console.print(
                f"  {ev['time']}  {d.get('event_type') or '?'} {d.get('event_id') or ''}{on}"
                f" — {d['reason']}"
            )


def refused_case(data: dict[str, Any]) -> str | None:
    """The case id a refused record named (an action's or rating's `data.case_id`), if its
    payload is JSON that has one."""
    try:
        doc = json.loads(data.get("payload") or "")
    except (ValueError, RecursionError):
        return None
    inner = doc.get("data") if isinstance(doc, dict) else None
    case_id = inner.get("case_id") if isinstance(inner, dict) else None
    return case_id if isinstance(case_id, str) else None


def describe(ev: dict[str, Any]) -> str:
    """One readable line for a case event (a CloudEvent as a dict)."""
    d = ev["data"]
    kind = str(ev["type"]).removeprefix("minhu.")
    if kind == "case.routed":
        told = "、".join(n["unit_name"] for n in d.get("notified", []))
        return (
            f"routed to {d['unit_name']} ({d['tier']}) by {d['rule_id']}: "
            f"{d['category_name']}, {d['severity']}"
            + (f"; notified {told}" if told else "")
            + f" — {d['summary']}"
        )
    if kind == "case.attached":
        return f"alarm attached (occurrence {d['occurrence']})"
    if kind == "case.updated":
        late = "" if d["within_sla"] else " (late)"
        return f"{d['status']} by {d['actor_id']} of {d['unit_id']}{late}"
    if kind == "case.escalated":
        return f"escalated ({d['reason']}): {d['explanation']}"
    if kind == "case.reassigned":
        return f"{d['kind']} by {d['actor_id']}: {d['explanation']}" + (
            f" — {d['note']}" if d.get("note") else ""
        )
    if kind == "case.extension_asked":
        return (
            f"extension of {d['extra']} asked by {d['actor_id']} of {d['unit_id']} "
            f"(to {d['requested_resolve_by']}), for {d['decider_unit_id']} to decide"
        )
    if kind == "case.extension_answered":
        verdict = "approved" if d["approved"] else "refused"
        return f"extension {verdict} by {d['actor_id']}: resolve by {d['resolve_by']}"
    if kind == "case.closed":
        return f"closed at {d['unit_id']}, verified by {d.get('verified_by')}"
    if kind == "case.reopened":
        return f"reopened (opening {d['opening']}): {d['explanation']}"
    if kind == "rating.requested":
        return f"rating requested from {d['rater_id']} ({d['rater_kind']}) for {d['ratee_unit_id']}"
    if kind == "rating.recorded":
        return f"rated {d['verdict']} by {d['rater_id']} for {d['ratee_unit_id']}"
    return kind
