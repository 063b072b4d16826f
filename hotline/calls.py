"""The caller on screen (来电弹屏): the telephone system reports each incoming call for one
agent; the agent's open workbench shows it at once with the caller's history, pre-fills the
phone, and the ticket logged from it keeps the call id."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from hotline.deadlines.calendar import local_iso
from hotline.errors import Invalid, NotFound, NotPermitted
from hotline.models import Call, Callback, Ticket, User
from hotline.tickets import search
from hotline.workflow.engine import Actor

# Who takes calls, and whom the caller's history is for.
CALL_TAKERS = ("agent", "supervisor")
# A repeat (重复来电): the caller's tickets logged within these days.
REPEAT_DAYS = 30
# The caller's tickets the history shows at most, newest first.
HISTORY_LIMIT = 20
# A workbench opened this long after a call still shows it (the agent reloaded the page).
RECENT_CALL = timedelta(minutes=5)


def clean_phone(value: str) -> str:
    """A phone as tickets keep it: digits and a leading + (Invalid naming `caller_phone` otherwise)."""
    kept = "".join(ch for ch in value if ch.isdigit() or ch == "+")
    if not 3 <= len(kept) <= 20 or "+" in kept[1:]:
        raise Invalid(
            "caller_phone: 3 to 20 digits, a leading + allowed",
            field="caller_phone",
            zh="联系电话应为 3–20 位数字，可以 + 开头",
        )
    return kept


def receive(session: Session, actor: Actor, data: dict[str, Any], *, source: str, now: datetime) -> tuple[Call, bool]:
    """Record a call the telephone system reports (its account's source must be `source`);
    the same call id again returns the first row. Returns the call and whether it is new."""
    if actor.source != source:
        raise NotPermitted(f"only the telephone system's account (source {source!r}) reports calls")
    existing = session.exec(select(Call).where(Call.source == source, Call.call_id == data["call_id"])).first()
    if existing is not None:
        return existing, False
    agent = session.exec(select(User).where(User.username == data["agent"])).first()
    if agent is None or not agent.active or agent.role not in CALL_TAKERS:
        raise Invalid(f"agent: no active agent {data['agent']!r}", field="agent")
    call = Call(
        source=source,
        call_id=data["call_id"],
        caller_phone=clean_phone(data["caller_phone"]),
        agent_id=agent.id,
        dialled=data.get("dialled"),
        started_at=data["started_at"],
        created_at=now,
    )
    session.add(call)
    session.flush()
    return call, True


def call_out(call: Call) -> dict[str, Any]:
    return {
        "id": call.id,
        "call_id": call.call_id,
        "caller_phone": call.caller_phone,
        "dialled": call.dialled,
        "started_at": local_iso(call.started_at),
        "ticket": call.ticket_id,
    }


def call_line(runtime, call: Call):
    """The merged line (hotline.workflow.lines) a call came in on; None for the default line."""
    lines = runtime.workflows.lines
    line = lines.pick(dialled=call.dialled)
    return None if line is lines.default else line


def calls_after(session: Session, agent_id: int, after: int | None, *, now: datetime) -> list[Call]:
    """The agent's calls newer than the one `after` names, oldest first; without `after`, the
    latest call of the last few minutes not logged yet (the workbench was just opened)."""
    stmt = select(Call).where(Call.agent_id == agent_id)
    if after is not None:
        return list(session.exec(stmt.where(Call.id > after).order_by(Call.id)).all())
    latest = session.exec(
        stmt.where(Call.created_at >= now - RECENT_CALL, col(Call.ticket_id).is_(None)).order_by(Call.id.desc())
    ).first()
    return [latest] if latest else []


def last_call_id(session: Session, agent_id: int) -> int:
    """The id of the agent's newest call (0: none): where a workbench's stream starts."""
    row = session.exec(select(Call.id).where(Call.agent_id == agent_id).order_by(Call.id.desc())).first()
    return row or 0


def own_call(session: Session, actor: Actor, call_id: int) -> Call:
    """A call to this agent (NotFound for another agent's)."""
    call = session.get(Call, call_id)
    if call is None or call.agent_id != actor.id:
        raise NotFound(f"call {call_id} not found, or not yours", zh="来电不存在，或不是您接听的")
    return call


@dataclass
class CallerHistory:
    """What the workbench shows of a caller: the tickets (newest first), which are open, how
    many in the last 30 days, the last rating given."""

    tickets: list[Ticket]
    open_ids: set[int]
    repeat_ids: set[int]
    last_rating: Callback | None


def caller_history(session: Session, runtime, actor: Actor, phone: str, *, now: datetime) -> CallerHistory:
    """The caller's tickets as the ticket search finds them by phone (its one lookup), newest first."""
    found, _ = search(
        session,
        actor,
        states=None,
        department=None,
        overdue=None,
        q=clean_phone(phone),
        now=now,
        page=1,
        page_size=HISTORY_LIMIT,
    )
    open_states = set(runtime.workflows.open_states)
    since = now - timedelta(days=REPEAT_DAYS)
    ids = [t.id for t in found]
    rating = None
    if ids:
        rating = session.exec(
            select(Callback)
            .where(col(Callback.ticket_id).in_(ids), col(Callback.rating).is_not(None))
            .order_by(Callback.at.desc())
        ).first()
    return CallerHistory(
        tickets=found,
        open_ids={t.id for t in found if t.state in open_states},
        repeat_ids={t.id for t in found if t.created_at >= since},
        last_rating=rating,
    )


def unlogged_call(session: Session, actor: Actor, call_id: int) -> Call:
    """The agent's own call no ticket was logged from yet (Invalid naming `call` otherwise)."""
    call = own_call(session, actor, call_id)
    if call.ticket_id is not None:
        raise Invalid("call: a ticket was logged from this call already", field="call", zh="该来电已登记过工单")
    return call


def intake_call(session: Session, actor: Actor, call_id: int) -> Call:
    """The call a ticket posted to the API is logged from: the agent's own, not logged yet
    (Invalid naming `call` otherwise)."""
    try:
        return unlogged_call(session, actor, call_id)
    except NotFound:
        raise Invalid(f"call: no call {call_id} to you", field="call", zh="来电不存在") from None
