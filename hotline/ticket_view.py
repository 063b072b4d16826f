"""A ticket as someone may read it: the caller masked by role, names for codes, the
colour of its running deadline. The API, the pages and the events for other systems
(hotline.integration) all show a ticket this way."""

import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Protocol

from sqlalchemy import select as sa_select
from sqlmodel import Session

from hotline.deadlines.calendar import local_iso
from hotline.deadlines.sla import level
from hotline.models import DEPARTMENT_ROLES, Assignment, Category, Department, Ticket


class Reader(Protocol):
    """Whoever reads the ticket: what their role lets them see."""

    role: str


# Roles that see a caller's phone number in full (the handler calls the citizen back;
# leaders and administrators have no need of it).
FULL_PHONE_ROLES = frozenset({"agent", "handler", "supervisor"})


def mask_phone(phone: str | None) -> str | None:
    """A phone number for those who may not read it: the last four digits, and the first
    three of a mobile number (11 digits or more), the rest starred; four or fewer, all starred."""
    if not phone:
        return phone
    if len(phone) <= 4:
        return "*" * len(phone)
    keep = 3 if len(phone) >= 11 else 0
    return phone[:keep] + "*" * (len(phone) - keep - 4) + phone[-4:]


def caller_view(ticket: Any, actor: Reader) -> dict[str, Any]:
    """The caller's name and phone as the actor may see them."""
    department = actor.role in DEPARTMENT_ROLES
    if department and (ticket.confidential or ticket.anonymous):
        return {"caller_name": None, "caller_phone": None, "caller_hidden": True}
    phone = ticket.caller_phone if actor.role in FULL_PHONE_ROLES else mask_phone(ticket.caller_phone)
    name = None if ticket.anonymous and actor.role not in ("agent", "supervisor") else ticket.caller_name
    return {"caller_name": name, "caller_phone": phone, "caller_hidden": False}


class _Table(dict):
    """A name table that reloads itself when asked for a row it does not have yet."""

    def __init__(self, rows: dict, reload: Callable[[], dict]) -> None:
        super().__init__(rows)
        self._reload = reload

    def __missing__(self, key):
        self.update(self._reload())
        if key in self:
            return dict.__getitem__(self, key)
        raise KeyError(key)

    def get(self, key, default=None):
        if key is None:
            return default
        try:
            return self[key]
        except KeyError:
            return default


class Lookups:
    """Departments and categories by id. They are few and change rarely: a process keeps
    them for a few seconds and reloads at once when asked for one it has not seen."""

    TTL = 10.0
    _cache: dict[str, tuple[float, dict, dict]] = {}

    def __init__(self, session: Session) -> None:
        key = str(session.get_bind().url)
        entry = self._cache.get(key)
        if entry is None or time.monotonic() - entry[0] > self.TTL:
            entry = self._load(session, key)

        def reload_departments() -> dict:
            return self._load(session, key)[1]

        def reload_categories() -> dict:
            return self._load(session, key)[2]

        self.departments = _Table(entry[1], reload_departments)
        self.categories = _Table(entry[2], reload_categories)

    def category_by_code(self, code: str) -> Category | None:
        """The category with that code (reloading once when it is not known yet)."""
        for _ in range(2):
            for category in self.categories.values():
                if category.code == code:
                    return category
            self.categories.update(self.categories._reload())
        return None

    @classmethod
    def _load(cls, session: Session, key: str) -> tuple[float, dict, dict]:
        # Plain snapshots, not ORM rows: the cache outlives the session it was read in,
        # and must not be expired by that session's rollback.
        entry = (
            time.monotonic(),
            {r["id"]: SimpleNamespace(**r) for r in session.execute(sa_select(Department.__table__)).mappings()},
            {r["id"]: SimpleNamespace(**r) for r in session.execute(sa_select(Category.__table__)).mappings()},
        )
        cls._cache[key] = entry
        return entry


def ticket_out(
    ticket: Ticket, actor: Reader, runtime, lookups: "Lookups", assignments: list[Assignment] | None = None
) -> dict[str, Any]:
    """The ticket as the actor may read it, with the colour of its running deadline."""
    wf = runtime.workflows.get(ticket.workflow)
    current = level(ticket, runtime.now())
    category = lookups.categories.get(ticket.category_id)
    department = lookups.departments.get(ticket.main_department_id)
    out: dict[str, Any] = {
        "id": ticket.id,
        "number": ticket.number,
        "source": ticket.source,
        "external_id": ticket.external_id,
        "source_details": ticket.source_details,
        "workflow": ticket.workflow,
        "line": ticket.line,
        "type": ticket.type,
        "category": category.code if category else None,
        "category_name": category.name if category else None,
        "urgency": ticket.urgency,
        "channel": ticket.channel,
        **caller_view(ticket, actor),
        "confidential": ticket.confidential,
        "anonymous": ticket.anonymous,
        "reply_wanted": ticket.reply_wanted,
        "title": ticket.title,
        "content": ticket.content,
        "street": ticket.street,
        "community": ticket.community,
        "address": ticket.address,
        "lat": ticket.lat,
        "lng": ticket.lng,
        "state": ticket.state,
        "state_label": wf.state_label(ticket.state),
        "version": ticket.version,
        "department": department.code if department else None,
        "department_name": department.name if department else None,
        "dispatch_count": ticket.dispatch_count,
        "designated": ticket.designated,
        "master": ticket.master_id,
        "rehandle_count": ticket.rehandle_count,
        "answer": ticket.answer,
        "article_id": ticket.article_id,
        "result": ticket.result,
        "close_reason": ticket.close_reason,
        "created_at": local_iso(ticket.created_at),
        "updated_at": local_iso(ticket.updated_at),
        "dispatched_at": local_iso(ticket.dispatched_at),
        "signed_at": local_iso(ticket.signed_at),
        "replied_at": local_iso(ticket.replied_at),
        "closed_at": local_iso(ticket.closed_at),
        "deadlines": {
            "sign_by": local_iso(ticket.sign_by),
            "handle_by": local_iso(ticket.handle_by),
            "callback_by": local_iso(ticket.callback_by),
            "provisional": ticket.deadlines_provisional,
            "running": ticket.due_kind,
            "due_at": local_iso(ticket.due_at),
            "warn_at": local_iso(ticket.warn_at),
        },
        "level": current.name if current else None,
        "level_label": current.label if current else None,
        "suspended_at": local_iso(ticket.suspended_at),
        "extension_days": ticket.extension_days,
    }
    if assignments is not None:
        out["assignments"] = [
            {
                "department": lookups.departments[a.department_id].code,
                "department_name": lookups.departments[a.department_id].name,
                "role": a.role,
                "status": a.status,
                "dispatched_at": local_iso(a.dispatched_at),
                "signed_at": local_iso(a.signed_at),
                "replied_at": local_iso(a.replied_at),
                "result": a.result,
                # The assignment's own clocks (a community's, 二级派单, end within the street's).
                "sign_by": local_iso(a.sign_by),
                "handle_by": local_iso(a.handle_by),
            }
            for a in assignments
        ]
        # The community its street office passed the ticket to (二级派单), while it has a part.
        out["community_department"] = next(
            (
                lookups.departments[a.department_id].code
                for a in assignments
                if a.role == "sub" and a.status != "withdrawn"
            ),
            None,
        )
        out["co_departments"] = [
            lookups.departments[a.department_id].code for a in assignments if a.role == "co" and a.status != "withdrawn"
        ]
    return out
