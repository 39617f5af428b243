"""`minhu report --out DIR`: an HTML report with charts (each also a PNG) for a director.

Charts: the three rates per tier over time and per unit; hotspots by community and category
(数据一网分析: where, what, which unit, what is rising); SLA breaches; the escalation funnel
from micro-grid to street; the rating distribution. Chinese text is drawn with Noto Sans CJK
SC, shipped by the `mplfonts` package, so it renders the same on any machine.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import font_manager

from handlers.rates import RateRow, assignments_and_ratings, three_rates
from handlers.registry import Registry
from schemas import TIER_ORDER, CaseRouted, CloudEvent
from schemas.lifecycle import CaseEscalated, RatingRecorded

TIER_ZH = {"micro_grid": "微网格", "grid": "网格", "community": "社区", "street": "街道"}
RATES = (
    ("response_rate", "响应率 response"),
    ("resolution_rate", "解决率 resolution"),
    ("satisfaction_rate", "满意率 satisfaction"),
)
VERDICT_ZH = {"satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}
VERDICT_COLOUR = {
    "satisfied": "#43a047",
    "basically_satisfied": "#fdd835",
    "dissatisfied": "#e53935",
}
REASON_ZH = {
    "ack_timeout": "超时未响应 ack timeout",
    "resolve_timeout": "超时未办结 resolve timeout",
    "requested": "申请上报 requested",
    "dissatisfied": "不满意重办 dissatisfied",
    "repeated_appeals": "重复诉求 repeated",
    "supervised": "督办 supervised",
}


def use_cjk_font() -> str:
    """Register Noto Sans CJK SC (from mplfonts) with matplotlib and make it the default."""
    spec = find_spec("mplfonts")
    if spec is None or spec.origin is None:
        raise RuntimeError("charts need the analysis extra: pip install 'minhu[analysis]'")
    path = Path(spec.origin).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
    font_manager.fontManager.addfont(str(path))
    name = font_manager.FontProperties(fname=str(path)).get_name()
    plt.rcParams["font.family"] = name
    plt.rcParams["axes.unicode_minus"] = False
    return name


def week_of(t: datetime) -> date:
    d = t.date()
    return d - timedelta(days=d.weekday())


def _save(fig: Any, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def rates_over_time(events: list[CloudEvent], as_of: datetime, out: Path) -> str:
    """The three rates per tier, week by week."""
    by_week: dict[date, list[CloudEvent]] = defaultdict(list)
    for e in events:
        by_week[week_of(e.time)].append(e)
    weeks = sorted(by_week)
    rows_of: dict[date, dict[str, RateRow]] = {}
    for w in weeks:
        end = datetime.combine(w, datetime.min.time(), tzinfo=as_of.tzinfo) + timedelta(days=7)
        rows_of[w] = {r.group: r for r in three_rates(by_week[w], min(as_of, end), "tier")}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True)
    for ax, (attr, label) in zip(axes, RATES, strict=True):
        for tier in TIER_ORDER:
            xs: list[str] = []
            ys: list[float] = []
            for w in weeks:
                row = rows_of[w].get(tier.value)
                value = getattr(row, attr) if row is not None else None
                if value is not None:
                    xs.append(w.strftime("%m-%d"))
                    ys.append(value * 100)
            if xs:
                ax.plot(xs, ys, marker="o", label=f"{TIER_ZH[tier.value]} {tier.value}")
        ax.set_title(label)
        ax.set_xlabel("周 week starting (month-day)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("% of due assignments / ratings")
    axes[0].set_ylim(0, 105)
    axes[-1].legend(loc="lower right", fontsize=8)
    fig.suptitle("三率趋势（按层级）  The three rates per tier, by week")
    return _save(fig, out, "rates_by_tier_over_time.png")


def rates_by_unit(rows: list[RateRow], names: dict[str, str], out: Path, top: int = 20) -> str:
    busiest = sorted(rows, key=lambda r: -r.due_response)[:top][::-1]
    fig, ax = plt.subplots(figsize=(11, 0.38 * len(busiest) + 1.5))
    height = 0.27
    for i, (attr, label) in enumerate(RATES):
        ax.barh(
            [n + (i - 1) * height for n in range(len(busiest))],
            [(getattr(r, attr) or 0) * 100 for r in busiest],
            height=height,
            label=label,
        )
    ax.set_yticks(range(len(busiest)), [names.get(r.group, r.group) for r in busiest])
    ax.set_xlabel("%")
    ax.set_xlim(0, 105)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(
        f"三率（任务量前{len(busiest)}的单位） The three rates of the {len(busiest)} busiest units"
    )
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, out, "rates_by_unit.png")


def hotspots(routed: list[CaseRouted], names: dict[str, str], out: Path) -> str:
    counts: Counter[tuple[str, str]] = Counter(
        (d.community_id or "triage", d.category_name) for d in (r.data for r in routed)
    )
    communities = sorted(
        {c for c, _ in counts}, key=lambda c: -sum(n for (cc, _), n in counts.items() if cc == c)
    )
    categories = sorted(
        {k for _, k in counts}, key=lambda k: -sum(n for (_, kk), n in counts.items() if kk == k)
    )
    grid = [[counts[(c, k)] for k in categories] for c in communities]
    fig, ax = plt.subplots(figsize=(max(8, 0.6 * len(categories) + 3), 0.55 * len(communities) + 2))
    im = ax.imshow(grid, cmap="OrRd", aspect="auto")
    ax.set_xticks(range(len(categories)), categories, rotation=45, ha="right")
    ax.set_yticks(
        range(len(communities)), [names.get(c, "街道分拨 street triage") for c in communities]
    )
    top = max((v for row in grid for v in row), default=1)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v:
                ax.text(
                    j,
                    i,
                    str(v),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v > 0.6 * top else "black",
                )
    ax.set_xlabel("类别 category")
    ax.set_ylabel("社区 community")
    ax.set_title("热点：哪里、什么问题（案件数）  Hotspots: cases by community and category")
    fig.colorbar(im, ax=ax, label="cases")
    return _save(fig, out, "hotspots.png")


def rising(routed: list[CaseRouted], out: Path, top: int = 6) -> str:
    by_week: dict[str, Counter[date]] = defaultdict(Counter)
    for r in routed:
        by_week[r.data.category_name][week_of(r.time)] += 1
    weeks = sorted({w for c in by_week.values() for w in c})
    leaders = sorted(by_week, key=lambda k: -sum(by_week[k].values()))[:top]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    for k in leaders:
        ax.plot([str(w) for w in weeks], [by_week[k][w] for w in weeks], marker="o", label=k)
    ax.set_xlabel("周 week (from Monday)")
    ax.set_ylabel("新案件 new cases")
    ax.set_title("哪些问题在上升  What is rising: new cases per week, top categories")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, out, "rising.png")


def sla_breaches(escalations: list[CaseEscalated], out: Path) -> str:
    by_reason: dict[str, Counter[date]] = defaultdict(Counter)
    for e in escalations:
        by_reason[e.data.reason][week_of(e.time)] += 1
    weeks = sorted({w for c in by_reason.values() for w in c})
    fig, ax = plt.subplots(figsize=(10, 4.2))
    bottom = [0] * len(weeks)
    for reason in REASON_ZH:
        if reason in by_reason:
            values = [by_reason[reason][w] for w in weeks]
            ax.bar([str(w) for w in weeks], values, bottom=bottom, label=REASON_ZH[reason])
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xlabel("周 week (from Monday)")
    ax.set_ylabel("升级次数 escalations")
    ax.set_title("超时与升级  SLA breaches and other escalations, by reason")
    ax.legend(fontsize=8)
    return _save(fig, out, "sla_breaches.png")


def funnel(routed: list[CaseRouted], escalations: list[CaseEscalated], out: Path) -> str:
    reached: dict[str, set[str]] = {t.value: set() for t in TIER_ORDER}
    for r in routed:
        reached[r.data.tier.value].add(r.data.case_id)
    for e in escalations:
        reached[e.data.to_tier.value].add(e.data.case_id)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    tiers = [t.value for t in TIER_ORDER]
    values = [len(reached[t]) for t in tiers]
    ax.barh([f"{TIER_ZH[t]} {t}" for t in tiers][::-1], values[::-1], color="#c0504d")
    for i, v in enumerate(values[::-1]):
        ax.text(v, i, f" {v:,}", va="center")
    ax.set_xlabel("到达该层级的案件 cases that reached the tier (routed or escalated)")
    ax.set_title("升级漏斗  The escalation funnel, micro-grid to street")
    return _save(fig, out, "funnel.png")


def ratings(recorded: list[RatingRecorded], out: Path) -> str:
    counts: Counter[tuple[str, str]] = Counter(
        (r.data.ratee_tier.value, r.data.verdict) for r in recorded
    )
    tiers = [t.value for t in TIER_ORDER if any(k[0] == t.value for k in counts)]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    left = [0.0] * len(tiers)
    for verdict, zh in VERDICT_ZH.items():
        totals = [sum(counts[(t, v)] for v in VERDICT_ZH) or 1 for t in tiers]
        shares = [counts[(t, verdict)] / n * 100 for t, n in zip(tiers, totals, strict=True)]
        ax.barh(
            [f"{TIER_ZH[t]} {t}" for t in tiers],
            shares,
            left=left,
            label=f"{zh} {verdict}",
            color=VERDICT_COLOUR[verdict],
        )
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_xlabel("% of ratings")
    ax.set_xlim(0, 100)
    ax.set_title("评价分布（谁呼谁评）  Rating verdicts, by the tier rated")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    return _save(fig, out, "ratings.png")


def _rate_table(rows: list[RateRow], names: dict[str, str], label: str) -> str:
    body = "".join(
        f"<tr><td>{html.escape(names.get(r.group, r.group))}</td>"
        + "".join(f"<td>{c}</td>" for c in r.cells())
        + "</tr>"
        for r in rows
    )
    return (
        f"<table><tr><th>{label}</th><th>响应率 response</th><th>解决率 resolution</th>"
        f"<th>满意率 satisfaction</th></tr>{body}</table>"
    )


def write_report(
    events: Iterable[CloudEvent], registry: Registry, as_of: datetime, out: Path, title: str
) -> Path:
    """Render every chart as PNG and the HTML page that shows them; return the page."""
    use_cjk_font()
    events = list(events)
    out.mkdir(parents=True, exist_ok=True)
    names = {u.id: u.name for u in registry.units.values()}
    routed = [e for e in events if isinstance(e, CaseRouted)]
    escalations = [e for e in events if isinstance(e, CaseEscalated)]
    recorded = [e for e in events if isinstance(e, RatingRecorded)]
    by_tier = three_rates(events, as_of, "tier")
    by_unit = three_rates(events, as_of, "unit")
    assignments, _ = assignments_and_ratings(events)
    charts = [
        ("三率趋势 The three rates over time", rates_over_time(events, as_of, out)),
        ("各单位三率 The three rates per unit", rates_by_unit(by_unit, names, out)),
        ("热点 Hotspots", hotspots(routed, names, out)),
        ("上升的问题 What is rising", rising(routed, out)),
        ("超时与升级 SLA breaches", sla_breaches(escalations, out)),
        ("升级漏斗 Escalation funnel", funnel(routed, escalations, out)),
        ("评价分布 Ratings", ratings(recorded, out)),
    ]
    first = min((e.time for e in events), default=as_of)
    page = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;max-width:1100px;
margin:2em auto;color:#222}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}} td:first-child{{text-align:left}}
img{{max-width:100%;border:1px solid #eee;margin:0.5em 0 1.5em}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{first:%Y-%m-%d} – {as_of:%Y-%m-%d}: {len(routed):,} cases, {len(assignments):,} assignments,
{len(escalations):,} escalations, {len(recorded):,} ratings. Rates are judged as of
{as_of.isoformat()}; formulas in docs/lifecycle.md.</p>
<h2>三率 The three rates per tier</h2>
{_rate_table(by_tier, {t.value: f"{TIER_ZH[t.value]} {t.value}" for t in TIER_ORDER}, "tier")}
{"".join(f'<h2>{html.escape(h)}</h2><img src="{src}" alt="{html.escape(h)}">' for h, src in charts)}
<h2>各单位三率 The three rates per unit</h2>
{_rate_table(by_unit, names, "unit")}
</body></html>
"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
