"""The agent workbench in a real browser: intake, the repeat check, merging, the callback queue."""

import re
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from hotline.directory import create_place
from hotline.models import Callback, Department, Ticket
from hotline.tickets import create_ticket, recent_tickets
from hotline.workflow.engine import Actor, fire
from tests.conftest import local
from tests.helpers import make_dispatched, sign_in
from tests.test_pages_smoke import fire_on_page, login

SHOTS = Path(__file__).parent / "artifacts"
PLACES = {"西城街道": ["和平社区", "光明社区"], "东城街道": ["朝阳社区", "新华社区"]}


@pytest.fixture
def places(runtime, district):
    with runtime.db.session() as s:
        for street, communities in PLACES.items():
            for community in communities:
                create_place(s, street=street, community=community)


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def switch_user(page, server: str, username: str) -> None:
    page.context.clear_cookies()
    login(page, server, username)


def watch_dialogs(page) -> list[str]:
    dialogs: list[str] = []

    def dismiss(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    return dialogs


def pick_category(page, text: str, code: str) -> None:
    """Type part of a category's name, then take the highlighted suggestion with Enter."""
    page.fill("#category_q", text)
    expect(page.locator(f"#category-suggest .suggest-item[data-code='{code}']")).to_be_visible()
    page.press("#category_q", "Enter")
    expect(page.locator("#category")).to_have_value(code)


def choose_place(page, street: str, community: str, address: str) -> None:
    page.select_option("#street", street)
    expect(page.locator(f"#community option[value='{community}']")).to_have_count(1)
    page.select_option("#community", community)
    page.fill("#address", address)


def ticket_id_from_flash(page) -> int:
    href = page.locator(".flash-ok a").get_attribute("href")
    return int(re.search(r"/tickets/(\d+)", href).group(1))


def handler(runtime, district, username: str, dept_code: str) -> Actor:
    with runtime.db.read_session() as s:
        dept = s.exec(select(Department).where(Department.code == dept_code)).one()
    return Actor(district.user_ids[username], username, "handler", dept.id)


def awaiting_callback(runtime, district, *, at: datetime, content: str, **fields) -> int:
    """A ticket logged, dispatched to 区住建局, signed, replied and approved at `at`."""
    agent = Actor(district.user_ids["agent"], "agent", "agent")
    supervisor = Actor(district.user_ids["supervisor"], "supervisor", "supervisor")
    housing = handler(runtime, district, "housing_h", "housing")
    with runtime.db.session() as s:
        data = {"type": "complaint", "category": "0101", "content": content, **fields}
        ticket, _ = create_ticket(s, runtime, agent, data, now=at)
        fire(s, runtime, ticket.id, "dispatch", agent, {}, now=at)
        fire(s, runtime, ticket.id, "sign", housing, {}, now=at)
        fire(s, runtime, ticket.id, "reply", housing, {"result": "已协调物业维修，电梯恢复运行"}, now=at)
        fire(s, runtime, ticket.id, "approve_reply", supervisor, {}, now=at)
        return ticket.id


def state_of(runtime, ticket_id: int) -> str:
    with runtime.db.read_session() as s:
        return s.get(Ticket, ticket_id).state


@pytest.mark.browser
def test_the_whole_loop_through_the_pages(page, server, runtime, district, places):
    dialogs = watch_dialogs(page)
    # The caller rang before about another matter, and a neighbour about the same building.
    (earlier,) = make_dispatched(
        runtime,
        1,
        now=local(2026, 10, 12, 14, 30),
        caller_phone="13900001111",
        caller_name="李女士",
        title="和平小区垃圾清运不及时",
        street="西城街道",
        community="和平社区",
        address="和平小区北门",
    )
    neighbour = awaiting_callback(
        runtime,
        district,
        at=local(2026, 10, 29, 10, 0),
        content="和平小区3栋电梯经常异响，担心安全",
        title="和平小区3栋电梯异响",
        caller_name="陈先生",
        caller_phone="13511112222",
        street="西城街道",
        community="和平社区",
        address="和平小区3栋1单元",
    )
    login(page, server, "agent")
    assert page.url.endswith("/agent/intake")
    page.fill("#caller_phone", "13900001111")
    # Enter moves on to the next field; it never sends the form half-filled.
    page.press("#caller_phone", "Enter")
    expect(page.locator("#caller_name")).to_be_focused()
    page.keyboard.type("李女士")
    page.click("label[for=type-complaint]")
    pick_category(page, "物业", "0101")
    expect(page.locator("#category_q")).to_have_value("城乡建设 › 物业管理 (0101)")
    choose_place(page, "西城街道", "和平社区", "和平小区3栋")
    page.fill("#content", "小区3号楼电梯停运一周，物业一直没有维修，老人上下楼困难。")
    expect(page.locator("#route-preview")).to_contain_text("区住建局")
    by_phone, by_place, similar = page.locator("#recent .recent-group").all()
    expect(by_phone.locator(".ri-no")).to_have_count(1)
    expect(by_phone.locator(".recent-item")).to_contain_text("和平小区垃圾清运不及时")
    expect(by_place.locator(".ri-title")).to_have_text(["和平小区3栋电梯异响"])
    expect(by_place.locator("button", has_text="并入此单")).to_have_count(1)
    # The neighbour's ticket is like this one, but shown once: under the same place.
    expect(similar).to_contain_text("近30天没有相似的未办结工单")
    shot(page, "agent-intake")
    page.press("#content", "Control+Enter")
    page.wait_for_url("**/agent/intake?done=dispatch*")
    expect(page.locator(".flash-ok")).to_contain_text("已派单至区住建局")
    tid = ticket_id_from_flash(page)
    # A fresh form for the next call.
    expect(page.locator("#content")).to_have_value("")

    switch_user(page, server, "housing_h")
    page.goto(f"{server}/tickets/{tid}")
    fire_on_page(page, "sign")
    fire_on_page(page, "reply", result="已联系物业更换电梯主板，电梯恢复运行。")
    expect(page.locator("main")).to_contain_text("待审核")

    switch_user(page, server, "supervisor")
    page.goto(f"{server}/tickets/{tid}")
    fire_on_page(page, "approve_reply")
    expect(page.locator("main")).to_contain_text("待回访")

    switch_user(page, server, "agent")
    awaiting_callback(
        runtime,
        district,
        at=local(2026, 10, 26, 10, 0),
        content="幸福里2栋楼道灯不亮，反映多次无人处理",
        caller_name="周先生",
        caller_phone="13312345678",
    )
    dissatisfied = awaiting_callback(
        runtime,
        district,
        at=local(2026, 10, 30, 15, 0),
        content="地下车库雨后漏水严重，车辆被泡",
        caller_name="吴女士",
        caller_phone="0571-88886666",
        confidential=True,
    )
    page.goto(f"{server}/agent/callbacks")
    card = page.locator(f"#cb-{tid}")
    expect(card).to_contain_text("已联系物业更换电梯主板")
    expect(card).to_contain_text("13900001111")
    expect(card.locator(".cb-fields dd").nth(3)).to_have_text("0 次")
    # The overdue callback comes first, in red.
    expect(page.locator(".cb-card").first).to_have_class(re.compile("lv-red"))
    expect(page.locator(".tabs a.t-red .count")).to_have_text("1")
    # A dissatisfied callback on another ticket: the queue then offers rehandling.
    other = page.locator(f"#cb-{dissatisfied}")
    other.locator("label", has_text="联系上").first.click()
    other.locator("label", has_text="未解决").click()
    other.locator("label", has_text="非常不满意").click()
    other.locator("button", has_text="记录回访").click()
    page.wait_for_url("**/agent/callbacks?*done=callback*")
    expect(page.locator(f"#cb-{dissatisfied} button", has_text="退回重办")).to_be_visible()
    shot(page, "agent-callbacks")

    card.locator("label", has_text="联系上").first.click()
    card.locator("label", has_text="已解决").click()
    card.locator("label", has_text="满意").nth(1).click()
    card.locator("input[name=comment]").fill("维修及时，谢谢")
    card.locator("button", has_text="记录回访").click()
    # Reached and satisfied: archived in the same action, no 归档 click left to make.
    expect(page.locator(".flash-ok")).to_contain_text("已记录满意回访，工单已归档")
    expect(page.locator(f"#cb-{tid}")).to_have_count(0)
    page.goto(f"{server}/tickets/{tid}")
    expect(page.locator("main")).to_contain_text("已归档")
    with runtime.db.read_session() as s:
        ticket = s.get(Ticket, tid)
        assert ticket.close_reason == "satisfied"
        assert [(c.reached, c.solved, c.rating) for c in s.exec(select(Callback).where(Callback.ticket_id == tid))] == [
            (True, True, 4)
        ]
    assert {state_of(runtime, earlier), state_of(runtime, neighbour)} == {"dispatched", "pending_callback"}
    assert dialogs == []


@pytest.mark.browser
def test_rehandle_from_the_queue_needs_a_reason(page, server, runtime, district):
    tid = awaiting_callback(runtime, district, at=local(2026, 10, 30, 15, 0), content="地下车库漏水严重")
    login(page, server, "agent")
    page.goto(f"{server}/agent/callbacks")
    card = page.locator(f"#cb-{tid}")
    # Not reached: solved and rating are hidden and not asked for.
    card.locator("label", has_text="未联系上").click()
    expect(card.locator("label", has_text="已解决")).to_be_hidden()
    card.locator("button", has_text="记录回访").click()
    expect(page.locator(".flash-ok")).to_contain_text("已记录回访")
    expect(card).to_contain_text("1 次（未联系上 1 / 3 次，满 3 次按“未回访”办结）")
    # Reached but no rating: refused with the Chinese message on the card, values kept.
    card.locator("label", has_text="联系上").first.click()
    card.locator("label", has_text="未解决").click()
    card.locator("button", has_text="记录回访").click()
    expect(card.locator(".card-error")).to_have_text("请选择满意度")
    expect(card.locator("input[name=solved][value=false]")).to_be_checked()
    card.locator("label", has_text="不满意").first.click()
    card.locator("button", has_text="记录回访").click()
    expect(page.locator(".flash-ok")).to_contain_text("已记录回访")
    # Rehandling without a reason is refused by the server too (the browser check bypassed).
    card.locator("form[action$='/rehandle'] input[name=reason]").evaluate("e => e.removeAttribute('required')")
    card.locator("button", has_text="退回重办").click()
    expect(card.locator(".card-error")).to_have_text("请填写重办理由")
    card.locator("form[action$='/rehandle'] input[name=reason]").fill("物业未实际维修，承办单位责任")
    card.locator("button", has_text="退回重办").click()
    expect(page.locator(".flash-ok")).to_contain_text("已退回重办")
    assert state_of(runtime, tid) == "in_progress"


@pytest.mark.browser
def test_script_in_a_ticket_is_shown_as_text_and_never_runs(page, server, runtime, district, places):
    dialogs = watch_dialogs(page)
    login(page, server, "agent")
    page.fill("#caller_phone", "13600003333")
    page.fill("#caller_name", "<b>王</b>")
    page.fill("#content", "<script>alert(1)</script>")
    page.keyboard.press("Alt+2")
    expect(page.locator("#answer")).to_be_focused()
    page.fill("#answer", "<img src=x onerror=alert(2)>")
    page.click("#go-answer")
    page.wait_for_url("**/agent/intake?done=answer*")
    tid = ticket_id_from_flash(page)
    assert state_of(runtime, tid) == "pending_callback"
    # The repeat check lists it under the caller's number, as text.
    page.fill("#caller_phone", "13600003333")
    expect(page.locator("#recent .ri-title")).to_have_text("<script>alert(1)</script>")
    page.goto(f"{server}/tickets/{tid}")
    expect(page.locator(".content-text").first).to_have_text("<script>alert(1)</script>")
    page.goto(f"{server}/agent/callbacks")
    card = page.locator(f"#cb-{tid}")
    expect(card).to_contain_text("<script>alert(1)</script>")
    expect(card).to_contain_text("<img src=x onerror=alert(2)>")
    expect(card).to_contain_text("<b>王</b>")
    assert page.locator("main script").count() == 0
    assert page.locator("main img").count() == 0
    assert dialogs == []


@pytest.mark.browser
def test_forms_without_the_csrf_token_are_refused(page, server, runtime, district):
    tid = awaiting_callback(runtime, district, at=local(2026, 10, 30, 15, 0), content="地下车库漏水严重")
    login(page, server, "agent")
    form = {"type": "complaint", "content": "无令牌的表单", "action": "dispatch", "department": "housing"}
    r = page.request.post(f"{server}/agent/intake", form=form, max_redirects=0)
    assert r.status == 403
    assert "CSRF" in r.text()
    r = page.request.post(f"{server}/agent/intake", form={**form, "csrf_token": "forged"}, max_redirects=0)
    assert r.status == 403
    r = page.request.post(f"{server}/agent/callbacks/{tid}/callback", form={"reached": "false"}, max_redirects=0)
    assert r.status == 403
    with runtime.db.read_session() as s:
        assert s.exec(select(Ticket).where(Ticket.content == "无令牌的表单")).first() is None
        assert s.exec(select(Callback).where(Callback.ticket_id == tid)).first() is None
    # The same post with the page's token goes through.
    token = page.locator("#intake-form input[name=csrf_token]").input_value()
    r = page.request.post(f"{server}/agent/intake", form={**form, "csrf_token": token}, max_redirects=0)
    assert r.status == 303
    assert "done=dispatch" in r.headers["location"]


@pytest.mark.browser
def test_roles_and_departments_see_only_their_own(page, server, runtime, district):
    (urban_ticket,) = make_dispatched(runtime, 1, now=local(2026, 11, 2, 8, 0), department="urban")
    login(page, server, "housing_h")
    response = page.goto(f"{server}/tickets/{urban_ticket}")
    assert response.status == 404
    expect(page.locator("main")).to_contain_text("工单不存在，或您无权查看")
    assert page.goto(f"{server}/agent/intake").status == 403
    assert page.goto(f"{server}/agent/callbacks").status == 403
    assert page.goto(f"{server}/agent/intake/recent?caller_phone=13812345678").status == 403
    # A supervisor may log and dispatch, but answering directly is the agent's.
    switch_user(page, server, "supervisor")
    assert page.goto(f"{server}/agent/intake").status == 200
    expect(page.locator("#go-dispatch")).to_be_visible()
    expect(page.locator("#go-answer")).to_have_count(0)


@pytest.mark.browser
def test_a_repeat_call_is_found_and_merged(page, server, runtime, district, places):
    (master,) = make_dispatched(
        runtime,
        1,
        now=local(2026, 10, 20, 10, 0),
        caller_phone="13700002222",
        street="东城街道",
        community="朝阳社区",
        address="朝阳里5号楼",
    )
    # Older than 90 days: not a recent ticket.
    make_dispatched(runtime, 1, now=local(2026, 7, 1, 10, 0), caller_phone="13700002222")
    with runtime.db.read_session() as s:
        number = s.get(Ticket, master).number
    login(page, server, "agent")
    page.fill("#caller_phone", "137 0000 2222")
    recent = page.locator("#recent")
    expect(recent.locator(".ri-no")).to_have_count(1)
    expect(recent.locator(".ri-no")).to_have_text(number)
    # The same place, found by street, community and the start of the address.
    choose_place(page, "东城街道", "朝阳社区", "朝阳里")
    expect(recent.locator(".recent-group").nth(1).locator(".ri-no")).to_have_text(number)
    page.fill("#content", "电梯还是没修好，再次反映")
    recent.locator(".recent-group").first.locator("button", has_text="并入此单").click()
    page.wait_for_url("**/agent/intake?done=merge*")
    with runtime.db.read_session() as s:
        repeat = s.exec(select(Ticket).where(Ticket.content == "电梯还是没修好，再次反映")).one()
        assert (repeat.state, repeat.master_id, repeat.caller_phone) == ("merged", master, "13700002222")
    # The message names both tickets: the new one, and the one it joined.
    expect(page.locator(".flash-ok")).to_contain_text(f"已将新工单 {repeat.number} 并入工单 {number}")
    page.goto(f"{server}/tickets/{master}")
    expect(page.locator(".timeline")).to_contain_text("并入重复件")
    # The master's history shows the repeat's number, linked, and what the caller added.
    merged = page.locator(f".timeline [data-merged='{repeat.id}']")
    expect(merged).to_contain_text("电梯还是没修好，再次反映")
    expect(merged.locator("a")).to_have_text(repeat.number)
    assert merged.locator("a").get_attribute("href") == f"/tickets/{repeat.id}"
    page.screenshot(path=str(SHOTS / "merged-history.png"), full_page=True)
    # The department handling the master reads it too, unlinked (the repeat is not theirs).
    switch_user(page, server, "housing_h")
    page.goto(f"{server}/tickets/{master}")
    expect(page.locator(f".timeline [data-merged='{repeat.id}']")).to_contain_text("电梯还是没修好，再次反映")
    expect(page.locator(f".timeline [data-merged='{repeat.id}'] a")).to_have_count(0)
    switch_user(page, server, "agent")
    # Into a ticket that is closed meanwhile (here: the merged repeat): refused, nothing logged.
    token = page.locator("body").get_attribute("hx-headers").split('"')[3]
    form = {"csrf_token": token, "type": "complaint", "content": "第三次来电", "merge_into": str(repeat.id)}
    r = page.request.post(f"{server}/agent/intake", form=form, max_redirects=0)
    assert r.status == 409
    assert repeat.number in r.text() and "不能并入" in r.text()
    with runtime.db.read_session() as s:
        assert s.exec(select(Ticket).where(Ticket.content == "第三次来电")).first() is None


@pytest.mark.browser
def test_invalid_intake_keeps_the_values_and_says_what_is_wrong(page, server, runtime, district, places):
    login(page, server, "agent")
    page.fill("#caller_phone", "1380000abc")
    page.fill("#caller_name", "赵先生")
    pick_category(page, "其他", "09")
    choose_place(page, "西城街道", "光明社区", "光明路12号")
    # No rule and no default department for 其他: the preview says so.
    expect(page.locator("#route-preview")).to_contain_text("派单规则未匹配到承办单位")
    with page.expect_navigation() as nav:
        page.click("#go-dispatch")
    assert nav.value.status == 422
    expect(page.locator("#err-content")).to_have_text("请填写诉求内容")
    expect(page.locator("#err-caller_phone")).to_contain_text("联系电话只能填数字")
    expect(page.locator("#caller_name")).to_have_value("赵先生")
    expect(page.locator("#community")).to_have_value("光明社区")
    expect(page.locator("#category_q")).to_have_value("其他 (09)")
    # Typed but not picked from the list: no category is guessed.
    page.fill("#category_q", "其它问题")
    page.press("#category_q", "Escape")
    with page.expect_navigation() as nav:
        page.click("#go-dispatch")
    assert nav.value.status == 422
    expect(page.locator("#err-category")).to_contain_text("请从下拉列表中选中一个分类")
    expect(page.locator("#category_q")).to_have_value("其它问题")
    pick_category(page, "其他", "09")
    page.fill("#caller_phone", "13800001234")
    page.fill("#content", "咨询事项")
    with page.expect_navigation() as nav:
        page.click("#go-dispatch")
    assert nav.value.status == 422
    expect(page.locator("#err-department")).to_contain_text("派单规则未匹配到承办单位")
    with runtime.db.read_session() as s:
        assert s.exec(select(Ticket)).first() is None  # nothing half-logged
    page.select_option("#department", "street_a")
    page.click("#go-dispatch")
    page.wait_for_url("**/agent/intake?done=dispatch*")
    expect(page.locator(".flash-ok")).to_contain_text("已派单至东城街道办事处")


@pytest.mark.browser
def test_the_callback_queue_is_paged(page, server, runtime, district):
    for i in range(12):
        awaiting_callback(runtime, district, at=local(2026, 10, 20 + i % 5, 9, i), content=f"第{i}件")
    login(page, server, "agent")
    page.goto(f"{server}/agent/callbacks")
    expect(page.locator(".cb-card")).to_have_count(10)
    expect(page.locator(".pager")).to_contain_text("第 1 / 2 页 · 共 12 件")
    page.locator(".pager a", has_text="下一页").click()
    expect(page.locator(".cb-card")).to_have_count(2)


@pytest.mark.browser
def test_the_callback_queue_is_searched_by_phone_name_number_and_place(page, server, runtime, district):
    zhou = awaiting_callback(
        runtime,
        district,
        at=local(2026, 10, 26, 10, 0),
        content="幸福里2栋楼道灯不亮",
        caller_name="周先生",
        caller_phone="13312345678",
        address="幸福里2栋",
    )
    wu = awaiting_callback(
        runtime,
        district,
        at=local(2026, 10, 27, 10, 0),
        content="车库漏水",
        caller_name="吴女士",
        caller_phone="13955550001",
    )
    for i in range(3):
        awaiting_callback(runtime, district, at=local(2026, 10, 28, 9, i), content=f"第{i}件")
    login(page, server, "agent")
    page.goto(f"{server}/agent/callbacks")
    expect(page.locator(".cb-card")).to_have_count(5)

    def search(text: str) -> list[str]:
        page.fill("#cb-q", text)
        page.press("#cb-q", "Enter")
        page.wait_for_load_state()
        return [c.get_attribute("id") for c in page.locator(".cb-card").all()]

    assert search("5678") == [f"cb-{zhou}"]  # the last digits of the caller's phone
    assert search("吴女士") == [f"cb-{wu}"]
    assert search("幸福里") == [f"cb-{zhou}"]
    with runtime.db.read_session() as s:
        number = s.get(Ticket, wu).number
    assert search(number) == [f"cb-{wu}"]
    expect(page.locator(".tabs a.active .count")).to_have_text("1")
    shot(page, "agent-callbacks-search")
    # A callback recorded from the results keeps the search.
    card = page.locator(f"#cb-{wu}")
    card.locator("label", has_text="未联系上").click()
    card.locator("button", has_text="记录回访").click()
    page.wait_for_url("**done=callback*")
    assert page.input_value("#cb-q") == number
    assert search("无此人") == []
    expect(page.locator("main")).to_contain_text("没有与“无此人”匹配的待回访工单")


def test_the_repeat_check_reads_the_newest_ten_of_ninety_days(runtime, district, places):
    now = runtime.now()
    make_dispatched(runtime, 1, now=local(2026, 8, 3, 9, 0), caller_phone="13812345678")  # 91 days back
    for day in range(1, 13):
        make_dispatched(runtime, 1, now=local(2026, 10, day, 9, 0), caller_phone="13812345678")
    with runtime.db.read_session() as s:
        found = recent_tickets(s, phone="138-1234-5678", street="", community="", address="", now=now)
        assert [t.created_at.astimezone(now.tzinfo).day for t in found["by_phone"]] == list(range(12, 2, -1))
        assert found["by_place"] is None
        assert recent_tickets(s, phone="13812", street="", community="", address="", now=now)["by_phone"] is None


def test_the_place_check_matches_the_address_prefix_literally(runtime, district, places):
    place = {"street": "西城街道", "community": "和平社区"}
    make_dispatched(runtime, 1, now=local(2026, 10, 20, 9, 0), address="和平小区3栋", **place)
    make_dispatched(runtime, 1, now=local(2026, 10, 21, 9, 0), address="和平_区9栋", **place)
    make_dispatched(runtime, 1, now=local(2026, 10, 22, 9, 0), address="和平小区3栋", street="东城街道")

    def addresses(street: str, community: str, address: str) -> list[str] | None:
        with runtime.db.read_session() as s:
            found = recent_tickets(s, phone="", street=street, community=community, address=address, now=runtime.now())
        return None if found["by_place"] is None else [t.address for t in found["by_place"]]

    assert addresses("西城街道", "和平社区", "和平") == ["和平_区9栋", "和平小区3栋"]
    assert addresses("西城街道", "和平社区", "和平_") == ["和平_区9栋"]
    assert addresses("西城街道", "和平社区", "和平%") == []
    assert addresses("西城街道", "", "和平小区") == ["和平小区3栋"]
    # A community of another street is ignored rather than matched.
    assert addresses("东城街道", "和平社区", "和平小区") == ["和平小区3栋"]
    assert addresses("西城街道", "和平社区", "和") is None  # too short to be worth a lookup


def test_the_route_preview_names_the_rule_or_the_category_default_that_decided(client, district, places, runtime):
    from hotline.directory import create_rule, update_department
    from tests.helpers import PASSWORD

    sign_in(client, "agent", PASSWORD)

    def preview(**query: str) -> str:
        r = client.get("/agent/intake/route", params=query)
        assert r.status_code == 200
        return re.sub(r"<[^>]+>", " ", r.text)

    assert "区住建局" in preview(category="0101", street="西城街道")
    assert "依据：分类“物业管理”的默认承办单位" in preview(category="0101", street="西城街道")
    # 食品安全 has no default of its own: its parent's decides.
    assert "依据：分类“市场监管”的默认承办单位" in preview(category="0201")
    found = preview(category="0102", street="东城街道", community="朝阳社区")
    # The rule's own reach (its category, its street), not the ticket's community.
    assert "东城街道办事处" in found and re.search(r"依据：派单规则 #\d+（违章搭建 · 东城街道）", found)
    assert "派单规则未匹配到承办单位" in preview(category="09", street="西城街道")
    # A rule whose department was deactivated since: said so, rather than "no rule".
    with runtime.db.session() as s:
        create_rule(s, department="market", category="09")
        update_department(s, "market", active=False)
    assert "派单规则或分类默认的承办单位已停用或为社区（区市场监管局）" in preview(category="09", street="西城街道")
