"""Pages every role shares: sign-in, the home redirect, ticket search, one ticket, notices."""

import re
import secrets
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, select

from hotline import audit_log, directory, notices
from hotline.api.deps import RuntimeDep
from hotline.attachments import files
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.directory import category_path
from hotline.errors import HotlineError, Invalid
from hotline.inputs import IdPath, PageQuery, check_day
from hotline.knowledge import feedback
from hotline.knowledge.articles import EDITORS
from hotline.models import DEPARTMENT_ROLES, Article, Notification, Ticket, User
from hotline.security import hash_password, verify_password
from hotline.supervision import ticket_orders
from hotline.ticket_view import Lookups, ticket_out
from hotline.tickets import (
    CALLER_SEARCH_ROLES,
    SEARCH_SCAN_ROWS,
    assignments_of,
    capped,
    day_bounds,
    get_visible,
    history_out,
    search,
)
from hotline.web.agent import route_preview
from hotline.web.auth import (
    COOKIE,
    LOGIN_CSRF_COOKIE,
    PASSWORD_PAGE,
    SESSION_HOURS,
    CsrfFailed,
    FormUser,
    UserDep,
    check_login_csrf,
    check_password,
    close_session,
    ended_session_notice,
    idle_limit,
    open_session,
    optional_user,
)
from hotline.web.diagram import workflow_svg
from hotline.web.forms import (
    event_inputs,
    form_version,
    kept_values,
    page_message,
    payload_from_form,
    require_page_fields,
    safe_path,
    submit,
)
from hotline.web.render import HOME, render
from hotline.workflow.engine import Actor, available_events, fire

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, runtime: RuntimeDep) -> Response:
    user = optional_user(request, runtime)
    return RedirectResponse(HOME[user.role] if user else "/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, runtime: RuntimeDep, next: str | None = None) -> Response:
    user = optional_user(request, runtime)
    if user is not None:
        if user.must_change:
            return _password_redirect(next)
        return RedirectResponse(safe_path(next) or "/", status_code=303)
    # A session cookie that no longer signs in: say why (unused too long, or ended), once.
    notice = ended_session_notice(runtime, request.cookies.get(COOKIE))
    response = _login_page(request, runtime, {"next": safe_path(next), "login_error": notice})
    if notice:
        response.delete_cookie(COOKIE, path="/")
    return response


def _password_redirect(next: str | None) -> Response:
    target = safe_path(next)
    query = f"?{urlencode({'next': target})}" if target and target != PASSWORD_PAGE else ""
    return RedirectResponse(f"{PASSWORD_PAGE}{query}", status_code=303)


# What secrets.token_urlsafe(24) gives: a cookie of another shape is not taken over.
_LOGIN_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")


def _login_page(request: Request, runtime, context: dict, status_code: int = 200, headers=None) -> Response:
    """The sign-in form with the browser's CSRF token, in the form and in a cookie of its own.

    The token is the browser's, not the page's: a second tab's sign-in page (or a
    background request sent on to /login once the session has ended) keeps the token the
    first tab's form holds, so signing in from that tab still works."""
    kept = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    token = kept if _LOGIN_TOKEN.fullmatch(kept) else secrets.token_urlsafe(24)
    request.state.page_user = None
    response = render(request, "login.html", {**context, "login_csrf": token}, status_code)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=runtime.settings.cookies_secure,
        path="/login",
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _address(request: Request) -> str:
    return request.client.host if request.client else "-"


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    runtime: RuntimeDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str | None, Form()] = None,
    csrf_token: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:
    kept = {"username": username, "next": safe_path(next)}
    try:
        check_login_csrf(request, csrf_token)
    except CsrfFailed as exc:
        return _login_page(request, runtime, {**kept, "login_error": page_message(exc)}, 403)
    now = runtime.now()
    throttle = runtime.login_throttle
    keys = throttle.keys(username, _address(request))
    wait = throttle.wait(keys, now)
    if wait:
        # Refused unchecked, the same for every name: it tells nothing about the account.
        _login_refused(runtime, username, "refused")
        message = f"登录尝试过于频繁，请{wait}秒后再试"
        return _login_page(request, runtime, {**kept, "login_error": message}, 429, {"Retry-After": str(wait)})
    user, new_hash = check_password(runtime, username.strip(), password)
    if user is None:
        throttle.failed(keys, now)
        _login_refused(runtime, username, "failed")
        return _login_page(request, runtime, {**kept, "login_error": "用户名或密码错误"}, 401)
    throttle.succeeded(keys[0])
    actor = Actor.of(user)
    audit_log.identify(actor)
    with runtime.db.session() as session:
        audit_log.record_user(session, "login", user)
        # The browser's earlier session (another account's, or one that timed out) ends here.
        close_session(session, request.cookies.get(COOKIE))
        token = open_session(
            session,
            user.id,
            now,
            new_hash=new_hash,
            address=_address(request),
            user_agent=request.headers.get("user-agent"),
            idle=idle_limit(runtime),
        )
    if user.must_change_password:
        response = _password_redirect(next)
    else:
        response = RedirectResponse(safe_path(next) or HOME[user.role], status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="lax",
        secure=runtime.settings.cookies_secure,
        path="/",
    )
    return response


