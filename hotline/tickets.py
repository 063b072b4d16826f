"""Tickets: intake, numbering, who sees what, and how a ticket reads to each role."""

import re
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, text, union
from sqlalchemy import select as sa_select
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, select

from hotline import appends
from hotline.crypto import TAIL_DIGITS, keyring_of, normal_phone
from hotline.deadlines.calendar import LOCAL_TZ, local_iso
from hotline.directory import category_path, check_place, clean_place, places
from hotline.errors import Invalid, NotFound
from hotline.models import (
    DEPARTMENT_ROLES,
    INTEGRATION,
    OWN_SOURCE,
    Assignment,
    Call,
    Callback,
    Department,
    Ticket,
    TicketCounter,
    TicketEvent,
    hash_caller,
)
from hotline.ticket_view import Lookups
from hotline.workflow.engine import Actor, record
from hotline.workflow.lines import Line, Lines

# The repeat check (重复诉求): how far back, how many, and how many recent tickets a
# place lookup reads at most (street, community and address carry no index).
RECENT_DAYS = 90
RECENT_LIMIT = 10
PLACE_SCAN_ROWS = 20_000
MIN_PHONE_DIGITS = 7
MIN_ADDRESS_CHARS = 2
# Ticket search (工单查询): how many of the newest tickets an unanchored match reads at
# most, the fewest trailing digits taken as a phone's tail, and the roles that may find a
# ticket by its caller (a department only among its own tickets).
SEARCH_SCAN_ROWS = 50_000
MIN_TAIL_DIGITS = 4
# A search by more of a phone's last digits than the tail hash keeps opens at most this many
# of the tickets whose phones end in the same four.
TAIL_SCAN_ROWS = 5_000
CALLER_SEARCH_ROLES = frozenset({"agent", "supervisor", "handler", "leader"})
# The callback queue's views: every ticket waiting for a callback, past its deadline, near it.
CALLBACK_VIEWS = ("all", "overdue", "warning")

TICKET_FIELDS = (
    "type",
    "urgency",
    "channel",
    "caller_name",
    "caller_phone",
    "confidential",
    "anonymous",
    "reply_wanted",
    "title",
    "content",
    "street",
    "community",
    "address",
    "lat",
    "lng",
    "external_id",
)


# The day's next sequence, in one statement that SQLite and PostgreSQL both take (an upsert
# with RETURNING); written once, not built again by the dialect's insert() on every intake.
_NEXT_NUMBER = text(
    f"INSERT INTO {TicketCounter.__tablename__} (day, value) VALUES (:day, 1) "
    f"ON CONFLICT (day) DO UPDATE SET value = {TicketCounter.__tablename__}.value + 1 RETURNING value"
)
# A new ticket's INSERT: a Core statement, not the unit of work's flush of 63 columns.
_INSERT_TICKET = Ticket.__table__.insert().returning(Ticket.__table__.c.id)
_TICKET_COLUMNS = tuple(c.name for c in Ticket.__table__.c if c.name != "id")
# What `new_ticket` sets besides the values given: the model's defaults (its default factories
# called for each ticket, should it have any).
_TICKET_DEFAULTS = {
    name: field.default
    for name, field in Ticket.model_fields.items()
    if not field.is_required() and field.default_factory is None
}
_TICKET_FACTORIES = {
    name: field.default_factory for name, field in Ticket.model_fields.items() if field.default_factory is not None
}
_new_ticket_instance = Ticket.__mapper__.class_manager.new_instance


def new_ticket(**values: Any) -> Ticket:
    """A new (transient) Ticket with `values` and the model's defaults for the rest: what
    `Ticket(**values)` makes, built as the ORM builds a row it loads (SQLModel's constructor
    sets each of the 63 attributes through three layers of `__setattr__` and the attribute
    instrumentation's change tracking, a fifth of a millisecond that a row written at once
    by `insert_ticket`, which settles its state, does not need)."""
    unknown = values.keys() - Ticket.model_fields.keys()
    if unknown:
        raise TypeError(f"Ticket has no field {sorted(unknown)[0]!r}")
    ticket = _new_ticket_instance()
    attributes = ticket.__dict__
    attributes.update(_TICKET_DEFAULTS)
    for name, factory in _TICKET_FACTORIES.items():
        if name not in values:
            attributes[name] = factory()
    attributes.update(values)
    object.__setattr__(ticket, "__pydantic_fields_set__", set(values))
    return ticket


