"""Topic names, and which topics each output event goes to.

With the default prefix `minhu.`:

| topic                        | carries                                                    |
|------------------------------|------------------------------------------------------------|
| minhu.intake.appeal          | minhu.appeal.reported (residents' appeals, every channel)  |
| minhu.intake.alarm           | minhu.alarm.raised (sensor gateways)                       |
| minhu.intake.urgent          | appeals and patrol reports about life or property (救命…)  |
| minhu.intake.patrol          | minhu.patrol.reported (grid patrols)                       |
| minhu.intake.action          | acknowledged, resolved, verified, escalation_requested,    |
|                              | reassign_requested, extension_requested/_decided           |
| minhu.intake.rating          | minhu.rating.submitted (谁呼谁评)                           |
| minhu.dispatch.micro_grid    | cases for micro-grid workers                               |
| minhu.dispatch.grid          | cases for grid workers and grid heads                      |
| minhu.dispatch.community     | cases for community operations rooms                       |
| minhu.dispatch.street        | cases for the street operations centre                     |
| minhu.closures               | minhu.case.closed                                          |
| minhu.ratings                | minhu.rating.requested, minhu.rating.recorded              |
| minhu.handoff.district       | escalations and reopenings flagged for the district (12345)|
| minhu.deadletter             | minhu.event.rejected: every refused record, with reason    |

A routed case goes to the dispatch topic of its tier, and also to the dispatch topic of each
notified unit's tier (a gas leak goes to grid and community). So does everything after it about
the open case — an attached alarm, an update — to the tier of the case's owner *now* (it may have
been escalated since) and of each notified unit the record names; an escalation, reopening or
reassignment also to the tier it leaves, a supervision (督办) to the supervising unit's tier, and
an extension asked or answered to the case's tier and the deciding tier above. Records are keyed
by case id, so one case's records stay in order on one partition; dead letters by their own id
(a digest), never by the refused record's id, which may be any text.

Every intake topic is keyed by shard (handlers/ids.py): minhu's publishers put appeals and
patrol reports about life or property (severity critical) on the urgent topic, which workers
read ahead of any backlog, like the alarm topic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from schemas import CaseAttached, CaseRouted, CloudEvent, Tier
from schemas.lifecycle import (
    CaseClosed,
    CaseEscalated,
    CaseExtensionAnswered,
    CaseExtensionAsked,
    CaseReassigned,
    CaseReopened,
    CaseUpdated,
    RatingRecorded,
    RatingRequested,
)

DEFAULT_PREFIX = "minhu."
INTAKE_KINDS = ("appeal", "alarm", "patrol", "urgent", "action", "rating")
# Every record is a CloudEvent in structured mode.
CE_HEADERS = [("content-type", b"application/cloudevents+json; charset=utf-8")]


class Serialized:
    """An event's JSON, made once (when first asked for) for all the records that carry it: a
    case routed to one tier and told to another is two records of one event."""

    __slots__ = ("_event", "_json")

    def __init__(self, event: CloudEvent) -> None:
        self._event = event
        self._json: str | None = None

    def json(self) -> str:
        if self._json is None:
            self._json = self._event.model_dump_json(exclude_none=True)
        return self._json


@dataclass(frozen=True, slots=True)
class Record:
    """One record as it would be produced on Kafka."""

    topic: str
    key: str | None
    value: CloudEvent
    serialized: Serialized | None = field(default=None, compare=False, repr=False)

    def value_json(self) -> str:
        """The value as JSON (None fields left out), shared with the event's other records."""
        if self.serialized is not None:
            return self.serialized.json()
        return self.value.model_dump_json(exclude_none=True)

    def to_json_line(self) -> str:
        """`{"topic": ..., "key": ..., "value": <CloudEvent>}`; byte-stable for the same value."""
        key = json.dumps(self.key, ensure_ascii=False)
        return f'{{"topic":{json.dumps(self.topic)},"key":{key},"value":{self.value_json()}}}'


@dataclass(frozen=True)
class Topics:
    prefix: str = DEFAULT_PREFIX

    def intake(self, kind: str) -> str:
        return f"{self.prefix}intake.{kind}"

    def dispatch(self, tier: Tier) -> str:
        return f"{self.prefix}dispatch.{tier.value}"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}deadletter"

    @property
    def closures(self) -> str:
        return f"{self.prefix}closures"

    @property
    def ratings(self) -> str:
        return f"{self.prefix}ratings"

    @property
    def district(self) -> str:
        return f"{self.prefix}handoff.district"

    def all(self) -> list[str]:
        return [
            *(self.intake(k) for k in INTAKE_KINDS),
            *(self.dispatch(t) for t in Tier),
            self.closures,
            self.ratings,
            self.district,
            self.deadletter,
        ]

    def records_for(self, event: CloudEvent) -> list[Record]:
        """Where an output event is published: its records share one serialization."""
        records = self._records_for(event)
        if len(records) == 1:
            return records
        serialized = Serialized(event)
        return [Record(r.topic, r.key, r.value, serialized) for r in records]

    def _records_for(self, event: CloudEvent) -> list[Record]:
        if isinstance(event, CaseRouted):
            tiers = dict.fromkeys([event.data.tier, *(n.tier for n in event.data.notified)])
            return [Record(self.dispatch(t), event.data.case_id, event) for t in tiers]
        if isinstance(event, CaseAttached | CaseUpdated):
            told = [n.tier for n in event.data.notified or ()]
            tiers = dict.fromkeys([event.data.tier, *told])
            return [Record(self.dispatch(t), event.data.case_id, event) for t in tiers]
        if isinstance(event, CaseEscalated):
            d = event.data
            also = [
                n.tier for n in (*(d.notified or ()), *([d.supervisor] if d.supervisor else []))
            ]
            return self._moved(event, d.case_id, d.from_tier, d.to_tier, d.district_handoff, also)
        if isinstance(event, CaseReopened):
            r = event.data
            also = [n.tier for n in r.notified or ()]
            return self._moved(event, r.case_id, r.from_tier, r.tier, r.district_handoff, also)
        if isinstance(event, CaseReassigned):
            g = event.data
            return self._moved(event, g.case_id, g.from_tier, g.to_tier, False, [])
        if isinstance(event, CaseExtensionAsked | CaseExtensionAnswered):
            x = event.data
            return self._moved(event, x.case_id, x.tier, x.decider_tier, False, [])
        if isinstance(event, CaseClosed):
            return [Record(self.closures, event.data.case_id, event)]
        if isinstance(event, RatingRequested | RatingRecorded):
            return [Record(self.ratings, event.data.case_id, event)]
        # A dead letter is keyed by its own id, a digest (of the refused event's source and id,
        # or of where the record was read and what it said), never by what the sender wrote:
        # a refused record's `id` may be any text ("王建华 13980012345 …"). Its value keeps it.
        return [Record(self.deadletter, event.id, event)]

    def _moved(
        self,
        event: CloudEvent,
        case_id: str,
        src: Tier,
        dst: Tier,
        handoff: bool,
        also: list[Tier],
    ) -> list[Record]:
        """A case leaving one tier for another: both tiers hear of it, the tiers of the units
        told (notified, supervising), and the district too when it is flagged for hand-off."""
        tiers = dict.fromkeys([src, dst, *also])
        out = [Record(self.dispatch(t), case_id, event) for t in tiers]
        if handoff:
            out.append(Record(self.district, case_id, event))
        return out
