"""The performance board, the analysis page, the exports and the printable report, in a browser.

Two data sets: the hand-built November of tests/test_stats.py (figures worked out by hand),
and a busier month of a dozen departments, written straight into the tables the figures
are counted from, for pages that must read like what a district office circulates.
"""

import csv
import io
import random
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from hotline.directory import create_category, create_department
from hotline.indicators import totals
from hotline.indicators.metrics import RATES
from hotline.indicators.reports import generate_due_reports
from hotline.models import Assignment, Callback, Category, Department, SurgeAlert, Ticket
from tests.conftest import local
from tests.test_pages_smoke import login
from tests.test_stats import as_, november  # noqa: F401  (the hand-built November of test_stats)

SHOTS = Path(__file__).parent / "artifacts"
pytestmark = pytest.mark.browser

EXTRA_DEPARTMENTS = [
    ("transport", "区交通运输局"),
    ("health", "区卫生健康委员会"),
    ("education", "区教育局"),
    ("env", "市生态环境局本区分局"),
    ("hr", "区人力资源和社会保障局"),
    ("civil", "区民政局"),
    ("street_b", "西城街道办事处"),
]
# (code, name, parent, department, what citizens say about it)
EXTRA_CATEGORIES = [
    ("0103", "噪声扰民", "01", "env", ["夜间施工噪音扰民影响休息", "广场舞音响声音过大扰民", "楼下商铺音响噪音扰民"]),
    ("0104", "道路破损", "01", "transport", ["路面坑洼破损车辆通行困难", "人行道地砖松动破损", "井盖破损存在安全隐患"]),
    ("0202", "价格收费", "02", "market", ["停车场收费标准不透明", "超市商品价格标签不一致", "培训机构收费后拒不退费"]),
    ("04", "教育", None, "education", ["咨询小学入学报名材料", "学校周边交通拥堵接送困难", "咨询课后托管服务收费"]),
    ("05", "医疗卫生", None, "health", ["社区卫生服务中心预约困难", "咨询疫苗接种时间地点", "医院停车难排队时间长"]),
    ("06", "社保就业", None, "hr", ["咨询社保卡补办流程", "公司拖欠工资要求维权", "咨询灵活就业人员医保缴费"]),
    ("07", "养老服务", None, "civil", ["咨询高龄老人补贴申领", "社区养老服务站开放时间", "咨询居家养老上门服务"]),
    ("08", "市容环境", None, "street_b", ["背街小巷垃圾清运不及时", "沿街商铺占道经营", "小区周边共享单车乱停放"]),
]
SAYINGS = {
    "0101": ["小区电梯故障停运无人维修", "物业收费不透明服务差", "小区楼道堆放杂物物业不管"],
    "0102": ["小区楼顶违章搭建阳光房", "底商私自扩建占用绿地", "违章搭建影响消防通道"],
    "0201": ["餐馆卫生条件差食品变质", "网购食品疑似过期", "早餐摊点无证经营卫生差"],
    "03": ["自来水水压不足高层停水", "供水管道破裂漏水严重", "自来水浑浊有异味"],
    "09": ["咨询政务服务办理时间", "反映公交站台广告牌松动", "建议增设社区健身设施"],
}
PLACES = {
    "东城街道": ["和平社区", "光明社区", "幸福社区"],
    "西城街道": ["和平社区", "新华社区", "滨河社区"],
    "南湖街道": ["南湖社区", "湖滨社区"],
    "北山街道": ["北山社区", "翠竹社区", "桃园社区"],
}
DETAILS = ["", "，已经持续一周。", "，多次反映未解决。", "，影响正常生活。", "，请相关部门核实。", "。"]
TYPES = ["complaint"] * 5 + ["consultation"] * 4 + ["help"] * 3 + ["suggestion", "report", "praise"]
# How well each department does (the chance of doing a step on time, of solving, of a good rating).
QUALITY = {
    "housing": 0.93,
    "urban": 0.78,
    "market": 0.9,
    "water": 0.96,
    "street_a": 0.72,
    "transport": 0.86,
    "health": 0.88,
    "education": 0.95,
    "env": 0.7,
    "hr": 0.91,
    "civil": 0.97,
    "street_b": 0.8,
}


