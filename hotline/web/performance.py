"""The performance board (绩效考核), the analysis page (分析研判), their exports, and reports.

Every page is a GET for supervisors, administrators and department leaders. A leader
sees their own department's figures and, of the others, only the score and the rank;
the analysis a leader reads is of their own department's tickets.
"""

import threading
import time
import weakref
from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func
from sqlmodel import select

from hotline.api.deps import RuntimeDep
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.directory import department_by_code
from hotline.errors import Invalid, NotFound, NotPermitted
from hotline.indicators import analysis, metrics, operations, periods, reports, stats
from hotline.indicators.periods import FromQuery, MonthQuery, Period, ToQuery, WeekQuery, iso_week
from hotline.indicators.reports import Sheet
from hotline.inputs import IdPath, LineQuery, PageQuery
from hotline.models import Category, Department, Report, Ticket
from hotline.web.auth import PageUser, role_user
from hotline.web.render import render

router = APIRouter(include_in_schema=False)

Reader = Annotated[PageUser, role_user("supervisor", "admin", "leader")]
METRICS = metrics.FIGURES
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- the period -------------------------------------------------------------------------------


def _today(runtime) -> date:
    return periods.local_today(runtime.now())


def period_query(
    user: Reader,
    runtime: RuntimeDep,
    month: MonthQuery = None,
    week: WeekQuery = None,
    start: FromQuery = None,
    end: ToQuery = None,
) -> Period:
    """The period of a page or an export (after the role check: a stranger gets 403, not 422)."""
    return periods.parse(_today(runtime), month=month, week=week, start=start, end=end)


PeriodDep = Annotated[Period, Depends(period_query)]


def line_query(user: Reader, runtime: RuntimeDep, line: LineQuery = None) -> str | None:
    """One hotline's figures on the analysis page and the board (一个号码), after the role
    check; a number not configured is refused (422)."""
    return runtime.workflows.lines.named(line).number if line else None


LineDep = Annotated[str | None, Depends(line_query)]


def _shortcuts(today: date) -> list[tuple[str, str]]:
    this_month = today.replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    this_week = today - timedelta(days=today.weekday())
    last_week = this_week - timedelta(days=7)
    return [
        (f"month={this_month:%Y-%m}", "本月"),
        (f"month={last_month:%Y-%m}", "上月"),
        (f"week={iso_week(this_week)}", "本周"),
        (f"week={iso_week(last_week)}", "上周"),
        (f"from={today.replace(month=1, day=1).isoformat()}&to={today.isoformat()}", "本年"),
    ]


# The weeks the week picker offers (a year back); a select, as not every browser has a week input.
PICKER_WEEKS = 53


def _weeks(today: date, chosen: date) -> list[tuple[str, str]]:
    """(ISO week, its words) from this week back a year, and the chosen one if older."""
    monday = today - timedelta(days=today.weekday())
    starts = [monday - timedelta(weeks=i) for i in range(PICKER_WEEKS)]
    first = chosen - timedelta(days=chosen.weekday())
    if first < starts[-1]:
        starts.append(first)
    options = []
    for start in starts:
        year, week, _ = start.isocalendar()
        end = start + timedelta(days=6)
        words = f"{year}年第{week}周（{start.month}月{start.day}日—{end.month}月{end.day}日）"
        options.append((iso_week(start), words))
    return options


def _picker(runtime, period: Period, action: str) -> dict[str, Any]:
    today = _today(runtime)
    return {
        "weeks": _weeks(today, period.start),
        "action": action,
        "shortcuts": [(q, label, q == period.query) for q, label in _shortcuts(today)],
        "kind": period.kind,
        "month_value": f"{period.start:%Y-%m}",
        "week_value": iso_week(period.start),
        "from_value": period.start.isoformat(),
        "to_value": period.end.isoformat(),
        "today": today.isoformat(),
        "query": period.query,
    }


def _own_code(session, user: PageUser) -> str | None:
    if user.role != "leader" or not user.actor.department_id:
        return None
    dept = session.get(Department, user.actor.department_id)
    return dept.code if dept else None


