"""Daily, weekly and monthly reports (日报、周报、月报), and the Excel and CSV exports.

`generate_due_reports` runs from the scheduler's sweep: once a local (Asia/Shanghai)
day, ISO week or month is over, it writes that period's report once. A report keeps
its figures in `Report.data` (JSON): the department indicators of hotline.indicators.stats, the
volumes, hotspots, surges and repeated requests of hotline.indicators.analysis, so a report reads
the same whenever it is opened. Two schedulers may race: the unique key
(kind, period_start) lets one win and the other skip.

The exports are plain tables (`Sheet`) written as a workbook (openpyxl: a title row with
the district and the period, bold headers, percentages as %, widths, frozen headers,
one sheet per table) or as CSV (UTF-8 with a BOM, so that Excel reads the Chinese).
"""

import csv
import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from hotline.deadlines.calendar import LOCAL_TZ
from hotline.indicators import analysis, metrics, stats
from hotline.indicators.periods import Period, last_ended, local_today, period_of
from hotline.models import Category, Report, SurgeAlert, Ticket
from hotline.ticket_view import mask_phone

log = logging.getLogger("hotline.indicators.reports")

KINDS = ("daily", "weekly", "monthly")
KIND_LABELS = {"daily": "日报", "weekly": "周报", "monthly": "月报"}
# After a pause (the scheduler was down), at most this many missed periods are caught up.
CATCH_UP = {"daily": 31, "weekly": 8, "monthly": 3}
DATA_VERSION = 1


def report_title(kind: str, period: Period) -> str:
    """12345热线工作日报（2026年11月27日）, …周报（2026年第48周，11月23日—11月29日）, …月报（2026年11月）."""
    return f"12345热线工作{KIND_LABELS[kind]}（{period.plain_label}）"


# --- the figures of a period ------------------------------------------------------------------


def growth(current: int, previous: int) -> float | None:
    return round((current - previous) / previous, 4) if previous else None


def surges_in(session: Session, lo: datetime, hi: datetime, *, open_only: bool = False) -> list[dict[str, Any]]:
    """Surge alerts raised in [lo, hi) (or every open one), newest first."""
    stmt = select(SurgeAlert, Category.name).join(Category, Category.id == SurgeAlert.category_id, isouter=True)
    if open_only:
        stmt = stmt.where(SurgeAlert.status == "open")
    else:
        stmt = stmt.where(SurgeAlert.created_at >= lo, SurgeAlert.created_at < hi)
    rows = session.execute(stmt.order_by(SurgeAlert.id.desc()).limit(200)).all()
    return [
        {
            "id": a.id,
            "category": name or "未分类",
            "place": f"{a.street or ''}{a.community or ''}" or "未填写",
            "status": a.status,
            "count": a.count,
            "peak": a.peak,
            "baseline": a.baseline,
            "window_hours": a.window_hours,
            "created_at": a.created_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
            "closed_at": a.closed_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if a.closed_at else None,
        }
        for a, name in rows
    ]


def repeats_out(rows: list[dict[str, Any]], *, show_phone: bool) -> list[dict[str, Any]]:
    """Repeated requests as the pages and the exports show them."""
    out = []
    for r in rows:
        if r["kind"] == "phone":
            who = r["key"][0] if show_phone else mask_phone(r["key"][0])
        else:
            who = "".join(k or "" for k in r["key"])
        out.append(
            {
                "kind": "同一来电" if r["kind"] == "phone" else "同一地址",
                "who": who,
                "category": r["category"],
                "count": r["count"],
                "last": r["last"].astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if r["last"] else "",
            }
        )
    return out


