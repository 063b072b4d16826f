"""Deadlines (时限): the clocks a ticket carries, their colour, and the escalation ladder.

Every clock is computed from its inputs (when it started, the limit, approved
extension days, time spent suspended), never adjusted in place, so a ticket's
deadlines can be recomputed at any time: when a year's holiday data arrives, for
instance. Times come in as `now`; nothing here reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from hotline.deadlines.calendar import Due, WorkCalendar
from hotline.models import Assignment, Ticket

if TYPE_CHECKING:
    from hotline.workflow.definition import Limit, Workflow

# The escalation ladder, in order; a ticket's `escalation_step` counts the steps done
# for its current deadline.
LADDER = ("warn", "urge", "supervise", "report")
# Deadlines that climb the ladder: the department's. (The callback deadline is the
# centre's own and is handled by the evaluation sweep.)
LADDER_KINDS = ("sign", "handle")


def due(cal: WorkCalendar, start: datetime, limit: Limit) -> Due:
    """The deadline of a limit counted from `start`: working days or natural time."""
    if limit.working_days is not None:
        return cal.add_working_days(start, limit.working_days)
    hours = limit.hours if limit.hours is not None else (limit.minutes or 0) / 60
    return cal.add_hours(start, hours)


def is_natural(limit: Limit) -> bool:
    """Whether a limit runs in natural time (hours, minutes) rather than working days."""
    return limit.working_days is None


def handle_limit(wf: Workflow, ticket: Ticket) -> Limit:
    return wf.limits.handle.pick(ticket.type, ticket.urgency)


def elapsed(cal: WorkCalendar, limit: Limit, a: datetime, b: datetime) -> float:
    """Seconds from a to b as the limit counts them: working seconds or natural ones."""
    return (b - a).total_seconds() if is_natural(limit) else cal.working_seconds_between(a, b)


def compute_handle_by(cal: WorkCalendar, wf: Workflow, ticket: Ticket) -> Due | None:
    """Handle-by: the limit from the clock's start, plus extensions, plus time suspended."""
    if ticket.handle_started_at is None:
        return None
    limit = handle_limit(wf, ticket)
    if is_natural(limit):
        base = due(cal, ticket.handle_started_at, limit)
        if ticket.extension_days:
            base = cal.add_working_days(base.at, ticket.extension_days)
        at = base.at + timedelta(seconds=ticket.suspended_seconds or 0)
        return Due(at, base.provisional)
    base = cal.add_working_days(ticket.handle_started_at, limit.working_days + (ticket.extension_days or 0))
    if ticket.suspended_seconds:
        moved = cal.add_working_seconds(base.at, ticket.suspended_seconds)
        return Due(moved.at, base.provisional or moved.provisional)
    return base


def dispatch_deadlines(cal: WorkCalendar, wf: Workflow, ticket: Ticket, at: datetime) -> tuple[datetime, datetime]:
    """The sign-by and handle-by of a department dispatched the ticket at `at`: the limits
    from then (what its on-time signing and reply are judged by)."""
    sign = due(cal, at, wf.limits.sign.pick(ticket.type, ticket.urgency))
    return sign.at, due(cal, at, handle_limit(wf, ticket)).at


def community_deadlines(cal: WorkCalendar, wf: Workflow, ticket: Ticket, at: datetime) -> tuple[datetime, datetime]:
    """The sign-by and handle-by of a community the street office passed the ticket to at
    `at` (二级派单): its own limits from then, never later than the street's handle-by."""
    limits = wf.limits
    handle = due(cal, at, limits.sub_handle.pick(ticket.type, ticket.urgency)).at
    if ticket.handle_by is not None:
        handle = min(handle, ticket.handle_by)
    sign = due(cal, at, limits.sub_sign.pick(ticket.type, ticket.urgency)).at
    return min(sign, handle), handle


def part_deadline(part: Assignment) -> tuple[str, datetime] | None:
    """The running clock of a community's part of a ticket (an Assignment with the role `sub`):
    its sign-by until it has signed, then its handle-by until it has replied; None after."""
    if part.status == "dispatched" and part.sign_by is not None:
        return "sign", part.sign_by
    if part.status == "signed" and part.handle_by is not None:
        return "handle", part.handle_by
    return None


