"""The case lifecycle: acknowledgement, SLA escalation, closure, 谁呼谁评 ratings, reopening.

State machine (docs/lifecycle.md has the diagram and the reasons behind each choice):

    open ──ack──▶ acknowledged ──resolve──▶ resolved ──verify──▶ closed
     │  └──────────────resolve───────────────▲                   │
     ├─ ack deadline passes ─▶ escalated one tier up (open again) │
     ├─ resolve deadline passes, or the unit asks ─▶ escalated    │
     └─ at the street: flagged for hand-off to the district       │
    closed ── caller dissatisfied ─▶ reopened one tier up (open) ◀┘

Like `handlers.routing`, everything here is pure: each function takes a `CaseState` and returns
the events to emit with the new state, or a `Refusal` saying why an action does not apply.
`next_deadline(state)` tells the shell when to call `on_deadline` (bytewax's `notify_at`): the
shell keeps the deadlines in an index ordered by time and never sweeps all cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from handlers.registry import Registry, Role, Unit
from handlers.rules import Rules
from schemas import CaseAttached, CaseRouted, Tier
from schemas.lifecycle import (
    CASE_CLOSED,
    CASE_ESCALATED,
    CASE_REOPENED,
    CASE_UPDATED,
    RATING_RECORDED,
    RATING_REQUESTED,
    CaseAcknowledged,
    CaseClosed,
    CaseEscalated,
    CaseEscalationRequested,
    CaseReopened,
    CaseResolved,
    CaseUpdated,
    CaseVerified,
    EscalationReason,
    LifecycleEvent,
    RatingRecorded,
    RatingRequested,
    RatingSubmitted,
)
from schemas.routing import ErrorKind

LIFECYCLE_SOURCE = "minhu/lifecycle"
Status = Literal["open", "acknowledged", "resolved", "closed"]
CaseAction = CaseAcknowledged | CaseResolved | CaseVerified | CaseEscalationRequested


class PendingRating(NamedTuple):
    rater_id: str
    rater_kind: Literal["caller", "unit"]
    ratee_unit_id: str
    ratee_tier: Tier


class CaseState(NamedTuple):
    """What the lifecycle remembers of one case. `opening` counts handlings: 1, then +1 per
    reopening; ratings and the escalation chain belong to one opening. (A NamedTuple: immutable,
    and `_replace` is several times cheaper than `dataclasses.replace` on the hot path.)"""

    case_id: str
    category: str
    status: Status
    opening: int
    tier: Tier
    unit_id: str
    community_id: str | None
    grid_id: str | None
    ack_sla: timedelta | None
    resolve_sla: timedelta | None
    ack_by: datetime | None
    resolve_by: datetime | None
    caller_id: str | None
    resolved_by: str | None = None
    asked: tuple[tuple[str, str], ...] = ()  # (from unit, to unit): escalations a unit asked for
    pending: tuple[PendingRating, ...] = ()
    rated: tuple[str, ...] = ()  # raters who have rated in this opening (一事一评)
    handoff: bool = False
    seq: int = 0  # emitted events so far: makes every event id unique and stable


@dataclass(frozen=True, slots=True)
class Refusal:
    """An action that does not apply; the shell turns it into a dead letter."""

    kind: ErrorKind
    reason: str


Outcome = tuple[list[LifecycleEvent], CaseState]
VERBS = {
    "minhu.case.acknowledged": "acknowledge",
    "minhu.case.resolved": "resolve",
    "minhu.case.verified": "verify",
    "minhu.case.escalation_requested": "ask to escalate",
}


def _event(cls: Any, type_: str, state: CaseState, at: datetime, data: dict[str, Any]) -> Any:
    return cls.model_validate(
        {
            "specversion": "1.0",
            "id": f"{state.case_id}/{state.seq + 1}/{type_.rsplit('.', 1)[-1]}",
            "source": LIFECYCLE_SOURCE,
            "type": type_,
            "time": at,
            "subject": state.case_id,
            "data": data,
        }
    )


def _emit(
    out: list[LifecycleEvent],
    state: CaseState,
    cls: Any,
    type_: str,
    at: datetime,
    data: dict[str, Any],
) -> CaseState:
    out.append(_event(cls, type_, state, at, data))
    return state._replace(seq=state.seq + 1)


# ---- opening ---------------------------------------------------------------------------------


def open_case(routed: CaseRouted, registry: Registry) -> Outcome:
    """The lifecycle of a freshly routed case. A case routed one tier up because of repeated
    appeals says so with an escalation (reason repeated_appeals), for the escalation funnel."""
    d = routed.data
    at = routed.time
    state = CaseState(
        case_id=d.case_id,
        category=d.category,
        status="closed" if d.status == "closed" else "open",
        opening=1,
        tier=d.tier,
        unit_id=d.unit_id,
        community_id=d.community_id,
        grid_id=d.grid_id,
        ack_sla=d.acknowledge_by - at if d.acknowledge_by else None,
        resolve_sla=d.resolve_by - at if d.resolve_by else None,
        ack_by=d.acknowledge_by,
        resolve_by=d.resolve_by,
        caller_id=d.caller.id if d.caller else None,
        seq=1,  # the routed event itself
    )
    out: list[LifecycleEvent] = []
    if d.raised_from is not None:
        below = registry.unit_id_at(d.raised_from, d.micro_grid_id, d.grid_id, d.community_id)
        if below is not None and below != d.unit_id:
            state = _escalated(
                out,
                state,
                at,
                "repeated_appeals",
                d.raised_from,
                below,
                registry.units[d.unit_id],
                d.acknowledge_by,
                d.resolve_by,
                False,
                f"repeated appeals about this place and category: routed to {d.tier.value} "
                f"instead of {d.raised_from.value}",
            )
    return out, state


def _escalated(
    out: list[LifecycleEvent],
    state: CaseState,
    at: datetime,
    reason: EscalationReason,
    from_tier: Tier,
    from_unit_id: str,
    to: Unit,
    ack_by: datetime | None,
    resolve_by: datetime | None,
    handoff: bool,
    explanation: str,
) -> CaseState:
    """Emit one `minhu.case.escalated`; the state only counts the event."""
    return _emit(
        out,
        state,
        CaseEscalated,
        CASE_ESCALATED,
        at,
        {
            "case_id": state.case_id,
            "reason": reason,
            "from_tier": from_tier,
            "from_unit_id": from_unit_id,
            "to_tier": to.tier,
            "to_unit_id": to.id,
            "to_unit_name": to.name,
            "opening": state.opening,
            "acknowledge_by": ack_by,
            "resolve_by": resolve_by,
            "district_handoff": handoff,
            "explanation": explanation,
        },
    )


# ---- clocks ----------------------------------------------------------------------------------


def next_deadline(state: CaseState) -> datetime | None:
    """When this case next needs waking: its acknowledge deadline while unacknowledged, then its
    resolve deadline; none once resolved, closed or handed off to the district."""
    if state.handoff or state.status in ("resolved", "closed"):
        return None
    times = (
        [state.resolve_by] if state.status == "acknowledged" else [state.ack_by, state.resolve_by]
    )
    due = [t for t in times if t is not None]
    return min(due) if due else None


def on_deadline(state: CaseState, now: datetime, registry: Registry) -> Outcome:
    """Escalate a case whose deadline has passed by `now`; nothing if none has."""
    if state.handoff or state.status in ("resolved", "closed"):
        return [], state
    if state.status == "open" and state.ack_by is not None and state.ack_by <= now:
        return _escalate(state, "ack_timeout", state.ack_by, registry, None)
    if state.resolve_by is not None and state.resolve_by <= now:
        return _escalate(state, "resolve_timeout", state.resolve_by, registry, None)
    return [], state


def _escalate(
    state: CaseState,
    reason: Literal["ack_timeout", "resolve_timeout", "requested"],
    at: datetime,
    registry: Registry,
    note: str | None,
) -> Outcome:
    """One tier up with fresh clocks; at the street, flag for the district instead."""
    out: list[LifecycleEvent] = []
    current = registry.units[state.unit_id]
    why = {
        "ack_timeout": "not acknowledged in time",
        "resolve_timeout": "not resolved in time",
        "requested": f"{current.name} asked to escalate" + (f": {note}" if note else ""),
    }[reason]
    handoff = state.tier is Tier.STREET
    target = current if handoff else registry.ancestor(current, state.tier.raised())
    ack_by = at + state.ack_sla if state.ack_sla and not handoff else None
    resolve_by = at + state.resolve_sla if state.resolve_sla and not handoff else None
    where = (
        "at the street, the top tier: flagged for hand-off to the district (12345)"
        if handoff
        else f"from {current.name} ({state.tier.value}) to {target.name} ({target.tier.value})"
    )
    state = _escalated(
        out,
        state,
        at,
        reason,
        state.tier,
        state.unit_id,
        target,
        ack_by,
        resolve_by,
        handoff,
        f"{why}: {where}",
    )
    if handoff:
        return out, state._replace(handoff=True)
    asked = (*state.asked, (state.unit_id, target.id)) if reason == "requested" else state.asked
    return out, state._replace(
        status="open",
        tier=target.tier,
        unit_id=target.id,
        ack_by=ack_by,
        resolve_by=resolve_by,
        asked=asked,
    )


# ---- actions ---------------------------------------------------------------------------------


def apply_action(
    action: CaseAction, state: CaseState, registry: Registry, rules: Rules
) -> Outcome | Refusal:
    """Apply a responder's action, or say why it does not apply (the case stays as it was)."""
    d = action.data
    at = action.time
    person = registry.people.get(d.actor_id)
    if person is None:
        return Refusal("unauthorized", f"unknown actor '{d.actor_id}': not in the registry")
    verb = VERBS[action.type]
    if isinstance(action, CaseVerified):
        if person.role is not Role.GRID_WORKER:
            return Refusal(
                "unauthorized",
                f"only a grid worker (网格员) may verify; {d.actor_id} is a {person.role.value}",
            )
        home = registry.units[person.unit_id]
        if (state.grid_id is not None and home.id != state.grid_id) or (
            state.grid_id is None and state.community_id not in (None, home.community_id)
        ):
            return Refusal(
                "unauthorized",
                f"{d.actor_id} is a grid worker of {home.id}, not of "
                f"the place of {state.case_id} ({state.grid_id or state.community_id})",
            )
        if state.status != "resolved":
            return Refusal(
                "invalid_transition",
                f"cannot verify {state.case_id}: it is {state.status}, not resolved",
            )
        out: list[LifecycleEvent] = []
        s = _emit(
            out,
            state,
            CaseClosed,
            CASE_CLOSED,
            at,
            {
                "case_id": state.case_id,
                "tier": state.tier,
                "unit_id": state.unit_id,
                "opening": state.opening,
                "category": state.category,
                "resolved_by": state.resolved_by,
                "verified_by": d.actor_id,
                "note": d.note,
            },
        )
        return _request_ratings(out, s._replace(status="closed"), at, registry, rules)

    if person.unit_id != state.unit_id:
        return Refusal(
            "unauthorized",
            f"{d.actor_id} ({person.role.value} of {person.unit_id}) "
            f"may not {verb} {state.case_id}: it is assigned to {state.unit_id}",
        )
    if isinstance(action, CaseAcknowledged):
        if state.status != "open":
            return Refusal(
                "invalid_transition",
                f"cannot acknowledge {state.case_id}: it is already {state.status}",
            )
        return _updated(state, "acknowledged", d.actor_id, at, d.note, state.ack_by)
    if isinstance(action, CaseResolved):
        if state.status not in ("open", "acknowledged"):
            return Refusal(
                "invalid_transition",
                f"cannot resolve {state.case_id}: it is already {state.status}",
            )
        return _updated(state, "resolved", d.actor_id, at, d.note, state.resolve_by)
    # escalation requested (网格内解决不了的提交街道)
    if state.status not in ("open", "acknowledged"):
        return Refusal(
            "invalid_transition", f"cannot escalate {state.case_id}: it is already {state.status}"
        )
    if state.handoff:
        return Refusal(
            "invalid_transition", f"{state.case_id} is already flagged for hand-off to the district"
        )
    return _escalate(state, "requested", at, registry, d.note)


