"""The one gateway for every change of a ticket's state.

`fire` checks the role and the department, the state and the caller's version,
validates the payload, runs the workflow's guards and effects through a
`transitions` machine, and writes the history row, all inside the caller's
transaction. Nothing else writes `Ticket.state`.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Protocol

from sqlmodel import Session, select
from transitions import Machine

from hotline import appends, audit
from hotline.deadlines.calendar import WorkCalendar, local_iso
from hotline.deadlines.sla import recompute
from hotline.errors import Conflict, NotFound, NotPermitted
from hotline.indicators import totals
from hotline.integration import events
from hotline.models import DEPARTMENT_ROLES, Assignment, Ticket, TicketEvent, User
from hotline.ticket_view import Lookups
from hotline.workflow.definition import (
    CO_SUFFIX,
    RETURN_FROM,
    EventDef,
    RuleRef,
    Workflow,
    WorkflowSet,
)
from hotline.workflow.fields import validate_payload
from hotline.workflow.registry import CONDITIONS, EFFECTS, EXPLAINED, UNCOUNTED


class EngineRuntime(Protocol):
    """What the gateway needs of the process it runs in: the workflows, the working-day
    calendar and the settings (hotline.runtime.Runtime is the one there is; the gateway does
    not import it, so that the process can be built from the engine and not the other way)."""

    workflows: WorkflowSet
    settings: Any

    def calendar(self, session: Session) -> WorkCalendar: ...


@dataclass(frozen=True)
class Actor:
    """Who fires an event: a user, the scheduler, or a citizen through a rating link."""

    id: int | None
    username: str
    role: str
    department_id: int | None = None
    # An integration account's platform (its tickets carry it as their source).
    source: str | None = None

    @classmethod
    def of(cls, user: User) -> "Actor":
        return cls(user.id, user.username, user.role, user.department_id, user.source)


SCHEDULER = Actor(None, "scheduler", "system")


class GuardFailed(Conflict):
    """A workflow condition does not hold; the message says which and why."""


@dataclass
class Context:
    """What guards and effects see of one event being fired."""

    session: Session
    runtime: EngineRuntime
    ticket: Ticket
    actor: Actor
    workflow: Workflow
    event: EventDef
    payload: dict[str, Any]
    now: datetime
    from_state: str
    assignment: Assignment | None = None
    as_co_handler: bool = False
    dry_run: bool = False
    # What the caller knows beyond the payload (the scheduler: which deadline, which step).
    extra: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    # What effects hand back to the caller without writing it to the history (a link).
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def limits(self):
        return self.workflow.limits

    @property
    def as_community(self) -> bool:
        """The caller acts for the community the street office passed the ticket to (二级派单)."""
        return self.assignment is not None and self.assignment.role == "sub"

    @property
    def as_main(self) -> bool:
        """The caller acts for the ticket as a whole: the main department, or the centre."""
        return not self.as_co_handler and not self.as_community


class _TicketProxy:
    """The model `transitions` drives: it proxies the row's state and holds nothing else.

    A proxy is added to its machine once and pointed at one ticket per event: adding a
    model makes a method for every trigger, which cost more than the rest of an escalation.
    """

    def __init__(self, ticket: Any) -> None:
        self._ticket = ticket

    @property
    def state(self) -> str:
        return self._ticket.state

    @state.setter
    def state(self, value: str) -> None:
        self._ticket.state = value


def _condition(ref: RuleRef):
    fn = CONDITIONS[ref.name]
    return lambda event_data: fn(event_data.kwargs["ctx"], ref.arg) is not False


def _effect(ref: RuleRef):
    fn = EFFECTS[ref.name]

    def run(event_data) -> None:
        ctx: Context = event_data.kwargs["ctx"]
        if not ctx.dry_run:
            fn(ctx, ref.arg)

    return run


def _came_from(target: str):
    return lambda event_data: event_data.kwargs["ctx"].ticket.return_from_state == target


def _build_machine(wf: Workflow) -> Machine:
    transitions: list[dict[str, Any]] = []
    for ev in wf.events.values():
        conditions = [_condition(r) for r in ev.conditions]
        after = [_effect(r) for r in ev.effects]
        if ev.dest == RETURN_FROM:
            for target in wf.open_states:
                transitions.append(
                    {
                        "trigger": ev.name,
                        "source": list(ev.sources),
                        "dest": target,
                        "conditions": [_came_from(target), *conditions],
                        "after": after,
                    }
                )
        else:
            transitions.append(
                {
                    "trigger": ev.name,
                    "source": list(ev.sources),
                    "dest": ev.dest,
                    "conditions": conditions,
                    "after": after,
                }
            )
        if ev.co_sources:
            transitions.append(
                {
                    "trigger": ev.name + CO_SUFFIX,
                    "source": list(ev.co_sources),
                    "dest": None,
                    "conditions": conditions,
                    "after": after,
                }
            )
    return Machine(
        model=None,
        states=list(wf.states),
        transitions=transitions,
        initial=wf.initial,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
    )


_machines = threading.local()


def machine_for(wf: Workflow) -> Machine:
    """The machine of a workflow, built once per thread (a Machine is not thread-safe)."""
    cache = getattr(_machines, "cache", None)
    if cache is None:
        cache = _machines.cache = {}
    key = (wf.name, id(wf))
    machine = cache.get(key)
    if machine is None:
        machine = cache[key] = _build_machine(wf)
    return machine


def department_assignment(session: Session, ticket_id: int, department_id: int | None) -> Assignment | None:
    """The department's active assignment on a ticket, if it has one."""
    if department_id is None:
        return None
    return session.exec(
        select(Assignment).where(
            Assignment.ticket_id == ticket_id,
            Assignment.department_id == department_id,
            Assignment.status != "withdrawn",
        )
    ).first()


