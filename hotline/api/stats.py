"""Performance indicators per department (绩效管理), with the tickets behind every figure."""

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from hotline.api.deps import RuntimeDep, require
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.directory import department_by_code
from hotline.errors import Invalid, NotFound
from hotline.indicators import stats
from hotline.models import Department
from hotline.workflow.engine import Actor

router = APIRouter(prefix="/stats", tags=["stats"])
Metric = Literal[stats.ASSIGNMENT_METRICS + stats.CALLBACK_METRICS]  # type: ignore[valid-type]


def _period(runtime, start: date | None, end: date | None) -> tuple[date, date]:
    today = runtime.now().astimezone(LOCAL_TZ).date()
    start = start or today.replace(day=1)
    end = end or today
    if end < start:
        raise Invalid("'to' is before 'from'", field="to")
    if (end - start).days > 366 * 3:
        raise Invalid("a period spans at most three years", field="from")
    return start, end


@router.get("/departments")
def departments(
    actor: Annotated[Actor, require("supervisor", "admin", "leader")],
    runtime: RuntimeDep,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """The indicators of docs/indicators.md per department for [from, to] (local dates), ranked.

    A department leader sees the figures of their own department and the ranking.
    """
    start, end = _period(runtime, start, end)
    with runtime.db.read_session() as session:
        result = stats.department_stats(session, runtime, start, end)
        if actor.role == "leader":
            own = session.get(Department, actor.department_id).code
            result["departments"] = [
                r
                if r["department"] == own
                else {k: r.get(k) for k in ("department", "department_name", "score", "rank")}
                for r in result["departments"]
            ]
        return result


@router.get("/departments/{code}/tickets")
def tickets_behind(
    code: str,
    metric: Metric,
    actor: Annotated[Actor, require("supervisor", "admin", "leader")],
    runtime: RuntimeDep,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """The tickets behind one figure (e.g. `metric=overdue`) of one department."""
    start, end = _period(runtime, start, end)
    with runtime.db.read_session() as session:
        dept = department_by_code(session, code)
        if actor.role == "leader" and dept.id != actor.department_id:
            raise NotFound(f"department {code!r} not found, or not visible to you")
        rows = stats.tickets_behind(session, runtime, dept, metric, start, end)
        return {
            "department": code,
            "metric": metric,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "tickets": [{"id": i, "number": n} for i, n in rows],
        }
