"""The supervisor workbench in a real browser: the overdue dashboard (counts, chart, urging
and supervising) and the review queues (returns, extensions, suspensions, replies)."""

import heapq
import itertools
import random
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from hotline.deadlines import sla
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.models import Approval, Department, Notification, SupervisionOrder, Ticket
from hotline.scheduler import sweep
from hotline.supervision import answer_order, yellow_horizon
from hotline.workflow.definition import Limit
from tests.conftest import local
from tests.test_pages_department import act, actor, number_of, ticket
from tests.test_pages_smoke import login

SHOTS = Path(__file__).parent / "artifacts"

NOW = local(2026, 11, 11, 10, 0)  # a Wednesday


def test_every_yellow_deadline_lies_within_the_dashboard_horizon(runtime):
    """The dashboard reads due_at only up to the horizon: no yellow ticket may lie beyond it."""
    wf = runtime.workflows.get("default")
    limits = [Limit(working_days=d) for d in (1, 3, 7, 10)] + [Limit(hours=24), Limit(minutes=30)]
    with runtime.db.read_session() as s:
        cal = runtime.calendar(s)
        # Starts every 7 hours over three weeks around the National Day holiday (10-01 to 10-07,
        # with the make-up working days around it) and their weekends.
        for start in (local(2026, 9, 24, 0, 0) + timedelta(hours=7 * i) for i in range(72)):
            for limit in limits:
                deadline = sla.due(cal, start, limit).at
                warn = sla.warn_time(cal, wf, limit, deadline, start)
                for now in (warn, warn + timedelta(seconds=1), warn + (deadline - warn) / 2):
                    if warn <= now < deadline:
                        assert deadline <= yellow_horizon(runtime, s, now), (start, limit, now)


def dept_row(page, code: str) -> dict[str, int]:
    row = page.locator(f"#dept-table tr[data-department='{code}']")
    return {level: int(row.locator(f"td[data-level='{level}']").inner_text()) for level in ("yellow", "red")}


def listed(page) -> list[int]:
    return [int(r.get_attribute("data-ticket")) for r in page.locator("#overdue-table tbody tr[data-ticket]").all()]


def signed(runtime, when, **kwargs) -> int:
    tid = ticket(runtime, when, **kwargs)
    dept = kwargs.get("department", "housing")
    act(runtime, tid, "sign", f"{dept}_h", when + timedelta(minutes=30))
    return tid


def build_overdue(runtime) -> dict[str, list[int]]:
    """A hand-built set at NOW: housing 1 yellow 2 red, urban 2 yellow 1 red, market 1 yellow."""
    mon, thu = local(2026, 11, 2, 9, 0), local(2026, 10, 29, 9, 0)
    red = [
        signed(runtime, thu, case=0),  # handle by 11-09
        ticket(runtime, local(2026, 11, 9, 9, 0), case=1),  # sign by 11-10
        ticket(runtime, local(2026, 11, 9, 9, 30), case=2, department="urban"),
    ]
    yellow = [
        signed(runtime, mon, case=3),  # handle by 11-11, yellow from 11-10 23:59:59
        signed(runtime, mon, case=4, department="urban"),
        signed(runtime, mon, case=5, department="urban"),
        signed(runtime, mon, case=6, department="market"),
    ]
    green = [
        ticket(runtime, local(2026, 11, 11, 8, 30), case=7),
        ticket(runtime, local(2026, 11, 10, 9, 0), case=8, department="water"),  # sign by 11-11, yellow at 14:15
    ]
    # Late, but no longer the department's clock: replied, and suspended.
    late_replied = signed(runtime, thu, case=9)
    act(runtime, late_replied, "reply", "housing_h", local(2026, 11, 10, 17, 0), result="已处理完毕。")
    late_suspended = signed(runtime, thu, case=10)
    act(runtime, late_suspended, "request_suspension", "housing_h", local(2026, 11, 3, 9, 0), reason="需等待法院判决")
    act(runtime, late_suspended, "approve_suspension", "supervisor", local(2026, 11, 3, 10, 0))
    for day in (9, 10, 11):
        sweep(runtime, now=local(2026, 11, day, 9, 0))
    return {"red": red, "yellow": yellow, "green": green, "other": [late_replied, late_suspended]}


