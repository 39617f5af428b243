"""The MQTT door's decisions without a broker: the topic tree, the settings, and what a
message becomes, on a list-backed intake."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError

from handlers.registry import Registry
from streams.service.mqtt import Door, MqttSettings
from streams.service.ports import Verdict
from tests.conftest import EventFactory


@dataclass
class ListIntake:
    submitted: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def submit(self, raw: str | bytes, received_from: str) -> Verdict:
        self.submitted.append(received_from)
        return Verdict("accepted")

    def refuse(self, raw: str | bytes, received_from: str, kind: str, reason: str) -> Verdict:
        self.refused.append((kind, reason))
        return Verdict("refused", reason=reason)


@pytest.mark.parametrize(
    ("topic", "gateway"),
    [
        ("minhu/v1/gateways/gw-qy-g01/alarms", "gw-qy-g01"),
        ("minhu/v1/gateways/gw-qy-g01/alarm", None),
        ("minhu/v1/gateways/gw-qy-g01/alarms/x", None),
        ("minhu/v1/gateways//alarms", None),
        ("minhu/v1/gateways/alarms", None),
        ("other/v1/gateways/gw-qy-g01/alarms", None),
    ],
)
def test_the_gateway_is_read_from_its_topic(topic: str, gateway: str | None) -> None:
    assert MqttSettings().gateway_of(topic) == gateway


def test_settings_refuse_an_address_without_a_port() -> None:
    with pytest.raises(ValidationError, match="must be host:port"):
        MqttSettings(address="127.0.0.1")
    s = MqttSettings(address="mqtt.example:8883")
    assert (s.host, s.port) == ("mqtt.example", 8883)


def test_the_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINHU_MQTT_PASSWORD", "s3cret")
    monkeypatch.setenv("MINHU_MQTT_CLIENT_ID", "from-env")
    s = MqttSettings.from_env({"client_id": "from-flag", "username": None})
    assert s.password is not None and s.password.get_secret_value() == "s3cret"
    assert s.client_id == "from-flag"
    assert "s3cret" not in repr(s)


def test_a_gateway_may_send_only_its_own_sensors(registry: Registry, make: EventFactory) -> None:
    intake = ListIntake()
    door = Door(intake, registry, MqttSettings())
    topic = "minhu/v1/gateways/gw-qy-g01/alarms"
    assert door.take(topic, make.alarm("qy-gas-003", "gw-qy-g01", "gas_leak").encode()).status == (
        "accepted"
    )
    assert door.take(topic, make.alarm("qy-gas-005", "gw-qy-g01", "gas_leak").encode()).status == (
        "refused"
    )
    assert intake.submitted == [f"mqtt/{topic}"]
    assert intake.refused[0][0] == "unauthorized"
    assert "binds it to gateway 'gw-qy-g02'" in intake.refused[0][1]
