"""The one way out of the engine: every history row, notice, rating and overturned rating
becomes an event (an `outbox` row) in the transaction of the change that caused it.

An event has an id outside (`uid`, the `webhook-id`), a topic, the ticket's number and a
per-ticket `sequence` (1, 2, 3... with no gap: the ticket's row is locked while it counts),
and its data. Who it concerns (the ticket's departments, its source) is kept beside it, so
that each subscription (hotline.integration.delivery) and each reader of the pull feed gets
exactly the events, and the fields, its people may see.
"""

import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import event
from sqlmodel import Session, select

from hotline import appends
from hotline.deadlines.calendar import local_iso
from hotline.models import DEPARTMENT_ROLES, Assignment, OutboxMessage, Ticket
from hotline.ticket_view import Lookups, caller_view, ticket_out

# The topics a subscription may ask for, and what each carries.
TOPICS = {
    "ticket.created": "受理信息：工单登记时的内容",
    "ticket.changed": "工单记录：每一条办理记录（操作、前后状态、操作人角色与单位、时间、说明）",
    "ticket.rated": "回访评价：评价等级、是否解决、渠道、时间、意见、承办单位（好差评字段）",
    "rating.overturned": "评价被撤销：申诉成立，差评不再计入",
    "notice": "通知：催办、督办、预警等发给单位或中心的通知",
}
# Who reads an event's ticket in full (the centre); departments get it masked (see `as_seen_by`).
_CENTRE = SimpleNamespace(role="supervisor")
# Transaction-local state kept in `Session.info`.
_HELD = "hotline.events.held"
_ASSIGNMENTS = "hotline.events.assignments"
_PRIMED = "hotline.events.primed"
_EVENT_INSERT = OutboxMessage.__table__.insert()


def new_uid() -> str:
    """A new event id: random, so that two installations never reuse one."""
    return "msg_" + secrets.token_hex(12)


def _assignments(session: Session, ticket: Ticket) -> list[Assignment]:
    """The ticket's assignments as the change being published leaves them: read once per
    change (per version), for its history row and the events it causes."""
    if not ticket.dispatch_count:
        return []  # never dispatched: no assignment to read
    key = (ticket.id, ticket.version)
    cache = session.info.setdefault(_ASSIGNMENTS, {})
    if key not in cache:
        cache.clear()
        primed = session.info.get(_PRIMED, {}).get(ticket.id)
        if primed is not None:
            found = list(primed)
        else:
            # Without an autoflush: a batch of changes taken at speed (the scheduler's) flushes
            # once at its end, not at every ticket's read. What the query cannot see yet is the
            # assignments added and not flushed; changes to loaded ones are in the loaded objects.
            with session.no_autoflush:
                found = list(session.exec(select(Assignment).where(Assignment.ticket_id == ticket.id)).all())
        found += [o for o in session.new if isinstance(o, Assignment) and o.ticket_id == ticket.id]
        cache[key] = found
    return cache[key]


def prime(session: Session, tickets: Iterable[Ticket]) -> None:
    """Read the assignments of many tickets in one statement, for the changes this transaction
    is about to publish (a batch of the scheduler's): what `_assignments` would read one ticket
    at a time, for the rest of the transaction: the assignments added since are taken from
    `session.new` until they are flushed, and from then on kept with those read here."""
    ids = [t.id for t in tickets if t.dispatch_count]
    if not ids:
        return
    found: dict[int, list[Assignment]] = {i: [] for i in ids}
    with session.no_autoflush:
        for assignment in session.exec(select(Assignment).where(Assignment.ticket_id.in_(ids))).all():
            found[assignment.ticket_id].append(assignment)
    session.info[_PRIMED] = found


@event.listens_for(Session, "after_flush")
def _keep_primed(session: Session, _context) -> None:
    """What the flush wrote of the primed tickets' assignments (no longer in `session.new`)."""
    primed = session.info.get(_PRIMED)
    if not primed:
        return
    for assignment in session.new:
        if isinstance(assignment, Assignment) and assignment.ticket_id in primed:
            primed[assignment.ticket_id].append(assignment)
    for assignment in session.deleted:
        if isinstance(assignment, Assignment) and assignment in primed.get(assignment.ticket_id, ()):
            primed[assignment.ticket_id].remove(assignment)


@event.listens_for(Session, "after_soft_rollback")
def _unprime(session: Session, _previous_transaction) -> None:
    # What a savepoint rolled back may be among the primed: read them again, one by one.
    session.info.pop(_PRIMED, None)


def ticket_data(session: Session, runtime, ticket: Ticket) -> dict[str, Any]:
    """The ticket as the centre reads it, with its assignments: what an event carries."""
    return ticket_out(ticket, _CENTRE, runtime, Lookups(session), _assignments(session, ticket))


