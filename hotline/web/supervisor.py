"""The supervisor workbench (督办员): the overdue dashboard and the review queues.

The dashboard reads only tickets whose running deadline can be yellow or red now: an
index range on `tickets.due_at` up to a horizon (see `yellow_horizon`), aggregated
with GROUP BY. The trend reads the escalation record through (step, at). The review
queues read pending approvals through (kind, status) and replied tickets through
(state, created_at). Every decision goes through the workflow gateway (`fire`).
"""

import json
from datetime import datetime, time, timedelta
from types import SimpleNamespace
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Integer, and_, case, func, literal, or_, union_all
from sqlmodel import Session, select

from hotline.api.deps import RuntimeDep
from hotline.db import UTCDateTime
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.deadlines.sla import LADDER, LADDER_KINDS, compute_handle_by
from hotline.errors import HotlineError, Invalid
from hotline.models import Approval, Assignment, Department, Escalation, SupervisionOrder, Ticket, User
from hotline.tickets import Lookups
from hotline.web.auth import PageUser, role_form_user, role_user
from hotline.web.department import action_message, deadline_view
from hotline.web.forms import payload_from_form
from hotline.web.render import render
from hotline.workflow.engine import fire
from hotline.workflow.fields import FIELDS, RETURN_REASON_CODES

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
TREND_DAYS = 30
TREND_STEPS = ("warn", "urge", "supervise")
# What the dashboard's list can be sorted by, and each key's first direction.
SORTS = {"overdue": "desc", "department": "asc", "deadline": "asc"}
STEP_LABELS = {"warn": "已预警", "urge": "已催办", "supervise": "已督办", "report": "已通报"}
NOTICE_EVENTS = {"urge": "催办", "supervise": "督办"}

REVIEW_TABS = (
    ("return", "退单审核", "承办单位申请退单：改派至其他单位，或驳回退单由原单位继续办理"),
    ("extension", "延期审核", "承办单位在办理时限内申请延期：批准后办理时限顺延"),
    ("suspension", "挂起审核", "承办单位申请挂起：批准后计时暂停，解除挂起后继续计时"),
    ("reply", "回复审核", "承办单位已办结回复：审核通过进入回访，审核退回由承办单位重新办理"),
)
# Each review tab's decisions: (approve, reject).
REVIEW_EVENTS = {
    "return": ("redispatch", "reject_return"),
    "extension": ("approve_extension", "reject_extension"),
    "suspension": ("approve_suspension", "reject_suspension"),
    "reply": ("approve_reply", "reject_reply"),
}
EVENT_TAB = {event: tab for tab, events in REVIEW_EVENTS.items() for event in events}
APPROVAL_KINDS = ("return", "extension", "suspension")


# --- the overdue dashboard -------------------------------------------------------------


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


def _watched(now: datetime, horizon: datetime) -> list[Any]:
    """Open tickets whose department deadline (sign or handle) is yellow or red at `now`."""
    return [
        Ticket.due_at <= horizon,
        Ticket.due_kind.in_(LADDER_KINDS),
        or_(Ticket.due_at <= now, Ticket.warn_at <= now),
    ]


def _trend(session: Session, now: datetime) -> dict[str, Any]:
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


def _order_by(sort: str, direction: str):
    asc = direction == "asc"
    if sort == "department":
        dept = Department.code.asc() if asc else Department.code.desc()
        return [dept, Ticket.due_at.asc(), Ticket.id]
    if sort == "deadline":
        return [Ticket.due_at.asc() if asc else Ticket.due_at.desc(), Ticket.id]
    # How long overdue: the earlier the deadline, the longer overdue.
    return [Ticket.due_at.asc() if not asc else Ticket.due_at.desc(), Ticket.id]