def _busy(runtime, *, until) -> dict[str, int]:
    """Four quiet months and a busier November (to `until`) for twelve departments: tickets, the
    facts on their main assignments and callbacks, and an open surge alert."""
    rng = random.Random(12345)
    with runtime.db.session() as s:
        for code, name in EXTRA_DEPARTMENTS:
            create_department(s, code=code, name=name, now=until)
        for code, name, parent, dept, _ in EXTRA_CATEGORIES:
            create_category(s, runtime, code=code, name=name, parent=parent, department=dept)
    with runtime.db.session() as s:
        depts = {d.code: d.id for d in s.exec(select(Department)).all()}
        cats = {c.code: (c.id, c.department_id) for c in s.exec(select(Category)).all()}
        sayings = {**SAYINGS, **{code: says for code, _, _, _, says in EXTRA_CATEGORIES}}
        default_dept = {"0101": "housing", "0102": "urban", "0201": "market", "03": "water", "09": "street_a"}
        weights = {code: 3 for code in sayings} | {"0101": 6, "03": 4, "04": 2, "0103": 2}
        codes = list(sayings)
        phones = [f"139{rng.randrange(10**8):08d}" for _ in range(300)]
        seq = 0
        tickets: list[tuple[Ticket, str, object]] = []
        day = local(2026, 7, 1, 0, 0)
        while day < until:
            # November is busier than the months before, and much noisier (噪声扰民).
            n = rng.randint(14, 20) if day.month == 11 else rng.randint(8, 13)
            w = [weights[c] * (4 if c == "0103" and day.month == 11 else 1) for c in codes]
            for _ in range(n):
                code = rng.choices(codes, weights=w)[0]
                created = day + timedelta(hours=rng.choices(range(24), weights=_HOURS)[0], minutes=rng.randrange(60))
                if created >= until:
                    continue
                tickets.append(_ticket(rng, code, created, phones, sayings, seq := seq + 1))
            day += timedelta(days=1)
        for i in range(9):  # the surge
            created = until - timedelta(hours=20 - 2 * i)
            t = _ticket(rng, "0103", created, phones, sayings, seq := seq + 1)
            t[0].street, t[0].community = "东城街道", "和平社区"
            tickets.append(t)
        for _ in range(4):  # one caller, four times about the lift
            t = _ticket(rng, "0101", until - timedelta(days=rng.randint(1, 15)), phones, sayings, seq := seq + 1)
            t[0].caller_phone = "13800138000"
            tickets.append(t)
        for t, code, _ in tickets:
            t.category_id = cats[code][0]
            dept_code = next((c for c, i in depts.items() if i == cats[code][1]), None) or default_dept.get(code)
            t.main_department_id = depts[dept_code]
        s.add_all([t for t, _, _ in tickets])
        s.flush()
        for t, _, _ in tickets:
            dept_code = next(c for c, i in depts.items() if i == t.main_department_id)
            _facts(s, rng, t, QUALITY[dept_code], until)
        s.add(
            SurgeAlert(
                category_id=cats["0103"][0],
                street="东城街道",
                community="和平社区",
                count=9,
                peak=9,
                baseline=0.4,
                window_hours=24,
                created_at=until - timedelta(hours=6),
                updated_at=until,
            )
        )
        s.flush()
        totals.rebuild(s)  # the facts were written in bulk, past the gateway (as the demo loader does)
    return depts


_HOURS = [1, 1, 1, 1, 1, 2, 4, 8, 14, 16, 15, 12, 9, 11, 14, 13, 11, 9, 7, 6, 6, 5, 3, 2]


