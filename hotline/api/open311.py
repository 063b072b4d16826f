"""Open311 GeoReport v2: the district's categories as services, its tickets as service requests.

Existing 311 apps and tools can submit and follow requests through this standard
(wiki.open311.org/GeoReport_v2). Every resource comes as `.json` or `.xml`; errors are
the standard's list of `{code, description}` in the same format, with the standard's
status codes (400 for a bad or missing parameter, 403 for a missing or invalid
`api_key`, 404 for an unknown resource).

As the standard has it, the catalogue (discovery, services) and the service requests are
public: reading them needs no key. A public read shows what a citizen may see: no caller's
name, phone, e-mail or device id (a phone number, e-mail address or the caller's name in
the text is masked), and no confidential ticket at all. A district can turn public reads
off (HOTLINE_OPEN311_PUBLIC_READS=false): then a read without a key is a 403. A read that
sends a key (`api_key`, or `Authorization: Bearer`) gets the caller's own view, as in the
rest of the API (a department its own tickets, an outside platform its own source's).
Submitting takes a key. A submitted request is a ticket in the workflow's first state
(已受理), channel `app`, waiting for the centre to dispatch it.
"""

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from xml.etree import ElementTree

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import select as sa_select
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from hotline.api.deps import RuntimeDep, actor_for_token, bearer_token
from hotline.api.schemas import MAX_CONTENT_CHARS
from hotline.attachments import files
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.directory import category_path, places
from hotline.errors import HotlineError, NotFound
from hotline.inputs import FIRST_DAY, LAST_DAY, MAX_PAGE
from hotline.labels import CLOSE_REASON_LABELS, TYPE_LABELS
from hotline.models import OWN_SOURCE, TICKET_TYPES, Category, Ticket, TicketEvent
from hotline.ticket_view import Lookups, mask_phone
from hotline.tickets import create_ticket, visible_clause
from hotline.workflow.engine import Actor

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When this endpoint's behaviour last changed, as the discovery document announces it.
CHANGESET = "2026-12-01T00:00:00+08:00"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
MEDIA_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
SUBMITTING_ROLES = ("agent", "supervisor")
# The standard's defaults for GET requests: the last 90 days, at most 1000 requests.
DEFAULT_WINDOW = timedelta(days=90)
MAX_PAGE_SIZE = 1000
DEFAULT_TYPE = "help"
TOKEN_PREFIX = "open311:"
# XML: the element each list's items are written as.
ITEM_ELEMENTS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}

Format = Annotated[Literal["json", "xml"], Path(description="the response format: json or xml")]
Jurisdiction = Annotated[str | None, Query(max_length=100, description="accepted and ignored: one jurisdiction")]

router = APIRouter(prefix="/open311", tags=["open311"])


class Open311Error(HotlineError):
    """An error as GeoReport v2 reports it."""


def _bad(description: str) -> Open311Error:
    return Open311Error(description, status_code=400)


# ---------------------------------------------------------------- rendering


# Characters XML 1.0 does not allow (control characters, lone surrogates, U+FFFE/U+FFFF):
# one pasted into a ticket would make every XML answer that includes it unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_element(name: str, value: Any) -> ElementTree.Element:
    element = ElementTree.Element(name)
    if isinstance(value, Mapping):
        for key, child in value.items():
            element.append(_xml_element(key, child))
    elif isinstance(value, list):
        for child in value:
            element.append(_xml_element(ITEM_ELEMENTS.get(name, "item"), child))
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = _NOT_XML.sub("", str(value))
    return element


def render(fmt: str, root: str, value: Any, status_code: int = 200) -> Response:
    """The value as JSON, or as XML under the root element (lists as the standard names their items)."""
    if fmt == "xml":
        body = XML_DECLARATION + ElementTree.tostring(_xml_element(root, value), encoding="unicode").encode()
    else:
        body = json.dumps(value, ensure_ascii=False).encode()
    return Response(body, status_code=status_code, media_type=MEDIA_TYPES[fmt])


def error_response(path: str, status_code: int, description: str, headers: dict[str, str] | None = None) -> Response:
    """An error in the standard's form, in the format the address asked for."""
    fmt = "xml" if path.endswith(".xml") else "json"
    if status_code == 401:
        status_code = 403  # GeoReport v2: a missing or invalid api_key is a 403
    elif status_code == 422:
        status_code = 400
    response = render(fmt, "errors", [{"code": status_code, "description": description}], status_code)
    response.headers.update(headers or {})
    return response