def _login_refused(runtime, username: str, outcome: str) -> None:
    """Record a sign-in that failed or was refused, with the name tried (never the
    password): a short write of its own, after the password check."""
    tried = username.strip()[: audit_log.MAX_NAME]
    with runtime.db.session() as session:
        audit_log.record(
            session,
            "login",
            target_type="user",
            target_label=tried,
            outcome=outcome,
            actor=audit_log.Person(None, tried, ""),
        )


@router.post("/logout")
def logout(request: Request, runtime: RuntimeDep, user: FormUser) -> Response:
    with runtime.db.session() as session:
        close_session(session, request.cookies.get(COOKIE))
        audit_log.record_user(session, "logout", user.actor)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get(PASSWORD_PAGE, response_class=HTMLResponse)
def password_form(
    request: Request,
    user: UserDep,
    next: Annotated[str | None, Query(max_length=2000)] = None,
    changed: Annotated[int, Query(ge=0, le=1)] = 0,
) -> Response:
    """修改密码: any user's own, and the first thing one whose password someone else set must do."""
    return _password_page(request, user, {"next": safe_path(next), "flash": "密码已修改" if changed else None})


def _password_page(request: Request, user, context: dict, status_code: int = 200) -> Response:
    return render(
        request,
        "password.html",
        {
            "must_change": user.must_change,
            "rule": directory.PASSWORD_RULE,
            "min_password": directory.MIN_PASSWORD_LENGTH,
            **context,
        },
        status_code,
    )


