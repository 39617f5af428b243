"""`minhu topics create`: every topic minhu reads or writes, with partitions and retention."""

from __future__ import annotations

from dataclasses import dataclass

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.topics import INTAKE_KINDS, Topics

WEEK_MS = 7 * 24 * 3600 * 1000


def internal_topics(topics: Topics, app_id: str) -> tuple[str, str]:
    """The worker's own topics: intake re-keyed by dedup key, and case input keyed by case id."""
    base = f"{topics.prefix}internal.{app_id}"
    return f"{base}.routing", f"{base}.lifecycle"


@dataclass(frozen=True)
class TopicPlan:
    name: str
    partitions: int
    retention_ms: int


def plan(
    topics: Topics, app_id: str, partitions: int, retention_ms: int, intake_retention_ms: int
) -> list[TopicPlan]:
    """Intake topics keep their history (for replay and analysts); the rest keep
    `retention_ms`. All share one partition count: actions, ratings and the lifecycle topic are
    co-partitioned by case id."""
    intake = {topics.intake(k) for k in INTAKE_KINDS}
    names = [*topics.all(), *internal_topics(topics, app_id)]
    return [
        TopicPlan(n, partitions, intake_retention_ms if n in intake else retention_ms)
        for n in names
    ]


def create_topics(broker: str, plans: list[TopicPlan], timeout_ms: int = 30_000) -> list[str]:
    """Create what is missing; return the names created (existing topics are left alone)."""
    admin = KafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=timeout_ms)
    created = []
    try:
        existing = set(admin.list_topics())
        for p in plans:
            if p.name in existing:
                continue
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            p.name,
                            num_partitions=p.partitions,
                            replication_factor=1,
                            topic_configs={"retention.ms": str(p.retention_ms)},
                        )
                    ]
                )
                created.append(p.name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    return created