def next_number(session: Session, now: datetime) -> str:
    """A readable unique number: the intake day and its sequence, e.g. 20261128000042."""
    day = now.astimezone(LOCAL_TZ).strftime("%Y%m%d")
    # On the session's connection, as the appends are written: a Core statement through
    # `session.execute` passes the ORM's execution path and events first (this and the
    # ticket's INSERT: 48 of an intake's 2,159 Python calls).
    value = session.connection().execute(_NEXT_NUMBER, {"day": day}).scalar_one()
    return f"{day}{value:06d}"


def insert_ticket(session: Session, ticket: Ticket) -> None:
    """Write a new ticket with one INSERT and make it a persistent row of the session.

    What the unit of work would add is added here: the caller's keyed hashes (as the mapper's
    `before_insert` listener computes them), the id the database assigned. Every column has its
    value on the object already (the model's defaults), so nothing is left to load."""
    hash_caller(session, ticket)
    values = ticket.__dict__
    ticket.id = (
        session.connection()
        .execute(_INSERT_TICKET, {c: values[c] for c in _TICKET_COLUMNS if c in values})
        .scalar_one()
    )
    make_transient_to_detached(ticket)
    session.add(ticket)


def create_ticket(
    session: Session,
    runtime,
    actor: Actor,
    data: dict[str, Any],
    *,
    now: datetime,
    details: dict[str, Any] | None = None,
    source_details: dict[str, Any] | None = None,
    call: Call | None = None,
) -> tuple[Ticket, bool]:
    """Log a ticket (state: the workflow's initial); return it and whether it is new.

    The ticket's source is the integration account's, else the centre's own (OWN_SOURCE); an
    `external_id` seen before from the same source returns the ticket created the first time.
    An outside platform's category or place the district does not know is kept as sent in
    `source_details` and left for the agent who dispatches; the centre's own intake gets a 422
    for an unknown category. `details` go into the history's create row beside the channel
    and the workflow; `source_details` what the channel adds (the assistant's conversation).

    The ticket's line (一个号码, hotline.workflow.lines) is `data["line"]` when given, else the
    number the `call` it is logged from came in on, else its source's or channel's; a merged
    line's ticket takes a category of its subtree only, and the line's workflow unless its
    category names one. The call, when given, keeps the ticket's id.
    """
    integration = actor.role == INTEGRATION
    source = actor.source if integration else OWN_SOURCE
    external_id = data.get("external_id")
    if external_id:
        existing = session.exec(
            select(Ticket).where(Ticket.source == source, Ticket.external_id == external_id)
        ).first()
        if existing is not None:
            return existing, False
    fields = {k: data.get(k) for k in TICKET_FIELDS if data.get(k) is not None}
    unknown: dict[str, str] = {}
    category = None
    lookups = Lookups(session)
    if data.get("category"):
        category = lookups.category_by_code(data["category"])
        if category is None or not category.active:
            if not integration:
                raise Invalid(
                    f"no active category with the code {data['category']!r}",
                    field="category",
                    zh=f"没有代码为 {data['category']} 的在用问题分类",
                )
            unknown["category"], category = data["category"], None
    street, community = fields.get("street"), fields.get("community")
    if integration:
        unknown.update(unknown_place(runtime.places(session, street, community), fields))
    elif street or community:
        check_place(runtime.places(session, street, community), street, community)
    line = ticket_line(runtime.workflows.lines, data.get("line"), call, source=source, channel=fields.get("channel"))
    # The workflow of the category, else of its nearest ancestor that names one.
    path = category_path(category.id if category else None, lookups.categories.get)
    if line.category and category is not None and all(c.code != line.category for c in path):
        root = lookups.category_by_code(line.category)
        raise Invalid(
            f"category: {category.code!r} is not under {line.category!r}, the category of line {line.number}",
            field="category",
            zh=f"{line.number}{line.label}的工单，问题分类须在“{root.name if root else line.category}”之下",
        )
    category_workflow = next((c.workflow for c in reversed(path) if c.workflow), None)
    wf = runtime.workflows.choose(data["type"], category_workflow, line.workflow)
    if not fields.get("title"):
        fields["title"] = data["content"].strip().splitlines()[0][:40]
    ticket = new_ticket(
        **fields,
        number=next_number(session, now),
        source=source,
        source_details={**(source_details or {}), **unknown} or None,
        workflow=wf.name,
        line=line.number,
        category_id=category.id if category else None,
        state=wf.initial,
        created_by_id=actor.id,
        created_at=now,
        updated_at=now,
        # Its creation's event (`record`, below) is the ticket's first: the row is written
        # with that event counted, and no UPDATE of the count follows.
        event_sequence=1,
    )
    insert_ticket(session, ticket)
    history = {"channel": ticket.channel, "workflow": wf.name, **(details or {})}
    if line is not runtime.workflows.lines.default:
        history["line"] = line.number
    if call is not None:
        history["call_id"] = call.call_id
    if integration:
        history["source"] = source
    record(session, runtime, ticket, "create", actor, now, history, from_state=None)
    if call is not None:
        call.ticket_id = ticket.id
    session.flush()
    # The history and outbox rows: a flush writes them first, but one with nothing of the
    # ORM's to write (no call to update) returns before it starts.
    appends.write(session)
    return ticket, True


