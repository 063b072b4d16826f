"""The department's inbox (部门工作台): its open tickets by tab, to sign, in hand, yellow,
red, replied and waiting for the centre, rehandled, and a street office's tickets passed to
its communities (二级派单); a community's tickets are those passed to it.

Every count and list reads only what is open, through indexes: the department's open
tickets as main department by (main_department_id, state); the tickets it co-handles
by probing its assignments (department_id, ticket_id) with the open tickets (state).
The tab counts come from one grouped query, the page of rows from one query.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_
from sqlmodel import Session, select

from hotline.deadlines.sla import LADDER_KINDS, level, part_deadline
from hotline.models import Assignment, Ticket
from hotline.tickets import visible_clause
from hotline.workflow.engine import Actor

INBOX_TABS = ("pending", "doing", "yellow", "red", "replied", "rehandle", "community")
# The tabs by the ticket's state, for the department that handles it as main department.
DOING_STATES = ("in_progress", "suspended")
AWAITING_CENTRE_STATES = ("replied", "returned")
# The assignments that are a part of another department's ticket: a co-handler's, a community's.
PART_ROLES = ("co", "sub")


def _main_tab(tab: str, now: datetime, states: tuple[str, ...], community_states: tuple[str, ...]) -> list[Any]:
    """The tab's condition on the tickets of which the department is the main department."""
    clock = Ticket.due_kind.in_(LADDER_KINDS)
    return {
        "pending": [Ticket.state == "dispatched"],
        "doing": [Ticket.state.in_(DOING_STATES)],
        "yellow": [Ticket.state.in_(states), clock, Ticket.due_at > now, Ticket.warn_at <= now],
        "red": [Ticket.state.in_(states), clock, Ticket.due_at <= now],
        "replied": [Ticket.state.in_(AWAITING_CENTRE_STATES)],
        "rehandle": [Ticket.state.in_(states), Ticket.rehandle_count > 0],
        "community": [Ticket.state.in_(community_states)],
    }[tab]


def _main_counts(
    session: Session, department_id: int, now: datetime, states: tuple[str, ...], community_states: tuple[str, ...]
) -> dict[str, int]:
    """The tab counts of the department's own (main) tickets: one grouped query on the index."""
    clock = Ticket.due_kind.in_(LADDER_KINDS)
    red = func.sum(case((and_(clock, Ticket.due_at <= now), 1), else_=0))
    yellow = func.sum(case((and_(clock, Ticket.due_at > now, Ticket.warn_at <= now), 1), else_=0))
    rehandled = func.sum(case((Ticket.rehandle_count > 0, 1), else_=0))
    rows = session.exec(
        select(Ticket.state, func.count(), red, yellow, rehandled)
        .where(Ticket.main_department_id == department_id, Ticket.state.in_(states))
        .group_by(Ticket.state)
    ).all()
    counts = dict.fromkeys(INBOX_TABS, 0)
    for state, n, r, y, rh in rows:
        if state == "dispatched":
            counts["pending"] += n
        elif state in DOING_STATES:
            counts["doing"] += n
        elif state in AWAITING_CENTRE_STATES:
            counts["replied"] += n
        elif state in community_states:
            counts["community"] += n
        counts["red"] += r or 0
        counts["yellow"] += y or 0
        counts["rehandle"] += rh or 0
    return counts


def _co_tabs(session: Session, department_id: int, now: datetime, states: tuple[str, ...]) -> dict[str, list[int]]:
    """The open tickets on which the department still has its co-handling part (协办) to do,
    or, a community, the part its street office passed it (二级派单).

    Its part is to do while its assignment is dispatched (to sign) or signed (to reply
    on); once it has replied, the ticket is the main department's and the centre's.
    """
    rows = session.exec(
        select(Assignment, Ticket)
        .join(Ticket, Ticket.id == Assignment.ticket_id)
        .where(
            Assignment.department_id == department_id,
            Assignment.role.in_(PART_ROLES),
            Assignment.status.in_(("dispatched", "signed")),
            # A condition of the join, not an IN list of every open ticket: the department's
            # unfinished co-assignments are few (an index range), the district's open tickets
            # tens of thousands (probing with those cost 40 ms at a million tickets).
            Ticket.state.in_(states),
        )
    ).all()
    tabs: dict[str, list[int]] = {key: [] for key in INBOX_TABS}
    for part, ticket in rows:
        tabs["pending" if part.status == "dispatched" else "doing"].append(ticket.id)
        if part.role == "sub":
            # A community's part runs by its own clocks (red once passed).
            clock = part_deadline(part)
            if clock is not None and clock[1] <= now:
                tabs["red"].append(ticket.id)
            continue
        current = level(ticket, now)
        if current is not None and current.name in ("yellow", "red") and ticket.due_kind in LADDER_KINDS:
            tabs[current.name].append(ticket.id)
    return tabs


def inbox_counts(
    session: Session, department_id: int, now: datetime, states: tuple[str, ...], community_states: tuple[str, ...] = ()
) -> tuple[dict[str, int], dict[str, list[int]]]:
    """How many tickets each tab holds, and the ids of those the department co-handles (or, a
    community, was passed) in each; `states` are the open states of every workflow,
    `community_states` those in which a ticket is with a community."""
    counts = _main_counts(session, department_id, now, states, community_states)
    co = _co_tabs(session, department_id, now, states)
    for key in INBOX_TABS:
        counts[key] += len(co[key])
    return counts, co


def inbox_tickets(
    session: Session,
    actor: Actor,
    tab: str,
    co_ids: list[int],
    now: datetime,
    states: tuple[str, ...],
    *,
    offset: int,
    limit: int,
    community_states: tuple[str, ...] = (),
) -> list[Ticket]:
    """A page of one tab: the department's own tickets in it and those it co-handles there
    (`co_ids`, from inbox_counts), the nearest deadline first."""
    mine = and_(Ticket.main_department_id == actor.department_id, *_main_tab(tab, now, states, community_states))
    where = or_(mine, Ticket.id.in_(co_ids)) if co_ids else mine
    stmt = (
        select(Ticket)
        .where(where, visible_clause(actor))
        .order_by(Ticket.due_at.asc().nulls_last(), Ticket.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(session.exec(stmt).all())
