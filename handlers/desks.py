"""What the triage desks and the tier above decide about a case: returned and forwarded cases
(退单, 转派) and extensions (延期). Part of the case lifecycle (handlers/lifecycle.py): pure
functions over a `CaseState`, each returning the events to emit with the new state, or a
`Refusal` the engine turns into a dead letter.

    open/acknowledged ──reassign (a desk names a unit: 转派)──────────▶ open at that unit
    open/acknowledged ──reassign (the unit, no unit named: 退单)──────▶ open at the desk it came from
    open/acknowledged ──extension_requested (once per opening)──────▶ same status, request pending
    pending           ──extension_decided approved──────────────────▶ resolve deadline moved
                      ──extension_decided refused───────────────────▶ deadline unchanged

Who may (the registry's people, roles and units):
- **forward** (转派): a desk — a grid head, general grid head, community operator or street
  operator — of a unit above the case's unit, or of the community or street desk that holds
  it; to any other unit inside the desk's own unit.
- **return** (退单): any person of the assigned unit, when the unit received the case by routing
  or by a reassignment (a case escalated or reopened to it is its to answer); it goes back to
  the desk that forwarded it, else to the desk above: the community's, then the street's.
- **ask for an extension**: any person of the assigned unit, once per opening, up to
  `lifecycle.max_extension`.
- **decide it**: a desk (as above) of a unit above the case's unit — at the street, another
  street operator — never the person who asked.
A reassignment gives the new unit fresh clocks (the case's own SLA) and ends a pending
extension request; the case's status is open again.
"""

from __future__ import annotations

from datetime import timedelta

from handlers.lifecycle import (
    CaseState,
    ExtensionAsk,
    Outcome,
    Refusal,
    _Emitter,
    _masked,
    _moved_on,
)
from handlers.registry import Person, Registry, Role, Unit
from handlers.rules import Rules
from schemas import Tier
from schemas.lifecycle import (
    CaseExtensionAnsweredData,
    CaseExtensionAskedData,
    CaseExtensionDecided,
    CaseExtensionRequested,
    CaseReassignedData,
    CaseReassignRequested,
    extension_duration,
)

DeskAction = CaseReassignRequested | CaseExtensionRequested | CaseExtensionDecided
# The roles that dispatch and supervise: a unit's desk. Workers (微网格员, 网格员) are not.
DESK_ROLES = frozenset(
    {Role.GRID_HEAD, Role.GENERAL_GRID_HEAD, Role.COMMUNITY_OPERATOR, Role.STREET_OPERATOR}
)
DESK_TIERS = (Tier.COMMUNITY, Tier.STREET)  # the triage desks: they may forward what they hold


def apply_desk_action(
    action: DeskAction, state: CaseState, registry: Registry, rules: Rules
) -> Outcome | Refusal:
    """Apply a reassignment, an extension request or a decision, or say why not."""
    person = registry.people.get(action.data.actor_id)
    if person is None:
        return Refusal(
            "unauthorized", f"unknown actor '{action.data.actor_id}': not in the registry"
        )
    if isinstance(action, CaseReassignRequested):
        return reassign(action, person, state, registry)
    if isinstance(action, CaseExtensionRequested):
        return request_extension(action, person, state, registry, rules)
    return decide_extension(action, person, state, registry)


# ---- who is where ------------------------------------------------------------------------------


def _contains(registry: Registry, outer: Unit, inner: Unit) -> bool:
    """`outer` is `inner` or one of the units above it."""
    return registry.ancestor(inner, outer.tier).id == outer.id


def _desk_over(person: Person, state: CaseState, registry: Registry, doing: str) -> str | None:
    """Why `person` is no desk over the case (None: they are): a desk role, of a unit above the
    case's unit, or of the community or street desk that holds it."""
    home = registry.units[person.unit_id]
    current = registry.units[state.unit_id]
    if person.role not in DESK_ROLES:
        return (
            f"{person.id} is a {person.role.value}: only a desk (grid head, general grid head, "
            f"community or street operator) may {doing}"
        )
    above = home.id != current.id and _contains(registry, home, current)
    if above or (home.id == current.id and home.tier in DESK_TIERS):
        return None
    refused = f"{person.id} ({person.role.value} of {home.id}) may not {doing} {state.case_id}"
    if home.id == current.id:
        return (
            f"{refused}: it is assigned to {home.id}, their own unit, and a {home.tier.value} "
            f"is no triage desk: a desk of the unit above it does"
        )
    return (
        f"{refused}: {_moved_on(home.id, state, registry)}it is assigned to {current.id}, "
        f"which is not under {home.id}"
    )