def ticket_line(lines: Lines, number: str | None, call: Call | None, *, source: str, channel: str | None) -> Line:
    """A new ticket's line: the one named (Invalid naming `line` for a number not configured, or
    one other than the call's), else the call's, else its source's or channel's, else the default."""
    dialled = lines.pick(dialled=call.dialled) if call is not None else None
    if number:
        named = lines.named(number)
        if dialled is not None and dialled is not named:
            raise Invalid(
                f"line: the call came in on {dialled.number}, not {number}",
                field="line",
                zh=f"该来电呼入的是 {dialled.number}，不是 {number}",
            )
        return named
    if dialled is not None and dialled is not lines.default:
        return dialled
    return lines.pick(source=source, channel=channel)


def unknown_place(known: dict[str, list[str]], fields: dict[str, Any]) -> dict[str, str]:
    """An outside platform's street and community that the district's places (`known`) do not
    list: taken out of `fields` and returned as sent. Without a list of places, all is kept."""
    street, community = fields.get("street"), fields.get("community")
    if not known:
        return {}
    unknown = {}
    if street is not None and street not in known:
        unknown["street"] = fields.pop("street")
    if community is not None and community not in known.get(fields.get("street") or "", []):
        unknown["community"] = fields.pop("community")
    return unknown


def visible_clause(actor: Actor):
    """The SQL condition that limits tickets to what the actor may see (None: all): a
    department its own, an integration account its source's."""
    if actor.role == INTEGRATION:
        return Ticket.source == actor.source
    if actor.role not in DEPARTMENT_ROLES:
        return None
    return exists().where(
        Assignment.ticket_id == Ticket.id,
        Assignment.department_id == actor.department_id,
        Assignment.status != "withdrawn",
    )


def get_visible(session: Session, actor: Actor, ticket_id: int) -> Ticket:
    """The ticket, or NotFound where it does not exist or the actor may not see it."""
    stmt = select(Ticket).where(Ticket.id == ticket_id)
    clause = visible_clause(actor)
    if clause is not None:
        stmt = stmt.where(clause)
    ticket = session.exec(stmt).first()
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} not found, or not visible to you", zh="工单不存在，或您无权查看")
    return ticket


# A ticket list counts its matches up to this many. Beyond it the exact figure costs a walk
# over every matching ticket (millions in a city's archive, on every page of a list) and tells
# the user nothing a narrower search would not.
COUNT_LIMIT = 10_000


def capped(total: int) -> tuple[int, bool]:
    """A list's count as shown (at most COUNT_LIMIT), and whether it is exact."""
    return min(total, COUNT_LIMIT), total <= COUNT_LIMIT


