"""The supervisor workbench (督办员): the overdue dashboard and the review queues.

The queries are hotline.supervision's; every decision goes through the workflow gateway (`fire`).
"""

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from hotline.api.deps import RuntimeDep
from hotline.errors import Invalid
from hotline.inputs import IdPath, PageQuery
from hotline.models import Ticket
from hotline.supervision import (
    co_results,
    escalation_trend,
    handle_by_if_extended,
    ladder_progress,
    open_orders_by_department,
    overdue_by_department,
    overdue_tickets,
    review_counts,
    review_queue,
    urge_held,
    user_names,
)
from hotline.ticket_view import Lookups
from hotline.web.auth import PageUser, role_form_user, role_user
from hotline.web.department import deadline_view
from hotline.web.forms import form_version, kept_values, payload_from_form, safe_path, submit
from hotline.web.render import render
from hotline.workflow import texts
from hotline.workflow.engine import fire
from hotline.workflow.fields import FIELDS, RETURN_REASON_CODES

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
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


# --- the overdue dashboard -------------------------------------------------------------


def _step_label(step: str, order: str | None) -> str:
    """督办进度 as the supervisor reads it: the furthest step, and the order's answer."""
    label = STEP_LABELS[step]
    if order == "open":
        return f"{label}·待答复"
    if order == "answered":
        return f"{label}·已答复"
    return label


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
    lookups = Lookups(session)
    counts, due_today = overdue_by_department(session, runtime, now)
    orders = open_orders_by_department(session, list(lookups.departments))
    departments = []
    for dept_id, (y, r) in counts.items():
        dept = lookups.departments.get(dept_id)
        departments.append(
            {
                "code": dept.code if dept else "",
                "name": dept.name if dept else "（未派单）",
                "yellow": y,
                "red": r,
                "orders": orders.get(dept_id, 0),
            }
        )
    departments.sort(key=lambda d: (-d["red"], -d["yellow"], d["code"]))
    totals = {
        "yellow": sum(d["yellow"] for d in departments),
        "red": sum(d["red"] for d in departments),
        "orders": sum(orders.values()),
        "today": due_today,
    }
    busiest = max((d["yellow"] + d["red"] for d in departments), default=0)

    selected = next((d for d in lookups.departments.values() if d.code == department), None)
    listed = [d for d in departments if selected is None or d["code"] == selected.code]
    total = sum(
        d["red"] if level == "red" else d["yellow"] if level == "yellow" else d["red"] + d["yellow"] for d in listed
    )
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(page, pages)
    tickets = overdue_tickets(
        session,
        runtime,
        now,
        level=level,
        department_id=selected.id if selected else None,
        sort=sort,
        direction=direction,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    progress = ladder_progress(session, tickets)
    held = urge_held(session, runtime, tickets, now)
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
                "step": _step_label(*progress[t.id]) if t.id in progress else None,
                "order_open": progress.get(t.id, ("", None))[1] == "open",
                "urge_held": texts.local_time_from(held[t.id], now) if t.id in held else None,
            }
        )
    return {
        "totals": totals,
        "departments": departments,
        "busiest": busiest,
        "trend": escalation_trend(session, now),
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
    page: PageQuery = 1,
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
    target = safe_path(raw) or default
    parts = urlsplit(target if target.startswith("/supervisor/") else default)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in params and k not in ("done", "t")]
    return f"{parts.path}?{urlencode(query + list(params.items()))}"