# ---------------------------------------------------------------- the caller


async def _caller(request: Request, runtime, api_key: str | None) -> Actor:
    token = api_key or bearer_token(request)
    if not token:
        raise Open311Error("api_key is required (or send 'Authorization: Bearer TOKEN')", status_code=403)
    actor = await actor_for_token(runtime, token.strip())
    if actor is None:
        raise Open311Error("api_key is unknown, revoked, or its user is deactivated", status_code=403)
    return actor


async def _reader(
    request: Request,
    runtime: RuntimeDep,
    api_key: Annotated[
        str | None, Query(max_length=200, description="optional: an API token, for the caller's own view")
    ] = None,
) -> Actor | None:
    """Who reads: the key's holder, or None for the public (where the district allows it)."""
    if api_key or bearer_token(request):
        return await _caller(request, runtime, api_key)
    if not runtime.settings.open311_public_reads:
        raise Open311Error("this district does not publish service requests: api_key is required", status_code=403)
    return None


Reader = Annotated[Actor | None, Depends(_reader)]


def _visible(reader: Actor | None) -> list[Any]:
    """The conditions that limit requests to what the reader may see: the public never sees
    a confidential ticket; a key's holder sees what its role sees."""
    if reader is None:
        return [Ticket.confidential.is_(False)]
    clause = visible_clause(reader)
    return [] if clause is None else [clause]


# ---------------------------------------------------------------- services


def _active_categories(session: Session) -> list[Category]:
    return list(session.exec(select(Category).where(Category.active).order_by(Category.code)).all())


def _service(category: Category, by_id: dict[int, Category]) -> dict[str, Any]:
    path = [c.name for c in category_path(category.id, by_id.get)]
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": " / ".join(path),
        "metadata": True,
        "type": "realtime",
        "keywords": ",".join(path),
        "group": path[0],
    }


def _attributes(session: Session) -> list[dict[str, Any]]:
    attributes: list[dict[str, Any]] = [
        {
            "variable": True,
            "code": "type",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": f"诉求类型；不填为{TYPE_LABELS[DEFAULT_TYPE]}",
            "order": 1,
            "description": "诉求类型",
            "values": [{"key": t, "name": TYPE_LABELS[t]} for t in TICKET_TYPES],
        }
    ]
    streets = places(session)
    if streets:
        attributes.append(
            {
                "variable": True,
                "code": "street",
                "datatype": "singlevaluelist",
                "required": False,
                "datatype_description": "诉求所在的街道（镇）",
                "order": 2,
                "description": "街道",
                "values": [{"key": s, "name": s} for s in streets],
            }
        )
        attributes.append(
            {
                "variable": True,
                "code": "community",
                "datatype": "singlevaluelist",
                "required": False,
                "datatype_description": "诉求所在的社区（村）：街道/社区",
                "order": 3,
                "description": "社区",
                "values": [{"key": f"{s}/{c}", "name": f"{s} {c}"} for s, cs in streets.items() for c in cs],
            }
        )
    return attributes


@router.get("/discovery.{fmt}", summary="Open311 service discovery")
def discovery(fmt: Format, runtime: RuntimeDep) -> Response:
    with runtime.db.read_session() as session:
        district = runtime.district(session)
    return render(
        fmt,
        "discovery",
        {
            "changeset": CHANGESET,
            "contact": f"{district.name}12345政务服务便民热线",
            "key_service": "API 密钥由热线系统管理员签发（hotline users token USERNAME）",
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": f"{runtime.settings.public_url.rstrip('/')}/open311/v2",
                    "changeset": CHANGESET,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        },
    )


@router.get("/v2/services.{fmt}", summary="Open311: the service list (the category tree)")
def list_services(fmt: Format, runtime: RuntimeDep, jurisdiction_id: Jurisdiction = None) -> Response:
    with runtime.db.read_session() as session:
        categories = _active_categories(session)
    by_id = {c.id: c for c in categories}
    return render(fmt, "services", [_service(c, by_id) for c in categories])


@router.get("/v2/services/{service_code}.{fmt}", summary="Open311: one service's definition")
def service_definition(
    service_code: str, fmt: Format, runtime: RuntimeDep, jurisdiction_id: Jurisdiction = None
) -> Response:
    with runtime.db.read_session() as session:
        category = session.exec(select(Category).where(Category.code == service_code, Category.active)).first()
        if category is None:
            raise NotFound(f"service_code {service_code!r} not found")
        attributes = _attributes(session)
    return render(fmt, "service_definition", {"service_code": category.code, "attributes": attributes})