@pytest.mark.browser
def test_dashboard_counts_by_department_and_level_and_urges(page, server, runtime, district):
    made = build_overdue(runtime)
    runtime.clock.set(NOW)
    login(page, server, "supervisor")
    assert page.url.endswith("/supervisor/dashboard")
    assert page.inner_text("#kpi-red .kpi-n") == "3"
    assert page.inner_text("#kpi-yellow .kpi-n") == "4"
    assert dept_row(page, "housing") == {"yellow": 1, "red": 2}
    assert dept_row(page, "urban") == {"yellow": 2, "red": 1}
    assert dept_row(page, "market") == {"yellow": 1, "red": 0}
    assert page.locator("#dept-table tr[data-department='water']").count() == 0
    # Supervision orders waiting for an answer (the sweep supervised housing's first red one).
    assert page.inner_text("#kpi-orders .kpi-n") == "1"

    # The list: every yellow and red ticket, the longest overdue first.
    assert sorted(listed(page)) == sorted(made["red"] + made["yellow"])
    assert listed(page)[0] == made["red"][0]
    assert "超期" in page.inner_text(f"#overdue-table tr[data-ticket='{made['red'][0]}']")
    assert "剩余" in page.inner_text(f"#overdue-table tr[data-ticket='{made['yellow'][0]}']")
    # The trend chart draws (ECharts' SVG renderer).
    page.wait_for_selector("#trend-chart svg")

    page.click("#kpi-red")
    page.wait_for_url("**level=red*")
    assert sorted(listed(page)) == sorted(made["red"])
    page.select_option("#f-department", "urban")
    page.wait_for_url("**department=urban*")
    assert listed(page) == [made["red"][2]]
    page.goto(f"{server}/supervisor/dashboard?sort=department&dir=asc")
    departments = page.locator("#overdue-table tbody tr td:nth-child(3)").all_inner_texts()
    assert departments == sorted(departments, key=["区住建局", "区市场监管局", "区城管局"].index)
    page.goto(f"{server}/supervisor/dashboard?sort=deadline&dir=desc")
    assert listed(page)[0] in made["yellow"] and listed(page)[-1] == made["red"][0]

    # Urge one of urban's yellow tickets with a message, from the dashboard.
    target = made["yellow"][1]
    page.goto(f"{server}/supervisor/dashboard?department=urban")
    page.click(f"#overdue-table tr[data-ticket='{target}'] button[data-notice=urge]")
    page.wait_for_selector("#notice-dialog[open]")
    page.fill("#notice-message", "请今天下班前办结并回复市民")
    page.click("#notice-send")
    page.wait_for_url("**done=urge*")
    assert f"已催办工单 {number_of(runtime, target)}" in page.inner_text(".flash-ok")
    assert "department=urban" in page.url
    # Supervise another without a message: the default text goes out.
    other = made["yellow"][2]
    page.click(f"#overdue-table tr[data-ticket='{other}'] button[data-notice=supervise]")
    page.click("#notice-send")
    page.wait_for_url("**done=supervise*")
    with runtime.db.read_session() as s:
        urban = s.exec(select(Department).where(Department.code == "urban")).one()
        note = s.exec(select(Notification).where(Notification.ticket_id == target, Notification.kind == "urge")).one()
        assert (note.kind, note.role, note.department_id) == ("urge", "handler", urban.id)
        assert note.body == "请今天下班前办结并回复市民"
        order = s.exec(select(SupervisionOrder).where(SupervisionOrder.ticket_id == other)).one()
        assert order.department_id == urban.id and order.status == "open"
    assert page.inner_text("#kpi-orders .kpi-n") == "2"

    # The handler sees the urging on the inbox.
    page.context.clear_cookies()
    login(page, server, "urban_h")
    assert "请今天下班前办结并回复市民" in page.inner_text(".notice-list")


