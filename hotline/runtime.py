"""What the gateway, the API and the scheduler share in one process."""

import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from hotline.config import Settings
from hotline.db import Database, utcnow
from hotline.deadlines.calendar import WorkCalendar
from hotline.directory import District, district, places
from hotline.errors import TooManyRequests
from hotline.evaluation.messaging import channel_from_settings
from hotline.models import CalendarDay, CalendarYear
from hotline.workflow import rules  # noqa: F401  (registers the rules a workflow may name, before any is loaded)
from hotline.workflow.definition import WorkflowSet, workflow_set


class Runtime:
    """The database, the workflows, the working-day calendar and the district of this process."""

    # How long a process trusts its copy of the calendar, and of the district's settings,
    # before asking whether another process changed them.
    CALENDAR_RECHECK_SECONDS = 30.0
    # How long a process trusts its copy of the district's places for intake's check.
    PLACES_RECHECK_SECONDS = 10.0

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.workflows: WorkflowSet = workflow_set(str(settings.workflows_dir))
        self._calendar: WorkCalendar | None = None
        self._stamp: tuple | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._district: District | None = None
        self._district_read = 0.0
        self._district_changes = 0
        self._places: tuple[float, dict[str, list[str]]] | None = None
        # The clock of this process: read at the edges (a request, a sweep) and passed
        # down as `now`; tests replace it to run at fixed times.
        self.clock: Callable[[], datetime] = utcnow
        # API token digest -> (actor, until when to trust it); see hotline.api.deps.
        self.token_cache: dict[str, tuple] = {}
        # The years whose missing holidays the administrators were told of (scheduler.check_calendar).
        self.calendar_warned: set[int] = set()

    @property
    def login_throttle(self):
        """Failed sign-ins of this process (hotline.web.throttle)."""
        if getattr(self, "_login_throttle", None) is None:
            from hotline.web.throttle import LoginThrottle

            self._login_throttle = LoginThrottle()
        return self._login_throttle

    @property
    def rate_limiter(self) -> "RateLimiter":
        if getattr(self, "_limiter", None) is None:
            self._limiter = RateLimiter(self.settings.rate_limit_per_minute)
        return self._limiter

    @property
    def channel(self):
        """The message channel the settings name (hotline.evaluation.messaging)."""
        if getattr(self, "_channel", None) is None:
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

    def district(self, session: Session) -> District:
        """The district's name and codes as the database holds them, the name falling back to
        the setting (HOTLINE_DISTRICT_NAME) when the database holds none."""
        cached = self._district
        if cached is not None and time.monotonic() - self._district_read < self.CALENDAR_RECHECK_SECONDS:
            return cached
        changes = self._district_changes
        fresh = district(session, self.settings.district_name)
        with self._lock:
            # A read that began before a change this process made may hold the old values:
            # it is used, not kept.
            if changes == self._district_changes:
                self._district, self._district_read = fresh, time.monotonic()
        return fresh

    def places(self, session: Session, street: str | None, community: str | None) -> dict[str, list[str]]:
        """The district's places (hotline.directory.places) as this process read them a few
        seconds ago; read again when that copy is older, lists none, or lacks the street or the
        community asked about (another process may have added it a moment ago), so a place is
        refused only by what the database holds. Every intake checks its place: this spares it
        a read of the table."""
        cached = self._places
        if cached is not None and time.monotonic() - cached[0] < self.PLACES_RECHECK_SECONDS:
            known = cached[1]
            found = (not street or street in known) and (not community or community in known.get(street or "", ()))
            if known and found:
                return known
        fresh = places(session)
        self._places = (time.monotonic(), fresh)
        return fresh

    def invalidate_district(self) -> None:
        """Forget the cached district settings (after this process changed them)."""
        with self._lock:
            self._district = None
            self._district_changes += 1


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
                    zh=f"请求过于频繁，请 {max(1, round(wait))} 秒后再试",
                )
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > 10000:  # forget idle tokens
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 120}
