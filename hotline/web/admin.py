"""The administrator's pages: departments, users, categories, routing rules, time limits, holidays, workflows.

Every page is for the admin role only, and every form post is CSRF-checked. A post that
succeeds redirects back to its page (post/redirect/get) with a one-time notice; one that
fails renders the page again with the message and what was typed.
"""

import calendar as month_calendar
import csv
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func
from sqlmodel import Session, select

from hotline import directory
from hotline.api.deps import RuntimeDep
from hotline.calendar import LOCAL_TZ, load_holiday_csv
from hotline.config import ROOT
from hotline.errors import HotlineError, Invalid
from hotline.models import (
    DEPARTMENT_ROLES,
    ROLES,
    TICKET_TYPES,
    URGENCIES,
    CalendarDay,
    CalendarYear,
    Category,
    Department,
    RoutingRule,
    Ticket,
    User,
)
from hotline.routing import route
from hotline.runtime import Runtime, import_year, recompute_provisional
from hotline.web.auth import PageUser, role_form_user, role_user
from hotline.web.diagram import workflow_svg
from hotline.web.render import ROLE_LABELS, TYPE_LABELS, URGENCY_LABELS, render
from hotline.web.views import page_message
from hotline.workflow.definition import RETURN_FROM, Limit, Workflow
from hotline.workflow.fields import FIELDS

router = APIRouter(prefix="/admin", include_in_schema=False)

AdminUser = Annotated[PageUser, role_user("admin")]
AdminForm = Annotated[PageUser, role_form_user("admin")]
Year = Annotated[int, PathParam(ge=2000, le=2100)]

FLASH_COOKIE = "hotline_admin_flash"
CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
USERNAME = re.compile(r"^[A-Za-z0-9_.\-@]{2,64}$")
# Who may fire a workflow event, in the words of the pages (two are not users).
ACTOR_LABELS = {**ROLE_LABELS, "system": "系统", "citizen": "市民"}
PLACE_SEP = "|"


class FormError(Invalid):
    """A form field the page refuses before any service sees it; the message is Chinese."""

    def __init__(self, zh: str, field: str | None = None) -> None:
        super().__init__(zh, field=field, zh=zh)


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """Render an admin page; the notice a redirect left behind is shown once."""
    notice = request.cookies.get(FLASH_COOKIE)
    if notice and "flash" not in context and status_code == 200:
        context = {**context, "flash": unquote(notice)}
    response = render(request, name, context, status_code)
    if notice:
        response.delete_cookie(FLASH_COOKIE, path="/admin")
    return response


def _done(url: str, notice: str) -> RedirectResponse:
    """Back to the page, with a notice for its next rendering."""
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(FLASH_COOKIE, quote(notice), max_age=60, httponly=True, samesite="strict", path="/admin")
    return response


def _message(exc: HotlineError, conflict: str | None = None) -> str:
    """A Chinese message for a refused form: the service's own, a page-specific conflict, or the generic one."""
    if exc.extra.get("zh"):
        return str(exc.extra["zh"])
    if exc.status_code == 409 and conflict:
        return conflict
    return page_message(exc)


def _code(value: str, label: str, field_name: str) -> str:
    value = value.strip()
    if not CODE.match(value):
        raise FormError(f"{label}只能由 1–32 位字母、数字、下划线、点或连字符组成", field_name)
    return value


def _name(value: str, label: str, field_name: str, max_length: int = 100) -> str:
    value = value.strip()
    if not value:
        raise FormError(f"请填写{label}", field_name)
    if len(value) > max_length:
        raise FormError(f"{label}不能超过 {max_length} 个字", field_name)
    return value


def _local_today(runtime: Runtime) -> date:
    return runtime.now().astimezone(LOCAL_TZ).date()


@router.get("", response_class=HTMLResponse)
def admin_home(_: AdminUser) -> Response:
    return RedirectResponse("/admin/departments", status_code=303)


# ---------------------------------------------------------------- departments


def _departments_context(session: Session) -> dict[str, Any]:
    depts = session.exec(select(Department).order_by(Department.active.desc(), Department.code)).all()
    users = dict(
        session.exec(select(User.department_id, func.count()).where(User.active).group_by(User.department_id)).all()
    )
    rules = dict(
        session.exec(
            select(RoutingRule.department_id, func.count())
            .where(RoutingRule.active)
            .group_by(RoutingRule.department_id)
        ).all()
    )
    categories = dict(
        session.exec(
            select(Category.department_id, func.count())
            .where(Category.department_id.is_not(None))
            .group_by(Category.department_id)
        ).all()
    )
    open_tickets = dict(
        session.exec(
            select(Ticket.main_department_id, func.count())
            .where(Ticket.closed_at.is_(None), Ticket.main_department_id.is_not(None))
            .group_by(Ticket.main_department_id)
        ).all()
    )
    rows = [
        {
            "d": d,
            "users": users.get(d.id, 0),
            "rules": rules.get(d.id, 0),
            "categories": categories.get(d.id, 0),
            "open_tickets": open_tickets.get(d.id, 0),
        }
        for d in depts
    ]
    return {"rows": rows, "active_count": sum(1 for d in depts if d.active)}


