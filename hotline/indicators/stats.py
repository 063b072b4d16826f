"""Performance indicators (绩效管理) per department and period, the score and the ranking.

The gateway keeps the facts on each main assignment as they happen (signed on time,
returned, handle-by, first reply and whether it was on time, rehandlings) and on each
callback (department, reached, solved, rating, overturned). The indicators are read from
the daily running totals the gateway keeps from those facts (hotline.indicators.totals): a month for
every department is a sum over a few thousand rows. The same counts as one GROUP BY over
the facts (`live_department_counts`) are the reference the totals are checked against
(`hotline stats check`, the tests) and the definition of the tickets behind each figure.
Tickets marked unreasonable (不合理诉求) and ratings overturned on appeal leave the
numerators and the denominators.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Date, and_, case, cast, exists, func, not_, select
from sqlmodel import Session

from hotline.deadlines.calendar import LOCAL_TZ
from hotline.indicators import totals
from hotline.models import Assignment, Callback, Department, Ticket

RATES = (
    "signed_on_time_rate",
    "completed_on_time_rate",
    "return_rate",
    "callback_rate",
    "resolution_rate",
    "satisfaction_rate",
    "rehandle_rate",
    "overdue_rate",
)


class Weights(BaseModel):
    model_config = ConfigDict(extra="forbid")
    response: float = 30
    resolution: float = 35
    satisfaction: float = 35


class Performance(BaseModel):
    """workflows/performance.yaml."""

    model_config = ConfigDict(extra="forbid")
    weights: Weights = Weights()
    basic_satisfied_counts: bool = True
    list_size: int = 5
    min_tickets_to_rank: int = 5


@lru_cache(maxsize=4)
def performance_config(workflows_dir: str) -> Performance:
    path = Path(workflows_dir) / "performance.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    return Performance.model_validate(data or {})


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start, end] as local days, as UTC instants [from, to)."""
    return (
        datetime.combine(start, time(0), LOCAL_TZ),
        datetime.combine(end + timedelta(days=1), time(0), LOCAL_TZ),
    )


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


@dataclass
class Counts:
    dispatched: int = 0
    signed_on_time: int = 0
    returned: int = 0
    due: int = 0
    completed_on_time: int = 0
    overdue: int = 0
    replied: int = 0
    rehandled: int = 0
    replied_called_back: int = 0
    called_back: int = 0  # callbacks that reached the citizen (回访件次)
    solved: int = 0
    rated: int = 0
    satisfied: int = 0


# What each count means, as a condition on the main assignments or the callbacks: the
# same definitions serve the figures and the lists of tickets behind them.
def _main_assignment_base():
    return and_(Assignment.role == "main", not_(Ticket.unreasonable))


def assignment_metric(metric: str, lo: datetime, hi: datetime, now: datetime):
    """The condition behind an assignment-based count."""
    dispatched = and_(Assignment.dispatched_at >= lo, Assignment.dispatched_at < hi)
    due = and_(
        Assignment.status != "withdrawn",
        Assignment.handle_by >= lo,
        Assignment.handle_by < min(hi, now),
    )
    replied = and_(Assignment.first_replied_at >= lo, Assignment.first_replied_at < hi)
    conditions = {
        "dispatched": dispatched,
        "signed_on_time": and_(dispatched, Assignment.signed_on_time.is_(True)),
        "returned": and_(dispatched, Assignment.returned.is_(True)),
        "due": due,
        "completed_on_time": and_(due, Assignment.replied_on_time.is_(True)),
        "overdue": and_(due, not_(func.coalesce(Assignment.replied_on_time, False))),
        "replied": replied,
        "rehandled": and_(replied, Assignment.rehandles > 0),
        # Of the tickets replied in the period, those whose citizen was reached since.
        "replied_called_back": and_(
            replied,
            exists()
            .where(Callback.ticket_id == Assignment.ticket_id, Callback.reached, not_(Callback.overturned))
            .correlate(Assignment),
        ),
    }
    return conditions[metric]


