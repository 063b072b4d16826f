"""A ticket as someone may read it: the caller masked by role, names for codes, the
colour of its running deadline. The API, the pages and the events for other systems
(hotline.integration) all show a ticket this way."""

import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Protocol
from weakref import WeakKeyDictionary

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
    # Each engine's key, its URL as text: rendering a URL cost a third of a lookup's table,
    # and a change of a ticket builds several.
    _keys: "WeakKeyDictionary[Any, str]" = WeakKeyDictionary()

    def __init__(self, session: Session) -> None:
        bind = session.get_bind()
        key = self._keys.get(bind)
        if key is None:
            key = self._keys[bind] = str(bind.url)
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


_TICKET_COLUMNS = frozenset(Ticket.__table__.columns.keys())
_ASSIGNMENT_COLUMNS = frozenset(Assignment.__table__.columns.keys())


def _loaded(row: Any, names: frozenset[str]) -> dict[str, Any]:
    """The row's values of `names`, read from its dict: a loaded row keeps them there, and a
    ticket's view reads fifty of them (each read through the model is a call of the ORM's).
    What is not there (expired by a commit, never set on a new row) is read the usual way."""
    values = vars(row)
    missing = names - values.keys()
    if missing:
        return {**values, **{name: getattr(row, name) for name in missing}}
    return values


def ticket_out(
    ticket: Ticket, actor: Reader, runtime, lookups: "Lookups", assignments: list[Assignment] | None = None
) -> dict[str, Any]:
    """The ticket as the actor may read it, with the colour of its running deadline."""
    t = _loaded(ticket, _TICKET_COLUMNS)
    wf = runtime.workflows.get(t["workflow"])
    current = level(ticket, runtime.now())
    category = lookups.categories.get(t["category_id"])
    department = lookups.departments.get(t["main_department_id"])
    out: dict[str, Any] = {
        "id": t["id"],
        "number": t["number"],
        "source": t["source"],
        "external_id": t["external_id"],
        "source_details": t["source_details"],
        "workflow": t["workflow"],
        "line": t["line"],
        "type": t["type"],
        "category": category.code if category else None,
        "category_name": category.name if category else None,
        "urgency": t["urgency"],
        "channel": t["channel"],
        **caller_view(ticket, actor),
        "confidential": t["confidential"],
        "anonymous": t["anonymous"],
        "reply_wanted": t["reply_wanted"],
        "title": t["title"],
        "content": t["content"],
        "street": t["street"],
        "community": t["community"],
        "address": t["address"],
        "lat": t["lat"],
        "lng": t["lng"],
        "state": t["state"],
        "state_label": wf.state_label(t["state"]),
        "version": t["version"],
        "department": department.code if department else None,
        "department_name": department.name if department else None,
        "dispatch_count": t["dispatch_count"],
        "designated": t["designated"],
        "master": t["master_id"],
        "rehandle_count": t["rehandle_count"],
        "answer": t["answer"],
        "article_id": t["article_id"],
        "result": t["result"],
        "close_reason": t["close_reason"],
        "created_at": local_iso(t["created_at"]),
        "updated_at": local_iso(t["updated_at"]),
        "dispatched_at": local_iso(t["dispatched_at"]),
        "signed_at": local_iso(t["signed_at"]),
        "replied_at": local_iso(t["replied_at"]),
        "closed_at": local_iso(t["closed_at"]),
        "deadlines": {
            "sign_by": local_iso(t["sign_by"]),
            "handle_by": local_iso(t["handle_by"]),
            "callback_by": local_iso(t["callback_by"]),
            "provisional": t["deadlines_provisional"],
            "running": t["due_kind"],
            "due_at": local_iso(t["due_at"]),
            "warn_at": local_iso(t["warn_at"]),
        },
        "level": current.name if current else None,
        "level_label": current.label if current else None,
        "suspended_at": local_iso(t["suspended_at"]),
        "extension_days": t["extension_days"],
    }
    if assignments is not None:
        parts = [_loaded(a, _ASSIGNMENT_COLUMNS) for a in assignments]
        out["assignments"] = [
            {
                "department": lookups.departments[a["department_id"]].code,
                "department_name": lookups.departments[a["department_id"]].name,
                "role": a["role"],
                "status": a["status"],
                "dispatched_at": local_iso(a["dispatched_at"]),
                "signed_at": local_iso(a["signed_at"]),
                "replied_at": local_iso(a["replied_at"]),
                "result": a["result"],
                # The assignment's own clocks (a community's, 二级派单, end within the street's).
                "sign_by": local_iso(a["sign_by"]),
                "handle_by": local_iso(a["handle_by"]),
            }
            for a in parts
        ]
        # The community its street office passed the ticket to (二级派单), while it has a part.
        out["community_department"] = next(
            (
                lookups.departments[a["department_id"]].code
                for a in parts
                if a["role"] == "sub" and a["status"] != "withdrawn"
            ),
            None,
        )
        out["co_departments"] = [
            lookups.departments[a["department_id"]].code
            for a in parts
            if a["role"] == "co" and a["status"] != "withdrawn"
        ]
    return out
