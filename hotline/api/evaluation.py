"""Evaluation: rating links, rectifications of bad ratings, appeals, the message log."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from hotline.api.deps import CurrentActor, RuntimeDep, require
from hotline.deadlines.calendar import local_iso
from hotline.evaluation import appeals, rating_system, rectifications
from hotline.inputs import IdPath, IdQuery
from hotline.models import DEPARTMENT_ROLES, Appeal, Message, Rectification, Ticket
from hotline.ticket_view import mask_phone
from hotline.tickets import get_visible
from hotline.workflow.engine import Actor, fire

router = APIRouter(tags=["evaluation"])
Text = Annotated[str, Field(min_length=1, max_length=4000)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


@router.post("/tickets/{ticket_id}/rating-invitations", status_code=status.HTTP_201_CREATED)
def invite(
    ticket_id: IdPath, actor: Annotated[Actor, require("agent", "supervisor")], runtime: RuntimeDep
) -> dict[str, Any]:
    """Send (or resend) the citizen's rating link; returns it as `url`."""
    with runtime.db.session() as session:
        get_visible(session, actor, ticket_id)
        fired = fire(session, runtime, ticket_id, "invite", actor, {}, now=runtime.now())
        result = fired.result
        return {
            "ticket": fired.ticket.id,
            "url": result["url"],
            "expires_at": local_iso(result["expires_at"]),
            "message": result["message"],
        }


class RatingIn(Body):
    """A rating from the government-service rating system (好差评), keyed by the ticket number."""

    ticket_number: Annotated[str, Field(min_length=1, max_length=20)]
    rating: Annotated[int, Field(ge=1, le=5)]
    channel: Annotated[str, Field(min_length=1, max_length=32)]
    comment: Annotated[str, Field(max_length=4000)] | None = None
    rated_at: AwareDatetime
    external_id: Annotated[str, Field(min_length=1, max_length=64)]