def _updated(
    state: CaseState,
    status: Literal["acknowledged", "resolved"],
    actor: str,
    at: datetime,
    note: str | None,
    deadline: datetime | None,
) -> Outcome:
    out: list[LifecycleEvent] = []
    s = _emit(
        out,
        state,
        CaseUpdated,
        CASE_UPDATED,
        at,
        {
            "case_id": state.case_id,
            "status": status,
            "actor_id": actor,
            "tier": state.tier,
            "unit_id": state.unit_id,
            "opening": state.opening,
            "note": note,
            "within_sla": deadline is None or at <= deadline,
        },
    )
    return out, s._replace(status=status, resolved_by=actor if status == "resolved" else None)


def _request_ratings(
    out: list[LifecycleEvent], state: CaseState, at: datetime, registry: Registry, rules: Rules
) -> Outcome:
    """谁呼谁评、谁应谁评, 下评上: the caller rates the unit that handled the case; each unit
    that asked to escalate rates the unit above that answered."""
    pending: list[PendingRating] = []
    if state.caller_id is not None:
        pending.append(PendingRating(state.caller_id, "caller", state.unit_id, state.tier))
    for lower, upper in state.asked:
        pending.append(PendingRating(lower, "unit", upper, registry.units[upper].tier))
    for p in pending:
        state = _emit(
            out,
            state,
            RatingRequested,
            RATING_REQUESTED,
            at,
            {
                "case_id": state.case_id,
                "opening": state.opening,
                "rater_id": p.rater_id,
                "rater_kind": p.rater_kind,
                "ratee_unit_id": p.ratee_unit_id,
                "ratee_tier": p.ratee_tier,
                "due_by": at + rules.rating_due,
            },
        )
    return out, state._replace(pending=tuple(pending), rated=())


