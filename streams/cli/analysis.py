"""The analysts' commands: `minhu replay`, `minhu report`, `minhu export`."""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from schemas import CloudEvent
from streams import records
from streams.analysis.summary import print_rates
from streams.cli.common import DEMO_LEDGER, aware_time, config_args, kafka_args, worker_settings
from streams.config import load_registry, load_rules
from streams.drivers.ledger import ledger_case_events
from streams.topics import Topics


def cmd_report(args: argparse.Namespace) -> int:
    console = Console()
    if args.source == "ledger":
        events = ledger_case_events(args.ledger, args.since, args.until)
        source = args.ledger
    else:
        events = records.case_events(Path(args.source), args.since, args.until)
        source = args.source
    as_of = args.as_of or (max((e.time for e in events), default=None))
    if as_of is None:
        console.print(f"{source}: no case events")
        return 0
    print_rates(console, events, as_of, args.by)
    if args.out:
        from streams.analysis.report import write_report

        page = write_report(
            events,
            load_registry(args.registry),
            as_of,
            Path(args.out),
            f"民呼必应 minhu report — {source}",
        )
        console.print(f"report written to {page} (and each chart as PNG beside it)")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from rich.table import Table

    from streams.analysis import replay as rp

    console = Console(stderr=True)
    logging.getLogger("minhu.auth").disabled = True  # replayed actions refused under new rules
    registry = load_registry(args.registry)
    candidate_rules = load_rules(args.rules, registry)
    baseline_rules = load_rules(Path(args.compare), registry) if args.compare else None
    lines: Iterable[str | bytes]
    if args.source == "ledger":
        lines = rp.from_ledger(args.ledger, args.since, args.until)
        source = args.ledger
    elif args.source == "kafka":
        s = worker_settings(args)
        from streams.drivers.kafka.security import kafka_python_config

        lines = rp.from_kafka(
            s.broker, Topics(s.topic_prefix), args.since, args.until, **kafka_python_config(s)
        )
        source = f"kafka {s.broker} ({s.topic_prefix}*)"
    else:
        lines = rp.from_file(Path(args.source), args.since, args.until)
        source = args.source
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # The baseline runs in a second process, on the other core, while this one runs the
    # candidate: two independent runs of the same history, so nothing changes but the time.
    elsewhere = (
        rp.Elsewhere(
            rp.run,
            lines=lines,
            rules=baseline_rules,
            registry=registry,
            until=args.until,
            as_of=args.until,
        )
        if baseline_rules
        else None
    )
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(
                "replaying" + (" (the baseline beside it)" if elsewhere else ""), total=None
            )
            # The candidate's events go to events.jsonl as they come (`minhu report --from`).
            with (out / "events.jsonl").open("w", encoding="utf-8") as f:

                def write(ev: CloudEvent) -> None:
                    f.write(f'{{"value":{ev.model_dump_json(exclude_none=True)}}}\n')

                cand = rp.run(
                    lines,
                    candidate_rules,
                    registry,
                    args.until,
                    lambda n: progress.advance(task, n),
                    write,
                )
            base: rp.Run | None = elsewhere.result() if elsewhere else None
            elsewhere = None
    finally:
        if elsewhere is not None:
            elsewhere.stop()
    # Both runs' rates are judged at the same moment: the end of the candidate's run.
    as_of = args.until or cand.rates.as_of or datetime.now().astimezone()
    if base is not None and not base.rates.judges(as_of):
        # The baseline's last event came after the candidate's: run it again, told when.
        assert baseline_rules is not None
        base = rp.run(lines, baseline_rules, registry, args.until, as_of=as_of)
    result = rp.compare(cand, base, as_of)
    rp.write_rows(out, "cases", result["cases"])
    rp.write_rows(out, "rate_deltas" if base else "rates", result["rates"])
    if base:
        rp.write_rows(out, "case_diffs", result["diffs"])
    rp.write_rows(out, "rules", result["rules"])
    rate = cand.records / cand.seconds if cand.seconds else 0.0
    console.print(
        f"[bold]replay[/] of {cand.records:,} records from {source}: "
        f"{cand.tally.cases:,} cases, {cand.tally.rejected:,} dead letters "
        f"({rate:,.0f} records/s); written to {out}/"
    )
    returned = sorted(
        (r for r in result["rules"] if r["candidate_returns"]),
        key=lambda r: (-r["candidate_returns"], r["rule_id"]),
    )[:5]
    if returned:  # 退单: a rule whose cases are often returned is a rule to fix
        console.print(
            "most returned (退单) by rule: "
            + ", ".join(
                f"{r['rule_id']} {r['candidate_returns']:,} of {r['candidate_cases']:,} cases"
                + (f" (baseline {r['baseline_returns']:,})" if base else "")
                for r in returned
            )
        )
    if base:
        diffs = result["diffs"]
        counts = rp.changed_counts(diffs)
        console.print(
            f"{len(diffs):,} of {len(cand.outcomes):,} cases would change: "
            + (", ".join(f"{k} {v:,}" for k, v in counts.most_common()) or "none")
        )
        cats = Counter(d["category"] for d in diffs)
        if cats:
            console.print("by category: " + ", ".join(f"{c} {n:,}" for c, n in cats.most_common(6)))
        moved = sorted(
            (r for r in result["rates"] if r["delta_response_rate_pp"]),
            key=lambda r: -abs(r["delta_response_rate_pp"]),
        )[:8]
        if moved:
            t = Table(title="Largest changes in 响应率 (percentage points)", title_justify="left")
            for col in ("unit", "response", "resolution", "satisfaction"):
                t.add_column(col, justify="left" if col == "unit" else "right")
            for r in moved:
                t.add_row(
                    r["group"],
                    *(
                        f"{r[f'delta_{k}_rate_pp'] or 0:+.1f}"
                        for k in ("response", "resolution", "satisfaction")
                    ),
                )
            console.print(t)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from streams.analysis.export import export

    formats = ("parquet", "csv") if args.format == "both" else (args.format,)
    for path in export(args.ledger, Path(args.out), formats):
        print(path)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rpl = sub.add_parser("replay", help="replay history with candidate rules, and compare")
    rpl.add_argument(
        "--from",
        dest="source",
        required=True,
        help="a JSON Lines file, 'ledger' (see --ledger) or 'kafka' (see --broker)",
    )
    config_args(rpl)
    kafka_args(rpl)
    rpl.add_argument("--compare", help="baseline rules file: run the history through it too")
    rpl.add_argument("--ledger", default=DEMO_LEDGER, help="ledger URL for --from ledger")
    rpl.add_argument("--since", type=aware_time, help="first event time replayed")
    rpl.add_argument(
        "--until",
        type=aware_time,
        help="last event time replayed; the clock runs on to it, so deadlines fire",
    )
    rpl.add_argument("--out", default="replay-out", help="folder for JSON Lines and CSV results")
    rpl.set_defaults(func=cmd_replay)

    rp = sub.add_parser("report", help="the three rates, and with --out an HTML report")
    rp.add_argument(
        "--from",
        dest="source",
        default="ledger",
        help="'ledger' (default; see --ledger) or a JSON Lines file of records "
        "written by `minhu route`",
    )
    rp.add_argument("--ledger", default=DEMO_LEDGER, help=f"ledger URL (default {DEMO_LEDGER})")
    rp.add_argument(
        "--registry",
        type=Path,
        default=None,
        help="grid registry, for unit names (default: the sample)",
    )
    rp.add_argument("--out", help="folder for the HTML report and its charts (PNG)")
    rp.add_argument(
        "--by",
        choices=["unit", "tier", "category", "period"],
        default="unit",
        help="group by unit (default), tier, category or period (month)",
    )
    rp.add_argument("--since", type=aware_time, default=None, help="first event time counted")
    rp.add_argument("--until", type=aware_time, default=None, help="last event time counted")
    rp.add_argument(
        "--as-of",
        type=aware_time,
        default=None,
        help="when deadlines are judged (default: the last event's time)",
    )
    rp.set_defaults(func=cmd_report)

    ex = sub.add_parser("export", help="the ledger's cases, events and ratings for notebooks")
    ex.add_argument("--ledger", default=DEMO_LEDGER, help=f"ledger URL (default {DEMO_LEDGER})")
    ex.add_argument("--out", default="export", help="folder (default export/)")
    ex.add_argument("--format", choices=["parquet", "csv", "both"], default="both")
    ex.set_defaults(func=cmd_export)
