"""Performance indicators (绩效管理) per department and period, the score and the ranking.

The gateway keeps the facts on each main assignment as they happen (signed on time,
returned, handle-by, first reply and whether it was on time, rehandlings) and on each
callback (department, reached, solved, rating, overturned), and the daily running totals
of them (hotline.indicators.totals). The indicators are read from those totals: a month for
every department is a sum over a few thousand rows. The same figures as grouped queries over
the facts (`live_department_counts`) are the reference the totals are checked against
(`hotline stats check`, the tests), and the tickets behind each figure are listed with the
same conditions. What each figure and rate counts is defined in hotline.indicators.metrics.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, not_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from hotline.indicators import metrics
from hotline.indicators.periods import bounds, local_today
from hotline.models import DailyTotal, Department, Ticket
from hotline.workflow.lines import Lines

# The condition on a row's ticket_id column that its ticket is of one line (line_tickets).
OfLine = Callable[[Any], ColumnElement[bool]]


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


@dataclass
class Counts:
    """The figures of one department and period (hotline.indicators.metrics.FIGURES)."""

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


def _by_anchor(config: Performance) -> dict[metrics.Anchor, list[metrics.Figure]]:
    out: dict[metrics.Anchor, list[metrics.Figure]] = {}
    for figure in metrics.figures(config.basic_satisfied_counts).values():
        out.setdefault(figure.anchor, []).append(figure)
    return out


def _live(
    session: Session,
    anchor: metrics.Anchor,
    shown: list[metrics.Figure],
    lo: datetime,
    hi: datetime,
    now: datetime,
    of_line: OfLine | None = None,
) -> dict[int, list[int]]:
    """The figures of one anchor over the facts in [lo, hi), per department: one grouped query
    (`of_line`: of one line's tickets only, see line_tickets)."""
    stmt = (
        select(anchor.department, *[metrics.count(f.where) for f in shown])
        .where(anchor.rows(lo, hi, now))
        .group_by(anchor.department)
    )
    if of_line is not None:
        stmt = stmt.where(of_line(anchor.table.ticket_id))
    return {dept_id: [int(v or 0) for v in values] for dept_id, *values in session.execute(stmt)}


def line_tickets(lines: Lines, number: str) -> OfLine | None:
    """The condition that a row's ticket (its ticket_id column) is of line `number` (一个号码);
    None: every ticket is. A merged line's tickets are few: IN their ids, found by the line's
    index. The default line's are most: NOT IN the merged lines' (a ticket of a number no
    longer configured counts for the default line, as a call to one does)."""
    if number != lines.default.number:
        own = select(Ticket.id).where(Ticket.line == number)
        return lambda ticket_id: ticket_id.in_(own)
    merged = [x.number for x in lines.all if x is not lines.default]
    if not merged:
        return None
    others = select(Ticket.id).where(Ticket.line.in_(merged))
    return lambda ticket_id: ticket_id.not_in(others)


def live_department_counts(
    session: Session, lo: datetime, hi: datetime, now: datetime, config: Performance, of_line: OfLine | None = None
) -> dict[int, Counts]:
    """The figures per department over the facts in [lo, hi), one grouped query per anchor:
    the reference for the running totals, and the figures of one line (`of_line`)."""
    counts: dict[int, Counts] = {}
    for anchor, shown in _by_anchor(config).items():
        for dept_id, values in _live(session, anchor, shown, lo, hi, now, of_line).items():
            c = counts.setdefault(dept_id, Counts())
            for figure, value in zip(shown, values, strict=True):
                setattr(c, figure.name, value)
    return counts


def _kept_sums(session: Session, start: date, end: date, due_until: date) -> dict[int, dict[str, int]]:
    """The running totals of [start, end] per department and metric; the metrics of a
    deadline only for days before `due_until` (a deadline on a later day has not passed)."""
    deadlines = [m.name for m in metrics.KEPT if m.anchor.passed_only]
    stmt = (
        select(DailyTotal.department_id, DailyTotal.metric, func.sum(DailyTotal.n))
        .where(DailyTotal.day >= start, DailyTotal.day <= end)
        .where(not_(DailyTotal.metric.in_(deadlines)) | (DailyTotal.day < due_until))
        .group_by(DailyTotal.department_id, DailyTotal.metric)
    )
    out: dict[int, dict[str, int]] = {}
    for dept_id, metric, n in session.execute(stmt):
        out.setdefault(dept_id, {})[metric] = int(n or 0)
    return out


def department_counts(
    session: Session, start: date, end: date, now: datetime, config: Performance
) -> dict[int, Counts]:
    """The figures for the local days [start, end], per department, from the running
    totals. A deadline only counts once it has passed, so deadlines falling today are
    counted live from the facts (an indexed range of today's deadlines)."""
    today = local_today(now)
    shown = metrics.figures(config.basic_satisfied_counts).values()
    counts: dict[int, Counts] = {}
    for dept_id, sums in _kept_sums(session, start, end, due_until=today).items():
        counts[dept_id] = Counts(**{figure.name: figure.of(sums) for figure in shown})
    if start <= today <= end:
        lo, hi = bounds(today, today)
        for anchor, figures in _by_anchor(config).items():
            if not anchor.passed_only:
                continue
            for dept_id, values in _live(session, anchor, figures, lo, hi, now).items():
                c = counts.setdefault(dept_id, Counts())
                for figure, value in zip(figures, values, strict=True):
                    setattr(c, figure.name, getattr(c, figure.name) + value)
    return counts


def indicators(c: Counts, config: Performance) -> dict[str, Any]:
    """The rates (docs/indicators.md, hotline.indicators.metrics) and the composite score (0..100).

    The rates are exact; the score is worked out from them to four places, as the API gives
    them, so that anyone can work it out again."""
    rates = {rate.name: rate.of(c.__dict__) for rate in metrics.RATES}
    given = {name: to_four_places(value) for name, value in rates.items()}
    response_parts = [r for r in (given["signed_on_time_rate"], given["completed_on_time_rate"]) if r is not None]
    parts = {
        "response": sum(response_parts) / len(response_parts) if response_parts else None,
        "resolution": given["resolution_rate"],
        "satisfaction": given["satisfaction_rate"],
    }
    weights = config.weights.model_dump()
    present = {k: v for k, v in parts.items() if v is not None}
    total_weight = sum(weights[k] for k in present)
    score = round(100 * sum(weights[k] * v for k, v in present.items()) / total_weight, 2) if total_weight else None
    return {**rates, "score": score}


def to_four_places(rate: float | None) -> float | None:
    return round(rate, 4) if rate is not None else None


def department_stats(session: Session, runtime, start: date, end: date, line: str | None = None) -> dict[str, Any]:
    """Every active department's counts, rates and score for [start, end], ranked; and apart,
    unranked, the communities' (二级派单: the part their street office passed them).

    `line`: of one hotline's tickets only (一个号码), counted live from the facts (the running
    totals are not kept per line): a merged line's few tickets cost little; the default line's
    cost what the live reference does."""
    config = performance_config(str(runtime.settings.workflows_dir))
    of_line = None
    if line:
        lines = runtime.workflows.lines
        of_line = line_tickets(lines, lines.named(line).number)
    if of_line is not None:
        counts = live_department_counts(session, *bounds(start, end), runtime.now(), config, of_line)
    else:
        counts = department_counts(session, start, end, runtime.now(), config)
    rows, communities = [], []
    departments = session.exec(select(Department).order_by(Department.code)).scalars().all()
    codes = {d.id: d.code for d in departments}
    for dept in departments:
        c = counts.get(dept.id, Counts())
        if not dept.active and dept.id not in counts:
            continue
        row = {"department": dept.code, "department_name": dept.name, **c.__dict__, **indicators(c, config)}
        if dept.parent_id is None:
            rows.append(row)
        else:
            communities.append({**row, "parent": codes.get(dept.parent_id)})
    ranked = [r for r in rows if r["score"] is not None and r["dispatched"] >= config.min_tickets_to_rank]
    ranked.sort(key=lambda r: (-r["score"], r["department"]))
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
    red, black = split_lists(len(ranked), config.list_size)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "line": line,
        "basic_satisfied_counts": config.basic_satisfied_counts,
        "weights": config.weights.model_dump(),
        # Each rate's numerator and denominator, figures of the rows: rate = numerator ÷ denominator.
        "rates": {rate.name: [rate.numerator, rate.denominator] for rate in metrics.RATES},
        "departments": rows,
        "red_list": [r["department"] for r in ranked[:red]],
        "black_list": [r["department"] for r in ranked[::-1][:black]],
        "communities": communities,
    }