def rate(rating: RatingSubmitted, state: CaseState, registry: Registry) -> Outcome | Refusal:
    """Record a rating; a dissatisfied caller reopens the case one tier up."""
    d = rating.data
    at = rating.time
    if d.rater_id in state.rated:
        return Refusal(
            "already_rated",
            f"{d.rater_id} has already rated {state.case_id} "
            f"(opening {state.opening}): one rating per matter (一事一评)",
        )
    wanted = next((p for p in state.pending if p.rater_id == d.rater_id), None)
    if wanted is None:
        if state.status != "closed":
            return Refusal(
                "invalid_transition",
                f"{state.case_id} is {state.status}: ratings are requested when a case closes",
            )
        return Refusal(
            "unauthorized",
            f"{d.rater_id} is not a caller in the chain of "
            f"{state.case_id}: only whoever called may rate (谁呼谁评)",
        )
    if wanted.rater_kind == "caller" and d.actor_id != d.rater_id:
        return Refusal("unauthorized", f"{d.actor_id} may not rate for the caller {d.rater_id}")
    if wanted.rater_kind == "unit":
        person = registry.people.get(d.actor_id)
        if person is None or person.unit_id != d.rater_id:
            return Refusal(
                "unauthorized",
                f"{d.actor_id} is not a person of {d.rater_id}, so may not rate for it",
            )
    out: list[LifecycleEvent] = []
    s = _emit(
        out,
        state,
        RatingRecorded,
        RATING_RECORDED,
        at,
        {
            "case_id": state.case_id,
            "opening": state.opening,
            "rater_id": d.rater_id,
            "rater_kind": wanted.rater_kind,
            "actor_id": d.actor_id,
            "ratee_unit_id": wanted.ratee_unit_id,
            "ratee_tier": wanted.ratee_tier,
            "category": state.category,
            "verdict": d.verdict,
            "score": d.score,
            "comment": d.comment,
        },
    )
    s = s._replace(rated=(*s.rated, d.rater_id))
    if wanted.rater_kind == "caller" and d.verdict == "dissatisfied":
        more, s = _reopen(s, "dissatisfied", at, registry)
        out.extend(more)
    return out, s


