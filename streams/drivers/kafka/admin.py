"""`minhu topics create`: every topic minhu reads or writes, with partitions and retention; and
the worker's start-up check that they agree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.drivers.kafka.security import kafka_python_config
from streams.drivers.kafka.settings import WorkerSettings
from streams.topics import INTAKE_KINDS, Topics

WEEK_MS = 7 * 24 * 3600 * 1000
DEFAULT_PARTITIONS = 8


class TopicsMismatch(SystemExit):
    """The topics a worker would read do not fit together: it refuses to start."""


def forwarded_topic(topics: Topics, app_id: str) -> str:
    """The worker's own topic: records that reached a partition that does not hold their shard
    (a publisher that keyed them otherwise), forwarded to the one that does."""
    return f"{topics.prefix}internal.{app_id}.forwarded"


def changelog_topic(app_id: str) -> str:
    """Faust's changelog of the `buckets` table."""
    return f"{app_id}-buckets-changelog"


@dataclass(frozen=True)
class TopicPlan:
    name: str
    partitions: int
    retention_ms: int
    compact: bool = False


def plan(
    topics: Topics, app_id: str, partitions: int, retention_ms: int, intake_retention_ms: int
) -> list[TopicPlan]:
    """Intake topics keep their history (for replay and analysts); the rest keep
    `retention_ms`; the changelog is compacted. All share one partition count: every topic is
    keyed by shard, and partition p of each holds the same shards."""
    intake = {topics.intake(k) for k in INTAKE_KINDS}
    names = [*topics.all(), forwarded_topic(topics, app_id)]
    return [
        TopicPlan(n, partitions, intake_retention_ms if n in intake else retention_ms)
        for n in names
    ] + [TopicPlan(changelog_topic(app_id), partitions, -1, compact=True)]


def create_topics(
    broker: str, plans: list[TopicPlan], timeout_ms: int = 30_000, **client_config: Any
) -> list[str]:
    """Create what is missing; return the names created (existing topics are left alone).
    `client_config`: more KafkaAdminClient settings (the login: security.kafka_python_config)."""
    admin = KafkaAdminClient(
        bootstrap_servers=broker, request_timeout_ms=timeout_ms, **client_config
    )
    created = []
    try:
        existing = set(admin.list_topics())
        for p in plans:
            if p.name in existing:
                continue
            configs = {"retention.ms": str(p.retention_ms)}
            if p.compact:
                configs["cleanup.policy"] = "compact"
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            p.name,
                            num_partitions=p.partitions,
                            replication_factor=1,
                            topic_configs=configs,
                        )
                    ]
                )
                created.append(p.name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    return created


def partition_counts(broker: str, names: list[str], **client_config: Any) -> dict[str, int | None]:
    """The partition count of each topic, None for a topic that does not exist (or that the
    login may not see). `client_config`: more KafkaConsumer settings (the login)."""
    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None, **client_config)
    try:
        known = consumer.topics()
        return {
            n: (len(consumer.partitions_for_topic(n) or ()) if n in known else None) for n in names
        }
    finally:
        consumer.close()


def partitions_to_use(settings: WorkerSettings) -> int:
    """The partition count of the topics that exist; refuse to start, with one line, when they
    are missing or disagree (with each other, with the changelog, or with `--partitions`)."""
    topics = Topics(settings.topic_prefix)
    wanted = [p.name for p in plan(topics, settings.app_id, 1, 0, 0)]
    counts = partition_counts(settings.broker, wanted, **kafka_python_config(settings))
    missing = [n for n, c in counts.items() if c is None and n != changelog_topic(settings.app_id)]
    if missing:
        raise TopicsMismatch(
            f"minhu worker: topics missing on {settings.broker}: {', '.join(missing)} — create "
            f"them with `minhu topics create --broker {settings.broker} --topic-prefix "
            f"{settings.topic_prefix} --app-id {settings.app_id}`"
        )
    found = {c for c in counts.values() if c is not None}
    if len(found) > 1:
        detail = ", ".join(f"{n}={c}" for n, c in counts.items() if c is not None)
        raise TopicsMismatch(
            f"minhu worker: the topics have different partition counts ({detail}); they must "
            "all have the same (they are co-partitioned by shard)"
        )
    (n,) = found
    if settings.partitions is not None and settings.partitions != n:
        raise TopicsMismatch(
            f"minhu worker: --partitions {settings.partitions}, but the topics have {n}"
        )
    return n
