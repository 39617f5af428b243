"""Identities and ids: what makes an event unique, and how case ids are derived.

- An event's **identity** is the pair (`source`, `id`) (CloudEvents); a repeat of the pair is a
  duplicate. It is kept as a pair, never joined into one string, so that no two different
  pairs can look alike.
- A case's **shard** is the grid of its place (the community, or the street, when that is all
  that is known). Everything a case's life needs — its repeat window, its alarm storm, its
  lifecycle — lives in that shard, so one shard is decided in one place, in order. On Kafka a
  shard is a partition key.
- A case's **bucket** holds the routing state of one dedup key (same place and category, or
  same sensor and alarm type) and the cases that key opened. A bucket changes as one unit.
- A **case id** names its bucket, so that an action that carries only the case id finds the
  case's bucket and shard:

      case-<shard:4 hex><dedup key:8 hex>-<identity:10 hex>
      case-3f2a9c01b7e4-5d0c2e9a41

  `<shard>` digests the shard's unit id, `<dedup key>` the dedup key, `<identity>` the
  opening event's (source, id) — each with BLAKE2b. The same event always gives the same case
  id, on every worker and in every replay. Two shards or keys whose digests collide simply
  share a partition or a bucket (a bucket keeps each key's state apart), so a collision costs
  nothing but balance.
"""

from __future__ import annotations

import hashlib
import re

Identity = tuple[str, str]  # (source, id)

SHARD_HEX = 4
KEY_HEX = 8
CASE_HEX = 10
_CASE_ID = re.compile(rf"^case-([0-9a-f]{{{SHARD_HEX + KEY_HEX}}})-[0-9a-f]{{{CASE_HEX}}}$")


def _digest(text: str, hex_chars: int) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()[
        :hex_chars
    ]


def identity_text(identity: Identity) -> str:
    """An unambiguous text for a digest: the two parts with their lengths."""
    source, event_id = identity
    return f"{len(source)}:{source}{len(event_id)}:{event_id}"


def shard_token(shard: str) -> str:
    """The partition key of a shard (a unit id): 4 hex digits."""
    return _digest(shard, SHARD_HEX)


def bucket_key(shard: str, dedup_key: str) -> str:
    """The bucket of a dedup key in its shard: 12 hex digits, the shard's token first."""
    return shard_token(shard) + _digest(dedup_key, KEY_HEX)


def case_id_for(bucket: str, identity: Identity, attempt: int = 0) -> str:
    """The case an intake event opens. `attempt` > 0 only if the first id is already taken in
    its bucket by another event (a 40-bit collision: practically never)."""
    salt = f"#{attempt}" if attempt else ""
    return f"case-{bucket}-{_digest(identity_text(identity) + salt, CASE_HEX)}"


def bucket_of_case(case_id: str) -> str | None:
    """The bucket a case id names, or None if it is not a minhu case id."""
    m = _CASE_ID.match(case_id)
    return m.group(1) if m else None


def shard_token_of_case(case_id: str) -> str | None:
    bucket = bucket_of_case(case_id)
    return bucket[:SHARD_HEX] if bucket else None