@pytest.mark.browser
def test_admin_may_view_the_dashboard_but_not_act(page, server, runtime, district):
    build_overdue(runtime)
    runtime.clock.set(NOW)
    login(page, server, "admin")
    page.goto(f"{server}/supervisor/dashboard")
    assert page.inner_text("#kpi-red .kpi-n") == "3"
    assert page.locator("button[data-notice]").count() == 0
    page.goto(f"{server}/supervisor/reviews")
    assert "仅督办员可以审核" in page.inner_text("main") or "暂无待审核" in page.inner_text("main")


# A month of a busy district, for the screenshot: realistic volumes, played in time order
# (intake, signing, replies, the scheduler's sweeps), so the trend is the ladder's own.
WORK = {
    "housing": ["小区电梯停运多日无人维修", "物业擅自上调物业费", "楼顶渗水多次报修未果", "地下车库积水严重"],
    "urban": ["夜市占道经营影响通行", "小区内违章搭建阳光房", "渣土车沿途撒漏", "人行道共享单车乱停放"],
    "market": ["超市销售过期食品", "健身房关门拒不退费", "菜市场电子秤缺斤短两", "培训机构虚假宣传"],
    "water": ["片区停水未提前通知", "高层住户水压不足", "自来水浑浊发黄", "路面窨井盖缺失"],
    "street_a": ["背街小巷垃圾清运不及时", "广场舞音响噪音扰民", "老旧小区楼道堆放杂物", "社区路灯损坏"],
}
HANDLE_DAYS = {"complaint": 7, "help": 5, "consultation": 3, "report": 7, "suggestion": 10}


def busy_month(runtime) -> None:
    rng = random.Random(12345)
    seq = itertools.count()
    plan: list = []
    with runtime.db.read_session() as s:
        cal = runtime.calendar(s)
    day = local(2026, 10, 12, 0, 0)
    while day < NOW:
        if cal.is_working_day(day.date()):
            heapq.heappush(plan, (day + timedelta(hours=9), next(seq), "sweep", ()))
            heapq.heappush(plan, (day + timedelta(hours=15), next(seq), "sweep", ()))
            for _ in range(rng.randint(6, 10)):
                dept = rng.choice(list(WORK))
                kind = rng.choice(["complaint", "complaint", "help", "consultation", "report", "suggestion"])
                when = day + timedelta(hours=8, minutes=rng.randint(30, 540))
                heapq.heappush(plan, (when, next(seq), "new", (dept, kind, rng.choice(WORK[dept]))))
        day += timedelta(days=1)
    while plan and plan[0][0] < NOW:
        when, _, what, args = heapq.heappop(plan)
        if what == "sweep":
            sweep(runtime, now=when)
        elif what == "new":
            dept, kind, title = args
            tid = ticket(runtime, when, department=dept, type=kind, title=title)
            if rng.random() < 0.96:
                signed_at = when + timedelta(minutes=rng.randint(20, 300))
                heapq.heappush(plan, (signed_at, next(seq), "sign", (tid, dept, kind)))
        elif what == "sign":
            tid, dept, kind = args
            act(runtime, tid, "sign", f"{dept}_h", when)
            limit, fate = HANDLE_DAYS[kind], rng.random()
            days = rng.randint(1, limit - 1) if fate < 0.72 else limit + rng.randint(1, 4) if fate < 0.9 else None
            if days:
                replied_at = cal.add_working_days(when, days).at - timedelta(hours=rng.randint(3, 9))
                heapq.heappush(plan, (replied_at, next(seq), "reply", (tid, dept)))
        else:
            tid, dept = args
            act(runtime, tid, "reply", f"{dept}_h", when, result="已办理完毕，并与市民沟通。")
    sweep(runtime, now=NOW)


@pytest.mark.browser
def test_dashboard_screenshot_of_a_busy_month(page, server, runtime, district):
    busy_month(runtime)
    runtime.clock.set(NOW)
    login(page, server, "supervisor")
    page.wait_for_selector("#trend-chart svg")
    red = int(page.inner_text("#kpi-red .kpi-n"))
    yellow = int(page.inner_text("#kpi-yellow .kpi-n"))
    rows = page.locator("#dept-table tbody tr[data-department]").all()
    assert red == sum(int(r.locator("td[data-level='red']").inner_text()) for r in rows) > 0
    assert yellow == sum(int(r.locator("td[data-level='yellow']").inner_text()) for r in rows)
    assert f"共 {red + yellow} 件" in page.inner_text("#list .table-foot")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "supervisor-dashboard.png"), full_page=True)