def _dashboard_context(
    session: Session,
    runtime,
    *,
    level: str,
    department: str,
    sort: str,
    direction: str,
    page: int,
    now: datetime,
) -> dict[str, Any]:
    horizon = yellow_horizon(runtime, session, now)
    watched = _watched(now, horizon)
    lookups = Lookups(session)
    tomorrow = datetime.combine(now.astimezone(LOCAL_TZ).date() + timedelta(days=1), time.min, LOCAL_TZ)
    red = func.sum(case((Ticket.due_at <= now, 1), else_=0))
    yellow = func.sum(case((and_(Ticket.due_at > now, Ticket.warn_at <= now), 1), else_=0))
    due_today = func.sum(case((and_(Ticket.due_at > now, Ticket.due_at < tomorrow), 1), else_=0))
    # One pass over the due_at range up to the horizon (which lies past tomorrow). Grouped
    # by an expression, not the bare column: a bare column would tempt SQLite to walk the
    # whole (main_department_id, state) index in group order instead of that small range.
    main_department = Ticket.main_department_id + 0
    by_department = session.exec(
        select(main_department, yellow, red, due_today)
        .where(Ticket.due_at <= max(horizon, tomorrow), Ticket.due_kind.in_(LADDER_KINDS))
        .group_by(main_department)
    ).all()
    orders = dict(
        session.exec(
            select(SupervisionOrder.department_id, func.count())
            .where(SupervisionOrder.department_id.in_(list(lookups.departments)), SupervisionOrder.status == "open")
            .group_by(SupervisionOrder.department_id)
        ).all()
    )
    departments = []
    today = 0
    for dept_id, y, r, t in by_department:
        today += t or 0
        if not (y or r):
            continue
        dept = lookups.departments.get(dept_id)
        departments.append(
            {
                "code": dept.code if dept else "",
                "name": dept.name if dept else "（未派单）",
                "yellow": y or 0,
                "red": r or 0,
                "orders": orders.get(dept_id, 0),
            }
        )
    departments.sort(key=lambda d: (-d["red"], -d["yellow"], d["code"]))
    totals = {
        "yellow": sum(d["yellow"] for d in departments),
        "red": sum(d["red"] for d in departments),
        "orders": sum(orders.values()),
    }
    totals["today"] = today
    busiest = max((d["yellow"] + d["red"] for d in departments), default=0)

    conditions = list(watched)
    if level == "red":
        conditions.append(Ticket.due_at <= now)
    elif level == "yellow":
        conditions.append(Ticket.due_at > now)
    selected = next((d for d in lookups.departments.values() if d.code == department), None)
    if selected is not None:
        conditions.append(Ticket.main_department_id == selected.id)
    listed = [d for d in departments if selected is None or d["code"] == selected.code]
    total = sum(
        d["red"] if level == "red" else d["yellow"] if level == "yellow" else d["red"] + d["yellow"] for d in listed
    )
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(page, pages)
    stmt = select(Ticket).where(*conditions)
    if sort == "department":
        stmt = stmt.join(Department, Department.id == Ticket.main_department_id, isouter=True)
    tickets = session.exec(
        stmt.order_by(*_order_by(sort, direction)).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    ).all()
    rows = []
    for t in tickets:
        wf = runtime.workflows.get(t.workflow)
        dept = lookups.departments.get(t.main_department_id)
        category = lookups.categories.get(t.category_id)
        rows.append(
            {
                "id": t.id,
                "number": t.number,
                "title": t.title,
                "type": t.type,
                "urgency": t.urgency,
                "category": category.name if category else None,
                "department": dept.name if dept else "—",
                "state": t.state,
                "state_label": wf.state_label(t.state),
                "due": deadline_view(t, now),
                "step": STEP_LABELS.get(LADDER[t.escalation_step - 1]) if t.escalation_step else None,
            }
        )
    return {
        "totals": totals,
        "departments": departments,
        "busiest": busiest,
        "trend_json": chart_json(_trend(session, now)),
        "rows": rows,
        "total": total,
        "page": page,
        "pages": pages,
        "level": level,
        "department": selected.code if selected else "",
        "all_departments": sorted((d for d in lookups.departments.values() if d.active), key=lambda d: d.code),
        "sort": sort,
        "direction": direction,
        "sorts": SORTS,
        "now": now,
    }


@router.get("/supervisor/dashboard", response_class=HTMLResponse)
def dashboard(
    request: Request,
    runtime: RuntimeDep,
    user: Annotated[PageUser, role_user("supervisor", "admin")],
    level: Annotated[str, Query(pattern="^(yellow|red)?$")] = "",
    department: Annotated[str, Query(max_length=32)] = "",
    sort: Annotated[str, Query(pattern="^(overdue|department|deadline)$")] = "overdue",
    dir: Annotated[str | None, Query(pattern="^(asc|desc)$")] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    done: Annotated[str | None, Query(pattern="^(urge|supervise)$")] = None,
    t: Annotated[str | None, Query(pattern=r"^\d{1,20}$")] = None,
) -> Response:
    """The overdue dashboard: yellow and red tickets by department, the trend, the list."""
    now = runtime.now()
    with runtime.db.read_session() as session:
        ctx = _dashboard_context(
            session,
            runtime,
            level=level,
            department=department,
            sort=sort,
            direction=dir or SORTS[sort],
            page=page,
            now=now,
        )
    if done and t:
        ctx["flash"] = f"已{NOTICE_EVENTS[done]}工单 {t}，" + (
            "承办单位已收到催办通知" if done == "urge" else "督办单已下发至单位负责人"
        )
    return render(request, "supervisor/dashboard.html", ctx)


