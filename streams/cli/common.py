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

from pydantic import SecretStr, ValidationError

from handlers.errors import ConfigError
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


# The settings every Kafka command takes as flags: where the broker is and how to log in. The
# password is not among them: secrets (SecretStr fields) come from the environment only.
KAFKA_FLAGS = (
    "broker",
    "topic_prefix",
    "security_protocol",
    "sasl_mechanism",
    "sasl_username",
    "ssl_cafile",
)


def kafka_args(p: argparse.ArgumentParser) -> None:
    from streams.drivers.kafka.settings import WorkerSettings

    fields = WorkerSettings.model_fields
    for name in KAFKA_FLAGS:
        choices = [a for a in get_args(fields[name].annotation) if isinstance(a, str)]
        p.add_argument(
            f"--{name.replace('_', '-')}",
            choices=choices or None,
            help=f"{fields[name].description} (env MINHU_{name.upper()})",
        )
    p.epilog = (
        "The SASL password comes from the environment only: MINHU_SASL_PASSWORD "
        "(a flag would show in `ps` and in shell history)."
    )


def is_secret(annotation: Any) -> bool:
    """A SecretStr setting (also when optional): environment only, never a flag."""
    return SecretStr in (get_args(annotation) or (annotation,))


def arg_type(annotation: Any) -> Any:
    """int or float for numeric settings (also when optional), else str."""
    args = [a for a in (get_args(annotation) or (annotation,)) if a is not type(None)]
    return args[0] if args and args[0] in (int, float) else str


def worker_settings(args: argparse.Namespace) -> Any:
    from streams.drivers.kafka.settings import WorkerSettings, settings_from

    overrides = {k: getattr(args, k, None) for k in WorkerSettings.model_fields}
    try:
        return settings_from(overrides)
    except ValidationError as err:  # inputs are never echoed (hide_input_in_errors)
        raise ConfigError(
            "settings (flags and MINHU_* environment)",
            [f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in err.errors()],
        ) from None
