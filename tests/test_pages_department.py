"""The department workbench in a real browser: the inbox by tab, signing, co-handling,
what another department sees, and the leader answering a supervision order."""

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from hotline.models import Notification, SupervisionOrder, Ticket, TicketEvent, User
from hotline.scheduler import sweep
from hotline.tickets import create_ticket
from hotline.workflow.engine import Actor, fire
from tests.conftest import local
from tests.test_pages_smoke import login

SHOTS = Path(__file__).parent / "artifacts"
AGENT = Actor(None, "agent", "agent")

pytestmark = pytest.mark.browser

# Believable titles and places, so that the screenshots read like a district's inbox.
CASES = [
    ("0101", "阳光花园小区电梯频繁故障，物业维修不及时", "西城街道", "和平社区"),
    ("0101", "锦绣家园物业擅自提高停车管理费", "东城街道", "东风社区"),
    ("0101", "翠苑小区楼顶防水层破损，雨天顶楼渗水", "西城街道", "新华社区"),
    ("0101", "金桥新村二期公共维修资金使用不公开", "南湖街道", "金桥社区"),
    ("0101", "幸福里小区消防通道长期被车辆占用", "西城街道", "幸福社区"),
    ("0101", "御景湾小区地下车库照明损坏多日未修", "东城街道", "御景社区"),
    ("0101", "春晖苑物业公司撤场后小区无人管理", "北关街道", "春晖社区"),
    ("0101", "和平里老旧小区加装电梯进展缓慢", "西城街道", "和平社区"),
    ("0101", "滨河湾小区二次供水水箱清洗不及时", "南湖街道", "滨河社区"),
    ("0101", "新城名苑开发商延期交房未给说法", "北关街道", "新城社区"),
    ("0101", "咨询老旧小区改造项目申报条件", "东城街道", "东风社区"),
    ("0101", "建议在绿洲家园增设电动车充电桩", "南湖街道", "绿洲社区"),
    ("0101", "丽都花园单元门禁损坏求助维修", "北关街道", "丽都社区"),
    ("0101", "举报盛世华庭物业私自出租公共用房", "西城街道", "新华社区"),
    ("0101", "凤凰城小区装修噪音夜间扰民", "东城街道", "御景社区"),
    ("0101", "咨询商品房预售资金监管查询方式", "南湖街道", "金桥社区"),
]
# The extra tickets of the busy morning: (case, type, urgency, dispatched at).
MORNING = [
    (10, "consultation", "normal", (2026, 11, 10, 15, 20)),
    (11, "suggestion", "normal", (2026, 11, 10, 16, 5)),
    (12, "help", "normal", (2026, 11, 11, 8, 35)),
    (13, "report", "normal", (2026, 11, 11, 8, 50)),
    (14, "complaint", "normal", (2026, 11, 11, 9, 12)),
    (15, "consultation", "normal", (2026, 11, 11, 9, 40)),
]


def actor(runtime, username: str) -> Actor:
    """The gateway's actor for a test user."""
    with runtime.db.read_session() as s:
        return Actor.of(s.exec(select(User).where(User.username == username)).one())


def act(runtime, ticket_id: int, event: str, username: str, when: datetime, **payload: Any) -> None:
    """Fire one event through the gateway as a test user, at a given time."""
    who = AGENT if username == "agent" else actor(runtime, username)
    with runtime.db.session() as s:
        fire(s, runtime, ticket_id, event, who, payload, now=when)


def ticket(
    runtime,
    when: datetime,
    *,
    case: int = 0,
    department: str = "housing",
    co: list[str] | None = None,
    **fields: Any,
) -> int:
    """One ticket logged and dispatched through the gateway at `when`."""
    category, title, street, community = CASES[case % len(CASES)]
    data = {
        "type": "complaint",
        "category": category,
        "title": title,
        "content": f"市民来电反映：{title}，希望有关部门尽快处理。",
        "street": street,
        "community": community,
        "caller_name": "王先生",
        "caller_phone": "13900001111",
        **fields,
    }
    with runtime.db.session() as s:
        t, _ = create_ticket(s, runtime, AGENT, data, now=when)
        payload: dict[str, Any] = {"department": department}
        if co:
            payload["co_departments"] = co
        fire(s, runtime, t.id, "dispatch", AGENT, payload, now=when)
        return t.id


def number_of(runtime, ticket_id: int) -> str:
    with runtime.db.read_session() as s:
        return s.get(Ticket, ticket_id).number


def tab_count(page, key: str) -> int:
    return int(page.inner_text(f"#tab-{key} .count"))


def open_tab(page, key: str) -> None:
    page.click(f"#tab-{key}")
    page.wait_for_url(f"**tab={key}*")


def tab_counts(page) -> dict[str, int]:
    return {key: tab_count(page, key) for key in ("pending", "doing", "yellow", "red", "replied", "rehandle")}


