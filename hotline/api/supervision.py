"""Notices, supervision orders (督办单) and the escalation record (催办, 督办, 通报)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_
from sqlmodel import select

from hotline import notices, supervision
from hotline.api.deps import CurrentActor, RuntimeDep, require
from hotline.deadlines.calendar import local_iso
from hotline.inputs import IdPath
from hotline.models import DEPARTMENT_ROLES, Department, Escalation, SupervisionOrder, Ticket
from hotline.workflow.engine import Actor

router = APIRouter(tags=["supervision"])


@router.get("/notifications")
def list_notifications(
    actor: CurrentActor,
    runtime: RuntimeDep,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    """The caller's notices, newest first; `read_at` is when the caller read each (each
    person of a department reads a department's notice for themselves)."""
    with runtime.db.read_session() as session:
        return [
            {
                "id": n.id,
                "kind": n.kind,
                "ticket": n.ticket_id,
                "ticket_number": number,
                "title": n.title,
                "body": n.body,
                "created_at": local_iso(n.created_at),
                "read_at": local_iso(read_at),
            }
            for n, number, read_at in notices.listing(session, actor, limit, unread_only=unread)
        ]


@router.post("/notifications/read")
def mark_all_read(actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Everything addressed to the caller so far counts as read."""
    now = runtime.now()
    with runtime.db.session() as session:
        notices.mark_all_read(session, actor, now)
    return {"read_before": local_iso(now)}


@router.post("/notifications/{notification_id}/read")
def mark_read(notification_id: IdPath, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.db.session() as session:
        read_at = notices.mark_read(session, actor, notification_id, runtime.now())
    return {"id": notification_id, "read_at": local_iso(read_at)}


def _order_out(o: SupervisionOrder, number: str) -> dict[str, Any]:
    return {
        "id": o.id,
        "ticket": o.ticket_id,
        "ticket_number": number,
        "department_id": o.department_id,
        "issued_at": local_iso(o.issued_at),
        "issued_by_scheduler": o.issued_by_id is None,
        "message": o.message,
        "status": o.status,
        "answered_at": local_iso(o.answered_at),
        "answer": o.answer,
    }


@router.get("/supervision-orders")
def list_orders(
    actor: Annotated[Actor, require("leader", "handler", "supervisor", "admin")],
    runtime: RuntimeDep,
    status: Literal["open", "answered", "lapsed"] | None = None,
) -> list[dict[str, Any]]:
    """Supervision orders: a department's own, or all of them for the centre."""
    with runtime.db.read_session() as session:
        stmt = select(SupervisionOrder, Ticket.number).join(Ticket, Ticket.id == SupervisionOrder.ticket_id)
        if actor.role in DEPARTMENT_ROLES:
            stmt = stmt.where(SupervisionOrder.department_id == actor.department_id)
        if status:
            stmt = stmt.where(SupervisionOrder.status == status)
        rows = session.exec(stmt.order_by(SupervisionOrder.id.desc()).limit(500)).all()
        return [_order_out(o, number) for o, number in rows]


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: Annotated[str, Field(min_length=1, max_length=4000)]


@router.post("/supervision-orders/{order_id}/answer")
def answer_order(order_id: IdPath, body: AnswerIn, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """The department leader answers a supervision order (through the workflow gateway)."""
    with runtime.db.session() as session:
        order, ticket = supervision.answer_order(session, runtime, order_id, actor, body.answer, now=runtime.now())
        return _order_out(order, ticket.number)


@router.get("/escalations")
def list_escalations(
    actor: Annotated[Actor, require("supervisor", "admin", "leader")],
    runtime: RuntimeDep,
    step: Literal["warn", "urge", "supervise", "report"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """The escalation record; `step=report` is the list reported to district leadership (通报)."""
    with runtime.db.read_session() as session:
        stmt = select(Escalation, Ticket.number).join(Ticket, Ticket.id == Escalation.ticket_id)
        if actor.role == "leader":
            # Their own department's; a street office's leader its communities' too (二级派单),
            # as with the indicators (hotline.indicators.stats.may_see_figures).
            own = select(Department.id).where(
                or_(Department.id == actor.department_id, Department.parent_id == actor.department_id)
            )
            stmt = stmt.where(Escalation.department_id.in_(own))
        if step:
            stmt = stmt.where(Escalation.step == step)
        rows = session.exec(stmt.order_by(Escalation.id.desc()).limit(limit)).all()
        return [
            {
                "ticket": e.ticket_id,
                "ticket_number": number,
                "department_id": e.department_id,
                "deadline": e.deadline_kind,
                "deadline_at": local_iso(e.deadline_at),
                "step": e.step,
                "at": local_iso(e.at),
                "by_scheduler": e.by_scheduler,
            }
            for e, number in rows
        ]
