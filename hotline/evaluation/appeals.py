"""Appeals (申诉复核): a department contests a rating or asks for a ticket to be marked an
unreasonable request (不合理诉求); the centre decides, and a granted appeal leaves the statistics."""

from datetime import datetime

from sqlmodel import Session, select

from hotline import notices
from hotline.deadlines.calendar import local_iso
from hotline.errors import Conflict, NotFound, NotPermitted
from hotline.integration import events
from hotline.models import DEPARTMENT_ROLES, Appeal, Callback, Rectification, Ticket
from hotline.workflow.engine import Actor, changing


def open_appeal(
    session: Session, runtime, ticket_id: int, actor: Actor, *, kind: str, grounds: str, now: datetime
) -> Appeal:
    """A department contests the ticket's last rating, or asks for it to be marked unreasonable."""
    if actor.role not in DEPARTMENT_ROLES:
        raise NotPermitted("only the handling department appeals", zh="只有承办单位可以申诉")
    ticket = session.exec(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).first()
    if ticket is None or ticket.main_department_id != actor.department_id:
        raise NotFound(f"ticket {ticket_id} not found, or not visible to you", zh="工单不存在，或您无权查看")
    callback_id = None
    if kind == "rating":
        callback = session.exec(
            select(Callback)
            .where(Callback.ticket_id == ticket.id, Callback.rating.is_not(None), ~Callback.overturned)
            .order_by(Callback.id.desc())
        ).first()
        if callback is None:
            raise Conflict("the ticket has no rating to appeal", zh="该工单没有可申诉的评价")
        callback_id = callback.id
    elif ticket.unreasonable:
        raise Conflict("the ticket is marked unreasonable already", zh="该工单已认定为不合理诉求")
    pending = session.exec(
        select(Appeal).where(Appeal.ticket_id == ticket.id, Appeal.kind == kind, Appeal.status == "pending")
    ).first()
    if pending is not None:
        raise Conflict("an appeal of this kind is already pending", zh="已有待审核的同类申诉")
    with changing(session, runtime, ticket, f"appeal_{kind}", actor, now=now, details={"grounds": grounds}) as change:
        appeal = Appeal(
            ticket_id=ticket.id,
            kind=kind,
            callback_id=callback_id,
            department_id=actor.department_id,
            grounds=grounds,
            requested_by_id=actor.id,
            requested_at=now,
        )
        session.add(appeal)
        session.flush()
        change.details["appeal"] = appeal.id
    notices.send(
        session,
        kind="appeal",
        title=f"{'评价申诉' if kind == 'rating' else '不合理诉求认定申请'}：工单 {ticket.number}",
        body=grounds,
        at=now,
        ticket=ticket,
        role="supervisor",
    )
    return appeal


def decide_appeal(
    session: Session, runtime, appeal_id: int, actor: Actor, *, grant: bool, reason: str, now: datetime
) -> Appeal:
    """The centre decides: a granted rating appeal overturns the rating; a granted
    unreasonable-request appeal marks the ticket. Either way it leaves the statistics."""
    if actor.role != "supervisor":
        raise NotPermitted("only a supervisor decides appeals", zh="只有督办员可以审核申诉")
    appeal = session.exec(select(Appeal).where(Appeal.id == appeal_id).with_for_update()).first()
    if appeal is None:
        raise NotFound(f"appeal {appeal_id} not found", zh="申诉不存在")
    if appeal.status != "pending":
        raise Conflict(f"the appeal was decided already ({appeal.status})", zh="该申诉已审核")
    status = "granted" if grant else "refused"
    event, details = f"appeal_{appeal.kind}_{status}", {"appeal": appeal.id, "reason": reason}
    with changing(session, runtime, appeal.ticket_id, event, actor, now=now, details=details) as change:
        ticket = change.ticket
        appeal.status = status
        appeal.decided_by_id, appeal.decided_at, appeal.decision_reason = actor.id, now, reason
        if grant and appeal.kind == "rating":
            callback = session.get(Callback, appeal.callback_id)
            callback.overturned = True
            for rect in session.exec(
                select(Rectification).where(
                    Rectification.callback_id == callback.id, Rectification.status != "accepted"
                )
            ).all():
                rect.status, rect.next_due_at, rect.decision_reason = "withdrawn", None, reason
            overturned = {"case_number": ticket.number, "rated_at": local_iso(callback.at), "reason": reason}
            events.publish(session, topic="rating.overturned", data=overturned, at=now, ticket=ticket)
        if grant and appeal.kind == "unreasonable":
            ticket.unreasonable = True
    return appeal