def _ticket(rng, code, created, phones, sayings, seq):
    street = rng.choice(list(PLACES))
    community = rng.choice(PLACES[street])
    content = rng.choice(sayings[code])
    ticket = Ticket(
        number=f"{created:%Y%m%d}{seq:06d}",
        workflow="default",
        type=rng.choice(TYPES),
        caller_name=rng.choice(["张先生", "李女士", "王先生", "赵女士", "刘先生"]),
        caller_phone=rng.choice(phones),
        title=content[:20],
        content=f"{content}{rng.choice(DETAILS)}",
        street=street,
        community=community,
        address=f"{community}{rng.randint(1, 30)}号楼",
        state="archived",
        created_at=created,
        updated_at=created,
    )
    return ticket, code, created


def _facts(s, rng, t: Ticket, q: float, until) -> None:
    """The main assignment's facts and the callback, as the gateway would have left them."""
    dispatched = t.created_at + timedelta(minutes=rng.randint(5, 90))
    if dispatched >= until:
        t.state = "registered"
        return
    handle_by = dispatched + timedelta(days=rng.choice([3, 5, 7]))
    replied = dispatched + timedelta(days=rng.uniform(0.5, 6.5) if rng.random() < q else rng.uniform(6, 11))
    replied_at = replied if replied < until else None
    t.state = "archived" if replied_at else "in_progress"
    t.dispatched_at = dispatched
    a = Assignment(
        ticket_id=t.id,
        department_id=t.main_department_id,
        role="main",
        status="replied" if replied_at else "signed",
        dispatched_at=dispatched,
        signed_at=dispatched + timedelta(hours=1),
        sign_by=dispatched + timedelta(days=1),
        signed_on_time=rng.random() < q + 0.04,
        returned=rng.random() > q + 0.05,
        handle_by=handle_by,
        first_replied_at=replied_at,
        replied_on_time=(replied_at <= handle_by) if replied_at else None,
        rehandles=1 if rng.random() > q + 0.04 else 0,
    )
    s.add(a)
    if replied_at and replied_at + timedelta(days=1) < until and rng.random() < 0.95:
        good = rng.random() < q
        s.add(
            Callback(
                ticket_id=t.id,
                attempt=1,
                reached=True,
                solved=good or rng.random() < 0.3,
                rating=rng.choice([4, 5, 5]) if good else rng.choice([1, 2, 3]),
                at=replied_at + timedelta(days=1),
                department_id=t.main_department_id,
            )
        )


@pytest.fixture
def busy(runtime, district, clock):
    until = local(2026, 11, 20, 9, 0)
    clock.set(until)
    return _busy(runtime, until=until)


def _shoot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def _charted(page, selector: str) -> None:
    """The chart element holds the picture ECharts drew (SVG renderer; canvas would do too)."""
    page.wait_for_selector(f"{selector} svg, {selector} canvas")
    assert page.locator(f"{selector} svg, {selector} canvas").count() >= 1


# --- the hand-built November ------------------------------------------------------------------


def test_the_board_shows_the_figures_and_the_tickets_behind_them(page, server, november):  # noqa: F811
    login(page, server, "supervisor")
    page.goto(f"{server}/performance?month=2026-11")
    assert "2026年11月" in page.inner_text("#period-label")
    housing = page.locator("#board-table tr[data-department=housing]")
    cell = housing.locator("td[data-rate=signed_on_time_rate]")
    assert cell.inner_text().split() == ["60.0%", "3/5"]
    assert housing.locator("td[data-rate=completed_on_time_rate]").inner_text().split()[0] == "75.0%"
    assert housing.locator("td[data-rate=overdue_rate]").inner_text().split() == ["25.0%", "1/4"]
    assert housing.locator("td[data-score]").inner_text() == "66.92"
    assert housing.locator("td.pf-rank").inner_text() == "1"
    # urban has one ticket: figures, but no rank
    assert page.locator("#board-table tr[data-department=urban] td.pf-rank").inner_text() == "—"
    assert "区住建局" in page.inner_text("#red-list")
    _charted(page, "#score-chart")
    # The figure leads to the tickets behind it, and each of those to its page.
    cell.locator("a").click()
    page.wait_for_url("**/performance/tickets?department=housing&metric=signed_on_time*")
    numbers = page.locator("#behind-table tbody tr td:first-child a")
    expected = {november["t1"], november["t4"], november["t6"]}
    assert {int(h.split("/")[-1]) for h in numbers.evaluate_all("els => els.map(e => e.getAttribute('href'))")} == (
        expected
    )
    assert "及时签收 3 件" in page.inner_text("main")
    page.click("nav.pf-metrics a:has-text('超期')")
    page.wait_for_url("**metric=overdue*")
    assert page.locator("#behind-table tbody tr").count() == 1
    number = page.inner_text("#behind-table tbody tr td:first-child a")
    page.click("#behind-table tbody tr td:first-child a")
    page.wait_for_url(f"**/tickets/{november['t2']}")
    assert number in page.inner_text("main")


