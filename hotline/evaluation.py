"""Evaluation (评价反馈, 好差评): rating links, ratings to the rating system, rectification
of bad ratings (差评整改) and appeals (申诉复核)."""

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from hotline import sla, totals
from hotline.calendar import LOCAL_TZ
from hotline.errors import Conflict, HotlineError, Invalid, NotFound, NotPermitted
from hotline.messaging import queue
from hotline.models import (
    Appeal,
    AppSecret,
    Callback,
    Department,
    Notification,
    OutboxMessage,
    RatingInvitation,
    Rectification,
    Ticket,
)
from hotline.security import token_digest
from hotline.workflow.definition import DEPARTMENT_ROLES
from hotline.workflow.engine import Actor, fire, load_for_update, record

RATING_LABELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
BAD_RATINGS = (1, 2)
CITIZEN = Actor(None, "citizen", "citizen")


class LinkUnusable(HotlineError):
    """A rating link that is forged, used, revoked or expired; the page says which."""

    status_code = 410


def app_secret(session: Session, name: str, now: datetime) -> bytes:
    """A secret shared by the installation's processes, made on first use."""
    row = session.get(AppSecret, name)
    if row is None:
        row = AppSecret(name=name, value=secrets.token_hex(32), created_at=now)
        session.add(row)
        session.flush()
    return bytes.fromhex(row.value)


