"""What the gateway, the API and the scheduler share in one process."""

import threading
import time
from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import func
from sqlmodel import Session, select

from hotline.config import Settings
from hotline.db import Database, utcnow
from hotline.deadlines.calendar import WorkCalendar
from hotline.indicators import totals
from hotline.models import Assignment, CalendarDay, CalendarYear, Ticket
from hotline.workflow.definition import WorkflowSet, workflow_set


class Runtime:
    """The database, the workflows and the working-day calendar of this process."""

    # How long a process trusts its copy of the calendar before asking whether
    # another process changed it.
    CALENDAR_RECHECK_SECONDS = 30.0

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.workflows: WorkflowSet = workflow_set(str(settings.workflows_dir))
        self._calendar: WorkCalendar | None = None
        self._stamp: tuple | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        # The clock of this process: read at the edges (a request, a sweep) and passed
        # down as `now`; tests replace it to run at fixed times.
        self.clock: Callable[[], datetime] = utcnow
        # API token digest -> (actor, until when to trust it); see hotline.api.deps.
        self.token_cache: dict[str, tuple] = {}

    @property
    def rate_limiter(self) -> "RateLimiter":
        if getattr(self, "_limiter", None) is None:
            self._limiter = RateLimiter(self.settings.rate_limit_per_minute)
        return self._limiter

    @property
    def channel(self):
        """The message channel the settings name (hotline.evaluation.messaging)."""
        if getattr(self, "_channel", None) is None:
            from hotline.evaluation.messaging import channel_from_settings

            self._channel = channel_from_settings(self.settings)
        return self._channel

    def now(self) -> datetime:
        """The current time as this process's clock tells it."""
        return self.clock()

    def calendar(self, session: Session) -> WorkCalendar:
        """The working-day calendar as the database holds it now."""
        if self._calendar is not None and time.monotonic() - self._checked < self.CALENDAR_RECHECK_SECONDS:
            return self._calendar
        stamp = tuple(session.exec(select(func.count(), func.max(CalendarYear.loaded_at))).one())
        with self._lock:
            if self._calendar is None or stamp != self._stamp:
                days = session.exec(select(CalendarDay.day, CalendarDay.working)).all()
                years = session.exec(select(CalendarYear.year)).all()
                self._calendar = WorkCalendar({d: w for d, w in days}, years)
                self._stamp = stamp
            self._checked = time.monotonic()
            return self._calendar

    def invalidate_calendar(self) -> None:
        """Forget the cached calendar (after this process changed it)."""
        with self._lock:
            self._calendar = None


class RateLimiter:
    """A token bucket per API token, in this process: `per_minute` requests a minute on
    average, bursts of up to a tenth of that (at least 20) at once."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(per_minute / 10.0, 20.0)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        """Count one request; raise TooManyRequests when the bucket is empty."""
        if self.rate <= 0:
            return
        from hotline.errors import TooManyRequests

        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                wait = (1 - tokens) / self.rate
                self._buckets[key] = (tokens, now)
                raise TooManyRequests(
                    f"too many requests for this token; try again in {wait:.1f} s",
                    retry_after=max(1, round(wait)),
                )
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > 10000:  # forget idle tokens
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 120}


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
    """Replace the holiday data of the given years (default: those the days fall in)."""
    years = sorted(set(years or []) | {d.year for d in overrides})
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
    for day, working in sorted(overrides.items()):
        session.add(CalendarDay(day=day, working=working, name=(names or {}).get(day)))
    session.flush()
    return years


def recompute_provisional(session: Session, runtime: Runtime) -> int:
    """Recompute the deadlines of open tickets that were computed without holiday data."""
    from hotline.deadlines.sla import recompute

    cal = runtime.calendar(session)
    count = 0
    for ticket in session.exec(select(Ticket).where(Ticket.deadlines_provisional).with_for_update()).all():
        wf = runtime.workflows.get(ticket.workflow)
        if wf.states[ticket.state].final:
            continue
        tracker = totals.Tracker(session, ticket)
        recompute(cal, wf, ticket)
        # The main department's handle-by, which on-time completion is judged by, moves too
        # (until the department has replied: then it was judged already).
        # By the ticket index alone (a condition on role can send the planner to the role indexes).
        assignments = session.exec(select(Assignment).where(Assignment.ticket_id == ticket.id)).all()
        main = next((a for a in assignments if a.role == "main" and a.status != "withdrawn"), None)
        if main is not None and main.first_replied_at is None and ticket.handle_by is not None:
            main.handle_by = ticket.handle_by
            session.add(main)
        session.add(ticket)
        tracker.done()
        count += 1
    session.flush()
    return count
