"""The department workbench (承办单位): the inbox by tab, the notices received, and the
leader's supervision orders (督办单).

The queries are hotline.inbox's and hotline.supervision's; names come from `Lookups`,
nothing is read per row. Every change goes through the workflow gateway (`fire`).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, select

from hotline.api.deps import RuntimeDep
from hotline.deadlines.sla import level, part_deadline
from hotline.errors import Invalid
from hotline.inbox import INBOX_TABS, inbox_counts, inbox_tickets
from hotline.inputs import MAX_PAGE, IdPath, PageQuery
from hotline.models import Assignment, Department, Notification, Ticket
from hotline.notices import newest, role_ways
from hotline.supervision import answer_order, count_orders, department_orders
from hotline.ticket_view import Lookups
from hotline.web.auth import PageUser, role_form_user, role_user
from hotline.web.forms import submit
from hotline.web.render import duration_text, render
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
    Tab("community", "社区办理", "已派至下辖社区的工单：待社区签收、社区办理中；社区已回复的，请审核后再答复中心"),
)
# A community's own tickets are those its street office passed it: no co-handling, no tab of
# tickets passed further down.
COMMUNITY_TABS = ("pending", "doing", "yellow", "red")


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


def part_deadline_view(part: Assignment, now: datetime) -> dict[str, Any]:
    """How the clock of a community's part reads in its list: its own sign-by, then handle-by."""
    clock = part_deadline(part)
    if clock is None:
        return {"level": None, "at": None, "text": ""}
    kind, at = clock
    left = (at - now).total_seconds()
    text = f"超期 {duration_text(left)}" if left <= 0 else f"剩余 {duration_text(left)}"
    return {"level": "red" if left <= 0 else "green", "at": at, "text": text, "kind": kind}


def _community_parts(session: Session, department_id: int, ticket_ids: list[int]) -> dict[int, Assignment]:
    """A community's parts of these tickets, by ticket."""
    if not ticket_ids:
        return {}
    rows = session.exec(
        select(Assignment).where(
            Assignment.ticket_id.in_(ticket_ids),
            Assignment.department_id == department_id,
            Assignment.role == "sub",
            Assignment.status != "withdrawn",
        )
    ).all()
    return {a.ticket_id: a for a in rows}


def _tabs(session: Session, department_id: int) -> tuple[tuple[Tab, ...], bool]:
    """The inbox's tabs for the department, and whether it is a community: a street office with
    communities has the tab of tickets passed down, a community only its own tabs."""
    dept = session.get(Department, department_id)
    if dept.parent_id is not None:
        return tuple(t for t in TABS if t.key in COMMUNITY_TABS), True
    has_communities = session.exec(select(Department.id).where(Department.parent_id == department_id)).first()
    return tuple(t for t in TABS if t.key != "community" or has_communities), False