# --- the performance board --------------------------------------------------------------------


def _board(session, runtime, user: PageUser, period: Period, line: str | None = None) -> dict[str, Any]:
    # Sums over the running totals (hotline.indicators.totals): fresh on every load, no cache
    # needed; one hotline's (一个号码) counted live from its tickets' assignments.
    result = stats.department_stats(session, runtime, period.start, period.end, line)
    total = reports.district_row(result, runtime) if user.role != "leader" else None
    own = _own_code(session, user)
    visible = reports.performance_for(result, user.role, own)
    # The red and black list is the month's (of the month the period ends in).
    month = periods.period_of("monthly", period.end)
    if (month.start, month.end) == (period.start, period.end) or (
        month.start == period.start and period.partial and period.kind == "monthly"
    ):
        monthly, month_period = result, period
    else:
        month_end = min(month.end, _today(runtime))
        month_period = Period(month.start, month_end, "monthly", partial=month_end < month.end)
        monthly = stats.department_stats(session, runtime, month_period.start, month_period.end, line)
    names = {r["department"]: r for r in monthly["departments"]}
    streets = {r["department"]: r["department_name"] for r in result["departments"]}
    return {
        "result": visible,
        "rows": reports.ranked_rows(visible),
        # The communities' part (二级派单), by street office: the breakdown under the ranking.
        "communities": [
            {**r, "parent_name": streets.get(r["parent"], r["parent"])}
            for r in sorted(visible["communities"], key=lambda r: (r["parent"] or "", r["department"]))
        ],
        "total": total,
        "own": own,
        "red": [names[c] for c in monthly["red_list"]],
        "black": [names[c] for c in monthly["black_list"]],
        "ranked_count": sum(1 for r in monthly["departments"] if r.get("rank")),
        "month_label": month_period.label,
        "config": stats.performance_config(str(runtime.settings.workflows_dir)),
    }


@router.get("/performance", response_class=HTMLResponse)
def board(request: Request, user: Reader, period: PeriodDep, runtime: RuntimeDep, line: LineDep) -> Response:
    with runtime.db.read_session() as session:
        ctx = _board(session, runtime, user, period, line)
    chart = [
        {"name": r["department_name"], "score": r["score"], "rank": r.get("rank"), "own": r["department"] == ctx["own"]}
        for r in ctx["rows"]
        if r.get("score") is not None
    ]
    chart.sort(key=lambda r: -r["score"])
    return render(
        request,
        "performance/board.html",
        {
            **ctx,
            "period": period,
            "picker": _line_picker(runtime, period, line, "/performance"),
            "line": line,
            "rates": metrics.RATES,
            "community_rates": [metrics.RATES_BY_NAME[name] for name in metrics.COMMUNITY_RATES],
            "chart": {
                "items": chart,
                "red": [r["department_name"] for r in ctx["red"]],
                "black": [r["department_name"] for r in ctx["black"]],
            },
            "now": runtime.now(),
        },
    )


def _board_sheet(runtime, user: PageUser, period: Period, line: str | None) -> tuple[Sheet, str, str]:
    """The board as a sheet, its title and its file name's stem (the line's number in both)."""
    with runtime.db.read_session() as session:
        ctx = _board(session, runtime, user, period, line)
        district = runtime.district(session)
    sheet = reports.performance_sheet(ctx["result"], total=ctx["total"])
    if period.kind != "monthly" or period.partial:
        sheet.extra.append(f"红黑榜按{ctx['month_label']}统计。")
    of_line = f"（{runtime.workflows.lines.label(line)}）" if line else ""
    title = f"{district.name}12345热线承办单位绩效考核{of_line}（{period.plain_label}）"
    return sheet, title, f"绩效考核_{line}_{period.iso}" if line else f"绩效考核_{period.iso}"


@router.get("/performance/export.xlsx")
def board_xlsx(user: Reader, period: PeriodDep, runtime: RuntimeDep, line: LineDep) -> Response:
    sheet, title, stem = _board_sheet(runtime, user, period, line)
    body = reports.to_xlsx(title, _subtitle(runtime, period), [sheet])
    return _download(body, XLSX, f"{stem}.xlsx")


