"""派单 from 待派单: the routing preview, departments found by name and grouped, co-handlers ticked."""

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from hotline.models import Assignment, Department
from hotline.tickets import create_ticket
from hotline.workflow.engine import Actor
from tests.test_pages_agent import shot
from tests.test_pages_smoke import login


@pytest.mark.browser
def test_dispatch_from_the_queue_previews_the_route_and_names_the_departments(page, server, runtime, district):
    agent = Actor(district.user_ids["agent"], "agent", "agent")
    with runtime.db.session() as s:
        data = {"type": "complaint", "category": "0101", "content": "小区电梯停运三天", "channel": "api"}
        ticket, _ = create_ticket(s, runtime, agent, data, now=runtime.now())
        ticket_id, number = ticket.id, ticket.number
    login(page, server, "agent")
    page.goto(f"{server}/tickets?state=registered")
    expect(page.locator("h1")).to_have_text("待派单")
    page.locator("a", has_text=number).click()
    page.wait_for_url(f"**/tickets/{ticket_id}")
    form = page.locator("form[data-event='dispatch']")
    page.locator("details:has(form[data-event='dispatch'])").evaluate("d => d.open = true")
    # What the rules would choose, and why, before choosing.
    expect(form.locator(".route-ok")).to_contain_text("区住建局")
    expect(form.locator(".route-ok")).to_contain_text("依据：分类“物业管理”的默认承办单位")
    # Departments grouped, found by typing part of a name.
    expect(form.locator("#dispatch-department optgroup[label='街道（乡镇）'] option")).to_have_text(["东城街道办事处"])
    form.locator("input.dept-filter[data-filter='dispatch-department']").fill("城管")
    expect(form.locator("#dispatch-department")).to_have_value("urban")
    expect(form.locator("#dispatch-department option", has_text="区水务局")).to_be_hidden()
    # Co-handlers are ticked, not Ctrl-clicked.
    expect(form.locator("select[multiple]")).to_have_count(0)
    form.locator("input.dept-filter[data-filter='dispatch-co_departments']").fill("水务")
    expect(form.locator("label.check", has_text="区市场监管局")).to_be_hidden()
    form.locator("label.check", has_text="区水务局").click()
    shot(page, "ticket-dispatch")
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"**/tickets/{ticket_id}?done=dispatch")
    expect(page.locator(".flash-ok")).to_have_text("已派单至区城管局（协办：区水务局）")
    with runtime.db.read_session() as s:
        codes = {
            (code, role)
            for code, role in s.exec(
                select(Department.code, Assignment.role)
                .join(Department, Department.id == Assignment.department_id)
                .where(Assignment.ticket_id == ticket_id)
            )
        }
    assert codes == {("urban", "main"), ("water", "co")}
