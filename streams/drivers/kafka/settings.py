"""Settings of the Kafka shell, shared by the CLI and the container (environment `MINHU_*`).

Every knob says what it trades. The CLI's flags are these fields (`--broker` is `broker`, …);
in a container each can be set as `MINHU_<FIELD>` instead (`MINHU_BROKER=kafka:9092`).
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from streams.topics import DEFAULT_PREFIX

ENV_PREFIX = "MINHU_"


class WorkerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    broker: str = Field(
        "127.0.0.1:9092",
        description="Kafka bootstrap servers, host:port[,host:port]. Any broker of the cluster "
        "will do; the client discovers the rest.",
    )
    topic_prefix: str = Field(
        DEFAULT_PREFIX,
        description="Prefix of every topic name. One cluster can host several cities (or test "
        "runs) side by side by giving each its own prefix.",
    )
    app_id: str = Field(
        "minhu",
        description="Faust application id: the consumer group of the workers and the prefix of "
        "their internal and changelog topics. Workers with the same id share the partitions; a "
        "new id starts from nothing (it replays the intake topics from their start).",
    )
    partitions: int = Field(
        8,
        ge=1,
        description="Partitions of every topic minhu creates. More partitions let more workers "
        "share the load, but each costs broker memory and file handles; the action, rating and "
        "internal topics must all have the same count (they are co-partitioned by case id). "
        "Kafka cannot shrink a topic later, and this broker cannot grow one.",
    )
    store: str = Field(
        "memory://",
        description="Where Faust keeps its tables. 'memory://' rebuilds them from the changelog "
        "topics at start-up (slow with millions of cases, fine for tests); "
        "'rocksdb://' keeps them on local disk (needs rocksdict) and starts fast.",
    )
    data_dir: str = Field(
        "minhu-data",
        description="Folder for the worker's local state (RocksDB tables live in "
        "<data_dir>/<app_id>). Put it on a volume that survives restarts.",
    )
    ledger: str | None = Field(
        None,
        description="SQLAlchemy URL of the ledger (PostgreSQL when several workers share it). "
        "Written in batches when the worker commits its offsets, so that what is committed is "
        "recorded. None: no ledger.",
    )
    metrics_port: int | None = Field(
        9108,
        description="Port of the Prometheus metrics endpoint (/metrics). None: no endpoint.",
    )
    session_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds without a heartbeat before the group drops a worker. Lower "
        "notices a dead worker sooner but risks dropping a busy one.",
    )
    heartbeat_interval: float = Field(
        3.0,
        gt=0,
        description="Seconds between heartbeats; about a third of the session timeout.",
    )
    tick_seconds: float = Field(
        1.0,
        gt=0,
        description="How often SLA deadlines are checked against the wall clock. Lower fires "
        "escalations closer to their deadline at the cost of more wake-ups.",
    )


def settings_from(overrides: dict[str, Any]) -> WorkerSettings:
    """Defaults, then `MINHU_*` environment variables, then explicit overrides (CLI flags)."""
    values: dict[str, Any] = {}
    for name in WorkerSettings.model_fields:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None:
            values[name] = None if env == "" else env
    values.update({k: v for k, v in overrides.items() if v is not None})
    return WorkerSettings.model_validate(values)
