"""The holiday calendar, per year: read by everyone, kept by administrators."""

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlmodel import select

from hotline.api.deps import AdminActor, CurrentActor, RuntimeDep
from hotline.deadlines.calendar import local_iso
from hotline.deadlines.holidays import import_holidays
from hotline.errors import Invalid
from hotline.models import CalendarDay, CalendarYear

router = APIRouter(prefix="/calendar", tags=["calendar"])
Year = Annotated[int, Path(ge=2000, le=2100)]


class DayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: date
    kind: Literal["holiday", "workday"]
    name: Annotated[str, Field(max_length=50)] | None = None


class YearIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: Annotated[list[DayIn], Field(max_length=366)]


@router.get("/years")
def list_years(_: CurrentActor, runtime: RuntimeDep) -> list[dict[str, Any]]:
    with runtime.db.read_session() as session:
        return [
            {"year": y.year, "source": y.source, "loaded_at": local_iso(y.loaded_at)}
            for y in session.exec(select(CalendarYear).order_by(CalendarYear.year)).all()
        ]


@router.get("/{year}")
def get_year(year: Year, _: CurrentActor, runtime: RuntimeDep) -> dict[str, Any]:
    """The year's holidays and make-up working days, and whether its data is loaded."""
    with runtime.db.read_session() as session:
        covered = session.get(CalendarYear, year)
        days = session.exec(
            select(CalendarDay)
            .where(CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31))
            .order_by(CalendarDay.day)
        ).all()
        return {
            "year": year,
            "covered": covered is not None,
            "source": covered.source if covered else None,
            "days": [
                {"date": d.day.isoformat(), "kind": "workday" if d.working else "holiday", "name": d.name} for d in days
            ],
        }


@router.put("/{year}")
def put_year(year: Year, body: YearIn, actor: AdminActor, runtime: RuntimeDep) -> dict[str, Any]:
    """Replace the year's data; deadlines computed provisionally are recomputed."""
    for i, d in enumerate(body.days):
        if d.date.year != year:
            raise Invalid(f"days.{i}.date: {d.date} is not in {year}", field=f"days.{i}.date")
    overrides = {d.date: d.kind == "workday" for d in body.days}
    names = {d.date: d.name for d in body.days if d.name}
    _, recomputed = import_holidays(runtime, overrides, source="admin", actor=actor, names=names, years=[year])
    with runtime.db.read_session() as session:
        count = session.exec(
            select(func.count())
            .select_from(CalendarDay)
            .where(CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31))
        ).one()
    return {"year": year, "days": count, "recomputed": recomputed}