def split_lists(ranked: int, size: int) -> tuple[int, int]:
    """How many ranked units the red and the black list take: `size` each, or, with fewer
    than two lists' worth, the better half (rounded up) red and the rest black, so that no
    unit is on both."""
    if ranked >= 2 * size:
        return size, size
    red = (ranked + 1) // 2
    return red, ranked - red


def may_see_figures(role: str, department_id: int | None, dept: Department) -> bool:
    """Whether a viewer may see a department's figures and the tickets behind them: the centre
    every department's; a leader their own department's, a street office's leader its
    communities' too (二级派单)."""
    return role != "leader" or department_id in (dept.id, dept.parent_id)


def tickets_behind(
    session: Session, runtime, dept: Department, figure: str, start: date, end: date, limit: int = 500
) -> list[tuple[int, str]]:
    """The tickets behind one figure of one department: (id, number), newest first."""
    config = performance_config(str(runtime.settings.workflows_dir))
    shown = metrics.figures(config.basic_satisfied_counts).get(figure)
    if shown is None:
        raise ValueError(figure)
    anchor = shown.anchor
    lo, hi = bounds(start, end)
    stmt = (
        select(Ticket.id, Ticket.number)
        .join(anchor.table, anchor.table.ticket_id == Ticket.id)
        .where(anchor.department == dept.id, anchor.rows(lo, hi, runtime.now()))
    )
    if shown.where is not None:
        stmt = stmt.where(shown.where)
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
        lo, hi = bounds(day, day)
        kept = department_counts(session, day, day, now, config)
        live = live_department_counts(session, lo, hi, now, config)
        for dept_id in sorted(kept.keys() | live.keys()):
            a, b = kept.get(dept_id, Counts()), live.get(dept_id, Counts())
            for name, value in a.__dict__.items():
                if value != getattr(b, name):
                    out.append((codes.get(dept_id, str(dept_id)), f"{name} on {day}", value, getattr(b, name)))
        day += timedelta(days=1)
    return out
