"""The category tree, routing rules and the district's places."""

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func
from sqlmodel import Session, select

from hotline import directory
from hotline.api.deps import RuntimeDep
from hotline.errors import HotlineError
from hotline.inputs import MAX_ID, IdPath
from hotline.models import (
    MAX_RULE_PRIORITY,
    Category,
    Department,
    RoutingRule,
)
from hotline.routing import NoRoute, Route, route
from hotline.runtime import Runtime
from hotline.web.admin.common import (
    PLACE_SEP,
    AdminForm,
    AdminUser,
    FormError,
    _code,
    _done,
    _name,
    _page,
    router,
)
from hotline.web.forms import page_message

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
    cats = {c.id: c for c in session.exec(select(Category)).all()}
    depts = {d.id: d for d in session.exec(select(Department)).all()}
    rules = dict(
        session.exec(
            select(RoutingRule.category_id, func.count())
            .where(RoutingRule.active, RoutingRule.category_id.is_not(None))
            .group_by(RoutingRule.category_id)
        ).all()
    )
    paths = sorted((directory.category_path(i, cats.get) for i in cats), key=lambda p: [c.code for c in p])
    out: list[Node] = []
    for path in paths:
        c, ancestors = path[-1], path[-2::-1]  # the nearest ancestor first
        own = depts.get(c.department_id)
        dept_from = next(((depts[a.department_id], a) for a in ancestors if a.department_id in depts), None)
        wf_from = None if c.workflow else next(((a.workflow, a) for a in ancestors if a.workflow), None)
        out.append(Node(c, len(ancestors), own, None if own else dept_from, c.workflow, wf_from, rules.get(c.id, 0)))
    return out


def _categories_context(session: Session, runtime: Runtime) -> dict[str, Any]:
    tree = category_tree(session)
    return {
        "tree": tree,
        # A community gets its work from its street office: not a category's default.
        "departments": directory.active_departments(session, communities=False),
        "workflows": runtime.workflows.workflows,
        "default_workflow": runtime.workflows.default,
        "roots": sum(1 for n in tree if n.depth == 0),
    }


@router.get("/categories", response_class=HTMLResponse)
def categories(
    request: Request, runtime: RuntimeDep, _: AdminUser, edit: Annotated[str | None, Query(max_length=40)] = None
) -> Response:
    """The category tree; `edit` opens that category's form (one at a time: each lists every
    category and department)."""
    with runtime.db.read_session() as session:
        ctx = _categories_context(session, runtime)
    return _page(request, "admin/categories.html", {**ctx, "form": {"edit": edit} if edit else {}})


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
        ctx.update(error=page_message(exc, f"分类编码“{code}”已被使用"), form=form)
        return _page(request, "admin/categories.html", ctx, exc.status_code)
    return _done("/admin/categories", f"已新建分类：{code} {name}")


def _categories_error(request: Request, runtime: Runtime, exc: HotlineError, form: dict) -> Response:
    with runtime.db.read_session() as session:
        ctx = _categories_context(session, runtime)
    ctx.update(error=page_message(exc, "分类编码已被使用"), form=form)
    return _page(request, "admin/categories.html", ctx, exc.status_code)