# A community's own ladder (二级派单): warned as its clock nears its end, then, once it has
# passed, its street office is told to urge it (the street is the community's supervisor; the
# centre's ladder runs on the street's own clock, never later than the community's).
COMMUNITY_LADDER = ("warn", "urge")
# A community's clocks as the escalation record names them, apart from the ticket's own.
COMMUNITY_KINDS = {"sign": "sub_sign", "handle": "sub_handle"}


def part_limit(wf: Workflow, ticket: Ticket, kind: str) -> Limit:
    """The limit behind a community's clock (`sign` or `handle`) for this ticket."""
    table = wf.limits.sub_sign if kind == "sign" else wf.limits.sub_handle
    return table.pick(ticket.type, ticket.urgency)


def part_step_time(cal: WorkCalendar, wf: Workflow, ticket: Ticket, part: Assignment) -> datetime | None:
    """When the next step of a community's ladder falls due on its running clock (None: no
    clock runs, or the ladder is done): its yellow time, then the deadline itself."""
    running = part_deadline(part)
    if running is None or part.escalation_step >= len(COMMUNITY_LADDER):
        return None
    kind, deadline = running
    if COMMUNITY_LADDER[part.escalation_step] == "urge":
        return deadline
    return warn_time(cal, wf, part_limit(wf, ticket, kind), deadline, min(part.dispatched_at, deadline))


def watch_part(cal: WorkCalendar, wf: Workflow, ticket: Ticket, part: Assignment) -> None:
    """Store when the scheduler next looks at a community's part of the ticket."""
    part.next_due_at = part_step_time(cal, wf, ticket, part)


def on_time(deadline: datetime | None, at: datetime) -> bool:
    """Whether something done at `at` met the deadline (none: on time)."""
    return deadline is None or at <= deadline


def _put(ticket: Ticket, name: str, value: object) -> None:
    # Most events leave most clocks as they were, and a write through the model costs ten
    # times a read (SQLModel sets it in SQLAlchemy and in pydantic): write only what moved.
    if getattr(ticket, name) != value:
        setattr(ticket, name, value)


def recompute(cal: WorkCalendar, wf: Workflow, ticket: Ticket) -> None:
    """Recompute every clock of the ticket from its inputs, and what the scheduler watches."""
    provisional = False
    if ticket.dispatched_at is not None:
        sign = due(cal, ticket.dispatched_at, wf.limits.sign.pick(ticket.type, ticket.urgency))
        _put(ticket, "sign_by", sign.at)
        provisional = sign.provisional
    handle = compute_handle_by(cal, wf, ticket)
    if handle is not None:
        _put(ticket, "handle_by", handle.at)
        provisional = provisional or handle.provisional
    if ticket.callback_started_at is not None:
        callback = due(cal, ticket.callback_started_at, wf.limits.callback)
        _put(ticket, "callback_by", callback.at)
        provisional = provisional or callback.provisional
    _put(ticket, "deadlines_provisional", provisional)
    refresh_watch(cal, wf, ticket)


def running_deadline(wf: Workflow, ticket: Ticket) -> tuple[str, datetime, datetime] | None:
    """The deadline the ticket's state makes count now: (kind, deadline, clock start)."""
    state = wf.states.get(ticket.state)
    if state is None or state.final or state.clock_stopped:
        return None
    for kind in state.deadlines:  # the workflow says which clocks run in which state
        if kind == "sign" and ticket.signed_at is None and ticket.sign_by is not None:
            return "sign", ticket.sign_by, ticket.dispatched_at
        if kind == "handle" and ticket.handle_by is not None:
            return "handle", ticket.handle_by, ticket.handle_started_at or ticket.dispatched_at
        if kind == "callback" and ticket.callback_by is not None:
            return "callback", ticket.callback_by, ticket.callback_started_at
    return None


def limit_of(wf: Workflow, ticket: Ticket, kind: str) -> Limit:
    """The limit behind a deadline kind for this ticket."""
    if kind == "sign":
        return wf.limits.sign.pick(ticket.type, ticket.urgency)
    if kind == "handle":
        return handle_limit(wf, ticket)
    return wf.limits.callback


