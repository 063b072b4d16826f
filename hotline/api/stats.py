"""Performance indicators per department (绩效管理), with the tickets behind every figure."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends

from hotline.api.deps import RuntimeDep, require
from hotline.directory import department_by_code
from hotline.errors import NotFound
from hotline.indicators import metrics, periods, reports, stats
from hotline.indicators.periods import FromQuery, MonthQuery, Period, ToQuery, WeekQuery
from hotline.inputs import LineQuery
from hotline.models import Department
from hotline.workflow.engine import Actor

router = APIRouter(prefix="/stats", tags=["stats"])
Figure = Literal[metrics.FIGURES]  # type: ignore[valid-type]


def period_query(
    runtime: RuntimeDep,
    month: MonthQuery = None,
    week: WeekQuery = None,
    start: FromQuery = None,
    end: ToQuery = None,
) -> Period:
    """The period asked for: `from`/`to` (local dates), else `week`, else `month`; this month to
    date by default. A period still running ends today."""
    return periods.parse(periods.local_today(runtime.now()), month=month, week=week, start=start, end=end)


# Declared after the caller's role check in each endpoint: a stranger gets 403, not 422.
PeriodDep = Annotated[Period, Depends(period_query)]


@router.get("/departments")
def departments(
    actor: Annotated[Actor, require("supervisor", "admin", "leader")],
    runtime: RuntimeDep,
    period: PeriodDep,
    line: LineQuery = None,
) -> dict[str, Any]:
    """The indicators per department for the period, ranked. Each rate is one figure of the
    row divided by another, as `rates` names them (numerator, denominator), to four places.
    `line`: of one hotline's tickets only (一个号码: 12345, 12315…), counted apart.

    A department leader sees the figures of their own department and the ranking.
    `communities`: the communities' figures (二级派单), unranked, each with its street office
    (`parent`); a leader sees their own community's, or their street office's communities'.
    """
    with runtime.db.read_session() as session:
        result = stats.department_stats(session, runtime, period.start, period.end, line)
        own = session.get(Department, actor.department_id).code if actor.role == "leader" else None
    visible = reports.performance_for(result, actor.role, own)

    def rounded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: stats.to_four_places(v) if k in metrics.RATES_BY_NAME else v for k, v in r.items()} for r in rows]

    return {**visible, "departments": rounded(visible["departments"]), "communities": rounded(visible["communities"])}


@router.get("/departments/{code}/tickets")
def tickets_behind(
    code: str,
    metric: Figure,
    actor: Annotated[Actor, require("supervisor", "admin", "leader")],
    runtime: RuntimeDep,
    period: PeriodDep,
) -> dict[str, Any]:
    """The tickets behind one figure (e.g. `metric=overdue`) of one department."""
    with runtime.db.read_session() as session:
        dept = department_by_code(session, code)
        if not stats.may_see_figures(actor.role, actor.department_id, dept):
            raise NotFound(f"department {code!r} not found, or not visible to you")
        rows = stats.tickets_behind(session, runtime, dept, metric, period.start, period.end)
        return {
            "department": code,
            "metric": metric,
            "from": period.start.isoformat(),
            "to": period.end.isoformat(),
            "tickets": [{"id": i, "number": n} for i, n in rows],
        }
