"""Tools: `minhu bench`, `minhu rules check`, `minhu schemas`."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from streams.cli.common import config_args, kafka_args, load, worker_settings
from streams.config import default_rules_path


def cmd_bench(args: argparse.Namespace) -> int:
    logging.getLogger("minhu.auth").disabled = True  # the demo history's refusals: not news here
    rules, registry = load(args)
    if args.target == "kafka":
        from streams.bench.kafka import latency, throughput

        s = worker_settings(args)
        partitions = args.partitions or 4
        result = {
            **throughput(s.broker, rules, registry, args.events or 20_000, partitions),
            **latency(s.broker, rules, registry, args.rate, args.seconds, partitions),
        }
    elif args.target == "replay":
        from streams.bench.core import replay_bench
        from streams.simulation.demo import DAYS

        result = replay_bench(rules, registry, args.events or 20_000, args.days or DAYS)
    else:
        from streams.bench.core import run_bench

        result = run_bench(rules, registry, args.events or 200_000, args.ledger_events)
    print(json.dumps(result, indent=2))
    return 0


def cmd_rules_check(args: argparse.Namespace) -> int:
    rules, registry = load(args)
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


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser(
        "bench",
        help="`minhu bench`: the core against a null pipeline; `minhu bench kafka`: a worker "
        "against a passthrough on a broker, and alarm latency under load",
    )
    b.add_argument("target", nargs="?", choices=["core", "kafka", "replay"], default="core")
    config_args(b)
    kafka_args(b)
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
        default=3000,
        help="kafka: appeals and patrol reports published per second while the alarm latency "
        "is measured under load (more than a worker routes, so that its backlog grows)",
    )
    b.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        help="kafka: how long each latency run (idle, then under load) probes",
    )
    b.add_argument(
        "--days",
        type=int,
        default=None,
        help="replay: the days the demo history spans (default: the demo's 30), ending where "
        "the demo's month ends (a longer history at the same density is what a year of a city's appeals is; more "
        "events in the same days make every place busier instead)",
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
    config_args(rc)
    rc.set_defaults(func=cmd_rules_check)

    s = sub.add_parser("schemas", help="export the JSON Schema of every event type")
    s.add_argument("--out", default="schemas/json", help="folder (default schemas/json)")
    s.add_argument("--check", action="store_true", help="fail if the files are not current")
    s.set_defaults(func=cmd_schemas)
