"""The `minhu` command line.

minhu demo      generate a synthetic month for the sample street, route it, fill the ledger
minhu route     route intake events (JSON Lines) to output records (JSON Lines)
minhu bench     measure the core against a null pipeline
minhu rules     check a rules file against a registry
minhu schemas   export (or check) the JSON Schema of every event type
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, get_args

from rich.console import Console
from rich.progress import Progress

from handlers.errors import ConfigError
from handlers.registry import Registry
from handlers.rules import Rules
from schemas import CloudEvent, Tier
from streams.config import default_registry_path, default_rules_path, load_registry, load_rules
from streams.drivers.embedded import EmbeddedRunner
from streams.drivers.ledger import Base, Ledger, ledger_case_events
from streams.analysis.summary import CaseStats, print_lives, print_rates, print_summary
from streams.topics import DEFAULT_PREFIX, Record, Topics

DEMO_LEDGER = "sqlite:///minhu-demo.db"


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rules", type=Path, default=None, help=f"rules file (default: {default_rules_path()})"
    )
    p.add_argument(
        "--registry",
        type=Path,
        default=None,
        help=f"grid registry (default: {default_registry_path()})",
    )


def _load(args: argparse.Namespace) -> tuple[Rules, Registry]:
    registry = load_registry(args.registry)
    return load_rules(args.rules, registry), registry


@contextlib.contextmanager
def _open_out(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdout
    else:
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            yield f


def _setup_logging(target: str) -> None:
    """Refused actions (authorization failures) are logged on `minhu.auth`: to stderr ('-')
    or to a file."""
    handler: logging.Handler = (
        logging.StreamHandler(sys.stderr) if target == "-" else logging.FileHandler(target, "w")
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def cmd_route(args: argparse.Namespace) -> int:
    _setup_logging(args.log)
    rules, registry = _load(args)
    ledger = Ledger(args.ledger) if args.ledger else None
    name = "stdin" if args.input == "-" else args.input
    err = Console(stderr=True)
    kept: list[str] = []
    with _open_out(args.output) as out:
        write = out.write

        def sink(rec: Record) -> None:
            line = rec.to_json_line()
            write(line)
            write("\n")
            if args.lives:
                kept.append(line)

        stats = CaseStats()
        runner = EmbeddedRunner(
            rules, registry, sink, Topics(args.topic_prefix), ledger, on_case=stats
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
    _setup_logging(args.log)
    rules, registry = _load(args)
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
    stats = CaseStats()
    runner = EmbeddedRunner(rules, registry, records.append, ledger=ledger, on_case=stats)
    fed: list[str] = []
    started = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("routing", total=args.events)
        until = run_demo(
            runner,
            records,
            args.events,
            args.seed,
            fed,
            lambda n, total: progress.update(task, completed=n, total=total),
        )
    runner.close()
    seconds = time.perf_counter() - started
    if args.events_out:
        with _open_out(args.events_out) as f:
            for line in fed:
                f.write(line + "\n")
        console.print(
            f"history written to {args.events_out} ({len(fed):,} records; replay it "
            f"with: minhu route --input {args.events_out} --until {until.isoformat()})"
        )
    if args.records_out:
        with _open_out(args.records_out) as f:
            for rec in records:
                f.write(rec.to_json_line() + "\n")
    print_summary(console, runner.tally, stats, registry, seconds)
    print_rates(console, ledger_case_events(args.ledger), until, "tier")
    console.print(
        f"Ledger: {args.ledger}  ({runner.tally.records_out:,} records produced); "
        f"`minhu report --ledger {args.ledger}` for the rates per unit"
    )
    return 0 if runner.tally.balanced else 1


def cmd_report(args: argparse.Namespace) -> int:
    console = Console()
    if args.source == "ledger":
        events = ledger_case_events(args.ledger, args.since, args.until)
        source = args.ledger
    else:
        events = records_case_events(Path(args.source), args.since, args.until)
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


def records_case_events(
    path: Path, since: datetime | None, until: datetime | None
) -> list[CloudEvent]:
    """Case events from a JSON Lines file of `minhu route` records (dead letters left out)."""
    from schemas import EVENT_MODELS

    seen: set[str] = set()
    out: list[CloudEvent] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            value = json.loads(line)["value"]
            if value["id"] in seen or value["type"] == "minhu.event.rejected":
                continue
            seen.add(value["id"])
            ev = EVENT_MODELS[value["type"]].model_validate(value)
            if (since is None or ev.time >= since) and (until is None or ev.time <= until):
                out.append(ev)
    return out


def cmd_bench(args: argparse.Namespace) -> int:
    logging.getLogger("minhu.auth").disabled = True  # the demo history's refusals: not news here
    rules, registry = _load(args)
    if args.target == "kafka":
        from streams.bench.kafka import latency, throughput

        s = _worker_settings(args)
        result = {
            "throughput": throughput(
                s.broker, rules, registry, args.events or 20_000, args.partitions or 4
            ),
            "latency": latency(
                s.broker, rules, registry, args.rate, args.seconds, args.partitions or 4
            ),
        }
    elif args.target == "replay":
        from streams.bench.core import replay_bench

        result = replay_bench(rules, registry, args.events or 20_000)
    else:
        from streams.bench.core import run_bench

        result = run_bench(rules, registry, args.events or 200_000, args.ledger_events)
    print(json.dumps(result, indent=2))
    return 0


def cmd_rules_check(args: argparse.Namespace) -> int:
    rules, registry = _load(args)
    print(
        f"{args.rules or default_rules_path()}: ok — {len(rules.categories)} categories, "
        f"{len(rules.routes)} routes, {len(rules.repeats)} repeat rules, "
        f"{len(rules.storms)} storm rules; registry {len(registry.units)} units"
    )
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    from schemas import json_schemas

    out = Path(args.out)
    stale = []
    for name, schema in json_schemas().items():
        text = json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        path = out / f"{name}.json"
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale JSON Schemas (run `minhu schemas`):\n  " + "\n  ".join(stale))
        return 1
    print(f"JSON Schemas {'are current' if args.check else 'written'} in {out}")
    return 0


def _aware_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset, e.g. {text}+08:00")
    return t


def cmd_lives(args: argparse.Namespace) -> int:
    src = sys.stdin if args.records == "-" else open(args.records, encoding="utf-8")  # noqa: SIM115
    try:
        print_lives(Console(soft_wrap=True), src, set(args.case) if args.case else None)
    finally:
        if src is not sys.stdin:
            src.close()
    return 0


def _kafka_args(p: argparse.ArgumentParser) -> None:
    from streams.drivers.kafka.settings import WorkerSettings

    fields = WorkerSettings.model_fields
    p.add_argument("--broker", help=f"{fields['broker'].description} (env MINHU_BROKER)")
    p.add_argument(
        "--topic-prefix", help=f"{fields['topic_prefix'].description} (env MINHU_TOPIC_PREFIX)"
    )


def _arg_type(annotation: Any) -> Any:
    """int or float for numeric settings (also when optional), else str."""
    args = [a for a in (get_args(annotation) or (annotation,)) if a is not type(None)]
    return args[0] if args and args[0] in (int, float) else str


def _worker_settings(args: argparse.Namespace) -> Any:
    from streams.drivers.kafka.settings import WorkerSettings, settings_from

    overrides = {k: getattr(args, k, None) for k in WorkerSettings.model_fields}
    return settings_from(overrides)


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.drivers.kafka.worker import run_worker

    settings = _worker_settings(args)
    rules, registry = _load(args)
    run_worker(settings, rules, registry, args.loglevel)  # Faust sets up logging at that level
    return 0


def cmd_topics_create(args: argparse.Namespace) -> int:
    from streams.drivers.kafka.admin import create_topics, plan

    s = _worker_settings(args)
    plans = plan(
        Topics(s.topic_prefix), s.app_id, s.partitions, args.retention_ms, args.intake_retention_ms
    )
    created = create_topics(s.broker, plans)
    for p in plans:
        state = "created" if p.name in created else "exists"
        print(f"{state:8} {p.name}  partitions={p.partitions} retention.ms={p.retention_ms}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from streams.drivers.kafka.publisher import Publisher

    s = _worker_settings(args)
    src = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")  # noqa: SIM115
    sent = bad = 0
    try:
        with Publisher(
            s.broker, Topics(s.topic_prefix), None if args.kind == "auto" else args.kind
        ) as pub:
            for n, line in enumerate(src, start=1):
                if not line.strip():
                    continue
                result = pub.publish(line.rstrip(b"\r\n"), n)
                if result.ok:
                    sent += 1
                else:
                    bad += 1
                    print(f"line {n}: not sent: {result.reason}", file=sys.stderr)
    finally:
        if src is not sys.stdin.buffer:
            src.close()
    print(f"{sent} sent, {bad} refused", file=sys.stderr)
    return 0 if bad == 0 else 1


def cmd_consume(args: argparse.Namespace) -> int:
    from streams.drivers.kafka.consumer import follow, run

    s = _worker_settings(args)
    stream = follow(
        s.broker,
        Tier(args.tier),
        Topics(s.topic_prefix),
        args.group or f"minhu-ops-{args.tier}",
        args.unit,
        args.from_beginning,
        args.idle_timeout,
    )

    def write(line: str) -> None:
        print(line, flush=True)

    run(write, stream, args.json, args.max)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from rich.table import Table

    from streams.analysis import replay as rp

    console = Console(stderr=True)
    logging.getLogger("minhu.auth").disabled = True  # replayed actions refused under new rules
    registry = load_registry(args.registry)
    candidate_rules = load_rules(args.rules, registry)
    baseline_rules = load_rules(Path(args.compare), registry) if args.compare else None
    if args.source == "ledger":
        lines = rp.from_ledger(args.ledger, args.since, args.until)
        source = args.ledger
    elif args.source == "kafka":
        s = _worker_settings(args)
        lines = rp.from_kafka(s.broker, Topics(s.topic_prefix), args.since, args.until)
        source = f"kafka {s.broker} ({s.topic_prefix}*)"
    else:
        lines = rp.from_file(Path(args.source), args.since, args.until)
        source = args.source
    runs = [("candidate", candidate_rules)] + (
        [("baseline", baseline_rules)] if baseline_rules else []
    )
    done: dict[str, rp.Run] = {}
    with Progress(console=console, transient=True) as progress:
        for name, rules in runs:
            assert rules is not None
            task = progress.add_task(f"replaying ({name})", total=len(lines))

            def advance(n: int, task: Any = task) -> None:
                progress.advance(task, n)

            done[name] = rp.run(lines, rules, registry, args.until, advance)
    cand, base = done["candidate"], done.get("baseline")
    events = cand.events
    as_of = args.until or max((e.time for e in events), default=datetime.now().astimezone())
    result = rp.compare(cand, base, as_of)
    out = Path(args.out)
    rp.write_rows(out, "cases", result["cases"])
    rp.write_rows(out, "rate_deltas" if base else "rates", result["rates"])
    if base:
        rp.write_rows(out, "case_diffs", result["diffs"])
    with (out / "events.jsonl").open("w", encoding="utf-8") as f:  # for `minhu report --from`
        for ev in cand.events:
            f.write(f'{{"value":{ev.model_dump_json(exclude_none=True)}}}\n')
    rate = len(lines) / cand.seconds if cand.seconds else 0.0
    console.print(
        f"[bold]replay[/] of {len(lines):,} records from {source}: "
        f"{cand.tally.cases:,} cases, {cand.tally.rejected:,} dead letters "
        f"({rate:,.0f} records/s); written to {out}/"
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="minhu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="route a synthetic month for the sample street")
    _add_config_args(d)
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
    _add_config_args(r)
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
        "(e.g. sqlite:///minhu.db); none by default",
    )
    r.add_argument(
        "--until",
        type=_aware_time,
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

    rpl = sub.add_parser("replay", help="replay history with candidate rules, and compare")
    rpl.add_argument(
        "--from",
        dest="source",
        required=True,
        help="a JSON Lines file, 'ledger' (see --ledger) or 'kafka' (see --broker)",
    )
    _add_config_args(rpl)
    _kafka_args(rpl)
    rpl.add_argument("--compare", help="baseline rules file: run the history through it too")
    rpl.add_argument("--ledger", default=DEMO_LEDGER, help="ledger URL for --from ledger")
    rpl.add_argument("--since", type=_aware_time, help="first event time replayed")
    rpl.add_argument(
        "--until",
        type=_aware_time,
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
    rp.add_argument("--since", type=_aware_time, default=None, help="first event time counted")
    rp.add_argument("--until", type=_aware_time, default=None, help="last event time counted")
    rp.add_argument(
        "--as-of",
        type=_aware_time,
        default=None,
        help="when deadlines are judged (default: the last event's time)",
    )
    rp.set_defaults(func=cmd_report)

    ex = sub.add_parser("export", help="the ledger's cases, events and ratings for notebooks")
    ex.add_argument("--ledger", default=DEMO_LEDGER, help=f"ledger URL (default {DEMO_LEDGER})")
    ex.add_argument("--out", default="export", help="folder (default export/)")
    ex.add_argument("--format", choices=["parquet", "csv", "both"], default="both")
    ex.set_defaults(func=cmd_export)

    lv = sub.add_parser("lives", help="print each case's whole life from `minhu route` records")
    lv.add_argument("records", help="JSON Lines written by `minhu route` (or - for stdin)")
    lv.add_argument("--case", action="append", help="only this case id (repeatable)")
    lv.set_defaults(func=cmd_lives)

    from streams.drivers.kafka.settings import WorkerSettings

    fields = WorkerSettings.model_fields
    wk = sub.add_parser("worker", help="run a Faust worker on Kafka (the distributed engine)")
    _add_config_args(wk)
    _kafka_args(wk)
    for name, f in fields.items():
        if name in ("broker", "topic_prefix"):
            continue  # added with the other Kafka commands' flags
        wk.add_argument(
            f"--{name.replace('_', '-')}",
            type=_arg_type(f.annotation),
            help=f"{f.description} (default {f.default!r}; env MINHU_{name.upper()})",
        )
    wk.add_argument("--loglevel", default="info", help="worker log level (default info)")
    wk.set_defaults(func=cmd_worker)

    tp = sub.add_parser("topics", help="Kafka topic administration")
    tp_sub = tp.add_subparsers(dest="topics_command", required=True)
    tc = tp_sub.add_parser("create", help="create every topic minhu uses (existing ones stay)")
    _kafka_args(tc)
    tc.add_argument("--app-id", help=fields["app_id"].description)
    tc.add_argument("--partitions", type=int, help=fields["partitions"].description)
    tc.add_argument(
        "--retention-ms",
        type=int,
        default=7 * 24 * 3600 * 1000,
        help="retention of dispatch, closure, rating and dead-letter topics (default 7 days)",
    )
    tc.add_argument(
        "--intake-retention-ms",
        type=int,
        default=-1,
        help="retention of the intake topics (default -1: keep everything, so "
        "analysts can replay history)",
    )
    tc.set_defaults(func=cmd_topics_create)

    pb = sub.add_parser("publish", help="validate and publish events (JSON Lines) to Kafka")
    _add_config_args(pb)
    _kafka_args(pb)
    pb.add_argument(
        "--kind",
        default="auto",
        choices=["auto", "appeal", "alarm", "patrol", "action", "rating"],
        help="what the input holds; 'auto' (default) picks the topic by event type",
    )
    pb.add_argument("--input", default="-", help="JSON Lines file, or - (stdin)")
    pb.set_defaults(func=cmd_publish)

    co = sub.add_parser("consume", help="follow the dispatch topic of a tier")
    _kafka_args(co)
    co.add_argument("--tier", required=True, choices=[t.value for t in Tier])
    co.add_argument("--unit", help="only what concerns this unit id")
    co.add_argument("--json", action="store_true", help="one CloudEvent JSON per line")
    co.add_argument("--group", help="consumer group (default minhu-ops-<tier>)")
    co.add_argument(
        "--from-beginning",
        action="store_true",
        help="start from the earliest record the group has not read",
    )
    co.add_argument("--max", type=int, help="stop after this many records")
    co.add_argument(
        "--idle-timeout", type=float, help="stop after this many seconds without a record"
    )
    co.set_defaults(func=cmd_consume)

    b = sub.add_parser(
        "bench",
        help="`minhu bench`: the core against a null pipeline; `minhu bench kafka`: a worker "
        "against a passthrough on a broker, and alarm latency under load",
    )
    b.add_argument("target", nargs="?", choices=["core", "kafka", "replay"], default="core")
    _add_config_args(b)
    _kafka_args(b)
    b.add_argument(
        "--events",
        type=int,
        default=None,
        help="records to run (default: core 200000, kafka 20000)",
    )
    b.add_argument(
        "--partitions",
        type=int,
        default=None,
        help="kafka: partitions of the bench topics (default 4)",
    )
    b.add_argument(
        "--rate",
        type=int,
        default=1000,
        help="kafka: background intake records per second during the latency run",
    )
    b.add_argument(
        "--seconds", type=float, default=30.0, help="kafka: how long the latency run probes"
    )
    b.add_argument(
        "--ledger-events",
        type=int,
        default=10_000,
        help="intake events of the demo history timed end to end with a SQLite ledger "
        "(the history adds the responders' actions and ratings)",
    )
    b.set_defaults(func=cmd_bench)

    ru = sub.add_parser("rules", help="check a rules file")
    ru_sub = ru.add_subparsers(dest="rules_command", required=True)
    rc = ru_sub.add_parser("check", help="validate rules and registry, and say what they hold")
    _add_config_args(rc)
    rc.set_defaults(func=cmd_rules_check)

    s = sub.add_parser("schemas", help="export the JSON Schema of every event type")
    s.add_argument("--out", default="schemas/json", help="folder (default schemas/json)")
    s.add_argument("--check", action="store_true", help="fail if the files are not current")
    s.set_defaults(func=cmd_schemas)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as err:
        print(f"minhu: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
