"""Daily running totals behind the performance indicators (绩效管理).

A month's indicators for every department must not be a scan of a month of assignments
and callbacks: at a million tickets that is seconds. So each count is kept per local day,
department and metric in `daily_totals`, and a period is a sum over a few thousand rows.

How the totals stay right: a ticket's *contribution* is a pure function of its main
assignments and its callbacks (which day, department and metric each one counts for).
Whatever changes a ticket (the workflow gateway, an appeal decision, a deadline recomputed
after a holiday import) takes the contribution before and after the change, in the same
transaction and under the ticket's lock, and adds the difference. Nothing is counted by
hand at the place of the change, so no effect can forget a metric. `rebuild` computes
every contribution afresh (for bulk-loaded data, or to repair), and `hotline stats check`
compares the totals with the plain GROUP BY over the facts.

Metrics, by the day they are counted on:
- the day of dispatch: dispatched, signed_on_time, returned
- the day of the handle-by deadline: due, completed_on_time (overdue = due - completed);
  a deadline is only due once it has passed, so the current day is counted live
- the day of the first reply: replied, rehandled, replied_called_back
- the day of the callback (reached, not overturned): called_back, solved, rated, rating_1..5
Tickets marked unreasonable contribute nothing.
"""

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, delete, func, not_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from hotline.deadlines.calendar import LOCAL_TZ
from hotline.models import Assignment, Callback, DailyTotal, Ticket

DISPATCH_METRICS = ("dispatched", "signed_on_time", "returned")
DUE_METRICS = ("due", "completed_on_time")
REPLY_METRICS = ("replied", "rehandled", "replied_called_back")
RATING_METRICS = tuple(f"rating_{level}" for level in range(1, 6))
CALLBACK_METRICS = ("called_back", "solved", "rated", *RATING_METRICS)

Key = tuple[date, int, str]
ALL_TIME = (datetime(1990, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


def local_day(at: datetime) -> date:
    return at.astimezone(LOCAL_TZ).date()


def add_assignment(counter: Counter, a: Any, called_back: bool) -> None:
    """What one main assignment counts for. `called_back`: the ticket has a reached,
    standing callback (whenever it was made)."""
    if a.role != "main":
        return
    dept = a.department_id
    day = local_day(a.dispatched_at)
    counter[(day, dept, "dispatched")] += 1
    if a.signed_on_time:
        counter[(day, dept, "signed_on_time")] += 1
    if a.returned:
        counter[(day, dept, "returned")] += 1
    if a.handle_by is not None and a.status != "withdrawn":
        day = local_day(a.handle_by)
        counter[(day, dept, "due")] += 1
        if a.replied_on_time:
            counter[(day, dept, "completed_on_time")] += 1
    if a.first_replied_at is not None:
        day = local_day(a.first_replied_at)
        counter[(day, dept, "replied")] += 1
        if a.rehandles:
            counter[(day, dept, "rehandled")] += 1
        if called_back:
            counter[(day, dept, "replied_called_back")] += 1


def counts_callback(cb: Any) -> bool:
    return bool(cb.reached) and not cb.overturned


def add_callback(counter: Counter, cb: Any) -> None:
    """What one callback counts for: reached, not overturned, with a rated department."""
    if not counts_callback(cb) or cb.department_id is None:
        return
    key = (local_day(cb.at), cb.department_id)
    counter[(*key, "called_back")] += 1
    if cb.solved is True:
        counter[(*key, "solved")] += 1
    if cb.rating is not None:
        counter[(*key, "rated")] += 1
        counter[(*key, f"rating_{cb.rating}")] += 1


# Only the columns the contributions read (cheaper than loading the rows as objects; the
# session flushes pending changes first, so the rows are as this transaction has them).
_ASSIGNMENTS = select(
    Assignment.role,
    Assignment.department_id,
    Assignment.status,
    Assignment.dispatched_at,
    Assignment.signed_on_time,
    Assignment.returned,
    Assignment.handle_by,
    Assignment.replied_on_time,
    Assignment.first_replied_at,
    Assignment.rehandles,
).where(Assignment.ticket_id == bindparam("ticket_id"))
_CALLBACKS = select(
    Callback.reached, Callback.overturned, Callback.department_id, Callback.at, Callback.solved, Callback.rating
).where(Callback.ticket_id == bindparam("ticket_id"))


def contribution(session: Session, ticket: Ticket) -> Counter:
    """Everything one ticket counts for, from its rows as this session sees them."""
    counter: Counter = Counter()
    if ticket.id is None or ticket.unreasonable:
        return counter
    # By ticket alone, each on its ticket index: a condition on `role` here can lead a planner
    # without statistics to the role indexes, i.e. to every main assignment of the district.
    callbacks = session.execute(_CALLBACKS, {"ticket_id": ticket.id}).all()
    assignments = session.execute(_ASSIGNMENTS, {"ticket_id": ticket.id}).all()
    called_back = any(counts_callback(cb) for cb in callbacks)
    for a in assignments:
        add_assignment(counter, a, called_back)  # counts main assignments only
    for cb in callbacks:
        add_callback(counter, cb)
    return counter


class Tracker:
    """Around a change of one ticket: `Tracker(session, ticket)` before, `.done()` after."""

    def __init__(self, session: Session, ticket: Ticket):
        self.session, self.ticket = session, ticket
        self.before = contribution(session, ticket)

    def done(self) -> None:
        after = contribution(self.session, self.ticket)
        delta = {k: after[k] - self.before[k] for k in after.keys() | self.before.keys()}
        add(self.session, {k: v for k, v in delta.items() if v})
        self.before = after


@lru_cache(maxsize=4)
def _upsert(dialect: str):
    """INSERT … ON CONFLICT DO UPDATE n = n + excluded.n, built once (compiled once)."""
    table = DailyTotal.__table__
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.day, table.c.department_id, table.c.metric],
        set_={"n": table.c.n + stmt.excluded.n},
    )


