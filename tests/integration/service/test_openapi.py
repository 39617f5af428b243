"""Property test of the whole HTTP surface from its own OpenAPI document: whatever is sent, no
answer is a 5xx. Requests carry live keys of the right kind, so the fuzzing gets past the
door into the engine."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from handlers.registry import Registry
from handlers.rules import Rules
from streams.config import load_registry, load_rules
from streams.service.board import Board
from streams.service.embedded import EmbeddedIntake
from streams.service.http import Service, create_app
from streams.service.reads import CaseReads
from streams.service.tokens import Tokens


def _service(url: str) -> tuple[Service, Any]:
    registry: Registry = load_registry()
    rules: Rules = load_rules(None, registry)
    intake = EmbeddedIntake(rules, registry, url)
    engine = intake.ledger.engine
    board = Board(registry)
    intake.on_outputs = board.take
    service = Service(
        intake, Tokens(engine), rules, registry, CaseReads(engine, rules, registry), board=board
    )
    intake.on_rating_due = service.rating_due
    return service, create_app(service, max_body=64 * 1024, tick=False)


SERVICE, APP = _service(f"sqlite:///{Path(tempfile.mkdtemp()) / 'fuzz.db'}")
KEYS = {
    "person": SERVICE.tokens.issue("person", "p0016"),
    "gateway": SERVICE.tokens.issue("gateway", "gw-qy-g01"),
    "client": SERVICE.tokens.issue("client", "fuzz"),
}
# The board's stream never ends by itself: the browser test (test_board.py) reads it.
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(
    path="/board/{unit_id}/events"
)


@pytest.fixture(autouse=True, scope="module")
def _close() -> Iterator[None]:
    yield
    SERVICE.intake.close()  # type: ignore[attr-defined]


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_5xx(case: Any) -> None:
    path = case.operation.path
    kind = "gateway" if path == "/v1/events" else "person"
    headers = {"Authorization": f"Bearer {KEYS[kind]}"}
    if path == "/open311/v2/requests.json" and isinstance(case.body, dict):
        case.body["api_key"] = KEYS["client"]
    case.call_and_validate(headers=headers, checks=[not_a_server_error])