# ---------------------------------------------------------------- submitting


def _text(form: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = form.get(name)
    if value is None or not isinstance(value, str):
        return None
    value = value.strip()
    if len(value) > limit:
        raise _bad(f"{name}: at most {limit} characters")
    return value or None


def _coordinate(form: Mapping[str, Any], name: str, bound: float) -> float | None:
    raw = _text(form, name, 40)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise _bad(f"{name}: not a number: {raw!r}") from None
    if not -bound <= value <= bound:
        raise _bad(f"{name}: must be between {-bound:g} and {bound:g}")
    return value


def _ticket_data(session: Session, form: Mapping[str, Any], token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ticket's fields from the form of a POST requests, and what the history keeps besides."""
    service_code = _text(form, "service_code", 32)
    if not service_code:
        raise _bad("service_code: required")
    category = session.exec(select(Category).where(Category.code == service_code, Category.active)).first()
    if category is None:
        raise _bad(f"service_code: {service_code!r} not found")
    description = _text(form, "description", MAX_CONTENT_CHARS)
    if not description:
        raise _bad("description: required (the request's content)")
    lat, lng = _coordinate(form, "lat", 90), _coordinate(form, "long", 180)
    if (lat is None) != (lng is None):
        raise _bad("lat and long: give both or neither")
    address = _text(form, "address_string", 200)
    address_id = _text(form, "address_id", 64)
    kind = _text(form, "attribute[type]", 20) or DEFAULT_TYPE
    if kind not in TICKET_TYPES:
        raise _bad(f"attribute[type]: {kind!r} is not one of {', '.join(TICKET_TYPES)}")
    street = _text(form, "attribute[street]", 50)
    community = _text(form, "attribute[community]", 50)
    if street or community:
        known = places(session)
        if street and street not in known:
            raise _bad(f"attribute[street]: {street!r} is not a street of the district")
        if community:
            if "/" in community:  # the service definition's key: street/community
                given_street, _, community = community.partition("/")
                if street and street != given_street:
                    raise _bad(f"attribute[community]: {community!r} is in {given_street!r}, not in {street!r}")
                street = given_street
            owners = [s for s, cs in known.items() if community in cs and (street is None or s == street)]
            if not owners:
                where = f"of {street!r}" if street else "of the district"
                raise _bad(f"attribute[community]: {community!r} is not a community {where}")
            if len(owners) > 1:
                raise _bad(f"attribute[community]: {community!r} is in {', '.join(owners)}: give attribute[street] too")
            street = owners[0]
    if lat is None and not address and not address_id and not street:
        raise _bad("a location is required: lat and long, address_string, address_id or attribute[street]")
    surname, given = _text(form, "last_name", 25), _text(form, "first_name", 25)
    name = "".join(part for part in (surname, given) if part) or None
    phone = _text(form, "phone", 30)
    if phone is not None:
        phone = "".join(ch for ch in phone if ch.isdigit() or ch == "+") or None
    data = {
        "type": kind,
        "category": category.code,
        "channel": "app",
        "caller_name": name,
        "caller_phone": phone,
        "anonymous": name is None and phone is None,
        "content": description,
        "street": street,
        "community": community,
        "address": address,
        "lat": lat,
        "lng": lng,
        "external_id": TOKEN_PREFIX + token,
    }
    return data, {
        # The caller's contacts, the centre's only (the history hides `contact` from departments).
        "contact": _present(form, ("email", "device_id", "account_id"), 100),
        "open311": _present(form, ("media_url", "address_id"), 500),
    }


def _present(form: Mapping[str, Any], keys: tuple[str, ...], limit: int) -> dict[str, str]:
    return {key: value for key in keys if (value := _text(form, key, limit)) is not None}


@router.post("/v2/requests.{fmt}", status_code=201, summary="Open311: submit a service request")
async def submit_request(fmt: Format, request: Request, runtime: RuntimeDep) -> Response:
    form = await request.form()
    key = form.get("api_key")
    # Some clients put the key in the address even when posting.
    actor = await _caller(request, runtime, key if isinstance(key, str) else request.query_params.get("api_key"))
    if actor.role not in SUBMITTING_ROLES:
        raise Open311Error(f"the role {actor.role!r} may not submit service requests", status_code=403)
    token = secrets.token_urlsafe(12)

    def create() -> dict[str, Any]:
        with runtime.db.session() as session:
            data, details = _ticket_data(session, form, token)
            ticket, _ = create_ticket(session, runtime, actor, data, now=runtime.now(), details=details)
            media = details["open311"].get("media_url")
            if media and files.media_reference(media):
                # Kept as a link, never fetched: the server reaches out to no address a citizen names.
                files.add(
                    session, runtime, actor, ticket.id, kind="photo", name=media, now=runtime.now(), reference=media
                )
            return {
                "service_request_id": ticket.number,
                "token": token,
                "service_notice": f"您的诉求已受理，工单编号 {ticket.number}，我们将按时限办理并回复。",
                "account_id": details["contact"].get("account_id"),
            }

    return render(fmt, "service_requests", [await run_in_threadpool(create)], status_code=201)


# ---------------------------------------------------------------- reading


def _w3c(value: datetime | None) -> str | None:
    """A stored time as the standard writes it: seconds, with the offset (+08:00)."""
    return value.astimezone(LOCAL_TZ).isoformat(timespec="seconds") if value else None


def _status_notes(ticket: Ticket, runtime, closed: bool) -> str:
    label = runtime.workflows.get(ticket.workflow).state_label(ticket.state)
    if not closed:
        return label
    outcome = ticket.result or ticket.answer
    reason = CLOSE_REASON_LABELS.get(ticket.close_reason or "", "")
    return "；".join(part for part in (label, reason, outcome) if part)


# What a public read masks in a ticket's text: phone numbers (7 digits or more, spaces and
# dashes allowed between) and e-mail addresses.
_PHONE_IN_TEXT = re.compile(r"\+?\d(?:[\s\-]?\d){6,}")
_EMAIL_IN_TEXT = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")


def public_text(ticket: Ticket, text: str | None) -> str | None:
    """A ticket's text as the public may read it: phone numbers, e-mail addresses and the
    caller's name masked."""
    if not text:
        return text
    text = _PHONE_IN_TEXT.sub(lambda m: mask_phone(re.sub(r"[\s\-]", "", m.group())) or "", text)
    text = _EMAIL_IN_TEXT.sub("***@***", text)
    name = (ticket.caller_name or "").strip()
    if len(name) >= 2:
        text = text.replace(name, name[0] + "*" * (len(name) - 1))
    return text


def _request_out(ticket: Ticket, runtime, lookups: Lookups, extra: Mapping[str, Any], public: bool) -> dict:
    category = lookups.categories.get(ticket.category_id)
    department = lookups.departments.get(ticket.main_department_id)
    closed = ticket.state not in runtime.workflows.open_states
    place = " ".join(p for p in (ticket.street, ticket.community, ticket.address) if p)
    notes = _status_notes(ticket, runtime, closed)
    return {
        "service_request_id": ticket.number,
        "status": "closed" if closed else "open",
        "status_notes": public_text(ticket, notes) if public else notes,
        "service_name": category.name if category else None,
        "service_code": category.code if category else None,
        "description": public_text(ticket, ticket.content) if public else ticket.content,
        "agency_responsible": department.name if department else None,
        "service_notice": None,
        "requested_datetime": _w3c(ticket.created_at),
        "updated_datetime": _w3c(ticket.updated_at),
        "expected_datetime": _w3c(ticket.handle_by),
        "address": (public_text(ticket, place) if public else place) or None,
        "address_id": extra.get("address_id"),
        "zipcode": None,
        "lat": ticket.lat,
        "long": ticket.lng,
        "media_url": extra.get("media_url"),
    }


def _submitted_extras(session: Session, ticket_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """What an Open311 submission kept beside the ticket (media, address id), by ticket."""
    ids = list(ticket_ids)
    if not ids:
        return {}
    rows = session.execute(
        sa_select(TicketEvent.ticket_id, TicketEvent.details).where(
            TicketEvent.ticket_id.in_(ids), TicketEvent.event == "create"
        )
    ).all()
    return {tid: (details or {}).get("open311") or {} for tid, details in rows}


def _requests_out(session: Session, runtime, tickets: list[Ticket], public: bool) -> list[dict[str, Any]]:
    lookups = Lookups(session)
    extras = _submitted_extras(session, (t.id for t in tickets))
    return [_request_out(t, runtime, lookups, extras.get(t.id, {}), public) for t in tickets]


def _parse_time(name: str, raw: str | None) -> datetime | None:
    if raw is None or not raw.strip():
        return None
    # An offset sent unencoded ("+08:00") arrives with its "+" decoded as a space.
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", raw.strip()).replace("Z", "+00:00")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(f"{name}: not an ISO 8601 date and time: {raw!r}") from None
    if value.tzinfo is None:
        raise _bad(f"{name}: give the time zone (Z or +08:00): {raw!r}")
    if not FIRST_DAY <= value.date() <= LAST_DAY:
        raise _bad(f"{name}: a time from {FIRST_DAY} to {LAST_DAY}: {raw!r}")
    return value


def _codes(raw: str | None) -> list[str]:
    return [c.strip() for c in (raw or "").split(",") if c.strip()]


@router.get("/v2/requests.{fmt}", summary="Open311: service requests")
async def list_requests(
    fmt: Format,
    reader: Reader,
    runtime: RuntimeDep,
    jurisdiction_id: Jurisdiction = None,
    service_request_id: Annotated[str | None, Query(max_length=2000, description="numbers, comma-separated")] = None,
    service_code: Annotated[str | None, Query(max_length=2000, description="codes, comma-separated")] = None,
    start_date: Annotated[str | None, Query(max_length=40)] = None,
    end_date: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20, description="open, closed, or both")] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="an extension of the standard")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="an extension of the standard")] = 100,
) -> Response:
    numbers = _codes(service_request_id)
    conditions = _visible(reader)
    if numbers:
        # The standard: with service_request_id, every other filter is ignored.
        conditions.append(Ticket.number.in_(numbers[:MAX_PAGE_SIZE]))
    else:
        statuses = set(_codes(status))
        if statuses - {"open", "closed"}:
            raise _bad(f"status: {', '.join(sorted(statuses - {'open', 'closed'}))} is not open or closed")
        if statuses == {"open"}:
            conditions.append(Ticket.state.in_(runtime.workflows.open_states))
        elif statuses == {"closed"}:
            conditions.append(Ticket.state.not_in(runtime.workflows.open_states))
        start, end = _parse_time("start_date", start_date), _parse_time("end_date", end_date)
        if start is None and end is None:
            start = runtime.now() - DEFAULT_WINDOW
        elif start is None:
            start = end - DEFAULT_WINDOW
        if start is not None:
            conditions.append(Ticket.created_at >= start)
        if end is not None:
            conditions.append(Ticket.created_at <= end)
        codes = _codes(service_code)
        if codes:
            conditions.append(Ticket.category_id.in_(select(Category.id).where(Category.code.in_(codes))))

    def read() -> list[dict[str, Any]]:
        with runtime.db.read_session() as session:
            stmt = select(Ticket).where(*conditions).order_by(Ticket.id.desc())
            tickets = list(session.exec(stmt.offset((page - 1) * page_size).limit(page_size)).all())
            return _requests_out(session, runtime, tickets, public=reader is None)

    return render(fmt, "service_requests", await run_in_threadpool(read))