@router.post(PASSWORD_PAGE, response_class=HTMLResponse)
def change_password(
    request: Request,
    runtime: RuntimeDep,
    user: FormUser,
    old_password: Annotated[str, Form(max_length=300)] = "",
    password: Annotated[str, Form(max_length=300)] = "",
    password_confirm: Annotated[str, Form(max_length=300)] = "",
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    """Old password, the new one twice: by the policy and not the old one. The other sessions
    of the user end; this one goes on. Wrong old passwords count towards the sign-in delay."""
    now = runtime.now()
    throttle = runtime.login_throttle
    keys = throttle.keys(user.actor.username, _address(request))
    context = {"next": safe_path(next)}
    wait = throttle.wait(keys, now)
    if wait:
        return _password_page(request, user, {**context, "error": f"尝试过于频繁，请{wait}秒后再试"}, 429)
    with runtime.db.read_session() as session:
        row = session.get(User, user.actor.id)
    # Hashing, outside any write transaction.
    if not verify_password(row.password_hash, old_password):
        throttle.failed(keys, now)
        with runtime.db.session() as session:
            audit_log.record_user(session, "user.change_password", row, outcome="failed")
        return _password_page(request, user, {**context, "error": "原密码不正确", "field": "old_password"}, 422)
    try:
        if password != password_confirm:
            raise Invalid("the two new passwords differ", field="password", zh="两次输入的新密码不一致")
        directory.check_new_password(row.username, old_password, password)
    except HotlineError as exc:
        return _password_page(
            request, user, {**context, "error": page_message(exc), "field": "password"}, exc.status_code
        )
    new_hash = hash_password(password)
    with runtime.db.session() as session:
        directory.set_own_password(session, user_id=row.id, password_hash=new_hash, session_id=user.session_id)
    throttle.succeeded(keys[0])
    if user.must_change:
        return RedirectResponse(context["next"] or HOME[user.role], status_code=303)
    return RedirectResponse(f"{PASSWORD_PAGE}?changed=1", status_code=303)


@router.get("/tickets", response_class=HTMLResponse)
def ticket_search(
    request: Request,
    runtime: RuntimeDep,
    user: UserDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    state: Annotated[str | None, Query(max_length=40)] = None,
    level: Annotated[str | None, Query(pattern="^(green|yellow|red)?$")] = None,
    department: Annotated[str | None, Query(max_length=32)] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    created_from: Annotated[str | None, Query(pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = None,
    created_to: Annotated[str | None, Query(pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = None,
    page: PageQuery = 1,
) -> Response:
    """工单查询: by number, caller, place or words, and by department, category, state and dates."""
    filters = {
        "q": (q or "").strip(),
        "state": state or "",
        "level": level or "",
        "department": department or "",
        "category": category or "",
        "created_from": created_from or "",
        "created_to": created_to or "",
    }
    days = day_bounds(_day(created_from, "created_from"), _day(created_to, "created_to"))
    with runtime.db.read_session() as session:
        lookups = Lookups(session)
        items, total = search(
            session,
            user.actor,
            states=[state] if state else None,
            department=department or None,
            overdue=None,
            level=level or None,
            q=q,
            now=runtime.now(),
            page=page,
            page_size=30,
            category=category or None,
            **days,
        )
        rows = [ticket_out(t, user.actor, runtime, lookups) for t in items]
        shown, exact = capped(total)
        departments = sorted((d for d in lookups.departments.values() if d.active), key=lambda d: d.code)
        categories = sorted(
            (
                (" / ".join(c.name for c in category_path(c.id, lookups.categories.get)), c.code)
                for c in lookups.categories.values()
                if c.active
            ),
            key=lambda pair: pair[1],
        )
    default = runtime.workflows.get(runtime.workflows.default)
    return render(
        request,
        "tickets.html",
        {
            "rows": rows,
            "total": shown,
            "more": not exact,
            "page": page,
            **filters,
            "query": urlencode({k: v for k, v in filters.items() if v}),
            "states": default.states,
            "departments": departments if user.actor.role not in DEPARTMENT_ROLES else [],
            "categories": categories,
            "caller_search": user.actor.role in CALLER_SEARCH_ROLES,
            "scan_rows": SEARCH_SCAN_ROWS,
            "pages": (shown + 29) // 30,
            # Tickets from integrations (API, Open311, the city platform) wait here to be dispatched.
            "heading": "待派单" if state == default.initial and not q else "工单查询",
        },
    )


def _day(text: str | None, field: str) -> date | None:
    # An empty date input is sent as an empty string: no bound.
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"not a day: {text!r}", field=field, zh=f"“{text}”不是有效的日期（格式：2026-12-01）") from None
    return check_day(day, field)


def ticket_context(runtime, session, user, ticket_id: int) -> dict[str, Any]:
    ticket = get_visible(session, user.actor, ticket_id)
    lookups = Lookups(session)
    assignments = assignments_of(session, ticket_id)
    data = ticket_out(ticket, user.actor, runtime, lookups, assignments)
    wf = runtime.workflows.get(ticket.workflow)
    now = runtime.now()
    refused: list[dict[str, Any]] = []
    events = available_events(session, runtime, ticket, user.actor, now=now, refused=refused)
    # The main department's 办结回复 waits for the co-handlers: say for whom, and since when.
    reply = wf.events.get("reply")
    co_waiting = [
        (dept.name if (dept := lookups.departments.get(a.department_id)) else "", a.dispatched_at, a.status)
        for a in assignments
        if a.role == "co" and a.status not in ("replied", "withdrawn")
    ]
    if not (
        reply is not None
        and ticket.state in reply.sources
        and user.actor.role in DEPARTMENT_ROLES
        and user.actor.department_id == ticket.main_department_id
        and all(ev["name"] != "reply" for ev in events)
    ):
        co_waiting = []
    for ev in events:
        ev["inputs"] = event_inputs(session, ev, ticket, user.actor.department_id, wf.limits)
    # 派单/改派 show the department the routing rules would choose, as the intake form does.
    preview = None
    if any(f.name == "department" for ev in events for f in ev["inputs"]):
        category = lookups.categories.get(ticket.category_id)
        preview = route_preview(session, category.code if category else "", ticket.street or "", ticket.community or "")
    cited = session.get(Article, ticket.article_id) if ticket.article_id else None
    cited_dept = lookups.departments.get(cited.department_id) if cited and cited.department_id else None
    drafted = session.exec(select(Article).where(Article.source_ticket_id == ticket.id)).first()
    ticket_notices = session.exec(
        select(Notification)
        .where(Notification.ticket_id == ticket_id, notices.addressed_to(user.actor))
        .order_by(Notification.id.desc())
    ).all()
    return {
        "t": data,
        "history": history_out(session, ticket_id, user.actor),
        "attachments": files.listed(session, ticket_id),
        "attach_kinds": files.addable_kinds(user.actor) if not wf.states[ticket.state].final else [],
        "KIND_LABELS": files.KIND_LABELS,
        "max_attachment_bytes": runtime.settings.max_attachment_bytes,
        "events": events,
        "diagram": workflow_svg(wf, ticket.state),
        "workflow": wf,
        "notices": ticket_notices,
        "orders": ticket_orders(session, ticket_id),
        "co_waiting": co_waiting,
        # What the role could do in this state but a rule refuses now, and why (registry.EXPLAINED).
        "refused": refused,
        "preview": preview,
        "cited": cited,
        "cited_issuer": cited_dept.name if cited_dept else cited.department if cited else None,
        "drafted": drafted,
        "can_draft": drafted is None and may_draft_knowledge(user.actor, ticket),
        "now": now,
        "due_in": (ticket.due_at - now).total_seconds() if ticket.due_at else None,
    }


def may_draft_knowledge(actor, ticket: Ticket) -> bool:
    """转为知识: an answered consultation ticket, for the editors and the leader of the
    department that answered (feedback.draft_from_ticket decides; this only shows the button)."""
    if ticket.type != "consultation" or not (ticket.result or ticket.answer):
        return False
    if actor.role in EDITORS:
        return True
    leader = actor.role == "leader" and actor.department_id is not None
    return leader and actor.department_id == ticket.main_department_id


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(
    request: Request, ticket_id: IdPath, runtime: RuntimeDep, user: UserDep, done: str | None = None
) -> Response:
    with runtime.db.read_session() as session:
        ctx = ticket_context(runtime, session, user, ticket_id)
    if done:
        ev = ctx["workflow"].events.get(done)
        # Said as the change was recorded: a co-handler's reply is 协办答复, not 办结回复.
        last = next((h for h in reversed(ctx["history"]) if h["event"] == done), None)
        as_co = bool(last and last["details"].get("as_co_handler"))
        ctx["flash"] = f"已完成：{ev.label_for(as_co) if ev else done}"
        master = next((h["details"].get("master_number") for h in ctx["history"] if h["event"] == "merge"), None)
        if done == "merge" and master:
            ctx["flash"] = f"已将工单 {ctx['t']['number']} 并入工单 {master}"
        if done in ("dispatch", "redispatch") and ctx["t"]["department_name"]:
            co = [
                a["department_name"]
                for a in ctx["t"]["assignments"]
                if a["role"] == "co" and a["status"] != "withdrawn"
            ]
            verb = "已改派至" if done == "redispatch" else "已派单至"
            ctx["flash"] = f"{verb}{ctx['t']['department_name']}" + (f"（协办：{'、'.join(co)}）" if co else "")
    return render(request, "ticket.html", ctx)


@router.post("/tickets/{ticket_id}", response_class=HTMLResponse)
async def ticket_form(request: Request, ticket_id: IdPath, runtime: RuntimeDep, user: FormUser) -> Response:
    """An action form of the ticket page, posted to the page's own address: refused, the page
    is shown again there (not at a POST-only address), the form open and as it was typed."""
    form = await request.form()
    return _fire_from_page(request, runtime, user, ticket_id, str(form.get("event") or ""), form)


@router.post("/tickets/{ticket_id}/knowledge-draft", response_class=HTMLResponse)
def ticket_to_knowledge(request: Request, ticket_id: IdPath, runtime: RuntimeDep, user: FormUser) -> Response:
    """转为知识: the ticket's question and answer become a draft article; then its page."""

    def change(session: Session) -> str:
        get_visible(session, user.actor, ticket_id)
        article = feedback.draft_from_ticket(session, ticket_id, user.actor, runtime.now())
        return f"/knowledge/{article.id}?done=drafted"

    return submit(
        request, runtime, change, template="ticket.html", context=lambda s: ticket_context(runtime, s, user, ticket_id)
    )


@router.post("/tickets/{ticket_id}/events/{event}", response_class=HTMLResponse)
async def ticket_event(
    request: Request, ticket_id: IdPath, event: str, runtime: RuntimeDep, user: FormUser
) -> Response:
    """Fire an event from a form naming it in its address: the same gateway as the API."""
    return _fire_from_page(request, runtime, user, ticket_id, event, await request.form())


def _fire_from_page(request: Request, runtime, user, ticket_id: int, event: str, form: Any) -> Response:
    def change(session: Session) -> str:
        ticket = get_visible(session, user.actor, ticket_id)
        wf = runtime.workflows.get(ticket.workflow)
        fields = list(wf.events[event].fields) if event in wf.events else []
        payload = payload_from_form(session, event, form, fields)
        require_page_fields(fields, payload)
        fire(session, runtime, ticket_id, event, user.actor, payload, now=runtime.now(), version=form_version(form))
        return safe_path(form.get("back")) or f"/tickets/{ticket_id}?done={quote(event)}"

    typed = {"event": event, "values": kept_values(form)}
    return submit(
        request,
        runtime,
        change,
        template="ticket.html",
        context=lambda session: {**ticket_context(runtime, session, user, ticket_id), "typed": typed},
    )


@router.get("/notifications", response_class=HTMLResponse)
def notifications(request: Request, runtime: RuntimeDep, user: UserDep) -> Response:
    with runtime.db.read_session() as session:
        rows = notices.listing(session, user.actor, 100)
    unread = [n.id for n, _, read_at in rows if read_at is None]
    last = rows[-1][0] if rows else None
    return render(
        request,
        "notifications.html",
        {
            "rows": rows,
            "unread": len(unread),
            "shown": ",".join(map(str, unread)),
            "oldest": last.created_at.astimezone(LOCAL_TZ).isoformat() if last else "",
            "oldest_id": last.id if last else "",
        },
    )


@router.get("/notifications/badge", response_class=HTMLResponse)
def notification_badge(request: Request, runtime: RuntimeDep, user: UserDep) -> Response:
    """The unread count beside 通知 in the top bar (loaded after the page, so no page waits for it)."""
    with runtime.db.read_session() as session:
        count = notices.unread_count(session, user.actor, runtime.now())
    if not count:
        return HTMLResponse('<span class="count-badge" hidden></span>')
    text = f"{notices.UNREAD_CAP}+" if count > notices.UNREAD_CAP else str(count)
    return HTMLResponse(f'<span class="count-badge" title="未读通知">{text}</span>')


@router.post("/notifications/read")
def notifications_all_read(
    runtime: RuntimeDep,
    user: FormUser,
    shown: Annotated[str, Form(max_length=2000)] = "",
    oldest: Annotated[datetime | None, Form()] = None,
    oldest_id: Annotated[int | None, Form(ge=1, le=2**62)] = None,
) -> Response:
    """全部标为已读 as the page showed it: a notice that came in since stays unread."""
    ids = [int(part) for part in shown.split(",") if re.fullmatch(r"\d{1,18}", part.strip())]
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=LOCAL_TZ)
    last = (oldest, oldest_id) if oldest is not None and oldest_id is not None else None
    with runtime.db.session() as session:
        notices.mark_all_read(session, user.actor, runtime.now(), shown=ids, oldest=last)
    return RedirectResponse("/notifications", status_code=303)


@router.post("/notifications/{notification_id}/read")
def notification_read(notification_id: IdPath, runtime: RuntimeDep, user: FormUser) -> Response:
    with runtime.db.session() as session:
        notices.mark_read(session, user.actor, notification_id, runtime.now())
    return RedirectResponse("/notifications", status_code=303)
