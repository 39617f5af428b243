"""The ledger on SQLite and on PostgreSQL (127.0.0.1:5432/test; skipped, saying why, only when
that server is unreachable)."""

from __future__ import annotations

from sqlalchemy import func, select

from handlers.registry import Registry
from handlers.rules import Rules
from streams.embedded import EmbeddedRunner
from streams.ledger import Case, DeadLetter, IntakeRecord, Ledger, RoutingDecision
from streams.synthetic import StreamGenerator
from streams.topics import Record


def _run(url: str, rules: Rules, registry: Registry, lines: list[str]) -> EmbeddedRunner:
    out: list[Record] = []
    runner = EmbeddedRunner(rules, registry, out.append, ledger=Ledger(url, batch_size=250))
    for n, line in enumerate(lines, start=1):
        runner.feed(line, "ledger-test", n)
    runner.close()
    return runner


def test_ledger_holds_every_record_and_resumes(
    ledger_url: str, rules: Rules, registry: Registry
) -> None:
    lines = list(StreamGenerator(registry, seed=11).lines(1200))
    first = _run(ledger_url, rules, registry, lines)
    t = first.tally
    assert t.balanced
    engine = Ledger(ledger_url).engine
    with engine.connect() as conn:

        def count(stmt: object) -> int:
            return int(conn.execute(stmt).scalar_one())  # type: ignore[call-overload]

        assert count(select(func.count()).select_from(IntakeRecord)) == t.received
        outcomes = dict(
            conn.execute(
                select(IntakeRecord.outcome, func.count()).group_by(IntakeRecord.outcome)
            ).all()
        )
        assert outcomes == {
            "routed": t.cases,
            "attached": t.attached,
            "rejected": t.rejected,
            "duplicate": t.duplicates,
        }
        assert count(select(func.count()).select_from(Case)) == t.cases
        assert count(select(func.count()).select_from(DeadLetter)) == t.rejected
        assert count(select(func.count()).select_from(RoutingDecision)) == t.cases + t.attached
        # The ledger keeps personal data in clear (dispatch records mask it).
        phone = conn.execute(
            select(Case.caller_phone).where(Case.kind == "appeal").limit(1)
        ).scalar_one()
        assert phone is not None and "*" not in phone
        tiers = {r[0] for r in conn.execute(select(Case.tier).distinct())}
        assert tiers == {"micro_grid", "grid", "community", "street"}
    engine.dispose()

    # A second run over the same input resumes from the ledger: everything is a duplicate,
    # except the records that never parsed (they have no identity to recognise).
    second = _run(ledger_url, rules, registry, lines)
    parse_failures = sum(
        1
        for k, n in t.by_rejection.items()
        if k in ("malformed_json", "invalid_event", "unknown_type")
        for _ in range(n)
    )
    assert second.tally.cases == 0 and second.tally.attached == 0
    assert second.tally.rejected == parse_failures
    assert second.tally.duplicates == t.received - parse_failures


def test_lifecycle_resumes_from_the_ledger(
    ledger_url: str, rules: Rules, registry: Registry
) -> None:
    """The story fed in two runs over one ledger gives the records of one run: case states,
    routing states and seen ids come back from the ledger."""
    from pathlib import Path

    story = (
        (Path(__file__).resolve().parents[2] / "examples" / "story.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    whole: list[Record] = []
    one = EmbeddedRunner(rules, registry, whole.append)
    for n, line in enumerate(story, start=1):
        one.feed(line, "story", n)

    halves: list[Record] = []
    cut = len(story) // 2
    for part in (story[:cut], story[cut:]):
        runner = EmbeddedRunner(rules, registry, halves.append, ledger=Ledger(ledger_url))
        for line in part:
            runner.feed(line, "story", story.index(line) + 1)
        runner.close()
    assert [r.to_json_line() for r in halves] == [r.to_json_line() for r in whole]

    engine = Ledger(ledger_url).engine
    with engine.connect() as conn:
        status = dict(conn.execute(select(Case.case_id, Case.status)).all())
    engine.dispose()
    assert set(status.values()) == {"closed"}
