"""Analysis (分析研判): volumes, growth, hotspots, repeated requests, hot words, surges."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from sqlmodel import select

from hotline.api.deps import RuntimeDep, require
from hotline.api.stats import PeriodDep
from hotline.deadlines.calendar import local_iso
from hotline.indicators import analysis
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
) -> dict[str, Any]:
    """Tickets by type, category, department, street, community, hour or day, with the
    previous period of the same length and the growth against it."""
    lo, hi = period.bounds
    with runtime.db.read_session() as session:
        rows = analysis.volume(session, by, lo, hi, _scope(actor))
    total = sum(r["count"] for r in rows)
    previous = sum(r["previous"] for r in rows)
    return {
        "by": by,
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
def hot_words(actor: Reader, runtime: RuntimeDep, period: PeriodDep) -> dict[str, Any]:
    """The period's most frequent words (jieba segmentation, stop words left out)."""
    lo, hi = period.bounds
    with runtime.db.read_session() as session:
        words = analysis.hot_words(session, runtime, lo, hi, _scope(actor))
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
