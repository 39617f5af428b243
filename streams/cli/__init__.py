"""The `minhu` command line, one module a command group:

- `embedded.py`: `demo`, `route`, `lives` — the engine in one process;
- `kafka.py`: `worker`, `topics create`, `publish`, `consume` — the engine on Kafka;
- `analysis.py`: `replay`, `report`, `export` — for analysts;
- `tools.py`: `bench`, `rules check`, `schemas`;
- `service.py`: `serve`, `tokens` — the HTTP doors and their keys;
- `mqtt.py`: `mqtt-bridge` — sensor gateways over MQTT onto Kafka.
"""

from __future__ import annotations

import argparse
import sys

from handlers.errors import ConfigError
from streams.cli import analysis, embedded, kafka, mqtt, service, tools

GROUPS = (embedded, analysis, kafka, tools, service, mqtt)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="minhu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(sub)
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