def _back(raw: Any, default: str, **params: str) -> str:
    """Where a form returns to: a page of this workbench, with the outcome in the query."""
    target = str(raw) if raw else default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/supervisor/"):
        parts = urlsplit(default)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in params and k not in ("done", "t")]
    return f"{parts.path}?{urlencode(query + list(params.items()))}"


@router.post("/supervisor/tickets/{ticket_id}/{event}", response_class=HTMLResponse)
async def notice_event(
    request: Request,
    ticket_id: int,
    event: str,
    runtime: RuntimeDep,
    user: Annotated[PageUser, role_form_user("supervisor")],
) -> Response:
    """Urge (催办) or supervise (督办) one ticket from the dashboard, with an optional message."""
    if event not in NOTICE_EVENTS:
        raise Invalid(f"{event!r} is not fired from the dashboard", zh="看板上只能催办或督办")
    form = await request.form()
    message = str(form.get("message") or "").strip()
    now = runtime.now()
    try:
        with runtime.db.session() as session:
            ticket = fire(
                session, runtime, ticket_id, event, user.actor, {"message": message} if message else {}, now=now
            ).ticket
            number = ticket.number
    except HotlineError as exc:
        if exc.status_code == 404:
            raise
        with runtime.db.read_session() as session:
            ctx = _dashboard_context(
                session, runtime, level="", department="", sort="overdue", direction="desc", page=1, now=now
            )
        ctx["error"] = action_message(exc)
        return render(request, "supervisor/dashboard.html", ctx, exc.status_code)
    return RedirectResponse(_back(form.get("back"), "/supervisor/dashboard", done=event, t=number), status_code=303)


# --- the review queues -----------------------------------------------------------------


def _review_counts(session: Session) -> dict[str, int]:
    counts = dict.fromkeys(REVIEW_EVENTS, 0)
    for kind, n in session.exec(
        select(Approval.kind, func.count())
        .where(Approval.kind.in_(APPROVAL_KINDS), Approval.status == "pending")
        .group_by(Approval.kind)
    ).all():
        counts[kind] = n
    counts["reply"] = session.exec(select(func.count()).select_from(Ticket).where(Ticket.state == "replied")).one()
    return counts


def _actionable(runtime, ticket: Ticket, tab: str) -> bool:
    """Whether the ticket's state lets the tab's decisions be taken (as the workflow says)."""
    wf = runtime.workflows.get(ticket.workflow)
    return all(e in wf.events and ticket.state in wf.events[e].sources for e in REVIEW_EVENTS[tab])