def build_reviews(runtime) -> dict[str, list[int]]:
    """Requests waiting for the centre on Wednesday 2026-11-04 10:00."""
    mon, tue = local(2026, 11, 2, 9, 0), local(2026, 11, 3, 9, 0)
    made: dict[str, list[int]] = {"return": [], "extension": [], "suspension": [], "reply": []}
    for case, code, reason in [
        (0, "territory", "该小区属东城街道辖区，非本单位职责范围"),
        (1, "ownership", "涉事车库产权属开发商，应由市场监管部门处理"),
    ]:
        tid = ticket(runtime, tue, case=case)
        act(
            runtime,
            tid,
            "return",
            "housing_h",
            tue + timedelta(hours=5),
            reason=reason,
            reason_code=code,
            basis="《物业管理条例》第三十二条",
        )
        made["return"].append(tid)
    tid = ticket(runtime, tue, case=8, department="urban", title="滨江路沿街商铺油烟直排扰民")
    act(
        runtime,
        tid,
        "return",
        "urban_h",
        tue + timedelta(hours=6),
        reason="餐饮油烟属生态环境部门监管职责",
        reason_code="overlap",
    )
    made["return"].append(tid)
    for case, days, reason in [(2, 3, "需协调施工队进场维修，材料采购周期较长"), (3, 5, "需召开业主大会表决")]:
        tid = signed(runtime, mon, case=case)
        act(runtime, tid, "request_extension", "housing_h", tue, days=days, reason=reason)
        made["extension"].append(tid)
    tid = signed(runtime, mon, case=4)
    act(runtime, tid, "request_suspension", "housing_h", tue, reason="当事人出国，需待其回国后现场核实")
    made["suspension"].append(tid)
    for case in (5, 6):
        tid = signed(runtime, mon, case=case)
        act(
            runtime,
            tid,
            "reply",
            "housing_h",
            tue + timedelta(hours=case),
            result="已现场核实并督促物业整改，问题已解决。",
        )
        made["reply"].append(tid)
    return made


def decide(page, ticket_id: int, button: str, **fields: str) -> None:
    card = page.locator(f"#review-{ticket_id}")
    for name, value in fields.items():
        field = card.locator(f"[name={name}]")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    with page.expect_navigation():
        card.locator(f"button:has-text('{button}')").click()


def review_count(page, tab: str) -> int:
    return int(page.inner_text(f"#tab-{tab} .count"))


