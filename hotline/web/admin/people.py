"""Departments and users."""

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func
from sqlmodel import Session, select

from hotline import audit_log, directory
from hotline.api.deps import RuntimeDep
from hotline.errors import HotlineError, NotFound
from hotline.inputs import IdPath
from hotline.models import (
    DEPARTMENT_ROLES,
    INTEGRATION,
    ROLES,
    Category,
    Department,
    RoutingRule,
    Ticket,
    User,
)
from hotline.runtime import Runtime
from hotline.web.admin.common import (
    AdminForm,
    AdminUser,
    FormError,
    _code,
    _done,
    _name,
    _page,
    router,
)
from hotline.web.auth import idle_limit
from hotline.web.forms import page_message
from hotline.web.render import ROLE_LABELS

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
    # The communities (社区, 二级派单) under each street office, apart from the units the centre
    # dispatches to; the street offices they may be put under.
    communities: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        if row["d"].parent_id is not None:
            communities.setdefault(row["d"].parent_id, []).append(row)
    for row in rows:  # a street office's communities still in use: its switch says so
        row["active_communities"] = sum(1 for c in communities.get(row["d"].id, []) if c["d"].active)
    return {
        "rows": [row for row in rows if row["d"].parent_id is None],
        "streets": [(row["d"], communities[row["d"].id]) for row in rows if row["d"].id in communities],
        "street_choices": [d for d in depts if d.active and d.parent_id is None],
        # The facts are of the units listed (the communities are counted apart, under their streets).
        "active_count": sum(1 for d in depts if d.active and d.parent_id is None),
        "inactive_count": sum(1 for d in depts if not d.active and d.parent_id is None),
        "without_org_code": sum(1 for d in depts if d.active and d.parent_id is None and not d.org_code),
        "community_count": sum(1 for d in depts if d.parent_id is not None),
    }


def _departments_page(request: Request, runtime: Runtime, context: dict[str, Any], status_code: int = 200) -> Response:
    with runtime.db.read_session() as session:
        ctx = _departments_context(session)
    return _page(request, "admin/departments.html", {**ctx, "form": {}, **context}, status_code)


@router.get("/departments", response_class=HTMLResponse)
def departments(request: Request, runtime: RuntimeDep, _: AdminUser) -> Response:
    return _departments_page(request, runtime, {})