def search(
    session: Session,
    actor: Actor,
    *,
    states: list[str] | None,
    department: str | None,
    overdue: bool | None,
    level: str | None = None,
    q: str | None,
    now: datetime,
    page: int,
    page_size: int,
    category: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> tuple[list[Ticket], int]:
    """A page of the tickets the actor may see, newest first, and how many match: counted up
    to COUNT_LIMIT, and COUNT_LIMIT + 1 when there are more.

    `q` is a ticket number, a caller's phone (in full or its last digits), a caller's name,
    or words of the title, content or address; `category` takes its whole subtree;
    `created_from`/`created_to` bound the intake time (to: exclusive).
    """
    conditions = []
    clause = visible_clause(actor)
    if clause is not None:
        conditions.append(clause)
    if states:
        conditions.append(Ticket.state.in_(states))
    if department:
        dept = session.exec(select(Department).where(Department.code == department)).first()
        if dept is None:
            raise Invalid(
                f"no department with the code {department!r}", field="department", zh=f"没有代码为 {department} 的单位"
            )
        conditions.append(
            exists().where(
                Assignment.ticket_id == Ticket.id,
                Assignment.department_id == dept.id,
                Assignment.status != "withdrawn",
            )
        )
    if category:
        conditions.append(Ticket.category_id.in_(category_subtree(session, category)))
    if created_from is not None:
        conditions.append(Ticket.created_at >= created_from)
    if created_to is not None:
        conditions.append(Ticket.created_at < created_to)
    if overdue is not None:
        late = Ticket.due_at.is_not(None) & (Ticket.due_at <= now)
        conditions.append(late if overdue else (Ticket.due_at.is_(None) | (Ticket.due_at > now)))
    if level == "red":
        conditions.append(Ticket.due_at <= now)
    elif level == "yellow":
        conditions.append((Ticket.warn_at <= now) & (Ticket.due_at > now))
    elif level == "green":
        conditions.append((Ticket.warn_at > now) & (Ticket.due_at > now))
    q = (q or "").strip()
    if q:
        conditions.append(_query_clause(session, actor, q, conditions))
    stmt = select(Ticket).where(*conditions).order_by(Ticket.id.desc())
    items = list(session.exec(stmt.offset((page - 1) * page_size).limit(page_size)).all())
    matching = sa_select(Ticket.id).where(*conditions).limit(COUNT_LIMIT + 1).subquery()
    total = session.execute(sa_select(func.count()).select_from(matching)).scalar_one()
    return items, total


def day_bounds(first: date | None, last: date | None) -> dict[str, datetime | None]:
    """`created_from`/`created_to` for search(): from the first day's start to the last day's end, local time."""

    def start(day: date | None) -> datetime | None:
        return datetime.combine(day, datetime.min.time(), LOCAL_TZ) if day else None

    return {"created_from": start(first), "created_to": start(last + timedelta(days=1) if last else None)}


def category_subtree(session: Session, code: str) -> list[int]:
    """The ids of a category and of every category under it."""
    categories = Lookups(session).categories
    root = next((c for c in categories.values() if c.code == code), None)
    if root is None:
        raise Invalid(f"no category with the code {code!r}", field="category", zh=f"没有代码为 {code} 的问题分类")
    return [c.id for c in categories.values() if root in category_path(c.id, categories.get)]


def line_categories(session: Session, line: Line) -> set[int] | None:
    """The ids of the categories a line's tickets may take (None: any; an empty set when its
    root is not in the tree)."""
    if not line.category:
        return None
    try:
        return set(category_subtree(session, line.category))
    except Invalid:
        return set()


def _query_clause(session: Session, actor: Actor, q: str, filters: list):
    """What `q` matches, bounded so that it costs little on a million tickets.

    A ticket number, and for the roles that may find a caller, a whole phone number, a
    phone's last digits and a whole name, are lookups on indexed columns (the number's unique
    index, the caller's keyed hashes: see caller_ids) and search the whole archive. The
    unanchored matches (words of the title, content or address) can use no index: they read
    only the newest SEARCH_SCAN_ROWS tickets that pass the other filters, found newest first
    by the created_at index (or the state, category or department index the filters bring),
    on SQLite and PostgreSQL alike; a date range reaches further back.
    """
    # A department never finds a confidential or anonymous ticket by the caller it hides.
    shown_caller = (
        (Ticket.confidential.is_(False) & Ticket.anonymous.is_(False)) if actor.role in DEPARTMENT_ROLES else None
    )

    def ids(*where):
        return sa_select(Ticket.id).where(*where).correlate(None)

    # One branch per index, joined by UNION: an OR across them would let the planner fall
    # back to reading the whole table in id order.
    branches = [ids(Ticket.number == q)]
    if actor.role in CALLER_SEARCH_ROLES:
        shown = [] if shown_caller is None else [shown_caller]
        branches += [ids(match, *shown) for match in caller_ids(session, q)]
    phone = re.sub(r"[\s\-]", "", q)
    if phone.isdigit() and len(phone) >= MIN_PHONE_DIGITS:
        # A number or a whole phone number: the indexes answer, nothing is scanned.
        return Ticket.id.in_(union(*branches))
    like = f"%{_like_escape(q)}%"
    loose = [
        Ticket.title.like(like, escape="\\"),
        Ticket.content.like(like, escape="\\"),
        Ticket.address.like(like, escape="\\"),
    ]
    window = ids(*filters).order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(SEARCH_SCAN_ROWS)
    branches.append(ids(Ticket.id.in_(window), or_(*loose)))
    return Ticket.id.in_(union(*branches))


def same_phone(session: Session, phone: str):
    """The condition: the ticket's caller has this phone (its keyed hash, under every key)."""
    return Ticket.caller_phone_hash.in_(keyring_of(session).phone_hashes(phone))


def caller_ids(session: Session, q: str) -> list:
    """The conditions by which `q` finds tickets by their caller, each on an index: a whole
    phone (MIN_PHONE_DIGITS digits or more) by its keyed hash; a phone's last four digits by
    the keyed hash of them, and more of its last digits by that hash too, then the tickets
    that share those four opened and compared; a whole name by its keyed hash (a sealed name
    cannot be searched for a part)."""
    phone = re.sub(r"[\s\-]", "", q)
    keys = keyring_of(session)
    matches = []
    if phone.isdigit() and len(phone) >= MIN_PHONE_DIGITS:
        matches.append(same_phone(session, phone))
    elif phone.isdigit() and len(phone) >= MIN_TAIL_DIGITS:
        tail = Ticket.caller_tail_hash.in_(keys.tail_hashes(phone))
        if len(phone) == TAIL_DIGITS:
            matches.append(tail)
        else:
            # The newest TAIL_SCAN_ROWS tickets ending in the same four digits, opened here.
            candidates = session.execute(
                sa_select(Ticket.id, Ticket.caller_phone).where(tail).order_by(Ticket.id.desc()).limit(TAIL_SCAN_ROWS)
            ).all()
            matches.append(Ticket.id.in_([i for i, p in candidates if p and normal_phone(p).endswith(phone)]))
    if not phone.isdigit():
        matches.append(Ticket.caller_name_hash.in_(keys.name_hashes(q)))
    return matches


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(text: str) -> str:
    return _like_escape(text) + "%"


def recent_tickets(
    session: Session, *, phone: str, street: str, community: str, address: str, now: datetime
) -> dict[str, Any]:
    """The caller's and the place's tickets of the last 90 days, newest first (at most 10 each):
    the repeat check (重复诉求) of the intake form."""
    since = now - timedelta(days=RECENT_DAYS)
    phone = re.sub(r"[\s\-]", "", phone)
    by_phone: list[Ticket] | None = None
    by_place: list[Ticket] | None = None
    if sum(ch.isdigit() for ch in phone) >= MIN_PHONE_DIGITS:
        # The phone's keyed hash is indexed: this reads only the caller's own tickets.
        by_phone = list(
            session.exec(
                select(Ticket)
                .where(same_phone(session, phone), Ticket.created_at >= since)
                .order_by(Ticket.created_at.desc(), Ticket.id.desc())
                .limit(RECENT_LIMIT)
            ).all()
        )
    street_v, community_v = clean_place(places(session), street, community)
    address = address.strip()
    if street_v and len(address) >= MIN_ADDRESS_CHARS:
        # The newest tickets of the window by the created_at index, at most PLACE_SCAN_ROWS
        # of them, then street, community and the address prefix among those.
        window = (
            select(Ticket.id)
            .where(Ticket.created_at >= since)
            .order_by(Ticket.created_at.desc())
            .limit(PLACE_SCAN_ROWS)
        )
        conditions = [
            Ticket.id.in_(window),
            Ticket.street == street_v,
            Ticket.address.like(_like_prefix(address), escape="\\"),
        ]
        if community_v:
            conditions.append(Ticket.community == community_v)
        by_place = list(
            session.exec(
                select(Ticket)
                .where(*conditions)
                .order_by(Ticket.created_at.desc(), Ticket.id.desc())
                .limit(RECENT_LIMIT)
            ).all()
        )
    return {"by_phone": by_phone, "by_place": by_place, "phone": phone, "address": address}


def assignments_of(session: Session, ticket_id: int) -> list[Assignment]:
    """Every assignment of a ticket, oldest first."""
    return list(session.exec(select(Assignment).where(Assignment.ticket_id == ticket_id).order_by(Assignment.id)).all())


def history_out(session: Session, ticket_id: int, actor: Actor) -> list[dict[str, Any]]:
    """The ticket's history, oldest first. A caller's contact details kept in it (`contact`:
    an e-mail address, a device or account id) are the centre's: departments do not see them."""
    rows = session.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)).all()
    hidden = {"contact"} if actor.role in DEPARTMENT_ROLES else set()
    merged = _merged_tickets(session, [m for r in rows if (m := (r.details or {}).get("merged_ticket"))])
    # A department never sees a merged ticket itself (its assignments were withdrawn): the
    # master's history shows its text, and links to it only for the centre.
    linked = actor.role not in DEPARTMENT_ROLES
    return [
        {
            "id": r.id,
            "event": r.event,
            "actor": r.actor_name,
            "actor_role": r.actor_role,
            "from": r.from_state,
            "to": r.to_state,
            "at": local_iso(r.at),
            "details": {k: v for k, v in r.details.items() if k not in hidden} if r.details else r.details,
            "merged": {**merged[m], "linked": linked}
            if (m := (r.details or {}).get("merged_ticket")) in merged
            else None,
        }
        for r in rows
    ]


