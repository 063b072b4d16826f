"""Rectification of bad ratings (差评整改): the department verifies, rectifies or explains,
and reports back; the centre accepts or sends it back; overdue ones climb a short ladder."""

from datetime import datetime

from sqlmodel import Session, select

from hotline import notices
from hotline.errors import Conflict, Invalid, NotFound, NotPermitted
from hotline.models import DEPARTMENT_ROLES, Rectification
from hotline.workflow import texts
from hotline.workflow.engine import Actor, changing


def _rectification(session: Session, rect_id: int, actor: Actor) -> Rectification:
    rect = session.exec(select(Rectification).where(Rectification.id == rect_id).with_for_update()).first()
    if rect is None or (actor.role in DEPARTMENT_ROLES and rect.department_id != actor.department_id):
        raise NotFound(f"rectification {rect_id} not found, or not visible to you", zh="整改单不存在，或您无权查看")
    return rect


def report_rectification(
    session: Session, runtime, rect_id: int, actor: Actor, *, verification: str, measures: str, now: datetime
) -> Rectification:
    """The department's report: what it verified, what it did or why nothing can be done."""
    if actor.role not in DEPARTMENT_ROLES:
        raise NotPermitted("only the department reports on its rectification", zh="只有承办单位可以反馈整改情况")
    rect = _rectification(session, rect_id, actor)
    if rect.status != "open":
        raise Conflict(f"the rectification is {rect.status}, not open", zh="该整改不在待整改状态")
    details = {"rectification": rect.id, "measures": measures}
    with changing(session, runtime, rect.ticket_id, "rectification_report", actor, now=now, details=details):
        rect.verification, rect.measures = verification, measures
        rect.status, rect.reported_at, rect.reported_by_id = "reported", now, actor.id
        rect.next_due_at = None
    return rect


def decide_rectification(
    session: Session, runtime, rect_id: int, actor: Actor, *, accept: bool, reason: str | None, now: datetime
) -> Rectification:
    """The supervisor accepts the report, or sends it back (the clock keeps running)."""
    if actor.role != "supervisor":
        raise NotPermitted("only a supervisor decides on a rectification", zh="只有督办员可以审核整改")
    rect = _rectification(session, rect_id, actor)
    if rect.status != "reported":
        raise Conflict(f"the rectification is {rect.status}, not reported", zh="该整改尚未反馈，不能审核")
    if not accept and not reason:
        raise Invalid("sending a report back needs a reason", field="reason", zh="退回整改请填写理由")
    event = "rectification_accept" if accept else "rectification_return"
    details = {"rectification": rect.id, "reason": reason}
    with changing(session, runtime, rect.ticket_id, event, actor, now=now, details=details) as change:
        ticket = change.ticket
        rect.decided_at, rect.decided_by_id, rect.decision_reason = now, actor.id, reason
        if accept:
            rect.status = "accepted"
        else:
            rect.status = "open"
            rect.next_due_at = rect_next_step(runtime.calendar(session), runtime.workflows.get(ticket.workflow), rect)
            notices.send(
                session,
                kind="rectification",
                title=texts.rectification_returned_title(ticket.number),
                body=reason or "",
                at=now,
                ticket=ticket,
                department_id=rect.department_id,
                role="handler",
            )
    return rect


RECT_LADDER = ("urge", "supervise")


def rect_next_step(cal, wf, rect: Rectification) -> datetime | None:
    """When the next escalation of an open rectification falls due."""
    if rect.status != "open" or rect.escalation_step >= len(RECT_LADDER):
        return None
    if rect.escalation_step == 0:
        return rect.due_at
    days = wf.limits.escalation.supervise_after_working_days
    return cal.add_working_seconds(rect.due_at, days * 86400).at