@router.post("/departments", response_class=HTMLResponse)
def create_department(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    code: Annotated[str, Form(max_length=100)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    org_code: Annotated[str, Form(max_length=100)] = "",
    parent: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """A new department; with `parent`, a community (社区) under that street office."""
    form = {"code": code, "name": name, "org_code": org_code, "parent": parent}
    what = "社区" if parent else "单位"
    try:
        code = _code(code, f"{what}编码", "code")
        name = _name(name, f"{what}名称", "name")
        with runtime.db.session() as session:
            dept = directory.create_department(
                session, code=code, name=name, org_code=org_code, parent=parent or None, now=runtime.now()
            )
            street = session.get(Department, dept.parent_id) if dept.parent_id else None
    except HotlineError as exc:
        error = page_message(exc, f"{what}编码“{code}”已被使用")
        return _departments_page(request, runtime, {"error": error, "form": form}, exc.status_code)
    if street is not None:
        return _done("/admin/departments#communities", f"已在{street.name}下新建社区：{name}（{code}）")
    return _done("/admin/departments", f"已新建单位：{name}（{code}）")


@router.post("/departments/{department_id}/rename", response_class=HTMLResponse)
def department_rename(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    department_id: IdPath,
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        name = _name(name, "名称", "name")
        with runtime.db.session() as session:
            dept = session.get(Department, department_id)
            if dept is None:
                raise NotFound(f"no department with the id {department_id}", zh="单位不存在")
            before, community = dept.name, dept.parent_id is not None
            directory.update_department(session, dept.code, name=name)
    except HotlineError as exc:
        form = {"rename_of": department_id, "new_name": name}
        return _departments_page(request, runtime, {"error": page_message(exc), "form": form}, exc.status_code)
    back = "/admin/departments#communities" if community else "/admin/departments"
    return _done(back, f"已将“{before}”更名为“{name}”")


@router.post("/departments/{department_id}/org-code", response_class=HTMLResponse)
def department_org_code(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    department_id: IdPath,
    org_code: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    try:
        with runtime.db.session() as session:
            dept = directory.set_department_org_code(session, department_id=department_id, org_code=org_code)
    except HotlineError as exc:
        form = {"org_code_of": department_id, "org_code": org_code}
        return _departments_page(request, runtime, {"error": page_message(exc), "form": form}, exc.status_code)
    if dept.org_code:
        return _done("/admin/departments", f"已保存{dept.name}的统一社会信用代码：{dept.org_code}")
    return _done("/admin/departments", f"已清除{dept.name}的统一社会信用代码")


@router.post("/departments/{department_id}/{action}", response_class=HTMLResponse)
def department_active(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    department_id: IdPath,
    action: Annotated[str, PathParam(pattern="^(deactivate|reactivate)$")],
) -> Response:
    try:
        with runtime.db.session() as session:
            dept = directory.set_department_active(session, department_id=department_id, active=action == "reactivate")
    except HotlineError as exc:
        return _departments_page(request, runtime, {"error": page_message(exc)}, exc.status_code)
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
    users = session.exec(query).all()
    idle = idle_limit(runtime)
    sessions = directory.sessions_of(session, [u.id for u in users], live_after=now - idle if idle else None, now=now)
    rows = []
    for u in users:
        failures, until = runtime.login_throttle.account(u.username, now)
        rows.append(
            {
                "u": u,
                "department": by_id.get(u.department_id),
                "failures": failures,
                "locked_until": until,
                "sessions": sessions.get(u.id, []),
            }
        )
    counts = dict(session.exec(select(User.role, func.count()).group_by(User.role)).all())
    locked = sum(1 for row in rows if row["locked_until"] and row["u"].active)
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
        "password_rule": directory.PASSWORD_RULE,
    }


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, runtime: RuntimeDep, _: AdminUser, role: str = "", department: str = "") -> Response:
    with runtime.db.read_session() as session:
        ctx = _users_context(session, runtime, role, department)
    return _page(request, "admin/users.html", {**ctx, "form": {}})


def _check_new_password(password: str, confirm: str, username: str) -> None:
    """The password policy (directory.check_password_policy), and the same password twice."""
    directory.check_password_policy(password, username)
    if password != confirm:
        raise FormError("两次输入的密码不一致", "password")


def _users_error(
    request: Request, runtime: Runtime, exc: HotlineError, form: dict, conflict: str | None = None
) -> Response:
    with runtime.db.read_session() as session:
        ctx = _users_context(session, runtime, "", "")
    ctx.update(error=page_message(exc, conflict), form=form)
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
    source: Annotated[str, Form(max_length=40)] = "",
    password: Annotated[str, Form(max_length=300)] = "",
    password_confirm: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    username = username.strip()
    source = source.strip()
    form = {
        "username": username,
        "display_name": display_name,
        "role": role,
        "department": department,
        "source": source,
    }
    try:
        if not directory.USERNAME.match(username):
            raise FormError("用户名为 2–64 位字母、数字或 _ . - @", "username")
        if role not in ROLES:
            raise FormError("请选择角色", "role")
        if role in DEPARTMENT_ROLES and not department:
            raise FormError(f"{ROLE_LABELS[role]}须属于一个单位：请选择所属单位", "department")
        display = _name(display_name, "姓名", "display_name") if display_name.strip() else username
        _check_new_password(password, password_confirm, username)
        with runtime.db.session() as session:
            directory.create_user(
                session,
                username=username,
                role=role,
                password=password,
                department=department if role in DEPARTMENT_ROLES else None,
                display_name=display,
                source=source if role == INTEGRATION else None,
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
    user_id: IdPath,
    password: Annotated[str, Form(max_length=300)] = "",
    password_confirm: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    try:
        with runtime.db.read_session() as session:
            username = directory.get_user(session, user_id=user_id).username
        _check_new_password(password, password_confirm, username)
        with runtime.db.session() as session:
            user = directory.reset_password(session, user_id=user_id, password=password)
        runtime.login_throttle.clear_account(user.username)
    except HotlineError as exc:
        return _users_error(request, runtime, exc, {"reset": user_id})
    return _done(
        "/admin/users",
        f"已重置 {user.display_name or user.username}（{user.username}）的密码，该用户已在所有设备上退出登录，"
        "下次登录须先修改密码。新密码不会再次显示，请通过安全渠道告知本人。",
    )


@router.post("/users/{user_id}/sessions/end", response_class=HTMLResponse)
def end_all_sessions(request: Request, runtime: RuntimeDep, _: AdminForm, user_id: IdPath) -> Response:
    """全部结束: every browser the user is signed in on goes back to the sign-in page."""
    try:
        with runtime.db.session() as session:
            user, ended = directory.end_sessions(session, user_id=user_id)
    except HotlineError as exc:
        return _users_error(request, runtime, exc, {})
    return _done(
        "/admin/users", f"已结束 {user.display_name or user.username}（{user.username}）的全部 {ended} 个登录会话"
    )


@router.post("/users/{user_id}/sessions/{session_id}/end", response_class=HTMLResponse)
def end_one_session(
    request: Request, runtime: RuntimeDep, _: AdminForm, user_id: IdPath, session_id: IdPath
) -> Response:
    """结束会话: that browser goes back to the sign-in page at its next request."""
    try:
        with runtime.db.session() as session:
            user = directory.end_session(session, user_id=user_id, session_id=session_id)
    except HotlineError as exc:
        return _users_error(request, runtime, exc, {})
    return _done("/admin/users", f"已结束 {user.display_name or user.username}（{user.username}）的一个登录会话")


@router.post("/users/{user_id}/{action}", response_class=HTMLResponse)
def user_action(
    request: Request,
    runtime: RuntimeDep,
    admin: AdminForm,
    user_id: IdPath,
    action: Annotated[str, PathParam(pattern="^(deactivate|reactivate|unlock)$")],
) -> Response:
    try:
        if action == "deactivate" and user_id == admin.actor.id:
            raise FormError("不能停用自己正在使用的账号")
        with runtime.db.session() as session:
            if action == "unlock":
                user = directory.get_user(session, user_id=user_id)
                runtime.login_throttle.clear_account(user.username)
                audit_log.record_user(session, "user.unlock", user)
            else:
                user = directory.set_user_active(session, user_id=user_id, active=action == "reactivate")
    except HotlineError as exc:
        return _users_error(request, runtime, exc, {})
    verb = {"deactivate": "停用", "reactivate": "启用", "unlock": "解锁"}[action]
    note = "，其登录会话和接口令牌随即失效" if action == "deactivate" else ""
    return _done("/admin/users", f"已{verb}用户：{user.display_name or user.username}（{user.username}）{note}")