@router.get("/performance/export.csv")
def board_csv(user: Reader, period: PeriodDep, runtime: RuntimeDep, line: LineDep) -> Response:
    sheet, _, stem = _board_sheet(runtime, user, period, line)
    return _download(reports.to_csv(sheet), "text/csv; charset=utf-8", f"{stem}.csv")


def _subtitle(runtime, period: Period) -> str:
    now = runtime.now().astimezone(LOCAL_TZ)
    return f"统计时段：{period.start.isoformat()} 至 {period.end.isoformat()}　导出时间：{now:%Y-%m-%d %H:%M}"


def _download(body: bytes, media_type: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": reports.content_disposition(filename), "Cache-Control": "no-store"},
    )


@router.get("/performance/tickets", response_class=HTMLResponse)
def tickets_behind(
    request: Request,
    user: Reader,
    department: Annotated[str, Query(max_length=32)],
    metric: Literal[METRICS],  # type: ignore[valid-type]
    runtime: RuntimeDep,
    start: FromQuery = None,
    end: ToQuery = None,
) -> Response:
    """The tickets behind one figure of one department, each linking to its page."""
    period = periods.parse(_today(runtime), start=start, end=end)
    with runtime.db.read_session() as session:
        try:
            dept = department_by_code(session, department)
        except Invalid:
            raise NotFound(f"department {department!r} not found", zh="没有这个承办单位") from None
        if not stats.may_see_figures(user.role, user.actor.department_id, dept):
            raise NotPermitted("a leader sees their own department's tickets", zh="只能查看本单位的工单明细")
        behind = stats.tickets_behind(session, runtime, dept, metric, period.start, period.end)
        ids = [i for i, _ in behind]
        found = session.exec(select(Ticket).where(Ticket.id.in_(ids))).all() if ids else []  # type: ignore[union-attr]
        tickets = {t.id: t for t in found}
        categories = dict(session.execute(select(Category.id, Category.name)).all())
    rows = []
    for tid, number in behind:
        t = tickets.get(tid)
        if t is None:
            continue
        state = runtime.workflows.get(t.workflow).states.get(t.state)
        rows.append(
            {
                "id": tid,
                "number": number,
                "title": t.title,
                "type": t.type,
                "category": categories.get(t.category_id, "未分类"),
                "place": f"{t.street or ''}{t.community or ''}",
                "state": t.state,
                "state_label": state.label if state else t.state,
                "created_at": t.created_at,
            }
        )
    return render(
        request,
        "performance/tickets.html",
        {
            "dept": dept,
            "metric": metric,
            "metric_label": metrics.FIGURE_LABELS[metric],
            "metric_labels": metrics.FIGURE_LABELS,
            "rows": rows,
            "limited": len(behind) >= 500,
            "period": period,
        },
    )


# --- the analysis page ------------------------------------------------------------------------


def _scope(session, user: PageUser, runtime=None, line: str | None = None):
    """The tickets the viewer analyses: a leader their department's; of one line, if asked."""
    own = Ticket.main_department_id == (user.actor.department_id or -1) if user.role == "leader" else None
    return analysis.line_scope(runtime.workflows.lines, line, own) if line else own


class SlowFigures:
    """Figures that take seconds on a large district (hot words segment thousands of texts;
    hotspots read five periods; repeated requests read a month), kept per process and per
    runtime for a few minutes. The analysis page loads them after its first figures (htmx)."""

    TTL = 300.0
    MAX = 128

    def __init__(self) -> None:
        self._data: weakref.WeakKeyDictionary[Any, dict[tuple, tuple[float, Any]]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, runtime, key: tuple, compute: Callable[[], Any]) -> Any:
        with self._lock:
            cache = self._data.setdefault(runtime, {})
            hit = cache.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        value = compute()
        with self._lock:
            if len(cache) >= self.MAX:
                cache.clear()
            cache[key] = (time.monotonic() + self.TTL, value)
        return value