def build_inbox(runtime) -> dict[str, list[int]]:
    """Housing's tickets in every tab, as of Wednesday 2026-11-11 10:00.

    Complaints: signing within 1 working day, handling within 7 (counted from the next
    day, ending 23:59:59); yellow when one working day is left.
    """
    mon, thu = local(2026, 11, 2, 9, 0), local(2026, 10, 29, 9, 0)
    made: dict[str, list[int]] = {k: [] for k in ("yellow", "red_doing", "pending", "red_pending", "replied", "rh")}
    for i in range(2):  # handle by 11-11: yellow on 11-11
        made["yellow"].append(tid := ticket(runtime, mon, case=i))
        act(runtime, tid, "sign", "housing_h", local(2026, 11, 2, 9, 30))
    tid = ticket(runtime, thu, case=2)  # handle by 11-09: red
    act(runtime, tid, "sign", "housing_h", local(2026, 10, 29, 10, 0))
    made["red_doing"].append(tid)
    for i in range(3, 5):  # dispatched this morning: sign by 11-12, green
        made["pending"].append(ticket(runtime, local(2026, 11, 11, 8, 40 + i), case=i))
    made["red_pending"].append(ticket(runtime, local(2026, 11, 9, 9, 0), case=5))  # sign by 11-10: red
    tid = ticket(runtime, mon, case=6)  # replied: waiting for the centre
    act(runtime, tid, "sign", "housing_h", local(2026, 11, 2, 10, 0))
    act(runtime, tid, "reply", "housing_h", local(2026, 11, 5, 16, 0), result="已约谈物业公司，限期整改完毕。")
    made["replied"].append(tid)
    tid = ticket(runtime, mon, case=7)  # sent back after a dissatisfied callback: rehandling
    act(runtime, tid, "sign", "housing_h", local(2026, 11, 2, 10, 0))
    act(runtime, tid, "reply", "housing_h", local(2026, 11, 3, 10, 0), result="已协调施工单位。")
    act(runtime, tid, "approve_reply", "supervisor", local(2026, 11, 3, 15, 0))
    act(runtime, tid, "callback", "agent", local(2026, 11, 4, 9, 0), reached=True, solved=False, rating=1)
    act(runtime, tid, "rehandle", "agent", local(2026, 11, 4, 9, 10), reason="市民反映问题仍未解决")
    made["rh"].append(tid)
    for case, kind, urgency, when in MORNING:
        made["pending"].append(ticket(runtime, local(*when), case=case, type=kind, urgency=urgency))
    # The scheduler's sweeps: warnings, urgings and a supervision order reach the department.
    sweep(runtime, now=local(2026, 11, 10, 9, 0))
    sweep(runtime, now=local(2026, 11, 11, 9, 0))
    return made


def test_inbox_tabs_count_each_state_and_the_handler_signs_from_the_list(page, server, runtime, district):
    made = build_inbox(runtime)
    co_id = ticket(runtime, local(2026, 11, 11, 9, 0), case=8, department="urban", co=["housing"])
    other = ticket(runtime, local(2026, 11, 11, 9, 5), case=9, department="market")
    runtime.clock.set(local(2026, 11, 11, 10, 0))

    login(page, server, "housing_h")
    assert page.url.endswith("/department/inbox")
    assert tab_counts(page) == {"pending": 10, "doing": 4, "yellow": 2, "red": 2, "replied": 1, "rehandle": 1}
    table = page.locator("#inbox-table tbody")
    assert table.locator("tr[data-ticket]").count() == 10
    # Most urgent first: the overdue one leads, with how long it is overdue.
    first = table.locator("tr[data-ticket]").first
    assert first.get_attribute("data-ticket") == str(made["red_pending"][0])
    assert "超期" in first.inner_text() and "row-red" in first.get_attribute("class")
    co_row = table.locator(f"tr[data-ticket='{co_id}']")
    assert "协办" in co_row.inner_text()
    assert number_of(runtime, other) not in page.inner_text("main")
    # The notices the scheduler sent the handlers: the warnings and the urgings.
    notices = page.inner_text(".notice-list")
    assert notices.count("预警") >= 2 and notices.count("催办") >= 2

    open_tab(page, "yellow")
    rows = page.locator("#inbox-table tbody tr[data-ticket]")
    assert sorted(int(r.get_attribute("data-ticket")) for r in rows.all()) == sorted(made["yellow"])
    assert all("剩余" in r.inner_text() for r in rows.all())
    open_tab(page, "red")
    assert {int(r.get_attribute("data-ticket")) for r in rows.all()} == {made["red_doing"][0], made["red_pending"][0]}
    open_tab(page, "replied")
    assert [int(r.get_attribute("data-ticket")) for r in rows.all()] == made["replied"]
    assert "待审核" in page.inner_text("#inbox-table")
    open_tab(page, "rehandle")
    assert [int(r.get_attribute("data-ticket")) for r in rows.all()] == made["rh"]
    assert "重办" in page.inner_text("#inbox-table")

    # The keyboard: 1 goes back to 待签收.
    page.keyboard.press("1")
    page.wait_for_url("**tab=pending")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "department-inbox.png"), full_page=True)

    # Sign the green one dispatched this morning from the list.
    target = made["pending"][0]
    page.click(f"tr[data-ticket='{target}'] button:has-text('签收')")
    page.wait_for_url("**signed=*")
    assert f"已签收工单 {number_of(runtime, target)}" in page.inner_text(".flash-ok")
    assert (tab_count(page, "pending"), tab_count(page, "doing")) == (9, 5)
    with runtime.db.read_session() as s:
        assert s.get(Ticket, target).state == "in_progress"
        signed = s.exec(select(TicketEvent).where(TicketEvent.ticket_id == target, TicketEvent.event == "sign")).one()
        assert signed.actor_name == "housing_h"

    # The co-handled ticket: housing signs its own part; the ticket stays with urban, unsigned.
    page.click(f"tr[data-ticket='{co_id}'] button:has-text('签收')")
    page.wait_for_url("**signed=*")
    with runtime.db.read_session() as s:
        assert s.get(Ticket, co_id).state == "dispatched"
    open_tab(page, "doing")
    assert "协办" in page.inner_text(f"tr[data-ticket='{co_id}']")


