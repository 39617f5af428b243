"""The readable summary `minhu demo` and `minhu route --summary` print."""

from __future__ import annotations

from collections import Counter, defaultdict

from rich.console import Console
from rich.table import Table

from handlers.registry import Registry
from handlers.routing import Assessment
from schemas import TIER_ORDER, CaseRouted
from streams.embedded import Tally

TIER_ZH = {"micro_grid": "微网格", "grid": "网格", "community": "社区", "street": "街道"}


class CaseStats:
    """Counts per tier and community, gathered as cases are routed (EmbeddedRunner.on_case)."""

    def __init__(self) -> None:
        self.tier_by_community: dict[str, Counter[str]] = defaultdict(Counter)
        self.categories_by_community: dict[str, Counter[str]] = defaultdict(Counter)
        self.rules: Counter[str] = Counter()
        self.tags: Counter[str] = Counter()
        self.closed = 0

    def __call__(self, routed: CaseRouted, _a: Assessment) -> None:
        d = routed.data
        community = d.community_id or "(street triage)"
        self.tier_by_community[community][d.tier.value] += 1
        self.categories_by_community[community][d.category_name] += 1
        self.rules[d.rule_id] += 1
        self.tags.update(
            t
            for t in d.tags
            if t in ("repeated", "triage", "at-ceiling", "emergency", "coarse-location")
        )
        if d.status == "closed":
            self.closed += 1


def print_summary(
    console: Console, tally: Tally, stats: CaseStats, registry: Registry, seconds: float
) -> None:
    rate = tally.received / seconds if seconds > 0 else 0.0
    ok = "✓ nothing lost" if tally.balanced else "✗ COUNTS DO NOT BALANCE"
    console.print(
        f"\n[bold]{tally.received:,}[/] events in = [green]{tally.cases:,}[/] new cases + "
        f"[cyan]{tally.attached:,}[/] attached to open cases + [red]{tally.rejected:,}[/] dead "
        f"letters + [yellow]{tally.duplicates:,}[/] duplicates   {ok}"
        f"   ({seconds:.1f} s, {rate:,.0f} events/s)"
    )

    t = Table(title="Cases per community and tier", title_justify="left")
    t.add_column("community")
    for tier in TIER_ORDER:
        t.add_column(f"{TIER_ZH[tier.value]}\n{tier.value}", justify="right")
    t.add_column("total", justify="right")
    t.add_column("top categories")
    totals: Counter[str] = Counter()
    for cid in sorted(stats.tier_by_community):
        row = stats.tier_by_community[cid]
        totals.update(row)
        name = registry.units[cid].name if cid in registry.units else cid
        top = "、".join(f"{c} {n}" for c, n in stats.categories_by_community[cid].most_common(3))
        t.add_row(name, *(f"{row[x.value]:,}" for x in TIER_ORDER), f"{sum(row.values()):,}", top)
    t.add_row(
        "[bold]all",
        *(f"[bold]{totals[x.value]:,}" for x in TIER_ORDER),
        f"[bold]{sum(totals.values()):,}",
        "",
    )
    console.print(t)

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