def test_a_leader_sees_their_figures_and_the_others_scores_only(page, server, november):  # noqa: F811
    login(page, server, "housing_l")
    page.goto(f"{server}/performance?month=2026-11")
    own = page.locator("#board-table tr[data-department=housing]")
    assert own.locator("td[data-rate=signed_on_time_rate]").inner_text().split() == ["60.0%", "3/5"]
    urban = page.locator("#board-table tr[data-department=urban]")
    assert {t.strip() for t in urban.locator("td[data-rate]").all_inner_texts()} == {"—"}
    assert urban.locator("td[data-score]").inner_text() == "50.00"
    assert urban.locator("a").count() == 0 and page.locator("#board-table tfoot").count() == 0
    assert "第 1" in page.inner_text(".pf-kpis")
    # The figures of another department stay closed, even by address.
    page.goto(f"{server}/performance/tickets?department=urban&metric=overdue&from=2026-11-01&to=2026-11-30")
    assert "只能查看本单位的工单明细" in page.inner_text("main")
    # The analysis a leader reads is of their own department's tickets.
    page.goto(f"{server}/analysis?month=2026-11")
    assert "本单位：区住建局" in page.inner_text("h1")
    assert page.locator("#hotspots").count() == 0 and page.locator("#surges").count() == 0


# --- a busy month -----------------------------------------------------------------------------