def _reopen(
    state: CaseState,
    reason: Literal["dissatisfied", "alarm_recurred"],
    at: datetime,
    registry: Registry,
) -> Outcome:
    """A new opening: one tier up for a dissatisfied caller (at the street: the street again,
    flagged for the district); the same unit when an alarm recurs."""
    current = registry.units[state.unit_id]
    handoff = False
    if reason == "dissatisfied" and state.tier is not Tier.STREET:
        target = registry.ancestor(current, state.tier.raised())
    else:
        target = current
        handoff = reason == "dissatisfied"
    ack_by = at + state.ack_sla if state.ack_sla else None
    resolve_by = at + state.resolve_sla if state.resolve_sla else None
    why = (
        "the caller was dissatisfied"
        if reason == "dissatisfied"
        else "the alarm went off again after the case was closed"
    )
    out: list[LifecycleEvent] = []
    s = _emit(
        out,
        state,
        CaseReopened,
        CASE_REOPENED,
        at,
        {
            "case_id": state.case_id,
            "reason": reason,
            "opening": state.opening + 1,
            "from_tier": state.tier,
            "from_unit_id": state.unit_id,
            "tier": target.tier,
            "unit_id": target.id,
            "unit_name": target.name,
            "acknowledge_by": ack_by,
            "resolve_by": resolve_by,
            "district_handoff": handoff,
            "explanation": f"{why}: reopened at {target.name} ({target.tier.value})"
            + ("; at the street already, flagged for hand-off to the district" if handoff else ""),
        },
    )
    return out, s._replace(
        status="open",
        opening=state.opening + 1,
        tier=target.tier,
        unit_id=target.id,
        ack_by=ack_by,
        resolve_by=resolve_by,
        resolved_by=None,
        asked=(),
        pending=(),
        rated=(),
        handoff=handoff,
    )