def _scope(session: Session, ticket: Ticket, actor: Actor) -> Assignment | None:
    """The actor's assignment; a department's user who has none may not see the ticket."""
    if actor.role not in DEPARTMENT_ROLES:
        return None
    assignment = department_assignment(session, ticket.id, actor.department_id)
    if assignment is None:
        raise NotFound(f"ticket {ticket.id} not found, or not visible to you", zh="工单不存在，或您无权查看")
    return assignment


def _not_yours(ev: EventDef, assignment: Assignment | None) -> tuple[str, str] | None:
    """Why the caller's part in the ticket may not fire the event (English, Chinese), or None:
    a co-handler fires only events open to any department, a community only its own
    (`department: community`), which no one else fires."""
    part = assignment.role if assignment is not None else None
    if part == "co" and ev.department != "any":
        return (
            f"only the main department may fire {ev.name!r} ({ev.label}); your department co-handles this ticket",
            f"只有主办单位可以执行“{ev.label}”，本单位为协办单位",
        )
    if part == "sub" and ev.department != "community":
        return (
            f"the street office fires {ev.name!r} ({ev.label}); your community handles the part passed to it",
            f"“{ev.label}”由街道办理，社区只办理街道派至本社区的部分",
        )
    if part != "sub" and ev.department == "community":
        return (
            f"only the community the ticket was passed to may fire {ev.name!r} ({ev.label})",
            f"只有接收派单的社区可以执行“{ev.label}”",
        )
    return None


def _candidates(wf: Workflow, ticket: Ticket, actor: Actor, assignment: Assignment | None):
    """Events the role and the department may fire in the ticket's state (guards aside)."""
    as_co = assignment is not None and assignment.role == "co"
    for ev in wf.events.values():
        if actor.role not in ev.roles or _not_yours(ev, assignment) is not None:
            continue
        sources = ev.co_sources if as_co else ev.sources
        if sources and ticket.state in sources:
            yield ev, as_co


def _idle_proxies(machine: Machine) -> list[_TicketProxy]:
    """The machine's proxies not driving a ticket at the moment (a machine is per thread;
    more than one proxy only if an effect ever fired another event while one runs)."""
    return machine.__dict__.setdefault("hotline_idle_proxies", [])


def _run(ctx: Context) -> bool:
    machine = machine_for(ctx.workflow)
    idle = _idle_proxies(machine)
    if idle:
        proxy = idle.pop()
    else:
        proxy = _TicketProxy(SimpleNamespace(state=ctx.workflow.initial))
        machine.add_model(proxy, initial=ctx.workflow.initial)
    proxy._ticket = ctx.ticket
    try:
        trigger = ctx.event.name + (CO_SUFFIX if ctx.as_co_handler else "")
        return bool(proxy.trigger(trigger, ctx=ctx))
    finally:
        proxy._ticket = None
        idle.append(proxy)