slow = SlowFigures()


def _scope_key(user: PageUser) -> int | None:
    return user.actor.department_id if user.role == "leader" else None


def hot_words_of(session, runtime, user: PageUser, period: Period, line: str | None = None) -> list[tuple[str, int]]:
    lo, hi = period.bounds
    return slow.get(
        runtime,
        ("words", period.start, period.end, _scope_key(user), line),
        lambda: analysis.hot_words(session, runtime, lo, hi, _scope(session, user, runtime, line)),
    )


def hotspots_of(session, runtime, period: Period) -> dict[str, list[dict[str, Any]]]:
    lo, hi = period.bounds
    return slow.get(
        runtime,
        ("hotspots", period.start, period.end),
        lambda: {by: analysis.hotspots(session, runtime, by, lo, hi) for by in ("category", "community")},
    )


def repeats_of(session, runtime, user: PageUser) -> tuple[list[dict[str, Any]], int]:
    """Repeated requests of the last days (as of now), as the viewer may see them."""
    rows = slow.get(
        runtime,
        ("repeats", _scope_key(user)),
        lambda: analysis.repeated_requests(session, runtime, runtime.now(), _scope(session, user)),
    )
    return reports.repeats_out(rows[:100], show_phone=user.role == "supervisor"), len(rows)


def _analysis(
    session, runtime, user: PageUser, period: Period, *, slow_parts: bool = True, line: str | None = None
) -> dict[str, Any]:
    """The figures of the analysis page and its exports; without the slow parts for the page.
    `line`: one hotline's tickets (一个号码); hotspots, surges and repeats stay the district's."""
    scope = _scope(session, user, runtime, line)
    central = user.role != "leader"
    figures = reports.period_figures(session, runtime, period, scope=scope, hot_spots=False)
    lo, hi = period.bounds
    figures["surges"] = reports.surges_in(session, lo, hi, open_only=True) if central else []
    figures["central"] = central
    lines = runtime.workflows.lines
    figures["line"] = line
    by_line = analysis.volume(session, "line", lo, hi, scope, lines) if lines.merged else []
    # Shown and exported once a merged line has tickets in the period or the one before.
    apart = any(r["key"] != lines.default.number for r in by_line)
    figures["lines"] = by_line if apart else []
    # The centre's operations (话务分析): the calls and the agents' workload, for the centre only.
    figures["calls"] = operations.call_analysis(session, lines, lo, hi, line) if central else None
    if slow_parts:
        figures["repeats"], figures["repeat_total"] = repeats_of(session, runtime, user)
        figures["words"] = hot_words_of(session, runtime, user, period, line)
        if central:
            figures["hotspots"] = hotspots_of(session, runtime, period)
    if not central:
        dept = session.get(Department, user.actor.department_id) if user.actor.department_id else None
        figures["scope_name"] = dept.name if dept else ""
    return figures


def _analysis_charts(figures: dict[str, Any]) -> dict[str, Any]:
    v = figures["volume"]
    days = v["day"]
    return {
        "day": {"labels": [r["key"][5:] for r in days], "values": [r["count"] for r in days]},
        "type": {"items": [{"name": r["label"], "value": r["count"]} for r in v["type"] if r["count"]]},
        "category": _top(v["category"], 10),
        "street": _top(v["street"], 12),
        "community": _top(v["community"], 12),
        "hour": {
            "labels": [f"{h}时" for h in range(24)],
            "values": [next((r["count"] for r in v["hour"] if int(r["key"]) == h), 0) for h in range(24)],
        },
    }


def _top(rows: list[dict[str, Any]], n: int) -> dict[str, Any]:
    top = [r for r in rows if r["count"]][:n]
    return {"labels": [r["label"] for r in top], "values": [r["count"] for r in top]}