def _movable(state: CaseState, doing: str) -> str | None:
    if state.status not in ("open", "acknowledged"):
        return f"cannot {doing} {state.case_id}: it is already {state.status}"
    if state.handoff:
        return f"cannot {doing} {state.case_id}: it is flagged for hand-off to the district"
    return None


def _return_target(state: CaseState, registry: Registry) -> Unit | None:
    """Where a return goes: the desk that forwarded the case, else the desk above (the
    community's, then the street's); None at the street, the last desk."""
    if state.came_from is not None and state.came_from != state.unit_id:
        return registry.units[state.came_from]
    current = registry.units[state.unit_id]
    if current.tier.rank < Tier.COMMUNITY.rank:
        return registry.ancestor(current, Tier.COMMUNITY)
    if current.tier is Tier.COMMUNITY:
        return registry.street
    return None


def _decider(state: CaseState, registry: Registry) -> Unit:
    """Who decides an extension: the unit of the tier above (the street decides its own)."""
    current = registry.units[state.unit_id]
    if current.tier is Tier.STREET:
        return current
    return registry.ancestor(current, current.tier.raised())


# ---- 退单, 转派 ---------------------------------------------------------------------------------


def reassign(
    action: CaseReassignRequested, person: Person, state: CaseState, registry: Registry
) -> Outcome | Refusal:
    """A desk forwards the case to a named unit (转派), or the assigned unit returns it to the
    desk it came from (退单). Fresh clocks at the new unit."""
    d = action.data
    current = registry.units[state.unit_id]
    back = _return_target(state, registry)
    returning = d.to_unit_id is None or (
        person.unit_id == state.unit_id and back is not None and d.to_unit_id == back.id
    )
    if returning:
        if person.unit_id != state.unit_id:
            return Refusal(
                "unauthorized",
                f"{person.id} ({person.role.value} of {person.unit_id}) may not return "
                f"{state.case_id}: {_moved_on(person.unit_id, state, registry)}it is assigned "
                f"to {state.unit_id} (a desk names a unit to forward it to)",
            )
        why = _movable(state, "return")
        if why is not None:
            return Refusal("invalid_transition", why)
        if state.returnable != (state.unit_id, state.opening):
            return Refusal(
                "invalid_transition",
                f"{state.case_id} was escalated or reopened to {state.unit_id}: it is the "
                f"unit's to answer or escalate, not to return",
            )
        if back is None:
            return Refusal(
                "invalid_transition",
                f"{state.case_id} is at the street, the last desk: it cannot be returned "
                f"(forward it to a unit, or escalate it)",
            )
        target = back
        explanation = f"{current.name} returned it as outside its remit, to {target.name}"
        came_from = None
        move = f"returned: by {person.id} of {current.name}, as outside its remit"
    else:
        why = _desk_over(person, state, registry, "reassign")
        if why is not None:
            return Refusal("unauthorized", why)
        why = _movable(state, "reassign")
        if why is not None:
            return Refusal("invalid_transition", why)
        assert d.to_unit_id is not None
        found = registry.units.get(d.to_unit_id)
        if found is None:
            return Refusal("invalid_transition", f"no unit '{d.to_unit_id}' in the registry")
        home = registry.units[person.unit_id]
        if not _contains(registry, home, found):
            return Refusal(
                "unauthorized",
                f"{person.id} ({person.role.value} of {home.id}) may only forward within "
                f"{home.name}; {found.id} is not in it",
            )
        if found.id == state.unit_id:
            return Refusal(
                "invalid_transition", f"{state.case_id} is already assigned to {found.id}"
            )
        target = found
        explanation = (
            f"{home.name} forwarded it to {target.name}"
            if home.id == current.id
            else f"{home.name} forwarded it from {current.name} to {target.name}"
        )
        came_from = home.id
        move = f"forwarded: by {person.id} of {home.name}"
    at = action.time
    ack_by = at + state.ack_sla if state.ack_sla else None
    resolve_by = at + state.resolve_sla if state.resolve_sla else None
    em = _Emitter(state)
    em.reassigned(
        at,
        CaseReassignedData.model_construct(
            case_id=state.case_id,
            kind="returned" if returning else "forwarded",
            opening=state.opening,
            actor_id=person.id,
            from_tier=state.tier,
            from_unit_id=state.unit_id,
            to_tier=target.tier,
            to_unit_id=target.id,
            to_unit_name=target.name,
            acknowledge_by=ack_by,
            resolve_by=resolve_by,
            note=_masked(d.note, state),
            explanation=f"{explanation} ({target.tier.value}): fresh clocks",
        ),
    )
    return em.done(
        em.state._replace(
            status="open",
            tier=target.tier,
            unit_id=target.id,
            ack_by=ack_by,
            resolve_by=resolve_by,
            returnable=(target.id, state.opening),
            came_from=came_from,
            extension_pending=None,
            stopped=False,
            moves=(*state.moves, (state.unit_id, target.id, at, move)),
        )
    )


