"""What the centre watches and decides: overdue tickets by department, the escalation
trend, the review queues, and supervision orders (督办单).

The overdue counts read only tickets whose running deadline can be yellow or red now:
an index range on `tickets.due_at` up to a horizon (see `yellow_horizon`), aggregated
with GROUP BY. The trend reads the escalation record through (step, at). The review
queues read pending approvals through (kind, status) and replied tickets through
(state, created_at); a department's orders through (department_id, status).
"""

from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Integer, and_, case, func, literal, or_, union_all
from sqlmodel import Session, select

from hotline import appends, notices
from hotline.db import UTCDateTime
from hotline.deadlines import sla
from hotline.deadlines.calendar import LOCAL_TZ, WorkCalendar
from hotline.deadlines.sla import LADDER, LADDER_KINDS, compute_handle_by
from hotline.errors import NotFound
from hotline.models import (
    DEPARTMENT_ROLES,
    Approval,
    Assignment,
    Department,
    Escalation,
    SupervisionOrder,
    Ticket,
    TicketEvent,
    User,
)
from hotline.workflow import texts
from hotline.workflow.definition import Workflow
from hotline.workflow.engine import SCHEDULER, Actor, changing, fire
from hotline.workflow.rules import escalation_insert

TREND_DAYS = 30
TREND_STEPS = ("warn", "urge", "supervise")
# The requests a department makes of the centre, in the approvals table; the fourth review
# queue, replies, is the tickets in the state `replied`.
APPROVAL_KINDS = ("return", "extension", "suspension")
REVIEW_KINDS = (*APPROVAL_KINDS, "reply")


# --- overdue tickets ----------------------------------------------------------------


def yellow_horizon(runtime, session: Session, now: datetime) -> datetime:
    """A time after the deadline of every ticket that is yellow at `now`.

    A deadline turns yellow at most `warning.max_working_days` before it falls: that
    many working days (working seconds, as the calendar counts them), or as many natural
    days for limits in hours. So a yellow ticket's deadline lies before the first instant
    more than that is left. It only bounds the index range read; whether a ticket is
    yellow is still decided by its stored `warn_at`.
    """
    lead = 86400 * max(wf.limits.warning.max_working_days for wf in runtime.workflows.workflows.values()) + 1
    working = runtime.calendar(session).add_working_seconds(now, lead).at
    return max(working, now + timedelta(seconds=lead))


def overdue_by_department(session: Session, runtime, now: datetime) -> tuple[dict[int | None, tuple[int, int]], int]:
    """Yellow and red tickets by main department (only departments that have some), and
    how many department deadlines fall due later today."""
    horizon = yellow_horizon(runtime, session, now)
    tomorrow = datetime.combine(now.astimezone(LOCAL_TZ).date() + timedelta(days=1), time.min, LOCAL_TZ)
    red = func.sum(case((Ticket.due_at <= now, 1), else_=0))
    yellow = func.sum(case((and_(Ticket.due_at > now, Ticket.warn_at <= now), 1), else_=0))
    due_today = func.sum(case((and_(Ticket.due_at > now, Ticket.due_at < tomorrow), 1), else_=0))
    # One pass over the due_at range up to the horizon (which lies past tomorrow). Grouped
    # by an expression, not the bare column: a bare column would tempt SQLite to walk the
    # whole (main_department_id, state) index in group order instead of that small range.
    main_department = Ticket.main_department_id + 0
    rows = session.exec(
        select(main_department, yellow, red, due_today)
        .where(Ticket.due_at <= max(horizon, tomorrow), Ticket.due_kind.in_(LADDER_KINDS))
        .group_by(main_department)
    ).all()
    counts = {dept_id: (y or 0, r or 0) for dept_id, y, r, _ in rows if y or r}
    return counts, sum(t or 0 for *_, t in rows)