def callback_metric(metric: str, lo: datetime, hi: datetime, satisfied_from: int):
    base = and_(Callback.at >= lo, Callback.at < hi, Callback.reached, not_(Callback.overturned))
    conditions = {
        "called_back": base,
        "solved": and_(base, Callback.solved.is_(True)),
        "rated": and_(base, Callback.rating.is_not(None)),
        "satisfied": and_(base, Callback.rating >= satisfied_from),
    }
    return conditions[metric]


ASSIGNMENT_METRICS = (
    "dispatched",
    "signed_on_time",
    "returned",
    "due",
    "completed_on_time",
    "overdue",
    "replied",
    "rehandled",
    "replied_called_back",
)
CALLBACK_METRICS = ("called_back", "solved", "rated", "satisfied")


def _count(condition):
    return func.sum(case((condition, 1), else_=0))


def live_department_counts(
    session: Session, lo: datetime, hi: datetime, now: datetime, config: Performance
) -> dict[int, Counts]:
    """The counts behind the indicators, per department, in four grouped queries over the
    facts: the reference for the running totals."""
    counts: dict[int, Counts] = {}
    # One query per way an assignment touches the period, each on its own index.
    groups = {
        "dispatched": ("dispatched", "signed_on_time", "returned"),
        "due": ("due", "completed_on_time", "overdue"),
        "replied": ("replied", "rehandled", "replied_called_back"),
    }
    for anchor, metrics in groups.items():
        for dept_id, values in _assignment_group(session, anchor, metrics, lo, hi, now).items():
            c = counts.setdefault(dept_id, Counts())
            for name, value in zip(metrics, values, strict=True):
                setattr(c, name, value)
    satisfied_from = 3 if config.basic_satisfied_counts else 4
    base = callback_metric("called_back", lo, hi, satisfied_from)
    stmt = (
        select(
            Callback.department_id,
            func.count(),
            _count(Callback.solved.is_(True)),
            _count(Callback.rating.is_not(None)),
            _count(Callback.rating >= satisfied_from),
        )
        .where(base, Callback.department_id.is_not(None), Callback.ticket_id.not_in(_excluded()))
        .group_by(Callback.department_id)
    )
    for dept_id, called_back, solved, rated, satisfied in session.execute(stmt):
        c = counts.setdefault(dept_id, Counts())
        c.called_back, c.solved = int(called_back), int(solved or 0)
        c.rated, c.satisfied = int(rated or 0), int(satisfied or 0)
    return counts