@router.post("/categories/{code}/edit", response_class=HTMLResponse)
def edit_category(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    code: str,
    name: Annotated[str, Form(max_length=200)] = "",
    parent: Annotated[str, Form(max_length=40)] = "",
    department: Annotated[str, Form(max_length=40)] = "",
    workflow: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    form = {
        "edit": code, "typed": True, "edit_name": name, "edit_parent": parent, "edit_department": department,
        "edit_workflow": workflow,
    }  # fmt: skip
    try:
        name = _name(name, "分类名称", "name")
        if workflow and workflow not in runtime.workflows.workflows:
            raise FormError("所选流程不存在", "workflow")
        with runtime.db.session() as session:
            directory.update_category(
                session,
                runtime,
                code,
                name=name,
                parent=parent or None,
                department=department or None,
                workflow=workflow or None,
            )
    except HotlineError as exc:
        return _categories_error(request, runtime, exc, form)
    return _done("/admin/categories", f"已保存分类：{code} {name}")


@router.post("/categories/{code}/{action}", response_class=HTMLResponse)
def category_action(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    code: str,
    action: Annotated[str, PathParam(pattern="^(deactivate|reactivate|delete)$")],
) -> Response:
    try:
        with runtime.db.session() as session:
            if action == "delete":
                name = directory.category_by_code(session, code, field="code").name
                directory.delete_category(session, code)
            else:
                name = directory.update_category(session, runtime, code, active=action == "reactivate").name
    except HotlineError as exc:
        return _categories_error(request, runtime, exc, {})
    done = {"delete": "已删除", "deactivate": "已停用", "reactivate": "已启用"}[action]
    return _done("/admin/categories", f"{done}分类：{code} {name}")


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
    """The administrator's routing test: what was asked, and the Route (None: no department)."""

    category: str
    place: str
    route: Route | None = None
    stopped: list[str] = field(default_factory=list)  # deactivated departments a rule or default named


def _route_test(session: Session, category_code: str, place: str) -> RouteTest:
    category = session.exec(select(Category).where(Category.code == category_code)).first() if category_code else None
    street, community = _split_place(place)
    try:
        found = route(session, category_id=category.id if category else None, street=street, community=community)
    except NoRoute as exc:
        # No rule and no default anywhere up the tree (or only deactivated ones): the agent chooses.
        return RouteTest(category_code, place, None, exc.stopped)
    return RouteTest(category_code, place, found)


def _rules_context(session: Session, test: RouteTest | None = None) -> dict[str, Any]:
    cats = {c.id: c for c in session.exec(select(Category)).all()}
    depts = {d.id: d for d in session.exec(select(Department)).all()}
    rules = session.exec(select(RoutingRule).order_by(RoutingRule.active.desc(), RoutingRule.id)).all()
    rows = [{"r": r, "category": cats.get(r.category_id), "department": depts.get(r.department_id)} for r in rules]
    return {
        "rows": rows,
        "tree": category_tree(session),
        # A community gets its work from its street office: no rule sends it tickets.
        "departments": sorted((d for d in depts.values() if d.active and d.parent_id is None), key=lambda d: d.code),
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
    edit: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """The routing rules and the route test; `edit` opens that rule's form (one at a time)."""
    with runtime.db.read_session() as session:
        test = None
        if test_category is not None or test_place is not None:
            test = _route_test(session, test_category or "", test_place or "")
        ctx = _rules_context(session, test)
    return _page(request, "admin/rules.html", {**ctx, "form": {"edit": edit} if edit else {}})


def _rules_error(request: Request, runtime: Runtime, exc: HotlineError, form: dict) -> Response:
    with runtime.db.read_session() as session:
        ctx = _rules_context(session)
    ctx.update(error=page_message(exc, "该地点已在地点库中"), form=form)
    return _page(request, "admin/rules.html", ctx, exc.status_code)


def _priority(text: str) -> int:
    """The priority as typed, or FormError saying what it should be (the form kept)."""
    try:
        rank = int(text.strip() or 0)
    except ValueError:
        rank = None
    if rank is None or abs(rank) > MAX_RULE_PRIORITY:
        raise FormError(f"优先级应为 -{MAX_RULE_PRIORITY} 到 {MAX_RULE_PRIORITY} 之间的整数", "priority")
    return rank


@router.post("/rules", response_class=HTMLResponse)
def create_rule(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    category: Annotated[str, Form(max_length=40)] = "",
    place: Annotated[str, Form(max_length=120)] = "",
    department: Annotated[str, Form(max_length=40)] = "",
    priority: Annotated[str, Form(max_length=40)] = "0",
) -> Response:
    form = {"category": category, "place": place, "department": department, "priority": priority}
    street, community = _split_place(place)
    try:
        if not department:
            raise FormError("请选择承办单位", "department")
        rank = _priority(priority)
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


@router.post("/rules/{rule_id}/edit", response_class=HTMLResponse)
def edit_rule(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    rule_id: IdPath,
    category: Annotated[str, Form(max_length=40)] = "",
    place: Annotated[str, Form(max_length=120)] = "",
    department: Annotated[str, Form(max_length=40)] = "",
    priority: Annotated[str, Form(max_length=40)] = "0",
) -> Response:
    street, community = _split_place(place)
    try:
        if not department:
            raise FormError("请选择承办单位", "department")
        rank = _priority(priority)
        with runtime.db.session() as session:
            directory.update_rule(
                session,
                rule_id,
                department=department,
                category=category or None,
                street=street,
                community=community,
                priority=rank,
            )
    except HotlineError as exc:
        typed = {
            "edit_category": category,
            "edit_place": place,
            "edit_department": department,
            "edit_priority": priority,
        }
        return _rules_error(request, runtime, exc, {"edit": rule_id, "typed": True, **typed})  # shown again, as typed
    return _done("/admin/rules", f"已保存派单规则 #{rule_id}")


@router.post("/rules/{rule_id}/{action}", response_class=HTMLResponse)
def rule_active(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    rule_id: IdPath,
    action: Annotated[str, PathParam(pattern="^(deactivate|reactivate|delete)$")],
) -> Response:
    try:
        with runtime.db.session() as session:
            if action == "delete":
                directory.delete_rule(session, rule_id)
                return _done("/admin/rules", f"已删除派单规则 #{rule_id}")
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
