"""What the doors need from a driver, and nothing more: hand in one intake record and hear
what became of it.

The embedded driver decides the record at once (`accepted` means routed, attached or applied;
a refusal carries the engine's reason). The Kafka driver validates and publishes it, and the
workers decide it later: `accepted` there means published, and a duplicate is only known to
the workers (it is counted there, never routed twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Status = Literal["accepted", "duplicate", "refused"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of one record handed in."""

    status: Status
    event_id: str | None = None  # the CloudEvent's id, when it had one
    reason: str | None = None  # why it was refused, in plain words
    case_id: str | None = None  # the case it opened or joined, when the driver knows


class Intake(Protocol):
    """One door into the engine: `submit` a raw CloudEvent (JSON text) read from
    `received_from` (e.g. "http/gw-qy-g01", "mqtt/gw-qy-g01/...")."""

    def submit(self, raw: str | bytes, received_from: str) -> Verdict: ...

    def refuse(self, raw: str | bytes, received_from: str, kind: str, reason: str) -> Verdict:
        """Dead-letter a record the door itself refused (an MQTT payload from a gateway that
        does not own the sensor, one too large), with the reason: nothing is lost silently.
        `kind` is a dead letter's `error_kind`. Returns a `refused` verdict."""
        ...


class NotSent(RuntimeError):
    """The driver could not take the record now (a broker that does not answer): nothing was
    decided, and the same record may be handed in again."""
