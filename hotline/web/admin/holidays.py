"""The holiday calendar: one page per year, imports from CSV."""

import calendar as month_calendar
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func
from sqlmodel import Session, select

from hotline.api.deps import RuntimeDep
from hotline.deadlines.calendar import read_holiday_csv
from hotline.deadlines.holidays import import_holidays
from hotline.errors import HotlineError
from hotline.models import (
    CalendarDay,
    CalendarYear,
    Ticket,
)
from hotline.runtime import Runtime
from hotline.web.admin.common import (
    AdminForm,
    AdminUser,
    FormError,
    Year,
    _done,
    _local_today,
    _page,
    router,
)
from hotline.web.forms import page_message

# ------------------------------------------------------------------- calendar


def _holiday_names() -> dict[date, str]:
    """Names of the bundled holiday data (the seed stores none), in Chinese."""
    import chinese_calendar

    chinese = {h.value: h.chinese for h in chinese_calendar.Holiday}
    names = {}
    for table in (chinese_calendar.holidays, chinese_calendar.workdays):
        for day, name in table.items():
            if name:
                names[day] = chinese.get(str(name), str(name))
    return names


def source_label(source: str | None) -> str:
    if not source:
        return "—"
    if source == "chinese-calendar":
        return "内置数据（chinesecalendar）"
    if source == "admin":
        return "管理员导入"
    if source.startswith("admin:"):
        return f"管理员导入（{source.removeprefix('admin:')}）"
    return source


def _year_days(session: Session, year: int) -> list[CalendarDay]:
    return session.exec(
        select(CalendarDay)
        .where(CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31))
        .order_by(CalendarDay.day)
    ).all()


@router.get("/calendar", response_class=HTMLResponse)
def calendar_years(
    request: Request, runtime: RuntimeDep, _: AdminUser, year: Annotated[int | None, Query(ge=2000, le=2100)] = None
) -> Response:
    if year is not None:
        return RedirectResponse(f"/admin/calendar/{year}", status_code=303)
    this_year = _local_today(runtime).year
    with runtime.db.read_session() as session:
        years = session.exec(select(CalendarYear).order_by(CalendarYear.year.desc())).all()
        counts: dict[int, dict[bool, int]] = defaultdict(lambda: {True: 0, False: 0})
        for day, working in session.exec(select(CalendarDay.day, CalendarDay.working)).all():
            counts[day.year][working] += 1
        provisional = session.exec(select(func.count()).select_from(Ticket).where(Ticket.deadlines_provisional)).one()
    covered = {y.year for y in years}
    missing = [y for y in (this_year, this_year + 1) if y not in covered]
    rows = [
        {
            "year": y.year,
            "source": source_label(y.source),
            "loaded_at": y.loaded_at,
            "holidays": counts[y.year][False],
            "workdays": counts[y.year][True],
        }
        for y in years
    ]
    return _page(
        request,
        "admin/calendar.html",
        {
            "rows": rows,
            "missing": missing,
            "this_year": this_year,
            "provisional": provisional,
            "first": min(covered) if covered else None,
            "last": max(covered) if covered else None,
        },
    )


@dataclass
class DayCell:
    day: date
    kind: str  # work | weekend | holiday | makeup | outside
    name: str | None = None
    today: bool = False


def _months(year: int, overrides: dict[date, CalendarDay], names: dict[date, str], today: date) -> list[dict]:
    grid = month_calendar.Calendar(firstweekday=0)
    months = []
    for month in range(1, 13):
        weeks = []
        for week in grid.monthdatescalendar(year, month):
            cells = []
            for d in week:
                if d.month != month:
                    cells.append(DayCell(d, "outside"))
                    continue
                row = overrides.get(d)
                if row is not None and not row.working:
                    kind = "holiday"
                elif row is not None and row.working and d.weekday() >= 5:
                    kind = "makeup"
                elif d.weekday() >= 5:
                    kind = "weekend"
                else:
                    kind = "work"
                cells.append(DayCell(d, kind, (row.name if row else None) or names.get(d), d == today))
            weeks.append(cells)
        months.append({"month": month, "weeks": weeks})
    return months


def _runs(days: list[date]) -> str:
    """Consecutive days as ranges: 10-01 至 10-07、10-09."""
    runs: list[list[date]] = []
    for d in days:
        if runs and (d - runs[-1][-1]).days == 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return "、".join(f"{r[0]:%m-%d} 至 {r[-1]:%m-%d}" if len(r) > 1 else f"{r[0]:%m-%d}" for r in runs)


def _periods(days: list[CalendarDay], names: dict[date, str]) -> list[dict]:
    """The year's holidays by name (国庆节: 10-01 至 10-07 放假, 10-10 上班), in calendar order."""
    groups: dict[str, dict] = {}
    for d in days:
        name = d.name or names.get(d.day) or "其他"
        group = groups.setdefault(name, {"name": name, "off": [], "work": []})
        group["work" if d.working else "off"].append(d.day)
    periods = sorted(groups.values(), key=lambda g: (g["off"] or g["work"])[0])
    for p in periods:
        p["range"] = _runs(p["off"])
    return periods


