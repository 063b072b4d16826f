"""Deadlines (时限): the clocks a ticket carries and when the scheduler must look again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hotline.calendar import Due, WorkCalendar
from hotline.models import Ticket

if TYPE_CHECKING:
    from hotline.workflow.definition import Limit, Workflow


def due(cal: WorkCalendar, start: datetime, limit: Limit) -> Due:
    """The deadline of a limit counted from `start`: working days or natural time."""
    if limit.working_days is not None:
        return cal.add_working_days(start, limit.working_days)
    hours = limit.hours if limit.hours is not None else (limit.minutes or 0) / 60
    return cal.add_hours(start, hours)


def is_natural(limit: Limit) -> bool:
    """Whether a limit runs in natural time (hours, minutes) rather than working days."""
    return limit.working_days is None


def start_dispatch_clocks(cal: WorkCalendar, wf: Workflow, ticket: Ticket, now: datetime) -> None:
    """Sign-by and handle-by, both counted from the dispatch.

    Handle-by runs from the dispatch, not from the signing: the citizen's wait starts
    when the ticket reaches the department, and a department that signs late must not
    gain time by it.
    """
    sign = due(cal, now, wf.limits.sign.pick(ticket.type, ticket.urgency))
    handle = due(cal, now, wf.limits.handle.pick(ticket.type, ticket.urgency))
    ticket.sign_by, ticket.handle_by = sign.at, handle.at
    ticket.deadlines_provisional = sign.provisional or handle.provisional


def restart_handle_clock(cal: WorkCalendar, wf: Workflow, ticket: Ticket, now: datetime) -> None:
    """A fresh handle-by from now (rehandling)."""
    handle = due(cal, now, wf.limits.handle.pick(ticket.type, ticket.urgency))
    ticket.handle_by = handle.at
    ticket.deadlines_provisional = handle.provisional


def start_callback_clock(cal: WorkCalendar, wf: Workflow, ticket: Ticket, now: datetime) -> None:
    """Callback-by, counted from the centre's approval of the reply (or a direct answer)."""
    callback = due(cal, now, wf.limits.callback)
    ticket.callback_by = callback.at
    ticket.deadlines_provisional = ticket.deadlines_provisional or callback.provisional


def extend_handle_clock(cal: WorkCalendar, ticket: Ticket, days: int) -> None:
    """Move handle-by on by `days` working days (an approved extension)."""
    moved = cal.add_working_days(ticket.handle_by, days)
    ticket.handle_by = moved.at
    ticket.deadlines_provisional = ticket.deadlines_provisional or moved.provisional


def stop_handle_clock(cal: WorkCalendar, wf: Workflow, ticket: Ticket, now: datetime) -> float | None:
    """The handling time left at a suspension, in the units the limit runs in (seconds)."""
    if ticket.handle_by is None:
        return None
    if is_natural(wf.limits.handle.pick(ticket.type, ticket.urgency)):
        return (ticket.handle_by - now).total_seconds()
    return cal.working_seconds_between(now, ticket.handle_by)


def resume_handle_clock(cal: WorkCalendar, wf: Workflow, ticket: Ticket, now: datetime, left: float | None) -> None:
    """Restart handle-by with the time that was left when the ticket was suspended."""
    if left is None:
        return
    if is_natural(wf.limits.handle.pick(ticket.type, ticket.urgency)):
        ticket.handle_by = now + timedelta(seconds=left)
        return
    resumed = cal.add_working_seconds(now, left)
    ticket.handle_by = resumed.at
    ticket.deadlines_provisional = ticket.deadlines_provisional or resumed.provisional


def running_deadline(wf: Workflow, ticket: Ticket) -> datetime | None:
    """The deadline that the ticket's state makes count now, if any."""
    state = wf.states.get(ticket.state)
    if state is None or state.final or state.clock_stopped:
        return None
    if ticket.state == "dispatched":
        candidates = [ticket.sign_by, ticket.handle_by]
    elif ticket.state in ("in_progress", "returned"):
        candidates = [ticket.handle_by]
    elif ticket.state == "pending_callback":
        candidates = [ticket.callback_by]
    else:
        candidates = []
    present = [c for c in candidates if c is not None]
    return min(present) if present else None


def refresh_next_due(wf: Workflow, ticket: Ticket) -> None:
    """Store when the scheduler must next look at the ticket (indexed; sweeps read only this)."""
    ticket.next_due_at = running_deadline(wf, ticket)
