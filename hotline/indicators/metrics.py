"""What each performance figure counts (绩效管理), defined once.

The figures count two kinds of rows: counted assignments (a department a ticket was dispatched
to as its main handler, or a community its street office passed the ticket to, 二级派单, each
counted for its own department) and callbacks. A row touches a period at an *anchor*, the instant it
is counted at; that instant's local day is its day in the running totals:

- dispatch: Assignment.dispatched_at, of every main assignment;
- due: Assignment.handle_by, of the main assignments with a deadline, not withdrawn; counted
  once the deadline has passed;
- reply: Assignment.first_replied_at, of the main assignments replied;
- callback: Callback.at, of the callbacks that reached the citizen, not overturned on appeal,
  with a department.

A *kept* metric is a condition on its anchor's rows, written twice side by side: as a Python
predicate, for one ticket's contribution to the running totals (hotline.indicators.totals), and
as an SQL condition, for the grouped queries (the rebuild of the totals, the live counts they
are checked against, the tickets behind a figure). The tests hold the two to each other.

A *figure* is what the pages, the exports and the API show: kept metrics added, less kept
metrics taken away (overdue = due - completed on time; satisfied = the ratings that count as
satisfied). A *rate* is a named pair of figures, numerator and denominator: the rate, the
fraction printed under it and the tickets behind it all come from that pair.

Tickets marked unreasonable (不合理诉求) count for nothing.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, case, exists, func, not_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from hotline.models import COUNTED_ROLES, Assignment, Callback, Ticket

# A row as the predicates read it: an Assignment or Callback, or a result row with at least
# the columns below.
Row = Any
ASSIGNMENT_COLUMNS = (
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
)
CALLBACK_COLUMNS = (
    Callback.reached,
    Callback.overturned,
    Callback.department_id,
    Callback.at,
    Callback.solved,
    Callback.rating,
)
RATING_LEVELS = range(1, 6)  # 1 非常不满意 .. 5 非常满意


# --- which tickets and rows count -------------------------------------------------------------


def ticket_counts(ticket: Ticket) -> bool:
    """Whether a ticket counts at all: not when marked an unreasonable request."""
    return not ticket.unreasonable


def excluded_tickets():
    """In SQL: the tickets that count for nothing. They are few: a set the database builds
    once, rather than a join with the tickets for every row counted."""
    return select(Ticket.id).where(Ticket.unreasonable).scalar_subquery()


def standing(cb: Row) -> bool:
    """A callback that reached the citizen and was not overturned on appeal."""
    return bool(cb.reached) and not cb.overturned


STANDING = and_(Callback.reached, not_(Callback.overturned))
# The assignments counted for their department (the main department's, a community's).
MAIN = Assignment.role.in_(COUNTED_ROLES)


def counted(a: Row) -> bool:
    """MAIN on one row."""
    return a.role in COUNTED_ROLES


@dataclass(frozen=True)
class TicketFacts:
    """What a row's predicate may know of its ticket beyond the row."""

    called_back: bool  # the ticket has a standing callback, whenever it was made


# The SQL of TicketFacts.called_back, on a main assignment's row.
CALLED_BACK = exists().where(Callback.ticket_id == Assignment.ticket_id, STANDING).correlate(Assignment)


# Compared by identity (eq=False): an SQL expression's == builds SQL, it does not compare.
@dataclass(frozen=True, eq=False)
class Anchor:
    """Where a row touches a period: the instant it is counted at, and which rows have one."""

    name: str
    table: type[Assignment] | type[Callback]
    at: Any  # the column of the instant
    department: Any  # the column of the department it counts for
    where: ColumnElement[bool]  # SQL: the rows that have this anchor
    has: Callable[[Row], bool]  # Python: the same, on one row
    passed_only: bool = False  # counted once the instant has passed (a deadline), not before

    def instant(self, row: Row) -> datetime:
        return getattr(row, self.at.key)

    def rows(self, lo: datetime, hi: datetime, now: datetime) -> ColumnElement[bool]:
        """SQL: the rows of this anchor in [lo, hi) (a deadline: up to `now`), of the tickets that count."""
        until = min(hi, now) if self.passed_only else hi
        return and_(self.where, self.at >= lo, self.at < until, self.table.ticket_id.not_in(excluded_tickets()))


DISPATCH = Anchor(
    "dispatch",
    Assignment,
    Assignment.dispatched_at,
    Assignment.department_id,
    MAIN,
    counted,
)
DUE = Anchor(
    "due",
    Assignment,
    Assignment.handle_by,
    Assignment.department_id,
    and_(MAIN, Assignment.status != "withdrawn"),
    lambda a: counted(a) and a.handle_by is not None and a.status != "withdrawn",
    passed_only=True,
)
REPLY = Anchor(
    "reply",
    Assignment,
    Assignment.first_replied_at,
    Assignment.department_id,
    MAIN,
    lambda a: counted(a) and a.first_replied_at is not None,
)
CALLBACK = Anchor(
    "callback",
    Callback,
    Callback.at,
    Callback.department_id,
    and_(STANDING, Callback.department_id.is_not(None)),
    lambda cb: standing(cb) and cb.department_id is not None,
)
ANCHORS = (DISPATCH, DUE, REPLY, CALLBACK)


# --- the metrics kept per day and department ------------------------------------------------------


def _every(row: Row, ticket: TicketFacts) -> bool:
    return True


@dataclass(frozen=True, eq=False)
class Metric:
    """A count kept per local day and department in the running totals."""

    name: str
    anchor: Anchor
    where: ColumnElement[bool] | None = None  # SQL, on the anchor's rows; None: every one
    counts: Callable[[Row, TicketFacts], bool] = _every  # Python: the same, on one row