def overdue_tickets(
    session: Session,
    runtime,
    now: datetime,
    *,
    level: str,
    department_id: int | None,
    sort: str,
    direction: str,
    offset: int,
    limit: int,
) -> list[Ticket]:
    """A page of the tickets whose department deadline is yellow or red (`level`: only
    those), of one main department or all, by how long overdue, department or deadline."""
    conditions = [
        Ticket.due_at <= yellow_horizon(runtime, session, now),
        Ticket.due_kind.in_(LADDER_KINDS),
        or_(Ticket.due_at <= now, Ticket.warn_at <= now),
    ]
    if level == "red":
        conditions.append(Ticket.due_at <= now)
    elif level == "yellow":
        conditions.append(Ticket.due_at > now)
    if department_id is not None:
        conditions.append(Ticket.main_department_id == department_id)
    stmt = select(Ticket).where(*conditions)
    asc = direction == "asc"
    if sort == "department":
        stmt = stmt.join(Department, Department.id == Ticket.main_department_id, isouter=True)
        order = [Department.code.asc() if asc else Department.code.desc(), Ticket.due_at.asc(), Ticket.id]
    elif sort == "deadline":
        order = [Ticket.due_at.asc() if asc else Ticket.due_at.desc(), Ticket.id]
    else:
        # How long overdue: the earlier the deadline, the longer overdue.
        order = [Ticket.due_at.asc() if not asc else Ticket.due_at.desc(), Ticket.id]
    return list(session.exec(stmt.order_by(*order).offset(offset).limit(limit)).all())


def ladder_progress(session: Session, tickets: list[Ticket]) -> dict[int, tuple[str, str | None]]:
    """How far each ticket's current deadline has been escalated, whoever did it (the
    scheduler's ladder or a supervisor's 催办/督办), and the status of its latest supervision
    order (open, answered, lapsed; None: never supervised). Tickets never escalated are left out.

    Two reads by the tickets' ids (the ticket_id indexes), a page at a time.
    """
    ids = [t.id for t in tickets]
    if not ids:
        return {}
    current = {t.id: (t.due_kind, t.due_at) for t in tickets}
    rank = {step: i for i, step in enumerate(LADDER)}
    steps: dict[int, str] = {}
    for ticket_id, kind, deadline, step in session.exec(
        select(Escalation.ticket_id, Escalation.deadline_kind, Escalation.deadline_at, Escalation.step).where(
            Escalation.ticket_id.in_(ids)
        )
    ).all():
        if (kind, deadline) == current[ticket_id] and rank[step] > rank.get(steps.get(ticket_id, ""), -1):
            steps[ticket_id] = step
    orders = {
        ticket_id: status
        for ticket_id, status in session.exec(
            select(SupervisionOrder.ticket_id, SupervisionOrder.status)
            .where(SupervisionOrder.ticket_id.in_(ids))
            .order_by(SupervisionOrder.id)
        ).all()
    }
    progress = {}
    for ticket_id in ids:
        step = steps.get(ticket_id)
        if ticket_id in orders and rank.get(step or "", -1) < rank["supervise"]:
            # An order outlives the deadline it was issued against (e.g. after an extension).
            step = "supervise"
        if step:
            progress[ticket_id] = (step, orders.get(ticket_id))
    return progress


def urge_interval(wf: Workflow) -> int:
    """The minutes a person waits between two urges of a ticket of this workflow: its limit,
    when its `urge` event names the `urge_interval` guard (else 0: no wait)."""
    urge = wf.events.get("urge")
    named = urge is not None and any(ref.name == "urge_interval" for ref in urge.conditions)
    return wf.limits.urge_interval_minutes if named else 0


def urge_held(session: Session, runtime, tickets: list[Ticket], now: datetime) -> dict[int, datetime]:
    """Until when a person may not urge each ticket again (the workflow's
    `urge_interval_minutes` after its last urge; the `urge_interval` guard): only those held
    now. One read by the tickets' ids, through the history's (ticket_id, id) index."""
    ids = [t.id for t in tickets]
    if not ids:
        return {}
    last = dict(
        session.exec(
            select(TicketEvent.ticket_id, func.max(TicketEvent.at))
            .where(TicketEvent.ticket_id.in_(ids), TicketEvent.event == "urge")
            .group_by(TicketEvent.ticket_id)
        ).all()
    )
    held = {}
    for t in tickets:
        minutes = urge_interval(runtime.workflows.get(t.workflow))
        if t.id in last and minutes:
            until = last[t.id] + timedelta(minutes=minutes)
            if until > now:
                held[t.id] = until
    return held