def attach(attached: CaseAttached, state: CaseState, registry: Registry) -> Outcome:
    """A storm alarm attached to this case: if it was closed, the danger is back, so reopen."""
    if state.status != "closed":
        return [], state
    return _reopen(state, "alarm_recurred", attached.time, registry)


# ---- snapshots -------------------------------------------------------------------------------


def state_to_json(state: CaseState) -> dict[str, Any]:
    """A JSON-able snapshot, for a shell that persists case states (the ledger, a Faust table)."""

    def t(x: datetime | None) -> str | None:
        return x.isoformat() if x else None

    def d(x: timedelta | None) -> float | None:
        return x.total_seconds() if x is not None else None

    return {
        "case_id": state.case_id,
        "category": state.category,
        "status": state.status,
        "opening": state.opening,
        "tier": state.tier.value,
        "unit_id": state.unit_id,
        "community_id": state.community_id,
        "grid_id": state.grid_id,
        "ack_sla": d(state.ack_sla),
        "resolve_sla": d(state.resolve_sla),
        "ack_by": t(state.ack_by),
        "resolve_by": t(state.resolve_by),
        "caller_id": state.caller_id,
        "resolved_by": state.resolved_by,
        "asked": [list(a) for a in state.asked],
        "pending": [
            [p.rater_id, p.rater_kind, p.ratee_unit_id, p.ratee_tier.value] for p in state.pending
        ],
        "rated": list(state.rated),
        "handoff": state.handoff,
        "seq": state.seq,
    }


def state_from_json(doc: dict[str, Any]) -> CaseState:
    def t(x: str | None) -> datetime | None:
        return datetime.fromisoformat(x) if x else None

    def d(x: float | None) -> timedelta | None:
        return timedelta(seconds=x) if x is not None else None

    return CaseState(
        case_id=doc["case_id"],
        category=doc["category"],
        status=doc["status"],
        opening=doc["opening"],
        tier=Tier(doc["tier"]),
        unit_id=doc["unit_id"],
        community_id=doc["community_id"],
        grid_id=doc["grid_id"],
        ack_sla=d(doc["ack_sla"]),
        resolve_sla=d(doc["resolve_sla"]),
        ack_by=t(doc["ack_by"]),
        resolve_by=t(doc["resolve_by"]),
        caller_id=doc["caller_id"],
        resolved_by=doc["resolved_by"],
        asked=tuple((a, b) for a, b in doc["asked"]),
        pending=tuple(PendingRating(r, k, u, Tier(tr)) for r, k, u, tr in doc["pending"]),
        rated=tuple(doc["rated"]),
        handoff=doc["handoff"],
        seq=doc["seq"],
    )