def warn_time(cal: WorkCalendar, wf: Workflow, limit: Limit, deadline: datetime, start: datetime) -> datetime:
    """When a deadline turns yellow: a quarter of the limit, or one working day, is left (the less)."""
    w = wf.limits.warning
    return _warn_time(cal, is_natural(limit), w.fraction, w.max_working_days, deadline, start)


# Every event recomputes the ticket's clocks, and mostly finds the same deadline: remember
# the working-time arithmetic (a calendar never changes; a new one is a new key).
@lru_cache(maxsize=8192)
def _warn_time(
    cal: WorkCalendar, natural: bool, fraction: float, max_days: float, deadline: datetime, start: datetime
) -> datetime:
    if natural:
        lead = min((deadline - start).total_seconds() * fraction, max_days * 86400)
        return deadline - timedelta(seconds=lead)
    total = cal.working_seconds_between(start, deadline)
    lead = min(total * fraction, max_days * 86400)
    return min(cal.add_working_seconds(start, total - lead).at, deadline)


@lru_cache(maxsize=8192)
def _working_days_after(cal: WorkCalendar, at: datetime, days: float) -> datetime:
    return cal.add_working_seconds(at, days * 86400).at


def refresh_watch(cal: WorkCalendar, wf: Workflow, ticket: Ticket) -> None:
    """Store the running deadline, its yellow time, and the scheduler's next look.

    A new deadline (another kind, or a moved one) starts the ladder again.
    """
    running = running_deadline(wf, ticket)
    if running is None:
        for name in ("due_at", "due_kind", "warn_at", "next_due_at"):
            _put(ticket, name, None)
        return
    kind, deadline, start = running
    if (kind, deadline) != (ticket.due_kind, ticket.due_at):
        ticket.escalation_step = 0
        ticket.due_kind, ticket.due_at = kind, deadline
    _put(ticket, "warn_at", warn_time(cal, wf, limit_of(wf, ticket, kind), deadline, start or deadline))
    _put(ticket, "next_due_at", next_step_time(cal, wf, ticket))


def step_time(cal: WorkCalendar, wf: Workflow, ticket: Ticket, step: int) -> datetime:
    """When step number `step` of the ladder falls due for the ticket's current deadline."""
    name = LADDER[step]
    esc = wf.limits.escalation
    if name == "warn":
        return ticket.warn_at
    if name == "urge":
        return ticket.due_at
    days = esc.supervise_after_working_days if name == "supervise" else esc.report_after_working_days
    return _working_days_after(cal, ticket.due_at, days)


def wants_invitation(ticket: Ticket) -> bool:
    """Whether the scheduler still owes the citizen a rating link."""
    return bool(ticket.reply_wanted and ticket.caller_phone and ticket.invitation_sent_at is None)


def next_step_time(cal: WorkCalendar, wf: Workflow, ticket: Ticket) -> datetime | None:
    """When the scheduler must next act: the next ladder step of a department deadline;
    for the callback: the rating link to send, then the close when attempts ran out or
    the window passed."""
    if ticket.due_kind == "callback":
        if ticket.callbacks_exhausted_at is not None:
            return ticket.callbacks_exhausted_at
        if wants_invitation(ticket):
            return ticket.callback_started_at
        return ticket.callback_by
    if ticket.due_kind not in LADDER_KINDS or ticket.escalation_step >= len(LADDER):
        return None
    return step_time(cal, wf, ticket, ticket.escalation_step)


# Why the scheduler passes a warning over, as the history records it (the pages show it).
NOISE = "时限已过，不再发送预警"


def is_noise(step: str, ticket: Ticket, now: datetime) -> bool:
    """A warning once the deadline has passed would only be noise: the scheduler passes it over."""
    return step == "warn" and now >= ticket.due_at


@dataclass(frozen=True)
class Level:
    name: str  # green | yellow | red
    label: str


LEVELS = {"green": Level("green", "正常"), "yellow": Level("yellow", "预警"), "red": Level("red", "超期")}


def level(ticket: Ticket, now: datetime) -> Level | None:
    """The colour of the ticket's running deadline at `now`; None when no clock runs."""
    if ticket.due_at is None:
        return None
    if now >= ticket.due_at:
        return LEVELS["red"]
    if ticket.warn_at is not None and now >= ticket.warn_at:
        return LEVELS["yellow"]
    return LEVELS["green"]
