"""The case lifecycle: acknowledgement, SLA escalation, closure, 谁呼谁评 ratings, reopening.

    open ──ack──▶ acknowledged ──resolve──▶ resolved ──verify──▶ closed
     │  └──────────────resolve───────────────▲                   │
     ├─ ack deadline passes ─▶ escalated one tier up (open again) │
     ├─ resolve deadline passes, or the unit asks ─▶ escalated    │
     ├─ at the matter's ceiling: 督办 (supervised), stays, fresh clocks (again: clocks stop)
     └─ at the street: flagged for hand-off to the district       │
    closed ── caller dissatisfied ─▶ reopened one tier up (open) ◀┘

What an action may do is one table, `TRANSITIONS` (action, status → next status), with who may
do it beside it in `GUARDS`; everything not in the table is refused with the reason. The
functions are pure: each takes a `CaseState` and returns the events to emit with the new state,
or a `Refusal`. `next_deadline(state)` tells the engine when to wake the case (bytewax's
`notify_at`). docs/lifecycle.md has the reasons behind each choice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel

from handlers.privacy import mask_caller_in, pseudonym
from handlers.registry import Person, Registry, Role, Unit
from handlers.routing import ROUTER_SOURCE, StormAlarm
from handlers.rules import Rules
from schemas import (
    CASE_ATTACHED,
    CaseAttached,
    CaseAttachedData,
    CaseRouted,
    Notified,
    Origin,
    Severity,
    Tier,
)
from schemas.lifecycle import (
    CASE_CLOSED,
    CASE_ESCALATED,
    CASE_EXTENSION_ANSWERED,
    CASE_EXTENSION_ASKED,
    CASE_REASSIGNED,
    CASE_REOPENED,
    CASE_UPDATED,
    RATING_RECORDED,
    RATING_REQUESTED,
    CaseAcknowledged,
    CaseClosed,
    CaseClosedData,
    CaseEscalated,
    CaseEscalatedData,
    CaseEscalationRequested,
    CaseExtensionAnswered,
    CaseExtensionAnsweredData,
    CaseExtensionAsked,
    CaseExtensionAskedData,
    CaseReassigned,
    CaseReassignedData,
    CaseReopened,
    CaseReopenedData,
    CaseResolved,
    CaseUpdated,
    CaseUpdatedData,
    CaseVerified,
    EscalationReason,
    LifecycleEvent,
    RatingRecorded,
    RatingRecordedData,
    RatingRequested,
    RatingRequestedData,
    RatingSubmitted,
)
from schemas.routing import ErrorKind

LIFECYCLE_SOURCE = "minhu/lifecycle"
Status = Literal["open", "acknowledged", "resolved", "closed"]
CaseAction = CaseAcknowledged | CaseResolved | CaseVerified | CaseEscalationRequested
Verb = Literal["acknowledge", "resolve", "verify", "escalate"]


class PendingRating(NamedTuple):
    rater_id: str
    rater_kind: Literal["caller", "unit"]
    ratee_unit_id: str
    ratee_tier: Tier


class ExtensionAsk(NamedTuple):
    """An extension asked and not yet decided: by whom, for which assignment, how much."""

    unit_id: str
    opening: int
    extra: timedelta
    actor_id: str


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
    closed_at: datetime | None = None  # when it last closed: it is forgotten after rating_due
    ceiling: Tier | None = None  # the matter's ceiling (琐事不出网格…); None: the street
    notified: tuple[str, ...] = ()  # units told of the case besides its owner (at routing)
    resolved_at: datetime | None = None  # when it was last resolved
    # (from unit, to unit, at, why): where the case went and why, to tell a unit that acts on it
    # after it left. `why` of a move that is no escalation begins with its verb and ': '
    # ('forwarded: …', 'returned: …', 'reopened: …'; `_moved_on`).
    moves: tuple[tuple[str, str, datetime, str], ...] = ()
    # -- reassignment and extensions: handlers/desks.py --
    # (unit, opening) of the current assignment when it began by routing or reassignment: only
    # such an assignment may be returned (退单); one escalated or reopened to a unit may not.
    returnable: tuple[str, int] | None = None
    came_from: str | None = None  # the desk a return goes back to (None: the desk above)
    extension_pending: ExtensionAsk | None = None  # asked, not yet decided
    extension_opening: int = 0  # the opening in which an extension was asked (once each)
    # The caller's name in clear, only to mask it in notes and comments (given to open_case)
    caller_name: str | None = None
    supervisions: int = 0  # 督办 so far at the ceiling: the second stops the clocks
    # The clocks stopped (the second 督办): `ack_by` and `resolve_by` stay, to judge the unit's
    # acknowledgement and resolution by (late is late), but no longer fire. Fresh clocks (an
    # escalation, a reassignment, a reopening) start them again.
    stopped: bool = False


@dataclass(frozen=True, slots=True)
class Refusal:
    """An action that does not apply; the engine turns it into a dead letter."""

    kind: ErrorKind
    reason: str


Outcome = tuple[list[LifecycleEvent], CaseState]

# ---- the transition table ---------------------------------------------------------------------

VERB_OF: Mapping[str, Verb] = {
    "minhu.case.acknowledged": "acknowledge",
    "minhu.case.resolved": "resolve",
    "minhu.case.verified": "verify",
    "minhu.case.escalation_requested": "escalate",
}
WORDS: Mapping[Verb, str] = {
    "acknowledge": "acknowledge",
    "resolve": "resolve",
    "verify": "verify",
    "escalate": "ask to escalate",
}

# (action, status) -> the status it leads to. Anything else is refused (invalid_transition).
TRANSITIONS: Mapping[tuple[Verb, Status], Status] = {
    ("acknowledge", "open"): "acknowledged",
    ("resolve", "open"): "resolved",  # resolving is an implicit acknowledgement
    ("resolve", "acknowledged"): "resolved",
    ("verify", "resolved"): "closed",  # 网格员实地核查: verification closes the case
    ("escalate", "open"): "open",  # one tier up, open again with fresh clocks
    ("escalate", "acknowledged"): "open",
}


MOVE_VERBS = ("forwarded", "returned", "reopened")  # moves that are no escalation


def _moved_on(unit_id: str, state: CaseState, registry: Registry) -> str:
    """Where and when the case went since the unit `unit_id` last held it ('the case was
    forwarded to … at …; '), or '' if it never held it: what a refusal of a late action says
    before 'it is assigned to …'."""
    moved = next((m for m in reversed(state.moves) if m[0] == unit_id), None)
    if moved is None:
        return ""
    _, to, when, how = moved
    verb, _, why = how.partition(": ")
    if verb not in MOVE_VERBS:
        verb, why = "escalated", how
    went = "reopened and sent" if verb == "reopened" else verb
    return (
        f"the case was {went} to {registry.units[to].name} ({to}) at {when.isoformat()} ({why}); "
    )


def _assigned(person: Person, state: CaseState, verb: Verb, registry: Registry) -> str | None:
    if person.unit_id != state.unit_id:
        why = _moved_on(person.unit_id, state, registry)
        return (
            f"{person.id} ({person.role.value} of {person.unit_id}) "
            f"may not {WORDS[verb]} {state.case_id}: {why}it is assigned to {state.unit_id}"
        )
    return None


def _grid_worker_of_place(
    person: Person, state: CaseState, verb: Verb, registry: Registry
) -> str | None:
    if person.role is not Role.GRID_WORKER:
        return f"only a grid worker (网格员) may verify; {person.id} is a {person.role.value}"
    home = registry.units[person.unit_id]
    if (state.grid_id is not None and home.id != state.grid_id) or (
        state.grid_id is None and state.community_id not in (None, home.community_id)
    ):
        return (
            f"{person.id} is a grid worker of {home.id}, not of the place of "
            f"{state.case_id} ({state.grid_id or state.community_id})"
        )
    return None


Guard = Callable[[Person, CaseState, Verb, Registry], str | None]
# Who may do each action: a guard returns the reason for refusing (unauthorized), or None.
GUARDS: Mapping[Verb, Guard] = {
    "acknowledge": _assigned,
    "resolve": _assigned,
    "verify": _grid_worker_of_place,
    "escalate": _assigned,
}


def _not_allowed(verb: Verb, state: CaseState) -> str:
    if verb == "verify":
        return f"cannot verify {state.case_id}: it is {state.status}, not resolved"
    return f"cannot {'escalate' if verb == 'escalate' else verb} {state.case_id}: it is already {state.status}"


# ---- typed event constructors ---------------------------------------------------------------


class _Emitter:
    """Numbers a case's events (`<case>/<n>/<kind>`): ids are stable across runs and drivers."""

    def __init__(self, state: CaseState) -> None:
        self.state = state
        self.out: list[LifecycleEvent] = []

    def _next(self, kind: str) -> tuple[str, CaseState]:
        s = self.state
        self.state = s._replace(seq=s.seq + 1)
        return f"{s.case_id}/{s.seq + 1}/{kind}", self.state

    def _add(
        self, event: type[LifecycleEvent], type_: str, kind: str, at: datetime, data: BaseModel
    ) -> None:
        eid, s = self._next(kind)
        envelope: dict[str, Any] = {
            "specversion": "1.0",
            "id": eid,
            "source": LIFECYCLE_SOURCE,
            "type": type_,
            "time": at,
            "subject": s.case_id,
            "datacontenttype": "application/json",
            "data": data,
        }
        self.out.append(event.model_construct(**envelope))

    def updated(self, at: datetime, data: CaseUpdatedData) -> None:
        self._add(CaseUpdated, CASE_UPDATED, "updated", at, data)

    def escalated(self, at: datetime, data: CaseEscalatedData) -> None:
        self._add(CaseEscalated, CASE_ESCALATED, "escalated", at, data)

    def closed(self, at: datetime, data: CaseClosedData) -> None:
        self._add(CaseClosed, CASE_CLOSED, "closed", at, data)

    def reopened(self, at: datetime, data: CaseReopenedData) -> None:
        self._add(CaseReopened, CASE_REOPENED, "reopened", at, data)

    def rating_requested(self, at: datetime, data: RatingRequestedData) -> None:
        self._add(RatingRequested, RATING_REQUESTED, "requested", at, data)

    def rating_recorded(self, at: datetime, data: RatingRecordedData) -> None:
        self._add(RatingRecorded, RATING_RECORDED, "recorded", at, data)

    def reassigned(self, at: datetime, data: CaseReassignedData) -> None:
        self._add(CaseReassigned, CASE_REASSIGNED, "reassigned", at, data)

    def extension_asked(self, at: datetime, data: CaseExtensionAskedData) -> None:
        self._add(CaseExtensionAsked, CASE_EXTENSION_ASKED, "extension_asked", at, data)

    def extension_answered(self, at: datetime, data: CaseExtensionAnsweredData) -> None:
        self._add(CaseExtensionAnswered, CASE_EXTENSION_ANSWERED, "extension_answered", at, data)

    def done(self, state: CaseState) -> Outcome:
        """The events, and `state` (derived from `self.state`) as the case's new state."""
        return self.out, state


# ---- opening ---------------------------------------------------------------------------------


def open_case(
    routed: CaseRouted, registry: Registry, rules: Rules, caller_name: str | None = None
) -> Outcome:
    """The lifecycle of a freshly routed case. A case routed one tier up because of repeated
    appeals says so with an escalation (reason repeated_appeals), for the escalation funnel.
    The case keeps its severity's ceiling: deadlines never move it past that tier.
    `caller_name` is the caller's name in clear, which the case keeps to mask it in notes."""
    d = routed.data
    at = routed.time
    closed = d.status == "closed"
    state = CaseState(
        case_id=d.case_id,
        category=d.category,
        status="closed" if closed else "open",
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
        closed_at=at if closed else None,
        ceiling=rules.ceiling(d.severity),
        notified=tuple(n.unit_id for n in d.notified),
        returnable=(d.unit_id, 1),
        caller_name=caller_name,
    )
    em = _Emitter(state)
    if d.raised_from is not None:
        below = registry.unit_id_at(d.raised_from, d.micro_grid_id, d.grid_id, d.community_id)
        if below is not None and below != d.unit_id:
            _escalated(
                em,
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
                registry,
            )
    return em.done(em.state)


def _escalated(
    em: _Emitter,
    at: datetime,
    reason: EscalationReason,
    from_tier: Tier,
    from_unit_id: str,
    to: Unit,
    ack_by: datetime | None,
    resolve_by: datetime | None,
    handoff: bool,
    explanation: str,
    registry: Registry,
    supervisor: Unit | None = None,
) -> None:
    em.escalated(
        at,
        CaseEscalatedData.model_construct(
            case_id=em.state.case_id,
            reason=reason,
            from_tier=from_tier,
            from_unit_id=from_unit_id,
            to_tier=to.tier,
            to_unit_id=to.id,
            to_unit_name=to.name,
            opening=em.state.opening,
            acknowledge_by=ack_by,
            resolve_by=resolve_by,
            district_handoff=handoff,
            explanation=explanation,
            supervisor=None if supervisor is None else _notice(supervisor),
            notified=_told(em.state.notified, to.id, registry),
        ),
    )


def _notice(unit: Unit) -> Notified:
    return Notified.model_construct(unit_id=unit.id, unit_name=unit.name, tier=unit.tier)


def _told(notified: tuple[str, ...], owner: str, registry: Registry) -> list[Notified] | None:
    """The units told of a case besides its owner `owner`: every record about the case goes
    to them too (streams/topics.py)."""
    told = [_notice(registry.units[u]) for u in notified if u != owner]
    return told or None


# ---- clocks ----------------------------------------------------------------------------------


def next_deadline(state: CaseState) -> datetime | None:
    """When this case next needs waking: its acknowledge deadline while unacknowledged, then its
    resolve deadline; none once resolved, closed, handed off to the district or stopped."""
    if state.handoff or state.stopped or state.status in ("resolved", "closed"):
        return None
    if state.status == "acknowledged":
        return state.resolve_by
    if state.ack_by is None:
        return state.resolve_by
    if state.resolve_by is None:
        return state.ack_by
    return min(state.ack_by, state.resolve_by)


def on_deadline(state: CaseState, now: datetime, registry: Registry) -> Outcome:
    """Escalate a case whose deadline has passed by `now` (or, at its ceiling, supervise it:
    督办); nothing if none has."""
    if state.handoff or state.stopped or state.status in ("resolved", "closed"):
        return [], state
    if state.status == "open" and state.ack_by is not None and state.ack_by <= now:
        return _escalate(state, "ack_timeout", state.ack_by, registry, None)
    if state.resolve_by is not None and state.resolve_by <= now:
        return _escalate(state, "resolve_timeout", state.resolve_by, registry, None)
    return [], state


HEAD_ROLE: Mapping[Tier, Role] = {
    Tier.MICRO_GRID: Role.MICRO_GRID_WORKER,  # the building head (楼栋长)
    Tier.GRID: Role.GRID_HEAD,  # 网格长
    Tier.COMMUNITY: Role.GENERAL_GRID_HEAD,  # 总网格长
    Tier.STREET: Role.STREET_OPERATOR,
}


def _heads(unit: Unit, registry: Registry) -> list[str]:
    role = HEAD_ROLE[unit.tier]
    return sorted(p.id for p in registry.people.values() if p.unit_id == unit.id and p.role is role)


def _escalate(
    state: CaseState,
    reason: Literal["ack_timeout", "resolve_timeout", "requested"],
    at: datetime,
    registry: Registry,
    note: str | None,
) -> Outcome:
    """One tier up with fresh clocks; at the street, flag for the district instead. A deadline
    breached at (or above) the matter's ceiling moves it no further: 督办 (supervised) — the
    unit's head and the unit of the tier above are told, the clocks restart, the case stays.
    Only the unit's own request moves a case past its ceiling."""
    current = registry.units[state.unit_id]
    if reason == "ack_timeout":
        why = "not acknowledged in time"
    elif reason == "resolve_timeout":
        why = "not resolved in time"
    else:
        why = f"{current.name} asked to escalate" + (f": {_masked(note, state)}" if note else "")
    handoff = state.tier is Tier.STREET
    ceiling = state.ceiling or Tier.STREET
    supervised = not handoff and reason != "requested" and state.tier.raised().rank > ceiling.rank
    above = None if handoff else registry.ancestor(current, state.tier.raised())
    target = above if above is not None and not supervised else current
    # Supervised once, the clocks restart; supervised again, they stop (as at the street): the
    # supervisor follows the case up, and nobody is told the same thing every few hours. The
    # stopped clocks still judge: an acknowledgement after now is late, and the resolve deadline
    # stays what it was, so that late work is not counted on time nor left out of the rates.
    again = supervised and state.supervisions >= 1
    if again:
        ack_by = at if state.ack_sla else None
        resolve_by = state.resolve_by
    else:
        ticking = not handoff
        ack_by = at + state.ack_sla if state.ack_sla and ticking else None
        resolve_by = at + state.resolve_sla if state.resolve_sla and ticking else None
    if handoff:
        where = "at the street, the top tier: flagged for hand-off to the district (12345)"
    elif supervised:
        assert above is not None
        heads = _heads(current, registry)
        head = (
            f"its head ({HEAD_ROLE[current.tier].value} {', '.join(heads)}) and " if heads else ""
        )
        where = (
            f"督办 (supervised) at {current.name} ({state.tier.value}), "
            f"{'the' if state.tier is ceiling else 'above the'} ceiling of this matter "
            f"({ceiling.value}): {head}{above.name} ({above.tier.value}) are told; the case "
            + (
                "stays; supervised again, its clocks stop: the supervisor follows it up (its "
                "deadlines stay, to judge it by)"
                if again
                else "stays, with fresh clocks"
            )
        )
    else:
        where = f"from {current.name} ({state.tier.value}) to {target.name} ({target.tier.value})"
    em = _Emitter(state)
    _escalated(
        em,
        at,
        "supervised" if supervised else reason,
        state.tier,
        state.unit_id,
        target,
        ack_by,
        resolve_by,
        handoff,
        f"{why}: {where}",
        registry,
        above if supervised else None,
    )
    if handoff:
        return em.done(em.state._replace(handoff=True))
    asked = (*state.asked, (state.unit_id, target.id)) if reason == "requested" else state.asked
    how = "at its own request" if reason == "requested" else why
    moves = state.moves if supervised else (*state.moves, (state.unit_id, target.id, at, how))
    return em.done(
        em.state._replace(
            status="open",
            tier=target.tier,
            unit_id=target.id,
            ack_by=ack_by,
            resolve_by=resolve_by,
            asked=asked,
            moves=moves,
            supervisions=state.supervisions + 1 if supervised else state.supervisions,
            stopped=again,
        )
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
    verb = VERB_OF[action.type]
    refused = GUARDS[verb](person, state, verb, registry)
    if refused is not None:
        return Refusal("unauthorized", refused)
    after = TRANSITIONS.get((verb, state.status))
    if after is None:
        return Refusal("invalid_transition", _not_allowed(verb, state))
    if verb == "escalate":
        if state.handoff:
            return Refusal(
                "invalid_transition",
                f"{state.case_id} is already flagged for hand-off to the district",
            )
        return _escalate(state, "requested", at, registry, d.note)
    if verb == "verify":
        em = _Emitter(state)
        em.closed(
            at,
            CaseClosedData.model_construct(
                case_id=state.case_id,
                tier=state.tier,
                unit_id=state.unit_id,
                opening=state.opening,
                category=state.category,
                resolved_by=state.resolved_by,
                verified_by=d.actor_id,
                note=_masked(d.note, state),
            ),
        )
        _request_ratings(em, at, registry, rules)
        return em.done(em.state._replace(status="closed", closed_at=at))
    deadline = state.ack_by if verb == "acknowledge" else state.resolve_by
    status: Literal["acknowledged", "resolved"] = (
        "acknowledged" if after == "acknowledged" else "resolved"
    )
    em = _Emitter(state)
    em.updated(
        at,
        CaseUpdatedData.model_construct(
            case_id=state.case_id,
            status=status,
            actor_id=d.actor_id,
            tier=state.tier,
            unit_id=state.unit_id,
            opening=state.opening,
            note=_masked(d.note, state),
            within_sla=deadline is None or at <= deadline,
            notified=_told(state.notified, state.unit_id, registry),
        ),
    )
    resolved = status == "resolved"
    return em.done(
        em.state._replace(
            status=after,
            resolved_by=d.actor_id if resolved else None,
            resolved_at=at if resolved else state.resolved_at,
        )
    )


def _masked(note: str | None, state: CaseState | None = None) -> str | None:
    """A responder's note (or a rating's comment) as the bus carries it: phone and ID numbers
    masked, and the caller's name."""
    if note is None:
        return None
    return mask_caller_in(note, state.caller_name if state is not None else None)


def _request_ratings(em: _Emitter, at: datetime, registry: Registry, rules: Rules) -> None:
    """谁呼谁评、谁应谁评, 下评上: the caller rates the unit that handled the case; each unit
    that asked to escalate rates the unit above that answered."""
    state = em.state
    pending: list[PendingRating] = []
    if state.caller_id is not None:
        pending.append(PendingRating(state.caller_id, "caller", state.unit_id, state.tier))
    for lower, upper in state.asked:
        pending.append(PendingRating(lower, "unit", upper, registry.units[upper].tier))
    for p in pending:
        em.rating_requested(
            at,
            RatingRequestedData.model_construct(
                case_id=state.case_id,
                opening=state.opening,
                rater_id=pseudonym(p.rater_id) if p.rater_kind == "caller" else p.rater_id,
                rater_kind=p.rater_kind,
                ratee_unit_id=p.ratee_unit_id,
                ratee_tier=p.ratee_tier,
                due_by=at + rules.rating_due,
            ),
        )
    em.state = em.state._replace(pending=tuple(pending), rated=())


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
    em = _Emitter(state)
    caller = wanted.rater_kind == "caller"
    em.rating_recorded(
        at,
        RatingRecordedData.model_construct(
            case_id=state.case_id,
            opening=state.opening,
            rater_id=pseudonym(d.rater_id) if caller else d.rater_id,
            rater_kind=wanted.rater_kind,
            actor_id=pseudonym(d.actor_id) if caller else d.actor_id,
            ratee_unit_id=wanted.ratee_unit_id,
            ratee_tier=wanted.ratee_tier,
            category=state.category,
            verdict=d.verdict,
            score=d.score,
            comment=_masked(d.comment, state),
        ),
    )
    em.state = em.state._replace(rated=(*em.state.rated, d.rater_id))
    if wanted.rater_kind == "caller" and d.verdict == "dissatisfied":
        _reopen(em, "dissatisfied", at, registry)
    return em.done(em.state)


def _reopen(
    em: _Emitter,
    reason: Literal["dissatisfied", "alarm_recurred"],
    at: datetime,
    registry: Registry,
) -> None:
    """A new opening: one tier up for a dissatisfied caller (at the street: the street again,
    flagged for the district; at the matter's ceiling: the same unit); the same unit when an
    alarm recurs."""
    state = em.state
    current = registry.units[state.unit_id]
    handoff = False
    ceiling = state.ceiling or Tier.STREET
    capped = state.tier.raised().rank > max(ceiling.rank, state.tier.rank)
    if reason == "dissatisfied" and state.tier is not Tier.STREET and not capped:
        target = registry.ancestor(current, state.tier.raised())
    else:
        target = current
        handoff = reason == "dissatisfied" and state.tier is Tier.STREET
    ack_by = at + state.ack_sla if state.ack_sla else None
    resolve_by = at + state.resolve_sla if state.resolve_sla else None
    why = (
        "the caller was dissatisfied"
        if reason == "dissatisfied"
        else "the alarm went off again after the case was closed"
    )
    moves = state.moves
    if target.id != state.unit_id:
        moves = (*moves, (state.unit_id, target.id, at, f"reopened: {why}"))
    em.reopened(
        at,
        CaseReopenedData.model_construct(
            case_id=state.case_id,
            reason=reason,
            status="open",
            opening=state.opening + 1,
            from_tier=state.tier,
            from_unit_id=state.unit_id,
            tier=target.tier,
            unit_id=target.id,
            unit_name=target.name,
            acknowledge_by=ack_by,
            resolve_by=resolve_by,
            district_handoff=handoff,
            explanation=f"{why}: reopened at {target.name} ({target.tier.value})"
            + ("; at the street already, flagged for hand-off to the district" if handoff else "")
            + (
                f"; at the ceiling of this matter ({ceiling.value}), not above it"
                if reason == "dissatisfied" and capped and state.tier is not Tier.STREET
                else ""
            ),
            notified=_told(state.notified, target.id, registry),
        ),
    )
    em.state = em.state._replace(
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
        closed_at=None,
        resolved_at=None,
        stopped=False,
        moves=moves,
    )


def attach(
    hit: StormAlarm, state: CaseState, registry: Registry
) -> tuple[list[CaseAttached | LifecycleEvent], CaseState]:
    """An alarm of a storm, attached to this case: `minhu.case.attached`, naming the case's
    owner now (it may have been escalated since the storm began) and its notified units. If the
    alarm went off after the case was resolved, the danger is back: a closed case is reopened
    (a new opening, at the same unit); a resolved one, if the alarm is critical, goes back to
    work — acknowledged, resolved_by cleared, its resolve clock restarted (`case.reopened`,
    status acknowledged, the same opening). A late alarm (dated before the storm's latest, or
    before the case was resolved) only attaches."""
    ev = hit.event
    attached = CaseAttached.model_construct(
        specversion="1.0",
        id=f"{hit.case_id}/attached/{ev.id}",
        source=ROUTER_SOURCE,
        type=CASE_ATTACHED,
        time=ev.time,
        subject=hit.case_id,
        datacontenttype="application/json",
        data=CaseAttachedData.model_construct(
            case_id=hit.case_id,
            tier=state.tier,
            unit_id=state.unit_id,
            rule_id=hit.rule_id,
            occurrence=hit.occurrence,
            explanation=hit.explanation,
            origin=Origin.model_construct(
                event_id=ev.id, event_source=ev.source, event_type=ev.type, event_time=ev.time
            ),
            late=True if hit.late else None,
            notified=_told(state.notified, state.unit_id, registry),
        ),
    )
    out: list[CaseAttached | LifecycleEvent] = [attached]
    recurred = (
        not hit.late
        and state.status in ("resolved", "closed")
        and (state.resolved_at is None or ev.time > state.resolved_at)
    )
    if not recurred:
        return out, state
    em = _Emitter(state)
    if state.status == "closed":
        _reopen(em, "alarm_recurred", ev.time, registry)
    elif hit.severity is Severity.CRITICAL:
        _back_to_work(em, ev.time, registry)
    events, new = em.done(em.state)
    return [*out, *events], new


def _back_to_work(em: _Emitter, at: datetime, registry: Registry) -> None:
    """A critical alarm that recurs on a resolved case: the resolution did not hold. The same
    unit and opening, acknowledged (it knows the case), with its resolve clock restarted."""
    state = em.state
    unit = registry.units[state.unit_id]
    resolve_by = at + state.resolve_sla if state.resolve_sla else None
    em.reopened(
        at,
        CaseReopenedData.model_construct(
            case_id=state.case_id,
            reason="alarm_recurred",
            status="acknowledged",
            opening=state.opening,
            from_tier=state.tier,
            from_unit_id=state.unit_id,
            tier=state.tier,
            unit_id=state.unit_id,
            unit_name=unit.name,
            acknowledge_by=None,
            resolve_by=resolve_by,
            district_handoff=False,
            explanation=(
                f"the alarm went off again after the case was resolved by {state.resolved_by}, "
                f"before it was verified on site: back to work at {unit.name} "
                f"({state.tier.value}), resolve again"
                + (f" by {resolve_by.isoformat()}" if resolve_by else "")
            ),
            notified=_told(state.notified, state.unit_id, registry),
        ),
    )
    em.state = em.state._replace(
        status="acknowledged",
        resolve_by=resolve_by,
        resolved_by=None,
        resolved_at=None,
        stopped=False,
    )


def forgettable(state: CaseState, now: datetime, rules: Rules) -> bool:
    """A closed case whose rating window has passed: the engine may forget it (the ledger
    keeps it)."""
    return (
        state.status == "closed"
        and state.closed_at is not None
        and now > state.closed_at + rules.rating_due
    )