def _line_picker(runtime, period: Period, line: str | None, action: str = "/analysis") -> dict[str, Any]:
    """The period picker of a page with a line picker (the analysis, the board), keeping the line chosen."""
    picker = _picker(runtime, period, action)
    if line:
        picker.update(line=line, query=f"{picker['query']}&line={line}")
        picker["shortcuts"] = [(f"{q}&line={line}", label, on) for q, label, on in picker["shortcuts"]]
    return picker


@router.get("/analysis", response_class=HTMLResponse)
def analysis_page(
    request: Request,
    user: Reader,
    period: PeriodDep,
    runtime: RuntimeDep,
    line: LineDep,
) -> Response:
    with runtime.db.read_session() as session:
        figures = _analysis(session, runtime, user, period, slow_parts=False, line=line)
    v = figures["volume"]
    busiest = max(v["hour"], key=lambda r: r["count"], default=None)
    config = analysis.analysis_config(str(runtime.settings.workflows_dir))
    return render(
        request,
        "performance/analysis.html",
        {
            "f": figures,
            "period": period,
            "picker": _line_picker(runtime, period, line),
            "charts": _analysis_charts(figures),
            "complaints": sum(r["count"] for r in v["type"] if r["key"] in ("complaint", "report")),
            "peak_hour": f"{int(busiest['key'])}—{int(busiest['key']) + 1}时" if busiest and busiest["count"] else "—",
            "rising": _rising(v["category"]),
            "csv_tables": [(k, n) for k, n in CSV_TABLES.items() if figures["central"] or k not in CENTRAL_ONLY],
            "hot_rule": config.hotspot,
            "repeat_rule": config.repeat,
            "now": runtime.now(),
        },
    )


@router.get("/analysis/part/{part}", response_class=HTMLResponse)
def analysis_part(
    request: Request,
    part: Literal["hotspots", "repeats", "words"],
    user: Reader,
    period: PeriodDep,
    runtime: RuntimeDep,
    line: LineDep,
) -> Response:
    """A part of the analysis page that takes longer, loaded after the page (htmx); it also
    fills in its figure in the summary row (out-of-band swap)."""
    ctx: dict[str, Any] = {}
    with runtime.db.read_session() as session:
        if part == "hotspots":
            if user.role == "leader":
                raise NotPermitted("hotspots are for the centre", zh="热点分析仅供热线中心查看")
            ctx["hotspots"] = hotspots_of(session, runtime, period)
        elif part == "repeats":
            ctx["repeats"], ctx["repeat_total"] = repeats_of(session, runtime, user)
            ctx["repeat_rule"] = analysis.analysis_config(str(runtime.settings.workflows_dir)).repeat
        else:
            words = hot_words_of(session, runtime, user, period, line)
            top = words[0][1] if words else 1
            ctx["cloud"] = [(w, c, round(13 + 17 * (c / top) ** 0.7)) for w, c in words]
    return render(request, f"performance/_part_{part}.html", ctx)


def _rising(rows: list[dict[str, Any]], n: int = 8) -> list[dict[str, Any]]:
    """The categories that grew most against the previous period (at least 5 tickets now)."""
    grown = [r for r in rows if r["count"] >= 5 and r["previous"] and r["growth"] and r["growth"] > 0]
    grown.sort(key=lambda r: (-r["growth"], -r["count"]))
    return grown[:n]


def _analysis_sheets(figures: dict[str, Any]) -> list[Sheet]:
    v = figures["volume"]
    sheets = [
        reports.volume_sheet("诉求类型", "诉求类型", v["type"]),
        reports.volume_sheet("问题分类", "问题分类", v["category"]),
        reports.volume_sheet("街道", "街道", v["street"]),
        reports.volume_sheet("社区", "街道社区", v["community"]),
    ]
    if v["day"]:
        sheets.append(reports.volume_sheet("每日受理", "日期", v["day"]))
    sheets.append(reports.volume_sheet("时段分布", "时段", v["hour"]))
    if figures["lines"]:
        sheets.append(reports.volume_sheet("各热线", "热线", figures["lines"]))
    if figures["central"]:
        sheets.append(reports.hotspot_sheet("热点问题", "问题分类", figures["hotspots"]["category"]))
        sheets.append(reports.hotspot_sheet("热点社区", "街道社区", figures["hotspots"]["community"]))
        sheets.append(reports.surges_sheet(figures["surges"]))
    if figures.get("calls"):
        sheets.extend(reports.call_sheets(figures["calls"]))
    sheets.append(reports.repeats_sheet(figures["repeats"]))
    sheets.append(reports.words_sheet(figures["words"]))
    return sheets