@router.post("/supervisor/tickets/{ticket_id}/{event}", response_class=HTMLResponse)
async def notice_event(
    request: Request,
    ticket_id: IdPath,
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

    def change(session: Session) -> str:
        payload = {"message": message} if message else {}
        ticket = fire(session, runtime, ticket_id, event, user.actor, payload, now=now).ticket
        return _back(form.get("back"), "/supervisor/dashboard", done=event, t=ticket.number)

    def again(session: Session) -> dict[str, Any]:
        return _dashboard_context(
            session, runtime, level="", department="", sort="overdue", direction="desc", page=1, now=now
        )

    return submit(request, runtime, change, template="supervisor/dashboard.html", context=again)


# --- the review queues -----------------------------------------------------------------


def _actionable(runtime, ticket: Ticket, tab: str) -> bool:
    """Whether the ticket's state lets the tab's decisions be taken (as the workflow says)."""
    wf = runtime.workflows.get(ticket.workflow)
    return all(e in wf.events and ticket.state in wf.events[e].sources for e in REVIEW_EVENTS[tab])


def _reviews_context(session: Session, runtime, tab: str | None, page: int, now: datetime) -> dict[str, Any]:
    counts = review_counts(session)
    # Opened without a tab: the first queue with something waiting (else the first).
    tab = tab or next((key for key, _, _ in REVIEW_TABS if counts[key]), REVIEW_TABS[0][0])
    total = counts[tab]
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(page, pages)
    lookups = Lookups(session)
    cal = runtime.calendar(session)
    pairs = review_queue(session, tab, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    co = co_results(session, [t.id for _, t in pairs]) if tab == "reply" else {}
    names = user_names(session, {a.requested_by_id for a, _ in pairs if a is not None and a.requested_by_id})
    items = []
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
            "co_results": [
                (co_dept.name if (co_dept := lookups.departments.get(d)) else "", result or "（尚未回复）")
                for d, result in co.get(t.id, [])
            ],
        }
        if tab == "extension" and approval and approval.days and t.handle_started_at is not None:
            item["handle_by_after"] = handle_by_if_extended(cal, wf, t, approval.days)
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
        # 改派 goes to a unit the centre dispatches to: never a community.
        "departments": sorted(
            (d for d in lookups.departments.values() if d.active and d.parent_id is None), key=lambda d: d.code
        ),
        "labels": {e: runtime.workflows.get(runtime.workflows.default).events[e].label for e in REVIEW_EVENTS[tab]},
        "now": now,
    }


@router.get("/supervisor/reviews", response_class=HTMLResponse)
def reviews(
    request: Request,
    runtime: RuntimeDep,
    user: Annotated[PageUser, role_user("supervisor", "admin")],
    tab: Annotated[str | None, Query(pattern="^(return|extension|suspension|reply)$")] = None,
    page: PageQuery = 1,
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
    ticket_id: IdPath,
    event: str,
    runtime: RuntimeDep,
    user: Annotated[PageUser, role_form_user("supervisor")],
) -> Response:
    """Decide one request of a review queue, through the workflow gateway."""
    tab = EVENT_TAB.get(event)
    if tab is None:
        raise Invalid(f"{event!r} is not a review decision", zh="审核队列中没有这项操作")
    form = await request.form()
    page = int(str(form.get("page"))) if str(form.get("page") or "").isdigit() else 1
    now = runtime.now()

    def change(session: Session) -> str:
        ticket = session.get(Ticket, ticket_id)
        wf = runtime.workflows.get(ticket.workflow if ticket else runtime.workflows.default)
        ev = wf.events.get(event)
        payload = payload_from_form(session, event, form, list(ev.fields) if ev else [])
        missing = [name for name in (ev.required if ev else ()) if name not in payload]
        if missing:
            raise Invalid(f"missing: {', '.join(missing)}", field=missing[0], zh=_missing_zh(missing))
        version = form_version(form)
        ticket = fire(session, runtime, ticket_id, event, user.actor, payload, now=now, version=version).ticket
        return f"/supervisor/reviews?{urlencode({'tab': tab, 'page': page, 'done': event, 't': ticket.number})}"

    # Refused, the queue again with this request's card as it was filled in and the reason on it.
    typed = {"ticket": ticket_id, "fields": kept_values(form)}
    return submit(
        request,
        runtime,
        change,
        template="supervisor/reviews.html",
        context=lambda session: {**_reviews_context(session, runtime, tab, page, now), "typed": typed},
    )


# The review cards' words for the fields a decision needs (the workflow's labels name them
# as the departments' forms do: 承办单位, 理由).
_CARD_FIELDS = {
    "department": ("请选择", "改派的承办单位"),
    "reason": ("请填写", "审核意见"),
    "days": ("请填写", "批准天数"),
}


def _missing_zh(missing: list[str]) -> str:
    """What a review card's refusal says of the fields left empty, in the card's words."""
    said = []
    for name in missing:
        verb, label = _CARD_FIELDS.get(name, ("请填写", FIELDS[name].label))
        said.append(f"{verb}{label}")
    return "，".join(said) + "后再提交"