@pytest.mark.browser
def test_review_queues_decide_returns_extensions_suspensions_and_replies(page, server, runtime, district):
    made = build_reviews(runtime)
    runtime.clock.set(local(2026, 11, 4, 10, 0))
    login(page, server, "supervisor")
    page.goto(f"{server}/supervisor/reviews")
    assert [review_count(page, t) for t in ("return", "extension", "suspension", "reply")] == [3, 2, 1, 2]
    first = page.inner_text(f"#review-{made['return'][0]}")
    assert "属地不符" in first and "非本单位职责范围" in first and "区住建局 · housing_h" in first
    assert "物业管理条例" in first and "职能交叉" in page.inner_text(f"#review-{made['return'][2]}")
    # Each card carries the citizen's request, so a return or a reply is judged without opening it.
    for tid in made["return"]:
        with runtime.db.read_session() as s:
            content = s.get(Ticket, tid).content
        assert content in page.inner_text(f"#review-{tid} .citizen-request")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "supervisor-reviews.png"), full_page=True)

    # A return redispatched to the urban management bureau.
    r1, r2, _ = made["return"]
    # Redispatching needs the department: the card comes back as filled in, the reason on it.
    decide(page, r1, "改派", reason="请与住建局核实后再定")
    card = page.locator(f"#review-{r1}")
    assert card.locator(".flash-error").inner_text() == "请选择改派的承办单位后再提交"
    assert card.locator("[name=reason]").input_value() == "请与住建局核实后再定"
    assert page.locator(".review-refused").count() == 1
    decide(page, r1, "改派", department="urban")
    page.wait_for_url("**done=redispatch*")
    assert f"已改派：工单 {number_of(runtime, r1)}" in page.inner_text(".flash-ok")
    assert review_count(page, "return") == 2
    # Rejecting needs a reason; then the ticket goes back where it came from.
    decide(page, r2, "驳回退单", department="market")
    assert page.locator(f"#review-{r2} .flash-error").inner_text() == "请填写审核意见后再提交"
    assert page.locator(f"#review-{r2} [name=department]").input_value() == "market"
    decide(page, r2, "驳回退单", reason="经核实属本单位职责，请继续办理")
    page.wait_for_url("**done=reject_return*")
    with runtime.db.read_session() as s:
        t1, t2 = s.get(Ticket, r1), s.get(Ticket, r2)
        urban = s.exec(select(Department).where(Department.code == "urban")).one()
        assert (t1.state, t1.main_department_id, t1.dispatch_count) == ("dispatched", urban.id, 2)
        assert t2.state == "dispatched"
        assert s.exec(select(Approval).where(Approval.ticket_id == r2)).one().status == "rejected"

    # An extension approved moves the handling deadline by the working days granted.
    page.click("#tab-extension")
    page.wait_for_url("**tab=extension*")
    e1, e2 = made["extension"]
    card = page.inner_text(f"#review-{e1}")
    assert "3 个工作日" in card and "材料采购周期较长" in card and "2026-11-16 23:59" in card
    with runtime.db.read_session() as s:
        before = s.get(Ticket, e1).handle_by
    decide(page, e1, "批准延期")
    page.wait_for_url("**done=approve_extension*")
    decide(page, e2, "驳回延期", reason="可先行处置，不予延期")
    page.wait_for_url("**done=reject_extension*")
    with runtime.db.read_session() as s:
        after = s.get(Ticket, e1)
        assert before.astimezone(LOCAL_TZ).date().isoformat() == "2026-11-11"
        assert after.handle_by.astimezone(LOCAL_TZ).date().isoformat() == "2026-11-16"
        assert after.extension_days == 3
        assert s.get(Ticket, e2).extension_days == 0
    assert review_count(page, "extension") == 0

    # A suspension approved: the clock stops.
    page.click("#tab-suspension")
    page.wait_for_url("**tab=suspension*")
    (s1,) = made["suspension"]
    assert "当事人出国" in page.inner_text(f"#review-{s1}")
    decide(page, s1, "批准挂起", reason="同意挂起")
    page.wait_for_url("**done=approve_suspension*")
    with runtime.db.read_session() as s:
        t = s.get(Ticket, s1)
        assert (t.state, t.due_at) == ("suspended", None)

    # A reply rejected, replied again by the department, then approved.
    page.click("#tab-reply")
    page.wait_for_url("**tab=reply*")
    p1, p2 = made["reply"]
    assert "问题已解决" in page.inner_text(f"#review-{p1}")
    with runtime.db.read_session() as s:
        assert s.get(Ticket, p1).content in page.inner_text(f"#review-{p1} .citizen-request")
    decide(page, p1, "审核退回", reason="未说明整改完成时间，请补充")
    page.wait_for_url("**done=reject_reply*")
    with runtime.db.read_session() as s:
        assert s.get(Ticket, p1).state == "in_progress"
    assert review_count(page, "reply") == 1
    act(runtime, p1, "reply", "housing_h", local(2026, 11, 4, 10, 0), result="已补充：整改于11月6日前完成。")
    page.goto(f"{server}/supervisor/reviews?tab=reply")
    assert review_count(page, "reply") == 2
    decide(page, p1, "审核通过")
    page.wait_for_url("**done=approve_reply*")
    decide(page, p2, "审核通过")
    with runtime.db.read_session() as s:
        assert s.get(Ticket, p1).state == s.get(Ticket, p2).state == "pending_callback"
    assert review_count(page, "reply") == 0
    assert "暂无待审核事项" in page.inner_text("main")


