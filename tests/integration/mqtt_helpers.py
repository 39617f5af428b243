"""Test and benchmark helpers for the MQTT bridge: an `Intake` over the real embedded runner
(not a product intake: `minhu serve` builds that), a paho publisher, and waiting for a
condition with a generous timeout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from handlers.intake import kept, rejection
from handlers.registry import Registry
from handlers.rules import Rules
from schemas import CaseAttached, CaseRouted, CloudEvent, EventRejected
from schemas.routing import ErrorKind
from streams.drivers.embedded import EmbeddedRunner
from streams.service.ports import Verdict

MOSQUITTO = ("127.0.0.1", 1883)


def mosquitto_down() -> str | None:
    """Why the local Mosquitto cannot be used, or None."""
    try:
        with socket.create_connection(MOSQUITTO, timeout=3):
            return None
    except OSError as err:
        return f"no MQTT broker at {MOSQUITTO[0]}:{MOSQUITTO[1]} ({err})"


class RunnerIntake:
    """`Intake` over `EmbeddedRunner`: feed the record, and tell from what it emitted and how
    its tally moved what became of it. `decided` gets each verdict as it is given."""

    def __init__(
        self,
        rules: Rules,
        registry: Registry,
        decided: Callable[[Verdict], None] | None = None,
    ) -> None:
        self.outputs: list[CloudEvent] = []
        self._fresh: list[CloudEvent] = []
        self.runner = EmbeddedRunner(
            rules, registry, clock=lambda: datetime.now(UTC), on_event=self._on_event
        )
        self.decided = decided
        self.lock = threading.Lock()

    def _on_event(self, event: CloudEvent) -> None:
        self.outputs.append(event)
        self._fresh.append(event)

    def submit(self, raw: str | bytes, received_from: str) -> Verdict:
        with self.lock:
            self._fresh.clear()
            duplicates = self.runner.tally.duplicates
            self.runner.feed(raw, received_from)
            verdict = self._verdict(self.runner.tally.duplicates > duplicates)
        if self.decided is not None:
            self.decided(verdict)
        return verdict

    def _verdict(self, duplicate: bool) -> Verdict:
        for e in self._fresh:
            if isinstance(e, EventRejected):
                return Verdict("refused", e.data.event_id, e.data.reason)
            if isinstance(e, CaseRouted | CaseAttached):
                return Verdict("accepted", e.data.origin.event_id, case_id=e.data.case_id)
        return Verdict("duplicate" if duplicate else "accepted")

    def refuse(self, raw: str | bytes, received_from: str, kind: str, reason: str) -> Verdict:
        kind_: ErrorKind = kind  # type: ignore[assignment]
        dead = rejection(
            kind_, reason, [], kept(raw), received_from, None, datetime.now(UTC), None, None
        )
        with self.lock:
            self.runner._publish(dead)  # the runner's output path: on_event, then the sink
        verdict = Verdict("refused", reason=reason)
        if self.decided is not None:
            self.decided(verdict)
        return verdict

    def dead_letters(self) -> list[EventRejected]:
        with self.lock:
            return [e for e in self.outputs if isinstance(e, EventRejected)]

    def routed(self) -> list[CaseRouted]:
        with self.lock:
            return [e for e in self.outputs if isinstance(e, CaseRouted)]


class Gateway:
    """A real MQTT client publishing as a gateway would (QoS 1, waits for the PUBACK)."""

    def __init__(
        self,
        client_id: str,
        at: tuple[str, int] = MOSQUITTO,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if login is not None:
            self.client.username_pw_set(*login)
        self.client.connect(*at)
        self.client.loop_start()

    def publish(self, topic: str, payload: str | bytes, timeout: float = 30) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout)
        assert info.is_published(), f"the broker did not acknowledge a message on {topic}"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(condition: Callable[[], object], timeout: float = 30, what: str = "") -> None:
    """Wait until `condition()` is true; generous by default, for a loaded machine."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.02)
