"""In-app notices (通知): who a notice is for, and which of them each person has read.

A notice goes to one user, to a role of a department (its handlers, its leader), or to a
role of the centre. Each person reads for themselves: a read mark per user and notice,
and a per-user watermark (`users.notices_read_before`) that "mark all as read" moves.
"""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from hotline import appends
from hotline.db import dialect_insert
from hotline.deadlines.calendar import local_iso
from hotline.errors import NotFound
from hotline.integration import events
from hotline.models import Notification, NotificationRead, Ticket, User
from hotline.ticket_view import Lookups
from hotline.workflow.engine import Actor

# The unread count on every page looks this far back (the list shows older ones as unread too).
UNREAD_WINDOW = timedelta(days=30)
# Beyond this many the count reads "99+".
UNREAD_CAP = 99
_NOTICE_INSERT = Notification.__table__.insert()


def send(
    session: Session,
    *,
    kind: str,
    title: str,
    at: datetime,
    body: str = "",
    ticket: Ticket | None = None,
    department_id: int | None = None,
    role: str | None = None,
    user_id: int | None = None,
) -> None:
    """A notice, to a user, to a role of a department or to a role of the centre; and its
    event for other systems (topic `notice`), in the same transaction."""
    appends.add(
        session,
        _NOTICE_INSERT,
        {
            "user_id": user_id,
            "department_id": department_id,
            "role": role,
            "kind": kind,
            "ticket_id": ticket.id if ticket else None,
            "title": title,
            "body": body,
            "created_at": at,
        },
    )
    department = Lookups(session).departments[department_id].code if department_id else None
    data = {"kind": kind, "title": title, "body": body, "department": department, "role": role, "at": local_iso(at)}
    events.publish(
        session, topic="notice", data=data, at=at, ticket=ticket, departments=[department_id] if department_id else ()
    )


def addressees(actor: Actor) -> list[Any]:
    """Each way a notice can be addressed to the actor, as a condition without OR: an
    equality on one of the notices' (user, created) and (department, role, created) indexes."""
    branches = [
        Notification.user_id == actor.id,
        and_(Notification.department_id.is_(None), Notification.role == actor.role),
    ]
    if actor.department_id is not None:
        branches += [
            and_(Notification.department_id == actor.department_id, Notification.role.is_(None)),
            and_(Notification.department_id == actor.department_id, Notification.role == actor.role),
        ]
    return branches


def role_ways(actor: Actor) -> list[Any]:
    """The ways a notice addressed to a role reaches the actor: to its role in its department,
    or to its role everywhere. The escalation ladder's notices go only these ways
    (`texts.ladder_notices`): asking for them the other ways too reads, for nothing, a week of
    the notices addressed to a whole department (PostgreSQL, misled by how common the ladder's
    kinds are, walks every notice of the week to find none)."""
    branches = [and_(Notification.department_id.is_(None), Notification.role == actor.role)]
    if actor.department_id is not None:
        branches.append(and_(Notification.department_id == actor.department_id, Notification.role == actor.role))
    return branches


def addressed_to(actor: Actor):
    """Notices meant for the actor: to them, to their role in their department, or to their role."""
    return or_(*addressees(actor))


def newest(
    session: Session, actor: Actor, limit: int, *conditions: Any, ways: list[Any] | None = None
) -> list[tuple[Notification, str | None]]:
    """The actor's newest notices that meet the conditions, with their tickets' numbers.

    Asked way by way (`ways`, all of `addressees` unless given): each way is an index range
    kept in created_at order, so each reads only its newest rows. A plain OR of the ways makes
    SQLite read and sort every notice of the department (70 ms for a busy one at a million
    tickets).
    """
    base = select(Notification, Ticket.number).join(Ticket, Ticket.id == Notification.ticket_id, isouter=True)
    order = (Notification.created_at.desc(), Notification.id.desc())
    found: dict[int, tuple[Notification, str | None]] = {}
    for branch in addressees(actor) if ways is None else ways:
        for notice, number in session.exec(base.where(branch, *conditions).order_by(*order).limit(limit)).all():
            found[notice.id] = (notice, number)
    return sorted(found.values(), key=lambda row: (row[0].created_at, row[0].id), reverse=True)[:limit]


def _not_read(actor: Actor):
    return ~exists().where(NotificationRead.user_id == actor.id, NotificationRead.notification_id == Notification.id)


def _read_before(session: Session, actor: Actor) -> datetime | None:
    """The actor's watermark: notices made before it count as read."""
    return session.exec(select(User.notices_read_before).where(User.id == actor.id)).first()


