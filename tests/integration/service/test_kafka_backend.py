"""The service's Kafka backend on the test broker: `accepted` means the intake topic has the
record; what the door refuses is not sent; what it dead-letters itself reaches the
dead-letter topic with the reason."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from handlers.registry import Registry
from handlers.rules import Rules
from streams.drivers.kafka.publisher import Publisher
from streams.drivers.ledger import make_engine
from streams.service.http import Service, create_app
from streams.service.kafka import KafkaIntake
from streams.service.tokens import Tokens
from tests.integration.kafka_helpers import Deployment, count_records
from tests.integration.service.conftest import GATEWAY, OTHER_GATEWAY, alarm

pytestmark = pytest.mark.kafka


def test_accepted_means_published(
    broker: str, tmp_path: object, rules: Rules, registry: Registry
) -> None:
    dep = Deployment(broker, partitions=1)
    dep.create_topics()
    intake = KafkaIntake(Publisher(broker, rules, registry, dep.topics), rules)
    tokens = Tokens(make_engine(f"sqlite:///{tmp_path}/keys.db"))
    client = TestClient(create_app(Service(intake, tokens, rules, registry), tick=False))
    try:
        key = {"Authorization": f"Bearer {tokens.issue('gateway', GATEWAY)}"}
        h = {"content-type": "application/cloudevents+json", **key}
        r = client.post("/v1/events", content=json.dumps(alarm()), headers=h)
        assert r.status_code == 202, r.text
        assert r.json()["results"][0]["status"] == "accepted"
        assert r.json()["results"][0]["case_id"] is None  # the workers decide it later
        foreign = client.post(
            "/v1/events", content=json.dumps(alarm(gateway=OTHER_GATEWAY)), headers=h
        )
        assert foreign.status_code == 403
        # Open311 reads are not served in this mode, and say so
        r = client.get("/open311/v2/requests.json")
        assert r.status_code == 501 and r.json()[0]["code"] == 501
        v = intake.refuse(b"\xff not json", "mqtt/gw-qy-g01", "malformed_json", "not UTF-8")
        assert v.status == "refused"
        assert count_records(broker, dep.topics.intake("alarm")) == 1
        assert count_records(broker, dep.topics.deadletter) == 1
    finally:
        intake.close()