@router.get("/departments", response_class=HTMLResponse)
def departments(request: Request, runtime: RuntimeDep, _: AdminUser) -> Response:
    with runtime.db.read_session() as session:
        ctx = _departments_context(session)
    return _page(request, "admin/departments.html", {**ctx, "form": {}})


@router.post("/departments", response_class=HTMLResponse)
def create_department(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    code: Annotated[str, Form(max_length=100)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        code = _code(code, "单位编码", "code")
        name = _name(name, "单位名称", "name")
        with runtime.db.session() as session:
            directory.create_department(session, code=code, name=name, now=runtime.now())
    except HotlineError as exc:
        with runtime.db.read_session() as session:
            ctx = _departments_context(session)
        ctx.update(error=_message(exc, f"单位编码“{code}”已被使用"), form={"code": code, "name": name})
        return _page(request, "admin/departments.html", ctx, exc.status_code)
    return _done("/admin/departments", f"已新建单位：{name}（{code}）")


@router.post("/departments/{department_id}/{action}", response_class=HTMLResponse)
def department_active(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    department_id: int,
    action: Annotated[str, PathParam(pattern="^(deactivate|reactivate)$")],
) -> Response:
    try:
        with runtime.db.session() as session:
            dept = directory.set_department_active(session, department_id=department_id, active=action == "reactivate")
    except HotlineError as exc:
        with runtime.db.read_session() as session:
            ctx = _departments_context(session)
        ctx.update(error=_message(exc), form={})
        return _page(request, "admin/departments.html", ctx, exc.status_code)
    verb = "启用" if dept.active else "停用"
    return _done("/admin/departments", f"已{verb}单位：{dept.name}")


# ---------------------------------------------------------------------- users


def _users_context(session: Session, runtime: Runtime, role: str, department: str) -> dict[str, Any]:
    depts = session.exec(select(Department).order_by(Department.code)).all()
    by_id = {d.id: d for d in depts}
    query = select(User).order_by(User.role, User.department_id, User.username)
    if role in ROLES:
        query = query.where(User.role == role)
    dept = next((d for d in depts if d.code == department), None)
    if dept is not None:
        query = query.where(User.department_id == dept.id)
    now = runtime.now()
    rows = [
        {
            "u": u,
            "department": by_id.get(u.department_id),
            "locked": bool(u.locked_until and u.locked_until > now),
        }
        for u in session.exec(query).all()
    ]
    counts = dict(session.exec(select(User.role, func.count()).group_by(User.role)).all())
    locked = session.exec(select(func.count()).select_from(User).where(User.active, User.locked_until > now)).one()
    return {
        "rows": rows,
        "departments": depts,
        "role": role if role in ROLES else "",
        "department": dept.code if dept else "",
        "role_counts": counts,
        "total": sum(counts.values()),
        "locked_count": locked,
        "roles": ROLES,
        "department_roles": sorted(DEPARTMENT_ROLES),
        "min_password": directory.MIN_PASSWORD_LENGTH,
    }


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, runtime: RuntimeDep, _: AdminUser, role: str = "", department: str = "") -> Response:
    with runtime.db.read_session() as session:
        ctx = _users_context(session, runtime, role, department)
    return _page(request, "admin/users.html", {**ctx, "form": {}})


def _check_new_password(password: str, confirm: str) -> None:
    if len(password) < directory.MIN_PASSWORD_LENGTH:
        raise FormError(f"密码至少需要 {directory.MIN_PASSWORD_LENGTH} 个字符", "password")
    if len(password) > 256:
        raise FormError("密码不能超过 256 个字符", "password")
    if password != confirm:
        raise FormError("两次输入的密码不一致", "password")


def _users_error(
    request: Request, runtime: Runtime, exc: HotlineError, form: dict, conflict: str | None = None
) -> Response:
    with runtime.db.read_session() as session:
        ctx = _users_context(session, runtime, "", "")
    ctx.update(error=_message(exc, conflict), form=form)
    return _page(request, "admin/users.html", ctx, exc.status_code)


@router.post("/users", response_class=HTMLResponse)
def create_user(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    username: Annotated[str, Form(max_length=100)] = "",
    display_name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    department: Annotated[str, Form(max_length=40)] = "",
    password: Annotated[str, Form(max_length=300)] = "",
    password_confirm: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    username = username.strip()
    form = {"username": username, "display_name": display_name, "role": role, "department": department}
    try:
        if not USERNAME.match(username):
            raise FormError("用户名为 2–64 位字母、数字或 _ . - @", "username")
        if role not in ROLES:
            raise FormError("请选择角色", "role")
        if role in DEPARTMENT_ROLES and not department:
            raise FormError(f"{ROLE_LABELS[role]}须属于一个单位：请选择所属单位", "department")
        display = _name(display_name, "姓名", "display_name") if display_name.strip() else username
        _check_new_password(password, password_confirm)
        with runtime.db.session() as session:
            directory.create_user(
                session,
                username=username,
                role=role,
                password=password,
                department=department if role in DEPARTMENT_ROLES else None,
                display_name=display,
                now=runtime.now(),
            )
    except HotlineError as exc:
        return _users_error(request, runtime, exc, form, f"用户名“{username}”已被使用")
    return _done("/admin/users", f"已新建用户：{display}（{username}，{ROLE_LABELS[role]}）")


@router.post("/users/{user_id}/password", response_class=HTMLResponse)
def reset_password(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    user_id: int,
    password: Annotated[str, Form(max_length=300)] = "",
    password_confirm: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    try:
        _check_new_password(password, password_confirm)
        with runtime.db.session() as session:
            user = directory.reset_password(session, user_id=user_id, password=password)
    except HotlineError as exc:
        return _users_error(request, runtime, exc, {"reset": user_id})
    return _done(
        "/admin/users",
        f"已重置 {user.display_name or user.username}（{user.username}）的密码，该用户已在所有设备上退出登录。"
        "新密码不会再次显示，请通过安全渠道告知本人。",
    )


@router.post("/users/{user_id}/{action}", response_class=HTMLResponse)
def user_action(
    request: Request,
    runtime: RuntimeDep,
    admin: AdminForm,
    user_id: int,
    action: Annotated[str, PathParam(pattern="^(deactivate|reactivate|unlock)$")],
) -> Response:
    try:
        if action == "deactivate" and user_id == admin.actor.id:
            raise FormError("不能停用自己正在使用的账号")
        with runtime.db.session() as session:
            if action == "unlock":
                user = directory.unlock_user(session, user_id=user_id)
            else:
                user = directory.set_user_active(session, user_id=user_id, active=action == "reactivate")
    except HotlineError as exc:
        return _users_error(request, runtime, exc, {})
    verb = {"deactivate": "停用", "reactivate": "启用", "unlock": "解锁"}[action]
    note = "，其登录会话和接口令牌随即失效" if action == "deactivate" else ""
    return _done("/admin/users", f"已{verb}用户：{user.display_name or user.username}（{user.username}）{note}")


# ----------------------------------------------------------------- categories


@dataclass
class Node:
    """A row of the category tree, with the default department and workflow it inherits."""

    category: Category
    depth: int
    department: Department | None
    inherited_department: tuple[Department, Category] | None  # from the nearest ancestor that has one
    workflow: str | None
    inherited_workflow: tuple[str, Category] | None
    rules: int


def category_tree(session: Session) -> list[Node]:
    """The category tree, depth first in code order."""
    cats = session.exec(select(Category).order_by(Category.code)).all()
    depts = {d.id: d for d in session.exec(select(Department)).all()}
    rules = dict(
        session.exec(
            select(RoutingRule.category_id, func.count())
            .where(RoutingRule.active, RoutingRule.category_id.is_not(None))
            .group_by(RoutingRule.category_id)
        ).all()
    )
    ids = {c.id for c in cats}
    children: dict[int | None, list[Category]] = defaultdict(list)
    for c in cats:
        children[c.parent_id if c.parent_id in ids else None].append(c)
    out: list[Node] = []

    def walk(c: Category, depth: int, dept_from, wf_from) -> None:
        own = depts.get(c.department_id) if c.department_id else None
        inherited_wf = None if c.workflow else wf_from
        out.append(Node(c, depth, own, None if own else dept_from, c.workflow, inherited_wf, rules.get(c.id, 0)))
        for kid in children[c.id]:
            walk(kid, depth + 1, (own, c) if own else dept_from, (c.workflow, c) if c.workflow else wf_from)

    for root in children[None]:
        walk(root, 0, None, None)
    return out


def _categories_context(session: Session, runtime: Runtime) -> dict[str, Any]:
    tree = category_tree(session)
    return {
        "tree": tree,
        "departments": session.exec(select(Department).where(Department.active).order_by(Department.code)).all(),
        "workflows": runtime.workflows.workflows,
        "default_workflow": runtime.workflows.default,
        "roots": sum(1 for n in tree if n.depth == 0),
    }


@router.get("/categories", response_class=HTMLResponse)
def categories(request: Request, runtime: RuntimeDep, _: AdminUser) -> Response:
    with runtime.db.read_session() as session:
        ctx = _categories_context(session, runtime)
    return _page(request, "admin/categories.html", {**ctx, "form": {}})


@router.post("/categories", response_class=HTMLResponse)
def create_category(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    code: Annotated[str, Form(max_length=100)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    parent: Annotated[str, Form(max_length=40)] = "",
    department: Annotated[str, Form(max_length=40)] = "",
    workflow: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    form = {"code": code, "name": name, "parent": parent, "department": department, "workflow": workflow}
    try:
        code = _code(code, "分类编码", "code")
        name = _name(name, "分类名称", "name")
        if workflow and workflow not in runtime.workflows.workflows:
            raise FormError("所选流程不存在", "workflow")
        with runtime.db.session() as session:
            directory.create_category(
                session,
                runtime,
                code=code,
                name=name,
                parent=parent or None,
                department=department or None,
                workflow=workflow or None,
            )
    except HotlineError as exc:
        with runtime.db.read_session() as session:
            ctx = _categories_context(session, runtime)
        ctx.update(error=_message(exc, f"分类编码“{code}”已被使用"), form=form)
        return _page(request, "admin/categories.html", ctx, exc.status_code)
    return _done("/admin/categories", f"已新建分类：{code} {name}")


# ---------------------------------------------------------------------- rules


def _split_place(value: str) -> tuple[str | None, str | None]:
    street, _, community = value.partition(PLACE_SEP)
    return (street.strip() or None), (community.strip() or None)


def _known_places(session: Session) -> dict[str, list[str]]:
    """The district's places, with any a rule names that the place list lacks."""
    known = directory.places(session)
    for street, community in session.exec(
        select(RoutingRule.street, RoutingRule.community).where(RoutingRule.street.is_not(None))
    ).all():
        communities = known.setdefault(street, [])
        if community and community not in communities:
            communities.append(community)
    return dict(sorted(known.items()))


@dataclass
class RouteTest:
    category: str
    place: str
    department: Department | None = None
    rule_id: int | None = None
    explanation: str = ""
    failure: str = ""


def _explain(session: Session, how: str, category: Category | None) -> tuple[int | None, str]:
    """The Route's `how` ("rule:<id>", "category:<code>") in the administrator's words."""
    kind, _, ref = how.partition(":")
    if kind == "rule":
        rule = session.get(RoutingRule, int(ref))
        if rule is None:
            return None, how
        cat = session.get(Category, rule.category_id) if rule.category_id else None
        scope = []
        if cat is None:
            scope.append("任意分类")
        elif category is not None and cat.id != category.id:
            scope.append(f"上级分类 {cat.code} {cat.name}")
        else:
            scope.append(f"分类 {cat.code} {cat.name}")
        scope.append(" / ".join(p for p in (rule.street, rule.community) if p) or "全区")
        return rule.id, f"命中派单规则 #{rule.id}（{'，'.join(scope)}，优先级 {rule.priority}）"
    if kind == "category":
        cat = session.exec(select(Category).where(Category.code == ref)).first()
        label = f"{ref} {cat.name}" if cat else ref
        whose = "所选分类" if category is not None and cat is not None and cat.id == category.id else "上级分类"
        return None, f"没有匹配的派单规则，采用{whose}「{label}」的默认承办单位"
    return None, how


def _route_test(session: Session, category_code: str, place: str) -> RouteTest:
    test = RouteTest(category_code, place)
    category = session.exec(select(Category).where(Category.code == category_code)).first() if category_code else None
    street, community = _split_place(place)
    try:
        found = route(session, category_id=category.id if category else None, street=street, community=community)
    except Invalid:
        test.failure = "没有匹配的派单规则，所选分类及其上级也没有默认承办单位：派单时须由话务员人工指定承办单位。"
        return test
    test.department = found.department
    test.rule_id, test.explanation = _explain(session, found.how, category)
    return test


def _rules_context(session: Session, test: RouteTest | None = None) -> dict[str, Any]:
    cats = {c.id: c for c in session.exec(select(Category)).all()}
    depts = {d.id: d for d in session.exec(select(Department)).all()}
    rules = session.exec(select(RoutingRule).order_by(RoutingRule.active.desc(), RoutingRule.id)).all()
    rows = [{"r": r, "category": cats.get(r.category_id), "department": depts.get(r.department_id)} for r in rules]
    return {
        "rows": rows,
        "tree": category_tree(session),
        "departments": sorted((d for d in depts.values() if d.active), key=lambda d: d.code),
        "places": _known_places(session),
        "test": test,
        "sep": PLACE_SEP,
    }


@router.get("/rules", response_class=HTMLResponse)
def rules(
    request: Request,
    runtime: RuntimeDep,
    _: AdminUser,
    test_category: Annotated[str | None, Query(max_length=40)] = None,
    test_place: Annotated[str | None, Query(max_length=120)] = None,
) -> Response:
    with runtime.db.read_session() as session:
        test = None
        if test_category is not None or test_place is not None:
            test = _route_test(session, test_category or "", test_place or "")
        ctx = _rules_context(session, test)
    return _page(request, "admin/rules.html", {**ctx, "form": {}})


def _rules_error(request: Request, runtime: Runtime, exc: HotlineError, form: dict) -> Response:
    with runtime.db.read_session() as session:
        ctx = _rules_context(session)
    ctx.update(error=_message(exc, "该地点已在地点库中"), form=form)
    return _page(request, "admin/rules.html", ctx, exc.status_code)


@router.post("/rules", response_class=HTMLResponse)
def create_rule(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    category: Annotated[str, Form(max_length=40)] = "",
    place: Annotated[str, Form(max_length=120)] = "",
    department: Annotated[str, Form(max_length=40)] = "",
    priority: Annotated[str, Form(max_length=10)] = "0",
) -> Response:
    form = {"category": category, "place": place, "department": department, "priority": priority}
    street, community = _split_place(place)
    try:
        if not department:
            raise FormError("请选择承办单位", "department")
        try:
            rank = int(priority.strip() or 0)
        except ValueError:
            raise FormError("优先级应为整数", "priority") from None
        with runtime.db.session() as session:
            rule = directory.create_rule(
                session,
                department=department,
                category=category or None,
                street=street,
                community=community,
                priority=rank,
            )
    except HotlineError as exc:
        return _rules_error(request, runtime, exc, form)
    return _done("/admin/rules", f"已新建派单规则 #{rule.id}")


@router.post("/rules/{rule_id}/{action}", response_class=HTMLResponse)
def rule_active(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    rule_id: int,
    action: Annotated[str, PathParam(pattern="^(deactivate|reactivate)$")],
) -> Response:
    try:
        with runtime.db.session() as session:
            rule = directory.set_rule_active(session, rule_id=rule_id, active=action == "reactivate")
    except HotlineError as exc:
        return _rules_error(request, runtime, exc, {})
    return _done("/admin/rules", f"已{'启用' if rule.active else '停用'}派单规则 #{rule.id}")


@router.post("/places", response_class=HTMLResponse)
def create_place(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    street: Annotated[str, Form(max_length=100)] = "",
    community: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    try:
        street = _name(street, "街道名称", "street", 50)
        community_name = _name(community, "社区名称", "community", 50) if community.strip() else None
        if PLACE_SEP in street or (community_name and PLACE_SEP in community_name):
            raise FormError(f"地点名称不能包含“{PLACE_SEP}”")
        with runtime.db.session() as session:
            directory.create_place(session, street=street, community=community_name)
    except HotlineError as exc:
        return _rules_error(request, runtime, exc, {"street": street, "community": community})
    return _done("/admin/rules", f"已添加地点：{street}{' / ' + community_name if community_name else ''}")


# --------------------------------------------------------------------- limits


def limit_text(limit: Limit | None) -> str:
    """A time limit in Chinese: 3 个工作日, 24 小时, 15 分钟."""
    if limit is None:
        return "—"
    if limit.working_days is not None:
        return f"{limit.working_days} 个工作日"
    if limit.hours is not None:
        return f"{_number(limit.hours)} 小时"
    return f"{_number(limit.minutes or 0)} 分钟"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _limits_of(wf: Workflow) -> dict[str, Any]:
    lim = wf.limits
    by_type = [
        {
            "label": TYPE_LABELS[t],
            "sign": limit_text(lim.sign.pick(t, "normal")),
            "handle": limit_text(lim.handle.pick(t, "normal")),
            "sign_set": t in lim.sign.type,
            "handle_set": t in lim.handle.type,
        }
        for t in TICKET_TYPES
    ]
    by_urgency = [
        {
            "label": URGENCY_LABELS[u],
            "sign": limit_text(lim.sign.urgency.get(u)) if u in lim.sign.urgency else "按诉求类型",
            "handle": limit_text(lim.handle.urgency.get(u)) if u in lim.handle.urgency else "按诉求类型",
            "natural": any(
                x is not None and x.working_days is None for x in (lim.sign.urgency.get(u), lim.handle.urgency.get(u))
            ),
        }
        for u in URGENCIES
        if u != "normal"
    ]
    warning = lim.warning
    escalation = lim.escalation
    satisfied = "、".join(
        label
        for value, label in {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}.items()
        if value in lim.satisfied_ratings
    )
    others = [
        ("回访时限", limit_text(lim.callback), "中心审核通过办理结果（或直接办结）后，须在此时限内完成回访"),
        ("差评整改", limit_text(lim.rectification), "收到不满意评价后，承办单位核实、整改或说明并反馈的时限"),
        ("退单时限", limit_text(lim.return_window), "派单后在此时限内可申请退单，逾期须自行办理"),
        ("延期上限", f"累计 {lim.extension_cap_working_days} 个工作日", "一件工单经批准的延期天数合计不超过此数"),
        (
            "中心指定",
            f"第 {lim.designate_after_dispatches} 次派单起",
            "同一工单派单达到此次数后由中心指定承办单位，不得再退单",
        ),
        ("回访次数", f"{lim.callback_attempts} 次", "均未联系上则按“未回访”归档，不计为满意"),
        ("满意评价", satisfied, "归档时计为满意的评价等级"),
        (
            "停止计时",
            "、".join(st.label for st in wf.states.values() if st.clock_stopped) or "无",
            "处于这些状态时办理时限暂停，恢复后接着计算",
        ),
    ]
    ladder = [
        (
            "预警",
            "yellow",
            f"剩余时限不足 {_number(warning.fraction * 100)}% 或不足 {_number(warning.max_working_days)} 个工作日"
            "（取较小者）时亮黄灯",
        ),
        ("超期", "red", "时限届满当日向承办人发出催办"),
        (
            "督办",
            "red",
            f"超期 {_number(escalation.supervise_after_working_days)} 个工作日后仍未办结，向单位负责人发出督办单",
        ),
        (
            "通报",
            "red",
            f"超期 {_number(escalation.report_after_working_days)} 个工作日后仍未办结，列入向区领导的通报",
        ),
    ]
    return {
        "by_type": by_type,
        "default_sign": limit_text(lim.sign.default),
        "default_handle": limit_text(lim.handle.default),
        "by_urgency": by_urgency,
        "others": others,
        "ladder": ladder,
    }


def _workflow_file(wf: Workflow) -> str:
    path = Path(wf.path)
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


@router.get("/limits", response_class=HTMLResponse)
def limits(request: Request, runtime: RuntimeDep, _: AdminUser) -> Response:
    wfs = runtime.workflows
    default = wfs.get(wfs.default)
    items = [
        {
            "wf": wf,
            "file": _workflow_file(wf),
            "same_as_default": wf.name != default.name and wf.limits == default.limits,
            **_limits_of(wf),
        }
        for wf in sorted(wfs.workflows.values(), key=lambda w: w.name != default.name)
    ]
    return _page(request, "admin/limits.html", {"items": items, "default": default})


# ------------------------------------------------------------------- calendar


def _holiday_names() -> dict[date, str]:
    """Names of the bundled holiday data (the seed stores none), in Chinese."""
    import chinese_calendar

    chinese = {h.value: h.chinese for h in chinese_calendar.Holiday}
    names = {}
    for table in (chinese_calendar.holidays, chinese_calendar.workdays):
        for day, name in table.items():
            if name:
                names[day] = chinese.get(str(name), str(name))
    return names


def source_label(source: str | None) -> str:
    if not source:
        return "—"
    if source == "chinese-calendar":
        return "内置数据（chinesecalendar）"
    if source == "admin":
        return "管理员导入"
    if source.startswith("admin:"):
        return f"管理员导入（{source.removeprefix('admin:')}）"
    return source


def _year_days(session: Session, year: int) -> list[CalendarDay]:
    return session.exec(
        select(CalendarDay)
        .where(CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31))
        .order_by(CalendarDay.day)
    ).all()


@router.get("/calendar", response_class=HTMLResponse)
def calendar_years(
    request: Request, runtime: RuntimeDep, _: AdminUser, year: Annotated[int | None, Query(ge=2000, le=2100)] = None
) -> Response:
    if year is not None:
        return RedirectResponse(f"/admin/calendar/{year}", status_code=303)
    this_year = _local_today(runtime).year
    with runtime.db.read_session() as session:
        years = session.exec(select(CalendarYear).order_by(CalendarYear.year.desc())).all()
        counts: dict[int, dict[bool, int]] = defaultdict(lambda: {True: 0, False: 0})
        for day, working in session.exec(select(CalendarDay.day, CalendarDay.working)).all():
            counts[day.year][working] += 1
        provisional = session.exec(select(func.count()).select_from(Ticket).where(Ticket.deadlines_provisional)).one()
    covered = {y.year for y in years}
    missing = [y for y in (this_year, this_year + 1) if y not in covered]
    rows = [
        {
            "year": y.year,
            "source": source_label(y.source),
            "loaded_at": y.loaded_at,
            "holidays": counts[y.year][False],
            "workdays": counts[y.year][True],
        }
        for y in years
    ]
    return _page(
        request,
        "admin/calendar.html",
        {
            "rows": rows,
            "missing": missing,
            "this_year": this_year,
            "provisional": provisional,
            "first": min(covered) if covered else None,
            "last": max(covered) if covered else None,
        },
    )


@dataclass
class DayCell:
    day: date
    kind: str  # work | weekend | holiday | makeup | outside
    name: str | None = None
    today: bool = False


def _months(year: int, overrides: dict[date, CalendarDay], names: dict[date, str], today: date) -> list[dict]:
    grid = month_calendar.Calendar(firstweekday=0)
    months = []
    for month in range(1, 13):
        weeks = []
        for week in grid.monthdatescalendar(year, month):
            cells = []
            for d in week:
                if d.month != month:
                    cells.append(DayCell(d, "outside"))
                    continue
                row = overrides.get(d)
                if row is not None and not row.working:
                    kind = "holiday"
                elif row is not None and row.working and d.weekday() >= 5:
                    kind = "makeup"
                elif d.weekday() >= 5:
                    kind = "weekend"
                else:
                    kind = "work"
                cells.append(DayCell(d, kind, (row.name if row else None) or names.get(d), d == today))
            weeks.append(cells)
        months.append({"month": month, "weeks": weeks})
    return months


def _runs(days: list[date]) -> str:
    """Consecutive days as ranges: 10-01 至 10-07、10-09."""
    runs: list[list[date]] = []
    for d in days:
        if runs and (d - runs[-1][-1]).days == 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return "、".join(f"{r[0]:%m-%d} 至 {r[-1]:%m-%d}" if len(r) > 1 else f"{r[0]:%m-%d}" for r in runs)


def _periods(days: list[CalendarDay], names: dict[date, str]) -> list[dict]:
    """The year's holidays by name (国庆节: 10-01 至 10-07 放假, 10-10 上班), in calendar order."""
    groups: dict[str, dict] = {}
    for d in days:
        name = d.name or names.get(d.day) or "其他"
        group = groups.setdefault(name, {"name": name, "off": [], "work": []})
        group["work" if d.working else "off"].append(d.day)
    periods = sorted(groups.values(), key=lambda g: (g["off"] or g["work"])[0])
    for p in periods:
        p["range"] = _runs(p["off"])
    return periods


def _year_csv(year: int, days: list[CalendarDay], names: dict[date, str]) -> str:
    lines = ["date,kind,name"]
    if not days:
        lines += ["# 每行一个日期：放假写“休”，调休上班写“班”。例如：", f"# {year}-01-01,休,元旦"]
    for d in days:
        lines.append(f"{d.day.isoformat()},{'workday' if d.working else 'holiday'},{d.name or names.get(d.day) or ''}")
    return "\n".join(lines) + "\n"


def _year_context(session: Session, runtime: Runtime, year: int) -> dict[str, Any]:
    info = session.get(CalendarYear, year)
    days = _year_days(session, year)
    names = _holiday_names() if info is not None and info.source == "chinese-calendar" else {}
    by_day = {d.day: d for d in days}
    today = _local_today(runtime)
    months = _months(year, by_day, names, today)
    cells = [c for m in months for w in m["weeks"] for c in w if c.kind != "outside"]
    provisional = session.exec(select(func.count()).select_from(Ticket).where(Ticket.deadlines_provisional)).one()
    return {
        "year": year,
        "info": info,
        "source": source_label(info.source if info else None),
        "months": months,
        "periods": _periods(days, names),
        "working_days": sum(1 for c in cells if c.kind in ("work", "makeup")),
        "holidays": sum(1 for c in cells if c.kind == "holiday"),
        "makeups": sum(1 for c in cells if c.kind == "makeup"),
        "csv": _year_csv(year, days, names),
        "this_year": today.year,
        "provisional": provisional,
        "weekdays": "一二三四五六日",
    }


@router.get("/calendar/{year}", response_class=HTMLResponse)
def calendar_year(request: Request, runtime: RuntimeDep, _: AdminUser, year: Year) -> Response:
    with runtime.db.read_session() as session:
        ctx = _year_context(session, runtime, year)
    return _page(request, "admin/calendar_year.html", ctx)


CSV_ERRORS = [
    (re.compile(r"bad date '(.*)'; expected"), "日期“{0}”无法识别，应写作 YYYY-MM-DD 或 YYYY/M/D"),
    (re.compile(r"bad date '(.*)': (.*)"), "日期“{0}”不存在"),
    (re.compile(r"bad kind '(.*)'"), "类型“{0}”无法识别，放假写 holiday 或 休，调休上班写 workday 或 班"),
    (re.compile(r"bad header"), "第一行应为表头 date,kind,name（或 date,kind）"),
    (re.compile(r"missing header"), "缺少表头 date,kind,name"),
    (re.compile(r"expected .* fields, got (\d+)"), "应为 2–3 个字段（日期,类型,名称），此行有 {0} 个"),
    (re.compile(r"conflicts with line (\d+)"), "同一日期与第 {0} 行的类型相矛盾"),
]


def csv_error(message: str) -> str:
    """A holiday CSV error in Chinese, keeping the line number."""
    lineno, _, detail = message.partition(": ")
    number = lineno.removeprefix("line ")
    for pattern, zh in CSV_ERRORS:
        m = pattern.search(detail)
        if m:
            return f"第 {number} 行：{zh.format(*m.groups())}"
    return f"第 {number} 行：{detail}" if number.isdigit() else message


def parse_year_csv(text: str, year: int) -> tuple[dict[date, bool], dict[date, str]]:
    """The overrides and names of one year from a pasted CSV; FormError names the line."""
    try:
        overrides = load_holiday_csv(text)
    except ValueError as exc:
        raise FormError(csv_error(str(exc)), "csv") from None
    names: dict[date, str] = {}
    header_seen = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.removeprefix("\ufeff").strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader([stripped]))]
        if not header_seen:
            header_seen = True
            continue
        (day,) = load_holiday_csv(f"date,kind\n{fields[0]},{fields[1]}")
        if day.year != year:
            raise FormError(f"第 {lineno} 行：日期 {day.isoformat()} 不在 {year} 年内", "csv")
        if len(fields) > 2 and fields[2]:
            if len(fields[2]) > 50:
                raise FormError(f"第 {lineno} 行：名称不能超过 50 个字", "csv")
            names[day] = fields[2]
    if not overrides:
        raise FormError("没有任何日期：请按 date,kind,name 逐行粘贴放假和调休上班的日期", "csv")
    return overrides, names


@router.post("/calendar/{year}", response_class=HTMLResponse)
def import_calendar_year(
    request: Request,
    runtime: RuntimeDep,
    admin: AdminForm,
    year: Year,
    csv_text: Annotated[str, Form(alias="csv", max_length=60_000)] = "",
) -> Response:
    try:
        overrides, names = parse_year_csv(csv_text, year)
    except HotlineError as exc:
        with runtime.db.read_session() as session:
            ctx = _year_context(session, runtime, year)
        ctx.update(error=_message(exc), csv=csv_text)
        return _page(request, "admin/calendar_year.html", ctx, exc.status_code)
    with runtime.db.session() as session:
        import_year(session, overrides, f"admin:{admin.actor.username}"[:32], names=names, years=[year])
    runtime.invalidate_calendar()
    with runtime.db.session() as session:
        recomputed = recompute_provisional(session, runtime)
    off = sum(1 for working in overrides.values() if not working)
    return _done(
        f"/admin/calendar/{year}",
        f"已导入 {year} 年节假日数据：放假 {off} 天，调休上班 {len(overrides) - off} 天；"
        f"重新计算了 {recomputed} 件工单的暂定时限。",
    )


# ------------------------------------------------------------------ workflows


def _events_of(wf: Workflow) -> list[dict[str, Any]]:
    rows = []
    for ev in wf.events.values():
        if ev.dest is None:
            dest = "（状态不变）"
        elif ev.dest == RETURN_FROM:
            dest = "退单前的状态"
        else:
            dest = wf.state_label(ev.dest)
        rows.append(
            {
                "name": ev.name,
                "label": ev.label,
                "sources": [wf.state_label(s) for s in ev.sources],
                "dest": dest,
                "moves": ev.dest is not None,
                "roles": [ACTOR_LABELS.get(r, r) for r in sorted(ev.roles, key=_role_order)],
                "required": [FIELDS[f].label for f in ev.required],
                "optional": [FIELDS[f].label for f in ev.optional],
                "co": [wf.state_label(s) for s in ev.co_sources] if ev.co_sources else [],
            }
        )
    return rows


def _role_order(role: str) -> int:
    order = [*ROLES, "system", "citizen"]
    return order.index(role) if role in order else len(order)


@router.get("/workflows", response_class=HTMLResponse)
def workflows(
    request: Request, runtime: RuntimeDep, _: AdminUser, name: Annotated[str | None, Query(max_length=40)] = None
) -> Response:
    """One workflow at a time, drawn, with its events; a tab per workflow."""
    wfs = runtime.workflows
    wf = wfs.workflows.get(name or "") or wfs.get(wfs.default)
    with runtime.db.read_session() as session:
        used = dict(
            session.exec(
                select(Category.workflow, func.count())
                .where(Category.workflow.is_not(None))
                .group_by(Category.workflow)
            ).all()
        )
        open_tickets = dict(
            session.exec(
                select(Ticket.workflow, func.count()).where(Ticket.closed_at.is_(None)).group_by(Ticket.workflow)
            ).all()
        )
    tabs = [(w.name, w.label, used.get(w.name, 0)) for w in wfs.workflows.values()]
    item = {
        "wf": wf,
        "file": _workflow_file(wf),
        "svg": workflow_svg(wf),
        "events": _events_of(wf),
        "categories": used.get(wf.name, 0),
        "open_tickets": open_tickets.get(wf.name, 0),
        "types": [TYPE_LABELS.get(t, t) for t, w in wfs.by_type.items() if w == wf.name],
    }
    return _page(request, "admin/workflows.html", {"item": item, "tabs": tabs, "default_workflow": wfs.default})
