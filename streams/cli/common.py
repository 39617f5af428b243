"""What the command groups share: rules and registry flags, output files, logging, times, and
the Kafka settings as flags."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, get_args

from handlers.registry import Registry
from handlers.rules import Rules
from streams.config import default_registry_path, default_rules_path, load_registry, load_rules

DEMO_LEDGER = "sqlite:///minhu-demo.db"


def config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rules", type=Path, default=None, help=f"rules file (default: {default_rules_path()})"
    )
    p.add_argument(
        "--registry",
        type=Path,
        default=None,
        help=f"grid registry (default: {default_registry_path()})",
    )


def load(args: argparse.Namespace) -> tuple[Rules, Registry]:
    registry = load_registry(args.registry)
    return load_rules(args.rules, registry), registry


@contextlib.contextmanager
def open_out(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdout
    else:
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            yield f


def setup_logging(target: str) -> None:
    """Refused actions (authorization failures) are logged on `minhu.auth`: to stderr ('-')
    or to a file."""
    handler: logging.Handler = (
        logging.StreamHandler(sys.stderr) if target == "-" else logging.FileHandler(target, "w")
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def aware_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset, e.g. {text}+08:00")
    return t


def kafka_args(p: argparse.ArgumentParser) -> None:
    from streams.drivers.kafka.settings import WorkerSettings

    fields = WorkerSettings.model_fields
    p.add_argument("--broker", help=f"{fields['broker'].description} (env MINHU_BROKER)")
    p.add_argument(
        "--topic-prefix", help=f"{fields['topic_prefix'].description} (env MINHU_TOPIC_PREFIX)"
    )


def arg_type(annotation: Any) -> Any:
    """int or float for numeric settings (also when optional), else str."""
    args = [a for a in (get_args(annotation) or (annotation,)) if a is not type(None)]
    return args[0] if args and args[0] in (int, float) else str


def worker_settings(args: argparse.Namespace) -> Any:
    from streams.drivers.kafka.settings import WorkerSettings, settings_from

    overrides = {k: getattr(args, k, None) for k in WorkerSettings.model_fields}
    return settings_from(overrides)