def _inbox_context(session: Session, runtime, user: PageUser, tab: str, page: int, now: datetime) -> dict[str, Any]:
    department_id = user.actor.department_id
    states = runtime.workflows.open_states
    community_states = runtime.workflows.community_states
    tabs, is_community = _tabs(session, department_id)
    if tab not in {t.key for t in tabs}:
        tab = tabs[0].key
    counts, co = inbox_counts(session, department_id, now, states, community_states)
    total = counts[tab]
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(page, pages)
    tickets = inbox_tickets(
        session,
        user.actor,
        tab,
        co[tab],
        now,
        states,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
        community_states=community_states,
    )
    co_ids = {i for ids in co.values() for i in ids}
    co_pending = set(co["pending"])
    parts = _community_parts(session, department_id, [t.id for t in tickets]) if is_community else {}
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
                "co": is_co and not is_community,
                "rehandle_count": t.rehandle_count,
                "can_sign": (t.id in co_pending) if is_co else t.state == "dispatched",
                "due": part_deadline_view(parts[t.id], now) if t.id in parts else deadline_view(t, now),
            }
        )
    # The ladder's notices, addressed to the department's handlers or leader.
    recent = newest(
        session,
        user.actor,
        6,
        Notification.kind.in_(NOTICE_KINDS),
        Notification.created_at >= now - NOTICE_WINDOW,
        ways=role_ways(user.actor),
    )
    open_orders = count_orders(session, "open", department_id) if user.role == "leader" else None
    return {
        "tabs": tabs,
        "tab": tab,
        "tab_info": next(t for t in tabs if t.key == tab),
        "is_community": is_community,
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
    tab: Annotated[str, Query(pattern="^(" + "|".join(INBOX_TABS) + ")$")] = "pending",
    page: PageQuery = 1,
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
    ticket_id: IdPath,
    runtime: RuntimeDep,
    user: Annotated[PageUser, role_form_user("handler", "leader")],
    version: Annotated[int | None, Form()] = None,
    page: Annotated[int, Form(ge=1, le=MAX_PAGE)] = 1,
) -> Response:
    """Sign for a ticket from the inbox (签收), through the workflow gateway."""
    now = runtime.now()

    def change(session: Session) -> str:
        # A community signs for the part its street office passed it (二级派单).
        part = _community_parts(session, user.actor.department_id, [ticket_id])
        event = "sub_sign" if part else "sign"
        ticket = fire(session, runtime, ticket_id, event, user.actor, {}, now=now, version=version).ticket
        return f"/department/inbox?tab=pending&page={page}&signed={ticket.number}"

    return submit(
        request,
        runtime,
        change,
        template="department/inbox.html",
        context=lambda session: _inbox_context(session, runtime, user, "pending", page, now),
    )


ORDERS_PAGE_SIZE = 10


def _orders_page(session: Session, department_id: int, status: str, page: int, size: int, newest_first: bool):
    """One page of the department's supervision orders in a status, the count, the page and the pages."""
    total = count_orders(session, status, department_id)
    pages = max((total + size - 1) // size, 1)
    page = min(page, pages)
    rows = department_orders(
        session, department_id, status, newest_first=newest_first, offset=(page - 1) * size, limit=size
    )
    return rows, total, page, pages


def _orders_context(session: Session, runtime, user: PageUser, page: int, apage: int, now: datetime) -> dict[str, Any]:
    department_id = user.actor.department_id
    open_rows, open_total, page, pages = _orders_page(session, department_id, "open", page, ORDERS_PAGE_SIZE, False)
    answered_rows, answered_total, apage, apages = _orders_page(
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
        "lapsed_total": count_orders(session, "lapsed", department_id),
        "apage": apage,
        "apages": apages,
        "now": now,
    }


@router.get("/department/supervision", response_class=HTMLResponse)
def supervision_orders(
    request: Request,
    runtime: RuntimeDep,
    user: Annotated[PageUser, role_user("leader")],
    page: PageQuery = 1,
    apage: PageQuery = 1,
    answered: Annotated[str | None, Query(pattern=r"^\d{1,20}$")] = None,
) -> Response:
    """The department's supervision orders: open ones to answer (oldest first), answered ones below."""
    with runtime.db.read_session() as session:
        ctx = _orders_context(session, runtime, user, page, apage, runtime.now())
    if answered:
        ctx["flash"] = f"已答复工单 {answered} 的督办单"
    return render(request, "department/supervision.html", ctx)


@router.post("/department/supervision/{order_id}/answer", response_class=HTMLResponse)
def answer_order_form(
    request: Request,
    order_id: IdPath,
    runtime: RuntimeDep,
    user: Annotated[PageUser, role_form_user("leader")],
    answer: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Answer a supervision order (答复督办), through the workflow gateway."""
    now = runtime.now()

    def change(session: Session) -> str:
        if not answer.strip():
            raise Invalid("answer is blank", field="answer", zh="请填写答复内容后再提交")
        _, ticket = answer_order(session, runtime, order_id, user.actor, answer, now=now)
        return f"/department/supervision?answered={ticket.number}"

    return submit(
        request,
        runtime,
        change,
        template="department/supervision.html",
        context=lambda session: _orders_context(session, runtime, user, 1, 1, now),
    )