def listing(
    session: Session, actor: Actor, limit: int, *, unread_only: bool = False
) -> list[tuple[Notification, str | None, datetime | None]]:
    """The actor's newest notices, each with its ticket's number and when the actor read it
    (None: not yet)."""
    watermark = _read_before(session, actor)
    conditions = []
    if unread_only:
        conditions.append(_not_read(actor))
        if watermark is not None:
            conditions.append(Notification.created_at >= watermark)
    rows = newest(session, actor, limit, *conditions)
    read = _read_times(session, actor, [n for n, _ in rows], watermark)
    return [(n, number, read[n.id]) for n, number in rows]


def _read_times(session: Session, actor: Actor, notices: list[Notification], watermark: datetime | None) -> dict:
    """When the actor read each of these notices (None: not yet), by notice id."""
    marks = dict(
        session.execute(
            sa_select(NotificationRead.notification_id, NotificationRead.read_at).where(
                NotificationRead.user_id == actor.id,
                NotificationRead.notification_id.in_([n.id for n in notices]),
            )
        ).all()
    )
    return {
        n.id: marks.get(n.id) or (watermark if watermark is not None and n.created_at < watermark else None)
        for n in notices
    }


def unread_count(session: Session, actor: Actor, now: datetime) -> int:
    """How many notices of the last UNREAD_WINDOW the actor has not read, up to UNREAD_CAP + 1.

    Counted way by way (see `addressees`), each an index range from the later of the
    watermark and the window's start, so a page pays for the unread notices alone.
    """
    watermark = _read_before(session, actor)
    since = now - UNREAD_WINDOW if watermark is None else max(watermark, now - UNREAD_WINDOW)
    total = 0
    for i, branch in enumerate(addressees(actor)):
        conditions = [branch, Notification.created_at >= since, _not_read(actor)]
        if i:  # a notice to the actor by name and also to their role: counted once, by name
            conditions.append(Notification.user_id.is_distinct_from(actor.id))
        found = sa_select(Notification.id).where(*conditions).limit(UNREAD_CAP + 1).subquery()
        total += session.execute(sa_select(func.count()).select_from(found)).scalar_one()
    return min(total, UNREAD_CAP + 1)


def _insert_reads(session: Session, actor: Actor, ids: list[int], now: datetime) -> None:
    insert = dialect_insert(session.get_bind().dialect.name)
    session.execute(
        insert(NotificationRead).on_conflict_do_nothing(index_elements=["user_id", "notification_id"]),
        [{"user_id": actor.id, "notification_id": i, "read_at": now} for i in ids],
    )


def mark_read(session: Session, actor: Actor, notification_id: int, now: datetime) -> datetime:
    """The actor has read the notice (once: a second read keeps the first time); returns when.
    NotFound when there is no such notice addressed to the actor."""
    found = session.exec(select(Notification.id).where(Notification.id == notification_id, addressed_to(actor)))
    if found.first() is None:
        raise NotFound(f"notification {notification_id} not found, or not yours", zh="通知不存在，或不是发给您的")
    _insert_reads(session, actor, [notification_id], now)
    return session.exec(
        select(NotificationRead.read_at).where(
            NotificationRead.user_id == actor.id, NotificationRead.notification_id == notification_id
        )
    ).one()


def mark_all_read(
    session: Session,
    actor: Actor,
    now: datetime,
    *,
    shown: list[int] | None = None,
    oldest: tuple[datetime, int] | None = None,
) -> None:
    """Everything addressed to the actor so far counts as read. From a page, `shown` are the
    unread notices it showed and `oldest` the (time, id) of its last row: those notices, and
    all that come after the page in its order (newest first), count as read; one that came in
    after the page was drawn does not."""
    cutoff = now
    if shown is not None:
        ids = list(session.exec(select(Notification.id).where(Notification.id.in_(shown), addressed_to(actor))))
        cutoff = None
        if oldest is not None:
            at, last_id = oldest
            cutoff = min(at, now)
            # Notices made at the same instant as the last row but past the page's end (a
            # sweep stamps all its notices with one time): older in the page's order.
            ids += session.exec(
                select(Notification.id).where(
                    addressed_to(actor), Notification.created_at == at, Notification.id < last_id
                )
            ).all()
        if ids:
            _insert_reads(session, actor, sorted(set(ids)), now)
    if cutoff is not None:
        # The watermark only moves forward.
        session.execute(
            update(User)
            .where(User.id == actor.id, or_(User.notices_read_before.is_(None), User.notices_read_before < cutoff))
            .values(notices_read_before=cutoff)
        )
