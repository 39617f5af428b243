"""A bucket's stored text is the wire model's own: `dump_bucket` builds it from plain dicts
(handlers/state.py), and must write exactly what `BucketSnapshot.model_dump_json` writes, so
that a field added to the snapshot and forgotten there, or written in another form, is caught."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from handlers.engine import Engine
from handlers.ids import Identity
from handlers.lifecycle import CaseState, ExtensionAsk, PendingRating
from handlers.registry import Registry
from handlers.routing import KeyState, Storm
from handlers.rules import Rules
from handlers.state import Applied, Bucket, DictStore, Position, dump_bucket, load_bucket
from schemas import Tier
from schemas.state import BucketSnapshot
from streams.bench.core import _demo_history

CST = timezone(timedelta(hours=8))


def as_the_model_writes(raw: bytes) -> bytes:
    return BucketSnapshot.model_validate_json(raw).model_dump_json().encode()


def every_field_set() -> Bucket:
    """A bucket whose case has every optional field away from its default."""
    t = datetime(2026, 11, 3, 9, 30, 15, 250000, tzinfo=CST)
    case = CaseState(
        case_id="case-abc-1",
        category="gas",
        status="resolved",
        opening=2,
        tier=Tier.COMMUNITY,
        unit_id="qingyuan",
        community_id="qingyuan",
        grid_id="qy-g01",
        ack_sla=timedelta(minutes=5),
        resolve_sla=timedelta(hours=2, seconds=0.5),
        ack_by=t,
        resolve_by=t + timedelta(hours=2),
        caller_id="r-1",
        resolved_by="p0001",
        asked=(("qy-g01", "qingyuan"),),
        pending=(PendingRating("r-1", "caller", "qingyuan", Tier.COMMUNITY),),
        rated=("p0002",),
        handoff=True,
        seq=7,
        closed_at=t.astimezone(UTC),
        ceiling=Tier.STREET,
        notified=("guanghua-street",),
        resolved_at=t + timedelta(minutes=40),
        moves=(("qy-g01", "qingyuan", t, "escalated: not acknowledged in time"),),
        returnable=("qingyuan", 2),
        came_from="qy-g01",
        extension_pending=ExtensionAsk("qingyuan", 2, timedelta(hours=1.5), "p0003"),
        extension_opening=2,
        caller_name="张三",
        supervisions=1,
        stopped=True,
    )
    ident: Identity = ("/hotline", "call-1")
    return Bucket(
        keys={
            "alarm|s-1|gas_leak": KeyState(
                (t, t + timedelta(seconds=3)),
                Storm("case-abc-1", "gas-storm", t, t + timedelta(minutes=1), 3),
            ),
            "appeal|b-1|noise": KeyState((t,), None),
        },
        cases={case.case_id: case},
        applied={
            ident: Applied(Position("minhu.intake.appeal/2", 41), t),
            ("/hotline", "call-2"): Applied(Position("history.jsonl", None), t),
        },
    )


def test_every_field_is_written_as_the_snapshot_model_writes_it() -> None:
    bucket = every_field_set()
    raw = dump_bucket(bucket)
    assert raw == as_the_model_writes(raw)
    assert load_bucket(raw) == bucket


def test_the_demo_state_is_written_as_the_snapshot_model_writes_it(
    rules: Rules, registry: Registry
) -> None:
    engine = Engine(rules, registry, DictStore())
    written = 0
    for n, line in enumerate(_demo_history(rules, registry, 600)):
        for bucket in engine.feed(line, Position("demo", n)).written.values():
            if bucket is not None:
                raw = dump_bucket(bucket)
                assert raw == as_the_model_writes(raw)
                written += 1
    assert written > 1000