async def _found(runtime, reader: Actor | None, condition: Any, missing: str) -> list[dict[str, Any]]:
    """The one request the condition names, if the reader may see it."""

    def read() -> list[dict[str, Any]]:
        with runtime.db.read_session() as session:
            ticket = session.exec(select(Ticket).where(condition, *_visible(reader))).first()
            if ticket is None:
                raise NotFound(missing)
            return _requests_out(session, runtime, [ticket], public=reader is None)

    return await run_in_threadpool(read)


@router.get("/v2/requests/{service_request_id}.{fmt}", summary="Open311: one service request")
async def get_request(
    service_request_id: str, fmt: Format, reader: Reader, runtime: RuntimeDep, jurisdiction_id: Jurisdiction = None
) -> Response:
    missing = f"service_request_id {service_request_id!r} not found, or not visible to you"
    return render(fmt, "service_requests", await _found(runtime, reader, Ticket.number == service_request_id, missing))


@router.get("/v2/tokens/{token}.{fmt}", summary="Open311: the request a submission token stands for")
async def get_token(
    token: str, fmt: Format, reader: Reader, runtime: RuntimeDep, jurisdiction_id: Jurisdiction = None
) -> Response:
    missing = f"token {token!r} not found, or not visible to you"
    condition = (Ticket.source == OWN_SOURCE) & (Ticket.external_id == TOKEN_PREFIX + token)
    (found,) = await _found(runtime, reader, condition, missing)
    return render(fmt, "service_requests", [{"service_request_id": found["service_request_id"], "token": token}])