def _audience(session: Session, ticket: Ticket) -> set[int]:
    """The departments a ticket is with now: its main department and its co-handlers."""
    found = {ticket.main_department_id} if ticket.main_department_id else set()
    found.update(a.department_id for a in _assignments(session, ticket) if a.status != "withdrawn")
    return found


@contextmanager
def held(session: Session, ticket: Ticket) -> Iterator[None]:
    """Within the block, events about the ticket wait for its history row: a change is told
    first and its consequences (the notices and rating it caused) after it. Dropped when the
    block raises."""
    holding, key = session.info.setdefault(_HELD, {}), ticket.id
    if key in holding:  # held already by an enclosing change of the same ticket
        yield
        return
    pending: list[dict[str, Any]] = []
    holding[key] = pending
    try:
        yield
    except BaseException:
        session.info.pop(_ASSIGNMENTS, None)  # what the failed change read is not the ticket's
        raise
    finally:
        # By key, not through the row: a failed flush has expired it, and reading it would
        # hide the failure behind another.
        holding.pop(key, None)
    for kwargs in pending:
        publish(session, **kwargs)


def publish(
    session: Session,
    *,
    topic: str,
    data: dict[str, Any],
    at: datetime,
    ticket: Ticket | None = None,
    departments: Iterable[int] = (),
    now_first: bool = False,
    counted: bool = False,
) -> None:
    """Write one event. The delivery process hands it to the subscriptions it concerns
    (hotline.integration.delivery.fan_out): the change's transaction pays for one row, however
    many systems subscribe. `departments` adds to those of the ticket (a notice to a department). A ticket's events
    published inside `held()` wait for its history row (`now_first`: the row itself).
    `counted`: the ticket's `event_sequence` counts this event already (a new ticket, written
    with its creation's event counted), the event takes that number.
    """
    if ticket is not None and not now_first:
        pending = session.info.get(_HELD, {}).get(ticket.id)
        if pending is not None:
            pending.append({"topic": topic, "data": data, "at": at, "ticket": ticket, "departments": departments})
            return
    audience = set(departments)
    sequence = None
    if ticket is not None:
        audience |= _audience(session, ticket)
        if not counted:
            ticket.event_sequence += 1
        sequence = ticket.event_sequence
    appends.add(
        session,
        _EVENT_INSERT,
        {
            "uid": new_uid(),
            "topic": topic,
            "ticket_id": ticket.id if ticket else None,
            "ticket_number": ticket.number if ticket else None,
            "sequence": sequence,
            "departments": "".join(f",{d}" for d in sorted(audience)) + "," if audience else "",
            "source": ticket.source if ticket else None,
            "payload": data,
            "created_at": at,
            "recorded_at": datetime.now(UTC),
            "fanned_out": False,
        },
    )


def concerns(subscription: Any, event: OutboxMessage) -> bool:
    """Whether the event is for the subscription: one of its topics, and within its scope."""
    if event.topic not in subscription.topics:
        return False
    if subscription.department_id is not None and f",{subscription.department_id}," not in event.departments:
        return False
    return subscription.source is None or subscription.source == event.source


def scope_clause(*, department_id: int | None, source: str | None) -> list[Any]:
    """The same scope as `concerns`, as SQL conditions on the outbox."""
    where = []
    if department_id is not None:
        where.append(OutboxMessage.departments.contains(f",{department_id},"))
    if source is not None:
        where.append(OutboxMessage.source == source)
    return where


def receiver_role(subscription: Any) -> str | None:
    """Whose eyes a subscription reads tickets with: a department's system as its handlers, a
    source's as an integration account; one for everything as the centre (None)."""
    if subscription.department_id is not None:
        return DEPARTMENT_ROLES[0]
    return "integration" if subscription.source is not None else None


def as_seen_by(event: OutboxMessage, *, role: str | None) -> dict[str, Any]:
    """The event as its receiver may read it: the ticket's caller as the role may see it (a
    department does not see a confidential or anonymous caller); None: as the centre."""
    data = dict(event.payload)
    if role is not None and isinstance(data.get("ticket"), dict):
        view = data["ticket"]
        data["ticket"] = {**view, **caller_view(SimpleNamespace(**view), SimpleNamespace(role=role))}
    return {
        "type": event.topic,
        "timestamp": local_iso(event.created_at),
        "data": {**data, "ticket_number": event.ticket_number, "sequence": event.sequence},
    }


def feed_scope(*, role: str, department_id: int | None, source: str | None) -> list[Any]:
    """What a reader of the pull feed may see, as conditions on the outbox: the centre sees
    everything; a department its tickets (and notices to it); an integration account its
    source's tickets."""
    if role in DEPARTMENT_ROLES:
        return scope_clause(department_id=department_id, source=None)
    if role == "integration":
        return [OutboxMessage.source == source, OutboxMessage.source.is_not(None)]
    return []