def add(session: Session, delta: dict[Key, int]) -> None:
    """Add to the totals. The rows are taken in key order, so two transactions touching
    the same rows lock them in the same order (no deadlock)."""
    if not delta:
        return
    rows = [{"day": d, "department_id": dept, "metric": m, "n": n} for (d, dept, m), n in sorted(delta.items())]
    session.execute(_upsert(session.get_bind().dialect.name), rows)


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def rebuild(session: Session) -> int:
    """Recompute every total from the facts; returns the number of rows written.

    The rows come from grouped queries with the conditions of the live counts
    (hotline.indicators.stats.live_counts_by_day), a second implementation of what `contribution`
    computes ticket by ticket: the tests hold the two to each other.

    Safe while the server runs: on PostgreSQL the table is locked for the rebuild (a
    change committed before is read, one after adds to the new totals); on SQLite the
    rebuild is one write transaction like any other."""
    from hotline.indicators.stats import live_counts_by_day

    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("LOCK TABLE daily_totals IN EXCLUSIVE MODE")
    session.execute(delete(DailyTotal))
    counts = live_counts_by_day(session, ALL_TIME[0], ALL_TIME[1])
    rows = [{"day": d, "department_id": dept, "metric": m, "n": n} for (d, dept, m), n in sorted(counts.items())]
    for chunk in _chunks(rows, 5_000):
        session.execute(DailyTotal.__table__.insert(), chunk)
    return len(rows)


def ensure(session: Session) -> int | None:
    """Build the totals if they are missing while there are facts to count (a database
    that predates them, or a bulk load); None when nothing had to be done."""
    if session.execute(select(DailyTotal.day).limit(1)).first() is not None:
        return None
    if session.execute(select(Assignment.id).where(Assignment.role == "main").limit(1)).first() is None:
        return None
    return rebuild(session)


def sums(session: Session, start: date, end: date, due_until: date) -> dict[int, dict[str, int]]:
    """The totals of [start, end] per department and metric; the due metrics only for
    days before `due_until` (a deadline on a later day has not passed yet)."""
    due = DailyTotal.metric.in_(DUE_METRICS)
    stmt = (
        select(DailyTotal.department_id, DailyTotal.metric, func.sum(DailyTotal.n))
        .where(DailyTotal.day >= start, DailyTotal.day <= end)
        .where(not_(due) | (DailyTotal.day < due_until))
        .group_by(DailyTotal.department_id, DailyTotal.metric)
    )
    out: dict[int, dict[str, int]] = {}
    for dept_id, metric, n in session.execute(stmt):
        out.setdefault(dept_id, {})[metric] = int(n or 0)
    return out