def record(
    session: Session,
    runtime: EngineRuntime,
    ticket: Ticket,
    event: str,
    actor: Actor,
    now: datetime,
    details: dict[str, Any],
    *,
    from_state: str | None,
) -> None:
    """A history row: who did what to the ticket, when, from which state (None: the ticket
    was created) to the state it is in now; and its event for other systems."""
    row = {
        "ticket_id": ticket.id,
        "event": event,
        "actor_id": actor.id,
        "actor_name": actor.username,
        "actor_role": actor.role,
        "from_state": from_state,
        "to_state": ticket.state,
        "at": now,
        "details": details,
    }
    audit.seal(session, row)
    appends.add(session, _HISTORY_INSERT, row)
    view = events.ticket_data(session, runtime, ticket)
    if from_state is None:
        # A new ticket's row is written with its creation's event counted (create_ticket).
        events.publish(
            session, topic="ticket.created", data={"ticket": view}, at=now, ticket=ticket, now_first=True, counted=True
        )
        return
    wf = runtime.workflows.get(ticket.workflow)
    label = wf.events[event].label if event in wf.events else None
    change = {
        "event": event,
        "event_label": label,
        "from": from_state,
        "to": ticket.state,
        "actor": {"role": actor.role, "department": _department_code(session, actor.department_id)},
        "at": local_iso(now),
        "details": details,
        "ticket": view,
    }
    events.publish(session, topic="ticket.changed", data=change, at=now, ticket=ticket, now_first=True)


_HISTORY_INSERT = TicketEvent.__table__.insert()


def _department_code(session: Session, department_id: int | None) -> str | None:
    return Lookups(session).departments[department_id].code if department_id else None


def load_for_update(session: Session, ticket_id: int) -> Ticket:
    """The ticket, locked against concurrent changes until the transaction ends."""
    ticket = session.exec(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).first()
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} not found, or not visible to you", zh="工单不存在，或您无权查看")
    return ticket


@dataclass
class Fired:
    """What firing an event did: the ticket as it is now, and what the effects hand back to
    the caller without writing it down (e.g. a rating link)."""

    ticket: Ticket
    result: dict[str, Any]


def fire(
    session: Session,
    runtime: EngineRuntime,
    ticket: int | Ticket,
    event: str,
    actor: Actor,
    payload: dict[str, Any] | None = None,
    *,
    now: datetime,
    version: int | None = None,
    context: dict[str, Any] | None = None,
) -> Fired:
    """Fire one event on one ticket, inside the session's transaction.

    `ticket` is the ticket's id, or the row itself when the caller holds it locked in this
    session already (the scheduler locks a batch at once). `version` is the ticket's version
    as the caller last read it; `context` is what the caller knows beyond the payload (the
    scheduler: that it acts on its own, and which ladder step) and goes into the history.
    The new rows stay pending in the session (it flushes them before any read, and at commit).
    """
    if not isinstance(ticket, Ticket):
        ticket = load_for_update(session, ticket)
    assignment = _scope(session, ticket, actor)
    wf = runtime.workflows.get(ticket.workflow)

    def allowed() -> tuple[list[str], str]:
        """What the actor could fire instead (only worked out when refusing)."""
        names = [ev.name for ev, _ in _candidates(wf, ticket, actor, assignment)]
        return names, ", ".join(names) or "none"

    ev = wf.events.get(event)
    if ev is None:
        names, allowed_text = allowed()
        raise Conflict(
            f"{event!r} is not an event of the workflow {wf.name!r}; allowed now: {allowed_text}",
            allowed=names,
            zh=f"该流程没有“{event}”操作",
        )
    if version is not None and version != ticket.version:
        raise Conflict(
            f"the ticket changed since version {version} (it is at version {ticket.version}); reload it and try again",
            version=ticket.version,
            zh="工单已被他人更新，请刷新页面后重试",
        )
    if actor.role not in ev.roles:
        raise NotPermitted(
            f"the role {actor.role!r} may not fire {event!r} ({ev.label})", zh=f"您的角色不能执行“{ev.label}”"
        )
    as_co = assignment is not None and assignment.role == "co"
    refusal = _not_yours(ev, assignment)
    if refusal is not None:
        raise NotPermitted(refusal[0], zh=refusal[1])
    sources = ev.co_sources if as_co else ev.sources
    if ticket.state not in (sources or ()):
        names, allowed_text = allowed()
        raise Conflict(
            f"{event!r} ({ev.label}) is not allowed in the state {ticket.state!r} "
            f"({wf.state_label(ticket.state)}); allowed now: {allowed_text}",
            allowed=names,
            zh=f"工单当前为“{wf.state_label(ticket.state)}”，不能执行“{ev.label}”",
        )
    clean = validate_payload(event, ev.required, ev.optional, payload or {})
    ctx = Context(
        session=session,
        runtime=runtime,
        ticket=ticket,
        actor=actor,
        workflow=wf,
        event=ev,
        payload=clean,
        now=now,
        from_state=ticket.state,
        assignment=assignment,
        as_co_handler=as_co,
        extra=dict(context or {}),
    )
    # The running totals follow in this transaction, unless no effect can touch them.
    counted = any(ref.name not in UNCOUNTED for ref in ev.effects)
    tracker = totals.Tracker(session, ticket) if counted else None
    with events.held(session, ticket):
        if not _run(ctx):
            raise Conflict(
                f"{event!r} ({ev.label}) cannot be fired now: its conditions do not hold",
                zh=f"当前不能执行“{ev.label}”：条件不满足",
            )
        details = {**clean, **ctx.extra, **ctx.details}
        if as_co:
            details["as_co_handler"] = True
        _settle(session, runtime, wf, ticket, event, actor, now, details, from_state=ctx.from_state, tracker=tracker)
    return Fired(ticket, ctx.result)