def test_signing_a_ticket_someone_else_just_signed_says_so(page, server, runtime, district):
    (tid,) = [ticket(runtime, local(2026, 11, 2, 9, 0))]
    login(page, server, "housing_h")
    act(runtime, tid, "sign", "housing_l", local(2026, 11, 2, 9, 1))
    page.click(f"tr[data-ticket='{tid}'] button:has-text('签收')")
    assert "已被他人处理" in page.inner_text(".flash-error")
    assert tab_count(page, "pending") == 0 and tab_count(page, "doing") == 1


def test_each_department_sees_only_its_own_tickets_and_those_it_co_handles(page, server, runtime, district):
    made = build_inbox(runtime)
    shared = ticket(runtime, local(2026, 11, 11, 9, 0), case=8, department="housing", co=["urban"])
    runtime.clock.set(local(2026, 11, 11, 10, 0))

    login(page, server, "urban_h")
    assert tab_counts(page) == {"pending": 1, "doing": 0, "yellow": 0, "red": 0, "replied": 0, "rehandle": 0}
    row = page.locator(f"#inbox-table tr[data-ticket='{shared}']")
    assert "协办" in row.inner_text()
    text = page.inner_text("main")
    assert all(number_of(runtime, t) not in text for ids in made.values() for t in ids)

    page.context.clear_cookies()
    login(page, server, "market_h")
    assert set(tab_counts(page).values()) == {0}
    for key in ("pending", "doing", "yellow", "red", "replied", "rehandle"):
        page.goto(f"{server}/department/inbox?tab={key}")
        assert page.locator("#inbox-table tr[data-ticket]").count() == 0
    # A ticket of another department is not found from its page either.
    page.goto(f"{server}/tickets/{made['yellow'][0]}")
    assert "不存在" in page.inner_text("main")


def test_the_leader_answers_the_supervision_order_the_scheduler_issued(page, server, runtime, district):
    tid = ticket(runtime, local(2026, 11, 2, 9, 0))
    act(runtime, tid, "sign", "housing_h", local(2026, 11, 2, 9, 30))
    for day in (11, 12, 13):  # yellow, red (urged), one working day later: supervised
        sweep(runtime, now=local(2026, 11, day, 9, 0))
    runtime.clock.set(local(2026, 11, 13, 10, 0))
    with runtime.db.read_session() as s:
        order = s.exec(select(SupervisionOrder).where(SupervisionOrder.ticket_id == tid)).one()
    number = number_of(runtime, tid)

    login(page, server, "housing_l")
    assert page.inner_text(".callout .callout-n") == "1"
    notices = page.inner_text(".notice-list")
    assert f"督办单：工单 {number}" in notices
    page.click(".callout")
    page.wait_for_url("**/department/supervision")
    card = page.locator(f"#order-{order.id}")
    assert number in card.inner_text() and "系统自动督办" in card.inner_text()
    assert re.search(r"超期 \d+", card.inner_text())
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "department-supervision.png"), full_page=True)
    card.locator("textarea[name=answer]").fill("已责成物业科专人跟进，本周五前办结并回复市民。")
    card.locator("button[type=submit]").click()
    page.wait_for_url("**answered=*")
    assert f"已答复工单 {number} 的督办单" in page.inner_text(".flash-ok")
    assert "暂无待答复的督办单" in page.inner_text("main")
    assert "已责成物业科专人跟进" in page.inner_text("table")
    with runtime.db.read_session() as s:
        order = s.get(SupervisionOrder, order.id)
        assert order.status == "answered" and order.answer.startswith("已责成物业科")
        last = s.exec(select(TicketEvent).where(TicketEvent.ticket_id == tid).order_by(TicketEvent.id.desc())).first()
        assert (last.event, last.actor_name) == ("answer_supervision", "housing_l")
        # The handler saw the warning and the urging on the inbox.
        kinds = {n.kind for n in s.exec(select(Notification).where(Notification.ticket_id == tid))}
        assert {"warn", "urge", "supervise"} <= kinds


def test_handlers_cannot_open_the_supervision_orders(page, server, runtime, district):
    login(page, server, "housing_h")
    page.goto(f"{server}/department/supervision")
    assert "无权" in page.inner_text("main")
    page.goto(f"{server}/supervisor/dashboard")
    assert "无权" in page.inner_text("main")
