"""Holiday data: seeded from the `chinese-calendar` package, replaced a year at a time by an
administrator, and the deadlines computed without it recomputed once it arrives."""

from datetime import date, datetime

from sqlalchemy import delete, func
from sqlmodel import Session, select

from hotline.db import utcnow
from hotline.deadlines.calendar import WorkCalendar
from hotline.deadlines.sla import recompute
from hotline.models import Assignment, CalendarDay, CalendarYear, Notification, NotificationRead, Ticket
from hotline.runtime import Runtime
from hotline.workflow import texts
from hotline.workflow.engine import Actor, changing, load_for_update


def seed_calendar(session: Session) -> int:
    """Load the holiday data of the `chinese-calendar` package when the table is empty."""
    if session.exec(select(func.count()).select_from(CalendarYear)).one():
        return 0
    cal = WorkCalendar.from_chinese_calendar()
    now = utcnow()
    for day, working in sorted(cal.overrides.items()):
        session.add(CalendarDay(day=day, working=working))
    for year in sorted(cal.covered_years):
        session.add(CalendarYear(year=year, source="chinese-calendar", loaded_at=now))
    session.flush()
    return len(cal.covered_years)


def import_year(
    session: Session,
    overrides: dict[date, bool],
    source: str,
    *,
    names: dict[date, str] | None = None,
    years: list[int] | None = None,
) -> list[int]:
    """Replace the holiday data of the given years (default: those the days fall in). A day
    of another year (a holiday over New Year, given with the year it ends in) is set alone:
    the rest of its year is kept."""
    years = sorted(set(years) if years else {d.year for d in overrides})
    now = utcnow()
    for year in years:
        for row in session.exec(
            select(CalendarDay).where(CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31))
        ).all():
            session.delete(row)
        session.flush()
        existing = session.get(CalendarYear, year)
        if existing:
            existing.source, existing.loaded_at = source, now
        else:
            session.add(CalendarYear(year=year, source=source, loaded_at=now))
    for day in sorted(d for d in overrides if d.year not in years):
        if (row := session.get(CalendarDay, day)) is not None:
            session.delete(row)
    session.flush()
    for day, working in sorted(overrides.items()):
        session.add(CalendarDay(day=day, working=working, name=(names or {}).get(day)))
    # The notice that these years had no data no longer holds: withdrawn, read or not.
    stale = select(Notification.id).where(
        Notification.kind == "calendar", Notification.title.in_([texts.calendar_missing_title(y) for y in years])
    )
    session.execute(delete(NotificationRead).where(NotificationRead.notification_id.in_(stale)))
    session.execute(delete(Notification).where(Notification.id.in_(stale)))
    session.flush()
    return years


def recompute_provisional(session: Session, runtime: Runtime, actor: Actor, now: datetime) -> int:
    """Recompute the deadlines of open tickets that were computed without holiday data, each
    as a change of the ticket (locked, versioned, in its history and its running totals)."""
    cal = runtime.calendar(session)
    count = 0
    ids = session.exec(select(Ticket.id).where(Ticket.deadlines_provisional).order_by(Ticket.id)).all()
    for ticket_id in ids:
        ticket = load_for_update(session, ticket_id)
        wf = runtime.workflows.get(ticket.workflow)
        if wf.states[ticket.state].final:
            continue
        with changing(session, runtime, ticket, "deadlines_recomputed", actor, now=now) as change:
            recompute(cal, wf, ticket)
            # The main department's handle-by, which on-time completion is judged by, moves
            # too (until the department has replied: then it was judged already). By the
            # ticket index alone (a condition on role can send the planner to the role indexes).
            assignments = session.exec(select(Assignment).where(Assignment.ticket_id == ticket.id)).all()
            main = next((a for a in assignments if a.role == "main" and a.status != "withdrawn"), None)
            if main is not None and main.first_replied_at is None and ticket.handle_by is not None:
                main.handle_by = ticket.handle_by
                session.add(main)
            change.details["provisional"] = ticket.deadlines_provisional
        count += 1
    return count


def import_holidays(
    runtime: Runtime,
    overrides: dict[date, bool],
    *,
    source: str,
    actor: Actor,
    names: dict[date, str] | None = None,
    years: list[int] | None = None,
) -> tuple[list[int], int]:
    """Import a year's data, then recompute the provisional deadlines under it: (years, tickets)."""
    with runtime.db.session() as session:
        years = import_year(session, overrides, source, names=names, years=years)
    runtime.invalidate_calendar()
    with runtime.db.session() as session:
        recomputed = recompute_provisional(session, runtime, actor, runtime.now())
    return years, recomputed
