"""The MQTT door: sensor gateways publish alarms to an MQTT broker, the bridge hands each one
to an `Intake` (streams/service/ports.py) and acknowledges it only once the intake took it.

Topic tree (`topic_root` is `minhu/v1` by default):

    minhu/v1/gateways/{gateway_id}/alarms     one alarm a message, QoS 1

The payload is a CloudEvent `minhu.alarm.raised` in structured JSON mode, exactly what the
Kafka topic and the HTTP door take (one contract, no second format to keep in step). The
gateway in the topic is who published it: the broker lets a gateway write only under its own
id (docker/mosquitto/acl, `pattern write minhu/v1/gateways/%u/#`), so the bridge refuses an
alarm whose `data.gateway_id` is not the topic's, or whose sensor the registry binds to another
gateway. Every message ends in exactly one of: submitted (accepted or duplicate) or refused
(dead-lettered with the reason through `Intake.refuse`) — a payload that is not JSON, not an
alarm, too large, another gateway's sensor, or published anywhere under `…/gateways/#` but
not on an `alarms` topic. `minhu_mqtt_messages_total{outcome}` counts them.

Delivery: the bridge subscribes with QoS 1 on a persistent session (MQTT 3.1.1,
`clean_session=False`, a fixed `client_id`), so the broker queues what gateways publish while
the bridge is down and delivers it when it is back. Acknowledgements are manual (paho-mqtt 2.x
`manual_ack_set`): a message is acknowledged after `submit` or `refuse` returned. If the intake
raises (a Kafka broker that does not answer), the message is not acknowledged and the bridge
drops the connection; the broker delivers it again on the next one (at least once: a
redelivered alarm is a duplicate by its CloudEvent id, and is never decided twice).

    handle = run_bridge(intake, registry, MqttSettings(address="127.0.0.1:1883"))
    ...
    handle.stop()
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import Counter as PromCounter
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from handlers.intake import parse_input
from handlers.registry import Registry
from schemas import AlarmRaised, EventRejected
from schemas.routing import ErrorKind
from streams.service.ports import Intake, Verdict

log = logging.getLogger("minhu.mqtt")

MESSAGES = PromCounter(
    "minhu_mqtt_messages_total",
    "MQTT messages the bridge took, by what became of them: accepted, duplicate, refused "
    "(dead-lettered with a reason), failed (the intake raised; not acknowledged, delivered again)",
    ["outcome"],
)
QOS = 1
ENV_PREFIX = "MINHU_MQTT_"
MAX_RECEIVED_FROM = 200  # a topic is named in each dead letter; no store needs it longer


class MqttSettings(BaseModel):
    """Where the bridge reads from, and as whom. Each knob says what it trades."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    address: str = Field(
        "127.0.0.1:1883",
        description="The MQTT broker, host:port. 1883 is MQTT in clear: only on this machine "
        "or a private network; 8883 with `tls` anywhere else.",
    )
    client_id: str = Field(
        "minhu-bridge",
        min_length=1,
        max_length=23,
        description="The bridge's MQTT client id: its persistent session on the broker, which "
        "queues QoS 1 messages while the bridge is down. Two bridges with the same id take the "
        "session from each other (the broker disconnects the older); bridges with different "
        "ids each get every message.",
    )
    topic_root: str = Field(
        "minhu/v1",
        description="The root of the topic tree: gateways publish to "
        "<topic_root>/gateways/<gateway_id>/alarms. A test or a second city takes its own.",
    )
    username: str | None = Field(
        None, description="The bridge's MQTT user (docker/mosquitto/acl lets it read the tree)."
    )
    password: SecretStr | None = Field(
        None,
        description="The bridge's MQTT password: from the environment only "
        "(MINHU_MQTT_PASSWORD), never a flag (a flag shows in `ps`). Never printed.",
    )
    tls: bool = Field(False, description="MQTT over TLS, the broker's certificate verified.")
    tls_cafile: str | None = Field(
        None, description="PEM of the CA that signed the broker's certificate (with `tls`)."
    )
    keepalive: int = Field(
        30,
        ge=5,
        le=3600,
        description="Seconds between pings: a lost connection is noticed within 1.5 times "
        "this; shorter costs a little traffic.",
    )

    @field_validator("address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, like 127.0.0.1:1883")
        return value

    @classmethod
    def from_env(cls, overrides: dict[str, Any]) -> MqttSettings:
        """Defaults, then `MINHU_MQTT_<FIELD>` environment variables (the password only
        there), then explicit overrides (CLI flags, None for not given)."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            env = os.environ.get(f"{ENV_PREFIX}{name.upper()}")
            if env is not None:
                values[name] = None if env == "" else env
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    def alarm_topic(self, gateway_id: str) -> str:
        return f"{self.topic_root}/gateways/{gateway_id}/alarms"

    @property
    def subscription(self) -> str:
        return f"{self.topic_root}/gateways/#"

    def gateway_of(self, topic: str) -> str | None:
        """The gateway id in an alarm topic, None if `topic` is not one."""
        head = f"{self.topic_root}/gateways/"
        gateway, sep, tail = topic.removeprefix(head).partition("/")
        if not topic.startswith(head) or not sep or tail != "alarms" or not gateway:
            return None
        return gateway


class Door:
    """What the bridge decides about one message, apart from MQTT: the one place a payload is
    checked against the topic it came on. Returns the intake's verdict."""

    def __init__(self, intake: Intake, registry: Registry, settings: MqttSettings) -> None:
        self.intake = intake
        self.registry = registry
        self.settings = settings

    def take(self, topic: str, payload: bytes) -> Verdict:
        received_from = f"mqtt/{topic}"[:MAX_RECEIVED_FROM]
        gateway = self.settings.gateway_of(topic)
        if gateway is None:
            expected = self.settings.alarm_topic("{gateway_id}")
            return self._refuse(
                payload,
                received_from,
                "invalid_event",
                f"not an alarm topic: alarms go to {expected}",
            )
        parsed = parse_input(payload, received_from, None, datetime.now(UTC))
        if isinstance(parsed, EventRejected):
            return self._refuse(payload, received_from, parsed.data.error_kind, parsed.data.reason)
        if not isinstance(parsed, AlarmRaised):
            why = f"a {parsed.type} event on a gateway's alarm topic: it takes minhu.alarm.raised only"
            return self._refuse(payload, received_from, "invalid_event", why)
        claimed = parsed.data.gateway_id
        if claimed != gateway:
            why = f"the alarm names gateway '{claimed}' but gateway '{gateway}' published it"
            return self._refuse(payload, received_from, "unauthorized", why)
        sensor = self.registry.sensors.get(parsed.data.sensor_id)
        if sensor is not None and sensor.gateway != gateway:
            why = (
                f"gateway '{gateway}' may not publish alarms of sensor '{sensor.id}': the "
                f"registry binds it to gateway '{sensor.gateway}'"
            )
            return self._refuse(payload, received_from, "unauthorized", why)
        # An unknown sensor is the engine's to refuse, as on every other door.
        return self.intake.submit(payload, received_from)

    def _refuse(self, payload: bytes, received_from: str, kind: ErrorKind, reason: str) -> Verdict:
        return self.intake.refuse(payload, received_from, kind, reason)


