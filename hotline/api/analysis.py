"""Analysis (分析研判): volumes, growth, hotspots, repeated requests, hot words, surges."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from sqlmodel import select

from hotline.api.deps import RuntimeDep, require
from hotline.api.stats import PeriodDep
from hotline.deadlines.calendar import local_iso
from hotline.indicators import analysis, operations
from hotline.inputs import LineQuery
from hotline.models import Category, SurgeAlert, Ticket
from hotline.ticket_view import mask_phone
from hotline.workflow.engine import Actor

router = APIRouter(prefix="/analysis", tags=["analysis"])
Reader = Annotated[Actor, require("supervisor", "admin", "leader")]


def _scope(actor: Actor):
    """A department leader analyses their own department's tickets."""
    return Ticket.main_department_id == actor.department_id if actor.role == "leader" else None


@router.get("/volume")
def volume(
    actor: Reader,
    runtime: RuntimeDep,
    by: Literal[analysis.DIMENSIONS],  # type: ignore[valid-type]
    period: PeriodDep,
    line: LineQuery = None,
) -> dict[str, Any]:
    """Tickets by type, category, department, street, community, hour, day or line (一个号码),
    with the previous period of the same length and the growth against it; `line`: one
    hotline's tickets only."""
    lo, hi = period.bounds
    lines = runtime.workflows.lines
    with runtime.db.read_session() as session:
        rows = analysis.volume(session, by, lo, hi, analysis.line_scope(lines, line, _scope(actor)), lines)
    total = sum(r["count"] for r in rows)
    previous = sum(r["previous"] for r in rows)
    return {
        "by": by,
        "line": line,
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "total": total,
        "previous_total": previous,
        "growth": round((total - previous) / previous, 4) if previous else None,
        "rows": rows,
    }


@router.get("/hotspots")
def hotspots(
    _: Annotated[Actor, require("supervisor", "admin")],
    runtime: RuntimeDep,
    period: PeriodDep,
    by: Literal["category", "street", "community"] = "category",
) -> dict[str, Any]:
    """Categories or places whose volume jumps against their own baseline."""
    lo, hi = period.bounds
    with runtime.db.read_session() as session:
        return {
            "by": by,
            "from": period.start.isoformat(),
            "to": period.end.isoformat(),
            "rows": analysis.hotspots(session, runtime, by, lo, hi),
        }


@router.get("/repeats")
def repeats(actor: Reader, runtime: RuntimeDep) -> list[dict[str, Any]]:
    """Repeated requests: the same phone or address about the same category, lately."""
    with runtime.db.read_session() as session:
        rows = analysis.repeated_requests(session, runtime, runtime.now(), _scope(actor))
    for r in rows:
        r["last"] = local_iso(r["last"])
        if r["kind"] == "phone" and actor.role != "supervisor":
            r["key"] = [mask_phone(r["key"][0]), *r["key"][1:]]
    return rows


@router.get("/hot-words")
def hot_words(actor: Reader, runtime: RuntimeDep, period: PeriodDep, line: LineQuery = None) -> dict[str, Any]:
    """The period's most frequent words (jieba segmentation, stop words left out)."""
    lo, hi = period.bounds
    scope = analysis.line_scope(runtime.workflows.lines, line, _scope(actor))
    with runtime.db.read_session() as session:
        words = analysis.hot_words(session, runtime, lo, hi, scope)
    words_out = [{"word": w, "count": c} for w, c in words]
    return {"from": period.start.isoformat(), "to": period.end.isoformat(), "words": words_out}


@router.get("/surges")
def surges(
    _: Annotated[Actor, require("supervisor", "admin")],
    runtime: RuntimeDep,
    status: Literal["open", "closed"] | None = None,
) -> list[dict[str, Any]]:
    """Surge alerts (突发聚集), newest first."""
    with runtime.db.read_session() as session:
        stmt = select(SurgeAlert, Category.name).join(Category, Category.id == SurgeAlert.category_id, isouter=True)
        if status:
            stmt = stmt.where(SurgeAlert.status == status)
        return [
            {
                "id": a.id,
                "category": name,
                "street": a.street,
                "community": a.community,
                "status": a.status,
                "count": a.count,
                "peak": a.peak,
                "baseline": a.baseline,
                "window_hours": a.window_hours,
                "created_at": local_iso(a.created_at),
                "closed_at": local_iso(a.closed_at),
            }
            for a, name in session.exec(stmt.order_by(SurgeAlert.id.desc()).limit(200)).all()
        ]


@router.get("/calls")
def call_figures(
    _: Annotated[Actor, require("supervisor", "admin")],
    runtime: RuntimeDep,
    period: PeriodDep,
    line: LineQuery = None,
) -> dict[str, Any]:
    """The centre's operations (话务分析): calls per hour of day, the calls that led to a
    ticket, each agent's calls, tickets logged, answered directly (直接办结) and direct-answer
    rate, the same per line; `line`: one hotline's only."""
    lo, hi = period.bounds
    with runtime.db.read_session() as session:
        figures = operations.call_analysis(session, runtime.workflows.lines, lo, hi, line)
    return {"from": period.start.isoformat(), "to": period.end.isoformat(), **figures}