@pytest.mark.browser
def test_a_decision_on_a_stale_queue_is_refused_plainly(page, server, runtime, district):
    made = build_reviews(runtime)
    runtime.clock.set(local(2026, 11, 4, 10, 0))
    login(page, server, "supervisor")
    page.goto(f"{server}/supervisor/reviews?tab=reply")
    p1 = made["reply"][0]
    act(runtime, p1, "approve_reply", "supervisor", local(2026, 11, 4, 10, 1))
    decide(page, p1, "审核退回", reason="请补充")
    assert "已被他人处理" in page.inner_text(".flash-error")
    with runtime.db.read_session() as s:
        assert s.get(Ticket, p1).state == "pending_callback"


def progress_of(page, ticket_id: int) -> str:
    return page.inner_text(f"#overdue-table tr[data-ticket='{ticket_id}'] td:nth-child(7)").strip()


@pytest.mark.browser
def test_supervision_progress_follows_the_orders_and_a_second_order_is_refused(page, server, runtime, district):
    """督办进度 says 已督办 once a supervisor supervises (answered or not); a second 督办 on a
    ticket whose order waits for its answer is refused with the reason, and no order is added."""
    late = signed(runtime, local(2026, 10, 29, 9, 0), case=0)  # handle by 11-09: red at NOW
    runtime.clock.set(NOW)
    login(page, server, "supervisor")
    stale = page.context.new_page()
    stale.goto(f"{server}/supervisor/dashboard")
    page.click(f"#overdue-table tr[data-ticket='{late}'] button[data-notice=urge]")
    page.click("#notice-send")
    page.wait_for_url("**done=urge*")
    assert progress_of(page, late) == "已催办"
    # Urged just now: the button waits out the workflow's interval, and says until when.
    urge = page.locator(f"#overdue-table tr[data-ticket='{late}'] button[data-notice=urge]")
    assert urge.is_disabled() and urge.get_attribute("title") == "刚催办过，10:30 后可再催办"
    page.click(f"#overdue-table tr[data-ticket='{late}'] button[data-notice=supervise]")
    page.click("#notice-send")
    page.wait_for_url("**done=supervise*")
    assert progress_of(page, late) == "已督办·待答复"
    assert page.locator(f"#overdue-table tr[data-ticket='{late}'] button[data-notice=supervise]").is_disabled()
    page.screenshot(path=str(SHOTS / "supervisor-progress.png"), full_page=True)

    # From a page shown before the order: refused, plainly, and still one order.
    stale.click(f"#overdue-table tr[data-ticket='{late}'] button[data-notice=supervise]")
    stale.click("#notice-send")
    stale.wait_for_selector(".flash-error")
    assert "已有督办单" in stale.inner_text(".flash-error") and "未重复下发" in stale.inner_text(".flash-error")
    # A second 催办 from a page shown before the first: refused too, saying when it went.
    stale.goto(f"{server}/supervisor/dashboard")
    again = stale.locator(f"#overdue-table tr[data-ticket='{late}'] button[data-notice=urge]")
    again.evaluate("b => b.disabled = false")
    again.click()
    stale.click("#notice-send")
    stale.wait_for_selector(".flash-error")
    assert "30 分钟内不重复催办（10:30 后可再催办）" in stale.inner_text(".flash-error")
    with runtime.db.read_session() as s:
        orders = s.exec(select(SupervisionOrder).where(SupervisionOrder.ticket_id == late)).all()
        assert len(orders) == 1
        order_id = orders[0].id

    # The leader answers: the list says so, and a new order may be issued.
    with runtime.db.session() as s:
        answer_order(s, runtime, order_id, actor(runtime, "housing_l"), "已安排专人今日办结", now=NOW)
    page.goto(f"{server}/supervisor/dashboard")
    assert progress_of(page, late) == "已督办·已答复"
    assert page.locator(f"#overdue-table tr[data-ticket='{late}'] button[data-notice=supervise]").is_enabled()
