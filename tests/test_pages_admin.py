"""The administrator's pages in a real browser: departments, users, categories, rules, limits, holidays, workflows."""

import re
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlmodel import delete, select

from hotline.deadlines.calendar import LOCAL_TZ
from hotline.models import CalendarDay, CalendarYear, Department, DistrictSettings, RoutingRule, Ticket, User
from hotline.web import admin as admin_pages
from hotline.web.admin import csv_error, limit_text, parse_year_csv
from hotline.workflow.definition import Limit
from tests.conftest import local
from tests.helpers import PASSWORD, Api, make_dispatched
from tests.helpers import sign_in as client_sign_in
from tests.test_pages_smoke import login

SHOTS = Path(__file__).parent / "artifacts"
NEW_PASSWORD = "spring-river-2026"


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"admin-{name}.png"), full_page=True)


def submit(page, form: str) -> None:
    page.click(f"{form} button[type=submit]")
    page.wait_for_load_state()


def sign_in(browser, server: str, username: str, password: str):
    """A fresh browser context signed in (or refused) as the user; returns its page."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    pg = context.new_page()
    pg.set_default_timeout(10000)
    pg.goto(f"{server}/login")
    pg.fill("#username", username)
    pg.fill("#password", password)
    pg.click("button[type=submit]")
    pg.wait_for_load_state()
    return pg


def signed_in_as(pg) -> str | None:
    who = pg.locator(".who-name")
    return who.inner_text() if who.count() else None


@pytest.fixture
def no_2027(runtime):
    """No holiday data for 2027, before and after (PostgreSQL keeps calendar rows between tests)."""

    def clear() -> None:
        with runtime.db.session() as s:
            s.exec(
                delete(CalendarDay).where(CalendarDay.day >= date(2027, 1, 1), CalendarDay.day <= date(2027, 12, 31))
            )
            s.exec(delete(CalendarYear).where(CalendarYear.year == 2027))
        runtime.invalidate_calendar()

    clear()
    yield
    clear()


# ---------------------------------------------------------------- no browser


def _client_login(client, username: str) -> None:
    r = client_sign_in(client, username, PASSWORD)
    assert r.status_code == 303, r.text


def _csrf_token(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/notifications").text).group(1)


def _admin_routes() -> list[tuple[str, str]]:
    """Every admin page and form post, with its path parameters filled in."""
    fill = {
        "department_id": "1",
        "user_id": "1",
        "rule_id": "1",
        "code": "0101",
        "year": "2026",
        "action": "deactivate",
        "subscription_id": "1",
        "session_id": "1",
    }
    routes = []
    for route in admin_pages.router.routes:
        path = re.sub(r"{(\w+)}", lambda m: fill[m.group(1)], route.path)
        routes += [(method, path) for method in route.methods]
    return routes


def test_a_handler_gets_the_403_page_on_every_admin_route(client, district):
    _client_login(client, "housing_h")
    token = _csrf_token(client)
    routes = _admin_routes()
    assert ("POST", "/admin/calendar/2026") in routes and ("GET", "/admin/workflows") in routes
    for method, path in routes:
        r = client.request(method, path, data={"csrf_token": token} if method == "POST" else None)
        assert r.status_code == 403, (method, path)
        assert "无权访问" in r.text


def test_a_post_without_the_csrf_token_is_refused(client, district, runtime):
    _client_login(client, "admin")
    r = client.post("/admin/departments", data={"code": "forged", "name": "伪造单位"})
    assert r.status_code == 403
    assert "CSRF" in r.text
    r = client.post(f"/admin/users/{district.user_ids['agent']}/deactivate", data={"csrf_token": "wrong"})
    assert r.status_code == 403
    for method, path in _admin_routes():
        if method == "POST":
            assert client.post(path, data={}).status_code == 403, path
    with runtime.db.read_session() as s:
        assert s.exec(select(Department).where(Department.code == "forged")).first() is None
        assert s.get(User, district.user_ids["agent"]).active


def test_every_admin_page_renders_for_the_admin(client, district):
    _client_login(client, "admin")
    for path in (
        "/admin/departments",
        "/admin/users",
        "/admin/users?role=handler&department=housing",
        "/admin/categories",
        "/admin/rules",
        "/admin/rules?test_category=0102&test_place=%E4%B8%9C%E5%9F%8E%E8%A1%97%E9%81%93",
        "/admin/limits",
        "/admin/calendar",
        "/admin/calendar/2026",
        "/admin/calendar/2031",
        "/admin/workflows",
        "/admin/district",
    ):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:500])
    assert client.get("/admin", follow_redirects=False).headers["location"] == "/admin/departments"
    assert client.get("/admin/calendar?year=2030", follow_redirects=False).headers["location"] == "/admin/calendar/2030"


def test_admin_names_the_district_and_every_page_says_it_at_once(client, district, runtime):
    _client_login(client, "admin")
    page = client.get("/admin/district").text
    assert "尚未设置" in page and "HOTLINE_DISTRICT_NAME" in page
    assert "示范区政务服务便民热线" in page
    token = _csrf_token(client)
    # Refused: the reason in Chinese, what was typed kept, nothing stored.
    r = client.post("/admin/district", data={"csrf_token": token, "name": "青山区", "region_code": "3301"})
    assert r.status_code == 422
    assert "行政区划代码应为 12 位数字" in r.text
    assert 'value="青山区"' in r.text and 'value="3301"' in r.text
    with runtime.db.read_session() as s:
        assert s.get(DistrictSettings, 1) is None
    # Without the CSRF token nothing changes either.
    r = client.post("/admin/district", data={"name": "伪造区", "region_code": "330102000000"})
    assert r.status_code == 403
    r = client.post(
        "/admin/district",
        data={"csrf_token": token, "name": "青山区", "region_code": "330102000000"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin/district"
    page = client.get("/admin/district").text
    assert "已保存区县设置：青山区，行政区划代码 330102000000" in page
    # The page that was cached with the setting's name shows the new one straight away.
    assert "青山区政务服务便民热线" in page and "示范区政务服务便民热线" not in page
    assert "青山区12345热线" in client.get("/tickets").text
    with runtime.db.read_session() as s:
        stored = s.get(DistrictSettings, 1)
    assert (stored.name, stored.region_code) == ("青山区", "330102000000")


def test_a_handler_cannot_name_the_district(client, district, runtime):
    _client_login(client, "housing_h")
    token = _csrf_token(client)
    assert client.get("/admin/district").status_code == 403
    r = client.post("/admin/district", data={"csrf_token": token, "name": "伪造区", "region_code": ""})
    assert r.status_code == 403
    with runtime.db.read_session() as s:
        assert s.get(DistrictSettings, 1) is None


def test_admin_sets_a_departments_organisation_code(client, district, runtime):
    _client_login(client, "admin")
    token = _csrf_token(client)
    with runtime.db.read_session() as s:
        housing = s.exec(select(Department).where(Department.code == "housing")).one()
    path = f"/admin/departments/{housing.id}/org-code"
    r = client.post(path, data={"csrf_token": token, "org_code": "91350100M000100Y42"})
    assert r.status_code == 422 and "校验位不符" in r.text
    assert 'value="91350100M000100Y42"' in r.text  # kept, in the housing row
    r = client.post(path, data={"csrf_token": token, "org_code": "91350100m000100y43"}, follow_redirects=False)
    assert r.status_code == 303
    assert "已保存区住建局的统一社会信用代码：91350100M000100Y43" in client.get("/admin/departments").text
    with runtime.db.read_session() as s:
        assert s.get(Department, housing.id).org_code == "91350100M000100Y43"
    # A new department with a bad code is refused with what was typed kept.
    r = client.post(
        "/admin/departments", data={"csrf_token": token, "code": "culture", "name": "区文旅局", "org_code": "12345"}
    )
    assert r.status_code == 422 and "统一社会信用代码应为 18 位" in r.text
    assert 'value="culture"' in r.text and 'value="12345"' in r.text
    # A blank code clears it.
    assert client.post(path, data={"csrf_token": token, "org_code": " "}, follow_redirects=False).status_code == 303
    with runtime.db.read_session() as s:
        assert s.get(Department, housing.id).org_code is None


def test_limits_read_in_chinese():
    assert limit_text(Limit(working_days=3)) == "3 个工作日"
    assert limit_text(Limit(minutes=15)) == "15 分钟"
    assert limit_text(Limit(hours=24)) == "24 小时"
    assert limit_text(Limit(hours=1.5)) == "1.5 小时"


def test_holiday_csv_errors_name_the_line_in_chinese():
    assert csv_error("line 3: bad date '2027-13-01': month must be in 1..12") == "第 3 行：日期“2027-13-01”不存在"
    assert csv_error("line 2: bad kind 'x'; expected holiday/休").startswith("第 2 行：类型“x”无法识别")
    overrides, names = parse_year_csv("date,kind,name\n2027-01-01,休,元旦\n2027/2/7,班,春节\n", 2027)
    assert overrides == {date(2027, 1, 1): False, date(2027, 2, 7): True}
    assert names == {date(2027, 1, 1): "元旦", date(2027, 2, 7): "春节"}
    with pytest.raises(Exception, match="第 3 行：日期 2028-01-01 不在 2027 年内"):
        parse_year_csv("date,kind\n2027-01-01,休\n2028-01-01,休\n", 2027)


# ------------------------------------------------------------------- browser


@pytest.mark.browser
def test_admin_creates_and_deactivates_a_department(page, server, district, runtime):
    login(page, server, "admin")
    page.goto(f"{server}/admin/departments")
    page.fill("#code", "culture")
    page.fill("#name", "区文化和旅游局")
    submit(page, "#new-department")
    assert "已新建单位：区文化和旅游局（culture）" in page.inner_text(".flash-ok")
    row = page.locator("tr[data-code=culture]")
    assert "启用" in row.inner_text()
    # The same code again is refused, with what was typed kept.
    page.fill("#code", "culture")
    page.fill("#name", "重复")
    submit(page, "#new-department")
    assert "单位编码“culture”已被使用" in page.inner_text(".flash-error")
    assert page.input_value("#name") == "重复"
    page.on("dialog", lambda d: d.accept())
    page.goto(f"{server}/admin/departments")
    page.click("tr[data-code=culture] button:has-text('停用')")
    page.wait_for_load_state()
    assert "已停用单位：区文化和旅游局" in page.inner_text(".flash-ok")
    assert "已停用" in page.inner_text("tr[data-code=culture]")
    with runtime.db.read_session() as s:
        assert not s.exec(select(Department).where(Department.code == "culture")).one().active
    # The notice shows once.
    page.reload()
    assert page.locator(".flash-ok").count() == 0
    # Users per department are counted.
    assert page.inner_text("tr[data-code=housing] td.num") == "2"


@pytest.mark.browser
def test_admin_creates_a_user_who_can_then_sign_in(page, browser, server, district, runtime):
    login(page, server, "admin")
    page.goto(f"{server}/admin/users")
    # A handler without a department is refused (the script requires it; the server checks too).
    page.fill("#username", "wang.li")
    page.fill("#display_name", "王丽")
    page.select_option("#role", "handler")
    page.evaluate("document.getElementById('department').required = false")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#password_confirm", NEW_PASSWORD)
    submit(page, "#new-user")
    assert "承办人须属于一个单位" in page.inner_text(".flash-error")
    page.select_option("#role", "handler")
    page.select_option("#department", "housing")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#password_confirm", NEW_PASSWORD)
    submit(page, "#new-user")
    assert "已新建用户：王丽（wang.li，承办人）" in page.inner_text(".flash-ok")
    row = page.locator("tr[data-user='wang.li']")
    assert "区住建局" in row.inner_text() and "承办人" in row.inner_text()
    with runtime.db.read_session() as s:
        hashed = s.exec(select(User).where(User.username == "wang.li")).one().password_hash
    assert hashed.startswith("$argon2id$") and NEW_PASSWORD not in page.content()
    # Filters: by role and by department.
    page.goto(f"{server}/admin/users?role=handler&department=housing")
    names = page.locator("#users tbody tr").evaluate_all("rows => rows.map(r => r.dataset.user)")
    assert names == ["housing_h", "wang.li"]
    fresh = sign_in(browser, server, "wang.li", NEW_PASSWORD)
    assert signed_in_as(fresh) == "王丽"
    fresh.context.close()


@pytest.mark.browser
def test_admin_resets_a_password(page, browser, server, district):
    login(page, server, "admin")
    page.goto(f"{server}/admin/users")
    row = "tr[data-user=housing_h]"
    page.click(f"{row} summary")
    page.fill(f"{row} input[name=password]", NEW_PASSWORD)
    page.fill(f"{row} input[name=password_confirm]", "something else")
    page.click(f"{row} .pop-body button[type=submit]")
    page.wait_for_load_state()
    assert "两次输入的密码不一致" in page.inner_text(".flash-error")
    assert page.locator(f"{row} details[open]").count() == 1  # the form stays open to try again
    page.fill(f"{row} input[name=password]", NEW_PASSWORD)
    page.fill(f"{row} input[name=password_confirm]", NEW_PASSWORD)
    page.click(f"{row} .pop-body button[type=submit]")
    page.wait_for_load_state()
    notice = page.inner_text(".flash-ok")
    assert "已重置 housing_h（housing_h）的密码" in notice and NEW_PASSWORD not in page.content()
    refused = sign_in(browser, server, "housing_h", PASSWORD)
    assert signed_in_as(refused) is None and "用户名或密码错误" in refused.inner_text(".flash-error")
    refused.context.close()
    fresh = sign_in(browser, server, "housing_h", NEW_PASSWORD)
    assert signed_in_as(fresh) == "housing_h"
    fresh.context.close()


@pytest.mark.browser
def test_a_deactivated_user_cannot_sign_in_and_a_locked_one_is_unlocked(page, browser, server, district, runtime):
    login(page, server, "admin")
    page.on("dialog", lambda d: d.accept())
    page.goto(f"{server}/admin/users")
    page.click("tr[data-user=agent] button:has-text('停用')")
    page.wait_for_load_state()
    assert "已停用用户：agent（agent）" in page.inner_text(".flash-ok")
    assert "已停用" in page.inner_text("tr[data-user=agent]")
    refused = sign_in(browser, server, "agent", PASSWORD)
    assert signed_in_as(refused) is None
    refused.context.close()
    # The admin cannot stop their own account.
    assert page.locator("tr[data-user=admin] button:has-text('停用')").count() == 0
    # Reactivated, the agent signs in again.
    page.click("tr[data-user=agent] button:has-text('重新启用')")
    page.wait_for_load_state()
    again = sign_in(browser, server, "agent", PASSWORD)
    assert signed_in_as(again) == "agent"
    again.context.close()
    # Five wrong passwords lock an account; the admin lifts the lock.
    for _ in range(5):
        sign_in(browser, server, "market_h", "wrong password").context.close()
    page.click("tr[data-user=water_h] button:has-text('停用')")
    page.wait_for_load_state()
    page.goto(f"{server}/admin/users")
    assert "已锁定" in page.inner_text("tr[data-user=market_h]")
    assert "已停用" in page.inner_text("tr[data-user=water_h]")
    shot(page, "users")
    page.click("tr[data-user=market_h] button:has-text('解锁')")
    page.wait_for_load_state()
    assert "已解锁用户" in page.inner_text(".flash-ok")
    assert "正常" in page.inner_text("tr[data-user=market_h]")
    unlocked = sign_in(browser, server, "market_h", PASSWORD)
    assert signed_in_as(unlocked) == "market_h"
    unlocked.context.close()


@pytest.mark.browser
def test_admin_adds_a_category_and_a_rule_that_the_routing_test_picks(page, server, district, runtime):
    login(page, server, "admin")
    page.goto(f"{server}/admin/categories")
    page.select_option("#parent", "01")
    page.fill("#code", "0103")
    page.fill("#name", "房屋安全")
    page.select_option("#department", "housing")
    page.select_option("#workflow", "direct_reply")
    submit(page, "#new-category")
    assert "已新建分类：0103 房屋安全" in page.inner_text(".flash-ok")
    row = page.locator("tr[data-code='0103']")
    assert "区住建局" in row.inner_text() and "免审核流程" in row.inner_text()
    # 0201 has no department of its own: it shows the one it inherits from 02.
    assert "区市场监管局" in page.inner_text("tr[data-code='0201']")
    shot(page, "categories")

    page.goto(f"{server}/admin/rules")
    page.fill("#street", "西城街道")
    page.fill("#community", "和平社区")
    submit(page, "#places form")
    assert "已添加地点：西城街道 / 和平社区" in page.inner_text(".flash-ok")
    # Before the rule: the category default decides.
    page.select_option("#test_category", "0103")
    page.select_option("#test_place", "西城街道|和平社区")
    page.click("#route-test button[type=submit]")
    page.wait_for_selector("#route-result .dept")
    assert "区住建局" in page.inner_text("#route-result")
    assert "采用所选分类「0103 房屋安全」的默认承办单位" in page.inner_text("#route-result")
    page.select_option("#category", "0103")
    page.select_option("#place", "西城街道|和平社区")
    page.select_option("#department", "street_a")
    page.fill("#priority", "5")
    submit(page, "#new-rule")
    assert re.search(r"已新建派单规则 #\d+", page.inner_text(".flash-ok"))
    with runtime.db.read_session() as s:
        rule = s.exec(select(RoutingRule).where(RoutingRule.community == "和平社区")).one()
    page.select_option("#test_category", "0103")
    page.select_option("#test_place", "西城街道|和平社区")
    page.click("#route-test button[type=submit]")
    page.wait_for_function("() => document.querySelector('#route-result').innerText.includes('东城街道办事处')")
    assert f"命中派单规则 #{rule.id}（分类 0103 房屋安全，西城街道 / 和平社区，优先级 5）" in page.inner_text(
        "#route-result"
    )
    assert "hit" in page.get_attribute(f"tr[data-rule='{rule.id}']", "class")
    # Elsewhere in the street the rule does not apply.
    page.select_option("#test_place", "西城街道")
    page.click("#route-test button[type=submit]")
    page.wait_for_function("() => document.querySelector('#route-result').innerText.includes('区住建局')")
    # Deactivated, the rule stops routing.
    page.on("dialog", lambda d: d.accept())
    page.click(f"tr[data-rule='{rule.id}'] button:has-text('停用')")
    page.wait_for_load_state()
    assert f"已停用派单规则 #{rule.id}" in page.inner_text(".flash-ok")
    page.goto(f"{server}/admin/rules?test_category=0103&test_place={quote('西城街道|和平社区')}")
    assert "区住建局" in page.inner_text("#route-result")
    # A category with no default anywhere and no rule: the agent must choose.
    page.select_option("#test_category", "09")
    page.click("#route-test button[type=submit]")
    page.wait_for_function("() => document.querySelector('#route-result').innerText.includes('无法自动派单')")


@pytest.mark.browser
def test_admin_imports_a_year_of_holidays(page, server, district, runtime, clock, no_2027):
    clock.set(local(2026, 12, 28, 10, 0))  # Monday; seven working days run into 2027
    (tid,) = make_dispatched(runtime, 1, now=clock())
    with runtime.db.read_session() as s:
        ticket = s.get(Ticket, tid)
        assert ticket.deadlines_provisional
        assert ticket.handle_by.astimezone(LOCAL_TZ).date() == date(2027, 1, 6)  # Monday to Friday
    login(page, server, "admin")
    page.goto(f"{server}/admin/calendar")
    assert "2027 年（明年）的节假日数据尚未导入" in page.inner_text("[data-missing='2027']")
    assert "2026" in page.inner_text("tr[data-year='2026']")
    page.click("[data-missing='2027'] a")
    page.wait_for_load_state()
    assert page.url.endswith("/admin/calendar/2027")
    page.fill("#csv", "date,kind,name\n2027-01-01,休,元旦\n2027-01-32,休,元旦\n")
    submit(page, "#import-year")
    assert "第 3 行：日期“2027-01-32”不存在" in page.inner_text(".flash-error")
    assert "2027-01-32" in page.input_value("#csv")  # what was pasted stays, to be corrected
    page.fill(
        "#csv",
        "date,kind,name\n# 2027 年放假安排（测试数据）\n2027-01-01,休,元旦\n2027-01-04,休,元旦\n2027-01-09,班,元旦\n",
    )
    submit(page, "#import-year")
    notice = page.inner_text(".flash-ok")
    assert "已导入 2027 年节假日数据：放假 2 天，调休上班 1 天；重新计算了 1 件工单的暂定时限。" in notice
    assert page.text_content("td[data-day='2027-01-01']") == "1休"
    assert page.text_content("td[data-day='2027-01-09']") == "9班"
    assert "makeup" in page.get_attribute("td[data-day='2027-01-09']", "class")
    assert "元旦" in page.inner_text("#periods")
    with runtime.db.read_session() as s:
        ticket = s.get(Ticket, tid)
        assert not ticket.deadlines_provisional
        # 2027-01-01 and 01-04 off: seven working days from Tuesday 2026-12-29 end on 2027-01-08.
        assert ticket.handle_by.astimezone(LOCAL_TZ).date() == date(2027, 1, 8)
        assert s.get(CalendarYear, 2027).source == "admin:admin"
    page.goto(f"{server}/admin/calendar")
    assert page.locator("[data-missing='2027']").count() == 0
    assert "管理员导入（admin）" in page.inner_text("tr[data-year='2027']")
    page.goto(f"{server}/admin/calendar/2026")
    assert page.text_content("td[data-day='2026-10-01']") == "1休"
    assert page.text_content("td[data-day='2026-10-10']") == "10班"
    assert "国庆节" in page.inner_text("#periods")
    shot(page, "calendar-year")


@pytest.mark.browser
def test_admin_reads_the_time_limits_and_the_workflows(page, server, district):
    login(page, server, "admin")
    page.goto(f"{server}/admin/limits")
    text = page.inner_text("#wf-default")
    for words in ("3 个工作日", "10 个工作日", "15 分钟", "30 分钟", "24 小时", "15 个工作日", "累计 20 个工作日"):
        assert words in text, words
    assert "第 3 次派单起" in text and "超期 5 个工作日后仍未办结" in text
    assert "workflows/default.yaml" in page.inner_text(".callout-info")
    shot(page, "limits")
    page.goto(f"{server}/admin/workflows")
    assert page.locator("#wf-default svg").count() == 1
    sign = page.inner_text("#wf-default tr[data-event=sign]")
    assert "待签收" in sign and "→ 办理中" in sign and "承办人" in sign and "单位负责人" in sign
    ret = page.inner_text("#wf-default tr[data-event=return]")
    assert "理由" in ret and "退单原因" in ret
    assert "（状态不变）" in page.inner_text("#wf-default tr[data-event=urge]")
    shot(page, "workflows")
    page.click(".tabs a:has-text('免审核流程')")
    page.wait_for_load_state()
    assert page.locator("#wf-direct_reply svg").count() == 1
    assert "→ 待回访" in page.inner_text("#wf-direct_reply tr[data-event=reply]")
    assert page.locator("#wf-direct_reply tr[data-event=approve_reply]").count() == 0


@pytest.mark.browser
def test_admin_edits_moves_deactivates_and_deletes_categories_and_rules(page, server, district, runtime):
    from hotline import directory
    from hotline.models import Category

    with runtime.db.session() as s:
        directory.create_category(s, runtime, code="0103", name="房屋安全", parent="01")
    page.on("dialog", lambda d: d.accept())
    login(page, server, "admin")
    page.goto(f"{server}/admin/categories")
    # One edit form at a time: the others are links to the page with theirs open.
    assert page.locator("#categories select").count() == 0
    row = page.locator("tr[data-code='0101']")
    row.locator("a", has_text="编辑").click()
    page.wait_for_load_state()
    assert page.locator("#categories details[open] select[name=parent]").count() == 1
    row.locator("input[name=name]").fill("物业服务")
    row.locator("select[name=department]").select_option("water")
    shot(page, "category-edit")
    row.locator("button", has_text="保存").click()
    page.wait_for_load_state()
    assert "已保存分类：0101 物业服务" in page.inner_text(".flash-ok")
    assert "区水务局" in page.inner_text("tr[data-code='0101']")

    # Moving 01 under its own child is refused, and says why.
    row = page.locator("tr[data-code='01']")
    row.locator("a", has_text="编辑").click()
    row.locator("select[name=parent]").select_option("0103")
    row.locator("button", has_text="保存").click()
    page.wait_for_load_state()
    assert "不能把分类移到它自己或它的下级分类之下" in page.inner_text(".flash-error")
    assert page.locator("tr[data-code='01'] details[open]").count() == 1  # the form stays open
    assert page.locator("tr[data-code='01'] select[name=parent]").input_value() == "0103"  # as typed
    # Moving 0103 under 02 is fine.
    page.goto(f"{server}/admin/categories")
    row = page.locator("tr[data-code='0103']")
    row.locator("a", has_text="编辑").click()
    row.locator("select[name=parent]").select_option("02")
    row.locator("button", has_text="保存").click()
    page.wait_for_load_state()
    with runtime.db.read_session() as s:
        moved = s.exec(select(Category).where(Category.code == "0103")).one()
        assert s.get(Category, moved.parent_id).code == "02"

    # A used category is kept (deactivated), an unused one deleted.
    make_dispatched(runtime, 1, now=local(2026, 11, 2, 9, 0))  # a ticket of 0101
    page.locator("tr[data-code='0101'] button", has_text="删除").click()
    page.wait_for_load_state()
    assert "不能删除" in page.inner_text(".flash-error") and "工单" in page.inner_text(".flash-error")
    page.locator("tr[data-code='0101'] button", has_text="停用").click()
    page.wait_for_load_state()
    assert "已停用" in page.inner_text("tr[data-code='0101']")
    page.locator("tr[data-code='0103'] button", has_text="删除").click()
    page.wait_for_load_state()
    assert "已删除分类：0103 房屋安全" in page.inner_text(".flash-ok")
    assert page.locator("tr[data-code='0103']").count() == 0

    # Rules: edited, then deleted.
    page.goto(f"{server}/admin/rules")
    rule_id = page.locator("#rules tbody tr[data-rule]").first.get_attribute("data-rule")
    assert page.locator("#rules tbody select").count() == 0
    rule = page.locator(f"#rules tbody tr[data-rule='{rule_id}']")
    rule.locator("a", has_text="编辑").click()
    rule.locator("select[name=department]").select_option("market")
    rule.locator("input[name=priority]").fill("7")
    rule.locator("button", has_text="保存").click()
    page.wait_for_load_state()
    assert f"已保存派单规则 #{rule_id}" in page.inner_text(".flash-ok")
    with runtime.db.read_session() as s:
        saved = s.get(RoutingRule, int(rule_id))
        assert saved.priority == 7 and s.get(Department, saved.department_id).code == "market"
    page.locator(f"tr[data-rule='{rule_id}'] button", has_text="删除").click()
    page.wait_for_load_state()
    assert page.locator(f"tr[data-rule='{rule_id}']").count() == 0
    shot(page, "rules-after-delete")


class _Admin(Api):
    """The API helper with the two methods only the administrator's resources need."""

    def patch(self, path: str, body: dict, expect: int = 200):
        r = self.client.patch(f"/api/v1{path}", headers=self.headers, json=body)
        assert r.status_code == expect, r.text
        return r.json()

    def delete(self, path: str, expect: int = 204) -> None:
        r = self.client.delete(f"/api/v1{path}", headers=self.headers)
        assert r.status_code == expect, r.text


