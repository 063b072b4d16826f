"""Daily running totals behind the performance indicators (绩效管理).

A month's indicators for every department must not be a scan of a month of assignments
and callbacks: at a million tickets that is seconds. So each count is kept per local day,
department and metric in `daily_totals`, and a period is a sum over a few thousand rows
(hotline.indicators.stats reads them).

How the totals stay right: a ticket's *contribution* is a pure function of its main
assignments and its callbacks (which day, department and metric each one counts for).
Whatever changes a ticket (the workflow gateway, an appeal decision, a deadline recomputed
after a holiday import) takes the contribution before and after the change, in the same
transaction and under the ticket's lock, and adds the difference. Nothing is counted by
hand at the place of the change, so no effect can forget a metric. `rebuild` computes
every total afresh with grouped queries (for bulk-loaded data, or to repair), and
`hotline stats check` compares the totals with the live counts over the facts.

What each metric counts, and on which day, is defined once in hotline.indicators.metrics,
as a Python predicate beside an SQL condition: `contribution` applies the predicates to one
ticket's rows, `counts_by_day` groups by the conditions. Two implementations of the same
definitions, held to each other by the tests.
"""

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import lru_cache

from sqlalchemy import Date, bindparam, cast, delete, func, select
from sqlmodel import Session

from hotline.db import dialect_insert
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.indicators import metrics
from hotline.indicators.periods import bounds
from hotline.models import Assignment, Callback, DailyTotal, Ticket

Key = tuple[date, int, str]
ALL_TIME = (datetime(1990, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


def local_day(at: datetime) -> date:
    return at.astimezone(LOCAL_TZ).date()


# Only the columns the predicates read (cheaper than loading the rows as objects; the
# session flushes pending changes first, so the rows are as this transaction has them).
_ASSIGNMENTS = select(*metrics.ASSIGNMENT_COLUMNS).where(Assignment.ticket_id == bindparam("ticket_id"))
_CALLBACKS = select(*metrics.CALLBACK_COLUMNS).where(Callback.ticket_id == bindparam("ticket_id"))


def contribution(session: Session, ticket: Ticket) -> Counter:
    """Everything one ticket counts for, from its rows as this session sees them."""
    counter: Counter = Counter()
    if ticket.id is None or not metrics.ticket_counts(ticket):
        return counter
    # By ticket alone, each on its ticket index: a condition on `role` here can lead a planner
    # without statistics to the role indexes, i.e. to every main assignment of the district.
    callbacks = session.execute(_CALLBACKS, {"ticket_id": ticket.id}).all()
    assignments = session.execute(_ASSIGNMENTS, {"ticket_id": ticket.id}).all()
    facts = metrics.TicketFacts(called_back=any(metrics.standing(cb) for cb in callbacks))
    rows = {Assignment: assignments, Callback: callbacks}
    for anchor, kept in metrics.KEPT_BY_ANCHOR.items():
        for row in rows[anchor.table]:
            if anchor.has(row):
                day, dept = local_day(anchor.instant(row)), row.department_id
                for metric in kept:
                    if metric.counts(row, facts):
                        counter[(day, dept, metric.name)] += 1
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
    stmt = dialect_insert(dialect)(table)
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


def _local_day(session: Session, column):
    """The local calendar day of a UTC timestamp, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(str(LOCAL_TZ), column), Date)
    # SQLite keeps UTC wall times; Asia/Shanghai has kept UTC+8 all year since 1991.
    hours = int(LOCAL_TZ.utcoffset(datetime(2000, 1, 1)).total_seconds() // 3600)
    return func.date(column, f"{hours:+d} hours")


def counts_by_day(session: Session, lo: datetime, hi: datetime) -> dict[Key, int]:
    """The totals recomputed from the facts in [lo, hi), one grouped query per anchor, every
    deadline counted whether passed or not: (day, department id, metric) -> n."""
    out: dict[Key, int] = {}
    for anchor, kept in metrics.KEPT_BY_ANCHOR.items():
        day = _local_day(session, anchor.at)
        stmt = (
            select(day, anchor.department, *[metrics.count(m.where) for m in kept])
            .where(anchor.rows(lo, hi, hi))
            .group_by(day, anchor.department)
        )
        for d, dept_id, *values in session.execute(stmt):
            d = d if isinstance(d, date) else date.fromisoformat(d)
            for metric, n in zip(kept, values, strict=True):
                if n:
                    out[(d, dept_id, metric.name)] = int(n)
    return out


def rebuild(session: Session, days: tuple[date, date] | None = None) -> int:
    """Recompute every total from the facts, or those of the local days [first, last] of
    `days` (a bulk load that touched only them); returns the number of rows written.

    Safe while the server runs: on PostgreSQL the table is locked for the rebuild (a
    change committed before is read, one after adds to the new totals); on SQLite the
    rebuild is one write transaction like any other."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        session.connection().exec_driver_sql("LOCK TABLE daily_totals IN EXCLUSIVE MODE")
    if days is None:
        session.execute(delete(DailyTotal))
        counts = counts_by_day(session, *ALL_TIME)
    else:
        # A day's totals count only the facts anchored on that day: the days are rebuilt alone.
        session.execute(delete(DailyTotal).where(DailyTotal.day >= days[0], DailyTotal.day <= days[1]))
        counts = counts_by_day(session, *bounds(*days))
    keys = sorted(counts)
    if postgresql:
        # COPY, in this transaction: psycopg's executemany sends one INSERT a row (a hundred
        # thousand rows for a district's two years took seconds of this process's CPU).
        with session.connection().connection.cursor() as cursor, cursor.copy(_COPY) as copy:
            for key in keys:
                copy.write_row((*key, counts[key]))
    else:
        rows = [{"day": d, "department_id": dept, "metric": m, "n": counts[d, dept, m]} for d, dept, m in keys]
        for chunk in _chunks(rows, 5_000):
            session.execute(DailyTotal.__table__.insert(), chunk)
    # The table was written anew: the planner's view of it too (the boards read it).
    session.connection().exec_driver_sql("ANALYZE daily_totals")
    return len(keys)


_COPY = "COPY daily_totals (day, department_id, metric, n) FROM STDIN"


def ensure(session: Session) -> int | None:
    """Build the totals if they are missing while there are facts to count (a database
    that predates them, or a bulk load); None when nothing had to be done."""
    if session.execute(select(DailyTotal.day).limit(1)).first() is not None:
        return None
    if session.execute(select(Assignment.id).where(metrics.MAIN).limit(1)).first() is None:
        return None
    return rebuild(session)
