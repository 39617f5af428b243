"""The documented Mosquitto set-up (docker/mosquitto/): a broker of the test's own, started
with that configuration and ACL, a password per gateway and one for the bridge."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr

from handlers.registry import Registry
from handlers.rules import Rules
from streams.service.mqtt import MqttSettings, run_bridge
from tests.conftest import EventFactory
from tests.integration.mqtt_helpers import Gateway, RunnerIntake, wait_for

DOCS = Path(__file__).parents[2] / "docker" / "mosquitto"
LOGINS = {"minhu-bridge": "bridge-pw-1", "gw-qy-g01": "gw1-pw-1", "gw-qy-g02": "gw2-pw-1"}

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto", path="/usr/sbin:/usr/bin") is None
    or shutil.which("mosquitto_passwd") is None,
    reason="mosquitto is not installed (Debian: apt-get install mosquitto mosquitto-clients)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """Mosquitto with docker/mosquitto/mosquitto.conf as written, but for its port and paths."""
    port = _free_port()
    passwd = tmp_path / "passwd"
    for n, (user, password) in enumerate(LOGINS.items()):
        create = ["-c"] if n == 0 else []
        subprocess.run(["mosquitto_passwd", *create, "-b", str(passwd), user, password], check=True)
    shutil.copy(DOCS / "acl", tmp_path / "acl")
    conf = (DOCS / "mosquitto.conf").read_text()
    conf = conf.replace("listener 1883", f"listener {port} 127.0.0.1")
    conf = conf.replace("/mosquitto/config/", f"{tmp_path}/").replace(
        "/mosquitto/data/", f"{tmp_path}/"
    )
    # Started as root, mosquitto would drop to the `mosquitto` user, who cannot read tmp_path.
    (tmp_path / "mosquitto.conf").write_text(f"{conf}\nuser {getpass.getuser()}\n")
    mosquitto = shutil.which("mosquitto", path="/usr/sbin:/usr/bin")
    assert mosquitto is not None
    proc = subprocess.Popen(
        [mosquitto, "-c", str(tmp_path / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "mosquitto.log").open("wb"),
    )
    try:
        wait_for(lambda: _listening(port) or proc.poll() is not None, 30, "mosquitto")
        assert proc.poll() is None, (tmp_path / "mosquitto.log").read_text()
        yield ("127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(10)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_a_gateway_writes_only_its_own_alarms_and_anonymous_clients_are_refused(
    broker: tuple[str, int], rules: Rules, registry: Registry, make: EventFactory
) -> None:
    settings = MqttSettings(
        address=f"{broker[0]}:{broker[1]}",
        client_id=f"t-{uuid.uuid4().hex[:12]}",
        username="minhu-bridge",
        password=SecretStr(LOGINS["minhu-bridge"]),
    )
    intake = RunnerIntake(rules, registry)
    bridge = run_bridge(intake, registry, settings)
    gw1 = Gateway("gw1", broker, ("gw-qy-g01", LOGINS["gw-qy-g01"]))
    try:
        assert bridge.subscribed.wait(30)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        # Into another gateway's topic: the broker drops it (QoS 1 is still acknowledged).
        gw1.publish(
            settings.alarm_topic("gw-qy-g02"),
            make.alarm("qy-gas-005", "gw-qy-g02", "gas_leak", time=now),
        )
        gw1.publish(
            settings.alarm_topic("gw-qy-g01"),
            make.alarm("qy-gas-003", "gw-qy-g01", "gas_leak", time=now),
        )
        wait_for(lambda: intake.routed(), what="gw-qy-g01's own alarm")
        assert [c.data.origin.event_id for c in intake.routed()] == ["t-000002"]
        assert bridge.counts == {"accepted": 1}

        anonymous = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="anon")
        refused = anonymous.connect(*broker) != 0 or _connack(anonymous)
        assert refused, "an anonymous client was let in"
    finally:
        gw1.close()
        bridge.stop()


def _connack(client: mqtt.Client) -> bool:
    """True when the broker refused the login (the CONNACK carries a failure)."""
    result: list[bool] = []
    client.on_connect = lambda c, u, f, reason, p: result.append(reason.is_failure)
    client.loop_start()
    wait_for(lambda: result, 30, "the CONNACK")
    client.loop_stop()
    return result[0]