def _year_csv(year: int, days: list[CalendarDay], names: dict[date, str]) -> str:
    lines = ["date,kind,name"]
    if not days:
        lines += ["# 每行一个日期：放假写“休”，调休上班写“班”。例如：", f"# {year}-01-01,休,元旦"]
    for d in days:
        lines.append(f"{d.day.isoformat()},{'workday' if d.working else 'holiday'},{d.name or names.get(d.day) or ''}")
    return "\n".join(lines) + "\n"


def _year_context(session: Session, runtime: Runtime, year: int) -> dict[str, Any]:
    info = session.get(CalendarYear, year)
    days = _year_days(session, year)
    names = _holiday_names() if info is not None and info.source == "chinese-calendar" else {}
    by_day = {d.day: d for d in days}
    today = _local_today(runtime)
    months = _months(year, by_day, names, today)
    cells = [c for m in months for w in m["weeks"] for c in w if c.kind != "outside"]
    provisional = session.exec(select(func.count()).select_from(Ticket).where(Ticket.deadlines_provisional)).one()
    return {
        "year": year,
        "info": info,
        "source": source_label(info.source if info else None),
        "months": months,
        "periods": _periods(days, names),
        "working_days": sum(1 for c in cells if c.kind in ("work", "makeup")),
        "holidays": sum(1 for c in cells if c.kind == "holiday"),
        "makeups": sum(1 for c in cells if c.kind == "makeup"),
        "csv": _year_csv(year, days, names),
        "this_year": today.year,
        "provisional": provisional,
        "weekdays": "一二三四五六日",
    }


@router.get("/calendar/{year}", response_class=HTMLResponse)
def calendar_year(request: Request, runtime: RuntimeDep, _: AdminUser, year: Year) -> Response:
    with runtime.db.read_session() as session:
        ctx = _year_context(session, runtime, year)
    return _page(request, "admin/calendar_year.html", ctx)


CSV_ERRORS = [
    (re.compile(r"bad date '(.*)'; expected"), "日期“{0}”无法识别，应写作 YYYY-MM-DD 或 YYYY/M/D"),
    (re.compile(r"bad date '(.*)': (.*)"), "日期“{0}”不存在"),
    (re.compile(r"bad kind '(.*)'"), "类型“{0}”无法识别，放假写 holiday 或 休，调休上班写 workday 或 班"),
    (re.compile(r"bad header"), "第一行应为表头 date,kind,name（或 date,kind）"),
    (re.compile(r"missing header"), "缺少表头 date,kind,name"),
    (re.compile(r"expected .* fields, got (\d+)"), "应为 2–3 个字段（日期,类型,名称），此行有 {0} 个"),
    (re.compile(r"conflicts with line (\d+)"), "同一日期与第 {0} 行的类型相矛盾"),
    (re.compile(r"date (\S+) is not in (\d+)"), "日期 {0} 不在 {1} 年内"),
    (re.compile(r"name longer than (\d+)"), "名称不能超过 {0} 个字"),
]


def csv_error(message: str) -> str:
    """A holiday CSV error in Chinese, keeping the line number."""
    lineno, _, detail = message.partition(": ")
    number = lineno.removeprefix("line ")
    for pattern, zh in CSV_ERRORS:
        m = pattern.search(detail)
        if m:
            return f"第 {number} 行：{zh.format(*m.groups())}"
    return f"第 {number} 行：{detail}" if number.isdigit() else message


def parse_year_csv(text: str, year: int) -> tuple[dict[date, bool], dict[date, str]]:
    """The overrides and names of one year from a pasted CSV; FormError names the line."""
    try:
        overrides, names = read_holiday_csv(text, year)
    except ValueError as exc:
        raise FormError(csv_error(str(exc)), "csv") from None
    if not overrides:
        raise FormError("没有任何日期：请按 date,kind,name 逐行粘贴放假和调休上班的日期", "csv")
    return overrides, names


@router.post("/calendar/{year}", response_class=HTMLResponse)
def import_calendar_year(
    request: Request,
    runtime: RuntimeDep,
    admin: AdminForm,
    year: Year,
    csv_text: Annotated[str, Form(alias="csv", max_length=60_000)] = "",
) -> Response:
    try:
        overrides, names = parse_year_csv(csv_text, year)
    except HotlineError as exc:
        with runtime.db.read_session() as session:
            ctx = _year_context(session, runtime, year)
        ctx.update(error=page_message(exc), csv=csv_text)
        return _page(request, "admin/calendar_year.html", ctx, exc.status_code)
    source = f"admin:{admin.actor.username}"[:32]
    _, recomputed = import_holidays(runtime, overrides, source=source, actor=admin.actor, names=names, years=[year])
    off = sum(1 for working in overrides.values() if not working)
    return _done(
        f"/admin/calendar/{year}",
        f"已导入 {year} 年节假日数据：放假 {off} 天，调休上班 {len(overrides) - off} 天；"
        f"重新计算了 {recomputed} 件工单的暂定时限。",
    )