@router.get("/analysis/export.xlsx")
def analysis_xlsx(user: Reader, period: PeriodDep, runtime: RuntimeDep, line: LineDep) -> Response:
    with runtime.db.read_session() as session:
        figures = _analysis(session, runtime, user, period, line=line)
        district = runtime.district(session)
    scope = f"（{figures['scope_name']}）" if not figures["central"] else ""
    title = f"{district.name}12345热线诉求分析{scope}（{period.plain_label}）"
    t = figures["totals"]
    subtitle = _subtitle(runtime, period) + f"　受理 {t['tickets']} 件，上期 {t['previous']} 件"
    body = reports.to_xlsx(title, subtitle, _analysis_sheets(figures))
    return _download(body, XLSX, f"分析研判_{period.iso}.xlsx")


CSV_TABLES = {
    "type": "诉求类型",
    "category": "问题分类",
    "street": "街道",
    "community": "社区",
    "day": "每日受理",
    "hour": "时段分布",
    "hotspots": "热点问题",
    "hotspot_places": "热点社区",
    "surges": "突发聚集",
    "repeats": "重复诉求",
    "words": "热词",
    "call_hours": "话务时段",
    "call_agents": "坐席工作量",
    "call_lines": "各热线话务",
}


CENTRAL_ONLY = {"hotspots", "hotspot_places", "surges", "call_hours", "call_agents", "call_lines"}


@router.get("/analysis/export.csv")
def analysis_csv(
    user: Reader,
    period: PeriodDep,
    runtime: RuntimeDep,
    line: LineDep,
    table: Literal[tuple(CSV_TABLES)] = "category",  # type: ignore[valid-type]
) -> Response:
    with runtime.db.read_session() as session:
        figures = _analysis(session, runtime, user, period, line=line)
    sheets = {s.name: s for s in _analysis_sheets(figures)}
    sheet = sheets.get(CSV_TABLES[table])
    if sheet is None:
        raise NotPermitted("not visible to you", zh="您的角色无权导出此表")
    return _download(reports.to_csv(sheet), "text/csv; charset=utf-8", f"{sheet.name}_{period.iso}.csv")


# --- reports ----------------------------------------------------------------------------------


