"""The department workbench (承办单位): the inbox by tab, the notices received, and the
leader's supervision orders (督办单).

Every count and list reads only what is open, through indexes: the department's open
tickets as main department by (main_department_id, state); the tickets it co-handles
by probing its assignments (department_id, ticket_id) with the open tickets (state).
The tab counts come from one grouped query, the page of rows from one query, names
from `Lookups`; nothing is read per row. Every change goes through the workflow
gateway (`fire`).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import and_, case, func, or_
from sqlmodel import Session, select

from hotline.api.deps import RuntimeDep
from hotline.deadlines.sla import LADDER_KINDS, level
from hotline.errors import HotlineError, NotFound
from hotline.models import Assignment, Notification, SupervisionOrder, Ticket
from hotline.notices import newest
from hotline.tickets import Lookups, visible_clause
from hotline.web.auth import PageUser, role_form_user, role_user
from hotline.web.render import duration_text, render
from hotline.web.views import page_message
from hotline.workflow.engine import fire

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
NOTICE_KINDS = ("warn", "urge", "supervise", "report")
# The inbox shows the reminders of the last week; older ones are on /notifications.
NOTICE_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    hint: str


TABS = (
    Tab("pending", "待签收", "已派至本单位、尚未签收的工单，请在签收时限内签收"),
    Tab("doing", "办理中", "本单位已签收、正在办理的工单（含经批准挂起的）"),
    Tab("yellow", "即将超期", "时限将到（预警）的工单，请优先办理"),
    Tab("red", "已超期", "已超过签收或办理时限的工单"),
    Tab("replied", "已回复", "已提交中心、等待审核的工单：办结回复待审核，或退单待审"),
    Tab("rehandle", "重办件", "回访不满意、退回本单位重新办理的工单"),
)
TAB_KEYS = tuple(t.key for t in TABS)
# The tabs by the ticket's state, for the department that handles it as main department.
DOING_STATES = ("in_progress", "suspended")
AWAITING_CENTRE_STATES = ("replied", "returned")


def deadline_view(ticket: Ticket, now: datetime) -> dict[str, Any]:
    """How a ticket's running deadline reads in a list: colour, time, time left or overdue."""
    current = level(ticket, now)
    if current is None or ticket.due_at is None:
        if ticket.suspended_at is not None:
            return {"level": None, "at": None, "text": "挂起中，计时暂停"}
        return {"level": None, "at": None, "text": ""}
    left = (ticket.due_at - now).total_seconds()
    text = f"超期 {duration_text(left)}" if left <= 0 else f"剩余 {duration_text(left)}"
    return {"level": current.name, "at": ticket.due_at, "text": text, "kind": ticket.due_kind}


def action_message(exc: HotlineError) -> str:
    """What a workbench says when an action fails; a stale list gets plain words."""
    if exc.status_code == 409 and "version" in exc.extra:
        return "该工单刚刚已被他人处理（状态已变化），列表已刷新，请核对后再操作"
    return page_message(exc)


def _main_tab_conditions(tab: str, now: datetime, states: tuple[str, ...]) -> list[Any]:
    """The tab's condition on the tickets of which the department is the main department."""
    clock = Ticket.due_kind.in_(LADDER_KINDS)
    return {
        "pending": [Ticket.state == "dispatched"],
        "doing": [Ticket.state.in_(DOING_STATES)],
        "yellow": [Ticket.state.in_(states), clock, Ticket.due_at > now, Ticket.warn_at <= now],
        "red": [Ticket.state.in_(states), clock, Ticket.due_at <= now],
        "replied": [Ticket.state.in_(AWAITING_CENTRE_STATES)],
        "rehandle": [Ticket.state.in_(states), Ticket.rehandle_count > 0],
    }[tab]


def _main_counts(session: Session, department_id: int, now: datetime, states: tuple[str, ...]) -> dict[str, int]:
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
    counts = dict.fromkeys(TAB_KEYS, 0)
    for state, n, r, y, rh in rows:
        if state == "dispatched":
            counts["pending"] += n
        elif state in DOING_STATES:
            counts["doing"] += n
        elif state in AWAITING_CENTRE_STATES:
            counts["replied"] += n
        counts["red"] += r or 0
        counts["yellow"] += y or 0
        counts["rehandle"] += rh or 0
    return counts


