"""Tickets: intake, lists, one ticket, its transitions and its history."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from hotline.api.deps import CurrentActor, IntakeActor, RuntimeDep
from hotline.api.schemas import TicketIn
from hotline.calls import intake_call
from hotline.errors import Invalid
from hotline.indicators.analysis import repeats_of
from hotline.inputs import Day, IdPath, PageQuery
from hotline.runtime import Runtime
from hotline.ticket_view import Lookups, ticket_out
from hotline.tickets import (
    assignments_of,
    capped,
    create_ticket,
    day_bounds,
    get_visible,
    history_out,
    search,
    visible_clause,
)
from hotline.workflow.engine import available_events, fire

router = APIRouter(prefix="/tickets", tags=["tickets"])


class TransitionIn(BaseModel):
    """`{"event": NAME, "version"?: N, ...the event's fields}`."""

    model_config = ConfigDict(extra="allow")
    event: Annotated[str, Field(min_length=1, max_length=40)]
    version: int | None = None


@router.post("", status_code=status.HTTP_201_CREATED, response_model=None)
def create(body: TicketIn, actor: IntakeActor, request: Request) -> JSONResponse:
    """Log a ticket; an `external_id` seen before from the same source returns the first ticket (200)."""
    # The runtime read from the app, not a dependency of its own: FastAPI solves one
    # dependency fewer for the busiest calls (the same in fire_transition).
    runtime: Runtime = request.app.state.runtime
    data = body.model_dump()
    try:
        with runtime.db.session() as session:
            call = intake_call(session, actor, data["call"]) if data["call"] else None
            ticket, created = create_ticket(session, runtime, actor, data, now=runtime.now(), call=call)
            out = ticket_out(ticket, actor, runtime, Lookups(session), [])
    except IntegrityError:
        # Another request created the same (source, external_id) a moment ago (PostgreSQL).
        if not data.get("external_id"):
            raise
        with runtime.db.read_session() as session:
            ticket, created = create_ticket(session, runtime, actor, data, now=runtime.now())
            out = ticket_out(ticket, actor, runtime, Lookups(session), assignments_of(session, ticket.id))
    # A ready response: `out` is JSON already, and FastAPI's encoder pass over it cost a
    # tenth of an intake's CPU (the same in fire_transition).
    return JSONResponse(out, status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@router.get("", response_model=None)
def list_tickets(
    actor: CurrentActor,
    runtime: RuntimeDep,
    state: Annotated[str | None, Query(description="one state, or several separated by commas")] = None,
    department: Annotated[str | None, Query(max_length=32)] = None,
    overdue: bool | None = None,
    level: Annotated[Literal["green", "yellow", "red"] | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    category: Annotated[str | None, Query(max_length=32, description="a category code, with its subtree")] = None,
    created_from: Annotated[Day | None, Query(description="logged on or after this day")] = None,
    created_to: Annotated[Day | None, Query(description="logged on or before this day")] = None,
    page: PageQuery = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Tickets the caller may see, newest first; `q` finds a number, a caller's phone (in full
    or its last digits) or name, or words of the title, content or address."""
    states = [s.strip() for s in state.split(",") if s.strip()] if state else None
    if states:
        known = {s for wf in runtime.workflows.workflows.values() for s in wf.states}
        for s in states:
            if s not in known:
                raise Invalid(f"unknown state {s!r} (known: {', '.join(sorted(known))})", field="state")
    with runtime.db.read_session() as session:
        items, total = search(
            session,
            actor,
            states=states,
            department=department,
            overdue=overdue,
            level=level,
            q=q,
            now=runtime.now(),
            page=page,
            page_size=page_size,
            category=category,
            **day_bounds(created_from, created_to),
        )
        lookups = Lookups(session)
        shown, exact = capped(total)
        return {
            "items": [ticket_out(t, actor, runtime, lookups) for t in items],
            "total": shown,
            "total_exact": exact,
            "page": page,
            "page_size": page_size,
        }


@router.get("/{ticket_id}", response_model=None)
def get_ticket(ticket_id: IdPath, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.db.read_session() as session:
        ticket = get_visible(session, actor, ticket_id)
        out = ticket_out(ticket, actor, runtime, Lookups(session), assignments_of(session, ticket_id))
        if visible_clause(actor) is None:
            # Repeated requests (重复诉求): the same caller or address about the same category,
            # for those who see every ticket.
            out["repeats"] = [{"id": i, "number": n} for i, n in repeats_of(session, runtime, ticket)]
        return out


@router.get("/{ticket_id}/transitions")
def list_transitions(ticket_id: IdPath, actor: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """The events the caller may fire now, with the fields each takes."""
    with runtime.db.read_session() as session:
        ticket = get_visible(session, actor, ticket_id)
        events = available_events(session, runtime, ticket, actor, now=runtime.now())
        return {"ticket": ticket.id, "state": ticket.state, "version": ticket.version, "events": events}


@router.post("/{ticket_id}/transitions", response_model=None)
def fire_transition(ticket_id: IdPath, body: TransitionIn, actor: CurrentActor, request: Request) -> JSONResponse:
    """Fire one event of the ticket's workflow; 409 says why when it is not allowed."""
    runtime: Runtime = request.app.state.runtime
    payload = dict(body.model_extra or {})
    with runtime.db.session() as session:
        get_visible(session, actor, ticket_id)
        ticket = fire(
            session, runtime, ticket_id, body.event, actor, payload, now=runtime.now(), version=body.version
        ).ticket
        out = ticket_out(ticket, actor, runtime, Lookups(session), assignments_of(session, ticket_id))
    return JSONResponse(out)


@router.get("/{ticket_id}/history")
def history(ticket_id: IdPath, actor: CurrentActor, runtime: RuntimeDep) -> list[dict[str, Any]]:
    with runtime.db.read_session() as session:
        get_visible(session, actor, ticket_id)
        return history_out(session, ticket_id, actor)
