"""`minhu serve` (the HTTP doors) and `minhu tokens` (their keys)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from handlers.errors import ConfigError
from streams.cli.common import config_args, kafka_args, load, worker_settings
from streams.cli.mqtt import mqtt_args

DEFAULT_PORT = 8311
DB_NAME = "minhu.db"


def _ledger_url(args: argparse.Namespace) -> str:
    """The ledger's URL: `--ledger`, else `minhu.db` in `--data-dir` (made if missing)."""
    if args.ledger:
        return str(args.ledger)
    folder = Path(args.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / DB_NAME).resolve()}"


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        default=".",
        help=f"where the embedded ledger ({DB_NAME}) and the rating links live (default: .)",
    )
    p.add_argument(
        "--ledger",
        help="the ledger's (and the keys') database URL, e.g. postgresql+psycopg://host/db "
        f"(default: sqlite in --data-dir/{DB_NAME})",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from streams.drivers.ledger import make_engine
    from streams.service.http import RatingLink, Service, create_app
    from streams.service.reads import CaseReads
    from streams.service.tokens import Tokens

    rules, registry = load(args)
    url = _ledger_url(args)
    links = Path(args.rating_links or Path(args.data_dir) / "rating-links.jsonl")
    lock = threading.Lock()

    def deliver(link: RatingLink) -> None:
        """The outbox of rating links, for the sender that texts each caller (it finds the
        phone in the ledger's `cases` by the case id): one JSON line a link."""
        line = json.dumps(
            {"case_id": link.case_id, "key": link.key, "due_by": link.due_by.isoformat()}
        )
        with lock, links.open("a", encoding="utf-8") as f:
            f.write(line + "\n")

    intake: Any
    bridge: Any = None
    reader: Any = None
    if args.broker and args.mqtt:
        raise ConfigError(
            "--mqtt", ["on Kafka the bridge runs on its own: minhu mqtt-bridge --broker ..."]
        )
    if args.broker:
        from streams.drivers.kafka.publisher import Publisher
        from streams.drivers.kafka.security import kafka_python_config
        from streams.service.board import Board
        from streams.service.kafka import DispatchReader, KafkaIntake
        from streams.service.reads import CaseBook
        from streams.topics import Topics

        s = worker_settings(args)
        topics = Topics(s.topic_prefix)
        login = kafka_python_config(s)
        intake = KafkaIntake(Publisher(s.broker, rules, registry, topics, **login), rules)
        board, book = Board(registry), CaseBook(rules, registry)
        reader = DispatchReader(s.broker, topics, [board.take, book.take], **login).start()
        threading.Thread(target=_say_caught_up, args=(reader,), daemon=True).start()
        engine = make_engine(url)
        service = Service(intake, Tokens(engine), rules, registry, book, deliver, board)
        mode = f"kafka at {s.broker} (accepted = published; reads from the dispatch topics)"
    else:
        from streams.service.board import Board
        from streams.service.embedded import EmbeddedIntake

        board = Board(registry)
        intake = EmbeddedIntake(rules, registry, url, on_outputs=board.take)
        board.take(board_history(url))  # the ledger's tables exist once the intake is made
        engine = intake.ledger.engine
        service = Service(
            intake, Tokens(engine), rules, registry, CaseReads(engine, rules, registry), deliver,
            board,
        )  # fmt: skip
        intake.on_rating_due = service.rating_due
        mode = f"embedded, ledger {url}"
        if args.mqtt:
            from streams.cli.mqtt import mqtt_settings
            from streams.service.mqtt import run_bridge

            settings = mqtt_settings(args)
            bridge = run_bridge(intake, registry, settings)
            mode += f"; MQTT {settings.subscription} on {settings.address}"
            threading.Thread(target=_say_subscribed, args=(bridge,), daemon=True).start()
    app = create_app(service, max_body=args.max_body)
    print(f"minhu serve: {mode}; http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    try:
        # Open board streams end within a few seconds of a stop, not when the rooms close them.
        uvicorn.run(
            app, host=args.host, port=args.port, log_level=args.log_level,
            timeout_graceful_shutdown=3,
        )  # fmt: skip
    finally:
        if bridge is not None:
            bridge.stop()
        if reader is not None:
            reader.stop()
        intake.close()
    return 0


def _say_subscribed(bridge: Any) -> None:
    """Say when the bridge's subscription is in place: alarms published before it are not
    delivered to a new session."""
    bridge.subscribed.wait()
    print(f"minhu serve: MQTT subscribed to {bridge.settings.subscription}", file=sys.stderr,
          flush=True)  # fmt: skip


def _say_caught_up(reader: Any) -> None:
    """Say when the board and the case views have read the topics' history."""
    reader.caught_up.wait()
    print("minhu serve: read the dispatch topics' history", file=sys.stderr, flush=True)


def board_history(url: str) -> list[Any]:
    """The ledger's case events the board starts from: those of its rates' window."""
    from datetime import UTC, datetime, timedelta

    from streams.drivers.ledger import iter_case_events
    from streams.service.board import RATES_DAYS

    return list(iter_case_events(url, since=datetime.now(UTC) - timedelta(days=RATES_DAYS)))


def cmd_tokens_issue(args: argparse.Namespace) -> int:
    from streams.drivers.ledger import make_engine
    from streams.service.tokens import Kind, Tokens

    _, registry = load(args)
    kind: Kind
    if args.person:
        if args.person not in registry.people:
            raise ConfigError("--person", [f"no person {args.person!r} in the registry"])
        kind, subject = "person", args.person
    elif args.gateway:
        known = {s.gateway for s in registry.sensors.values()}
        if args.gateway not in known:
            raise ConfigError("--gateway", [f"no sensor of the registry names {args.gateway!r}"])
        kind, subject = "gateway", args.gateway
    else:
        kind, subject = "client", args.client
    engine = make_engine(_ledger_url(args))
    try:
        key = Tokens(engine).issue(kind, subject)
    finally:
        engine.dispose()
    print(key)
    print(
        f"a {kind} key for {subject}: shown once, stored hashed; revoke it with "
        f"`minhu tokens revoke {_key_id(key)}`",
        file=sys.stderr,
    )
    return 0


def _key_id(key: str) -> str:
    from streams.service.tokens import digest_of

    return digest_of(key)[:12]


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    from streams.drivers.ledger import make_engine
    from streams.service.tokens import Tokens

    engine = make_engine(_ledger_url(args))
    try:
        n = Tokens(engine).revoke(args.id)
    except ValueError as err:
        print(f"minhu tokens revoke: {err}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"{n} key(s) revoked")
    return 0 if n else 1


def cmd_tokens_list(args: argparse.Namespace) -> int:
    from streams.drivers.ledger import make_engine
    from streams.service.tokens import Tokens

    engine = make_engine(_ledger_url(args))
    try:
        for row in Tokens(engine).listing():
            state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "live"
            print(f"{row['id']}  {row['kind']:8} {row['subject']:24} {row['issued_at']}  {state}")
    finally:
        engine.dispose()
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sv = sub.add_parser(
        "serve",
        help="the HTTP doors: gateways, Open311 for residents, responders' actions",
        description="Embedded by default (the engine in this process, a SQLite ledger in "
        "--data-dir); with --broker it publishes to Kafka's intake topics instead, and "
        "reads the dispatch, closure and rating topics for the board and Open311.",
    )
    config_args(sv)
    _store_args(sv)
    kafka_args(sv)
    sv.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens "
        "it to the network, behind TLS at a proxy)",
    )
    sv.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    sv.add_argument(
        "--max-body",
        type=int,
        default=4 * 1024 * 1024,
        help="the largest request body, in bytes (default 4 MiB; one record is at most 512 KiB "
        "whatever this says); larger ones get 413",
    )
    sv.add_argument(
        "--rating-links",
        help="where callers' one-time rating links are written for delivery, one JSON line "
        "each (default --data-dir/rating-links.jsonl)",
    )
    sv.add_argument("--log-level", default="info", help="uvicorn's log level (default info)")
    mqtt_args(sv)
    sv.set_defaults(func=cmd_serve)

    tk = sub.add_parser("tokens", help="keys for the service: responders, gateways, clients")
    tk_sub = tk.add_subparsers(dest="tokens_command", required=True)
    ti = tk_sub.add_parser("issue", help="issue a key (printed once; stored hashed)")
    config_args(ti)
    _store_args(ti)
    who = ti.add_mutually_exclusive_group(required=True)
    who.add_argument("--person", help="a responder's registry id: acts as that person")
    who.add_argument("--gateway", help="a gateway id: publishes its own sensors' alarms")
    who.add_argument("--client", help="an Open311 application's name: its api_key")
    ti.set_defaults(func=cmd_tokens_issue)
    tr = tk_sub.add_parser("revoke", help="revoke a key by its id (from `issue` or `list`)")
    _store_args(tr)
    tr.add_argument("id", help="the key's id: the first hex digits of its digest")
    tr.set_defaults(func=cmd_tokens_revoke)
    tl = tk_sub.add_parser("list", help="list the keys (ids, never the keys)")
    _store_args(tl)
    tl.set_defaults(func=cmd_tokens_list)