def _rating(level: int) -> Metric:
    return Metric(f"rating_{level}", CALLBACK, Callback.rating == level, lambda cb, t: cb.rating == level)


KEPT = (
    Metric("dispatched", DISPATCH),
    Metric("signed_on_time", DISPATCH, Assignment.signed_on_time.is_(True), lambda a, t: bool(a.signed_on_time)),
    Metric("returned", DISPATCH, Assignment.returned.is_(True), lambda a, t: bool(a.returned)),
    Metric("due", DUE),
    Metric("completed_on_time", DUE, Assignment.replied_on_time.is_(True), lambda a, t: bool(a.replied_on_time)),
    Metric("replied", REPLY),
    Metric("rehandled", REPLY, Assignment.rehandles > 0, lambda a, t: a.rehandles > 0),
    # Of the assignments replied on the day, those whose citizen has been reached since.
    Metric("replied_called_back", REPLY, CALLED_BACK, lambda a, t: t.called_back),
    Metric("called_back", CALLBACK),
    Metric("solved", CALLBACK, Callback.solved.is_(True), lambda cb, t: cb.solved is True),
    Metric("rated", CALLBACK, Callback.rating.is_not(None), lambda cb, t: cb.rating is not None),
    *(_rating(level) for level in RATING_LEVELS),
)
KEPT_BY_NAME = {m.name: m for m in KEPT}
KEPT_BY_ANCHOR = {anchor: tuple(m for m in KEPT if m.anchor is anchor) for anchor in ANCHORS}


def count(where: ColumnElement[bool] | None):
    """In SQL: how many rows of a group meet the condition."""
    return func.count() if where is None else func.sum(case((where, 1), else_=0))


# --- the figures shown, and the rates -------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Figure:
    """A count the pages show: the kept metrics `plus` added, less the kept metrics `minus`
    (each of which counts only rows that one of `plus` counts)."""

    name: str
    label: str
    plus: tuple[Metric, ...]
    minus: tuple[Metric, ...] = ()

    @property
    def anchor(self) -> Anchor:
        return self.plus[0].anchor

    @property
    def where(self) -> ColumnElement[bool] | None:
        """SQL: the rows it counts, of its anchor's; None: every one."""
        added = [m.where for m in self.plus]
        condition = None if any(w is None for w in added) else or_(*added)
        if not self.minus:
            return condition
        taken = not_(or_(*[m.where for m in self.minus]))
        return taken if condition is None else and_(condition, taken)

    def of(self, kept: Mapping[str, int]) -> int:
        """The figure from the sums of the kept metrics."""
        n = 0
        for m in self.plus:
            n += kept.get(m.name, 0)
        for m in self.minus:
            n -= kept.get(m.name, 0)
        return n


def _shown(name: str, label: str) -> Figure:
    return Figure(name, label, (KEPT_BY_NAME[name],))


def satisfied_from(basic_satisfied_counts: bool) -> int:
    """The lowest rating that counts as satisfied: 基本满意 (3) or 满意 (4)."""
    return 3 if basic_satisfied_counts else 4


@lru_cache(maxsize=2)
def figures(basic_satisfied_counts: bool) -> dict[str, Figure]:
    """The figures by name; whether 基本满意 counts as satisfied is configured."""
    k = KEPT_BY_NAME
    levels = range(satisfied_from(basic_satisfied_counts), RATING_LEVELS.stop)
    satisfied = tuple(k[f"rating_{level}"] for level in levels)
    shown = (
        _shown("dispatched", "派单"),
        _shown("signed_on_time", "及时签收"),
        _shown("returned", "退单"),
        _shown("due", "应办结"),
        _shown("completed_on_time", "按时办结"),
        Figure("overdue", "超期", (k["due"],), (k["completed_on_time"],)),
        _shown("replied", "已答复"),
        _shown("rehandled", "重办"),
        _shown("replied_called_back", "答复后已回访"),
        _shown("called_back", "已回访"),
        _shown("solved", "已解决"),
        _shown("rated", "已评价"),
        Figure("satisfied", "满意", satisfied),
    )
    return {f.name: f for f in shown}


FIGURES = tuple(figures(True))  # the names, in the order the pages list them
FIGURE_LABELS = {f.name: f.label for f in figures(True).values()}


@dataclass(frozen=True)
class Rate:
    """An indicator: one figure divided by another."""

    name: str
    label: str
    numerator: str  # a figure
    denominator: str  # a figure
    lower_is_better: bool = False

    def of(self, counts: Mapping[str, int]) -> float | None:
        """The rate from the figures, unrounded (the pages round it once, as they show it);
        None when the denominator is nothing."""
        denominator = counts[self.denominator]
        return counts[self.numerator] / denominator if denominator else None


RATES = (
    Rate("signed_on_time_rate", "及时签收率", "signed_on_time", "dispatched"),
    Rate("completed_on_time_rate", "按时办结率", "completed_on_time", "due"),
    Rate("return_rate", "退单率", "returned", "dispatched", lower_is_better=True),
    # Of the tickets replied in the period, those whose citizen was reached.
    Rate("callback_rate", "回访率", "replied_called_back", "replied"),
    Rate("resolution_rate", "解决率", "solved", "called_back"),
    Rate("satisfaction_rate", "满意率", "satisfied", "rated"),
    Rate("rehandle_rate", "重办率", "rehandled", "replied", lower_is_better=True),
    Rate("overdue_rate", "超期率", "overdue", "due", lower_is_better=True),
)
RATES_BY_NAME = {r.name: r for r in RATES}
# The rates of a community's part (二级派单): the callbacks and ratings are its street office's.
COMMUNITY_RATES = ("signed_on_time_rate", "completed_on_time_rate", "return_rate", "overdue_rate")