def _settle(
    session: Session,
    runtime: EngineRuntime,
    wf: Workflow,
    ticket: Ticket,
    event: str,
    actor: Actor,
    now: datetime,
    details: dict[str, Any],
    *,
    from_state: str,
    tracker: totals.Tracker | None,
) -> None:
    """What every change of a ticket ends with: its clocks recomputed, its version and
    `updated_at` moved, the history row, and the running totals' difference."""
    recompute(runtime.calendar(session), wf, ticket)
    ticket.version += 1
    ticket.updated_at = now
    record(session, runtime, ticket, event, actor, now, details, from_state=from_state)
    if tracker is not None:
        tracker.done()


@dataclass
class Change:
    """A change of a ticket that is not a workflow event, while it is being made."""

    ticket: Ticket
    details: dict[str, Any]


@contextmanager
def changing(
    session: Session,
    runtime: EngineRuntime,
    ticket: int | Ticket,
    event: str,
    actor: Actor,
    *,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> Iterator[Change]:
    """A change outside the workflow's events (an appeal decided, deadlines recomputed after a
    holiday import, a ladder step the scheduler passes over) with fire()'s guarantees: the
    ticket locked, its running totals' difference, its clocks recomputed, its version and
    `updated_at` moved, and a history row `event` (the state stays) with `details` as the
    block leaves them. Nothing is written when the block raises.

        with changing(session, runtime, ticket_id, "appeal_rating_granted", actor, now=now) as change:
            ...  # change change.ticket and its rows; add to change.details
    """
    if not isinstance(ticket, Ticket):
        ticket = load_for_update(session, ticket)
    tracker = totals.Tracker(session, ticket)
    change = Change(ticket, dict(details or {}))
    with events.held(session, ticket):
        yield change
        wf = runtime.workflows.get(ticket.workflow)
        state = ticket.state
        _settle(session, runtime, wf, ticket, event, actor, now, change.details, from_state=state, tracker=tracker)


def available_events(
    session: Session,
    runtime: EngineRuntime,
    ticket: Ticket,
    actor: Actor,
    *,
    now: datetime,
    refused: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The events the actor may fire on the ticket now, guards included. `refused`, if given,
    receives those the actor's role and the state allow but a rule the pages explain refuses now
    (registry.EXPLAINED), each with its reason in Chinese (`why`): a button that is not there
    says why."""
    assignment = _scope(session, ticket, actor)
    wf = runtime.workflows.get(ticket.workflow)
    out = []
    for ev, as_co in _candidates(wf, ticket, actor, assignment):
        ctx = Context(
            session=session,
            runtime=runtime,
            ticket=ticket,
            actor=actor,
            workflow=wf,
            event=ev,
            payload={},
            now=now,
            from_state=ticket.state,
            assignment=assignment,
            as_co_handler=as_co,
            dry_run=True,
        )
        try:
            for ref in ev.conditions:
                CONDITIONS[ref.name](ctx, ref.arg)
        except GuardFailed as exc:
            if refused is not None and ref.name in EXPLAINED and exc.extra.get("zh"):
                refused.append({"name": ev.name, "label": ev.label_for(as_co), "why": exc.extra["zh"]})
            continue
        dest = ticket.return_from_state if ev.dest == RETURN_FROM else ev.dest
        out.append(
            {
                "name": ev.name,
                "label": ev.label_for(as_co),
                "to": None if as_co else dest,
                "required": list(ev.required),
                "optional": list(ev.optional),
            }
        )
    return out