def _merged_tickets(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """What a master's history shows of the tickets merged into it: number, time, text."""
    if not ids:
        return {}
    rows = session.exec(
        select(Ticket.id, Ticket.number, Ticket.created_at, Ticket.content).where(Ticket.id.in_(ids))
    ).all()
    return {i: {"id": i, "number": n, "at": local_iso(at), "content": c} for i, n, at, c in rows}


def _callback_states(runtime) -> list[str]:
    """The states in which a callback is recorded, in every workflow (待回访 in the default)."""
    states: set[str] = set()
    for wf in runtime.workflows.workflows.values():
        if "callback" in wf.events:
            states.update(wf.events["callback"].sources)
    return sorted(states)


def _callback_view(session: Session, runtime, view: str, now: datetime, q: str = "") -> list[Any]:
    conditions = [Ticket.state.in_(_callback_states(runtime))]
    if view == "overdue":
        conditions.append(Ticket.due_at <= now)
    elif view == "warning":
        conditions += [Ticket.warn_at <= now, Ticket.due_at > now]
    if q:
        # Within the tickets waiting for a callback (the state index: a few days' replies, not
        # the archive), so the unanchored matches read that small set only.
        like = f"%{_like_escape(q)}%"
        conditions.append(
            or_(
                Ticket.number == q,
                *caller_ids(session, q),
                Ticket.title.like(like, escape="\\"),
                Ticket.address.like(like, escape="\\"),
            )
        )
    return conditions


def awaiting_callback_counts(session: Session, runtime, now: datetime, *, q: str = "") -> dict[str, int]:
    """How many tickets wait for a callback (matching `q`): all, those past its deadline, those near it."""
    return {
        view: session.exec(
            select(func.count()).select_from(Ticket).where(*_callback_view(session, runtime, view, now, q))
        ).one()
        for view in CALLBACK_VIEWS
    }


def awaiting_callback(
    session: Session, runtime, view: str, *, now: datetime, offset: int, limit: int, q: str = ""
) -> list[tuple[Ticket, list[Callback]]]:
    """A page of the tickets waiting for a callback in one of CALLBACK_VIEWS (matching `q`:
    number, caller's phone or name, title, address), the most pressing deadline first, each
    with its callbacks so far."""
    tickets = session.exec(
        select(Ticket)
        .where(*_callback_view(session, runtime, view, now, q))
        .order_by(Ticket.callback_by.is_(None), Ticket.callback_by, Ticket.id)
        .offset(offset)
        .limit(limit)
    ).all()
    history: dict[int, list[Callback]] = {t.id: [] for t in tickets}
    if history:
        for cb in session.exec(select(Callback).where(Callback.ticket_id.in_(list(history))).order_by(Callback.id)):
            history[cb.ticket_id].append(cb)
    return [(t, history[t.id]) for t in tickets]