def test_the_board_of_a_busy_month_and_its_exports(page, server, busy, tmp_path):
    login(page, server, "supervisor")
    page.goto(f"{server}/performance")
    assert page.inner_text("#period-label") == "2026年11月（截至20日）"
    assert page.locator("#board-table tbody tr").count() == 12
    assert page.locator("#red-list li").count() == 5 and page.locator("#black-list li").count() == 5
    ranks = page.locator("#board-table tbody td.pf-rank").all_inner_texts()
    assert ranks[:3] == ["1", "2", "3"]
    scores = [float(s) for s in page.locator("#board-table tbody td[data-score]").all_inner_texts() if s != "—"]
    assert scores == sorted(scores, reverse=True)
    _charted(page, "#score-chart")
    _shoot(page, "performance-board.png")

    with page.expect_download() as info:
        page.click("#export-xlsx")
    download = info.value
    assert download.suggested_filename == "绩效考核_2026-11-01_2026-11-20.xlsx"
    path = tmp_path / "board.xlsx"
    download.save_as(path)
    ws = load_workbook(path)["绩效考核"]
    assert "承办单位绩效考核（2026年11月，截至20日）" in ws["A1"].value
    assert [c.value for c in ws[3]][:4] == ["排名", "承办单位", "派单量", "及时签收率"]
    first = [c for c in ws[4]]
    assert first[0].value == 1 and first[3].number_format == "0.0%" and 0 < first[3].value <= 1
    assert ws.max_row >= 3 + 12 + 1  # header, twelve departments, the district total

    with page.expect_download() as info:
        page.click("#export-csv")
    path = tmp_path / "board.csv"
    info.value.save_as(path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["排名", "承办单位", "派单量"] and len(rows) == 1 + 12 + 1
    assert rows[1][0] == "1" and rows[1][3].endswith("%")


def test_with_fewer_than_two_lists_of_ranked_units_the_lists_split_them(page, server, busy, runtime):
    """Nine ranked units (three of the twelve left with no tickets): five red, four black,
    none on both lists, and the page says how the lists were cut."""
    with runtime.db.session() as s:
        quiet = [busy[code] for code in ("hr", "civil", "street_b")]
        for row in s.exec(select(Callback).where(Callback.department_id.in_(quiet))).all():
            s.delete(row)
        for row in s.exec(select(Assignment).where(Assignment.department_id.in_(quiet))).all():
            s.delete(row)
        s.flush()
        totals.rebuild(s)
    login(page, server, "supervisor")
    page.goto(f"{server}/performance")
    assert page.locator("#board-table tbody td.pf-rank").all_inner_texts().count("9") == 1
    red = page.locator("#red-list li .pf-list-name").all_inner_texts()
    black = page.locator("#black-list li .pf-list-name").all_inner_texts()
    assert len(red) == 5 and len(black) == 4 and not set(red) & set(black)
    assert "后4名" in page.inner_text("#black-title")
    note = page.inner_text("#lists-note")
    assert "共 9 个" in note and "前 5 名列红榜" in note and "其余 4 个列黑榜" in note
    page.locator("#red-list").scroll_into_view_if_needed()
    _shoot(page, "performance-lists-split.png")


def test_every_rate_on_the_board_is_the_fraction_under_it(page, server, busy):
    """Each rate shown is the numerator shown under it over the denominator, and its link
    lists the numerator's tickets: every department, every rate, and the district total."""
    login(page, server, "supervisor")
    page.goto(f"{server}/performance")
    rows = page.locator("#board-table tbody tr[data-department], #board-table tfoot tr")
    assert rows.count() == 13
    checked = 0
    for i in range(rows.count()):
        row = rows.nth(i)
        for rate in RATES:
            cell = row.locator(f"td[data-rate={rate.name}]")
            shown, fraction = cell.inner_text().split()
            n, d = (int(x) for x in fraction.split("/"))
            assert d > 0 and abs(float(shown.rstrip("%")) - 100 * n / d) <= 0.05 + 1e-9, (i, rate.name, shown, n, d)
            if cell.locator("a").count():
                assert f"metric={rate.numerator}&" in cell.locator("a").get_attribute("href")
            checked += 1
    assert checked == 13 * len(RATES)


def test_the_analysis_page(page, server, busy, tmp_path):
    login(page, server, "supervisor")
    page.goto(f"{server}/analysis")
    for chart in ("#chart-day", "#chart-type", "#chart-category", "#chart-hour", "#chart-street", "#chart-community"):
        _charted(page, chart)
    kpi = page.inner_text("#kpi-total")
    assert "件" in kpi and "环比" in kpi and "↑" in kpi  # November is busier than October
    # The slower parts come after the page (htmx), with their figures in the summary row.
    page.wait_for_selector("#hotspot-table")
    page.wait_for_selector("#repeat-table")
    page.wait_for_selector("#word-cloud:not(.pf-loading) span")
    assert page.inner_text("#kpi-hot-n") == f"{page.locator('#hotspot-table tbody tr').count()}个"
    assert int(page.inner_text("#kpi-repeat-n").rstrip("组")) >= 1
    assert page.locator("#hotspot-table tbody tr").count() >= 1
    assert "噪声扰民" in page.inner_text("#hotspot-table")
    assert "东城街道和平社区" in page.inner_text("#surge-table")
    assert "13800138000" in page.inner_text("#repeat-table")  # a supervisor sees the number
    assert page.locator("#word-cloud span").count() >= 10
    assert page.locator(".rising-table tbody tr").count() >= 1
    _shoot(page, "analysis.png")

    with page.expect_download() as info:
        page.click("#export-xlsx")
    path = tmp_path / "analysis.xlsx"
    info.value.save_as(path)
    wb = load_workbook(path)
    assert {"诉求类型", "问题分类", "街道", "社区", "每日受理", "时段分布", "热点问题", "重复诉求", "热词"} <= set(
        wb.sheetnames
    )
    ws = wb["问题分类"]
    assert ws["A1"].value.endswith("诉求分析（2026年11月，截至20日）") and ws["A4"].value == "噪声扰民"
    assert ws["C4"].number_format == "0.0%"

    page.click("#export-csv-menu")
    with page.expect_download() as info:
        page.click(".pf-menu-items a[data-table=street]")
    path = tmp_path / "street.csv"
    info.value.save_as(path)
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))
    assert rows[0] == ["街道", "本期件数", "占比", "上期件数", "环比增减"]
    assert {r[0] for r in rows[1:]} == {"东城街道", "西城街道", "南湖街道", "北山街道"}


