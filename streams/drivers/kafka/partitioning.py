"""Which partition holds which shard: the same answer in the publisher and the worker.

Every input is keyed by its shard token (handlers/ids.py): an intake event by the token of the
place it is about, an action or a rating by the token in its case id. Kafka's default
partitioner (murmur2 of the key, as in the Java client, kafka-python and aiokafka) puts a token
on `partition_of(token, n)`, and a worker's engine for that partition holds that shard's
buckets. Records that belong to no shard (a record that did not parse, an unknown sensor) are
decided wherever they land, in that partition's `orphans` bucket.
"""

from __future__ import annotations

from kafka.partitioner.default import murmur2

ORPHANS = "orphans."
POSITIONS = "~positions."  # not a bucket: where a partition's inputs stand (worker.py)


def partition_of(token: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key `token`."""
    return int(murmur2(token.encode()) & 0x7FFFFFFF) % partitions


def orphans_key(partition: int) -> str:
    return f"{ORPHANS}{partition}"


def positions_key(partition: int) -> str:
    return f"{POSITIONS}{partition}"


def partition_of_bucket(key: str, partitions: int) -> int:
    """The partition a bucket lives in: its shard's, or the one its orphans key names."""
    if key.startswith(ORPHANS):
        return int(key[len(ORPHANS) :])
    return partition_of(key[:4], partitions)
