"""The embedded engine's commands: `minhu route`, `minhu demo`, `minhu lives`."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from rich.console import Console
from rich.progress import Progress

from schemas import CloudEvent
from streams.analysis.summary import CaseStats, print_lives, print_rates, print_summary
from streams.cli.common import (
    DEMO_LEDGER,
    aware_time,
    config_args,
    load,
    open_out,
    setup_logging,
)
from streams.drivers.embedded import EmbeddedRunner
from streams.drivers.ledger import Base, Ledger, ledger_case_events
from streams.topics import DEFAULT_PREFIX, Record, Topics


def cmd_route(args: argparse.Namespace) -> int:
    setup_logging(args.log)
    rules, registry = load(args)
    ledger = Ledger(args.ledger) if args.ledger else None
    name = "stdin" if args.input == "-" else args.input
    err = Console(stderr=True)
    kept: list[str] = []
    with open_out(args.output) as out:
        write = out.write

        def sink(rec: Record) -> None:
            line = rec.to_json_line()
            write(line)
            write("\n")
            if args.lives:
                kept.append(line)

        stats = CaseStats()
        runner = EmbeddedRunner(
            rules, registry, sink, Topics(args.topic_prefix), ledger, on_event=stats
        )
        started = time.perf_counter()
        src = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")  # noqa: SIM115
        try:
            for n, line in enumerate(src, start=1):
                if line.strip():
                    runner.feed(line.rstrip(b"\r\n"), name, n)
            if args.until is not None:
                runner.finish(args.until)
        finally:
            if src is not sys.stdin.buffer:
                src.close()
            runner.close()
    if args.lives:
        print_lives(Console(stderr=True, soft_wrap=True), kept, None)
    if args.summary:
        print_summary(err, runner.tally, stats, registry, time.perf_counter() - started)
    return 0 if runner.tally.balanced else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from streams.simulation.demo import run_demo

    console = Console()
    setup_logging(args.log)
    rules, registry = load(args)
    tiers = Counter(u.tier.value for u in registry.units.values())
    console.print(
        f"[bold]minhu demo[/]: {registry.street.name}, {tiers['community']} communities, "
        f"{tiers['grid']} grids, {tiers['micro_grid']} micro-grids, {len(registry.sensors)} "
        f"sensors; {args.events:,} intake records over 30 days, with responders answering"
    )
    ledger = Ledger(args.ledger)
    Base.metadata.drop_all(ledger.engine)  # a demo starts from an empty ledger
    Base.metadata.create_all(ledger.engine)
    records: list[Record] = []
    emitted: list[CloudEvent] = []
    stats = CaseStats()

    def on_event(event: CloudEvent) -> None:
        emitted.append(event)
        stats(event)

    sink = records.append if args.records_out else None
    runner = EmbeddedRunner(rules, registry, sink, ledger=ledger, on_event=on_event)
    fed: list[str] = []
    started = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("routing", total=args.events)
        until = run_demo(
            runner,
            emitted,
            args.events,
            args.seed,
            fed,
            lambda n, total: progress.update(task, completed=n, total=total),
        )
    runner.close()
    seconds = time.perf_counter() - started
    if args.events_out:
        with open_out(args.events_out) as f:
            for line in fed:
                f.write(line + "\n")
        console.print(
            f"history written to {args.events_out} ({len(fed):,} records; replay it "
            f"with: minhu route --input {args.events_out} --until {until.isoformat()})"
        )
    if args.records_out:
        with open_out(args.records_out) as f:
            for rec in records:
                f.write(rec.to_json_line() + "\n")
    print_summary(console, runner.tally, stats, registry, seconds)
    print_rates(console, ledger_case_events(args.ledger), until, "tier")
    console.print(
        f"Ledger: {args.ledger}  ({runner.tally.records_out:,} records produced); "
        f"`minhu report --ledger {args.ledger}` for the rates per unit"
    )
    return 0 if runner.tally.balanced else 1


def cmd_lives(args: argparse.Namespace) -> int:
    src = sys.stdin if args.records == "-" else open(args.records, encoding="utf-8")  # noqa: SIM115
    try:
        print_lives(Console(soft_wrap=True), src, set(args.case) if args.case else None)
    finally:
        if src is not sys.stdin:
            src.close()
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("demo", help="route a synthetic month for the sample street")
    config_args(d)
    d.add_argument("--events", type=int, default=10_000, help="how many records (default 10000)")
    d.add_argument("--seed", type=int, default=7, help="random seed: same seed, same stream")
    d.add_argument("--events-out", help="also write the generated intake events (JSON Lines)")
    d.add_argument("--records-out", help="also write the produced records (JSON Lines)")
    d.add_argument(
        "--ledger",
        default=DEMO_LEDGER,
        help=f"SQLAlchemy URL of the ledger, emptied first (default {DEMO_LEDGER})",
    )
    d.add_argument(
        "--log",
        default="minhu-demo.log",
        help="where refused actions are logged ('-' for stderr; default minhu-demo.log)",
    )
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("route", help="route intake events (JSON Lines) to records")
    config_args(r)
    r.add_argument("--input", default="-", help="JSON Lines file of intake events, or - (stdin)")
    r.add_argument("--output", default="-", help="where records go, or - (stdout)")
    r.add_argument(
        "--topic-prefix",
        default=DEFAULT_PREFIX,
        help=f"prefix of every topic name (default {DEFAULT_PREFIX!r})",
    )
    r.add_argument(
        "--ledger",
        default=None,
        help="SQLAlchemy URL of a ledger to record into and resume from "
        "(e.g. sqlite:///minhu.db); none by default. A rerun of the same input re-emits what "
        "the ledger holds and carries on where the last run stopped",
    )
    r.add_argument(
        "--until",
        type=aware_time,
        default=None,
        help="after the input ends, advance the clock to this time (ISO 8601 with "
        "offset) so that due SLA deadlines fire",
    )
    r.add_argument("--summary", action="store_true", help="print a summary on stderr")
    r.add_argument(
        "--lives",
        action="store_true",
        help="print each case's whole life on stderr (as `minhu lives` does)",
    )
    r.add_argument(
        "--log", default="-", help="where refused actions are logged (default '-': stderr)"
    )
    r.set_defaults(func=cmd_route)

    lv = sub.add_parser("lives", help="print each case's whole life from `minhu route` records")
    lv.add_argument("records", help="JSON Lines written by `minhu route` (or - for stdin)")
    lv.add_argument("--case", action="append", help="only this case id (repeatable)")
    lv.set_defaults(func=cmd_lives)
