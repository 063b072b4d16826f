"""The centre's operations (话务分析) for the supervisors: from the calls the telephone system
reported and the tickets logged, a period's calls per hour of day, the calls that led to a
ticket, each agent's workload and direct-answer rate (直接办结率), by line (一个号码).

A call's line is the number it dialled (hotline.workflow.lines; any number not configured is
the default line's); a ticket's is its own `line`. Tickets logged: those an agent created in
the period. Answered directly: the `answer` events (直接办结) on the period's tickets, counted
for the agent who fired them. The direct-answer rate: answered directly ÷ tickets logged.
Each figure is one grouped query over an indexed time (calls.started_at, tickets.created_at).
"""

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlmodel import Session

from hotline.calls import CALL_TAKERS
from hotline.indicators.analysis import local_part
from hotline.models import Call, Ticket, TicketEvent, User
from hotline.workflow.lines import Lines

HOURS = range(24)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _figures() -> dict[str, int]:
    return {"calls": 0, "with_ticket": 0, "tickets": 0, "answered": 0}


def call_analysis(
    session: Session, lines: Lines, lo: datetime, hi: datetime, line: str | None = None
) -> dict[str, Any]:
    """The calls and tickets of [lo, hi), of one line or of all: per hour of day, per agent, per line."""
    if line:
        lines.named(line)
    hours = {h: {"calls": 0, "with_ticket": 0} for h in HOURS}
    agents: dict[int, dict[str, int]] = defaultdict(_figures)
    per_line: dict[str, dict[str, int]] = {x.number: _figures() for x in lines.all if not line or x.number == line}

    hour = local_part(session, Call.started_at, "hour")
    logged = case((Call.ticket_id.is_not(None), 1), else_=0)
    stmt = (
        select(Call.dialled, Call.agent_id, hour, func.count(), func.sum(logged))
        .where(Call.started_at >= lo, Call.started_at < hi)
        .group_by(Call.dialled, Call.agent_id, hour)
    )
    for dialled, agent_id, h, n, with_ticket in session.execute(stmt):
        number = lines.of_number(dialled).number
        if line and number != line:
            continue
        n, with_ticket = int(n), int(with_ticket or 0)
        hours[int(h)]["calls"] += n
        hours[int(h)]["with_ticket"] += with_ticket
        for figures in (agents[agent_id], per_line[number]):
            figures["calls"] += n
            figures["with_ticket"] += with_ticket

    in_period = [Ticket.created_at >= lo, Ticket.created_at < hi]
    if line:
        in_period.append(Ticket.line == line)
    stmt = select(Ticket.line, Ticket.created_by_id, func.count()).where(*in_period)
    for number, agent_id, n in session.execute(stmt.group_by(Ticket.line, Ticket.created_by_id)):
        per_line.setdefault(lines.of_number(number).number, _figures())["tickets"] += int(n)
        if agent_id is not None:
            agents[agent_id]["tickets"] += int(n)
    stmt = (
        select(Ticket.line, TicketEvent.actor_id, func.count())
        .join(TicketEvent, TicketEvent.ticket_id == Ticket.id)
        .where(*in_period, TicketEvent.event == "answer")
        .group_by(Ticket.line, TicketEvent.actor_id)
    )
    for number, agent_id, n in session.execute(stmt):
        per_line.setdefault(lines.of_number(number).number, _figures())["answered"] += int(n)
        if agent_id is not None:
            agents[agent_id]["answered"] += int(n)

    users = {u.id: u for u in session.exec(select(User).where(User.id.in_(list(agents)))).scalars()} if agents else {}
    calls = sum(h["calls"] for h in hours.values())
    with_ticket = sum(h["with_ticket"] for h in hours.values())
    return {
        "line": line or None,
        "calls": calls,
        "with_ticket": with_ticket,
        "ticket_share": _rate(with_ticket, calls),
        "hours": [{"hour": h, **hours[h]} for h in HOURS],
        "agents": sorted(
            (
                {
                    "agent": users[i].username if i in users else str(i),
                    "name": (users[i].display_name or users[i].username) if i in users else str(i),
                    **f,
                    "answer_rate": _rate(f["answered"], f["tickets"]),
                }
                for i, f in agents.items()
                if i in users and users[i].role in CALL_TAKERS
            ),
            key=lambda r: (-r["calls"], -r["tickets"], r["agent"]),
        ),
        "lines": [
            {
                "line": number,
                "label": lines.by_number[number].label if number in lines.by_number else number,
                **f,
                "ticket_share": _rate(f["with_ticket"], f["calls"]),
                "answer_rate": _rate(f["answered"], f["tickets"]),
            }
            for number, f in per_line.items()
        ],
    }