@router.post("/ratings", status_code=status.HTTP_201_CREATED, response_model=None)
def rate(body: RatingIn, actor: Annotated[Actor, require("integration")], runtime: RuntimeDep) -> JSONResponse:
    """Record a rating as the ticket's callback; the same `external_id` again returns the first (200)."""
    try:
        with runtime.db.session() as session:
            callback, created = rating_system.record(session, runtime, actor, **body.model_dump(), now=runtime.now())
            out = rating_system.rating_out(session, callback)
    except IntegrityError:
        # Another request recorded the same rating a moment ago (PostgreSQL).
        with runtime.db.read_session() as session:
            callback = rating_system.recorded(session, actor, body.external_id)
            if callback is None:
                raise
            created, out = False, rating_system.rating_out(session, callback)
    return JSONResponse(out, status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _rect_out(r: Rectification, number: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "ticket": r.ticket_id,
        "ticket_number": number,
        "department_id": r.department_id,
        "status": r.status,
        "opened_at": local_iso(r.opened_at),
        "due_at": local_iso(r.due_at),
        "verification": r.verification,
        "measures": r.measures,
        "reported_at": local_iso(r.reported_at),
        "decided_at": local_iso(r.decided_at),
        "decision_reason": r.decision_reason,
    }


@router.get("/rectifications")
def list_rectifications(
    actor: Annotated[Actor, require("handler", "leader", "supervisor", "admin")],
    runtime: RuntimeDep,
    status: Literal["open", "reported", "accepted", "withdrawn"] | None = None,
) -> list[dict[str, Any]]:
    """Rectifications of bad ratings: a department's own, or all for the centre."""
    with runtime.db.read_session() as session:
        stmt = select(Rectification, Ticket.number).join(Ticket, Ticket.id == Rectification.ticket_id)
        if actor.role in DEPARTMENT_ROLES:
            stmt = stmt.where(Rectification.department_id == actor.department_id)
        if status:
            stmt = stmt.where(Rectification.status == status)
        return [_rect_out(r, n) for r, n in session.exec(stmt.order_by(Rectification.id.desc()).limit(500)).all()]


class ReportIn(Body):
    verification: Text
    measures: Text


@router.post("/rectifications/{rect_id}/report")
def report(rect_id: IdPath, body: ReportIn, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.db.session() as session:
        r = rectifications.report_rectification(
            session, runtime, rect_id, actor, now=runtime.now(), **body.model_dump()
        )
        return _rect_out(r, session.get(Ticket, r.ticket_id).number)


class DecisionIn(Body):
    decision: Literal["accept", "return"]
    reason: Annotated[str, Field(max_length=2000)] | None = None


@router.post("/rectifications/{rect_id}/decision")
def decide(rect_id: IdPath, body: DecisionIn, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.db.session() as session:
        r = rectifications.decide_rectification(
            session, runtime, rect_id, actor, accept=body.decision == "accept", reason=body.reason, now=runtime.now()
        )
        return _rect_out(r, session.get(Ticket, r.ticket_id).number)


class AppealIn(Body):
    kind: Literal["rating", "unreasonable"]
    grounds: Text


def _appeal_out(a: Appeal) -> dict[str, Any]:
    return {
        "id": a.id,
        "ticket": a.ticket_id,
        "kind": a.kind,
        "status": a.status,
        "grounds": a.grounds,
        "department_id": a.department_id,
        "requested_at": local_iso(a.requested_at),
        "decided_at": local_iso(a.decided_at),
        "decision_reason": a.decision_reason,
    }


@router.post("/tickets/{ticket_id}/appeals", status_code=status.HTTP_201_CREATED)
def appeal(ticket_id: IdPath, body: AppealIn, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """A department appeals the rating, or asks for the ticket to be marked unreasonable."""
    with runtime.db.session() as session:
        get_visible(session, actor, ticket_id)
        return _appeal_out(
            appeals.open_appeal(
                session, runtime, ticket_id, actor, kind=body.kind, grounds=body.grounds, now=runtime.now()
            )
        )


@router.get("/appeals")
def list_appeals(
    actor: Annotated[Actor, require("handler", "leader", "supervisor", "admin")],
    runtime: RuntimeDep,
    status: Literal["pending", "granted", "refused"] | None = None,
) -> list[dict[str, Any]]:
    with runtime.db.read_session() as session:
        stmt = select(Appeal)
        if actor.role in DEPARTMENT_ROLES:
            stmt = stmt.where(Appeal.department_id == actor.department_id)
        if status:
            stmt = stmt.where(Appeal.status == status)
        return [_appeal_out(a) for a in session.exec(stmt.order_by(Appeal.id.desc()).limit(500)).all()]


class AppealDecisionIn(Body):
    decision: Literal["grant", "refuse"]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


@router.post("/appeals/{appeal_id}/decision")
def decide_appeal(
    appeal_id: IdPath, body: AppealDecisionIn, actor: CurrentActor, runtime: RuntimeDep
) -> dict[str, Any]:
    with runtime.db.session() as session:
        return _appeal_out(
            appeals.decide_appeal(
                session,
                runtime,
                appeal_id,
                actor,
                grant=body.decision == "grant",
                reason=body.reason,
                now=runtime.now(),
            )
        )


@router.get("/messages")
def list_messages(
    _: Annotated[Actor, require("admin")],
    runtime: RuntimeDep,
    ticket: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """The text messages handed to the channel (with the stored channel: kept here)."""
    with runtime.db.read_session() as session:
        stmt = select(Message)
        if ticket is not None:
            stmt = stmt.where(Message.ticket_id == ticket)
        return [
            {
                "id": m.id,
                "channel": m.channel,
                "to": mask_phone(m.to),
                "body": m.body,
                "ticket": m.ticket_id,
                "created_at": local_iso(m.created_at),
                "status": m.status,
                "error": m.error,
            }
            for m in session.exec(stmt.order_by(Message.id.desc()).limit(limit)).all()
        ]
