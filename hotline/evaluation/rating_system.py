"""Ratings from the government-service rating system (好差评): a citizen's rating given there
for a ticket of the district, sent by the system's integration account and recorded as a
callback through the workflow gateway."""

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from hotline.deadlines.calendar import local_iso
from hotline.errors import Conflict, Invalid, NotFound
from hotline.evaluation.ratings import BAD_RATINGS
from hotline.models import Callback, Ticket, User
from hotline.workflow.engine import Actor, fire

# How far ahead of this server's clock a rating's time may be (the two clocks differ a little).
CLOCK_SKEW = timedelta(minutes=10)


def recorded(session: Session, actor: Actor, external_id: str) -> Callback | None:
    """The rating recorded before under this id, if any; 409 when another platform sent it."""
    row = session.exec(
        select(Callback, User.source).join(User, User.id == Callback.by_id).where(Callback.external_id == external_id)
    ).first()
    if row is None:
        return None
    callback, source = row
    if source != actor.source:
        raise Conflict(f"the rating id {external_id!r} was sent by another platform", field="external_id")
    return callback


def record(
    session: Session,
    runtime,
    actor: Actor,
    *,
    ticket_number: str,
    rating: int,
    channel: str,
    rated_at: datetime,
    external_id: str,
    comment: str | None = None,
    now: datetime,
) -> tuple[Callback, bool]:
    """Record a rating as the ticket's callback (reached; solved unless the rating is bad, 差评);
    return the callback and whether it is new. The same `external_id` again returns the first.

    Any ticket of the district may be rated by its number: the rating system rates every
    ticket, whichever platform it came from. 404 for an unknown number, 409 when the ticket
    takes no callback now (the workflow says why). A bad rating opens a rectification as any
    callback's does.
    """
    first = recorded(session, actor, external_id)
    if first is not None:
        return first, False
    if rated_at > now + CLOCK_SKEW:
        raise Invalid(f"rated_at {rated_at.isoformat()} is in the future", field="rated_at")
    ticket_id = session.exec(select(Ticket.id).where(Ticket.number == ticket_number)).first()
    if ticket_id is None:
        raise NotFound(f"no ticket numbered {ticket_number!r}", field="ticket_number")
    payload: dict[str, Any] = {"reached": True, "solved": rating not in BAD_RATINGS, "rating": rating}
    if comment:
        payload["comment"] = comment
    context = {"external_id": external_id, "channel": channel, "rated_at": rated_at.isoformat()}
    fire(session, runtime, ticket_id, "callback", actor, payload, now=now, context=context)
    session.flush()
    return session.exec(select(Callback).where(Callback.external_id == external_id)).one(), True


def rating_out(session: Session, callback: Callback) -> dict[str, Any]:
    """A recorded rating as the API answers it."""
    return {
        "id": callback.id,
        "ticket_number": session.get(Ticket, callback.ticket_id).number,
        "external_id": callback.external_id,
        "rating": callback.rating,
        "solved": callback.solved,
        "channel": callback.channel,
        "comment": callback.comment,
        "recorded_at": local_iso(callback.at),
    }
