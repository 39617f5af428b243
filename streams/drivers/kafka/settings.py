"""Settings of the Kafka driver, shared by the CLI and the container (environment `MINHU_*`).

Every knob says what it trades. The CLI's flags are these fields (`--broker` is `broker`, …);
in a container each can be set as `MINHU_<FIELD>` instead (`MINHU_BROKER=kafka:9092`).
A secret (`sasl_password`) is not a flag — a flag shows in `ps` and in shell history — and
comes from the environment only (`MINHU_SASL_PASSWORD`).
"""

from __future__ import annotations

import os
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from streams.topics import DEFAULT_PREFIX

ENV_PREFIX = "MINHU_"


class WorkerSettings(BaseModel):
    # Errors never echo the input: a model-level error would print every value, the password too.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    broker: str = Field(
        "127.0.0.1:9092",
        description="Kafka bootstrap servers, host:port[,host:port]. Any broker of the cluster "
        "will do; the client discovers the rest.",
    )
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How the Kafka clients talk to the broker. PLAINTEXT: no login and no "
        "encryption — only for a broker on this machine or a test broker. SASL_PLAINTEXT: a "
        "login (user and password, checked against the broker's ACLs) but traffic in clear — "
        "for a private network such as the compose network. SASL_SSL: a login over TLS — "
        "anywhere else; costs a certificate to manage (`ssl_cafile`).",
    )
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512",
        description="SASL mechanism. SCRAM never sends the password itself and the broker "
        "keeps only a salted hash of it; PLAIN sends the password as is and is only "
        "acceptable under SASL_SSL.",
    )
    sasl_username: str | None = Field(
        None,
        description="SASL user (a Kafka principal, User:<name>): what it may read and write is "
        "decided by the broker's ACLs (docker/README.md lists them).",
    )
    sasl_password: SecretStr | None = Field(
        None,
        description="SASL password. From the environment only (MINHU_SASL_PASSWORD), never a "
        "flag: a flag shows in `ps` and in shell history. Never printed.",
    )
    ssl_cafile: str | None = Field(
        None,
        description="PEM file of the certificate authority that signed the broker's "
        "certificate (SASL_SSL). None: the system's trusted authorities — right for a public "
        "CA, wrong for a private one.",
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
    partitions: int | None = Field(
        None,
        ge=1,
        description="Partitions of every topic minhu creates (`topics create`; default 8). A "
        "worker takes the count from the topics that exist and refuses to start if they "
        "disagree with each other or with this value. More partitions let more workers share "
        "the load, but each costs broker memory and file handles; all of minhu's topics must "
        "have the same count (they are co-partitioned by shard). Kafka cannot shrink a topic "
        "later.",
    )
    guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once",
        description="at_least_once: a worker killed mid-batch re-sends that batch's records "
        "(same ids; minhu's consumers drop the copies) and never loses one. exactly_once: "
        "Faust's transactions make outputs, state and offsets one commit — needs a broker with "
        "transactions (Apache Kafka; not the test broker).",
    )
    clock: Literal["live", "event"] = Field(
        "live",
        description="live: deadlines fire by the events' time and, when the worker has read "
        "everything there is, by the wall clock (within `tick_seconds`). event: only by the "
        "events' time, as `minhu route` does — for a worker replaying history.",
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
        "Written after each batch's records are delivered and before its state is, so that "
        "what the worker has decided is recorded. None: no ledger.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the metrics and health endpoint binds to. 127.0.0.1 keeps it on "
        "this machine; 0.0.0.0 opens it to the network (a Prometheus in another container).",
    )
    metrics_port: int | None = Field(
        9108,
        description="Port of /metrics (Prometheus) and /ready (200 when the worker holds its "
        "partitions and reaches its broker, 503 otherwise). None: no endpoint.",
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
        0.25,
        gt=0,
        description="How often an idle worker looks at the wall clock (deadlines, held "
        "records). Lower fires escalations closer to their deadline at the cost of wake-ups.",
    )
    batch_size: int = Field(
        200,
        ge=1,
        description="Records decided together before their outputs are flushed and their "
        "state written. Larger batches cost fewer round trips (throughput); smaller ones make "
        "each record wait less for the others (latency).",
    )
    batch_seconds: float = Field(
        0.002,
        gt=0,
        description="How long a batch waits to fill before it is decided anyway.",
    )
    decide_budget_ms: float = Field(
        15.0,
        gt=0,
        description="How long the worker decides records of its backlog before it writes "
        "them and lets the life-safety lane in: a critical alarm that arrives while a backlog "
        "is decided waits for about one slice and its writing. Lower cuts that wait, at the "
        "cost of a write (a flush and the state's round trip) per slice. Measured on a "
        "2-core machine with the intake saturated: 15 ms gave the alarm p50 171 ms and p99 "
        "458 ms, 40 ms p50 290–310 ms and p99 0.9–1.5 s, for 5 to 10 per cent less throughput.",
    )
    fetch_wait_ms: int = Field(
        200,
        ge=0,
        description="How long the broker may hold a fetch of Faust's consumer, which reads every "
        "input in its order, when there is nothing new: how long an ordinary record on a quiet "
        "partition may wait to be read. Live critical alarms are read by the life-safety lane's "
        "own consumer (`lane_fetch_wait_ms`), not waiting for this. Lower costs fetch requests: "
        "on a 2-core machine, 5 ms in place of 200 cost the worker 11 to 19 per cent of its "
        "throughput (three A B pairs). Faust's own choice is 1,500 ms.",
    )
    lane_fetch_wait_ms: int = Field(
        5,
        ge=0,
        description="How long the broker may hold a fetch of the life-safety lane's own "
        "consumer (the alarm and urgent partitions) when there is nothing new: the wait of a "
        "gas alarm at night on a quiet partition. Low, on purpose: those partitions are quiet "
        "and their fetches cheap.",
    )
    live_window: float = Field(
        300.0,
        ge=0,
        description="Seconds: a critical alarm (or appeal on the urgent topic) whose time is "
        "within this of the wall clock takes the life-safety lane — decided at once, ahead of "
        "any backlog — instead of waiting for its turn in event time. 0 turns the lane off.",
    )
    broker_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds without reaching the broker after which the worker exits with a "
        "non-zero status (so that its supervisor restarts it); /ready says 503 meanwhile.",
    )

    @model_validator(mode="after")
    def _credentials_fit_the_protocol(self) -> Self:
        if self.security_protocol.startswith("SASL_"):
            missing = [
                f"{ENV_PREFIX}{n.upper()}"
                for n in ("sasl_username", "sasl_password")
                if getattr(self, n) is None
            ]
            if missing:
                raise ValueError(
                    f"security_protocol {self.security_protocol} needs {', '.join(missing)}"
                )
        elif self.sasl_username is not None or self.sasl_password is not None:
            raise ValueError(
                "SASL credentials are set but security_protocol is PLAINTEXT: set "
                f"{ENV_PREFIX}SECURITY_PROTOCOL (SASL_PLAINTEXT or SASL_SSL)"
            )
        if self.sasl_mechanism == "PLAIN" and self.security_protocol == "SASL_PLAINTEXT":
            raise ValueError("sasl_mechanism PLAIN sends the password in clear: use SASL_SSL")
        if self.ssl_cafile is not None and self.security_protocol != "SASL_SSL":
            raise ValueError("ssl_cafile is only used with security_protocol SASL_SSL")
        return self


def settings_from(overrides: dict[str, Any]) -> WorkerSettings:
    """Defaults, then `MINHU_*` environment variables, then explicit overrides (CLI flags)."""
    values: dict[str, Any] = {}
    for name in WorkerSettings.model_fields:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None:
            values[name] = None if env == "" else env
    values.update({k: v for k, v in overrides.items() if v is not None})
    return WorkerSettings.model_validate(values)