def streets_from(communities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The street volumes from the community volumes (one query fewer)."""
    count: Counter = Counter()
    previous: Counter = Counter()
    for r in communities:
        street = r["key"][0] if isinstance(r["key"], list | tuple) else r["key"]
        count[street] += r["count"]
        previous[street] += r["previous"]
    rows = [
        {"key": s, "label": s or "未填写", "count": n, "previous": previous[s], "growth": growth(n, previous[s])}
        for s, n in ((s, count[s]) for s in set(count) | set(previous))
    ]
    rows.sort(key=lambda r: (-r["count"], str(r["key"])))
    return rows


def period_figures(session: Session, runtime, period: Period, *, scope=None, hot_spots: bool = True) -> dict[str, Any]:
    """Volumes, growth, hotspots and surges of a period (the analysis part of a report or page).

    Each volume is two GROUP BYs over the indexed creation time (this period and the one
    before); the street figures come from the community ones.
    """
    lo, hi = period.bounds
    volume = {by: analysis.volume(session, by, lo, hi, scope) for by in ("type", "category", "community", "hour")}
    volume["street"] = streets_from(volume["community"])
    volume["day"] = analysis.volume(session, "day", lo, hi, scope) if period.days > 1 else []
    total = sum(r["count"] for r in volume["type"])
    previous = sum(r["previous"] for r in volume["type"])
    figures: dict[str, Any] = {
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "label": period.label,
        "totals": {
            "tickets": total,
            "previous": previous,
            "growth": growth(total, previous),
            "daily_average": round(total / period.days, 1),
        },
        "volume": volume,
    }
    if hot_spots:
        figures["hotspots"] = {
            "category": analysis.hotspots(session, runtime, "category", lo, hi),
            "community": analysis.hotspots(session, runtime, "community", lo, hi),
        }
    return figures


def report_data(session: Session, runtime, kind: str, period: Period, now: datetime) -> dict[str, Any]:
    """Everything a report shows, as JSON-ready data."""
    lo, hi = period.bounds
    performance = stats.department_stats(session, runtime, period.start, period.end)
    figures = period_figures(session, runtime, period)
    end = min(hi, now)
    repeats = analysis.repeated_requests(session, runtime, end, Ticket.created_at < end)
    return {
        "version": DATA_VERSION,
        "kind": kind,
        "district": runtime.district(session).name,
        "generated_at": now.astimezone(LOCAL_TZ).isoformat(timespec="minutes"),
        **figures,
        "performance": performance,
        "surges": surges_in(session, lo, hi),
        "repeats": repeats_out(repeats[:50], show_phone=False),
    }


def _store(runtime, kind: str, period: Period, data: dict[str, Any], now: datetime) -> Report | None:
    try:
        with runtime.db.session() as session:
            report = Report(
                kind=kind,
                period_start=period.start,
                period_end=period.end,
                title=report_title(kind, period),
                created_at=now,
                data=data,
            )
            session.add(report)
            session.flush()
        return report
    except IntegrityError:
        log.info("the %s report for %s was written by another scheduler", kind, period.start)
        return None


def due_periods(session: Session, kind: str, today: date) -> list[Period]:
    """The ended periods of the kind with no report yet: the latest, and those missed since
    the last report (at most CATCH_UP of them)."""
    latest = last_ended(kind, today)
    last = session.execute(select(func.max(Report.period_start)).where(Report.kind == kind)).scalar_one_or_none()
    if last is None:
        return [latest]
    periods = []
    p = latest
    while p.start > last and len(periods) < CATCH_UP[kind]:
        periods.append(p)
        p = period_of(kind, p.start - timedelta(days=1))
    return periods[::-1]


def generate_due_reports(runtime, now: datetime) -> list[Report]:
    """Write the report of every day, ISO week and month that is over (local time) and has none.

    Idempotent: a second call writes nothing. Safe beside another scheduler: the unique
    key (kind, period_start) decides, the loser skips.
    """
    today = local_today(now)
    made: list[Report] = []
    with runtime.db.read_session() as session:
        # A centre not yet taking tickets (a fresh install being set up) has nothing to report:
        # its first reports would carry the name and figures of a district not yet configured.
        if session.execute(select(Ticket.id).limit(1)).first() is None:
            return made
    for kind in KINDS:
        with runtime.db.read_session() as session:
            periods = due_periods(session, kind, today)
        for period in periods:
            try:
                with runtime.db.read_session() as session:
                    if session.execute(
                        select(Report.id).where(Report.kind == kind, Report.period_start == period.start)
                    ).first():
                        continue
                    data = report_data(session, runtime, kind, period, now)
                report = _store(runtime, kind, period, data, now)
            except Exception:  # one report failing must not stop the others, nor the sweep
                log.exception("the %s report for %s failed; the next sweep tries again", kind, period.start)
                continue
            if report is not None:
                made.append(report)
    return made


def performance_for(result: dict[str, Any], viewer_role: str, own_code: str | None) -> dict[str, Any]:
    """What a viewer may see of department_stats: a leader sees their own department's
    figures, and of the others only the score and the rank; of the communities, their own
    community's, or a street office's leader its communities'."""
    if viewer_role != "leader":
        return result
    rows = [
        r if r["department"] == own_code else {k: r.get(k) for k in ("department", "department_name", "score", "rank")}
        for r in result["departments"]
    ]
    communities = [r for r in result.get("communities", []) if own_code in (r["department"], r["parent"])]
    return {**result, "departments": rows, "communities": communities}


def district_row(result: dict[str, Any], runtime) -> dict[str, Any]:
    """The district's totals: the counts summed, the rates and score worked out from them."""
    config = stats.performance_config(str(runtime.settings.workflows_dir))
    counts = stats.Counts()
    for r in result["departments"]:
        for name in counts.__dict__:
            setattr(counts, name, getattr(counts, name) + (r.get(name) or 0))
    return {"department": "", "department_name": "全区合计", **counts.__dict__, **stats.indicators(counts, config)}


def ranked_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The departments in ranking order; the unranked after, by name code."""
    rows = result["departments"]
    ranked = sorted((r for r in rows if r.get("rank")), key=lambda r: r["rank"])
    rest = [r for r in rows if not r.get("rank")]
    rest.sort(key=lambda r: (r.get("dispatched") is None, -(r.get("dispatched") or 0), r["department"]))
    return ranked + rest


# --- exports ----------------------------------------------------------------------------------


@dataclass
class Column:
    header: str
    key: str
    kind: str = "text"  # text | int | pct | float
    width: float = 12
    align: str | None = None  # left | center | right (default: numbers right, text left)


def _display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: two for a Chinese character, one for the rest."""
    return sum(1 if ord(c) < 0x2E80 else 2 for c in text)


@dataclass
class Sheet:
    name: str  # at most 31 characters, no []:*?/\
    columns: list[Column]
    rows: list[dict[str, Any]]
    note: str = ""
    total: dict[str, Any] | None = None
    extra: list[str] = field(default_factory=list)


def _cell_text(value: Any, kind: str) -> Any:
    if value is None or value == "":
        return ""
    if kind == "pct":
        return f"{value * 100:.1f}%"
    if kind == "float":
        return f"{value:.2f}"
    return value


# What makes a spreadsheet read a cell as a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutral(value: Any) -> Any:
    """A text for a CSV cell that no spreadsheet takes for a formula: one that begins like
    a formula gets a leading apostrophe (OWASP's rule); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _as_text(cell) -> None:
    """Keep a text cell text: openpyxl writes a string beginning with '=' as a formula."""
    if cell.data_type == "f":
        cell.data_type = "s"


def to_csv(sheet: Sheet) -> bytes:
    """One table as CSV, UTF-8 with a BOM (Excel reads Chinese correctly), CRLF line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutral(c.header) for c in sheet.columns])
    for row in [*sheet.rows, *([sheet.total] if sheet.total else [])]:
        writer.writerow(
            [
                neutral(_cell_text(row.get(c.key), c.kind)) if c.kind == "text" else _cell_text(row.get(c.key), c.kind)
                for c in sheet.columns
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(title: str, subtitle: str, sheets: list[Sheet]) -> bytes:
    """A workbook, one sheet per table: the title and period on top, bold frozen headers."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    thin = Side(style="thin", color="B7C2D0")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    head_fill = PatternFill("solid", fgColor="DCE6F2")
    total_fill = PatternFill("solid", fgColor="F2F5F9")
    formats = {"int": "#,##0", "pct": "0.0%", "float": "0.00"}
    for sheet in sheets:
        ws = wb.create_sheet(sheet.name[:31])
        n = max(len(sheet.columns), 1)
        last = get_column_letter(n)
        # Widen the columns of a narrow table so that the title row is not cut off.
        needed = _display_width(title) * 1.4 + 4
        widths = [c.width for c in sheet.columns]
        scale = max(1.0, needed / sum(widths)) if widths else 1.0
        ws["A1"] = title
        _as_text(ws["A1"])
        ws["A1"].font = Font(name="宋体", size=15, bold=True)
        ws["A1"].alignment = Alignment(horizontal="center", vertical="center")
        ws.merge_cells(f"A1:{last}1")
        ws.row_dimensions[1].height = 30
        ws["A2"] = f"{sheet.name}　{subtitle}" + (f"　{sheet.note}" if sheet.note else "")
        _as_text(ws["A2"])
        ws["A2"].font = Font(size=10, color="555555")
        ws["A2"].alignment = Alignment(horizontal="center", vertical="center")
        ws.merge_cells(f"A2:{last}2")
        ws.row_dimensions[2].height = 20
        header_row = 3
        for i, col in enumerate(sheet.columns, 1):
            cell = ws.cell(row=header_row, column=i, value=col.header)
            _as_text(cell)
            cell.font = Font(bold=True)
            cell.fill = head_fill
            cell.border = border
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            ws.column_dimensions[get_column_letter(i)].width = round(col.width * scale, 1)
        ws.row_dimensions[header_row].height = 22
        r = header_row
        for row in sheet.rows:
            r += 1
            _write_row(ws, r, sheet.columns, row, border, formats)
        if sheet.total:
            r += 1
            _write_row(ws, r, sheet.columns, sheet.total, border, formats)
            for i in range(1, n + 1):
                ws.cell(row=r, column=i).font = Font(bold=True)
                ws.cell(row=r, column=i).fill = total_fill
        if not sheet.rows and not sheet.total:
            r += 1
            ws.cell(row=r, column=1, value="（本期无数据）").font = Font(color="888888")
            ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=n)
        for line in sheet.extra:
            r += 1
            cell = ws.cell(row=r, column=1, value=line)
            cell.font = Font(size=9, color="666666")
            _as_text(cell)
            ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=n)
        ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
        ws.print_title_rows = f"{header_row}:{header_row}"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.orientation = "landscape" if n > 7 else "portrait"
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_options.horizontalCentered = True
    if not wb.sheetnames:
        wb.create_sheet("空")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _write_row(ws, r: int, columns: list[Column], row: dict[str, Any], border, formats) -> None:
    from openpyxl.styles import Alignment

    for i, col in enumerate(columns, 1):
        value = row.get(col.key)
        if value is None:
            value = "—" if col.kind != "text" else ""
        cell = ws.cell(row=r, column=i, value=value)
        _as_text(cell)
        cell.border = border
        if col.kind in formats and isinstance(value, int | float):
            cell.number_format = formats[col.kind]
        align = col.align or ("left" if col.kind == "text" else "right")
        cell.alignment = Alignment(horizontal=align, vertical="center")


def content_disposition(filename: str) -> str:
    """An attachment header with an ASCII fallback and the UTF-8 name (RFC 6266)."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


# --- the tables the pages and the reports export ----------------------------------------------


def with_communities(rows: list[dict[str, Any]], communities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The departments' rows, each street office followed by its communities' (二级派单), unranked,
    with their street's name and only the rates of their part (metrics.COMMUNITY_RATES: the
    callbacks and ratings, and so the score, are the street office's)."""
    names = {r["department"]: r["department_name"] for r in rows}
    apart = {rate.name for rate in metrics.RATES} - set(metrics.COMMUNITY_RATES)
    under: dict[str | None, list[dict[str, Any]]] = {}
    for c in sorted(communities, key=lambda c: c["department"]):
        row = {k: v for k, v in c.items() if k not in apart and k not in ("rank", "score")}
        under.setdefault(c["parent"], []).append({**row, "parent_name": names.get(c["parent"], c["parent"])})
    out = []
    for r in rows:
        out.append(r)
        out.extend(under.pop(r["department"], []))
    return out + [c for rest in under.values() for c in rest]


def performance_sheet(result: dict[str, Any], *, total: dict[str, Any] | None = None) -> Sheet:
    columns = [
        Column("排名", "rank", "int", 7, "center"),
        Column("承办单位", "department_name", "text", 26),
        # A district without communities keeps the table it had.
        *([Column("所属街道", "parent_name", "text", 16)] if result.get("communities") else []),
        Column("派单量", "dispatched", "int", 9),
        *[Column(rate.label, rate.name, "pct", 11) for rate in metrics.RATES],
        Column("综合得分", "score", "float", 10),
    ]
    weights = result.get("weights") or {}
    w = {k: weights.get(k, 0) for k in ("response", "resolution", "satisfaction")}
    extra = [
        f"说明：综合得分 = 响应（及时签收率、按时办结率的平均）×{w['response']:g}% + 解决率×{w['resolution']:g}% "
        f"+ 满意率×{w['satisfaction']:g}%；派单不足规定件数的单位不参与排名。"
    ]
    if result.get("communities"):
        extra.append(
            "社区（二级派单）列于所属街道之下，只计街道派至社区部分的签收、办结、退单和超期，不参与排名和合计。"
        )
    if result.get("red_list") is not None:
        names = {r["department"]: r["department_name"] for r in result["departments"]}
        extra.append("红榜：" + ("、".join(names.get(c, c) for c in result["red_list"]) or "无"))
        extra.append("黑榜：" + ("、".join(names.get(c, c) for c in result.get("black_list", [])) or "无"))
    total = {**total, "rank": ""} if total else None
    rows = with_communities(ranked_rows(result), result.get("communities", []))
    return Sheet("绩效考核", columns, rows, total=total, extra=extra)


def volume_sheet(name: str, first_header: str, rows: list[dict[str, Any]], *, limit: int | None = None) -> Sheet:
    total = sum(r["count"] for r in rows) or 0
    out = [{**r, "share": (r["count"] / total) if total else None} for r in rows[: limit or None]]
    columns = [
        Column(first_header, "label", "text", 28),
        Column("本期件数", "count", "int", 11),
        Column("占比", "share", "pct", 9),
        Column("上期件数", "previous", "int", 11),
        Column("环比增减", "growth", "pct", 11),
    ]
    return Sheet(name, columns, out)


def hotspot_sheet(name: str, first_header: str, rows: list[dict[str, Any]]) -> Sheet:
    columns = [
        Column(first_header, "label", "text", 30),
        Column("本期件数", "count", "int", 11),
        Column("前期平均", "baseline", "float", 11),
        Column("倍数", "ratio", "float", 9),
    ]
    return Sheet(name, columns, rows)


def repeats_sheet(rows: list[dict[str, Any]]) -> Sheet:
    columns = [
        Column("类型", "kind", "text", 10),
        Column("来电人 / 地址", "who", "text", 34),
        Column("问题分类", "category", "text", 18),
        Column("诉求次数", "count", "int", 10),
        Column("最近一次", "last", "text", 18),
    ]
    return Sheet("重复诉求", columns, rows)


def surges_sheet(rows: list[dict[str, Any]]) -> Sheet:
    columns = [
        Column("发现时间", "created_at", "text", 18),
        Column("地点", "place", "text", 24),
        Column("问题分类", "category", "text", 18),
        Column("当前件数", "count", "int", 10),
        Column("峰值", "peak", "int", 8),
        Column("平时水平", "baseline", "float", 10),
        Column("状态", "status_label", "text", 9),
    ]
    rows = [{**r, "status_label": "持续" if r["status"] == "open" else "已结束"} for r in rows]
    return Sheet("突发聚集", columns, rows)


def call_sheets(calls: dict[str, Any]) -> list[Sheet]:
    """The centre's operations (话务分析, hotline.indicators.operations.call_analysis) as three
    sheets: calls by hour of day, each agent's workload, each line."""
    counts = [
        Column("来电", "calls", "int", 9),
        Column("形成工单的来电", "with_ticket", "int", 14),
    ]
    handled = [
        Column("受理工单", "tickets", "int", 10),
        Column("直接办结", "answered", "int", 10),
        Column("直接办结率", "answer_rate", "pct", 11),
    ]
    hours = [{**r, "hour": f"{r['hour']:02d}:00—{r['hour'] + 1:02d}:00"} for r in calls["hours"]]
    return [
        Sheet("话务时段", [Column("时段", "hour", "text", 14), *counts], hours),
        Sheet(
            "坐席工作量",
            [Column("坐席", "name", "text", 14), Column("账号", "agent", "text", 14), *counts, *handled],
            calls["agents"],
        ),
        Sheet(
            "各热线话务",
            [Column("热线", "line", "text", 9), Column("名称", "label", "text", 22), *counts,
             Column("来电成单率", "ticket_share", "pct", 11), *handled],
            calls["lines"],
        ),
    ]  # fmt: skip


def words_sheet(words: list[tuple[str, int]]) -> Sheet:
    columns = [
        Column("序号", "i", "int", 7, "center"),
        Column("热词", "word", "text", 16),
        Column("提及工单数", "count", "int", 12),
    ]
    return Sheet("热词", columns, [{"i": i, "word": w, "count": c} for i, (w, c) in enumerate(words, 1)])


def report_sheets(
    data: dict[str, Any], *, performance_only: bool = False, total: dict[str, Any] | None = None
) -> list[Sheet]:
    """The tables of a report, one sheet each."""
    perf = data["performance"]
    sheets = [performance_sheet(perf, total=total)]
    if performance_only:
        return sheets
    totals = data["totals"]
    overview = Sheet(
        "概况",
        [Column("指标", "name", "text", 28), Column("数值", "value", "text", 30, "right")],
        [
            {"name": "统计时段", "value": f"{data['from']} 至 {data['to']}"},
            {"name": "受理诉求（件）", "value": totals["tickets"]},
            {"name": "上期受理（件）", "value": totals["previous"]},
            {"name": "环比增减", "value": _cell_text(totals["growth"], "pct") or "—"},
            {"name": "日均受理（件）", "value": totals["daily_average"]},
            {"name": "热点问题（个）", "value": len(data["hotspots"]["category"])},
            {"name": "热点社区（个）", "value": len(data["hotspots"]["community"])},
            {"name": "突发聚集预警（起）", "value": len(data["surges"])},
            {"name": "重复诉求（组）", "value": len(data["repeats"])},
        ],
    )
    volume = data["volume"]
    sheets = [
        overview,
        *sheets,
        volume_sheet("诉求类型", "诉求类型", volume["type"]),
        volume_sheet("问题分类", "问题分类", volume["category"]),
        volume_sheet("街道", "街道", volume["street"]),
        volume_sheet("社区", "街道社区", volume["community"]),
    ]
    if volume.get("day"):
        sheets.append(volume_sheet("每日受理", "日期", volume["day"]))
    sheets.append(volume_sheet("时段分布", "时段", volume["hour"]))
    sheets.append(hotspot_sheet("热点问题", "问题分类", data["hotspots"]["category"]))
    sheets.append(hotspot_sheet("热点社区", "街道社区", data["hotspots"]["community"]))
    sheets.append(surges_sheet(data["surges"]))
    sheets.append(repeats_sheet(data["repeats"]))
    return sheets