def escalation_trend(session: Session, now: datetime) -> dict[str, Any]:
    """Escalation steps per local day over the last 30 days: warned, overdue (urged), supervised.

    The days are a list of rows joined by range on (step, at): one index range count per
    day and step, no date arithmetic per row.
    """
    today = now.astimezone(LOCAL_TZ).date()
    first = today - timedelta(days=TREND_DAYS - 1)
    bounds = [(i, datetime.combine(first + timedelta(days=i), time.min, LOCAL_TZ)) for i in range(TREND_DAYS + 1)]
    days = union_all(
        *(
            select(
                literal(i, Integer).label("i"),
                literal(lo, UTCDateTime()).label("lo"),
                literal(min(hi, now), UTCDateTime()).label("hi"),
            )
            for (i, lo), (_, hi) in zip(bounds, bounds[1:], strict=False)
        )
    ).subquery("trend_days")
    rows = session.exec(
        select(days.c.i, Escalation.step, func.count())
        .select_from(days)
        .join(
            Escalation,
            and_(
                Escalation.step.in_(TREND_STEPS),
                Escalation.deadline_kind.not_in(tuple(sla.COMMUNITY_KINDS.values())),
                Escalation.at >= days.c.lo,
                Escalation.at < days.c.hi,
            ),
        )
        .group_by(days.c.i, Escalation.step)
    ).all()
    series = {step: [0] * TREND_DAYS for step in TREND_STEPS}
    for i, step, n in rows:
        series[step][i] = n
    return {"days": [(first + timedelta(days=i)).strftime("%m-%d") for i in range(TREND_DAYS)], **series}


# --- a community's own clocks (二级派单) ------------------------------------------------


def escalate_part(
    session: Session, runtime, ticket: Ticket, part: Assignment, now: datetime
) -> list[tuple[str, str]] | None:
    """The due steps of a community's own ladder on its running clock (the ticket locked, the
    part due), each once: the escalation record (unique on it), the notices and a history
    row; the part's next look stored. A warning once the clock has passed is noise and is
    passed over. Returns the steps taken, with the clock each was on; None out of office
    hours, when the notices wait for the next office morning (the part's next look then)."""
    cal = runtime.calendar(session)
    office = cal.next_office_time(now)
    if office > now:
        part.next_due_at = office
        session.add(part)
        return None
    wf = runtime.workflows.get(ticket.workflow)
    community = session.get(Department, part.department_id)
    taken = []
    while (at := sla.part_step_time(cal, wf, ticket, part)) is not None and at <= now:
        step = sla.COMMUNITY_LADDER[part.escalation_step]
        kind, deadline = sla.part_deadline(part)
        part.escalation_step += 1
        if step == "warn" and now >= deadline:
            continue
        details = {
            "auto": True,
            "step": step,
            "community": community.code,
            "deadline": sla.COMMUNITY_KINDS[kind],
            "deadline_at": deadline.astimezone(UTC).isoformat(),
        }
        with changing(session, runtime, ticket, f"community_{step}", SCHEDULER, now=now, details=details):
            appends.add(
                session,
                escalation_insert(session.get_bind().dialect.name),
                {
                    "ticket_id": ticket.id,
                    "department_id": community.id,
                    "deadline_kind": sla.COMMUNITY_KINDS[kind],
                    "deadline_at": deadline,
                    "step": step,
                    "at": now,
                    "by_scheduler": True,
                },
            )
            for role, department_id, title, body in texts.community_ladder_notices(
                step, ticket.number, community, kind, deadline
            ):
                notices.send(
                    session,
                    kind=step,
                    title=title,
                    body=body,
                    at=now,
                    ticket=ticket,
                    role=role,
                    department_id=department_id,
                )
        taken.append((step, sla.COMMUNITY_KINDS[kind]))
    sla.watch_part(cal, wf, ticket, part)
    session.add(part)
    return taken


# --- the review queues --------------------------------------------------------------


def review_counts(session: Session) -> dict[str, int]:
    """How many requests wait in each review queue (REVIEW_KINDS)."""
    counts = dict.fromkeys(REVIEW_KINDS, 0)
    for kind, n in session.exec(
        select(Approval.kind, func.count())
        .where(Approval.kind.in_(APPROVAL_KINDS), Approval.status == "pending")
        .group_by(Approval.kind)
    ).all():
        counts[kind] = n
    counts["reply"] = session.exec(select(func.count()).select_from(Ticket).where(Ticket.state == "replied")).one()
    return counts


def review_queue(session: Session, kind: str, *, offset: int, limit: int) -> list[tuple[Approval | None, Ticket]]:
    """A page of one review queue, oldest request first: pending approvals of the kind with
    their tickets, or (kind "reply") the replied tickets."""
    if kind == "reply":
        tickets = session.exec(
            select(Ticket)
            .where(Ticket.state == "replied")
            .order_by(Ticket.replied_at.asc().nulls_last(), Ticket.id)
            .offset(offset)
            .limit(limit)
        ).all()
        return [(None, t) for t in tickets]
    return list(
        session.exec(
            select(Approval, Ticket)
            .join(Ticket, Ticket.id == Approval.ticket_id)
            .where(Approval.kind == kind, Approval.status == "pending")
            .order_by(Approval.requested_at, Approval.id)
            .offset(offset)
            .limit(limit)
        ).all()
    )