def _reviews_context(session: Session, runtime, tab: str, page: int, now: datetime) -> dict[str, Any]:
    counts = _review_counts(session)
    total = counts[tab]
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(page, pages)
    lookups = Lookups(session)
    cal = runtime.calendar(session)
    items = []
    if tab == "reply":
        tickets = session.exec(
            select(Ticket)
            .where(Ticket.state == "replied")
            .order_by(Ticket.replied_at.asc().nulls_last(), Ticket.id)
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
        pairs = [(None, t) for t in tickets]
    else:
        pairs = session.exec(
            select(Approval, Ticket)
            .join(Ticket, Ticket.id == Approval.ticket_id)
            .where(Approval.kind == tab, Approval.status == "pending")
            .order_by(Approval.requested_at, Approval.id)
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
    co_results: dict[int, list[tuple[str, str]]] = {}
    if tab == "reply" and pairs:
        for ticket_id, department_id, result in session.exec(
            select(Assignment.ticket_id, Assignment.department_id, Assignment.result)
            .where(
                Assignment.ticket_id.in_([t.id for _, t in pairs]),
                Assignment.role == "co",
                Assignment.status != "withdrawn",
            )
            .order_by(Assignment.id)
        ).all():
            dept = lookups.departments.get(department_id)
            co_results.setdefault(ticket_id, []).append((dept.name if dept else "", result or "（尚未回复）"))
    requesters = {a.requested_by_id for a, _ in pairs if a is not None and a.requested_by_id}
    names = (
        {
            uid: display or username
            for uid, display, username in session.exec(
                select(User.id, User.display_name, User.username).where(User.id.in_(requesters))
            ).all()
        }
        if requesters
        else {}
    )
    for approval, t in pairs:
        wf = runtime.workflows.get(t.workflow)
        category = lookups.categories.get(t.category_id)
        dept_id = approval.department_id if approval and approval.department_id else t.main_department_id
        dept = lookups.departments.get(dept_id)
        item = {
            "approval": approval,
            "ticket": t,
            "state_label": wf.state_label(t.state),
            "category": category.name if category else None,
            "department": dept.name if dept else "—",
            "department_id": dept_id,
            "requester": names.get(approval.requested_by_id) if approval else None,
            "due": deadline_view(t, now),
            "actionable": _actionable(runtime, t, tab),
            "co_results": co_results.get(t.id, []),
        }
        if tab == "extension" and approval and approval.days and t.handle_started_at is not None:
            moved = SimpleNamespace(
                handle_started_at=t.handle_started_at,
                type=t.type,
                urgency=t.urgency,
                extension_days=t.extension_days + approval.days,
                suspended_seconds=t.suspended_seconds,
            )
            after = compute_handle_by(cal, wf, moved)
            item["handle_by_after"] = after.at if after else None
        items.append(item)
    return {
        "tabs": REVIEW_TABS,
        "tab": tab,
        "tab_info": next(x for x in REVIEW_TABS if x[0] == tab),
        "counts": counts,
        "items": items,
        "events": REVIEW_EVENTS[tab],
        "page": page,
        "pages": pages,
        "total": total,
        "reason_codes": RETURN_REASON_CODES,
        "departments": sorted((d for d in lookups.departments.values() if d.active), key=lambda d: d.code),
        "labels": {e: runtime.workflows.get(runtime.workflows.default).events[e].label for e in REVIEW_EVENTS[tab]},
        "now": now,
    }


@router.get("/supervisor/reviews", response_class=HTMLResponse)
def reviews(
    request: Request,
    runtime: RuntimeDep,
    user: Annotated[PageUser, role_user("supervisor", "admin")],
    tab: Annotated[str, Query(pattern="^(return|extension|suspension|reply)$")] = "return",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    done: Annotated[str | None, Query(max_length=32)] = None,
    t: Annotated[str | None, Query(pattern=r"^\d{1,20}$")] = None,
) -> Response:
    """The review queues: returns, extensions, suspensions and replies waiting for the centre."""
    now = runtime.now()
    with runtime.db.read_session() as session:
        ctx = _reviews_context(session, runtime, tab, page, now)
    if done in EVENT_TAB and t:
        label = runtime.workflows.get(runtime.workflows.default).events[done].label
        ctx["flash"] = f"已{label}：工单 {t}"
    return render(request, "supervisor/reviews.html", ctx)


@router.post("/supervisor/reviews/{ticket_id}/{event}", response_class=HTMLResponse)
async def review_event(
    request: Request,
    ticket_id: int,
    event: str,
    runtime: RuntimeDep,
    user: Annotated[PageUser, role_form_user("supervisor")],
) -> Response:
    """Decide one request of a review queue, through the workflow gateway."""
    tab = EVENT_TAB.get(event)
    if tab is None:
        raise Invalid(f"{event!r} is not a review decision", zh="审核队列中没有这项操作")
    form = await request.form()
    version = str(form.get("version") or "")
    page = str(form.get("page") or "1")
    now = runtime.now()
    try:
        with runtime.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
            wf = runtime.workflows.get(ticket.workflow if ticket else runtime.workflows.default)
            ev = wf.events.get(event)
            fields = list(ev.fields) if ev else []
            payload = payload_from_form(session, event, form, fields)
            missing = [name for name in (ev.required if ev else ()) if name not in payload]
            if missing:
                words = "、".join(FIELDS[name].label for name in missing)
                raise Invalid(f"missing: {', '.join(missing)}", field=missing[0], zh=f"请填写{words}后再提交")
            ticket = fire(
                session,
                runtime,
                ticket_id,
                event,
                user.actor,
                payload,
                now=now,
                version=int(version) if version.isdigit() else None,
            ).ticket
            number = ticket.number
    except HotlineError as exc:
        if exc.status_code == 404:
            raise
        with runtime.db.read_session() as session:
            ctx = _reviews_context(session, runtime, tab, int(page) if page.isdigit() else 1, now)
        ctx["error"] = action_message(exc)
        return render(request, "supervisor/reviews.html", ctx, exc.status_code)
    query = urlencode({"tab": tab, "page": page if page.isdigit() else "1", "done": event, "t": number})
    return RedirectResponse(f"/supervisor/reviews?{query}", status_code=303)


def chart_json(data: dict[str, Any]) -> str:
    """Chart data for a <script type="application/json"> block (safe inside HTML)."""
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