# ---- 延期 ---------------------------------------------------------------------------------------


def _span(td: timedelta) -> str:
    """A span in the rules' style: 2d, 1d12h, 45m."""
    secs = int(td.total_seconds())
    days, rest = divmod(secs, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return "".join(
        f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if n
    )


def request_extension(
    action: CaseExtensionRequested,
    person: Person,
    state: CaseState,
    registry: Registry,
    rules: Rules,
) -> Outcome | Refusal:
    """The assigned unit asks for more time on the resolve clock, once per opening."""
    d = action.data
    if person.unit_id != state.unit_id:
        return Refusal(
            "unauthorized",
            f"{person.id} ({person.role.value} of {person.unit_id}) may not ask to extend "
            f"{state.case_id}: {_moved_on(person.unit_id, state, registry)}it is assigned to "
            f"{state.unit_id}",
        )
    why = _movable(state, "extend")
    if why is not None:
        return Refusal("invalid_transition", why)
    if state.resolve_by is None:
        return Refusal("invalid_transition", f"{state.case_id} has no resolve deadline to extend")
    if state.extension_opening == state.opening:
        return Refusal(
            "invalid_transition",
            f"an extension was already asked for {state.case_id} in opening {state.opening}: "
            f"once per opening",
        )
    extra = extension_duration(d.extra)
    if extra > rules.max_extension:
        return Refusal(
            "invalid_transition",
            f"asks for {_span(extra)} more: at most {_span(rules.max_extension)} "
            f"(lifecycle.max_extension)",
        )
    decider = _decider(state, registry)
    em = _Emitter(state)
    em.extension_asked(
        action.time,
        CaseExtensionAskedData.model_construct(
            case_id=state.case_id,
            opening=state.opening,
            tier=state.tier,
            unit_id=state.unit_id,
            actor_id=person.id,
            extra=d.extra,
            resolve_by=state.resolve_by,
            requested_resolve_by=state.resolve_by + extra,
            decider_tier=decider.tier,
            decider_unit_id=decider.id,
            note=_masked(d.note, state),
        ),
    )
    return em.done(
        em.state._replace(
            extension_pending=ExtensionAsk(state.unit_id, state.opening, extra, person.id),
            extension_opening=state.opening,
        )
    )


def decide_extension(
    action: CaseExtensionDecided, person: Person, state: CaseState, registry: Registry
) -> Outcome | Refusal:
    """The tier above approves (the resolve deadline moves) or refuses a pending request."""
    d = action.data
    current = registry.units[state.unit_id]
    if person.unit_id == state.unit_id and current.tier is not Tier.STREET:
        decider = _decider(state, registry)
        why: str | None = (
            f"{person.id} ({person.role.value} of {current.id}) may not decide an extension "
            f"of {state.case_id}: the case is {current.id}'s own, and the tier above decides "
            f"its extensions ({decider.name}, {decider.id})"
        )
    else:
        why = _desk_over(person, state, registry, "decide an extension of")
    if why is not None:
        return Refusal("unauthorized", why)
    ask = state.extension_pending
    if ask is None or (ask.unit_id, ask.opening) != (state.unit_id, state.opening):
        return Refusal(
            "invalid_transition",
            f"no extension request of {state.unit_id} pending for {state.case_id}",
        )
    if ask.actor_id == person.id:
        return Refusal("unauthorized", f"{person.id} asked for this extension: another decides")
    why = _movable(state, "extend")
    if why is not None:
        return Refusal("invalid_transition", why)
    assert state.resolve_by is not None
    resolve_by = state.resolve_by + ask.extra if d.approved else state.resolve_by
    decider = _decider(state, registry)
    em = _Emitter(state)
    em.extension_answered(
        action.time,
        CaseExtensionAnsweredData.model_construct(
            case_id=state.case_id,
            opening=state.opening,
            tier=state.tier,
            unit_id=state.unit_id,
            actor_id=person.id,
            approved=d.approved,
            decider_tier=decider.tier,
            decider_unit_id=decider.id,
            previous_resolve_by=state.resolve_by,
            resolve_by=resolve_by,
            note=_masked(d.note, state),
        ),
    )
    return em.done(em.state._replace(resolve_by=resolve_by, extension_pending=None))