class Bridge:
    """A running bridge: a thread of its own that connects, reconnects and takes messages."""

    def __init__(self, intake: Intake, registry: Registry, settings: MqttSettings) -> None:
        self.settings = settings
        self.door = Door(intake, registry, settings)
        self.counts: Counter[str] = Counter()  # outcome → messages, as MESSAGES counts them
        self.subscribed = threading.Event()  # set once the subscription is in place
        self._stopping = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.manual_ack_set(True)
        if settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else None
            client.username_pw_set(settings.username, password)
        if settings.tls:
            client.tls_set(ca_certs=settings.tls_cafile)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self.client = client
        self._thread = threading.Thread(target=self._run, name="minhu-mqtt-bridge", daemon=True)

    def start(self) -> Bridge:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        """Disconnect and wait for the thread. The session stays on the broker: what is
        published from now on is delivered to the next bridge with this client id."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            self.client.disconnect()  # again, should it have been connecting the first time
            self._thread.join(0.5)

    def _run(self) -> None:
        s = self.settings
        while not self._stopping.is_set():
            try:
                self.client.connect(s.host, s.port, s.keepalive)
            except OSError as err:
                log.warning("MQTT broker %s unreachable (%s): trying again", s.address, err)
                self._stopping.wait(2)
                continue
            if self._stopping.is_set():
                self.client.disconnect()
                self.client.loop(1)  # sends the DISCONNECT
                break
            # Reconnects by itself after a lost connection; returns after disconnect().
            self.client.loop_forever(retry_first_connection=True)
            self.subscribed.clear()
            self._stopping.wait(1)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s refused the bridge: %s", self.settings.address, reason)
            return
        if flags.session_present:
            self.subscribed.set()  # the session kept the subscription (and queued messages)
            return
        # A new session: subscribe. (Not on a kept one: a SUBSCRIBE resends retained messages.)
        client.subscribe(self.settings.subscription, qos=QOS)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        if any(r.is_failure for r in reasons):
            log.error("MQTT broker refused the subscription %s", self.settings.subscription)
            return
        log.info("subscribed to %s (QoS %d)", self.settings.subscription, QOS)
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            verdict = self.door.take(msg.topic, bytes(msg.payload))
        except Exception:
            # Not acknowledged: dropping the connection makes the broker deliver it again.
            log.exception("intake failed on a message from %s: delivered again", msg.topic)
            self._count("failed")
            client.disconnect()
            return
        client.ack(msg.mid, msg.qos)
        self._count(verdict.status)
        if verdict.status == "refused":
            log.info("refused a message on %s: %s", msg.topic, verdict.reason)

    def _count(self, outcome: str) -> None:
        self.counts[outcome] += 1
        MESSAGES.labels(outcome).inc()


def run_bridge(intake: Intake, registry: Registry, settings: MqttSettings) -> Bridge:
    """Start the bridge in this process (in a thread of its own) and return it; `stop()` ends
    it. This is what `minhu serve --mqtt HOST:PORT` calls with its embedded intake, and
    `minhu mqtt-bridge` with `streams.service.kafka.KafkaIntake`. `intake` is called from the
    bridge's thread."""
    return Bridge(intake, registry, settings).start()