@router.get("/reports", response_class=HTMLResponse)
def report_list(
    request: Request,
    user: Reader,
    runtime: RuntimeDep,
    kind: Annotated[str, Query(pattern="^(daily|weekly|monthly)?$")] = "",
    page: PageQuery = 1,
) -> Response:
    size = 30
    with runtime.db.read_session() as session:
        stmt = select(Report.id, Report.kind, Report.period_start, Report.period_end, Report.title, Report.created_at)
        count = select(func.count()).select_from(Report)
        if kind:
            stmt, count = stmt.where(Report.kind == kind), count.where(Report.kind == kind)
        total = session.execute(count).scalar_one()
        rows = session.execute(
            stmt.order_by(Report.period_start.desc(), Report.id.desc()).offset((page - 1) * size).limit(size)
        ).all()
        counts = dict(session.execute(select(Report.kind, func.count()).group_by(Report.kind)).all())
    return render(
        request,
        "performance/reports.html",
        {
            "rows": rows,
            "kind": kind,
            "kinds": reports.KIND_LABELS,
            "counts": counts,
            "total": total,
            "page": page,
            "pages": max((total + size - 1) // size, 1),
        },
    )


def _report(session, report_id: int) -> Report:
    report = session.get(Report, report_id)
    if report is None:
        raise NotFound(f"report {report_id} not found", zh="报告不存在")
    return report


@router.get("/reports/{report_id:int}.xlsx")
def report_xlsx(request: Request, report_id: IdPath, user: Reader, runtime: RuntimeDep) -> Response:
    with runtime.db.read_session() as session:
        report = _report(session, report_id)
        own = _own_code(session, user)
    data = dict(report.data)
    data["performance"] = reports.performance_for(data["performance"], user.role, own)
    leader = user.role == "leader"
    total = None if leader else reports.district_row(report.data["performance"], runtime)
    sheets = reports.report_sheets(data, performance_only=leader, total=total)
    subtitle = f"统计时段：{report.period_start.isoformat()} 至 {report.period_end.isoformat()}"
    body = reports.to_xlsx(f"{data.get('district', '')}{report.title}", subtitle, sheets)
    return _download(body, XLSX, f"{report.title}.xlsx")


@router.get("/reports/{report_id:int}", response_class=HTMLResponse)
def report_page(request: Request, report_id: IdPath, user: Reader, runtime: RuntimeDep) -> Response:
    with runtime.db.read_session() as session:
        report = _report(session, report_id)
        own = _own_code(session, user)
        config = stats.performance_config(str(runtime.settings.workflows_dir))
    data = dict(report.data)
    perf = data["performance"]
    visible = reports.performance_for(perf, user.role, own)
    names = {r["department"]: r["department_name"] for r in perf["departments"]}
    ctx: dict[str, Any] = {
        "report": report,
        "d": data,
        "kind_label": reports.KIND_LABELS[report.kind],
        "perf": visible,
        "perf_rows": reports.ranked_rows(visible),
        "total": reports.district_row(perf, runtime) if user.role != "leader" else None,
        "red": [names.get(c, c) for c in perf.get("red_list", [])],
        "black": [names.get(c, c) for c in perf.get("black_list", [])],
        "central": user.role != "leader",
        "rates": metrics.RATES,
        "config": config,
    }
    if ctx["central"]:
        ctx["charts"] = _analysis_charts(data)
        ctx["summary"] = _summary(data, ctx["total"])
    return render(request, "performance/report.html", ctx)


def _pct(value: float | None) -> str:
    return f"{value * 100:.1f}%" if value is not None else "—"


def _summary(data: dict[str, Any], total: dict[str, Any] | None) -> list[str]:
    """The report's opening paragraphs, in the words of a district office."""
    t = data["totals"]
    v = data["volume"]
    g = t["growth"]
    trend = f"环比{'增长' if g > 0 else '下降'}{abs(g) * 100:.1f}%" if g else ("与上期持平" if g == 0 else "上期无数据")
    types = "、".join(f"{r['label']}{r['count']}件" for r in v["type"] if r["count"])
    lines = [f"本期共受理群众诉求{t['tickets']}件，{trend}，日均{t['daily_average']:g}件。"]
    if types:
        lines[0] += f"其中{types}。"
    top = [r for r in v["category"] if r["count"]][:5]
    if top:
        lines.append("诉求量居前的问题分类为：" + "、".join(f"{r['label']}（{r['count']}件）" for r in top) + "。")
    streets = [r for r in v["street"] if r["count"]][:3]
    if streets:
        lines.append("诉求较集中的街道为：" + "、".join(f"{r['label']}（{r['count']}件）" for r in streets) + "。")
    if total and total.get("dispatched"):
        lines.append(
            f"全区承办单位共接派单{total['dispatched']}件，及时签收率{_pct(total['signed_on_time_rate'])}，"
            f"按时办结率{_pct(total['completed_on_time_rate'])}，回访率{_pct(total['callback_rate'])}，"
            f"解决率{_pct(total['resolution_rate'])}，满意率{_pct(total['satisfaction_rate'])}。"
        )
    hot = data.get("hotspots", {})
    n_hot = len(hot.get("category", [])) + len(hot.get("community", []))
    lines.append(
        f"本期发现热点{n_hot}个、突发聚集预警{len(data.get('surges', []))}起，"
        f"重复诉求{len(data.get('repeats', []))}组，详见第四部分。"
    )
    return lines