def co_results(session: Session, ticket_ids: list[int]) -> dict[int, list[tuple[int, str | None]]]:
    """The co-handling departments of each ticket, with what each replied (None: not yet)."""
    found: dict[int, list[tuple[int, str | None]]] = {}
    if not ticket_ids:
        return found
    for ticket_id, department_id, result in session.exec(
        select(Assignment.ticket_id, Assignment.department_id, Assignment.result)
        .where(Assignment.ticket_id.in_(ticket_ids), Assignment.role == "co", Assignment.status != "withdrawn")
        .order_by(Assignment.id)
    ).all():
        found.setdefault(ticket_id, []).append((department_id, result))
    return found


def user_names(session: Session, user_ids: set[int]) -> dict[int, str]:
    """The display names of users (their username where they have none)."""
    if not user_ids:
        return {}
    rows = session.exec(select(User.id, User.display_name, User.username).where(User.id.in_(user_ids))).all()
    return {uid: display or username for uid, display, username in rows}


def handle_by_if_extended(cal: WorkCalendar, wf: Workflow, ticket: Ticket, days: int) -> datetime | None:
    """The ticket's handling deadline as it would be with `days` more working days."""
    moved = SimpleNamespace(
        handle_started_at=ticket.handle_started_at,
        type=ticket.type,
        urgency=ticket.urgency,
        extension_days=ticket.extension_days + days,
        suspended_seconds=ticket.suspended_seconds,
    )
    after = compute_handle_by(cal, wf, moved)
    return after.at if after else None


# --- supervision orders -------------------------------------------------------------


def count_orders(session: Session, status: str, department_id: int | None = None) -> int:
    """How many supervision orders are in a status: a department's, or all of them."""
    stmt = select(func.count()).select_from(SupervisionOrder).where(SupervisionOrder.status == status)
    if department_id is not None:
        stmt = stmt.where(SupervisionOrder.department_id == department_id)
    return session.exec(stmt).one()


def open_orders_by_department(session: Session, department_ids: list[int]) -> dict[int, int]:
    """How many open supervision orders each of the departments has (those with none left out)."""
    return dict(
        session.exec(
            select(SupervisionOrder.department_id, func.count())
            .where(SupervisionOrder.department_id.in_(department_ids), SupervisionOrder.status == "open")
            .group_by(SupervisionOrder.department_id)
        ).all()
    )


def department_orders(
    session: Session, department_id: int, status: str, *, newest_first: bool, offset: int, limit: int
) -> list[tuple[SupervisionOrder, Ticket]]:
    """A page of a department's supervision orders in a status, with their tickets."""
    # In issue order (id): the (department_id, status) index gives it without a sort.
    order = SupervisionOrder.id.desc() if newest_first else SupervisionOrder.id
    return list(
        session.exec(
            select(SupervisionOrder, Ticket)
            .join(Ticket, Ticket.id == SupervisionOrder.ticket_id)
            .where(SupervisionOrder.department_id == department_id, SupervisionOrder.status == status)
            .order_by(order)
            .offset(offset)
            .limit(limit)
        ).all()
    )


def ticket_orders(session: Session, ticket_id: int) -> list[SupervisionOrder]:
    """Every supervision order of a ticket, in issue order."""
    return list(
        session.exec(
            select(SupervisionOrder).where(SupervisionOrder.ticket_id == ticket_id).order_by(SupervisionOrder.id)
        ).all()
    )


def answer_order(
    session: Session, runtime, order_id: int, actor: Actor, answer: str, *, now: datetime
) -> tuple[SupervisionOrder, Ticket]:
    """A department leader answers a supervision order (答复督办), through the workflow gateway;
    a department's order is not found by another department."""
    order = session.get(SupervisionOrder, order_id)
    if order is None or (actor.role in DEPARTMENT_ROLES and order.department_id != actor.department_id):
        raise NotFound(
            f"supervision order {order_id} not found, or not visible to you", zh="督办单不存在，或您无权查看"
        )
    payload = {"order": order_id, "answer": answer}
    ticket = fire(session, runtime, order.ticket_id, "answer_supervision", actor, payload, now=now).ticket
    return order, ticket