def test_the_printable_report(page, server, busy, runtime):
    made = generate_due_reports(runtime, runtime.now())
    weekly = next(r for r in made if r.kind == "weekly")
    assert weekly.title == "12345热线工作周报（2026年第46周，11月9日—11月15日）"
    login(page, server, "supervisor")
    page.goto(f"{server}/reports")
    assert page.locator("#report-table tbody tr").count() == 3
    page.click(f"#report-table a:has-text('{weekly.title}')")
    page.wait_for_url(f"**/reports/{weekly.id}")
    _charted(page, "#rp-volume")
    assert "全区12345热线诉求办理情况" in page.inner_text(".rp-title")
    assert page.locator("#rp-ranking tbody tr").count() == 12
    assert "本期共受理群众诉求" in page.inner_text("#rp-overview")
    # On paper: an A4 sheet, no navigation, each part on a page of its own.
    page.set_viewport_size({"width": 794, "height": 1123})
    page.emulate_media(media="print")
    assert page.locator(".sidebar").is_hidden() and page.locator(".topbar").is_hidden()
    assert page.locator(".rp-toolbar").is_hidden()
    breaks = page.locator(".rp-break").evaluate_all("els => els.map(e => getComputedStyle(e).breakBefore)")
    assert breaks == ["page", "page"]
    width = page.evaluate("document.querySelector('#rp-ranking').getBoundingClientRect().right")
    assert width <= 794
    _shoot(page, "report-print.png")
    with page.expect_download() as info:
        page.emulate_media(media="screen")
        page.click("#report-xlsx")
    assert info.value.suggested_filename == f"{weekly.title}.xlsx"


def test_a_week_is_picked_by_its_words_in_any_browser(page, server, november, runtime):  # noqa: F811
    """Not every browser has a week input (Safari, Firefox): the week is a list, in words, from
    this week back a year, with the week shown chosen."""
    runtime.clock.set(local(2026, 12, 2, 10, 0))  # a Wednesday of week 49
    login(page, server, "supervisor")
    page.goto(f"{server}/performance?week=2026-W45")
    picker = page.locator("#pick-week")
    assert picker.evaluate("e => e.tagName") == "SELECT"
    options = picker.locator("option")
    assert options.count() == 53
    assert options.first.inner_text() == "2026年第49周（11月30日—12月6日）"
    assert picker.evaluate("e => e.selectedOptions[0].textContent") == "2026年第45周（11月2日—11月8日）"
    picker.select_option(label="2026年第46周（11月9日—11月15日）")
    with page.expect_navigation():
        page.locator("form:has(#pick-week) button[type=submit]").click()
    assert "week=2026-W46" in page.url
    assert page.inner_text("#period-label") == "2026年第46周（11月9日—11月15日）"
    # A week older than the list is added to it, chosen, rather than lost.
    page.goto(f"{server}/performance?week=2025-W10")
    assert picker.evaluate("e => e.selectedOptions[0].value") == "2025-W10"