def _sign(key: bytes, nonce: str) -> str:
    mac = hmac.new(key, nonce.encode(), hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def new_link_token(key: bytes) -> str:
    """A link token: 192 random bits and their signature."""
    nonce = secrets.token_urlsafe(24)
    return f"{nonce}.{_sign(key, nonce)}"


def signature_ok(key: bytes, token: str) -> bool:
    nonce, _, sig = token.partition(".")
    return bool(nonce and sig) and hmac.compare_digest(_sign(key, nonce), sig)


def form_nonce(key: bytes, token: str) -> str:
    """The rating form's CSRF token: bound to the link, useless without it."""
    return _sign(key, "form:" + token)


def send_invitation(session: Session, runtime, ticket: Ticket, actor: Actor, now: datetime) -> dict[str, Any]:
    """A new rating link for the ticket, sent by text message; older unused links stop working."""
    for old in session.exec(
        select(RatingInvitation).where(
            RatingInvitation.ticket_id == ticket.id,
            RatingInvitation.used_at.is_(None),
            RatingInvitation.revoked_at.is_(None),
        )
    ).all():
        old.revoked_at = now
        session.add(old)
    wf = runtime.workflows.get(ticket.workflow)
    cal = runtime.calendar(session)
    expires = sla.due(cal, now, wf.limits.rating_link).at
    token = new_link_token(app_secret(session, "rating_link", now))
    url = f"{runtime.settings.public_url.rstrip('/')}/rate/{token}"
    body = (
        f"【{runtime.settings.district_name}12345】您反映的问题（工单号{ticket.number}）已办理完毕，"
        f"请点击链接对办理情况进行评价：{url} （{expires.astimezone(LOCAL_TZ):%m月%d日}前有效）"
    )
    message = queue(session, runtime.channel, to=ticket.caller_phone, body=body, ticket_id=ticket.id, now=now)
    invitation = RatingInvitation(
        ticket_id=ticket.id,
        token_hash=token_digest(token),
        created_at=now,
        expires_at=expires,
        sent_by_id=actor.id,
        message_id=message.id,
    )
    session.add(invitation)
    ticket.invitation_sent_at = now
    session.flush()
    return {"url": url, "expires_at": expires, "invitation": invitation.id, "message": message.id}


def invitation_for(session: Session, token: str, now: datetime) -> RatingInvitation:
    """The invitation behind a link, or LinkUnusable saying plainly why not."""
    key = app_secret(session, "rating_link", now)
    if not signature_ok(key, token):
        raise LinkUnusable("this rating link is not valid", zh="评价链接无效，请核对短信中的链接。")
    invitation = session.exec(
        select(RatingInvitation).where(RatingInvitation.token_hash == token_digest(token))
    ).first()
    if invitation is None:
        raise LinkUnusable("this rating link is not valid", zh="评价链接无效，请核对短信中的链接。")
    if invitation.used_at is not None:
        raise LinkUnusable(
            "this rating link has been used", zh="该评价链接已使用，每条链接只能评价一次。感谢您的参与！"
        )
    if invitation.revoked_at is not None:
        raise LinkUnusable(
            "this rating link was replaced by a newer one", zh="该评价链接已失效，请使用最新收到的评价短信中的链接。"
        )
    if now > invitation.expires_at:
        raise LinkUnusable("this rating link has expired", zh="该评价链接已过期，感谢您的关注。如有问题请拨打12345。")
    return invitation


def rate_by_link(
    session: Session, runtime, token: str, *, rating: int, solved: bool, comment: str | None, now: datetime
) -> Ticket:
    """The citizen's rating through the link: a callback like an agent's, through the gateway."""
    invitation = invitation_for(session, token, now)
    payload: dict[str, Any] = {"reached": True, "solved": solved, "rating": rating}
    if comment:
        payload["comment"] = comment
    ticket = fire(session, runtime, invitation.ticket_id, "callback", CITIZEN, payload, now=now)
    invitation.used_at = now
    session.add(invitation)
    return ticket


def rating_message(ticket: Ticket, callback: Callback, department: Department | None) -> dict[str, Any]:
    """The message for the government-service rating system (好差评), keyed by 办件编号."""
    return {
        "case_number": ticket.number,
        "level": callback.rating,
        "level_label": RATING_LABELS.get(callback.rating, ""),
        "solved": callback.solved,
        "rated_at": callback.at.isoformat(),
        "channel": "sms_link" if callback.source == "link" else "phone_callback",
        "intake_channel": ticket.channel,
        "department_code": department.code if department else None,
        "department_name": department.name if department else None,
        "comment": callback.comment,
    }


def record_rating(session: Session, runtime, ticket: Ticket, callback: Callback, now: datetime) -> None:
    """After a rating: the outbox message, and a rectification when the rating is bad."""
    department = session.get(Department, callback.department_id) if callback.department_id else None
    session.add(
        OutboxMessage(
            topic="rating", key=ticket.number, created_at=now, payload=rating_message(ticket, callback, department)
        )
    )
    if callback.rating in BAD_RATINGS and department is not None:
        wf = runtime.workflows.get(ticket.workflow)
        due = sla.due(runtime.calendar(session), now, wf.limits.rectification)
        rect = Rectification(
            ticket_id=ticket.id,
            callback_id=callback.id,
            department_id=department.id,
            opened_at=now,
            due_at=due.at,
            provisional=due.provisional,
            next_due_at=due.at,
        )
        session.add(rect)
        session.flush()
        for role in ("handler", "leader"):
            session.add(
                Notification(
                    department_id=department.id,
                    role=role,
                    kind="rectification",
                    ticket_id=ticket.id,
                    title=f"差评整改：工单 {ticket.number}",
                    body=f"市民评价为“{RATING_LABELS[callback.rating]}”，请于 "
                    f"{due.at.astimezone(LOCAL_TZ):%Y-%m-%d} 前完成核实、整改并反馈。",
                    created_at=now,
                )
            )
    if callback.source == "link" and not is_satisfied(runtime, ticket, callback):
        session.add(
            Notification(
                role="supervisor",
                kind="rating_review",
                ticket_id=ticket.id,
                title=f"市民不满意评价待审核：工单 {ticket.number}",
                body="市民通过评价短信给出不满意评价，请决定重办或说明后归档。",
                created_at=now,
            )
        )


def is_satisfied(runtime, ticket: Ticket, callback: Callback) -> bool:
    """Satisfied: a rating the workflow counts as satisfied, and the problem not unsolved."""
    ratings = runtime.workflows.get(ticket.workflow).limits.satisfied_ratings
    return callback.rating in ratings and callback.solved is not False


def _history(session: Session, ticket: Ticket, event: str, actor: Actor, now: datetime, **details: Any) -> None:
    """An action on the ticket that does not move its state (rectification, appeal)."""
    record(session, ticket, event, actor, now, details)


# --- rectification (差评整改) -----------------------------------------------------------


def _rectification(session: Session, rect_id: int, actor: Actor) -> tuple[Rectification, Ticket]:
    rect = session.exec(select(Rectification).where(Rectification.id == rect_id).with_for_update()).first()
    if rect is None or (actor.role in DEPARTMENT_ROLES and rect.department_id != actor.department_id):
        raise NotFound(f"rectification {rect_id} not found, or not visible to you")
    return rect, session.get(Ticket, rect.ticket_id)


def report_rectification(
    session: Session, rect_id: int, actor: Actor, *, verification: str, measures: str, now: datetime
) -> Rectification:
    """The department's report: what it verified, what it did or why nothing can be done."""
    if actor.role not in DEPARTMENT_ROLES:
        raise NotPermitted("only the department reports on its rectification", zh="只有承办单位可以反馈整改情况")
    rect, ticket = _rectification(session, rect_id, actor)
    if rect.status != "open":
        raise Conflict(f"the rectification is {rect.status}, not open", zh="该整改不在待整改状态")
    rect.verification, rect.measures = verification, measures
    rect.status, rect.reported_at, rect.reported_by_id = "reported", now, actor.id
    rect.next_due_at = None
    _history(session, ticket, "rectification_report", actor, now, rectification=rect.id, measures=measures)
    return rect


def decide_rectification(
    session: Session, runtime, rect_id: int, actor: Actor, *, accept: bool, reason: str | None, now: datetime
) -> Rectification:
    """The supervisor accepts the report, or sends it back (the clock keeps running)."""
    if actor.role != "supervisor":
        raise NotPermitted("only a supervisor decides on a rectification", zh="只有督办员可以审核整改")
    rect, ticket = _rectification(session, rect_id, actor)
    if rect.status != "reported":
        raise Conflict(f"the rectification is {rect.status}, not reported", zh="该整改尚未反馈，不能审核")
    if not accept and not reason:
        raise Invalid("sending a report back needs a reason", field="reason", zh="退回整改请填写理由")
    rect.decided_at, rect.decided_by_id, rect.decision_reason = now, actor.id, reason
    if accept:
        rect.status = "accepted"
    else:
        rect.status = "open"
        rect.next_due_at = rect_next_step(runtime.calendar(session), runtime.workflows.get(ticket.workflow), rect)
        session.add(
            Notification(
                department_id=rect.department_id,
                role="handler",
                kind="rectification",
                ticket_id=ticket.id,
                title=f"整改退回：工单 {ticket.number}",
                body=reason or "",
                created_at=now,
            )
        )
    _history(
        session,
        ticket,
        "rectification_accept" if accept else "rectification_return",
        actor,
        now,
        rectification=rect.id,
        reason=reason,
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


# --- appeals (申诉复核) and unreasonable requests (不合理诉求) ------------------------------


def open_appeal(session: Session, ticket_id: int, actor: Actor, *, kind: str, grounds: str, now: datetime) -> Appeal:
    """A department contests the ticket's last rating, or asks for it to be marked unreasonable."""
    if actor.role not in DEPARTMENT_ROLES:
        raise NotPermitted("only the handling department appeals", zh="只有承办单位可以申诉")
    ticket = session.exec(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).first()
    if ticket is None or ticket.main_department_id != actor.department_id:
        raise NotFound(f"ticket {ticket_id} not found, or not visible to you")
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
    _history(session, ticket, f"appeal_{kind}", actor, now, appeal=appeal.id, grounds=grounds)
    session.add(
        Notification(
            role="supervisor",
            kind="appeal",
            ticket_id=ticket.id,
            title=f"{'评价申诉' if kind == 'rating' else '不合理诉求认定申请'}：工单 {ticket.number}",
            body=grounds,
            created_at=now,
        )
    )
    return appeal


def decide_appeal(session: Session, appeal_id: int, actor: Actor, *, grant: bool, reason: str, now: datetime) -> Appeal:
    """The centre decides: a granted rating appeal overturns the rating; a granted
    unreasonable-request appeal marks the ticket. Either way it leaves the statistics."""
    if actor.role != "supervisor":
        raise NotPermitted("only a supervisor decides appeals", zh="只有督办员可以审核申诉")
    appeal = session.exec(select(Appeal).where(Appeal.id == appeal_id).with_for_update()).first()
    if appeal is None:
        raise NotFound(f"appeal {appeal_id} not found")
    if appeal.status != "pending":
        raise Conflict(f"the appeal was decided already ({appeal.status})", zh="该申诉已审核")
    ticket = load_for_update(session, appeal.ticket_id)
    tracker = totals.Tracker(session, ticket)
    appeal.status = "granted" if grant else "refused"
    appeal.decided_by_id, appeal.decided_at, appeal.decision_reason = actor.id, now, reason
    if grant and appeal.kind == "rating":
        callback = session.get(Callback, appeal.callback_id)
        callback.overturned = True
        for rect in session.exec(
            select(Rectification).where(Rectification.callback_id == callback.id, Rectification.status != "accepted")
        ).all():
            rect.status, rect.next_due_at, rect.decision_reason = "withdrawn", None, reason
        session.add(
            OutboxMessage(
                topic="rating.overturned",
                key=ticket.number,
                created_at=now,
                payload={"case_number": ticket.number, "rated_at": callback.at.isoformat(), "reason": reason},
            )
        )
    if grant and appeal.kind == "unreasonable":
        ticket.unreasonable = True
    tracker.done()
    _history(session, ticket, f"appeal_{appeal.kind}_{appeal.status}", actor, now, appeal=appeal.id, reason=reason)
    return appeal
