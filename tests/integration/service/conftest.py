"""The service in this process behind FastAPI's TestClient (pure request and answer), on a
fresh ledger: SQLite, and PostgreSQL when it is reachable (`ledger_url`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from handlers.registry import Registry
from handlers.rules import Rules
from streams.service.embedded import EmbeddedIntake
from streams.service.http import RatingLink, Service, create_app
from streams.service.reads import CaseReads
from streams.service.tokens import Tokens

# The sample registry's people and sensors used below.
GRID_WORKER, GRID_HEAD = "p0015", "p0016"  # grid qy-g01
OTHER_GRID_WORKER = "p0025"  # grid qy-g02
GATEWAY, OTHER_GATEWAY = "gw-qy-g01", "gw-qy-g02"
SENSOR = "qy-smoke-001"  # gateway gw-qy-g01's
CALLER = {"first_name": "芳", "last_name": "王", "phone": "13812345678"}


@dataclass
class Served:
    client: TestClient
    service: Service
    intake: EmbeddedIntake
    links: list[RatingLink] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    @property
    def received(self) -> int:
        """Records the engine has seen: what a door refused never counts here."""
        return self.intake.runner.tally.received


def alarm(
    sensor: str = SENSOR,
    gateway: str = GATEWAY,
    source: str | None = None,
    alarm_type: str = "smoke",
    **over: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"al-{uuid.uuid4().hex[:12]}",
        "source": source or f"/gateway/{gateway}",
        "type": "minhu.alarm.raised",
        "time": datetime.now(UTC).isoformat(),
        "data": {
            "sensor_id": sensor,
            "gateway_id": gateway,
            "alarm_type": alarm_type,
            "reading": 40.0,
            "threshold": 25.0,
        },
    }
    doc.update(over)
    return doc


@pytest.fixture()
def served(ledger_url: str, rules: Rules, registry: Registry) -> Iterator[Served]:
    intake = EmbeddedIntake(rules, registry, ledger_url)
    engine = intake.ledger.engine
    service = Service(intake, Tokens(engine), rules, registry, CaseReads(engine, rules, registry))
    s = Served(TestClient(create_app(service, max_body=64 * 1024, tick=False)), service, intake)
    service.deliver = s.links.append
    intake.on_rating_due = service.rating_due
    for who in (GRID_WORKER, GRID_HEAD, OTHER_GRID_WORKER):
        s.keys[who] = service.tokens.issue("person", who)
    for gw in (GATEWAY, OTHER_GATEWAY):
        s.keys[gw] = service.tokens.issue("gateway", gw)
    s.keys["app"] = service.tokens.issue("client", "test-app")
    try:
        yield s
    finally:
        intake.close()


def structured(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "content": json.dumps(doc, ensure_ascii=False).encode(),
        "headers": {"content-type": "application/cloudevents+json"},
    }