def _local_day(session: Session, column):
    """The local calendar day of a UTC timestamp, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(str(LOCAL_TZ), column), Date)
    # SQLite keeps UTC wall times; Asia/Shanghai has kept UTC+8 all year since 1991.
    hours = int(LOCAL_TZ.utcoffset(datetime(2000, 1, 1)).total_seconds() // 3600)
    return func.date(column, f"{hours:+d} hours")


def live_counts_by_day(session: Session, lo: datetime, hi: datetime) -> dict[tuple[date, int, str], int]:
    """The running totals recomputed from the facts in [lo, hi), with the conditions of the
    live counts grouped by local day, every deadline counted whether passed or not:
    (day, department id, metric) -> n. What `hotline stats rebuild` writes."""
    out: dict[tuple[date, int, str], int] = {}

    def put(day, dept_id, metric, n):
        if n:
            out[(day if isinstance(day, date) else date.fromisoformat(day), dept_id, metric)] = int(n)

    anchors = {
        "dispatched": (Assignment.dispatched_at, totals.DISPATCH_METRICS),
        "due": (Assignment.handle_by, totals.DUE_METRICS),
        "replied": (Assignment.first_replied_at, totals.REPLY_METRICS),
    }
    for anchor, (column, metrics) in anchors.items():
        day = _local_day(session, column)
        stmt = (
            select(day, Assignment.department_id, *[_count(assignment_metric(m, lo, hi, hi)) for m in metrics])
            .where(Assignment.role == "main", assignment_metric(anchor, lo, hi, hi))
            .where(Assignment.ticket_id.not_in(_excluded()))
            .group_by(day, Assignment.department_id)
        )
        for d, dept_id, *values in session.execute(stmt):
            for metric, n in zip(metrics, values, strict=True):
                put(d, dept_id, metric, n)
    day = _local_day(session, Callback.at)
    ratings = [_count(Callback.rating == level) for level in range(1, 6)]
    stmt = (
        select(day, Callback.department_id, func.count(), _count(Callback.solved.is_(True)), *ratings)
        .where(callback_metric("called_back", lo, hi, 3), Callback.department_id.is_not(None))
        .where(Callback.ticket_id.not_in(_excluded()))
        .group_by(day, Callback.department_id)
    )
    for d, dept_id, called_back, solved, *levels in session.execute(stmt):
        put(d, dept_id, "called_back", called_back)
        put(d, dept_id, "solved", solved)
        put(d, dept_id, "rated", sum(int(n or 0) for n in levels))
        for metric, n in zip(totals.RATING_METRICS, levels, strict=True):
            put(d, dept_id, metric, n)
    return out


def department_counts(
    session: Session, start: date, end: date, now: datetime, config: Performance
) -> dict[int, Counts]:
    """The counts behind the indicators for the local days [start, end], per department,
    from the running totals. A deadline only counts as due once it has passed, so deadlines
    falling today are counted live from the facts (an indexed range of today's deadlines)."""
    today = now.astimezone(LOCAL_TZ).date()
    satisfied_from = 3 if config.basic_satisfied_counts else 4
    counts: dict[int, Counts] = {}
    for dept_id, sums in totals.sums(session, start, end, due_until=today).items():
        c = counts.setdefault(dept_id, Counts())
        for name in (*totals.DISPATCH_METRICS, *totals.DUE_METRICS, *totals.REPLY_METRICS, "called_back", "solved"):
            setattr(c, name, sums.get(name, 0))
        c.rated = sums.get("rated", 0)
        c.satisfied = sum(sums.get(f"rating_{level}", 0) for level in range(satisfied_from, 6))
        c.overdue = c.due - c.completed_on_time
    if start <= today <= end:
        lo, hi = period_bounds(today, today)
        metrics = ("due", "completed_on_time", "overdue")
        for dept_id, values in _assignment_group(session, "due", metrics, lo, hi, now).items():
            c = counts.setdefault(dept_id, Counts())
            for name, value in zip(metrics, values, strict=True):
                setattr(c, name, getattr(c, name) + value)
    return counts


def _excluded():
    # Tickets marked unreasonable are few: a set the database builds once, rather than a
    # join with the tickets for every assignment counted.
    return select(Ticket.id).where(Ticket.unreasonable).scalar_subquery()


def _assignment_group(
    session: Session, anchor: str, metrics: tuple[str, ...], lo: datetime, hi: datetime, now: datetime
) -> dict[int, list[int]]:
    """Counts of main assignments touching [lo, hi) by `anchor`, per department."""
    stmt = (
        select(Assignment.department_id, *[_count(assignment_metric(m, lo, hi, now)) for m in metrics])
        .where(
            Assignment.role == "main", assignment_metric(anchor, lo, hi, now), Assignment.ticket_id.not_in(_excluded())
        )
        .group_by(Assignment.department_id)
    )
    return {dept_id: [int(v or 0) for v in values] for dept_id, *values in session.execute(stmt)}


def indicators(c: Counts, config: Performance) -> dict[str, Any]:
    """The rates of docs/indicators.md and the composite score (0..100) from the counts."""
    rates = {
        "signed_on_time_rate": _rate(c.signed_on_time, c.dispatched),
        "completed_on_time_rate": _rate(c.completed_on_time, c.due),
        "return_rate": _rate(c.returned, c.dispatched),
        "callback_rate": _rate(c.replied_called_back, c.replied),
        "resolution_rate": _rate(c.solved, c.called_back),
        "satisfaction_rate": _rate(c.satisfied, c.rated),
        "rehandle_rate": _rate(c.rehandled, c.replied),
        "overdue_rate": _rate(c.overdue, c.due),
    }
    response_parts = [r for r in (rates["signed_on_time_rate"], rates["completed_on_time_rate"]) if r is not None]
    parts = {
        "response": sum(response_parts) / len(response_parts) if response_parts else None,
        "resolution": rates["resolution_rate"],
        "satisfaction": rates["satisfaction_rate"],
    }
    weights = config.weights.model_dump()
    present = {k: v for k, v in parts.items() if v is not None}
    total_weight = sum(weights[k] for k in present)
    score = round(100 * sum(weights[k] * v for k, v in present.items()) / total_weight, 2) if total_weight else None
    return {**rates, "score": score}


def department_stats(session: Session, runtime, start: date, end: date) -> dict[str, Any]:
    """Every active department's counts, rates and score for [start, end], ranked."""
    config = performance_config(str(runtime.settings.workflows_dir))
    counts = department_counts(session, start, end, runtime.now(), config)
    rows = []
    for dept in session.exec(select(Department).order_by(Department.code)).scalars():
        c = counts.get(dept.id, Counts())
        if not dept.active and dept.id not in counts:
            continue
        rows.append({"department": dept.code, "department_name": dept.name, **c.__dict__, **indicators(c, config)})
    ranked = [r for r in rows if r["score"] is not None and r["dispatched"] >= config.min_tickets_to_rank]
    ranked.sort(key=lambda r: (-r["score"], r["department"]))
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
    n = config.list_size
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "basic_satisfied_counts": config.basic_satisfied_counts,
        "weights": config.weights.model_dump(),
        "departments": rows,
        "red_list": [r["department"] for r in ranked[:n]],
        "black_list": [r["department"] for r in ranked[::-1][:n]] if len(ranked) > n else [],
    }


