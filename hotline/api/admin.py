"""Administration: departments, categories, routing rules, users."""

from fastapi import APIRouter, Response, status
from sqlmodel import select

from hotline import directory
from hotline.api.deps import AdminActor, CurrentActor, RuntimeDep
from hotline.api.schemas import (
    CategoryIn,
    CategoryPatch,
    DepartmentIn,
    DepartmentPatch,
    PlaceIn,
    RoutingRuleIn,
    RoutingRulePatch,
    UserIn,
)
from hotline.db import utcnow
from hotline.inputs import IdPath
from hotline.models import Category, Department, RoutingRule, User

router = APIRouter(tags=["admin"])


def _department_out(d: Department, parent: str | None) -> dict:
    """A department as the API gives it; `parent`: a community's street office (its code)."""
    return {"id": d.id, "code": d.code, "name": d.name, "org_code": d.org_code, "active": d.active, "parent": parent}


@router.post("/departments", status_code=status.HTTP_201_CREATED)
def create_department(body: DepartmentIn, _: AdminActor, runtime: RuntimeDep) -> dict:
    with runtime.db.session() as session:
        dept = directory.create_department(session, **body.model_dump(), now=utcnow())
        return _department_out(dept, body.parent)


@router.patch("/departments/{code}")
def update_department(code: str, body: DepartmentPatch, _: AdminActor, runtime: RuntimeDep) -> dict:
    """Rename, put a community under a street office (or take it out), (de)activate."""
    with runtime.db.session() as session:
        dept = directory.update_department(session, code, **body.model_dump(exclude_unset=True))
        parent = session.get(Department, dept.parent_id) if dept.parent_id else None
        return _department_out(dept, parent.code if parent else None)


@router.get("/departments")
def list_departments(_: CurrentActor, runtime: RuntimeDep) -> list[dict]:
    with runtime.db.read_session() as session:
        departments = session.exec(select(Department).order_by(Department.code)).all()
        codes = {d.id: d.code for d in departments}
        return [_department_out(d, codes.get(d.parent_id)) for d in departments]


@router.post("/categories", status_code=status.HTTP_201_CREATED)
def create_category(body: CategoryIn, _: AdminActor, runtime: RuntimeDep) -> dict:
    with runtime.db.session() as session:
        c = directory.create_category(session, runtime, **body.model_dump())
        return {"id": c.id, **body.model_dump()}


@router.get("/categories")
def list_categories(_: CurrentActor, runtime: RuntimeDep) -> list[dict]:
    with runtime.db.read_session() as session:
        cats = session.exec(select(Category).order_by(Category.code)).all()
        codes = {c.id: c.code for c in cats}
        depts = {d.id: d.code for d in session.exec(select(Department)).all()}
        return [
            {
                "id": c.id,
                "code": c.code,
                "name": c.name,
                "parent": codes.get(c.parent_id),
                "department": depts.get(c.department_id),
                "workflow": c.workflow,
                "active": c.active,
            }
            for c in cats
        ]


def _category_out(session, c: Category) -> dict:
    parent = session.get(Category, c.parent_id) if c.parent_id else None
    dept = session.get(Department, c.department_id) if c.department_id else None
    return {
        "id": c.id,
        "code": c.code,
        "name": c.name,
        "parent": parent.code if parent else None,
        "department": dept.code if dept else None,
        "workflow": c.workflow,
        "active": c.active,
    }


@router.patch("/categories/{code}")
def update_category(code: str, body: CategoryPatch, _: AdminActor, runtime: RuntimeDep) -> dict:
    """Rename, move, change the default department or workflow, (de)activate."""
    with runtime.db.session() as session:
        c = directory.update_category(session, runtime, code, **body.model_dump(exclude_unset=True))
        return _category_out(session, c)


@router.delete("/categories/{code}", status_code=status.HTTP_204_NO_CONTENT)
def delete_category(code: str, _: AdminActor, runtime: RuntimeDep) -> Response:
    """Delete a category nothing uses (409 otherwise: deactivate it)."""
    with runtime.db.session() as session:
        directory.delete_category(session, code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _rule_out(session, r: RoutingRule) -> dict:
    cat = session.get(Category, r.category_id) if r.category_id else None
    return {
        "id": r.id,
        "category": cat.code if cat else None,
        "street": r.street,
        "community": r.community,
        "department": session.get(Department, r.department_id).code,
        "priority": r.priority,
        "active": r.active,
    }


@router.patch("/routing-rules/{rule_id}")
def update_routing_rule(rule_id: IdPath, body: RoutingRulePatch, _: AdminActor, runtime: RuntimeDep) -> dict:
    """Change a routing rule."""
    with runtime.db.session() as session:
        return _rule_out(session, directory.update_rule(session, rule_id, **body.model_dump(exclude_unset=True)))


@router.delete("/routing-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_routing_rule(rule_id: IdPath, _: AdminActor, runtime: RuntimeDep) -> Response:
    """Delete a routing rule."""
    with runtime.db.session() as session:
        directory.delete_rule(session, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/routing-rules", status_code=status.HTTP_201_CREATED)
def create_routing_rule(body: RoutingRuleIn, _: AdminActor, runtime: RuntimeDep) -> dict:
    with runtime.db.session() as session:
        rule = directory.create_rule(session, **body.model_dump())
        return {"id": rule.id, **body.model_dump()}


@router.get("/routing-rules")
def list_routing_rules(_: CurrentActor, runtime: RuntimeDep) -> list[dict]:
    with runtime.db.read_session() as session:
        codes = {c.id: c.code for c in session.exec(select(Category)).all()}
        depts = {d.id: d.code for d in session.exec(select(Department)).all()}
        return [
            {
                "id": r.id,
                "category": codes.get(r.category_id),
                "street": r.street,
                "community": r.community,
                "department": depts.get(r.department_id),
                "priority": r.priority,
                "active": r.active,
            }
            for r in session.exec(select(RoutingRule).order_by(RoutingRule.id)).all()
        ]


@router.post("/users", status_code=status.HTTP_201_CREATED)
def create_user(body: UserIn, _: AdminActor, runtime: RuntimeDep) -> dict:
    with runtime.db.session() as session:
        user = directory.create_user(session, now=utcnow(), **body.model_dump())
        return {
            "id": user.id,
            "username": user.username,
            "role": user.role,
            "department": body.department,
            "display_name": user.display_name,
            "source": user.source,
        }


@router.get("/users")
def list_users(_: AdminActor, runtime: RuntimeDep) -> list[dict]:
    with runtime.db.read_session() as session:
        depts = {d.id: d.code for d in session.exec(select(Department)).all()}
        return [
            {
                "id": u.id,
                "username": u.username,
                "role": u.role,
                "department": depts.get(u.department_id),
                "display_name": u.display_name,
                "source": u.source,
                "active": u.active,
            }
            for u in session.exec(select(User).order_by(User.id)).all()
        ]


@router.post("/places", status_code=status.HTTP_201_CREATED)
def create_place(body: PlaceIn, _: AdminActor, runtime: RuntimeDep) -> dict:
    with runtime.db.session() as session:
        place = directory.create_place(session, street=body.street, community=body.community)
        return {"id": place.id, "street": place.street, "community": place.community}


@router.get("/places")
def list_places(_: CurrentActor, runtime: RuntimeDep) -> dict[str, list[str]]:
    """Streets and their communities."""
    with runtime.db.read_session() as session:
        return directory.places(session)
