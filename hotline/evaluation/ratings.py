"""Evaluation (评价反馈, 好差评): rating links, ratings to the rating system, rectification
of bad ratings (差评整改) and appeals (申诉复核)."""

import base64
import hmac
import secrets
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from hotline import notices
from hotline.deadlines import sla
from hotline.deadlines.calendar import local_iso
from hotline.errors import HotlineError
from hotline.evaluation.messaging import queue, signature
from hotline.integration import events
from hotline.models import (
    AppSecret,
    Callback,
    Department,
    RatingInvitation,
    Rectification,
    Ticket,
)
from hotline.security import token_digest
from hotline.workflow import texts
from hotline.workflow.engine import Actor, fire

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
    mac = hmac.digest(key, nonce.encode(), "sha256")[:12]  # one call (the demo loader signs many)
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
    body = texts.rating_sms(signature(session, runtime), ticket.number, url, expires)
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
    ticket = fire(session, runtime, invitation.ticket_id, "callback", CITIZEN, payload, now=now).ticket
    invitation.used_at = now
    session.add(invitation)
    return ticket


# How a rating was given (评价渠道), by the callback's source; the rating system's own
# ratings carry the channel it named.
RATING_CHANNELS = {"agent": "phone_callback", "link": "sms_link"}


def rating_message(
    ticket: Ticket, callback: Callback, department: Department | None, region_code: str | None
) -> dict[str, Any]:
    """The message for the government-service rating system (好差评), keyed by 办件编号, with
    the national fields: level 1–5, channel, time, the department and its organisation code,
    the district's region code (行政区划代码), the comment. `origin` says where the rating was
    given, so that the rating system can leave out the ratings it sent itself."""
    return {
        "case_number": ticket.number,
        "level": callback.rating,
        "level_label": RATING_LABELS.get(callback.rating, ""),
        "solved": callback.solved,
        "rated_at": local_iso(callback.at),
        "channel": callback.channel or RATING_CHANNELS.get(callback.source, callback.source),
        "origin": callback.source,
        "intake_channel": ticket.channel,
        "department_code": department.code if department else None,
        "department_name": department.name if department else None,
        "department_org_code": department.org_code if department else None,
        "region_code": region_code or None,
        "comment": callback.comment,
    }


def record_rating(session: Session, runtime, ticket: Ticket, callback: Callback, now: datetime) -> None:
    """After a rating: the outbox message, and a rectification when the rating is bad."""
    department = session.get(Department, callback.department_id) if callback.department_id else None
    rated = rating_message(ticket, callback, department, runtime.district(session).region_code)
    events.publish(session, topic="ticket.rated", data=rated, at=now, ticket=ticket)
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
        title, body = texts.rectification_notice(ticket.number, RATING_LABELS[callback.rating], due.at)
        for role in ("handler", "leader"):
            notices.send(
                session,
                kind="rectification",
                title=title,
                body=body,
                at=now,
                ticket=ticket,
                department_id=department.id,
                role=role,
            )
    if callback.source == "link" and not is_satisfied(runtime, ticket, callback):
        title, body = texts.rating_review_notice(ticket.number)
        notices.send(session, kind="rating_review", title=title, body=body, at=now, ticket=ticket, role="supervisor")


def is_satisfied(runtime, ticket: Ticket, callback: Callback) -> bool:
    """Satisfied: a rating the workflow counts as satisfied, and the problem not unsolved."""
    return satisfied(runtime.workflows.get(ticket.workflow).limits, callback)


def satisfied(limits, callback: Any) -> bool:
    """Whether a callback counts as satisfied under the workflow's limits."""
    return callback.rating in limits.satisfied_ratings and callback.solved is not False