def tickets_behind(
    session: Session, runtime, dept: Department, metric: str, start: date, end: date, limit: int = 500
) -> list[tuple[int, str]]:
    """The tickets behind one figure of one department: (id, number), newest first."""
    config = performance_config(str(runtime.settings.workflows_dir))
    lo, hi = period_bounds(start, end)
    if metric in ASSIGNMENT_METRICS:
        stmt = (
            select(Ticket.id, Ticket.number)
            .join(Assignment, Assignment.ticket_id == Ticket.id)
            .where(
                _main_assignment_base(),
                Assignment.department_id == dept.id,
                assignment_metric(metric, lo, hi, runtime.now()),
            )
        )
    elif metric in CALLBACK_METRICS:
        satisfied_from = 3 if config.basic_satisfied_counts else 4
        stmt = (
            select(Ticket.id, Ticket.number)
            .join(Callback, Callback.ticket_id == Ticket.id)
            .where(
                Callback.department_id == dept.id,
                not_(Ticket.unreasonable),
                callback_metric(metric, lo, hi, satisfied_from),
            )
        )
    else:
        raise ValueError(metric)
    return [(i, n) for i, n in session.execute(stmt.distinct().order_by(Ticket.id.desc()).limit(limit))]


def check_totals(session: Session, runtime, start: date, end: date) -> list[tuple[str, str, int, int]]:
    """Where the running totals differ from the facts over [start, end], day by day:
    (department code, metric on day, from the totals, from the facts)."""
    config = performance_config(str(runtime.settings.workflows_dir))
    now = runtime.now()
    codes = dict(session.execute(select(Department.id, Department.code)).all())
    out = []
    day = start
    while day <= end:
        lo, hi = period_bounds(day, day)
        kept = department_counts(session, day, day, now, config)
        live = live_department_counts(session, lo, hi, now, config)
        for dept_id in sorted(kept.keys() | live.keys()):
            a, b = kept.get(dept_id, Counts()), live.get(dept_id, Counts())
            for name, value in a.__dict__.items():
                if value != getattr(b, name):
                    out.append((codes.get(dept_id, str(dept_id)), f"{name} on {day}", value, getattr(b, name)))
        day += timedelta(days=1)
    return out
