"""The MQTT bridge against the real Mosquitto at 127.0.0.1:1883, published to by a real paho
client, deciding on the real embedded runner. Each test has a topic root and a client id of
its own (a uuid), so tests never see each other's messages, and removes its session after."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from handlers.registry import Registry
from handlers.rules import Rules
from schemas.common import MAX_RECORD_BYTES
from streams.service.mqtt import Bridge, MqttSettings, run_bridge
from streams.service.ports import Verdict
from tests.conftest import EventFactory
from tests.integration.kafka_helpers import MINHU, Deployment, read
from tests.integration.mqtt_helpers import (
    MOSQUITTO,
    Gateway,
    RunnerIntake,
    mosquitto_down,
    wait_for,
)

pytestmark = pytest.mark.skipif(mosquitto_down() is not None, reason=mosquitto_down() or "")

GW, SENSOR = "gw-qy-g01", "qy-gas-003"  # the registry binds qy-gas-003 to gw-qy-g01
OTHER_GW_SENSOR = "qy-gas-005"  # bound to gw-qy-g02


def now() -> str:
    return datetime.now(UTC).isoformat()


@pytest.fixture()
def settings() -> Iterator[MqttSettings]:
    tag = uuid.uuid4().hex[:12]
    s = MqttSettings(client_id=f"t-{tag}", topic_root=f"test-{tag}/v1")
    yield s
    # Remove the bridge's persistent session from the broker (a clean session replaces it).
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, clean_session=True)
    c.connect(*MOSQUITTO)
    c.loop_start()
    c.disconnect()
    c.loop_stop()


@pytest.fixture()
def gateway() -> Iterator[Gateway]:
    g = Gateway(f"g-{uuid.uuid4().hex[:12]}")
    yield g
    g.close()


@contextmanager
def subscribed(
    intake: RunnerIntake, registry: Registry, settings: MqttSettings
) -> Iterator[Bridge]:
    """A bridge onto `intake`, once it has subscribed; stopped at the end."""
    bridge = run_bridge(intake, registry, settings)
    try:
        assert bridge.subscribed.wait(30)
        yield bridge
    finally:
        bridge.stop()


def test_a_good_alarm_opens_a_case_at_once(
    rules: Rules, registry: Registry, make: EventFactory, settings: MqttSettings, gateway: Gateway
) -> None:
    intake = RunnerIntake(rules, registry)
    with subscribed(intake, registry, settings) as bridge:
        alarm = make.alarm(SENSOR, GW, "gas_leak", time=now(), id_=f"a-{uuid.uuid4().hex}")
        started = time.monotonic()
        gateway.publish(settings.alarm_topic(GW), alarm)
        wait_for(lambda: intake.routed(), what="the alarm's case")
        took = time.monotonic() - started
        case = intake.routed()[0]
        assert case.data.origin.event_id == json.loads(alarm)["id"]
        assert case.data.category == "gas_safety"
        assert case.data.origin.event_source == "/test"
        assert bridge.counts == {"accepted": 1}
        assert intake.dead_letters() == []
        print(f"MQTT publish → case routed in {took * 1000:.1f} ms")


def test_bad_payloads_are_dead_lettered_with_the_reason(
    rules: Rules, registry: Registry, make: EventFactory, settings: MqttSettings, gateway: Gateway
) -> None:
    intake = RunnerIntake(rules, registry)
    topic = settings.alarm_topic(GW)
    cases: list[tuple[str, str | bytes, str, str]] = [
        (topic, b"{not json", "malformed_json", "malformed JSON"),
        (topic, make.appeal(time=now()), "invalid_event", "takes minhu.alarm.raised only"),
        (topic, b"x" * (MAX_RECORD_BYTES + 1), "too_large", "the limit is 524,288 bytes"),
        (
            topic,
            make.alarm(OTHER_GW_SENSOR, "gw-qy-g02", "gas_leak", time=now()),
            "unauthorized",
            "names gateway 'gw-qy-g02' but gateway 'gw-qy-g01' published it",
        ),
        (
            topic,
            make.alarm(OTHER_GW_SENSOR, GW, "gas_leak", time=now()),
            "unauthorized",
            "may not publish alarms of sensor 'qy-gas-005': the registry binds it to "
            "gateway 'gw-qy-g02'",
        ),
        (
            f"{settings.topic_root}/gateways/{GW}/alarm",
            make.alarm(SENSOR, GW, "gas_leak", time=now()),
            "invalid_event",
            f"not an alarm topic: alarms go to {settings.topic_root}/gateways/{{gateway_id}}/alarms",
        ),
        (topic, make.alarm("ghost-sensor", GW, "gas_leak", time=now()), "unknown_sensor", "ghost"),
    ]
    with subscribed(intake, registry, settings) as bridge:
        for t, payload, _, _ in cases:
            gateway.publish(t, payload)
        wait_for(lambda: len(intake.dead_letters()) >= len(cases), what="every dead letter")
        dead = intake.dead_letters()
        assert len(dead) == len(cases)
        for d, (t, _, kind, words) in zip(dead, cases, strict=True):
            assert (d.data.error_kind, d.data.received_from) == (kind, f"mqtt/{t}")
            assert words in d.data.reason
        assert "bytes in all" in dead[2].data.payload  # kept short, with its length
        assert intake.routed() == []
        assert bridge.counts == {"refused": len(cases)}


def test_an_alarm_published_while_the_bridge_is_down_arrives_when_it_is_back(
    rules: Rules, registry: Registry, make: EventFactory, settings: MqttSettings, gateway: Gateway
) -> None:
    first = run_bridge(RunnerIntake(rules, registry), registry, settings)
    assert first.subscribed.wait(30)  # the session and its subscription now exist
    first.stop()
    alarm = make.alarm(SENSOR, GW, "gas_leak", time=now(), id_=f"a-{uuid.uuid4().hex}")
    gateway.publish(settings.alarm_topic(GW), alarm)  # queued by the broker for the session

    intake = RunnerIntake(rules, registry)
    bridge = run_bridge(intake, registry, settings)
    try:
        wait_for(lambda: intake.routed(), what="the queued alarm's case")
        assert intake.routed()[0].data.origin.event_id == json.loads(alarm)["id"]
        assert bridge.counts == {"accepted": 1}
    finally:
        bridge.stop()


class FailsOnce(RunnerIntake):
    """An intake that raises on its first record, as a Kafka broker that does not answer."""

    failed = False

    def submit(self, raw: str | bytes, received_from: str) -> Verdict:
        if not self.failed:
            self.failed = True
            raise ConnectionError("the intake is down")
        return super().submit(raw, received_from)


def test_a_message_the_intake_did_not_take_is_delivered_again(
    rules: Rules, registry: Registry, make: EventFactory, settings: MqttSettings, gateway: Gateway
) -> None:
    intake = FailsOnce(rules, registry)
    with subscribed(intake, registry, settings) as bridge:
        gateway.publish(settings.alarm_topic(GW), make.alarm(SENSOR, GW, "gas_leak", time=now()))
        wait_for(lambda: intake.routed(), what="the alarm, delivered again")
        assert bridge.counts == {"failed": 1, "accepted": 1}
        assert len(intake.routed()) == 1


def test_a_repeated_alarm_is_a_duplicate_not_a_second_case(
    rules: Rules, registry: Registry, make: EventFactory, settings: MqttSettings, gateway: Gateway
) -> None:
    intake = RunnerIntake(rules, registry)
    with subscribed(intake, registry, settings) as bridge:
        alarm = make.alarm(SENSOR, GW, "gas_leak", time=now(), id_=f"a-{uuid.uuid4().hex}")
        gateway.publish(settings.alarm_topic(GW), alarm)
        gateway.publish(settings.alarm_topic(GW), alarm)
        wait_for(lambda: sum(bridge.counts.values()) == 2, what="both messages taken")
        assert bridge.counts == {"accepted": 1, "duplicate": 1}
        assert len(intake.routed()) == 1


@pytest.mark.kafka
def test_the_kafka_bridge_publishes_alarms_and_dead_letters_the_rest(
    broker: str, make: EventFactory, settings: MqttSettings, gateway: Gateway
) -> None:
    """`minhu mqtt-bridge` as a gateway's operator runs it, onto the Tansu broker."""
    dep = Deployment(broker, partitions=1)
    dep.create_topics()
    proc = subprocess.Popen(
        [
            *MINHU,
            "mqtt-bridge",
            "--mqtt",
            "127.0.0.1:1883",
            "--mqtt-client-id",
            settings.client_id,
            "--mqtt-topic-root",
            settings.topic_root,
        ],
        env=dep.env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the subscription is in place: nothing published is lost
            if "subscribed to" in line:
                break
        alarm = make.alarm(SENSOR, GW, "gas_leak", time=now(), id_=f"a-{uuid.uuid4().hex}")
        gateway.publish(settings.alarm_topic(GW), alarm)
        gateway.publish(settings.alarm_topic(GW), make.alarm(OTHER_GW_SENSOR, GW, "gas_leak"))
        t = dep.topics
        got = read(dep, lambda rs: len(rs) >= 2, 60, topics=[t.intake("alarm"), t.deadletter])
        by_topic = {r["topic"]: r["value"] for r in got}
        assert len(got) == 2
        assert by_topic["intake.alarm"]["id"] == json.loads(alarm)["id"]
        dead = by_topic["deadletter"]["data"]
        assert dead["error_kind"] == "unauthorized"
        assert dead["received_from"] == f"mqtt/{settings.alarm_topic(GW)}"
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