def test_the_admin_api_edits_and_deletes_categories_and_rules(client, district):
    admin = _Admin(client, district, "admin")
    moved = admin.patch("/categories/0102", {"name": "违法建设", "parent": "02", "department": None})
    assert moved == {**moved, "name": "违法建设", "parent": "02", "department": None, "active": True}
    admin.patch("/categories/01", {"parent": "0101"}, expect=422)  # under its own child
    admin.patch("/categories/01", {"parent": "01"}, expect=422)
    assert admin.patch("/categories/09", {"active": False})["active"] is False
    admin.delete("/categories/01", expect=409)  # it has sub-categories
    admin.post("/categories", {"code": "0901", "name": "临时"}, expect=201)
    admin.delete("/categories/0901", expect=204)
    assert "0901" not in {c["code"] for c in admin.get("/categories")}
    _Admin(client, district, "supervisor").patch("/categories/09", {"active": True}, expect=403)
    rule = admin.get("/routing-rules")[0]
    changed = admin.patch(f"/routing-rules/{rule['id']}", {"priority": 9, "street": None})
    assert changed["priority"] == 9 and changed["street"] is None and changed["department"] == rule["department"]
    admin.delete(f"/routing-rules/{rule['id']}", expect=204)
    admin.delete(f"/routing-rules/{rule['id']}", expect=404)


@pytest.mark.browser
def test_admin_creates_an_integration_account_that_never_signs_in(page, browser, server, district, runtime):
    login(page, server, "admin")
    page.goto(f"{server}/admin/users")
    page.fill("#username", "city.platform")
    page.select_option("#role", "integration")
    assert page.locator("#source").evaluate("e => e.required") and page.locator("#department").is_disabled()
    page.fill("#source", "city12345")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#password_confirm", NEW_PASSWORD)
    submit(page, "#new-user")
    assert "已新建用户：city.platform（city.platform，系统对接）" in page.inner_text(".flash-ok")
    assert "city12345" in page.locator("tr[data-user='city.platform']").inner_text()
    with runtime.db.read_session() as s:
        assert s.exec(select(User.source).where(User.username == "city.platform")).one() == "city12345"
    # An agent takes no source: the field is disabled, and the server refuses one sent anyway.
    page.select_option("#role", "agent")
    assert page.locator("#source").is_disabled()
    fresh = sign_in(browser, server, "city.platform", NEW_PASSWORD)
    assert signed_in_as(fresh) is None and "/login" in fresh.url
    fresh.context.close()