def _co_tabs(session: Session, department_id: int, now: datetime, states: tuple[str, ...]) -> dict[str, list[int]]:
    """The open tickets on which the department still has its co-handling part (协办) to do.

    Its part is to do while its assignment is dispatched (to sign) or signed (to reply
    on); once it has replied, the ticket is the main department's and the centre's.
    """
    rows = session.exec(
        select(Assignment.status, Ticket)
        .join(Ticket, Ticket.id == Assignment.ticket_id)
        .where(
            Assignment.department_id == department_id,
            Assignment.role == "co",
            Assignment.status.in_(("dispatched", "signed")),
            # A condition of the join, not an IN list of every open ticket: the department's
            # unfinished co-assignments are few (an index range), the district's open tickets
            # tens of thousands (probing with those cost 40 ms at a million tickets).
            Ticket.state.in_(states),
        )
    ).all()
    tabs: dict[str, list[int]] = {key: [] for key in TAB_KEYS}
    for status, ticket in rows:
        tabs["pending" if status == "dispatched" else "doing"].append(ticket.id)
        current = level(ticket, now)
        if current is not None and current.name in ("yellow", "red") and ticket.due_kind in LADDER_KINDS:
            tabs[current.name].append(ticket.id)
    return tabs


def _inbox_context(session: Session, runtime, user: PageUser, tab: str, page: int, now: datetime) -> dict[str, Any]:
    department_id = user.actor.department_id
    states = runtime.workflows.open_states
    counts = _main_counts(session, department_id, now, states)
    co = _co_tabs(session, department_id, now, states)
    for key in TAB_KEYS:
        counts[key] += len(co[key])
    total = counts[tab]
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(page, pages)
    mine = and_(Ticket.main_department_id == department_id, *_main_tab_conditions(tab, now, states))
    where = or_(mine, Ticket.id.in_(co[tab])) if co[tab] else mine
    stmt = (
        select(Ticket)
        .where(where, visible_clause(user.actor))
        .order_by(Ticket.due_at.asc().nulls_last(), Ticket.id.desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    tickets = session.exec(stmt).all()
    co_ids = {i for ids in co.values() for i in ids}
    co_pending = set(co["pending"])
    lookups = Lookups(session)
    rows = []
    for t in tickets:
        wf = runtime.workflows.get(t.workflow)
        category = lookups.categories.get(t.category_id)
        is_co = t.id in co_ids
        rows.append(
            {
                "id": t.id,
                "number": t.number,
                "title": t.title,
                "type": t.type,
                "urgency": t.urgency,
                "category": category.name if category else None,
                "state": t.state,
                "state_label": wf.state_label(t.state),
                "version": t.version,
                "co": is_co,
                "rehandle_count": t.rehandle_count,
                "can_sign": (t.id in co_pending) if is_co else t.state == "dispatched",
                "due": deadline_view(t, now),
            }
        )
    recent = newest(
        session, user.actor, 6, Notification.kind.in_(NOTICE_KINDS), Notification.created_at >= now - NOTICE_WINDOW
    )
    open_orders = None
    if user.role == "leader":
        open_orders = session.exec(
            select(func.count())
            .select_from(SupervisionOrder)
            .where(SupervisionOrder.department_id == department_id, SupervisionOrder.status == "open")
        ).one()
    return {
        "tabs": TABS,
        "tab": tab,
        "tab_info": next(t for t in TABS if t.key == tab),
        "counts": counts,
        "rows": rows,
        "page": page,
        "pages": pages,
        "total": total,
        "notices": recent,
        "open_orders": open_orders,
        "now": now,
    }


@router.get("/department/inbox", response_class=HTMLResponse)
def inbox(
    request: Request,
    runtime: RuntimeDep,
    user: Annotated[PageUser, role_user("handler", "leader")],
    tab: Annotated[str, Query(pattern="^(" + "|".join(TAB_KEYS) + ")$")] = "pending",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    signed: Annotated[str | None, Query(pattern=r"^\d{1,20}$")] = None,
) -> Response:
    """The department's inbox: tickets by tab, with counts, and the notices received."""
    now = runtime.now()
    with runtime.db.read_session() as session:
        ctx = _inbox_context(session, runtime, user, tab, page, now)
    if signed:
        ctx["flash"] = f"已签收工单 {signed}，已转入“办理中”"
    return render(request, "department/inbox.html", ctx)


@router.post("/department/inbox/{ticket_id}/sign", response_class=HTMLResponse)
def sign(
    request: Request,
    ticket_id: int,
    runtime: RuntimeDep,
    user: Annotated[PageUser, role_form_user("handler", "leader")],
    version: Annotated[int | None, Form()] = None,
    page: Annotated[int, Form(ge=1)] = 1,
) -> Response:
    """Sign for a ticket from the inbox (签收), through the workflow gateway."""
    now = runtime.now()
    try:
        with runtime.db.session() as session:
            ticket = fire(session, runtime, ticket_id, "sign", user.actor, {}, now=now, version=version).ticket
            number = ticket.number
    except HotlineError as exc:
        with runtime.db.read_session() as session:
            ctx = _inbox_context(session, runtime, user, "pending", page, now)
        ctx["error"] = action_message(exc)
        return render(request, "department/inbox.html", ctx, exc.status_code)
    return RedirectResponse(f"/department/inbox?tab=pending&page={page}&signed={number}", status_code=303)


ORDERS_PAGE_SIZE = 10


def _orders_of(session: Session, department_id: int, status: str, page: int, size: int, newest_first: bool):
    """One page of the department's supervision orders in a status, with their tickets, and the count."""
    mine = (SupervisionOrder.department_id == department_id, SupervisionOrder.status == status)
    total = session.exec(select(func.count()).select_from(SupervisionOrder).where(*mine)).one()
    pages = max((total + size - 1) // size, 1)
    page = min(page, pages)
    # In issue order (id): the (department_id, status) index gives it without a sort.
    order = SupervisionOrder.id.desc() if newest_first else SupervisionOrder.id
    rows = session.exec(
        select(SupervisionOrder, Ticket)
        .join(Ticket, Ticket.id == SupervisionOrder.ticket_id)
        .where(*mine)
        .order_by(order)
        .offset((page - 1) * size)
        .limit(size)
    ).all()
    return rows, total, page, pages


def _orders_context(session: Session, runtime, user: PageUser, page: int, apage: int, now: datetime) -> dict[str, Any]:
    department_id = user.actor.department_id
    open_rows, open_total, page, pages = _orders_of(session, department_id, "open", page, ORDERS_PAGE_SIZE, False)
    answered_rows, answered_total, apage, apages = _orders_of(
        session, department_id, "answered", apage, PAGE_SIZE, True
    )
    return {
        "open_rows": [
            (o, t, runtime.workflows.get(t.workflow).state_label(t.state), deadline_view(t, now)) for o, t in open_rows
        ],
        "open_total": open_total,
        "page": page,
        "pages": pages,
        "answered_rows": answered_rows,
        "answered_total": answered_total,
        "lapsed_total": session.exec(
            select(func.count())
            .select_from(SupervisionOrder)
            .where(SupervisionOrder.department_id == department_id, SupervisionOrder.status == "lapsed")
        ).one(),
        "apage": apage,
        "apages": apages,
        "now": now,
    }


@router.get("/department/supervision", response_class=HTMLResponse)
def supervision_orders(
    request: Request,
    runtime: RuntimeDep,
    user: Annotated[PageUser, role_user("leader")],
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    apage: Annotated[int, Query(ge=1, le=100000)] = 1,
    answered: Annotated[str | None, Query(pattern=r"^\d{1,20}$")] = None,
) -> Response:
    """The department's supervision orders: open ones to answer (oldest first), answered ones below."""
    with runtime.db.read_session() as session:
        ctx = _orders_context(session, runtime, user, page, apage, runtime.now())
    if answered:
        ctx["flash"] = f"已答复工单 {answered} 的督办单"
    return render(request, "department/supervision.html", ctx)


@router.post("/department/supervision/{order_id}/answer", response_class=HTMLResponse)
def answer_order(
    request: Request,
    order_id: int,
    runtime: RuntimeDep,
    user: Annotated[PageUser, role_form_user("leader")],
    answer: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Answer a supervision order (答复督办), through the workflow gateway."""
    now = runtime.now()
    try:
        with runtime.db.session() as session:
            order = session.get(SupervisionOrder, order_id)
            if order is None or order.department_id != user.actor.department_id:
                raise NotFound(f"supervision order {order_id} not found, or not your department's")
            if not answer.strip():
                raise HotlineError("answer is blank", status_code=422, zh="请填写答复内容后再提交")
            payload = {"order": order_id, "answer": answer}
            ticket = fire(session, runtime, order.ticket_id, "answer_supervision", user.actor, payload, now=now).ticket
            number = ticket.number
    except HotlineError as exc:
        if exc.status_code == 404:
            raise
        with runtime.db.read_session() as session:
            ctx = _orders_context(session, runtime, user, 1, 1, now)
        ctx["error"] = action_message(exc)
        return render(request, "department/supervision.html", ctx, exc.status_code)
    return RedirectResponse(f"/department/supervision?answered={number}", status_code=303)
