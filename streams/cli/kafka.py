"""The Kafka driver's commands: `minhu worker`, `minhu topics create`, `minhu publish`,
`minhu consume`."""

from __future__ import annotations

import argparse
import sys

from schemas import Tier
from streams.cli.common import (
    KAFKA_FLAGS,
    arg_type,
    config_args,
    is_secret,
    kafka_args,
    load,
    worker_settings,
)
from streams.topics import Topics


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.drivers.kafka.worker import run_worker

    settings = worker_settings(args)
    rules, registry = load(args)
    run_worker(settings, rules, registry, args.loglevel)  # Faust sets up logging at that level
    return 0


def cmd_topics_create(args: argparse.Namespace) -> int:
    from streams.drivers.kafka.admin import DEFAULT_PARTITIONS, create_topics, plan
    from streams.drivers.kafka.security import kafka_python_config

    s = worker_settings(args)
    plans = plan(
        Topics(s.topic_prefix),
        s.app_id,
        s.partitions or DEFAULT_PARTITIONS,
        args.retention_ms,
        args.intake_retention_ms,
    )
    created = create_topics(s.broker, plans, **kafka_python_config(s))
    for p in plans:
        state = "created" if p.name in created else "exists"
        print(f"{state:8} {p.name}  partitions={p.partitions} retention.ms={p.retention_ms}")
    return 0


# How much `minhu publish` hands to the producer before it waits for the broker's answers
# (each record is kept until then, to be sent again alone if its batch was refused).
SETTLE_RECORDS = 2000
SETTLE_BYTES = 16 * 1024 * 1024


def cmd_publish(args: argparse.Namespace) -> int:
    from streams.drivers.kafka.publisher import Delivery, Publisher
    from streams.drivers.kafka.security import kafka_python_config

    s = worker_settings(args)
    rules, registry = load(args)
    src = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")  # noqa: SIM115
    sent = bad = lost = 0

    def tally(deliveries: list[Delivery]) -> None:
        """A record is sent once the broker has taken it, not once it was handed over."""
        nonlocal sent, lost
        for d in deliveries:
            if d.ok:
                sent += 1
            else:
                lost += 1
                print(f"line {d.position}: not delivered: {d.reason}", file=sys.stderr)

    try:
        with Publisher(
            s.broker,
            rules,
            registry,
            Topics(s.topic_prefix),
            None if args.kind == "auto" else args.kind,
            **kafka_python_config(s),
        ) as pub:
            for n, line in enumerate(src, start=1):
                if not line.strip():
                    continue
                result = pub.publish(line.rstrip(b"\r\n"), n)
                if not result.ok:
                    bad += 1
                    print(f"line {n}: not sent: {result.reason}", file=sys.stderr)
                elif len(pub.pending) >= SETTLE_RECORDS or pub.pending_bytes >= SETTLE_BYTES:
                    tally(pub.settle())
            tally(pub.settle())
    finally:
        if src is not sys.stdin.buffer:
            src.close()
    print(f"{sent} sent, {bad} refused, {lost} not delivered", file=sys.stderr)
    return 0 if bad == lost == 0 else 1


def cmd_consume(args: argparse.Namespace) -> int:
    from streams.drivers.kafka.consumer import follow, run
    from streams.drivers.kafka.security import kafka_python_config

    s = worker_settings(args)
    stream = follow(
        s.broker,
        Tier(args.tier),
        Topics(s.topic_prefix),
        args.group or f"minhu-ops-{args.tier}",
        args.unit,
        args.from_beginning,
        args.idle_timeout,
        **kafka_python_config(s),
    )

    def write(line: str) -> None:
        print(line, flush=True)

    run(write, stream, args.json, args.max)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from streams.drivers.kafka.settings import WorkerSettings

    fields = WorkerSettings.model_fields
    wk = sub.add_parser("worker", help="run a Faust worker on Kafka (the distributed engine)")
    config_args(wk)
    kafka_args(wk)
    for name, f in fields.items():
        if name in KAFKA_FLAGS or is_secret(f.annotation):
            continue  # added with the other Kafka commands' flags; secrets: environment only
        wk.add_argument(
            f"--{name.replace('_', '-')}",
            type=arg_type(f.annotation),
            help=f"{f.description} (default {f.default!r}; env MINHU_{name.upper()})",
        )
    wk.add_argument("--loglevel", default="info", help="worker log level (default info)")
    wk.set_defaults(func=cmd_worker)

    tp = sub.add_parser("topics", help="Kafka topic administration")
    tp_sub = tp.add_subparsers(dest="topics_command", required=True)
    tc = tp_sub.add_parser("create", help="create every topic minhu uses (existing ones stay)")
    kafka_args(tc)
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
    config_args(pb)
    kafka_args(pb)
    pb.add_argument(
        "--kind",
        default="auto",
        choices=["auto", "appeal", "alarm", "patrol", "action", "rating"],
        help="what the input holds; 'auto' (default) picks the topic by event type",
    )
    pb.add_argument("--input", default="-", help="JSON Lines file, or - (stdin)")
    pb.set_defaults(func=cmd_publish)

    co = sub.add_parser("consume", help="follow the dispatch topic of a tier")
    kafka_args(co)
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
